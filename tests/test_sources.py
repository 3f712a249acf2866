"""Every kind of source: .npy and raw files, HDF5 and zarr datasets, iterables;
progress, interruption, bounded memory and bad sources."""

import _thread
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import descramble
from conftest import assert_same_state, state_of
from descramble import reference


@pytest.fixture
def data(rng):
    return 100.0 + rng.normal(size=(5003, 9))


def expected_acc(x):
    return descramble.Autocorrelation(x.shape[1]).update(x)


def assert_matches(acc, x, rtol=1e-11):
    assert acc.count == x.shape[0]
    np.testing.assert_allclose(acc.covariance(), reference.covariance(np.asarray(x, dtype=np.float64)), rtol=rtol,
                               atol=1e-12)
    np.testing.assert_allclose(acc.mean, np.asarray(x, dtype=np.float64).mean(axis=0), rtol=1e-13)


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int16, np.uint8])
@pytest.mark.parametrize("chunk_rows", [None, 1, 1000, 10_000])
def test_npy_files_are_streamed_by_the_core(tmp_path, data, order, dtype, chunk_rows):
    x = (data * 3).astype(dtype) if np.dtype(dtype).kind in "iu" else data.astype(dtype)
    x = np.asfortranarray(x) if order == "F" else np.ascontiguousarray(x)
    path = tmp_path / "x.npy"
    np.save(path, x)
    src = descramble.sources.open_source(path, chunk_rows=chunk_rows)
    assert isinstance(src, descramble.sources.FileSource)  # the core reads it, not np.load
    assert src.fortran_order == (order == "F")
    acc = descramble.accumulate(path, chunk_rows=chunk_rows)
    assert_matches(acc, x)
    np.testing.assert_allclose(
        descramble.autocorrelation(str(path)), reference.autocorrelation(x), rtol=1e-12
    )


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("dtype", [">f8", ">f4", ">i2", np.float16, ">f2", np.longdouble])
@pytest.mark.parametrize("chunk_rows", [None, 1, 777])
def test_npy_files_the_core_cannot_read_directly_are_read_in_converted_chunks(tmp_path, data, dtype, order,
                                                                              chunk_rows):
    x = np.asarray(data[: 50 if chunk_rows == 1 else None].astype(dtype), order=order)
    path = tmp_path / "odd.npy"
    np.save(path, x)
    src = descramble.sources.open_source(path, chunk_rows=chunk_rows)
    assert isinstance(src, descramble.sources.ConvertedFileSource)  # not np.load, not a memory map
    assert_matches(descramble.accumulate(path, chunk_rows=chunk_rows), x)
    chunks = [c for c, _ in src.chunks()]
    assert all(c.dtype.isnative and (c.dtype.kind != "f" or c.dtype.itemsize in (4, 8)) for c in chunks)
    np.testing.assert_array_equal(np.concatenate(chunks), x.astype(chunks[0].dtype))


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("dtype", ["<f8", ">f8", "<f2"])
def test_file_chunks_for_other_consumers_are_read_not_mapped(tmp_path, data, dtype, order, monkeypatch):
    """FileSource.chunks() (convergence, hidden_autocorrelations, the CLI) reads bounded chunks."""
    x = np.asarray(data.astype(dtype), order=order)
    path = tmp_path / "x.npy"
    np.save(path, x)

    def no_maps(*args, **kwargs):
        raise AssertionError("a library read path memory-mapped the file")

    monkeypatch.setattr(np, "memmap", no_maps)
    monkeypatch.setattr(np, "load", no_maps)
    src = descramble.sources.open_source(path, chunk_rows=1000)
    chunks = [c for c, _ in src.chunks()]
    assert [len(c) for c in chunks] == [1000] * 5 + [3]
    np.testing.assert_array_equal(np.concatenate(chunks), x)
    raw = tmp_path / "x.raw"
    np.ascontiguousarray(x).tofile(raw)
    src = descramble.sources.open_source(raw, dtype=dtype, n_features=9, chunk_rows=1000)
    np.testing.assert_array_equal(np.concatenate([c for c, _ in src.chunks()]), x)
    result = descramble.convergence(np.ones((2, 9)), str(path), sizes=[1000, 5003])
    assert list(result.n_samples) == [1000, 5003]


def test_no_memory_maps_in_library_read_paths():
    """A mapped file that shrinks kills the process with SIGBUS; the readers read (the CLI's openers aside)."""
    root = os.path.dirname(descramble.__file__)
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in ("cli", "__pycache__")]
        for name in (f for f in files if f.endswith(".py")):
            text = open(os.path.join(folder, name), encoding="utf-8").read()
            for pattern in ("mmap_mode=", "np.memmap(", "mmap.mmap(", "open_memmap("):
                assert pattern not in text, f"{name}: {pattern}"


def test_raw_binary_files_with_dtype_and_width(tmp_path, data):
    x = data.astype(np.float32)
    path = tmp_path / "x.f32"
    x.tofile(path)
    acc = descramble.accumulate(path, dtype=np.float32, n_features=9, chunk_rows=100)
    assert_matches(acc, x)
    more = descramble.Autocorrelation(9).update_from(path, dtype="float32", n_features=9)
    assert more.count == x.shape[0]


def test_hdf5_datasets_are_read_in_slices(tmp_path, data):
    h5py = pytest.importorskip("h5py", reason="h5py (the hdf5 extra) is not installed")
    path = tmp_path / "x.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("signals", data=data, chunks=(500, 9))
    with h5py.File(path, "r") as f:
        src = descramble.sources.open_source(f["signals"], chunk_rows=640)
        assert isinstance(src, descramble.sources.DatasetSource)
        assert_matches(descramble.accumulate(f["signals"], chunk_rows=640), data)


def test_zarr_arrays_are_read_in_slices(tmp_path, data):
    zarr = pytest.importorskip("zarr", reason="zarr (the zarr extra) is not installed")
    z = zarr.open_array(str(tmp_path / "x.zarr"), mode="w", shape=data.shape, chunks=(700, 9), dtype="f8")
    z[:] = data
    assert isinstance(descramble.sources.open_source(z), descramble.sources.DatasetSource)
    assert_matches(descramble.accumulate(z, chunk_rows=1000), data)


def test_memmaps_are_arrays(tmp_path, data):
    path = tmp_path / "x.npy"
    np.save(path, data)
    assert_matches(descramble.accumulate(np.load(path, mmap_mode="r")), data)


def test_generators_are_prefetched_and_exceptions_surface(data):
    def chunks():
        yield from np.array_split(data, 7)

    assert_matches(descramble.accumulate(chunks()), data)

    def failing():
        yield data[:100]
        raise RuntimeError("sensor disconnected")

    acc = descramble.Autocorrelation(9)
    with pytest.raises(RuntimeError, match="sensor disconnected"):
        acc.update_from(failing())
    assert acc.count == 100


def test_mixed_precision_error_bound(rng):
    """float32 products over blocks of rows, float64 sums: error <= 1e-6 relative."""
    x = (5.0 + rng.normal(size=(200_000, 64)) * rng.uniform(0.1, 10, size=64)).astype(np.float32)
    exact = descramble.Autocorrelation(64).update(x)
    mixed = descramble.Autocorrelation(64, precision="mixed").update(x)
    assert mixed.precision == "mixed"
    for a, b in [(mixed.covariance(), exact.covariance()), (mixed.autocorrelation(), exact.autocorrelation())]:
        rel = np.abs(a - b).max() / np.abs(b).max()
        assert 0 < rel <= 1e-6, rel
    np.testing.assert_allclose(
        descramble.autocorrelation(x, precision="mixed"), exact.autocorrelation(), rtol=1e-6
    )


def test_settings_are_validated():
    with pytest.raises(ValueError, match="precision: expected 'float64' or 'mixed', got 'half'"):
        descramble.Autocorrelation(3, precision="half")
    with pytest.raises(ValueError, match="threads: expected a positive integer"):
        descramble.Autocorrelation(3, threads=0)
    acc = descramble.Autocorrelation(3, precision="mixed", threads=2)
    assert (acc.precision, acc.threads) == ("mixed", 2)
    assert repr(acc) == "Autocorrelation(n_features=3, count=0, weight_sum=0, precision='mixed')"


def test_progress_bar_counts_rows(tmp_path, data, capsys):
    pytest.importorskip("tqdm", reason="tqdm (the progress extra) is not installed")
    path = tmp_path / "x.npy"
    np.save(path, data)
    descramble.accumulate(path, chunk_rows=1000, progress=True)
    err = capsys.readouterr().err
    assert "5.00k/5.00k" in err, err
    descramble.accumulate(data, chunk_rows=1000, progress=True)
    assert "5.00k/5.00k" in capsys.readouterr().err


def test_ctrl_c_during_a_file_stream_keeps_the_committed_chunks(tmp_path, data):
    path = tmp_path / "x.npy"
    np.save(path, data)
    src = descramble.sources.open_source(path, chunk_rows=500)
    acc = descramble.Autocorrelation(9)
    seen = []

    def progress(done, total):
        seen.append(done)
        if len(seen) == 3:
            _thread.interrupt_main()  # as if Ctrl-C were pressed now

    with pytest.raises(KeyboardInterrupt):
        acc._core.update_from_file(str(path), src.offset, src.dtype, src.rows, 9, False, 500, progress)
    assert acc.count == 1500  # three chunks committed, the fourth never started
    assert_matches(acc, data[:1500])
    acc.update_from(path)  # still usable
    assert acc.count == 1500 + 5003


def test_ctrl_c_between_array_chunks_keeps_the_accumulator_consistent(data):
    acc = descramble.Autocorrelation(9)
    calls = []

    def chunks():
        for chunk in np.array_split(data, 10):
            calls.append(1)
            if len(calls) == 4:
                raise KeyboardInterrupt
            yield chunk

    with pytest.raises(KeyboardInterrupt):
        acc.update_from(chunks())
    assert acc.count in {sum(len(c) for c in np.array_split(data, 10)[:k]) for k in range(4)}
    assert_matches(acc, data[: acc.count])


BAD_FILES = {
    "missing": (None, FileNotFoundError, r"missing\.npy"),
    "not_npy": (b"hello world, not a numpy file", ValueError, r"is not a \.npy file; for a raw binary file pass dtype"),
    "bad_header": (b"\x93NUMPY\x01\x00\xff\xffgarbage", ValueError, r"is not a valid \.npy file"),
}


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_bad_files_raise_clear_errors(tmp_path, kind):
    content, error, message = BAD_FILES[kind]
    path = tmp_path / ("missing.npy" if content is None else f"{kind}.npy")
    if content is not None:
        path.write_bytes(content)
    acc = descramble.Autocorrelation(3)
    with pytest.raises(error, match=message):
        acc.update_from(path)
    assert acc.count == 0


def test_truncated_npy_file(tmp_path, data):
    path = tmp_path / "t.npy"
    np.save(path, data)
    full = path.read_bytes()
    path.write_bytes(full[: len(full) - 100])
    with pytest.raises(ValueError, match=r"is truncated: a \(5003, 9\) float64 array needs \d+ bytes, the file has"):
        descramble.accumulate(path)


@pytest.mark.parametrize(
    "array, error, message",
    [
        (np.ones((3, 4, 5)), ValueError, r"holds an array of shape \(3, 4, 5\); expected \(rows, n_features\)"),
        (np.ones(5), ValueError, r"holds an array of shape \(5,\)"),
        (np.ones((3, 3), dtype=complex), TypeError, r"complex input"),
        (np.array([["a", "b"]]), TypeError, r"expected real numbers"),
    ],
)
def test_npy_files_of_the_wrong_kind(tmp_path, array, error, message):
    path = tmp_path / "wrong.npy"
    np.save(path, array)
    with pytest.raises(error, match=message):
        descramble.accumulate(path)


def test_raw_files_need_a_consistent_description(tmp_path):
    path = tmp_path / "x.raw"
    np.arange(10, dtype=np.float32).tofile(path)
    with pytest.raises(ValueError, match=r"has 40 bytes, not a whole number of rows of 3 float32 values"):
        descramble.accumulate(path, dtype=np.float32, n_features=3)
    with pytest.raises(TypeError, match="for a raw binary file pass dtype= and n_features="):
        descramble.accumulate(path, dtype=np.float32)
    with pytest.raises(TypeError, match="complex"):
        descramble.accumulate(path, dtype=np.complex64, n_features=1)
    with pytest.raises(TypeError, match="dtype= and n_features= describe raw binary files"):
        descramble.accumulate(np.ones((2, 2)), dtype=np.float32)


def test_file_of_the_wrong_width_leaves_the_accumulator_alone(tmp_path, data):
    path = tmp_path / "x.npy"
    np.save(path, data)
    acc = descramble.Autocorrelation(4).update(np.ones((3, 4)))
    before = state_of(acc)
    with pytest.raises(ValueError, match=r"expected 4 columns \(n_features\), got 9"):
        acc.update_from(path)
    with pytest.raises(TypeError, match="weights: not supported for file sources"):
        acc.update_from(path, weights=np.ones(5003))
    assert_same_state(state_of(acc), before)


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="peak RSS is read from /proc (Linux)")
def test_streaming_a_large_file_keeps_memory_bounded(tmp_path):
    """A subprocess streams a 384 MiB .npy file; its peak RSS grows by far less."""
    rows, n = 1_572_864, 64
    path = tmp_path / "big.npy"
    mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, n))
    step = 131_072
    for start in range(0, rows, step):
        mm[start : start + step] = np.random.default_rng(start).normal(size=(step, n)).astype(np.float32)
    mm.flush()
    del mm
    script = textwrap.dedent(
        """
        import sys, numpy as np, descramble
        def peak_rss_kib():  # VmHWM: unlike ru_maxrss it does not inherit the parent's peak
            return int(next(l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM")))
        path = sys.argv[1]
        baseline = peak_rss_kib()
        if sys.argv[2] == "stream":
            count = descramble.accumulate(path).count
        else:  # control: the NumPy way maps the whole file into memory
            x = np.load(path, mmap_mode="r")
            count = len(x)
            total = sum(c.astype(np.float64).T @ c.astype(np.float64) for c in np.array_split(x, 64))
        print(count, (peak_rss_kib() - baseline) // 1024)
        """
    )

    def growth(mode):
        out = subprocess.run([sys.executable, "-c", script, str(path), mode], capture_output=True, text=True,
                             check=True).stdout.split()
        assert int(out[0]) == rows
        return int(out[1])

    file_mib = os.path.getsize(path) / 2**20
    streamed, mapped = growth("stream"), growth("mmap")
    assert mapped > 0.8 * file_mib, f"control: the memory-mapped loop grew by {mapped} MiB only"
    # Two 32 MiB read buffers plus the workers' block buffers and n x n state.
    assert streamed < 120, f"peak RSS grew by {streamed} MiB while streaming a {file_mib:.0f} MiB file"


def _nan_at_2500():
    X = np.ones((3000, 4))
    X[2500, 1] = np.nan
    return X


@pytest.mark.parametrize("make", [
    lambda X, tmp: descramble.accumulate(X, chunk_rows=1000),
    lambda X, tmp: descramble.accumulate(iter([X[:1000], X[1000:2000], X[2000:]])),
    lambda X, tmp: descramble.hidden_autocorrelations([(np.ones((2, 4)), None, "tanh")], X, chunk_rows=700),
    lambda X, tmp: descramble.convergence(np.ones((2, 4)), X, sizes=[100, 2400]),
], ids=["array", "iterable", "hidden", "convergence"])
def test_non_finite_errors_name_the_row_of_the_stream(make, tmp_path):
    # The core sees chunks; the user should read the row of their data, not of the chunk.
    with pytest.raises(descramble.NonFiniteError, match=r"^data: row 2500 contains NaN \(column 1\)"):
        make(_nan_at_2500(), tmp_path)


def test_non_finite_errors_in_a_file_name_the_file_row(tmp_path):
    np.save(tmp_path / "x.npy", _nan_at_2500())
    acc = descramble.Autocorrelation(4)
    with pytest.raises(descramble.NonFiniteError, match=r"x.npy': row 2500 contains NaN \(column 1\)"):
        acc.update_from(str(tmp_path / "x.npy"), chunk_rows=1000)
    assert acc.count == 2000  # the chunks before it are kept


def test_weight_errors_name_the_entry_of_the_stream():
    with pytest.raises(ValueError, match=r"^weights: entry 2999 is -1"):
        descramble.accumulate(np.ones((3000, 4)), weights=np.r_[np.ones(2999), -1.0], chunk_rows=1000)


def _prefetch_threads():
    import threading

    return [t for t in threading.enumerate() if t.name == "descramble-prefetch"]


def _wait_no_prefetch_threads(timeout=10.0):
    import time

    deadline = time.monotonic() + timeout
    while _prefetch_threads() and time.monotonic() < deadline:
        time.sleep(0.02)
    return _prefetch_threads()


@pytest.mark.parametrize("ending", ["exhausted", "error"])
def test_prefetch_thread_ends_when_consumer_stops_with_a_full_queue(ending):
    # The producer fills the queue, then reaches the end (or an error) while the consumer has
    # stopped: its last put must not block forever (a leaked thread holding a chunk).
    import time

    from descramble.sources import prefetch

    assert _wait_no_prefetch_threads() == []

    def items():
        yield np.zeros(4)
        yield np.zeros(4)
        if ending == "error":
            raise ValueError("late")

    it = prefetch(items(), depth=1)
    next(it)
    time.sleep(0.3)  # the producer has queued the second item and is at its last put
    it.close()
    assert _wait_no_prefetch_threads() == []


def test_converted_file_source_closes_its_file_on_early_stop(tmp_path):
    # An abandoned read (the consumer stops after one chunk) closes the file promptly.
    path = tmp_path / "be.npy"
    np.save(path, np.arange(4000, dtype=">f8").reshape(1000, 4))
    src = descramble.sources.open_source(path, chunk_rows=10)
    assert type(src).__name__ == "ConvertedFileSource"
    fd_dir = f"/proc/{os.getpid()}/fd"
    if not os.path.isdir(fd_dir):
        pytest.skip("needs /proc")

    def open_on_path():
        n = 0
        for fd in os.listdir(fd_dir):
            with __import__("contextlib").suppress(OSError):
                n += os.readlink(os.path.join(fd_dir, fd)) == str(path)
        return n

    it = src.chunks()
    next(it)
    it.close()
    assert _wait_no_prefetch_threads() == []
    assert open_on_path() == 0


@pytest.mark.parametrize("dtype, reader", [("?", "FileSource"), ("<i2", "FileSource"), (">f8", "ConvertedFileSource"),
                                           ("<f2", "ConvertedFileSource")])
def test_which_npy_formats_the_core_reads_itself(tmp_path, dtype, reader):
    # The README lists the formats read in converted chunks (big-endian, float16, extended
    # precision); bool is read by the core itself (any nonzero byte is True).
    path = tmp_path / "x.npy"
    np.save(path, (np.arange(12).reshape(6, 2) % 3).astype(dtype))
    assert type(descramble.sources.open_source(path)).__name__ == reader
