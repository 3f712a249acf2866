"""Warnings that prevent wrong science (descramble.diagnostics): raised with their facts where they apply,
and never in the normal case."""

import warnings

import numpy as np
import pytest

import descramble
from descramble import (ConstantDataWarning, DescrambleWarning, IgnoredArgumentWarning, MissingBiasWarning,
                        UnderdeterminedWarning)


@pytest.fixture
def layer(rng):
    """A full-rank layer (m = 6 < n = 10) with plenty of off-centre data and a bias."""
    W = rng.normal(size=(6, 10))
    X = rng.normal(size=(2000, 10)) @ rng.normal(size=(10, 10)) + 2.0
    b = rng.normal(size=6)
    return W, X, b


def caught(category, call, *args, **kwargs):
    """Run ``call`` and return the warnings of ``category`` it issued (every other kind must not occur)."""
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        call(*args, **kwargs)
    others = [w for w in record if not issubclass(w.category, category)]
    assert not others, [str(w.message) for w in others]
    for w in record:
        assert w.filename == __file__ or call is not descramble.descramble, w.filename  # points at the caller
    return [w.message for w in record]


def silent(call, *args, **kwargs):
    """``call`` issues no DescrambleWarning (they are errors here)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", DescrambleWarning)
        return call(*args, **kwargs)


# -- the normal case --------------------------------------------------------------------------


def test_no_warning_in_the_normal_case(layer, rng):
    W, X, b = layer
    acc = descramble.accumulate(X)
    for kwargs in ({"data": X, "bias": b}, {"autocorrelation": acc, "bias": b}, {"data": X, "bias": 0},
                   {"autocorrelation": acc.autocorrelation()}, {"data": X - X.mean(axis=0)},
                   {"data": rng.normal(size=(500, 10))}):  # zero-mean data: the sample mean is only noise
        d = silent(descramble.descramble, W, **kwargs)
        assert d.P.shape == (6, 6)
    Y = X @ W.T + b
    silent(descramble.descramble, hidden=descramble.accumulate(Y))
    silent(descramble.descramble, hidden=Y.T @ Y / len(Y))
    silent(descramble.descramble, np.eye(4), criterion="diagonal")
    silent(descramble.stability, W, X, bias=b)
    silent(descramble.convergence, W, X, bias=b, sizes=[3, 100])  # N = 3 < m is not warned: only the whole


@pytest.mark.filterwarnings("error::descramble.DescrambleWarning")
def test_error_filter_mark_passes_the_normal_case(rng):
    """pytest's ``-W error::descramble.DescrambleWarning`` (Python's own -W cannot name a class of a module
    that is not imported yet): a layer with its bias and enough data runs clean; without the bias it fails."""
    X = rng.normal(size=(500, 8)) + 1.0
    W = rng.normal(size=(5, 8))
    assert descramble.descramble(W, data=X, bias=rng.normal(size=5)).n_samples == 500
    with pytest.raises(MissingBiasWarning):
        descramble.descramble(W, data=X)


# -- UnderdeterminedWarning -------------------------------------------------------------------


def test_fewer_samples_than_units(layer):
    W, X, b = layer
    few = X[:4]
    for kwargs in ({"data": few, "bias": b}, {"autocorrelation": descramble.accumulate(few), "bias": b}):
        [w] = caught(UnderdeterminedWarning, descramble.descramble, W, **kwargs)
        assert (w.size, w.rank, w.n_samples) == (6, 4, 4)
        assert "N = 4 samples for m = 6" in str(w) and "leading 4 components" in str(w)
    Y = few @ W.T + b
    [w] = caught(UnderdeterminedWarning, descramble.descramble, hidden=descramble.accumulate(Y))
    assert (w.size, w.rank, w.n_samples) == (6, 4, 4)
    [w] = caught(UnderdeterminedWarning, descramble.descramble, hidden=Y.T @ Y / 4)  # a matrix: N unknown
    assert (w.size, w.rank, w.n_samples) == (6, 4, None)
    assert "N =" not in str(w)


def test_more_units_than_inputs(rng):
    W, X = rng.normal(size=(9, 3)), rng.normal(size=(1000, 3)) + 1.0
    [w] = caught(UnderdeterminedWarning, descramble.descramble, W, data=X, bias=rng.normal(size=9))
    assert (w.size, w.rank, w.n_samples) == (9, 4, 1000)
    assert "n = 3 inputs and a bias for m = 9 units, so rank(S) <= 4" in str(w)
    [w] = caught(UnderdeterminedWarning, descramble.descramble, W, data=X, bias=0)
    assert (w.size, w.rank) == (9, 3)


@pytest.mark.parametrize("precision", ["float64", "mixed"])
def test_collinear_hidden_units(rng, precision):
    """Rank 3 signals on 6 units; "mixed" accumulators resolve only float32 (tolerance m * eps32 * max mu)."""
    Y = rng.normal(size=(5000, 3)) @ rng.normal(size=(3, 6)) + 0.0
    acc = descramble.accumulate(Y, precision=precision)
    [w] = caught(UnderdeterminedWarning, descramble.descramble, hidden=acc)
    assert (w.size, w.rank, w.n_samples) == (6, 3, 5000)
    assert "rank deficient" in str(w)
    full = descramble.accumulate(rng.normal(size=(5000, 6)) * np.logspace(0, -2, 6), precision=precision)
    silent(descramble.descramble, hidden=full)


def test_numerical_rank_tolerance():
    rank = descramble.descrambler.numerical_rank
    eps = np.finfo(float).eps
    assert rank([4.0, 1.0, 0.0, 0.0]) == 2
    assert rank([1.0, 3 * eps, 0.0, 0.0]) == 1  # below m * eps * max(mu)
    assert rank([1.0, 5 * eps, 0.0, 0.0]) == 2
    assert rank([1.0, 1e-9, 0.0, 0.0], "mixed") == 1  # float32 eps for "mixed" statistics
    assert rank([0.0, 0.0]) == 0


# -- ConstantDataWarning ----------------------------------------------------------------------


@pytest.mark.parametrize("value", [0.0, 0.1, 1 / 3, -2.5e-7, 1e9 + 0.1])
def test_constant_data(rng, value):
    W, b = rng.normal(size=(3, 4)), rng.normal(size=3)
    X = np.full((50, 4), value) * np.arange(1, 5)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        descramble.descramble(W, data=X, bias=b)
    constant = [w.message for w in record if issubclass(w.category, ConstantDataWarning)]
    assert [w.source for w in constant] == ["data"]
    assert "all 50 samples are identical" in str(constant[0])
    # and the consequence: S = y y^T has rank <= 1
    assert [w.message.rank <= 1 for w in record if issubclass(w.category, UnderdeterminedWarning)] == [True]
    acc = descramble.accumulate(X)
    for kwargs, source in (({"autocorrelation": acc}, "autocorrelation"),):
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            descramble.descramble(W, bias=b, **kwargs)
        assert [w.message.source for w in record if issubclass(w.category, ConstantDataWarning)] == [source]
    hidden = descramble.accumulate(X @ W.T + b)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        descramble.descramble(hidden=hidden)
    assert [w.message.source for w in record if issubclass(w.category, ConstantDataWarning)] == ["hidden"]


def test_not_constant(rng):
    W = rng.normal(size=(3, 4))
    one_row = np.ones((1, 4))  # N = 1: too few to call constant (the rank warning says N < m)
    assert caught(UnderdeterminedWarning, descramble.descramble, W, data=one_row, bias=0)
    # A large common offset with small noise (docs/math.md §7) varies: not constant. Without a bias to absorb
    # the offset, S = W (Cov + mean mean^T) W^T resolves only its leading component in float64
    # (mu_2 / mu_1 ~ 1e-24): that is underdetermined, and said so.
    X = 1e9 + rng.normal(size=(200, 4)) * 1e-3
    [w] = caught(UnderdeterminedWarning, descramble.descramble, W, data=X, bias=np.zeros(3))
    assert (w.rank, w.n_samples) == (1, 200)
    is_constant = descramble.descrambler.is_constant
    assert is_constant(descramble.accumulate(np.zeros((3, 2))))
    assert not is_constant(descramble.accumulate(np.array([[1.0, 2.0], [1.0, 2.0 + 1e-12]])))


# -- MissingBiasWarning -----------------------------------------------------------------------


def test_missing_bias(layer):
    W, X, b = layer
    for kwargs in ({"data": X}, {"autocorrelation": descramble.accumulate(X)}):
        [w] = caught(MissingBiasWarning, descramble.descramble, W, **kwargs)
        assert w.layer == "weights"
        assert "W x, not of the layer's pre-activations W x + b" in str(w) and "bias=0" in str(w)
    silent(descramble.descramble, W, autocorrelation=descramble.accumulate(X).autocorrelation())  # no mean


def test_bias_zero_says_the_layer_has_none(layer):
    W, X, b = layer
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MissingBiasWarning)
        without = descramble.descramble(W, data=X)
    for zero in (0, 0.0, np.float32(0), np.array(0), np.int64(0)):
        d = silent(descramble.descramble, W, data=X, bias=zero)
        np.testing.assert_array_equal(d.P, without.P)
    explicit = silent(descramble.descramble, W, data=X, bias=np.zeros(6))
    np.testing.assert_allclose(explicit.P, without.P, atol=1e-8)
    C = descramble.accumulate(X).autocorrelation()  # a matrix has no mean, and needs none for b = 0
    np.testing.assert_allclose(silent(descramble.descramble, W, autocorrelation=C, bias=0).P, without.P, atol=1e-8)
    with pytest.raises(ValueError, match=r"bias: a scalar bias must be 0.*shape \(m,\)"):
        descramble.descramble(W, data=X, bias=3)
    with pytest.raises(TypeError, match="bias: expected an array of shape"):
        descramble.descramble(W, data=X, bias=False)
    with pytest.raises(ValueError, match="bias: needs the input mean"):
        descramble.descramble(W, autocorrelation=C, bias=b)


def test_zero_mean_tolerance(rng):
    has_zero_mean = descramble.descrambler.has_zero_mean
    X = rng.normal(size=(10_000, 5))
    assert has_zero_mean(descramble.accumulate(X))  # within 6 standard errors
    assert not has_zero_mean(descramble.accumulate(X + 0.1))  # 10 standard errors
    assert has_zero_mean(descramble.accumulate(1e9 * (X - X.mean(axis=0))))  # centred, up to rounding
    assert has_zero_mean(descramble.accumulate(np.zeros((4, 3))))


# -- wrappers ---------------------------------------------------------------------------------


def test_stability_warns_each_kind_once(layer):
    W, X, b = layer
    record = caught((UnderdeterminedWarning, MissingBiasWarning), descramble.stability, W, X[:9])
    assert sorted(type(w).__name__ for w in record) == ["MissingBiasWarning", "UnderdeterminedWarning"]
    [under] = [w for w in record if isinstance(w, UnderdeterminedWarning)]
    assert (under.size, under.rank, under.n_samples) == (6, 5, 5)  # the first half: rows 0, 2, 4, 6, 8


def test_convergence_warns_for_the_whole_stream_only(layer):
    W, X, b = layer
    [w] = caught(MissingBiasWarning, descramble.convergence, W, X, sizes=[2, 4, 100])
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        descramble.convergence(W, X[:5], bias=b)
    assert [(w.message.rank, w.message.n_samples) for w in record] == [(5, 5)]
    assert record[0].filename == __file__  # descramble.convergence(...) is a module call: still the caller


def test_progress_without_data_is_ignored_with_a_warning(layer):
    W, X, b = layer
    [w] = caught(IgnoredArgumentWarning, descramble.descramble, W, autocorrelation=descramble.accumulate(X),
                 bias=b, progress=True)
    assert w.argument == "progress"
    with pytest.raises(TypeError, match="progress: expected True or False"):
        descramble.descramble(W, data=X, bias=b, progress="yes")


def test_n_samples(layer):
    W, X, b = layer
    assert silent(descramble.descramble, W, data=X, bias=b).n_samples == 2000
    assert silent(descramble.descramble, W, data=iter([X[:700], X[700:]]), bias=b).n_samples == 2000
    acc = descramble.accumulate(X[:1500])
    assert silent(descramble.descramble, W, autocorrelation=acc, bias=b).n_samples == 1500
    assert silent(descramble.descramble, W, autocorrelation=acc.autocorrelation()).n_samples is None
    Y = X @ W.T + b
    assert silent(descramble.descramble, hidden=descramble.accumulate(Y)).n_samples == 2000
    assert silent(descramble.descramble, hidden=Y.T @ Y / len(Y)).n_samples is None
    assert silent(descramble.descramble, np.eye(3), criterion="diagonal").n_samples is None
