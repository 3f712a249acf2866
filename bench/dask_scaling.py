#!/usr/bin/env python
"""Scaling of descramble.dask.accumulate on a LocalCluster: 1 vs 2 worker processes.

The data are an (N, n) float64 ``.npy`` file (default 2e6 x 256, 4.1 GB;
written once with random normal values, or given with ``--data``), read by
every side through the page cache:

  cluster, k workers   descramble.dask.accumulate of a dask array of the file
                       in row chunks (each task maps its own rows), on a
                       LocalCluster of k worker processes with 1 thread each
                       (threads=1 per task); k = 1 and 2
  in memory, t threads descramble.accumulate(np.load(path, mmap_mode="r"),
                       threads=t) in this process; t = 1 and 2

The sides alternate within every repeat (mem 1, mem 2, cluster 1, cluster 2,
then again), so that drifts in the load of a shared machine hit all of them;
the table shows the median of the repeats and their spread (max/min), rows/s
and the speedup of 2 over 1. Both clusters are started (and warmed up with one
untimed run each) before any timing. Every cluster result is checked against
the in-memory one (max relative difference of the covariance).

Usage: python bench/dask_scaling.py [--quick] [--json PATH] [--repeat N]
                                    [--rows N] [--features n] [--chunks K] [--data PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from typing import Any, Dict, List, Tuple

# The core (and NumPy) must run their best OpenBLAS kernel: these variables
# (set on some machines to work around old OpenBLAS bugs) slow them down.
# Drop them for this process and its children (the workers) only.
_BLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
if __name__ == "__main__" and any(v in os.environ for v in _BLAS_VARS):
    env = {k: v for k, v in os.environ.items() if k not in _BLAS_VARS}
    os.execve(sys.executable, [sys.executable, *sys.argv], env)

import numpy as np  # noqa: E402

import descramble  # noqa: E402


class NpyRows:
    """Array-like view of a ``.npy`` file for ``dask.array.from_array``.

    Pickles as its path only, so each task opens the file (memory-mapped) on
    its worker and reads just its rows; a ``np.memmap`` would be pickled with
    all of its data.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        mm = np.load(path, mmap_mode="r")
        self.shape, self.dtype, self.ndim = mm.shape, mm.dtype, mm.ndim

    def __getitem__(self, index: Any) -> np.ndarray:
        return np.load(self.path, mmap_mode="r")[index]


def write_data(path: str, rows: int, n: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float64, shape=(rows, n))
    step = max(1, (64 << 20) // (8 * n))
    for start in range(0, rows, step):
        stop = min(rows, start + step)
        out[start:stop] = rng.standard_normal((stop - start, n)) * 2.0 + 1.0
    out.flush()
    del out


def rel_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


def timed(fn) -> Tuple[float, Any]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2e5 x 256 in 20 chunks")
    parser.add_argument("--rows", type=int, help="rows N (default 2e6; --quick 2e5)")
    parser.add_argument("--features", type=int, default=256, help="features n (default 256)")
    parser.add_argument("--chunks", type=int, help="row chunks (default 32; --quick 20)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of every side (default 3)")
    parser.add_argument("--data", help="an existing (N, n) float64 .npy file to use instead")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()

    import logging

    import dask.array as da
    from distributed import Client, LocalCluster

    logging.getLogger("distributed").setLevel(logging.ERROR)  # no INFO lines between the timings

    import descramble.dask as ddask

    tmpdir = None
    if args.data:
        path = args.data
    else:
        rows = args.rows or (200_000 if args.quick else 2_000_000)
        tmpdir = tempfile.mkdtemp(prefix="descramble-dask-bench-")
        path = os.path.join(tmpdir, "x.npy")
        print(f"writing {rows} x {args.features} float64 ({rows * args.features * 8 / 2**30:.2f} GiB) to {path} ...")
        write_data(path, rows, args.features)
    source = NpyRows(path)
    rows, n = source.shape
    n_chunks = args.chunks or (20 if args.quick else 32)
    chunk_rows = -(-rows // n_chunks)
    x = da.from_array(source, chunks=(chunk_rows, n), asarray=True, name=f"npy-{os.path.basename(path)}")
    print(f"data: {rows} x {n} float64, {x.numblocks[0]} row chunks of {chunk_rows} rows "
          f"({chunk_rows * n * 8 / 2**20:.0f} MiB); {os.cpu_count()} cores; load average {os.getloadavg()}")

    load_before = os.getloadavg()
    clusters: Dict[int, Tuple[Any, Any]] = {}
    results: Dict[str, List[float]] = {}
    check: Dict[str, float] = {}
    try:
        for workers in (1, 2):
            with warnings.catch_warnings():  # the scheduler's HTTP server moves off a taken port 8787
                warnings.filterwarnings("ignore", message="Port .* is already in use", category=UserWarning)
                cluster = LocalCluster(
                    n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                    silence_logs=40,
                )
            client = Client(cluster, set_as_default=False)
            clusters[workers] = (cluster, client)
            t, _ = timed(lambda: ddask.accumulate(x, scheduler=client))  # warm-up: imports, page cache
            print(f"cluster of {workers} worker(s) up; warm-up run {t:.2f} s")
        mm = np.load(path, mmap_mode="r")
        reference = descramble.accumulate(mm, threads=1).covariance()

        sides = [("in memory, threads=1", None, 1), ("in memory, threads=2", None, 2),
                 ("cluster, 1 worker", 1, None), ("cluster, 2 workers", 2, None)]
        for name, *_ in sides:
            results[name] = []
        for r in range(args.repeat):
            for name, workers, threads in sides:
                if workers is None:
                    t, acc = timed(lambda: descramble.accumulate(mm, threads=threads))
                else:
                    client = clusters[workers][1]
                    t, acc = timed(lambda: ddask.accumulate(x, scheduler=client))
                assert acc.count == rows
                check[name] = max(check.get(name, 0.0), rel_diff(acc.covariance(), reference))
                results[name].append(t)
                print(f"  repeat {r + 1}: {name:<22} {t:7.2f} s")
    finally:
        for cluster, client in clusters.values():
            client.close()
            cluster.close()
        if tmpdir:
            shutil.rmtree(tmpdir, ignore_errors=True)
    load_after = os.getloadavg()

    med = {name: statistics.median(times) for name, times in results.items()}
    base = {"in memory": med["in memory, threads=1"], "cluster": med["cluster, 1 worker"]}
    print()
    print(f"{'side':<22} {'median s':>9} {'max/min':>8} {'rows/s':>12} {'speedup':>8} {'max rel diff':>13}")
    table = []
    for name, times in results.items():
        speedup = base[name.split(",")[0]] / med[name]
        row = {
            "side": name, "seconds": times, "median_seconds": med[name],
            "spread": max(times) / min(times), "rows_per_second": rows / med[name],
            "speedup_vs_1": speedup, "max_rel_diff_covariance": check[name],
        }
        table.append(row)
        print(f"{name:<22} {med[name]:9.2f} {row['spread']:8.2f} {row['rows_per_second']:12.3g} "
              f"{speedup:8.2f} {check[name]:13.1e}")
    print(f"\nload average before {load_before}, after {load_after} ({os.cpu_count()} cores)")

    if args.json:
        with open(args.json, "w") as f:
            json.dump({
                "rows": rows, "features": n, "row_chunks": int(x.numblocks[0]), "chunk_rows": chunk_rows,
                "repeat": args.repeat, "cores": os.cpu_count(), "machine": platform.platform(),
                "python": platform.python_version(), "descramble": descramble.__version__,
                "backend": descramble._core.product_backend(),
                "load_average_before": load_before, "load_average_after": load_after, "results": table,
            }, f, indent=2)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
