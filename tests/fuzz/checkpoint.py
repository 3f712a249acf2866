"""Fuzz ``Autocorrelation.load`` with mutated checkpoints.

Usage::

    PYTHONPATH=python python tests/fuzz/checkpoint.py --cases 5000 --seed 1

Each case is a checkpoint written by ``save`` (or ``np.savez_compressed``)
and then damaged by a seeded mutator: bit flips, truncation, member edits
(shapes, dtypes, NaN / huge / negative values, extra, missing and duplicate
members) and zip structure damage (header fields, sizes, compression
method, central directory). The expected outcome of every case: the file
loads to a valid accumulator (equivalent to the original when the mutation
changed nothing it reads), or ``load`` raises ValueError, TypeError or
OSError. Anything else (another exception, a crash, a hang, memory
blowing past ``--memory-mib``) is a finding: printed, and the exit status
is 1. Cases are reproducible from ``--seed`` and the case number
(``--start``). ``--json`` prints one line per case for a driver.

Not collected by pytest (no ``test_`` prefix); ``tests/test_fuzz_checkpoint.py``
runs a few hundred cases of it in subprocesses with a timeout.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import struct
import sys
import tempfile
import time
import traceback
import zipfile

import numpy as np

import warnings as _warnings

_warnings.simplefilter("ignore", RuntimeWarning)  # the mutator casts huge values on purpose

import descramble
from descramble.accumulator import Autocorrelation

ALLOWED = (ValueError, TypeError, OSError)


def originals():
    """The checkpoints mutated: small, weighted, mixed precision, empty; stored and deflated."""
    rng = np.random.default_rng(0)
    accs = [
        Autocorrelation(3).update(rng.normal(size=(20, 3)) + 1e6),
        Autocorrelation(5, precision="mixed").update(rng.normal(size=(40, 5)), weights=rng.uniform(size=40)),
        Autocorrelation(1),
        Autocorrelation(4, threads=2).update(rng.normal(size=(7, 4))),
    ]
    out = []
    for acc in accs:
        state = acc._state()
        stored, deflated = io.BytesIO(), io.BytesIO()
        np.savez(stored, **state)
        np.savez_compressed(deflated, **state)
        out += [(acc, state, stored.getvalue()), (acc, state, deflated.getvalue())]
    return out


def _archive(members, compress):
    """A zip of ``members`` ((name, npy bytes) pairs, duplicates allowed)."""
    buf = io.BytesIO()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED) as z:
            for name, data in members:
                z.writestr(name, data)
    return buf.getvalue()


def _npy(value):
    buf = io.BytesIO()
    np.save(buf, value, allow_pickle=True)
    return buf.getvalue()


_VALUES = [
    np.nan, np.inf, -np.inf, -1, 0, 1, 2**62, 2**63 - 1, -(2**63), 1e308, -1e-300, 10**6, 2**31,
]
_DTYPES = ["float32", "float16", "int8", "uint64", "complex128", "bool", ">f8", "U3", "S3", "O"]


def _edit_member(rng, state):
    """A state dict with one member edited: value, dtype, shape, or the set of members."""
    state = {k: np.asarray(v) for k, v in state.items()}
    key = rng.choice(sorted(state))
    kind = rng.choice(["value", "dtype", "shape", "extra", "missing", "duplicate", "header"])
    members = None
    if kind == "value":
        v = state[key].copy() if state[key].dtype.kind in "iuf" else state[key]
        if v.dtype.kind in "iuf":
            v = v.astype(np.float64) if isinstance(rng.choice(_VALUES), float) and v.dtype.kind == "f" else v
            flat = v.reshape(-1)
            if flat.size:
                value = rng.choice(_VALUES)
                try:
                    flat[rng.randrange(flat.size)] = value
                except (OverflowError, ValueError):
                    v = np.asarray(value)
            state[key] = v
        else:
            state[key] = np.asarray(rng.choice(["", "x" * 300, "float64", "mixed", "descramble.Other"]))
    elif kind == "dtype":
        dtype = rng.choice(_DTYPES)
        try:
            state[key] = state[key].astype(dtype)
        except (ValueError, TypeError, OverflowError):
            state[key] = np.zeros(state[key].shape, dtype=dtype)
    elif kind == "shape":
        v = state[key]
        shape = rng.choice([(), (0,), (1,), (v.size + 1,), (max(v.size - 1, 0),), (2, 2), (v.size, 1)])
        state[key] = np.resize(v, shape) if v.size else np.zeros(shape, dtype=v.dtype)
    elif kind == "extra":
        name = rng.choice(["extra", "scatter", "shift2", "../evil", "count.npy"])
        state[name] = np.zeros(rng.choice([1, 10, 1000]))
    elif kind == "missing":
        del state[key]
    else:
        members = [(f"{k}.npy", _npy(v)) for k, v in state.items()]
        if kind == "duplicate":
            members.append((f"{key}.npy", _npy(np.asarray(rng.choice(_VALUES)))))
        else:  # a hand-written .npy header
            shape = rng.choice(["(10**12,)", "(-1,)", "()", "(2**62, 2**62)", "'x'", "(1,)*64"])
            descr = rng.choice(["'<f8'", "'|O'", "'<U1000000'", "'<V8'", "[('a','<f8')]", "'bogus'"])
            header = "{'descr': %s, 'fortran_order': False, 'shape': %s, }" % (descr, shape)
            header = header.ljust(118) + "\n"
            raw = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1") + b"\0" * 64
            members = [(n, raw if n == f"{key}.npy" else d) for n, d in members]
    if members is None:
        members = [(f"{k}.npy", _npy(v)) for k, v in state.items()]
    return _archive(members, rng.random() < 0.5), f"member {kind} {key}"


def _zip_damage(rng, data):
    """Damage a zip structure field: sizes, offsets, compression method, signatures, counts."""
    data = bytearray(data)
    # (signature, {offset: width}): local header, central directory entry, end of central directory
    layouts = ((b"PK\x03\x04", {8: 2, 14: 4, 18: 4, 22: 4, 26: 2, 28: 2}),
               (b"PK\x01\x02", {10: 2, 16: 4, 20: 4, 24: 4, 28: 2, 30: 2, 42: 4}),
               (b"PK\x05\x06", {8: 2, 10: 2, 12: 4, 16: 4, 20: 2}))
    targets = []
    for sig, fields in layouts:
        start = 0
        while (i := data.find(sig, start)) >= 0:
            targets += [(i, off, width) for off, width in fields.items()]
            start = i + 1
    if not targets:
        return bytes(data), "zip no-structure"
    base, off, width = rng.choice(targets)
    value = rng.choice([0, 1, 0xFFFF, 0xFFFFFFFF, rng.randrange(1 << 16), len(data), 2**31])
    value &= (1 << (8 * width)) - 1
    data[base + off:base + off + width] = value.to_bytes(width, "little")
    return bytes(data), f"zip field {data[base:base + 4]!r}+{off}={value}"


def mutate(case, seed, bases):
    """Case ``case`` of seed ``seed``: (original accumulator, mutated bytes, description, unchanged?)."""
    rng = random.Random(f"{seed}:{case}")
    acc, state, data = bases[rng.randrange(len(bases))]
    kind = rng.choice(["bitflip", "truncate", "member", "member", "zip", "append", "none"])
    if kind == "bitflip":
        b = bytearray(data)
        flips = rng.choice([1, 1, 2, 8, 64])
        for _ in range(flips):
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
        return acc, bytes(b), f"bitflip x{flips}", False
    if kind == "truncate":
        n = rng.randrange(len(data))
        return acc, data[:n], f"truncate {n}/{len(data)}", False
    if kind == "member":
        out, what = _edit_member(rng, state)
        return acc, out, what, False
    if kind == "zip":
        out, what = _zip_damage(rng, data)
        return acc, out, what, False
    if kind == "append":
        extra = rng.choice([b"\0" * 100, b"PK\x05\x06" + b"\0" * 18, os.urandom(50)])
        return acc, data + extra, f"append {len(extra)}", False
    return acc, data, "none", True


def check_case(case, seed, bases, directory):
    """Run one case; return (outcome, description). outcome: 'loaded', 'refused' or 'FINDING: ...'."""
    acc, data, what, unchanged = mutate(case, seed, bases)
    path = os.path.join(directory, f"case{case}.npz")
    with open(path, "wb") as f:
        f.write(data)
    try:
        try:
            loaded = Autocorrelation.load(path)
        except ALLOWED as exc:
            if unchanged:
                return f"FINDING: an unchanged checkpoint was refused: {exc!r}", what
            return "refused", what
        except Exception as exc:  # noqa: BLE001 - the finding
            return f"FINDING: {type(exc).__name__}: {exc}\n{traceback.format_exc()}", what
        # A loaded accumulator must be valid and usable.
        if not (loaded.n_features >= 1 and loaded.count >= 0 and np.isfinite(loaded.weight_sum)):
            return "FINDING: loaded an invalid accumulator", what
        if loaded.threads is not None:
            return f"FINDING: loaded with stored threads {loaded.threads}", what
        if loaded.count:
            np.asarray(loaded.scatter)
        again = io.BytesIO()
        np.savez(again, **loaded._state())
        if unchanged or data == bases_bytes(bases, acc):
            if not np.array_equal(loaded.scatter, acc.scatter) or loaded.count != acc.count:
                return "FINDING: an unchanged checkpoint loaded differently", what
        return "loaded", what
    finally:
        os.unlink(path)


def bases_bytes(bases, acc):
    return next(data for a, _, data in bases if a is acc)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--start", type=int, default=0, help="first case number")
    parser.add_argument("--json", action="store_true", help="one JSON line per case (for a driver)")
    parser.add_argument("--memory-mib", type=int, default=2048, help="address-space limit (POSIX)")
    parser.add_argument("--folder", help="existing scratch folder for the case files (a driver's: nothing "
                                         "is left in /tmp if this process is killed); default: a temporary one")
    args = parser.parse_args(argv)
    try:
        import resource

        limit = args.memory_mib << 20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError):
        pass
    bases = originals()
    counts = {"loaded": 0, "refused": 0, "finding": 0}
    start = time.perf_counter()
    scratch = (contextlib.nullcontext(args.folder) if args.folder
               else tempfile.TemporaryDirectory(prefix="descramble-fuzz-"))
    with scratch as directory:
        for case in range(args.start, args.start + args.cases):
            if args.json:
                print(json.dumps({"start": case}), flush=True)
            outcome, what = check_case(case, args.seed, bases, directory)
            key = "finding" if outcome.startswith("FINDING") else outcome
            counts[key] += 1
            if args.json:
                print(json.dumps({"case": case, "outcome": key, "what": what, "detail": outcome}), flush=True)
            elif key == "finding":
                print(f"case {case} (seed {args.seed}, {what}): {outcome}", flush=True)
    if not args.json:
        print(f"{args.cases} cases, seed {args.seed}: {counts['loaded']} loaded, {counts['refused']} refused, "
              f"{counts['finding']} findings in {time.perf_counter() - start:.1f} s "
              f"(descramble {descramble.__version__})")
    return 1 if counts["finding"] else 0


if __name__ == "__main__":
    sys.exit(main())
