#!/usr/bin/env python
"""Benchmarks of the descramble core against the NumPy reference, in one run.

Each case times descramble and the NumPy reference on the same data, with
interleaved repetitions, and reports median times and their ratio
(NumPy time / descramble time: above 1 means descramble is faster). The
machines are shared and noisy, so only ratios from the same run mean much.

Usage: python bench/run.py [--quick] [--json PATH] [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from typing import Callable, Dict, List

# NumPy must run its best OpenBLAS kernel: these variables (set on some
# machines to work around old OpenBLAS bugs) slow it down. Drop them for this
# process only, before NumPy is imported, by re-executing ourselves.
_BLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
if any(v in os.environ for v in _BLAS_VARS):
    env = {k: v for k, v in os.environ.items() if k not in _BLAS_VARS}
    os.execve(sys.executable, [sys.executable, *sys.argv], env)

import numpy as np  # noqa: E402

import descramble  # noqa: E402


def interleaved(funcs: Dict[str, Callable[[], object]], repeat: int) -> Dict[str, float]:
    """Median wall time of each function, alternating between them every round."""
    times: Dict[str, List[float]] = {name: [] for name in funcs}
    for name, f in funcs.items():  # warm-up
        f()
    for _ in range(repeat):
        for name, f in funcs.items():
            t0 = time.perf_counter()
            f()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


def case_autocorrelation(rows: int, n: int, repeat: int) -> dict:
    x = np.random.default_rng(0).normal(size=(rows, n))
    t = interleaved(
        {
            "descramble": lambda: descramble.Autocorrelation(n).update(x).autocorrelation(),
            "numpy": lambda: (x.T @ x) / rows,
        },
        repeat,
    )
    return {"kernel": "autocorrelation", "reference": "X.T @ X", "shape": [rows, n], "dtype": "float64", **t}


def case_cov(rows: int, n: int, repeat: int) -> dict:
    m = np.random.default_rng(1).normal(size=(n, rows))
    t = interleaved({"descramble": lambda: descramble.cov(m), "numpy": lambda: np.cov(m)}, repeat)
    return {"kernel": "cov", "reference": "np.cov", "shape": [n, rows], "dtype": "float64", **t}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, few repetitions")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--repeat", type=int, default=None, help="timed repetitions per side")
    args = parser.parse_args()
    repeat = args.repeat or (3 if args.quick else 5)
    rows = 20_000 if args.quick else 200_000
    widths = (64, 256) if args.quick else (64, 256, 1024)

    results = []
    for n in widths:
        results.append(case_autocorrelation(rows, n, repeat))
    for n in widths[:2]:
        results.append(case_cov(rows, n, repeat))

    header = f"{'kernel':<16}{'shape':>16}{'dtype':>9}{'descramble s':>14}{'numpy s':>10}{'ratio':>8}  reference"
    print(header)
    print("-" * len(header))
    for r in results:
        r["ratio"] = r["numpy"] / r["descramble"]
        shape = "x".join(map(str, r["shape"]))
        print(
            f"{r['kernel']:<16}{shape:>16}{r['dtype']:>9}{r['descramble']:>14.4f}{r['numpy']:>10.4f}"
            f"{r['ratio']:>8.2f}  {r['reference']}"
        )
    machine = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "descramble": descramble.__version__,
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "processor": platform.processor(),
    }
    print(f"\n{machine}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine, "results": results}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
