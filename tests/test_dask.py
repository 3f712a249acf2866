"""descramble.dask: per-block accumulators merged by a tree of Dask tasks.

Every result is compared with independent NumPy computations (two-pass
formulas in float64) and with descramble.accumulate on the same data in
memory, to 1e-12 relative, on awkward chunkings, on the local schedulers and
on a LocalCluster of two worker processes.
"""

import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest

import descramble
from descramble import reference
from conftest import assert_same_state, state_of

dask = pytest.importorskip("dask", reason="descramble.dask needs dask: pip install 'dask[array,distributed]'")
da = pytest.importorskip("dask.array", reason="descramble.dask needs dask.array: pip install 'dask[array,distributed]'")
import descramble.dask as ddask  # noqa: E402
from dask.delayed import Delayed  # noqa: E402

TOL = 1e-12


def assert_close(actual, expected, tol=TOL):
    """Max-norm relative agreement: |a - e|_max <= tol * |e|_max."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape
    scale = max(np.abs(expected).max(), np.finfo(float).tiny)
    assert np.abs(actual - expected).max() <= tol * scale, np.abs(actual - expected).max() / scale


def assert_matches_numpy(acc, x, weights=None):
    """The accumulator of x against the NumPy two-pass references (float64)."""
    x64 = np.asarray(x, dtype=np.float64)
    w = np.ones(x64.shape[0]) if weights is None else np.asarray(weights, dtype=np.float64)
    assert acc.count == x64.shape[0]
    assert acc.weight_sum == pytest.approx(w.sum(), rel=TOL)
    assert_close(acc.mean, reference.mean(x64, w))
    assert_close(acc.scatter, reference.scatter(x64, w))
    assert_close(acc.autocorrelation(), reference.autocorrelation(x64, w))
    assert_close(acc.covariance(), reference.covariance(x64, 1, w))


def assert_matches_in_memory(acc, x, weights=None):
    """The accumulator of x against descramble.accumulate(x) in memory."""
    mem = descramble.accumulate(np.asarray(x), weights=None if weights is None else np.asarray(weights))
    assert (acc.count, acc.n_features) == (mem.count, mem.n_features)
    assert acc.weight_sum == pytest.approx(mem.weight_sum, rel=TOL)
    for name in ("mean", "scatter"):
        assert_close(getattr(acc, name), getattr(mem, name))
    assert_close(acc.autocorrelation(), mem.autocorrelation())


def data(rng, rows, n, offset=0.0, dtype=np.float64):
    return (offset + rng.normal(size=(rows, n)) * rng.uniform(0.5, 3.0, size=n)).astype(dtype)


# -- the package does not import dask ------------------------------------------------------------


def test_importing_descramble_does_not_import_dask():
    code = (
        "import sys, descramble, descramble.dask\n"
        "loaded = sorted(m for m in sys.modules if m == 'dask' or m.startswith(('dask.', 'distributed')))\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


# -- local schedulers on awkward chunkings -------------------------------------------------------

CHUNKINGS = {
    "one-row chunks": (48, 5, (1, 5)),
    "uneven rows": (100, 6, ((1, 37, 2, 50, 10), 6)),
    "empty row chunks": (60, 4, ((0, 25, 0, 35, 0), 4)),
    "column chunks": (90, 7, ((30, 31, 29), (2, 1, 4))),
    "rows and columns uneven": (77, 9, (13, (1, 8))),
    "single chunk": (64, 8, (64, 8)),
    "one feature": (50, 1, (7, 1)),
}


@pytest.mark.parametrize("scheduler", ["sync", "threads"])
@pytest.mark.parametrize("case", list(CHUNKINGS))
def test_chunkings_match_numpy_and_in_memory(rng, case, scheduler):
    rows, n, chunks = CHUNKINGS[case]
    x = data(rng, rows, n, offset=1e3)
    dx = da.from_array(x, chunks=chunks)
    acc = ddask.accumulate(dx, scheduler=scheduler)
    assert isinstance(acc, descramble.Autocorrelation)
    assert_matches_numpy(acc, x)
    assert_matches_in_memory(acc, x)


@pytest.mark.parametrize(
    "dtype", [np.float32, np.int64, np.int16, np.uint8, np.bool_, np.float16], ids=lambda d: np.dtype(d).name
)
def test_dtypes_are_read_as_float64(rng, dtype):
    if np.dtype(dtype).kind in "iub":
        x = rng.integers(0, 2 if dtype is np.bool_ else 100, size=(83, 6)).astype(dtype)
    else:
        x = data(rng, 83, 6, offset=10.0, dtype=dtype)
    acc = ddask.accumulate(da.from_array(x, chunks=(20, 4)), scheduler="sync")
    assert_matches_numpy(acc, x)
    assert_matches_in_memory(acc, x)


def test_large_common_offset_keeps_relative_accuracy(rng):
    # The one-pass textbook formula would lose every digit here (docs/math.md §7).
    x = 1e9 + rng.normal(size=(400, 3))
    acc = ddask.accumulate(da.from_array(x, chunks=37), scheduler="sync")
    assert_close(acc.covariance(), reference.covariance(x), tol=1e-7)
    assert_matches_in_memory(acc, x)


def test_lazy_input_from_dask_random_and_elementwise_work():
    dx = da.random.default_rng(5).standard_normal((3000, 10), chunks=(250, 3)) * 2.0 + 7.0
    x = dx.compute()
    acc = ddask.accumulate(dx)
    assert_matches_numpy(acc, x)
    assert_matches_in_memory(acc, x)


@pytest.mark.parametrize("as_", ["dask, other chunks", "dask, same chunks", "ndarray", "list"])
def test_weights(rng, as_):
    x = data(rng, 120, 5, offset=-4.0)
    w = rng.uniform(0, 3, size=120)
    w[[3, 50, 51]] = 0.0
    dx = da.from_array(x, chunks=((40, 1, 60, 19), (2, 3)))
    dw = {
        "dask, other chunks": da.from_array(w, chunks=17),
        "dask, same chunks": da.from_array(w, chunks=((40, 1, 60, 19),)),
        "ndarray": w,
        "list": list(w),
    }[as_]
    acc = ddask.accumulate(dx, weights=dw, scheduler="threads")
    assert_matches_numpy(acc, x, w)
    assert_matches_in_memory(acc, x, w)


def test_autocorrelation_and_covariance_functions(rng):
    x = data(rng, 200, 6, offset=2.0)
    w = rng.uniform(0.5, 2.0, size=200)
    dx = da.from_array(x, chunks=(45, 6))
    assert_close(ddask.autocorrelation(dx, scheduler="sync"), x.T @ x / 200)
    assert_close(ddask.covariance(dx, scheduler="sync"), np.cov(x, rowvar=False))
    assert_close(ddask.covariance(dx, ddof=0), np.cov(x, rowvar=False, ddof=0))
    assert_close(ddask.covariance(dx, 2.5), np.cov(x, rowvar=False, ddof=0) * 200 / 197.5)
    # frequency weights: divisor sum(w) - ddof
    assert_close(ddask.autocorrelation(dx, weights=w), (x * w[:, None]).T @ x / w.sum())
    assert_close(ddask.covariance(dx, weights=w), reference.scatter(x, w) / (w.sum() - 1))


@pytest.mark.parametrize("split_every", [2, 3, 16, 1000])
def test_merge_tree_fan_in_does_not_change_the_result(rng, split_every):
    x = data(rng, 370, 4, offset=5.0)
    dx = da.from_array(x, chunks=10)  # 37 row blocks
    result = ddask.accumulate(dx, split_every=split_every, compute=False)
    merges = [k for k in result.dask if isinstance(k, tuple) and str(k[0]).startswith("descramble-merge-")]
    expected, blocks = 0, 37
    while blocks > split_every:
        blocks = -(-blocks // split_every)
        expected += blocks
    assert len(merges) == expected
    assert_matches_numpy(result.compute(), x)


def test_merge_tasks_do_not_touch_their_inputs(rng):
    parts = [descramble.Autocorrelation(3).update(data(rng, 10, 3, offset=k)) for k in range(3)]
    before = [state_of(p) for p in parts]
    out = ddask._merge([parts[0], np.array([parts[1]], dtype=object), parts[2]], 3, "float64", 1)
    for part, state in zip(parts, before):
        assert_same_state(state_of(part), state)
    assert out.count == 30 and all(out is not p for p in parts)


def test_the_same_graph_computes_twice_to_the_same_result(rng):
    x = data(rng, 90, 3)
    result = ddask.accumulate(da.from_array(x, chunks=20), compute=False)
    first, second = dask.compute(result, result, scheduler="threads")
    assert_same_state(state_of(first), state_of(second))
    assert_same_state(state_of(result.compute()), state_of(first))


def test_result_settings(rng):
    x = data(rng, 300, 5)
    acc = ddask.accumulate(da.from_array(x, chunks=100), precision="mixed", threads=2)
    assert acc.precision == "mixed" and acc.threads is None
    assert_close(acc.covariance(), np.cov(x, rowvar=False), tol=1e-6)
    assert ddask.accumulate(da.from_array(x, chunks=100)).precision == "float64"


def test_compute_false_returns_a_delayed(rng):
    x = data(rng, 100, 4)
    dx = da.from_array(x, chunks=30)
    result = ddask.accumulate(dx, compute=False)
    assert isinstance(result, Delayed)
    acc, total = dask.compute(result, dx.sum(), scheduler="sync")
    assert_matches_numpy(acc, x)
    assert total == pytest.approx(x.sum())
    assert_close(result.covariance(ddof=0).compute(), np.cov(x, rowvar=False, ddof=0))


def test_unknown_row_chunk_sizes(rng):
    x = data(rng, 200, 3)
    dx = da.from_array(x, chunks=50)
    kept = dx[dx[:, 0] > 0]  # row chunks of unknown size
    acc = ddask.accumulate(kept, scheduler="sync")
    assert_matches_numpy(acc, x[x[:, 0] > 0])
    with pytest.raises(ValueError, match=r"weights: the row chunks of x have unknown sizes.*compute_chunk_sizes"):
        ddask.accumulate(kept, weights=np.ones(3))


def test_empty_array():
    acc = ddask.accumulate(da.zeros((0, 3), chunks=(5, 3)), scheduler="sync")
    assert acc.count == 0 and acc.n_features == 3
    with pytest.raises(ValueError, match="no samples"):
        ddask.autocorrelation(da.zeros((0, 3), chunks=(5, 3)))


def test_pickled_accumulator_is_its_lower_triangle(rng):
    n = 256
    acc = descramble.Autocorrelation(n).update(rng.normal(size=(300, n)))
    size = len(pickle.dumps(acc, protocol=pickle.HIGHEST_PROTOCOL))
    triangle = n * (n + 1) // 2 * 8
    assert triangle <= size < 1.2 * triangle, size / triangle


# -- bad input -----------------------------------------------------------------------------------

BAD_X = [
    (np.ones((4, 3)), TypeError, r"x: expected a 2-D dask array, got numpy.ndarray; for in-memory data use descramble.accumulate"),
    ([[1.0, 2.0]], TypeError, r"x: expected a 2-D dask array, got builtins.list"),
    ("x", TypeError, r"x: expected a 2-D dask array, got builtins.str"),
    (lambda: da.ones(5, chunks=2), ValueError, r"x: expected a 2-D dask array of shape \(rows, n_features\).*\(5,\)"),
    (lambda: da.ones((2, 3, 4), chunks=2), ValueError, r"x: expected a 2-D.*\(2, 3, 4\)"),
    (lambda: da.ones((4, 0), chunks=2), ValueError, r"x: expected at least one feature"),
    (lambda: da.ones((4, 3), chunks=2, dtype=complex), TypeError, r"x: complex input"),
    (lambda: da.from_array(np.array([[1, None]], dtype=object), chunks=1), TypeError, r"x: expected real numbers.*object"),
    (lambda: da.from_array(np.array([["a", "b"]]), chunks=1), TypeError, r"x: expected real numbers.*<U1"),
]


@pytest.mark.parametrize("x, error, message", BAD_X)
def test_bad_x(x, error, message):
    with pytest.raises(error, match=message):
        ddask.accumulate(x() if callable(x) else x)


X = lambda: da.ones((10, 3), chunks=4)  # noqa: E731

BAD_OPTIONS = [
    (dict(weights=np.ones(9)), ValueError, r"weights: expected 10 weights \(one per row of x\), got 9"),
    (dict(weights=np.ones((10, 1))), ValueError, r"weights: expected a 1-D array.*\(10, 1\)"),
    (dict(weights=np.ones(10, dtype=complex)), TypeError, r"weights: complex input"),
    (dict(weights="abc"), TypeError, r"weights: expected a 1-D dask array or array of numbers, got str"),
    (dict(weights=3.0), TypeError, r"weights: expected a 1-D dask array or array of numbers, got float"),
    (dict(precision="half"), ValueError, r"precision: expected 'float64' or 'mixed', got 'half'"),
    (dict(threads=0), ValueError, r"threads: expected a positive integer, got 0"),
    (dict(threads=1.5), TypeError, r"threads: expected a positive integer"),
    (dict(split_every=1), ValueError, r"split_every: expected an integer >= 2, got 1"),
    (dict(split_every=2.0), TypeError, r"split_every: expected an integer >= 2"),
    (dict(compute="yes"), TypeError, r"compute: expected True or False"),
    (dict(compute=False, scheduler="sync"), TypeError, r"compute_kwargs: only with compute=True"),
]


@pytest.mark.parametrize("options, error, message", BAD_OPTIONS)
def test_bad_options(options, error, message):
    with pytest.raises(error, match=message):
        ddask.accumulate(X(), **options)


def test_bad_ddof():
    with pytest.raises(TypeError, match=r"ddof: expected a real number, got 'a'"):
        ddask.covariance(X(), "a")
    with pytest.raises(ValueError):
        ddask.covariance(da.ones((1, 3), chunks=1))  # weight_sum - ddof = 0


@pytest.mark.parametrize(
    "row, value, message",
    [
        (0, np.nan, r"^x: row 0 contains NaN \(column 2\)"),
        (503, np.nan, r"^x: row 503 contains NaN \(column 2\)"),
        (999, -np.inf, r"^x: row 999 contains infinity \(column 2\)"),
    ],
)
def test_non_finite_values_raise_naming_the_global_row(row, value, message):
    x = np.ones((1000, 4))
    x[row, 2] = value
    with pytest.raises(descramble.NonFiniteError, match=message):
        ddask.accumulate(da.from_array(x, chunks=(100, 2)), scheduler="sync")
    assert issubclass(descramble.NonFiniteError, ValueError)


def test_bad_weights_found_when_computed_name_the_global_entry():
    w = np.ones(100)
    w[57] = -1.0
    with pytest.raises(ValueError, match=r"^weights: entry 57 is -1"):
        ddask.accumulate(da.ones((100, 2), chunks=10), weights=da.from_array(w, chunks=10), scheduler="sync")


def test_non_finite_value_in_unknown_chunks_names_the_block():
    x = np.ones((100, 2))
    x[57, 1] = np.nan
    dx = da.from_array(x, chunks=10)
    with pytest.raises(descramble.NonFiniteError, match=r"^x \(row block 5\): row 7 contains NaN \(column 1\)"):
        ddask.accumulate(dx[dx[:, 0] > 0], scheduler="sync")
    # A block whose shape is not the one its array declares: checked in Python, naming x and the block.
    wrong = da.from_delayed(dask.delayed(np.ones)((4, 5)), shape=(4, 3), dtype=float)
    with pytest.raises(ValueError, match=r"^x: row block 0: expected 3 columns \(n_features\), got 5$"):
        ddask.accumulate(wrong, scheduler="sync")


# -- a LocalCluster of worker processes ---------------------------------------------------------


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip(
        "distributed", reason="the cluster tests need dask.distributed: pip install 'dask[array,distributed]'"
    )
    with warnings.catch_warnings():
        # the scheduler's HTTP server falls back to a free port when 8787 is taken
        warnings.filterwarnings("ignore", message="Port .* is already in use", category=UserWarning)
        cluster = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=50
        )
    client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def test_cluster_matches_in_memory(client):
    import distributed

    assert len(client.scheduler_info()["workers"]) == 2
    pids = set(client.run(lambda: __import__("os").getpid()).values())
    assert len(pids) == 2 and not pids & {__import__("os").getpid()}  # two other processes
    dx = da.random.default_rng(11).standard_normal((20_000, 12), chunks=((2500, 7500, 3000, 7000), (5, 7)))
    dx = dx * 3.0 + 1e4
    x = dx.compute()
    with distributed.get_task_stream(client) as stream:
        acc = ddask.accumulate(dx)  # the active client runs it
    assert_matches_in_memory(acc, x)
    assert_matches_numpy(acc, x)
    ran = [str(task["key"]) for task in stream.data]
    assert sum("descramble-block-" in key for key in ran) == 4  # one task per row block
    assert sum("descramble-accumulate-" in key for key in ran) == 1  # split_every 4: the root merges all


def test_cluster_with_weights_and_tree(client):
    rng = np.random.default_rng(3)
    x = data(rng, 5000, 8, offset=-2.0, dtype=np.float32)
    w = rng.uniform(0, 2, size=5000)
    dx = da.from_array(x, chunks=(400, 8))
    acc = ddask.accumulate(dx, weights=da.from_array(w, chunks=1000), split_every=2)
    assert_matches_in_memory(acc, x, w)
    assert_matches_numpy(acc, x, w)
    assert_close(ddask.covariance(dx, ddof=0), np.cov(x.astype(np.float64), rowvar=False, ddof=0))


def test_cluster_compute_false_and_futures(client):
    x = data(np.random.default_rng(4), 3000, 5)
    result = ddask.accumulate(da.from_array(x, chunks=700), compute=False)
    future = client.compute(result)
    assert_matches_in_memory(future.result(), x)


def test_cluster_non_finite_error_reaches_the_caller(client):
    x = np.ones((2000, 3))
    x[1234, 0] = np.inf
    with pytest.raises(descramble.NonFiniteError, match=r"x: row 1234 contains infinity \(column 0\)") as info:
        ddask.accumulate(da.from_array(x, chunks=300))
    # The fields survive the trip from the worker process.
    assert (info.value.row, info.value.column, info.value.source) == (1234, 0, "x")
