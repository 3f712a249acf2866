"""Hostile files never crash, hang or blow memory: bounded memory for every
file format, files that shrink while read, FIFOs and devices, corrupt .npy headers.

Everything that could crash (SIGBUS) or hang runs in a subprocess with a
timeout, so that a regression fails the test instead of killing or stalling
the suite.
"""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import descramble
from descramble import reference, sources

PYTHONPATH = os.pathsep.join([os.path.dirname(os.path.dirname(descramble.__file__)),
                              os.environ.get("PYTHONPATH", "")])


def run_python(script, *args, timeout=60):
    """Run ``script`` in a fresh interpreter; a signal or a hang fails the test."""
    try:
        done = subprocess.run([sys.executable, "-c", textwrap.dedent(script), *map(str, args)],
                              capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, "PYTHONPATH": PYTHONPATH})
    except subprocess.TimeoutExpired:
        pytest.fail(f"the subprocess hung (killed after {timeout} s)")
    assert done.returncode == 0, f"exit status {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


# -- bounded memory ------------------------------------------------------------------------------

RSS_SCRIPT = """
import sys
import numpy as np
import descramble
from descramble import sources

def peak_rss_kib():  # VmHWM: unlike ru_maxrss it does not inherit the parent's peak across exec
    return int(next(l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM")))

path, how, chunk_bytes = sys.argv[1], sys.argv[2], int(sys.argv[3])
sources.DEFAULT_CHUNK_BYTES = chunk_bytes  # scaled down with the file
baseline = peak_rss_kib()
if how == "accumulate":
    count = descramble.accumulate(path).count
else:  # FileSource.chunks() / ConvertedFileSource.chunks(): what convergence, hidden and the CLI read
    count = 0
    for chunk, _ in sources.open_source(path).chunks():
        count += len(chunk)
        chunk.sum()  # touch every value, as a consumer does
print(count, (peak_rss_kib() - baseline) // 1024)
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="peak RSS is read from /proc (Linux)")
@pytest.mark.parametrize("dtype, how", [(">f8", "accumulate"), ("<f2", "accumulate"), ("<f8", "chunks")],
                         ids=["big-endian", "float16", "chunks"])
def test_streaming_any_file_format_keeps_memory_bounded(tmp_path, dtype, how):
    """Acceptance at 1 GiB: peak RSS under 256 MiB + 16 n^2 bytes; here the file,
    the chunk size and the bound are scaled down by 4 (256 MiB, 8 MiB, 64 MiB).
    Before: the memory map was converted whole (2x the file for big-endian
    float64, 3x for float16), and FileSource.chunks() mapped the file."""
    n, file_bytes = 64, 256 << 20
    rows = file_bytes // (n * np.dtype(dtype).itemsize)
    path = tmp_path / "big.npy"
    block = np.random.default_rng(0).normal(size=(1 << 16, n)).astype(dtype)
    with open(path, "wb") as handle:
        np.lib.format.write_array_header_1_0(
            handle, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False,
                     "shape": (rows, n)})
        for _ in range(rows // len(block)):
            handle.write(block.tobytes())
    try:
        count, growth_mib = map(int, run_python(RSS_SCRIPT, path, how, 8 << 20, timeout=120).split())
    finally:
        path.unlink()
    assert count == rows
    bound_mib = (file_bytes // 4 + 16 * n * n) / 2**20
    assert growth_mib < bound_mib, f"peak RSS grew by {growth_mib} MiB streaming a 256 MiB {dtype} file"


# -- files that shrink while read ----------------------------------------------------------------

TRUNCATE_SCRIPT = """
import os, sys
import numpy as np
import descramble
from descramble import sources

path, dtype, how, when = sys.argv[1:5]
np.save(path, np.ones((20000, 8), dtype=dtype))

def truncate():
    os.truncate(path, os.path.getsize(path) // 2)

src = sources.open_source(path, chunk_rows=1000)  # header parsed, size checked
if when == "before":
    truncate()  # the file shrinks between parsing and streaming
try:
    if how == "accumulate":
        descramble.Autocorrelation(8).update_from(path, chunk_rows=1000)
    elif how == "feed":
        src.feed(lambda chunk, w, first_row, name: truncate() if first_row == 0 and when == "during" else None)
    else:
        for i, (chunk, _) in enumerate(src.chunks()):
            if i == 0 and when == "during":
                truncate()  # the file shrinks while it is read
            chunk.sum()
    raise SystemExit("no error")
except ValueError as exc:
    print(exc)
"""


@pytest.mark.parametrize("dtype", ["<f8", ">f8", "<f2"])
@pytest.mark.parametrize("how", ["feed", "chunks"])
@pytest.mark.parametrize("when", ["before", "during"])
def test_a_file_truncated_while_read_raises_valueerror_not_sigbus(tmp_path, dtype, how, when):
    """Before: a memory map of the file; a file that shrank under it killed the process with SIGBUS."""
    path = tmp_path / "shrinks.npy"
    message = run_python(TRUNCATE_SCRIPT, path, dtype, how, when)
    assert f"'{path}' ended early: the file is truncated" in message


def test_a_file_truncated_before_the_core_reads_it(tmp_path):
    path = tmp_path / "shrinks.npy"
    message = run_python(TRUNCATE_SCRIPT.replace("sources.open_source(path, chunk_rows=1000)", "None"),
                         path, "<f8", "accumulate", "before")
    assert f"'{path}'" in message and "truncated" in message


# -- FIFOs, devices, directories -----------------------------------------------------------------

FIFO_SCRIPT = """
import sys
import numpy as np
import descramble
path, kind = sys.argv[1], sys.argv[2]
try:
    if kind == "npy":
        descramble.autocorrelation(path)
    else:
        descramble.autocorrelation(path, dtype=np.float32, n_features=4)
except ValueError as exc:
    print(exc)
"""


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs os.mkfifo")
@pytest.mark.parametrize("kind", ["npy", "raw"])
def test_a_fifo_is_refused_not_waited_on(tmp_path, kind):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    message = run_python(FIFO_SCRIPT, fifo, kind, timeout=30)
    assert f"'{fifo}' is a FIFO; expected a regular file" in message


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
@pytest.mark.parametrize("kind", ["npy", "raw"])
def test_a_device_is_refused_naming_it(kind):
    message = run_python(FIFO_SCRIPT, "/dev/zero", kind, timeout=30)
    assert "'/dev/zero' is a device; expected a regular file" in message


def test_a_directory_is_refused(tmp_path):
    with pytest.raises(IsADirectoryError) as info:
        descramble.autocorrelation(tmp_path)
    assert info.value.filename == str(tmp_path)
    with pytest.raises(IsADirectoryError):
        descramble.accumulate(tmp_path, dtype=np.float32, n_features=2)


# -- corrupt .npy headers ------------------------------------------------------------------------

def npy_bytes(header_text, version=(1, 0), body=b""):
    """A .npy file with ``header_text`` as its header, padded as numpy pads it."""
    header = header_text.encode("latin1")
    length_bytes = 2 if version == (1, 0) else 4
    pad = -(6 + 2 + length_bytes + len(header) + 1) % 64
    header += b" " * pad + b"\n"
    return (b"\x93NUMPY" + bytes(version) + len(header).to_bytes(length_bytes, "little") + header + body)


HEADERS = {
    # numpy's header parser raises tokenize.TokenError for an unterminated bracket
    "token_error": ("{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), ", (1, 0)),
    "syntax_error": ("{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2)))}", (1, 0)),
    "not_a_literal": ("{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), 'x': f()}", (1, 0)),
    "shape_not_ints": ("{'descr': '<f8', 'fortran_order': False, 'shape': (3.0, 2)}", (1, 0)),
    "negative_shape": ("{'descr': '<f8', 'fortran_order': False, 'shape': (-3, 2)}", (1, 0)),
    "bad_descr": ("{'descr': 'not a dtype', 'fortran_order': False, 'shape': (3, 2)}", (1, 0)),
    "version_2_5": ("{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2)}", (2, 5)),
    "version_0_0": ("{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2)}", (0, 0)),
}


@pytest.mark.parametrize("kind", sorted(HEADERS))
def test_corrupt_npy_headers_raise_valueerror_naming_the_file(tmp_path, kind):
    text, version = HEADERS[kind]
    path = tmp_path / f"{kind}.npy"
    path.write_bytes(npy_bytes(text, version, np.ones((3, 2)).tobytes()))
    acc = descramble.Autocorrelation(2)
    with pytest.raises(ValueError, match=rf"^data: '{path}' is not a valid \.npy file"):
        acc.update_from(path)
    assert acc.count == 0


@pytest.mark.parametrize("shape", [(2**62, 4), (2**61, 4), (2**63 // 8 + 1, 1), (4, 2**62), (2**64 + 3, 1)])
def test_npy_shapes_whose_size_overflows_int64_are_refused_before_streaming(tmp_path, shape):
    path = tmp_path / "huge.npy"
    path.write_bytes(npy_bytes(f"{{'descr': '<f8', 'fortran_order': False, 'shape': {shape}, }}",
                               body=np.ones((64, 4)).tobytes()))
    acc = descramble.Autocorrelation(shape[1]) if shape[1] < 100 else None
    with pytest.raises(ValueError, match=rf"'{path}' is (truncated|too large)"):
        (acc.update_from if acc is not None else descramble.accumulate)(path)
    if acc is not None:
        assert acc.count == 0


def test_npy_width_beyond_the_machines_memory_is_refused(tmp_path):
    path = tmp_path / "wide.npy"
    path.write_bytes(npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (0, 1099511627776), }"))
    with pytest.raises(ValueError, match=rf"'{path}' has n_features = 1099511627776"):
        descramble.accumulate(path)


def test_npy_version_3_is_read(tmp_path, rng):
    x = rng.normal(size=(50, 3))
    path = tmp_path / "v3.npy"
    with open(path, "wb") as handle:
        np.lib.format.write_array(handle, x, version=(3, 0))
    np.testing.assert_allclose(descramble.autocorrelation(path), reference.autocorrelation(x), rtol=1e-12)
    assert isinstance(sources.open_source(path), sources.FileSource)


@pytest.mark.parametrize("raw", [False, True])
def test_bool_files_read_any_nonzero_byte_as_true_like_numpy(tmp_path, raw):
    """Found by the fuzzer: the core read a bool byte of 64 as 64; NumPy reads it as True."""
    x = np.zeros((30, 3), dtype=np.uint8)
    x[::2, 0], x[1::3, 1], x[5, 2] = 64, 2, 255
    path = tmp_path / ("x.bool" if raw else "x.npy")
    if raw:
        x.tofile(path)
        kwargs = {"dtype": bool, "n_features": 3}
    else:
        np.save(path, x.view(bool))
        kwargs = {}
    ones = (x != 0).astype(np.float64)
    np.testing.assert_allclose(descramble.autocorrelation(path, chunk_rows=7, **kwargs), ones.T @ ones / 30,
                               rtol=1e-14, atol=1e-15)
    chunks = [c for c, _ in sources.open_source(path, chunk_rows=7, **kwargs).chunks()]
    np.testing.assert_array_equal(np.concatenate(chunks), x != 0)
