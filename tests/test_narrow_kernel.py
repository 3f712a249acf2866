"""The narrow-block product kernel (issue 15) against plain references, on awkward shapes.

The core forms each block's centred product with its own register-blocked
kernel for narrow blocks (AVX-512 or AVX2 + FMA when the CPU has them, a
portable C++ version otherwise) and with OpenBLAS for wide ones. The environment variable
DESCRAMBLE_PRODUCT_KERNEL (read at each update) forces one of them, so every
kernel is checked here against the same float64 reference: n not a multiple
of the SIMD width (1..17), one row, Fortran order, strided views, weights,
every dtype the accumulators take, float64 and mixed precision.
"""

import numpy as np
import pytest

import descramble
from conftest import DTYPES, sample
from descramble import reference

# "avx512" runs as "avx2" on a CPU without AVX-512,
# "avx2" the generic kernel on a CPU without AVX2.
KERNELS = ["blas", "generic", "avx2", "avx512"]


def scatter_of(x, weights=None, precision="float64", threads=2):
    acc = descramble.Autocorrelation(x.shape[1], precision=precision, threads=threads)
    acc.update(x, weights)
    return acc


def check(acc, x, weights=None, precision="float64"):
    x64 = np.asarray(x, dtype=np.float64)
    w = np.ones(len(x64)) if weights is None else np.asarray(weights, dtype=np.float64)
    expected = reference.scatter(x64, w)
    c = x64 - reference.mean(x64, w)
    magnitude = (np.abs(c) * w[:, None]).T @ np.abs(c)  # sum_i w_i |c_i| |c_i|^T bounds every rounding error
    rtol = 2e-5 if precision == "mixed" else 1e-12
    assert acc.count == len(x64)
    assert np.all(np.abs(acc.scatter - expected) <= rtol * magnitude + 1e-300)
    assert np.array_equal(acc.scatter, acc.scatter.T)


@pytest.fixture(params=KERNELS)
def kernel(request, monkeypatch):
    monkeypatch.setenv("DESCRAMBLE_PRODUCT_KERNEL", request.param)
    return request.param


@pytest.mark.parametrize("precision", ["float64", "mixed"])
@pytest.mark.parametrize("n", list(range(1, 18)) + [31, 40, 47, 49, 130, 257, 384, 601, 1100])
def test_every_width_matches_the_reference(kernel, precision, n):
    rng = np.random.default_rng(n)
    x = sample(rng, (700, n), np.float64)
    check(scatter_of(x, precision=precision), x, precision=precision)


@pytest.mark.parametrize("precision", ["float64", "mixed"])
@pytest.mark.parametrize("n", [1, 5, 8, 13])
def test_one_row_and_two_rows(kernel, precision, n):
    rng = np.random.default_rng(1)
    for rows in (1, 2):
        x = sample(rng, (rows, n), np.float64)
        acc = scatter_of(x, precision=precision)
        check(acc, x, precision=precision)
        if rows == 1:
            assert np.all(acc.scatter == 0.0)


@pytest.mark.parametrize("precision", ["float64", "mixed"])
def test_layouts_and_strides(kernel, precision):
    rng = np.random.default_rng(2)
    base = sample(rng, (1201, 34), np.float64)
    views = {
        "C": base[:, :13].copy(),
        "Fortran": np.asfortranarray(base[:, :13]),
        "strided columns": base[:, ::3],  # 12 columns, column stride 3
        "strided rows": base[::2, 5:22],  # row stride 2 x 34
        "reversed": base[::-1, ::-2],  # negative strides
        "Fortran strided": np.asfortranarray(base)[::2, 1::2],
    }
    for name, view in views.items():
        w = rng.uniform(0.0, 3.0, size=len(view))
        check(scatter_of(view, precision=precision), view, precision=precision)
        check(scatter_of(view, w, precision=precision), view, w, precision=precision)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_every_dtype(kernel, dtype):
    rng = np.random.default_rng(3)
    for n in (3, 9, 17):
        x = sample(rng, (301, n), dtype)
        for order in ("C", "F"):
            y = np.asarray(x, order=order)
            for precision in ("float64", "mixed"):
                check(scatter_of(y, precision=precision), y, precision=precision)


@pytest.mark.parametrize("precision", ["float64", "mixed"])
def test_kernels_agree_to_rounding_on_a_long_stream(monkeypatch, precision):
    # Many blocks, two threads: the narrow kernels and the BLAS give the same
    # result to rounding, and the same as a one-shot NumPy product.
    rng = np.random.default_rng(4)
    x = rng.normal(loc=100.0, size=(20_000, 24))
    results = {}
    for name in KERNELS:
        monkeypatch.setenv("DESCRAMBLE_PRODUCT_KERNEL", name)
        acc = descramble.Autocorrelation(24, precision=precision, threads=2)
        for start in range(0, len(x), 7_001):
            acc.update(x[start:start + 7_001])
        results[name] = acc.scatter
    expected = reference.scatter(x, np.ones(len(x)))
    tol = (1e-6 if precision == "mixed" else 1e-11) * np.abs(expected).max()
    for name, s in results.items():
        np.testing.assert_allclose(s, expected, rtol=0, atol=tol, err_msg=name)


def test_the_default_is_unchanged_by_the_variable_being_unset(monkeypatch):
    monkeypatch.delenv("DESCRAMBLE_PRODUCT_KERNEL", raising=False)
    rng = np.random.default_rng(5)
    x = rng.normal(size=(5_000, 16))
    check(scatter_of(x), x)


# The narrow path reads each block once, shifted by the previous block's mean,
# and takes the block's scatter as R - W m m^T (docs/math.md §7). When the
# block's mean has moved far from that shift the subtraction would cancel, and
# the block must be redone centred about its own mean; in mixed precision a
# block whose magnitude left the previous block's float32 scale must be redone
# too. Blocks are 2048 rows on the narrow path; one thread takes them in order.
NARROW = ["generic", "avx2", "avx512"]


@pytest.mark.parametrize("name", NARROW)
def test_a_block_far_from_the_previous_mean_is_redone(monkeypatch, name):
    monkeypatch.setenv("DESCRAMBLE_PRODUCT_KERNEL", name)
    rng = np.random.default_rng(6)
    n = 12
    x = rng.normal(size=(2 * 2048, n))
    x[2048:] += 1e8  # the second block's mean is 1e8 standard deviations from the first's
    # Weight 0 on the first block: the scatter is the second block's own (about
    # 2048 I), so the error a cancelling R - W m m^T leaves (about 1e16 eps per
    # product: 1e4 here) would show.
    w = np.ones(len(x))
    w[:2048] = 0.0
    for precision in ("float64", "mixed"):
        acc = descramble.Autocorrelation(n, precision=precision, threads=1)
        acc.update(x, w)
        check(acc, x, w, precision=precision)


@pytest.mark.parametrize("n, big, small", [(2, 0, 1), (16, 0, 1), (32, 9, 20), (48, 40, 3)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_a_block_whose_magnitude_changes_gets_its_own_float32_scale(monkeypatch, n, big, small, dtype):
    # Column `big` is +-1e30 in the first block and 0 after it, column `small` is 0 and
    # then +-1: the first block's float32 scale (2^-101) would push the second
    # block's values to 2^-101, their squares below float32's range. Both
    # blocks' means are exactly 0, so only the block's largest value (not a
    # cancelling mean) can tell that its scale is wrong. The widths put the
    # columns in whole panels (the largest value is then read from the vectors
    # the AVX-512 packing keeps) and in partial ones.
    monkeypatch.delenv("DESCRAMBLE_PRODUCT_KERNEL", raising=False)
    x = np.zeros((2 * 2048, n))
    x[:2048, big] = np.where(np.arange(2048) % 2 == 0, 1e30, -1e30)
    x[2048:, small] = np.where(np.arange(2048) % 2 == 0, 1.0, -1.0)
    x = x.astype(dtype)
    expected = reference.scatter(x.astype(np.float64), np.ones(len(x)))[small, small]
    for name in NARROW:
        monkeypatch.setenv("DESCRAMBLE_PRODUCT_KERNEL", name)
        acc = descramble.Autocorrelation(n, precision="mixed", threads=1)
        acc.update(x)
        check(acc, x, precision="mixed")
        np.testing.assert_allclose(acc.scatter[small, small], expected, rtol=1e-5)


@pytest.mark.parametrize("precision", ["float64", "mixed"])
def test_a_trending_stream_matches_the_reference(kernel, precision):
    # Every block's mean differs from the last (a linear trend of 50 standard
    # deviations a block, and a step every third block).
    rng = np.random.default_rng(8)
    rows, n = 8 * 2048 + 77, 9
    t = np.arange(rows)[:, None] / 2048.0
    x = rng.normal(size=(rows, n)) + 50.0 * t * np.linspace(-1.0, 2.0, n) + 1e4 * (np.floor(t / 3) % 2)
    for threads in (1, 2):
        acc = descramble.Autocorrelation(n, precision=precision, threads=threads)
        acc.update(x)
        check(acc, x, precision=precision)


def test_the_forward_pass_statistics_take_the_same_kernel(monkeypatch):
    # hidden_autocorrelations feeds its layers' outputs to the same accumulators
    # in the core: every kernel gives the NumPy forward pass's scatter.
    rng = np.random.default_rng(9)
    x = rng.normal(size=(9_000, 20))
    layers = [(rng.normal(size=(48, 20)) / 4, rng.normal(size=48), "tanh"),
              (rng.normal(size=(33, 48)) / 6, None, "relu")]
    h1 = np.tanh(x @ layers[0][0].T + layers[0][1])
    h2 = np.maximum(h1 @ layers[1][0].T, 0.0)
    for name in KERNELS:
        monkeypatch.setenv("DESCRAMBLE_PRODUCT_KERNEL", name)
        stats = descramble.hidden_autocorrelations(layers, x, chunk_rows=4_000, threads=2)
        check(stats.post[0], h1)
        check(stats.post[1], h2)


@pytest.mark.parametrize("name", NARROW)
def test_huge_rows_of_weight_zero_among_the_first_rows(monkeypatch, name):
    # Rows of weight 0 take no part in the statistics, whatever their (finite)
    # values: the BLAS path ignores them. The narrow path's first shift is the
    # mean of the first rows; with the 1e300 rows in it, R about that shift
    # overflowed and the chunk was rejected ("sums of squares overflow").
    monkeypatch.setenv("DESCRAMBLE_PRODUCT_KERNEL", name)
    rng = np.random.default_rng(10)
    x = rng.normal(size=(3000, 8))
    w = np.ones(len(x))
    x[1:6] = 1e300
    w[1:6] = 0.0
    acc = descramble.Autocorrelation(8, precision="float64", threads=1)
    acc.update(x, w)
    check(acc, x, w)


@pytest.mark.parametrize("order", ["C", "F"])
def test_huge_rows_of_weight_zero_keep_the_mixed_scale(kernel, order):
    # The two-pass mixed path (the BLAS one, and the fallback of the narrow
    # path) chose a block's float32 scale from its largest |x - origin| over
    # every row, weight 0 or not: rows of weight 0 at 1e100 scaled the others
    # to 0 in float32, and the scatter came out as 0 (relative error 1).
    rng = np.random.default_rng(11)
    x = rng.normal(size=(3000, 8))
    w = np.ones(len(x))
    x[1:6] = 1e100
    w[1:6] = 0.0
    y = np.asarray(x, order=order)
    acc = descramble.Autocorrelation(8, precision="mixed", threads=1)
    acc.update(y, w)
    check(acc, y, w, precision="mixed")


@pytest.mark.parametrize("n", [4, 8, 12, 36])
@pytest.mark.parametrize("rows", [1, 2, 3, 257, 700])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_rows_packed_in_pairs_and_the_odd_one_left(kernel, n, rows, weighted):
    # The AVX2 packing (float64) takes two rows at a time when n is a multiple of 4,
    # then the odd last row alone; weights of 0 among them.
    rng = np.random.default_rng(rows * n)
    x = sample(rng, (rows, n), np.float64)
    w = None
    if weighted:
        w = rng.uniform(0.0, 3.0, size=rows)
        w[1::5] = 0.0
        w[-1] = 2.5  # the odd row counts
    if rows == 1:  # exactly 0 (the reference's weighted mean of one row rounds)
        assert np.all(scatter_of(x, w).scatter == 0.0)
    else:
        check(scatter_of(x, w), x, w)


@pytest.mark.parametrize("precision", ["float64", "mixed"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("n", [24, 40, 56, 72, 136])
def test_panels_packed_in_groups_with_weights(kernel, precision, dtype, n):
    # The AVX-512 packing takes the whole panels in groups of up to 4 (8 float64 values each)
    # or 2 (16 float32 values, mixed precision), row by row: widths whose float64 panels
    # split 3, 4 + 1, 4 + 3, 4 + 4 + 1 and 4 x 4 + 1, and whose float32 panels split 1,
    # 2, 2 + 1, 2 + 2 and 4 x 2 with a partial panel after them; weights (some 0) scale
    # each row by its root.
    rng = np.random.default_rng(n)
    x = sample(rng, (515, n), dtype)
    w = rng.uniform(0.0, 3.0, size=len(x))
    w[::7] = 0.0
    check(scatter_of(x, w, precision=precision), x, w, precision=precision)


@pytest.mark.parametrize("bad_rows, first", [
    ([60_000], 60_000),            # only the second worker's rows
    ([45_000, 60_000], 45_000),    # the second worker finds its bad row first; the first worker's is earlier
    ([49_151, 49_152], 49_151),    # the last row of the first worker's range and the first of the second's
    ([3, 99_999], 3),
])
def test_the_first_bad_row_is_reported_whichever_worker_reads_it(kernel, bad_rows, first):
    # Each of the two workers reads a contiguous range of blocks (here rows
    # 0..49151 and the rest); every block before the first bad one is still read.
    x = np.random.default_rng(5).normal(size=(100_000, 8))
    for r in bad_rows:
        x[r, 3] = np.nan
    acc = descramble.Autocorrelation(8, threads=2)
    with pytest.raises(descramble.NonFiniteError) as info:
        acc.update(x)
    assert (info.value.row, info.value.column) == (first, 3)
    assert acc.count == 0  # nothing taken from the rejected chunk


@pytest.mark.parametrize("threads", [1, 2, 3, 4])
def test_a_failed_block_before_the_first_bad_row_is_what_is_reported(kernel, threads):
    # Block 3's column sums overflow (std::overflow_error), block 4 and the
    # first block of the last worker's range hold NaN. One worker meets the
    # overflow first, and so must any number: the blocks before a failed one
    # are still finished, the ones after it (with their bad rows) skipped; a
    # worker's bad row was once reported though an earlier one was never read.
    n, blocks = 64, 24
    x = np.random.default_rng(7).normal(size=(blocks * 2048, n))
    x[3 * 2048 + 10, 0] = x[3 * 2048 + 11, 0] = 1.7e308
    x[4 * 2048 + 7, 2] = np.nan
    last_range = max(blocks * (threads - 1) // threads, blocks // 2)  # its first block
    x[last_range * 2048 + 5, 2] = np.nan
    for _ in range(5):
        acc = descramble.Autocorrelation(n, threads=threads)
        with pytest.raises(OverflowError, match="column sums overflow"):
            acc.update(x)
        assert acc.count == 0
    x[3 * 2048 + 11, 0] = 0.0  # no overflow: the first bad row
    with pytest.raises(descramble.NonFiniteError) as info:
        descramble.Autocorrelation(n, threads=threads).update(x)
    assert (info.value.row, info.value.column) == (4 * 2048 + 7, 2)


def test_mixed_precision_error_stays_at_one_group_of_rows(kernel):
    # Found on scikit-learn's digits (8 x 8 images of integer pixels, many columns nearly
    # constant): the AVX2 kernel summed a whole block of rows into C in float32 and was off by
    # 1.5e-5 of the largest covariance, against 5e-8 for the portable kernel. Every kernel now
    # sums each group of rows in registers from 0 and then adds it to C.
    datasets = pytest.importorskip("sklearn.datasets", reason="the digits data come from scikit-learn (the test extra)")
    x = datasets.load_digits().data
    acc = descramble.Autocorrelation(64, precision="mixed", threads=1)
    acc.update(x)
    c = np.cov(x, rowvar=False)
    assert np.abs(acc.covariance() - c).max() <= 5e-6 * np.abs(c).max()
