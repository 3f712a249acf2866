"""descramble.Autocorrelation against the NumPy references, on awkward inputs."""

import numpy as np
import pytest

import descramble
from conftest import DTYPES, sample
from descramble import reference

SHAPES = [(1, 1), (1, 5), (5, 1), (2, 3), (3, 10), (257, 7), (2000, 33)]


def check_against_reference(acc, x, weights=None, rtol=1e-12):
    x64 = np.asarray(x, dtype=np.float64)
    n = x64.shape[1]
    scale = max(1.0, float(np.abs(x64).max()) ** 2)
    atol = 1e-13 * scale * max(1, x64.shape[0])
    assert acc.count == x64.shape[0]
    w = np.ones(x64.shape[0]) if weights is None else np.asarray(weights, dtype=np.float64)
    assert acc.weight_sum == pytest.approx(w.sum(), rel=1e-15)
    np.testing.assert_allclose(acc.mean, reference.mean(x64, w), rtol=rtol, atol=1e-13 * np.sqrt(scale))
    np.testing.assert_allclose(acc.autocorrelation(), reference.autocorrelation(x64, w), rtol=rtol, atol=atol)
    np.testing.assert_allclose(acc.scatter, reference.scatter(x64, w), rtol=1e-10, atol=atol)
    if w.sum() > 1:
        np.testing.assert_allclose(acc.covariance(), reference.covariance(x64, 1, w), rtol=1e-10, atol=atol)
    np.testing.assert_allclose(acc.covariance(ddof=0), reference.covariance(x64, 0, w), rtol=1e-10, atol=atol)
    assert acc.autocorrelation().shape == (n, n)
    assert acc.autocorrelation().dtype == np.float64


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_matches_reference_for_every_dtype_and_shape(rng, shape, dtype):
    x = sample(rng, shape, dtype)
    acc = descramble.Autocorrelation(shape[1]).update(x)
    check_against_reference(acc, x)


@pytest.mark.parametrize(
    "layout",
    ["fortran", "every_other_row", "every_third_column", "reversed", "transposed_view", "byteswapped", "unaligned"],
)
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int32])
def test_layouts_are_read_correctly(rng, layout, dtype):
    base = sample(rng, (300, 12), dtype)
    if layout == "fortran":
        x = np.asfortranarray(base)
    elif layout == "every_other_row":
        x = base[::2]
    elif layout == "every_third_column":
        x = base[:, ::3]
    elif layout == "reversed":
        x = base[::-1, ::-1]
    elif layout == "transposed_view":
        x = np.ascontiguousarray(base.T).T  # Fortran-ordered via a transpose
    elif layout == "byteswapped":
        x = base.astype(base.dtype.newbyteorder(">"))
    else:  # a view that starts one byte into a buffer
        raw = np.zeros(base.nbytes + 1, dtype=np.uint8)
        x = raw[1:].view(base.dtype).reshape(base.shape)
        x[...] = base
        assert not x.flags.aligned
    acc = descramble.Autocorrelation(x.shape[1]).update(x)
    check_against_reference(acc, x)


def test_chunks_are_read_in_place_not_copied(rng):
    """The core reads arrays it supports through their strides: no defensive copy."""
    x = rng.normal(size=(50, 4))
    from descramble._validation import as_chunk

    for view in (x, x.T.T, x[::2], x[:, ::-1], np.asfortranarray(x), x.astype(np.int16), x.astype(np.float32)):
        assert np.shares_memory(as_chunk(view), view)


def test_python_lists_and_integers_are_accepted():
    acc = descramble.Autocorrelation(2).update([[1, 2], [3, 4]])
    np.testing.assert_allclose(acc.autocorrelation(), np.array([[5.0, 7.0], [7.0, 10.0]]))


def test_zero_row_chunks_are_no_ops(rng):
    acc = descramble.Autocorrelation(3)
    acc.update(np.empty((0, 3)))
    assert acc.count == 0 and acc.weight_sum == 0
    assert np.isnan(acc.mean).all()
    x = rng.normal(size=(10, 3))
    acc.update(x).update(np.empty((0, 3)), weights=np.empty(0))
    check_against_reference(acc, x)


def test_weights_equal_repeated_rows(rng):
    x = rng.normal(size=(40, 5))
    w = rng.integers(0, 4, size=40)
    repeated = np.repeat(x, w, axis=0)
    weighted = descramble.Autocorrelation(5).update(x, weights=w)
    plain = descramble.Autocorrelation(5).update(repeated)
    assert weighted.count == 40 and plain.count == w.sum()
    assert weighted.weight_sum == w.sum()
    np.testing.assert_allclose(weighted.covariance(), plain.covariance(), rtol=1e-12)
    np.testing.assert_allclose(weighted.autocorrelation(), plain.autocorrelation(), rtol=1e-12)


def test_real_valued_weights_match_reference(rng):
    x = rng.normal(size=(3000, 6))
    w = rng.uniform(0, 2, size=3000)
    w[::7] = 0.0
    acc = descramble.Autocorrelation(6).update(x, weights=w)
    check_against_reference(acc, x, w)


def test_only_zero_weights_count_rows_but_give_no_statistics(rng):
    acc = descramble.Autocorrelation(2).update(rng.normal(size=(5, 2)), weights=np.zeros(5))
    assert acc.count == 5 and acc.weight_sum == 0.0
    with pytest.raises(ValueError, match="no samples with positive weight"):
        acc.autocorrelation()
    with pytest.raises(ValueError, match="ddof"):
        acc.covariance(ddof=0)


def test_empty_accumulator_refuses_statistics():
    acc = descramble.Autocorrelation(4)
    with pytest.raises(ValueError, match="no samples"):
        acc.autocorrelation()
    with pytest.raises(ValueError, match="ddof"):
        acc.covariance()


def test_covariance_needs_more_weight_than_ddof(rng):
    acc = descramble.Autocorrelation(3).update(rng.normal(size=(2, 3)))
    acc.covariance(ddof=1)
    with pytest.raises(ValueError, match="ddof"):
        acc.covariance(ddof=2)
    with pytest.raises(TypeError, match="ddof"):
        acc.covariance(ddof="1")


def test_large_common_offset_keeps_relative_accuracy(rng):
    """1e9 + U(0,1) (docs/math.md §7): per-chunk centring keeps 1e-9 relative accuracy."""
    x = 1e9 + rng.uniform(0.0, 1.0, size=(200_000, 4))
    exact = reference.covariance(x - x[0])  # x - x[0] is exact in float64 (Sterbenz)
    acc = descramble.Autocorrelation(4)
    for chunk in np.array_split(x, 37):
        acc.update(chunk)
    ours = np.abs(acc.covariance() - exact).max() / np.abs(exact).max()
    naive = np.abs(reference.naive_covariance(x) * 200_000 / 199_999 - exact).max() / np.abs(exact).max()
    assert ours <= 1e-9, f"relative error {ours:.2e}"
    assert naive > 0.1, f"the naive formula should fail here, relative error {naive:.2e}"


def test_merge_of_accumulators_with_different_origins(rng):
    a_data = 1e6 + rng.normal(size=(500, 3))
    b_data = -2e6 + rng.normal(size=(700, 3))
    a = descramble.Autocorrelation(3).update(a_data)
    b = descramble.Autocorrelation(3).update(b_data)
    merged = a.copy().merge(b)
    both = np.vstack([a_data, b_data])
    np.testing.assert_allclose(merged.covariance(), reference.covariance(both), rtol=1e-10)
    np.testing.assert_allclose(merged.mean, both.mean(axis=0), rtol=1e-14)
    assert a.count == 500 and b.count == 700  # merge leaves its arguments alone


def test_self_merge_doubles_every_row(rng):
    x = rng.normal(size=(30, 2))
    acc = descramble.Autocorrelation(2).update(x)
    acc.merge(acc)
    doubled = descramble.Autocorrelation(2).update(np.vstack([x, x]))
    assert acc.count == 60
    np.testing.assert_allclose(acc.covariance(), doubled.covariance(), rtol=1e-12)


def test_copy_is_independent(rng):
    acc = descramble.Autocorrelation(3).update(rng.normal(size=(10, 3)))
    clone = acc.copy()
    clone.update(rng.normal(size=(5, 3)))
    assert acc.count == 10 and clone.count == 15


def test_repr_names_the_state(rng):
    acc = descramble.Autocorrelation(3).update(rng.normal(size=(10, 3)), weights=np.full(10, 0.5))
    assert repr(acc) == "Autocorrelation(n_features=3, count=10, weight_sum=5)"


def test_autocorrelation_function_on_arrays_and_streams(rng):
    x = rng.normal(size=(1000, 6))
    expected = reference.autocorrelation(x)
    np.testing.assert_allclose(descramble.autocorrelation(x), expected, rtol=1e-12)
    np.testing.assert_allclose(descramble.autocorrelation(x, chunk_rows=7), expected, rtol=1e-12)
    np.testing.assert_allclose(descramble.autocorrelation(iter(np.array_split(x, 9))), expected, rtol=1e-12)
    np.testing.assert_allclose(descramble.autocorrelation(list(np.array_split(x, 9))), expected, rtol=1e-12)
    np.testing.assert_allclose(
        descramble.autocorrelation((c for c in np.array_split(x, 4)), chunk_rows=10), expected, rtol=1e-12
    )


def test_autocorrelation_function_with_weights(rng):
    x = rng.normal(size=(100, 3))
    w = rng.uniform(size=100)
    expected = reference.autocorrelation(x, w)
    np.testing.assert_allclose(descramble.autocorrelation(x, weights=w), expected, rtol=1e-12)
    chunks = np.array_split(x, 5)
    wchunks = np.array_split(w, 5)
    got = descramble.autocorrelation(iter(chunks), weights=iter(wchunks))
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_update_from_keeps_what_came_before_a_bad_chunk(rng):
    good = [rng.normal(size=(10, 3)) for _ in range(3)]
    bad = rng.normal(size=(10, 4))
    acc = descramble.Autocorrelation(3)
    with pytest.raises(ValueError, match="chunk 3: expected 3 columns"):
        acc.update_from(iter(good + [bad]))
    expected = descramble.Autocorrelation(3).update(np.vstack(good))
    assert acc.count == 30
    np.testing.assert_allclose(acc.covariance(), expected.covariance(), rtol=1e-12)
