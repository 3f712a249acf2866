"""Fuzz the .npy (and raw) file sources with a seeded header-and-body mutator.

Every case is a small valid .npy file (random dtype, byte order, memory order,
shape and format version) put through one to three mutations: bit flips in the
header or the body, truncations, edits of the header text (shape, dtype,
fortran_order), of the version, the magic string or the header length field,
and appended garbage. Each case is read by ``descramble.autocorrelation`` (the
core's reader, or the converting reader) and by ``open_source(...).chunks()``
(the Python reader); one case in five is read as a raw file instead.

Expected outcome of every case: the right result (equal to ``numpy.load`` and
the NumPy formula when NumPy reads the file and the data are finite), or a
ValueError, TypeError or OSError (NonFiniteError included), or the core's
OverflowError when NumPy's sums overflow too. Anything else is a finding:
another exception, a wrong result, a crash (a signal) or a hang.

Cases run in worker subprocesses, many per worker; a worker that dies or hangs
names the case it was running, and the run goes on with the next case in a new
worker. Case ``i`` of seed ``S`` is reproducible alone: ``--seed S --start i
--cases 1 --verbose``.

Usage::

    python tests/fuzz/npy.py --cases 5000 [--seed 0] [--batch 200] [--timeout 60]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional, Tuple

import numpy as np

DTYPES = ["<f8", ">f8", "<f4", ">f4", "<f2", ">f2", "<i2", ">i4", "<i8", "|u1", "|i1", "|b1", "<u2",
          np.dtype(np.longdouble).str]
HOSTILE_DESCRS = ["<c16", "|O", "<U3", "|V8", "|S4", ">f16", "<f3", "f8", "<m8[s]", "<M8[D]",
                  "[('a', '<f8')]", "('<f8', (2,))", "''", "12", "None"]
HOSTILE_SHAPES = ["()", "(3,)", "(2, 3, 4)", "(-1, 3)", "(3, -1)", "(2**62, 4)", "(4611686018427387904, 4)",
                  "(9223372036854775807, 2)", "(18446744073709551617, 1)", "(0, 3)", "(3, 0)", "(0, 0)",
                  "(0, 1099511627776)", "(1, 1099511627776)", "(3.5, 2)", "('a', 2)", "(True, 2)", "[3, 2]",
                  "(3, 2", "(1, 2**40)", "(100000000, 1)"]
HOSTILE_ORDERS = ["True", "False", "1", "0", "'x'", "None", "()"]

ALLOWED = (ValueError, TypeError, OSError)


# -- case generation -----------------------------------------------------------------------------

def make_case(seed: int, index: int) -> Tuple[bytes, Optional[Tuple[str, int]], List[str]]:
    """The bytes of case ``index``, the raw-file description (dtype, n_features) or None
    for a .npy read, and the list of mutations applied."""
    rng = np.random.default_rng([seed, index])
    dtype = np.dtype(DTYPES[rng.integers(len(DTYPES))])
    rows, cols = int(rng.integers(0, 40)), int(rng.integers(1, 6))
    if dtype.kind == "b":
        x = rng.random((rows, cols)) < 0.5
    elif dtype.kind in "iu":
        info = np.iinfo(dtype)
        x = rng.integers(max(info.min, -1000), min(info.max, 1000), size=(rows, cols), endpoint=True)
    else:
        x = rng.normal(size=(rows, cols)) * 10.0 ** rng.integers(-3, 4)
    x = np.asarray(x.astype(dtype), order="F" if rng.random() < 0.3 else "C")
    version = [(1, 0), (2, 0), (3, 0)][rng.integers(3)]
    import io
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, x, version=version)
    data = bytearray(buffer.getvalue())
    header_end = data.index(b"\n") + 1 if b"\n" in data else 64
    mutations: List[str] = []
    for _ in range(1 if rng.random() < 0.6 else int(rng.integers(2, 4))):
        kind = MUTATORS[rng.integers(len(MUTATORS))]
        data, header_end, what = kind(rng, data, header_end)
        mutations.append(what)
    raw = None
    if rng.random() < 0.2:
        raw_dtype = DTYPES[rng.integers(len(DTYPES))] if rng.random() < 0.9 else HOSTILE_DESCRS[rng.integers(3)]
        raw = (str(raw_dtype), int(rng.integers(1, 8)))
        mutations.append(f"read as raw {raw}")
    return bytes(data), raw, mutations


def _flip_header(rng, data, end):
    if not data:
        return data, end, "flip (empty)"
    pos = int(rng.integers(0, max(1, min(end, len(data)))))
    bit = int(rng.integers(8))
    data[pos] ^= 1 << bit
    return data, end, f"flip header byte {pos} bit {bit}"


def _flip_body(rng, data, end):
    if len(data) <= end:
        return _flip_header(rng, data, end)
    pos = int(rng.integers(end, len(data)))
    bit = int(rng.integers(8))
    data[pos] ^= 1 << bit
    return data, end, f"flip body byte {pos} bit {bit}"


def _truncate(rng, data, end):
    cut = int(rng.integers(0, len(data) + 1))
    return data[:cut], min(end, cut), f"truncate to {cut} bytes"


def _append(rng, data, end):
    extra = bytes(rng.integers(0, 256, size=int(rng.integers(1, 100)), dtype=np.uint8))
    return data + extra, end, f"append {len(extra)} bytes"


def _edit_header(rng, data, end, key, choices):
    header = bytes(data[:end])
    start = header.find(f"'{key}':".encode())
    if start < 0:
        return data, end, f"edit {key} (absent)"
    start += len(key) + 3
    # the value runs to the next ", '" or the closing brace
    stop = min(i for i in (header.find(b", '", start), header.rfind(b"}")) if i >= 0) if b"}" in header else end
    value = choices[rng.integers(len(choices))]
    new = header[:start] + b" " + value.encode("latin1") + header[stop:]
    # keep the length field consistent half of the time (else the header is misread)
    if rng.random() < 0.5 and len(data) >= 10:
        new = _fix_length(new)
    return bytearray(new) + data[end:], len(new), f"{key} := {value}"


def _fix_length(header: bytes) -> bytes:
    major = header[6]
    width = 2 if major == 1 else 4
    body = header[8 + width:]
    return header[:8] + (len(body) % (1 << (8 * width))).to_bytes(width, "little") + body


def _shape(rng, data, end):
    return _edit_header(rng, data, end, "shape", HOSTILE_SHAPES)


def _descr(rng, data, end):
    choices = HOSTILE_DESCRS + [f"'{d}'" for d in DTYPES]
    choices = [c if c.startswith(("'", "[", "(", "1", "N")) else f"'{c}'" for c in choices]
    return _edit_header(rng, data, end, "descr", choices)


def _order(rng, data, end):
    return _edit_header(rng, data, end, "fortran_order", HOSTILE_ORDERS)


def _version(rng, data, end):
    if len(data) < 8:
        return data, end, "version (short)"
    major, minor = [(2, 5), (0, 0), (4, 0), (1, 1), (255, 255), (3, 0), (2, 0), (1, 0)][rng.integers(8)]
    data[6], data[7] = major, minor
    return data, end, f"version := ({major}, {minor})"


def _magic(rng, data, end):
    if len(data) < 6:
        return data, end, "magic (short)"
    pos = int(rng.integers(0, 6))
    data[pos] = int(rng.integers(0, 256))
    return data, end, f"magic byte {pos} := {data[pos]}"


def _length(rng, data, end):
    if len(data) < 10:
        return data, end, "length (short)"
    width = 2 if data[6] == 1 else 4
    value = int(rng.choice([0, 1, 9, end - 10, end - 8, end, 10000, 65535, (1 << (8 * width)) - 1,
                            int(rng.integers(0, 1 << (8 * width)))])) % (1 << (8 * width))
    data[8 : 8 + width] = value.to_bytes(width, "little")
    return data, end, f"header length := {value}"


def _header_text(rng, data, end):
    """Insert or delete a character of the header text (brackets, quotes, commas...)."""
    if end <= 12:
        return _flip_header(rng, data, end)
    pos = int(rng.integers(10, end))
    if rng.random() < 0.5:
        char = bytes([b"(){}[],:'\"\\ 0-e\n\x00\xff"[rng.integers(18)]])
        return data[:pos] + char + data[pos:], end + 1, f"insert {char!r} at {pos}"
    return data[:pos] + data[pos + 1:], end - 1, f"delete byte {pos}"


MUTATORS = [_flip_header, _flip_body, _truncate, _append, _shape, _descr, _order, _version, _magic, _length,
            _header_text, _shape, _descr, _flip_body]


# -- running one case ----------------------------------------------------------------------------

def expected_rows(path: str, raw: Optional[Tuple[str, int]]) -> Optional[np.ndarray]:
    """The rows as NumPy reads them (float64), or None when NumPy does not read
    them as a 2-D real array (then only an allowed error or some result is expected)."""
    import warnings
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if raw is None:
                x = np.load(path, allow_pickle=False)
                with open(path, "rb") as handle:
                    version = np.lib.format.read_magic(handle)
                    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                        np.lib.format.read_array_header_2_0
                    if read(handle)[2].subdtype is not None:
                        return None  # a subarray dtype: NumPy adds its dimensions to the shape
            else:
                dtype, n = np.dtype(raw[0]), raw[1]
                size = os.path.getsize(path)
                if dtype.itemsize == 0 or size % (n * dtype.itemsize):
                    return None
                x = np.fromfile(path, dtype=dtype).reshape(-1, n)
    except Exception:
        return None
    if not isinstance(x, np.ndarray) or x.ndim != 2 or x.dtype.kind not in "biuf" or x.shape[1] == 0:
        return None
    return x.astype(np.float64)


def run_case(seed: int, index: int, folder: str) -> Tuple[str, str]:
    """``(outcome, detail)``: outcome is "ok", "refused" (an allowed error) or "FINDING"."""
    import descramble
    from descramble import sources

    data, raw, mutations = make_case(seed, index)
    path = os.path.join(folder, f"case{index}.npy")
    with open(path, "wb") as handle:
        handle.write(data)
    kwargs = {} if raw is None else {"dtype": raw[0], "n_features": raw[1]}
    expected = expected_rows(path, raw)
    outcomes = []
    for reader in ("autocorrelation", "chunks"):
        try:
            if reader == "autocorrelation":
                got = descramble.autocorrelation(path, chunk_rows=7, **kwargs)
            else:
                chunks = [c for c, _ in sources.open_source(path, chunk_rows=7, **kwargs).chunks()]
                got = (np.concatenate(chunks).astype(np.float64) if chunks
                       else np.zeros((0, expected.shape[1] if expected is not None else 0)))
        except ALLOWED as exc:
            if expected is not None and len(expected) and np.isfinite(expected).all() and reader == "chunks":
                return "FINDING", f"{reader}: refused a file NumPy reads: {type(exc).__name__}: {exc}"
            if (expected is not None and len(expected) and np.isfinite(expected).all()
                    and np.isfinite(expected.T @ expected).all()):
                return "FINDING", f"{reader}: refused a file NumPy reads: {type(exc).__name__}: {exc}"
            outcomes.append(f"{type(exc).__name__}")
            continue
        except OverflowError as exc:  # the core refuses sums of squares beyond float64
            with np.errstate(all="ignore"):
                overflows = expected is not None and not np.isfinite(expected.T @ expected).all()
            if not overflows:
                return "FINDING", f"{reader}: OverflowError on data NumPy sums: {exc} ({'; '.join(mutations)})"
            outcomes.append("OverflowError (NumPy overflows too)")
            continue
        except BaseException as exc:  # noqa: BLE001 - anything else is a finding
            return "FINDING", f"{reader}: {type(exc).__name__}: {exc} ({'; '.join(mutations)})"
        if expected is None:
            outcomes.append("result (NumPy refuses the file)")
            continue
        if reader == "chunks":
            if got.shape != expected.shape or not np.array_equal(got, expected, equal_nan=True):
                return "FINDING", f"chunks differ from numpy.load ({'; '.join(mutations)})"
            outcomes.append("chunks equal")
            continue
        with np.errstate(all="ignore"):
            want = expected.T @ expected / len(expected)
            scale = np.abs(expected).T @ np.abs(expected) / len(expected)
        if not np.isfinite(want).all():
            outcomes.append("result (NumPy overflows)")
            continue
        # Cauchy-Schwarz scale: the core centres chunks, its error is relative to sqrt(A_ii A_jj).
        d = np.sqrt(np.diag(scale))
        if got.shape != want.shape or not np.all(np.abs(got - want) <= 1e-9 * np.outer(d, d) + 1e-300):
            return "FINDING", f"wrong autocorrelation ({'; '.join(mutations)})"
        outcomes.append("equal")
    os.unlink(path)
    refused = all(o[0].isupper() and "Error" in o for o in outcomes)
    return ("refused" if refused else "ok"), ", ".join(outcomes)


def worker(seed: int, start: int, stop: int, verbose: bool, folder: Optional[str] = None) -> None:
    """Run cases ``start..stop-1`` in ``folder``, printing ``START i`` before and ``DONE i outcome`` after each."""
    with (contextlib.nullcontext(folder) if folder else tempfile.TemporaryDirectory(prefix="descramble-fuzz-")) \
            as folder:
        # Self-test of the driver: "crash:I" or "hang:I" makes case I kill or stall the worker.
        selftest = os.environ.get("DESCRAMBLE_FUZZ_SELFTEST", ":").split(":")
        for index in range(start, stop):
            print(f"START {index}", flush=True)
            if selftest[1] == str(index):
                if selftest[0] == "crash":
                    os.kill(os.getpid(), signal.SIGSEGV)
                time.sleep(3600)
            outcome, detail = run_case(seed, index, folder)
            print(f"DONE {index} {outcome} {detail if (verbose or outcome == 'FINDING') else ''}".rstrip(),
                  flush=True)


# -- driving workers -----------------------------------------------------------------------------

def run(seed: int, cases: int, start: int = 0, batch: int = 200, timeout: float = 60.0,
        verbose: bool = False, env: Optional[Dict[str, str]] = None, per_case: float = 0.5) -> Dict[str, object]:
    """Run ``cases`` cases from ``start`` in worker subprocesses of ``batch`` cases.

    Returns counts by outcome and the findings as ``(case, description)``:
    crashes (signals), hangs (no progress for ``timeout`` seconds), and the
    workers' FINDING lines. A worker's deadline is ``timeout + per_case * cases``.
    """
    counts: Dict[str, int] = {"ok": 0, "refused": 0}
    findings: List[Tuple[int, str]] = []
    next_case, stop = start, start + cases
    with tempfile.TemporaryDirectory(prefix="descramble-fuzz-") as folder:  # removed even if a worker dies
        while next_case < stop:
            next_case = _run_batch(seed, next_case, min(stop, next_case + batch), folder, timeout, per_case,
                                   verbose, env, counts, findings)
    return {"counts": counts, "findings": findings}


def _run_batch(seed, next_case, last, folder, timeout, per_case, verbose, env, counts, findings) -> int:
    """One worker subprocess for cases ``next_case..last-1``; returns the next case to run."""
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--folder", folder, "--seed", str(seed),
           "--start", str(next_case), "--cases", str(last - next_case)] + (["--verbose"] if verbose else [])
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        out, err = proc.communicate(timeout=timeout + per_case * (last - next_case))
        hung = False
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        hung = True
    running = None
    for line in out.splitlines():
        parts = line.split(" ", 3)
        if parts[0] == "START":
            running = int(parts[1])
        elif parts[0] == "DONE":
            running = None
            index, outcome = int(parts[1]), parts[2]
            counts[outcome] = counts.get(outcome, 0) + 1
            next_case = index + 1
            if outcome == "FINDING":
                findings.append((index, parts[3] if len(parts) > 3 else ""))
            if verbose:
                print(line)
    if running is not None or hung or proc.returncode != 0:
        culprit = running if running is not None else next_case
        what = ("hang" if hung else f"crash (exit status {proc.returncode})")
        findings.append((culprit, f"{what}: {err.strip().splitlines()[-1] if err.strip() else ''}"))
        counts["FINDING"] = counts.get("FINDING", 0) + 1
        next_case = culprit + 1
    return next_case


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--batch", type=int, default=200, help="cases per worker subprocess")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per worker, plus 0.5 s per case")
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.seed, args.start, args.start + args.cases, args.verbose, args.folder)
        return 0
    began = time.time()
    result = run(args.seed, args.cases, args.start, args.batch, args.timeout, args.verbose)
    counts, findings = result["counts"], result["findings"]
    print(f"{args.cases} cases (seed {args.seed}, from {args.start}) in {time.time() - began:.0f} s: "
          + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    for index, what in findings:
        print(f"  case {index}: {what}")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
