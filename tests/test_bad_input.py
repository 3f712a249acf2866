"""Bad input raises a precise TypeError/ValueError and leaves the accumulator as it was."""

import numpy as np
import pytest

import descramble
from conftest import assert_same_state, state_of


@pytest.fixture
def acc(rng):
    return descramble.Autocorrelation(3).update(1e3 + rng.normal(size=(20, 3)))


def nan_at(row, rows=8, value=np.nan):
    x = np.ones((rows, 3))
    x[row, 1] = value
    return x


BAD_CHUNKS = [
    (np.ones(3), ValueError, r"chunk: expected a 2-D array of shape \(rows, 3\).*got shape \(3,\)"),
    (np.ones((2, 3, 1)), ValueError, r"chunk: expected a 2-D array.*\(2, 3, 1\)"),
    (np.ones((4, 2)), ValueError, r"chunk: expected 3 columns \(n_features\), got 2"),
    (np.ones((4, 3), dtype=complex), TypeError, r"chunk: complex input"),
    (np.array([["a", "b", "c"]]), TypeError, r"chunk: expected real numbers.*<U1"),
    (np.array([[1, None, 2]], dtype=object), TypeError, r"chunk: expected real numbers.*object"),
    (np.array([["2020-01-01"] * 3], dtype="datetime64[D]"), TypeError, r"chunk: expected real numbers"),
    ("abc", TypeError, r"chunk: expected a 2-D array of numbers, got str"),
    (nan_at(5), ValueError, r"chunk: row 5 contains NaN \(column 1\)"),
    (nan_at(0), ValueError, r"chunk: row 0 contains NaN"),
    (nan_at(2000, rows=5000, value=np.inf), ValueError, r"chunk: row 2000 contains infinity"),
    (nan_at(3, value=-np.inf).astype(np.float32), ValueError, r"chunk: row 3 contains infinity"),
    (np.array([[1e300, 0, 0], [-1e300, 0, 0]]), (ValueError, OverflowError), r"overflow"),
]


@pytest.mark.parametrize("chunk, error, message", BAD_CHUNKS)
def test_bad_chunks_are_rejected_and_change_nothing(acc, chunk, error, message):
    before = state_of(acc)
    with pytest.raises(error, match=message):
        acc.update(chunk)
    assert_same_state(state_of(acc), before)


def test_non_finite_values_raise_the_value_error_subclass(acc):
    with pytest.raises(descramble.NonFiniteError):
        acc.update(nan_at(1))
    assert issubclass(descramble.NonFiniteError, ValueError)


BAD_WEIGHTS = [
    (np.array([1.0, -1.0, 1.0, 1.0]), ValueError, r"weights: entry 1 is -1; weights must be finite and non-negative"),
    (np.array([1.0, 1.0, np.nan, 1.0]), ValueError, r"weights: entry 2 is nan"),
    (np.array([np.inf, 1.0, 1.0, 1.0]), ValueError, r"weights: entry 0 is inf"),
    (np.ones(3), ValueError, r"weights: expected a 1-D array of 4 weights \(one per row\), got shape \(3,\)"),
    (np.ones((4, 1)), ValueError, r"weights: expected a 1-D array of 4 weights"),
    (np.ones(4, dtype=complex), TypeError, r"weights: complex input"),
    (np.array(["a"] * 4), TypeError, r"weights: expected real numbers"),
    ("abcd", TypeError, r"weights: expected a 1-D array of numbers"),
]


@pytest.mark.parametrize("weights, error, message", BAD_WEIGHTS)
def test_bad_weights_are_rejected_and_change_nothing(acc, weights, error, message):
    before = state_of(acc)
    with pytest.raises(error, match=message):
        acc.update(np.ones((4, 3)), weights=weights)
    assert_same_state(state_of(acc), before)


def test_merging_a_different_width_changes_nothing(acc):
    before = state_of(acc)
    other = descramble.Autocorrelation(4).update(np.ones((2, 4)))
    with pytest.raises(ValueError, match="other: expected an accumulator of 3 features, got 4"):
        acc.merge(other)
    with pytest.raises(TypeError, match="other: expected a descramble.Autocorrelation, got ndarray"):
        acc.merge(np.ones((3, 3)))
    assert_same_state(state_of(acc), before)


@pytest.mark.parametrize(
    "n_features, error",
    [(0, ValueError), (-3, ValueError), (2.5, TypeError), ("3", TypeError), (True, TypeError), (None, TypeError)],
)
def test_n_features_must_be_a_positive_integer(n_features, error):
    with pytest.raises(error, match="n_features: expected a positive integer"):
        descramble.Autocorrelation(n_features)


def test_numpy_integer_n_features_is_fine():
    assert descramble.Autocorrelation(np.int64(4)).n_features == 4


@pytest.mark.parametrize(
    "data, kwargs, error, message",
    [
        (42, {}, TypeError, r"data: expected an array of shape \(N, n_features\), a path.*or an iterable of chunks, got int"),
        (iter([]), {}, ValueError, r"data: the iterable yielded no chunks"),
        (np.ones((3, 0)), {}, ValueError, r"data: expected at least one feature"),
        (np.ones((0, 3)), {}, ValueError, r"no samples"),
        (np.ones((5, 2)), {"chunk_rows": 0}, ValueError, r"chunk_rows: expected a positive integer"),
        (np.ones((5, 2)), {"chunk_rows": 1.5}, TypeError, r"chunk_rows: expected a positive integer"),
        (np.ones((5, 2)), {"weights": np.ones(4)}, ValueError, r"weights: expected a 1-D array of 5 weights"),
        (iter([np.ones((2, 2))]), {"weights": np.ones(2)}, TypeError, r"weights: with an iterable of chunks"),
        (iter([np.ones((2, 2))] * 2), {"weights": iter([np.ones(2)])}, ValueError, r"weights: ran out after 1"),
        (iter([np.ones((2, 2))]), {"weights": iter([np.ones(2)] * 2)}, ValueError, r"more weight arrays than chunks"),
        (iter([np.ones((2, 2)), np.ones((2, 3))]), {}, ValueError, r"data: chunk 1: expected 2 columns"),
        (iter([np.ones((2, 2)), np.ones(2)]), {}, ValueError, r"data: chunk 1: expected a 2-D array"),
        (np.ones((2, 2, 2)), {}, ValueError, r"data: expected a 2-D array"),
    ],
)
def test_autocorrelation_function_rejects_bad_sources(data, kwargs, error, message):
    with pytest.raises(error, match=message):
        descramble.autocorrelation(data, **kwargs)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"first_row": -5}, ValueError, r"first_row: expected a non-negative integer"),
        ({"first_row": 2**64}, ValueError, r"first_row: expected a non-negative integer below 2\*\*62"),
        ({"first_row": 1.5}, TypeError, r"first_row: expected a non-negative integer"),
        ({"first_row": "3"}, TypeError, r"first_row: expected a non-negative integer"),
        ({"first_row": True}, TypeError, r"first_row: expected a non-negative integer"),
        ({"source": 5}, TypeError, r"source: expected a str"),
        ({"source": None}, TypeError, r"source: expected a str"),
    ],
)
def test_update_checks_first_row_and_source(acc, kwargs, error, message):
    """A bad first_row/source is named, not pybind11's 'incompatible function arguments' or a negative row."""
    before = state_of(acc)
    with pytest.raises(error, match=message):
        acc.update(nan_at(1), **kwargs)
    assert_same_state(state_of(acc), before)
    with pytest.raises(descramble.NonFiniteError) as info:
        acc.update(nan_at(1), first_row=np.int64(7), source="mine")
    assert (info.value.row, info.value.source) == (8, "mine")


def test_smoothness_loss_needs_a_smoothness_object():
    from descramble.descrambler import smoothness_loss

    with pytest.raises(TypeError, match=r"smoothness: expected a descramble.smoothness.Smoothness.*got str"):
        smoothness_loss(np.eye(4), np.eye(4), "fourier")
    assert smoothness_loss(np.eye(4), np.eye(4), descramble.smoothness.fourier(4)) == pytest.approx(
        np.trace(descramble.smoothness.fourier(4).gram))


def test_an_autocorrelation_near_the_float64_limit_is_not_called_non_finite():
    """Symmetrising entries near 1.8e308 must not overflow into a false 'contains NaN or infinity'."""
    W = np.eye(3)
    with pytest.raises(ValueError, match="overflows float64") as info:
        descramble.descramble(W, autocorrelation=np.eye(3) * 1e308)
    assert "NaN or infinity" not in str(info.value)
    d = descramble.descramble(W * 1e-160, autocorrelation=np.diag([1e308, 5e307, 1e307]))
    assert np.isfinite(d.loss)


def test_convergence_checks_the_weights_like_descramble():
    with pytest.raises(TypeError, match=r"weights: expected a real matrix, got complex"):
        descramble.convergence(np.ones((3, 2)) + 1j, np.ones((10, 2)))
    with pytest.raises(ValueError, match=r"weights: contains NaN or infinity"):
        descramble.convergence(np.full((3, 2), np.nan), np.ones((10, 2)))


def test_diagonal_criterion_overflow_is_an_error_not_inf():
    with pytest.raises(ValueError, match="overflows float64"):
        descramble.descramble(np.eye(2) * 1e308, criterion="diagonal")


def test_a_differentiation_matrix_whose_gram_overflows_is_named():
    with pytest.raises(ValueError, match=r"D: D\^T D overflows float64"):
        descramble.smoothness.from_matrix(np.ones((3, 3)) * 1e200)


@pytest.mark.parametrize("chunk_rows", [8000, None])
def test_a_layer_that_overflows_names_the_row_of_the_data_and_the_layer(chunk_rows):
    """Row 5000 is finite but overflows in the layer: .row is 5000 (not its row in a 4096-row block)
    and no column of the data is blamed."""
    from descramble.hidden import hidden_autocorrelations

    x = np.ones((10000, 2))
    x[5000] = 1e150
    with pytest.raises(descramble.NonFiniteError, match=r"data: row 5000 overflows float64 in layers\[0\]") as info:
        hidden_autocorrelations([(np.full((3, 2), 1e200), None, "identity")], x, chunk_rows=chunk_rows)
    assert (info.value.row, info.value.column, info.value.source) == (5000, None, "data")


@pytest.mark.parametrize("bad_rows, first", [((5, 6), 5), ((5, 8), 5), ((6, 7), 6), ((7,), 7)])
def test_stability_names_the_first_bad_row_whichever_half_holds_it(rng, bad_rows, first):
    x = rng.normal(size=(40, 3))
    x[list(bad_rows), 1] = np.nan
    for data in (x, [x[:3], x[3:]]):
        with pytest.raises(descramble.NonFiniteError) as info:
            descramble.stability(rng.normal(size=(4, 3)), data)
        assert (info.value.row, info.value.column) == (first, 1)
