"""Benchmarks of the descramble core against the NumPy reference, in one run.

Every case runs each side (descramble, NumPy) in its own fresh process, so
that each side's peak RSS is its own; the sides alternate (A, B, A, B, ...)
and the table shows median times and their ratio, NumPy time / descramble
time: above 1 means descramble is faster. The machines are shared and noisy,
so only ratios from the same run mean much.

Cases (N = rows, n = features):
  autocorrelation  float64 in memory       vs  X.T @ X / N
  mixed            float32, precision=mixed vs  X.astype(float64), then X.T @ X / N
  cov              float64 in memory       vs  np.cov
  stream           a float32 .npy file     vs  the NumPy chunked loop over np.load(mmap_mode="r")
                   (>= 2 GiB; 256 MiB with --quick), float64 and mixed precision
  spectral         eigh, svd (n = 1024)    vs  numpy.linalg.eigh, numpy.linalg.svd
                   svd(k = n/16, n = 2048) vs  the full numpy.linalg.svd
  descrambler      closed form (m = 32..256) vs reference.descramble_iterative (SciPy L-BFGS)
                   (these run in this process: their memory is not the point)
  roofline         the streaming product for n = 16..1024 (--widths) against the machine's
                   limits measured in the same run: GFLOP/s = N n^2 / t (the lower triangle's
                   multiply-adds), peak = NumPy's X.T @ X rate on 50,000 x 2048 (float32 for
                   mixed), bandwidth = NumPy's X @ v over a 200 MB array, roofline =
                   min(peak, bandwidth x n / (bytes per value)); float64 on float64 data,
                   mixed on float32 data; ratio = NumPy time / descramble time (in process)

Usage: descramble bench [--quick]  (or python bench/run.py, python -m descramble.cli.benchmarks)
       [--quick] [--json PATH] [--repeat N] [--only KERNEL ...] [--widths N ...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Dict, List, Optional

import numpy as np

import descramble
from .. import reference
from .main import positive_int

# NumPy must run its best OpenBLAS kernel: these variables (set on some
# machines to work around old OpenBLAS bugs) slow it down. main() drops them
# by running the command again in a child process without them (NumPy reads
# them when it loads), for that child only.
_BLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
_MODULE = [sys.executable, "-m", "descramble.cli.benchmarks"]




def _without_blas_vars(argv: List[str]) -> int:
    """Runs the (already checked) benchmark command in a child process without the
    variables of ``_BLAS_VARS`` (NumPy reads them when it loads, so this process cannot
    drop them), passing its output through; its exit status. A child rather than
    ``os.execve``: a caller's process (a test, a notebook) must go on afterwards. The
    child's pipes are closed and the child waited for on every way out; interrupted
    (Ctrl-C) or failing to pass its output on, this process stops the child first."""
    env = {k: v for k, v in os.environ.items() if k not in _BLAS_VARS}
    env["PYTHONUNBUFFERED"] = "1"  # its tables and progress lines reach us in the order it writes them

    def forward(source: Any, sink: Any) -> None:
        for line in source:
            sink.write(line)
            sink.flush()

    with subprocess.Popen([*_MODULE, *argv], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, bufsize=1) as proc:  # on leaving: pipes closed, child waited for
        errors = threading.Thread(target=forward, args=(proc.stderr, sys.stderr), daemon=True)
        errors.start()
        try:
            forward(proc.stdout, sys.stdout)
        except BaseException:
            proc.kill()  # its stderr then ends too (the bench's own children have pipes of their own)
            raise
        finally:
            errors.join()
            proc.wait()  # (Popen's exit waits only 0.25 s after a KeyboardInterrupt)
        return proc.returncode


# -- the child side: one timed run of one side of one case ------------------------------


def _peak_rss_mib() -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _data(rows: int, n: int, dtype: str, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(size=(rows, n), dtype=np.float32).astype(dtype) + 1.0


def _child(spec: Dict[str, Any]) -> Dict[str, Any]:
    kernel, side = spec["kernel"], spec["side"]
    rows, n = spec["rows"], spec["n"]
    result: Dict[str, Any] = {}
    if kernel == "stream":
        path = spec["path"]
        chunk_rows = max(1, (32 << 20) // (n * 4))
        if side == "numpy":
            def run():
                x = np.load(path, mmap_mode="r")
                return reference.chunked_autocorrelation(x[s : s + chunk_rows] for s in range(0, len(x), chunk_rows))
        else:
            def run():
                return descramble.autocorrelation(path, precision=spec["precision"])
    else:
        x = _data(rows, n, "float32" if kernel == "mixed" else "float64")
        if kernel == "autocorrelation":
            run = (lambda: descramble.autocorrelation(x)) if side == "descramble" else (lambda: x.T @ x / rows)
        elif kernel == "mixed":
            if side == "descramble":
                run = lambda: descramble.autocorrelation(x, precision="mixed")  # noqa: E731
            else:
                def run():
                    y = x.astype(np.float64)
                    return y.T @ y / rows
        elif kernel == "cov":
            m = np.ascontiguousarray(x.T)  # variables as rows, as np.cov users hold them
            del x
            run = (lambda: descramble.cov(m)) if side == "descramble" else (lambda: np.cov(m))
        else:
            raise ValueError(kernel)
    if spec.get("warmup", True) and kernel != "stream":
        run()
    t0 = time.perf_counter()
    out = run()
    result["seconds"] = time.perf_counter() - t0
    result["peak_rss_mib"] = _peak_rss_mib()
    if side == "descramble" and spec["precision"] == "mixed":
        # Relative error of the mixed-precision result against float64.
        exact = descramble.autocorrelation(spec["path"] if kernel == "stream" else x)
        result["rel_error"] = float(np.abs(out - exact).max() / np.abs(exact).max())
    return result


# -- the parent: cases, alternation, table -----------------------------------------------


def _run_child(spec: Dict[str, Any]) -> Dict[str, Any]:
    proc = subprocess.run(
        [*_MODULE, "--child", json.dumps(spec)], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark child failed for {spec}:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _case(spec: Dict[str, Any], repeat: int) -> Dict[str, Any]:
    runs: Dict[str, List[Dict[str, Any]]] = {"descramble": [], "numpy": []}
    for _ in range(repeat):
        for side in ("descramble", "numpy"):
            runs[side].append(_run_child({**spec, "side": side}))
    row = dict(spec)
    for side, rs in runs.items():
        row[f"{side}_s"] = statistics.median(r["seconds"] for r in rs)
        row[f"{side}_rss_mib"] = max(r["peak_rss_mib"] for r in rs)
    errors = [r["rel_error"] for r in runs["descramble"] if "rel_error" in r]
    if errors:
        row["rel_error"] = max(errors)
    row["ratio"] = row["numpy_s"] / row["descramble_s"]
    row["runs"] = runs
    return row


def _write_npy(path: str, rows: int, n: int) -> None:
    mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, n))
    step = max(1, (64 << 20) // (n * 4))
    for start in range(0, rows, step):
        stop = min(rows, start + step)
        mm[start:stop] = _data(stop - start, n, "float32", seed=start)
    mm.flush()
    del mm


TARGETS = {
    ("autocorrelation", "float64"): 1.0,
    ("mixed", "mixed"): 1.8,
    ("cov", "float64"): 1.5,
    ("stream", "float64"): 1.1,
    ("stream", "mixed"): 1.5,
}


def main(argv: Optional[List[str]] = None, parser_class: type = argparse.ArgumentParser) -> int:
    """Run the benchmark suite and print its table (``descramble bench``).

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments (default: ``sys.argv[1:]``).
    parser_class : type
        The argument parser's class (the CLI passes one that reports errors
        in one line).

    Returns
    -------
    int
        The exit status.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = parser_class(prog="descramble bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, 3 repetitions (about a minute)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--repeat", type=positive_int, default=3, help="alternating runs per side (default 3)")
    parser.add_argument("--only", nargs="+",
                        choices=["autocorrelation", "mixed", "cov", "stream", "spectral", "descrambler",
                                 "roofline"],
                        help="run these kernels only")
    parser.add_argument("--widths", type=positive_int, nargs="+", help="feature counts n of the in-memory cases")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.json:  # find out now, not after the whole run, that the results cannot be saved
        folder = os.path.dirname(os.path.abspath(args.json))
        if os.path.isdir(args.json):
            parser.error(f"argument --json: {args.json} is a directory")
        if not (os.path.isdir(folder) and os.access(folder, os.W_OK)):
            parser.error(f"argument --json: cannot write {args.json} (no such writable directory {folder})")
    if args.child:
        print(json.dumps(_child(json.loads(args.child))))
        return 0
    if any(v in os.environ for v in _BLAS_VARS):
        return _without_blas_vars(argv)

    rows = 50_000 if args.quick else 200_000
    widths = args.widths or ((64, 256) if args.quick else (64, 256, 1024))
    kernels = args.only or ["autocorrelation", "mixed", "cov", "stream", "spectral", "descrambler", "roofline"]
    specs: List[Dict[str, Any]] = []
    for n in widths if set(kernels) & {"autocorrelation", "mixed", "cov"} else ():
        if "autocorrelation" in kernels:
            specs.append({"kernel": "autocorrelation", "rows": rows, "n": n, "dtype": "float64",
                          "precision": "float64", "reference": "X.T @ X"})
        if "mixed" in kernels:
            specs.append({"kernel": "mixed", "rows": rows, "n": n, "dtype": "float32", "precision": "mixed",
                          "reference": "astype(f8); X.T @ X"})
        if "cov" in kernels:
            specs.append({"kernel": "cov", "rows": rows, "n": n, "dtype": "float64", "precision": "float64",
                          "reference": "np.cov"})

    results = []
    tmpdir = tempfile.mkdtemp(prefix="descramble-bench-")
    try:
        for spec in specs:
            print(f"running {spec['kernel']} {spec['rows']}x{spec['n']} ...", file=sys.stderr, flush=True)
            results.append(_case(spec, args.repeat))
        if "stream" in kernels:
            n = 256
            file_bytes = (256 << 20) if args.quick else (2 << 30) + (64 << 20)
            file_rows = file_bytes // (n * 4)
            path = os.path.join(tmpdir, "stream.npy")
            print(f"writing a {file_bytes / 2**30:.2f} GiB float32 .npy file ...", file=sys.stderr, flush=True)
            _write_npy(path, file_rows, n)
            for precision in ("float64", "mixed"):
                spec = {"kernel": "stream", "rows": file_rows, "n": n, "dtype": "float32", "precision": precision,
                        "reference": "chunked np.load(mmap)", "path": path, "file_gib": file_bytes / 2**30}
                print(f"running stream ({precision}) ...", file=sys.stderr, flush=True)
                results.append(_case(spec, args.repeat))
    finally:
        for name in os.listdir(tmpdir):
            os.remove(os.path.join(tmpdir, name))
        os.rmdir(tmpdir)

    if results:
        header = (f"{'kernel':<16}{'shape':>14}{'dtype':>9}{'precision':>10}{'descramble s':>14}{'numpy s':>10}"
                  f"{'ratio':>8}{'target':>8}{'RSS MiB (ds/np)':>18}{'rel err':>10}  reference")
        print(header)
        print("-" * len(header))
        for r in results:
            target = TARGETS.get((r["kernel"], r["precision"]))
            r["target"] = target
            shape = f"{r['rows']}x{r['n']}"
            rss = f"{r['descramble_rss_mib']:.0f}/{r['numpy_rss_mib']:.0f}"
            err = f"{r['rel_error']:.1e}" if "rel_error" in r else "-"
            print(f"{r['kernel']:<16}{shape:>14}{r['dtype']:>9}{r['precision']:>10}{r['descramble_s']:>14.4f}"
                  f"{r['numpy_s']:>10.4f}{r['ratio']:>8.2f}{(f'{target:.1f}' if target else '-'):>8}{rss:>18}"
                  f"{err:>10}  {r['reference']}")
    in_process = []
    if "spectral" in kernels:
        print("running spectral kernels ...", file=sys.stderr, flush=True)
        in_process += _spectral(args.quick, args.repeat)
    if "descrambler" in kernels:
        try:
            import scipy  # noqa: F401  (the iterative reference's optimiser)
        except ImportError:
            print("skipping closed form vs iterative: the iterative reference needs SciPy "
                  "(pip install scipy)", file=sys.stderr, flush=True)
        else:
            print("running closed form vs iterative ...", file=sys.stderr, flush=True)
            in_process += _descrambler(args.quick)
    if "roofline" in kernels:
        print("running the roofline table ...", file=sys.stderr, flush=True)
        roofline = _roofline(args.quick, args.repeat, args.widths)
        _print_roofline(roofline)
        results += roofline["rows"]
    if in_process:
        header = f"\n{'kernel':<28}{'size':>8}{'descramble s':>14}{'reference s':>13}{'ratio':>10}{'target':>8}  note"
        print(header)
        print("-" * len(header))
        for r in in_process:
            goal = f"{r['target']:.0f}" if r.get("target") else "-"
            print(f"{r['kernel']:<28}{r['n']:>8}{r['descramble_s']:>14.5f}{r['reference_s']:>13.5f}"
                  f"{r['ratio']:>10.1f}{goal:>8}  {r['note']}")
        results += in_process
    machine = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "descramble": descramble.__version__,
        "backend": descramble._core.product_backend(),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "cpu": _cpu_name(),
    }
    print(f"\nmachine: {machine}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine, "results": results}, f, indent=2)
    return 0


def _times(funcs: Dict[str, Any], repeat: int, pause: float = 0.0,
           warm: float = 0.2) -> Dict[str, List[float]]:
    """Wall times of each function after one warm-up call each, alternating between them every
    round (a shared machine's slow spells hit every side alike). ``pause`` seconds before each
    call let the previous call's BLAS threads, which spin for about 0.1 s after their work, go to
    sleep first: otherwise they take cores from whatever runs next. After a pause the function
    runs untimed for ``warm`` seconds (at least once): a call right after an idle spell found the
    cores slow to wake (n = 16: 3.0 ms in a loop, 4.0 to 5.4 ms after 0.25 s idle; n = 32 on
    the Zen 5 machine, seven timed calls: 2.3 to 5.4 ms after 0.05 s of warm-up, 2.1 to 3.1 ms
    after 0.2 s), which a long stream never sees."""
    times: Dict[str, List[float]] = {name: [] for name in funcs}
    for f in funcs.values():  # warm-up
        f()
    for _ in range(repeat):
        for name, f in funcs.items():
            if pause > 0:
                time.sleep(pause)
                start = time.perf_counter()
                f()
                while time.perf_counter() - start < warm:
                    f()
            t0 = time.perf_counter()
            f()
            times[name].append(time.perf_counter() - t0)
    return times


def _interleaved(funcs: Dict[str, Any], repeat: int) -> Dict[str, float]:
    """Median wall time of each function, alternating between them every round."""
    return {name: statistics.median(ts) for name, ts in _times(funcs, repeat).items()}


def _spectral(quick: bool, repeat: int) -> List[Dict[str, Any]]:
    rng = np.random.default_rng(0)
    n = 512 if quick else 1024
    a = rng.normal(size=(n, n))
    sym = a @ a.T / n
    rows: List[Dict[str, Any]] = []
    t = _interleaved({"d": lambda: descramble.eigh(sym), "np": lambda: np.linalg.eigh(sym)}, repeat)
    rows.append({"kernel": "eigh", "n": n, "descramble_s": t["d"], "reference_s": t["np"], "target": 1.0,
                 "note": "vs numpy.linalg.eigh"})
    t = _interleaved({"d": lambda: descramble.svd(a), "np": lambda: np.linalg.svd(a, full_matrices=False)}, repeat)
    rows.append({"kernel": "svd", "n": n, "descramble_s": t["d"], "reference_s": t["np"], "target": 1.0,
                 "note": "vs numpy.linalg.svd (thin)"})
    n2 = 1024 if quick else 2048
    k = n2 // 16
    # A matrix with a decaying spectrum, as weight and autocorrelation matrices have.
    q1, _ = np.linalg.qr(rng.normal(size=(n2, n2)))
    q2, _ = np.linalg.qr(rng.normal(size=(n2, n2)))
    sigma = 1.0 / (1.0 + np.arange(n2)) ** 1.5
    b = (q1 * sigma) @ q2.T
    t = _interleaved({"d": lambda: descramble.svd(b, k=k), "np": lambda: np.linalg.svd(b, full_matrices=False)},
                     max(1, repeat - 1))
    s = descramble.svd(b, k=k).S
    err = float(np.max(np.abs(s - sigma[:k]) / sigma[:k]))
    rows.append({"kernel": f"svd(k={k}) vs full svd", "n": n2, "descramble_s": t["d"], "reference_s": t["np"],
                 "target": 3.0, "note": f"max rel. error of the k singular values {err:.1e} (sigma_i ~ i^-1.5)",
                 "rel_error": err})
    for r in rows:
        r["ratio"] = r["reference_s"] / r["descramble_s"]
    return rows


def _descrambler(quick: bool) -> List[Dict[str, Any]]:
    rows = []
    rng = np.random.default_rng(1)
    for m in (32, 64) if quick else (32, 64, 128, 256):
        W = rng.normal(size=(m, 2 * m))
        X = rng.normal(size=(20 * m, 2 * m)) * rng.uniform(0.2, 3.0, size=2 * m)
        S = descramble.Autocorrelation(m).update(X @ W.T).autocorrelation()
        t = _interleaved({"d": lambda: descramble.descramble(hidden=S)}, 5)["d"]
        closed = descramble.descramble(hidden=S)
        t0 = time.perf_counter()
        it = reference.descramble_iterative(S, "fourier")
        t_it = time.perf_counter() - t0
        rows.append({"kernel": "closed form vs iterative", "n": m, "descramble_s": t, "reference_s": t_it,
                     "ratio": t_it / t, "target": 300.0 if m == 128 else None,
                     "loss_ratio": closed.loss / it["loss"],
                     "note": f"loss closed/iterative = {closed.loss / it['loss']:.9f} "
                             f"({it['iterations']} L-BFGS iterations)"})
    return rows


def _roofline(quick: bool, repeat: int, widths: Optional[List[int]] = None) -> Dict[str, Any]:
    """The roofline table: the streaming product against the limits measured in this run."""
    rng = np.random.default_rng(0)
    # The machine's limits, measured now (best of `repeat`).
    peak: Dict[str, float] = {}
    big_rows, big_n = (20_000, 1024) if quick else (50_000, 2048)
    for dtype in ("float64", "float32"):
        big = rng.standard_normal(size=(big_rows, big_n)).astype(dtype)
        t = _best(lambda: big.T @ big, repeat)
        peak[dtype] = big_rows * big_n * big_n / t / 1e9
        del big
    flat = rng.standard_normal(size=(200_000_000 // 8 // 1000, 1000))
    v = np.ones(1000)
    bandwidth = flat.nbytes / _best(lambda: flat @ v, max(repeat, 5)) / 1e9
    del flat
    rows_out: List[Dict[str, Any]] = []
    for n in widths or (16, 32, 64, 128, 256, 512, 1024):
        rows = (50_000 if n < 512 else 25_000) if quick else (200_000 if n < 512 else 100_000)
        x64 = _data(rows, n, "float64")
        x32 = x64.astype(np.float32)
        times = {name: min(ts) for name, ts in _times({
            "float64": lambda: descramble.autocorrelation(x64),
            "numpy64": lambda: x64.T @ x64,
            "mixed": lambda: descramble.autocorrelation(x32, precision="mixed"),
            "numpy32": lambda: x32.T @ x32,
        }, repeat, pause=0.25).items()}
        flops = rows * n * n
        for precision, data_type, bytes_per_value, ref in (("float64", "float64", 8, "numpy64"),
                                                          ("mixed", "float32", 4, "numpy32")):
            rate = flops / times[precision] / 1e9
            limit = min(peak[data_type], bandwidth * n / bytes_per_value)
            rows_out.append({"kernel": "roofline", "n": n, "rows": rows, "precision": precision,
                             "dtype": data_type, "descramble_s": times[precision], "numpy_s": times[ref],
                             "gflops": rate, "numpy_gflops": flops / times[ref] / 1e9, "roofline_gflops": limit,
                             "fraction": rate / limit, "ratio": times[ref] / times[precision],
                             "vs_float64": times["float64"] / times[precision]})
        del x64, x32
    return {"peak_gflops": peak, "bandwidth_gbs": bandwidth, "rows": rows_out}


def _print_roofline(table: Dict[str, Any]) -> None:
    peak, bandwidth = table["peak_gflops"], table["bandwidth_gbs"]
    print(f"\nroofline: peak {peak['float64']:.1f} GFLOP/s float64, {peak['float32']:.1f} float32 "
          f"(NumPy X.T @ X), bandwidth {bandwidth:.1f} GB/s (NumPy X @ v, 200 MB)")
    header = (f"{'n':>6}{'rows':>9}{'precision':>10}{'GFLOP/s':>9}{'NumPy':>8}{'roofline':>10}{'of roof':>9}"
              f"{'vs NumPy':>10}{'vs f64':>8}")
    print(header)
    print("-" * len(header))
    for r in table["rows"]:
        print(f"{r['n']:>6}{r['rows']:>9}{r['precision']:>10}{r['gflops']:>9.1f}{r['numpy_gflops']:>8.1f}"
              f"{r['roofline_gflops']:>10.1f}{r['fraction']:>9.0%}{r['ratio']:>9.2f}x{r['vs_float64']:>7.2f}x")


def _best(f: Any, repeat: int) -> float:
    """Best wall time of `repeat` calls after a warm-up."""
    return min(_times({"f": f}, repeat)["f"])


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    sys.exit(main())
