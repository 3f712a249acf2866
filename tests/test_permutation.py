"""Permutation descramblers (issue 13): descramble(criterion="permutation" | "signed-permutation").

The C++ search is checked against exhaustive NumPy enumeration for small m,
a planted order, its certificate, determinism, persistence and bad arguments.
"""

import itertools

import numpy as np
import pytest

import descramble
from descramble import smoothness as sm
from descramble.descrambler import Descrambler

# Rank-deficient S on purpose (rank m // 2, a layer with fewer inputs than units, a smooth kernel).
pytestmark = pytest.mark.filterwarnings("ignore::descramble.UnderdeterminedWarning")


def eta(A, S, p, s=None):
    """tr(A Pi S Pi^T) with (Pi x)_i = s_i x[p_i], straight from the definition."""
    P = np.zeros_like(A)
    P[np.arange(len(p)), p] = 1.0 if s is None else s
    return float(np.trace(A @ P @ S @ P.T))


def exhaustive(A, S, signed=False):
    m = A.shape[0]
    best = np.inf
    for p in itertools.permutations(range(m)):
        p = np.array(p)
        if not signed:
            best = min(best, eta(A, S, p))
            continue
        for bits in itertools.product((1.0, -1.0), repeat=m):
            best = min(best, eta(A, S, p, np.array(bits)))
    return best


def random_psd(rng, m, rank):
    G = rng.standard_normal((m, rank))
    return G @ G.T


OPERATORS = [lambda m: sm.fourier(m), lambda m: sm.finite_difference(m), lambda m: sm.finite_difference(m, order=2)]


@pytest.mark.parametrize("m", range(2, 8))
@pytest.mark.parametrize("op", range(len(OPERATORS)))
def test_the_permutation_is_the_exhaustive_optimum(m, op):
    rng = np.random.default_rng(100 * m + op)
    smooth = OPERATORS[op](m)
    for rank in (m, max(1, m // 2)):
        S = random_psd(rng, m, rank)
        d = descramble.descramble(hidden=S, smoothness=smooth, criterion="permutation")
        best = exhaustive(smooth.gram, S)
        assert d.loss == pytest.approx(best, rel=1e-9, abs=1e-9)
        assert d.loss == pytest.approx(eta(smooth.gram, S, d.permutation), rel=1e-9, abs=1e-9)
        assert d.signs is None and d.criterion == "permutation"
        x = rng.standard_normal(m)
        np.testing.assert_array_equal(d.P @ x, x[d.permutation])
        assert d.gap >= 0 and d.loss >= d.bound - 1e-9 * max(1.0, abs(d.bound))


@pytest.mark.parametrize("m", range(2, 6))
def test_the_signed_permutation_is_the_exhaustive_optimum(m):
    rng = np.random.default_rng(m)
    for make in OPERATORS:
        smooth = make(m)
        S = random_psd(rng, m, m)
        d = descramble.descramble(hidden=S, smoothness=smooth, criterion="signed-permutation")
        assert d.loss == pytest.approx(exhaustive(smooth.gram, S, signed=True), rel=1e-9, abs=1e-9)
        assert set(np.unique(d.signs)) <= {-1.0, 1.0}
        x = rng.standard_normal(m)
        np.testing.assert_allclose(d.P @ x, d.signs * x[d.permutation], rtol=0, atol=0)
        # signs never hurt: the signed optimum is at most the unsigned one
        assert d.loss <= descramble.descramble(hidden=S, smoothness=smooth, criterion="permutation").loss + 1e-9


@pytest.mark.parametrize("m", [16, 48])
def test_a_planted_order_is_recovered(m):
    # Units on a line correlated by a Gaussian kernel: under first
    # differences the natural order and its reversal are the only optima.
    i = np.arange(m)
    S = np.exp(-0.5 * ((i[:, None] - i[None, :]) / 3.0) ** 2)
    rng = np.random.default_rng(m)
    q = rng.permutation(m)
    W = rng.standard_normal((m, 5))
    d = descramble.descramble(W, hidden=S[np.ix_(q, q)], smoothness="fd", criterion="permutation")
    order = q[d.permutation]
    assert np.array_equal(order, i) or np.array_equal(order, i[::-1])
    assert d.loss == pytest.approx(eta(sm.finite_difference(m).gram, S, i), rel=1e-12)
    np.testing.assert_array_equal(d.weights, W[d.permutation])
    assert d.gap == pytest.approx((d.loss - d.bound) / d.bound)


@pytest.mark.parametrize("m, width", [(24, 2.5), (64, 4.0)])
def test_a_planted_circular_order_is_recovered_up_to_rotation_and_reversal(m, width):
    # A kernel on a circle, under the (circular) Fourier operator: every
    # rotation of the natural order and of its reversal is optimal.
    i = np.arange(m)
    dist = np.minimum(np.abs(i[:, None] - i[None, :]), m - np.abs(i[:, None] - i[None, :]))
    S = np.exp(-0.5 * (dist / width) ** 2)
    q = np.random.default_rng(9).permutation(m)
    d = descramble.descramble(hidden=S[np.ix_(q, q)], smoothness="fourier", criterion="permutation")
    order = q[d.permutation]
    symmetries = [np.roll(i, r) for r in range(m)] + [np.roll(i[::-1], r) for r in range(m)]
    assert any(np.array_equal(order, o) for o in symmetries)
    assert d.loss == pytest.approx(eta(sm.fourier(m).gram, S, i), rel=1e-10)


def test_from_a_layer_and_data():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((500, 6)) + 1.0
    W, b = rng.standard_normal((9, 6)), rng.standard_normal(9)
    smooth = descramble.descramble(W, data=X, bias=b)
    d = descramble.descramble(W, data=X, bias=b, criterion="permutation")
    assert d.bound == smooth.bound and d.n_samples == 500
    np.testing.assert_allclose(d.hidden, smooth.hidden)
    assert d.loss == pytest.approx(eta(d.smoothness.gram, d.hidden, d.permutation), rel=1e-10)
    assert d.loss >= d.bound and d.gap == pytest.approx((d.loss - d.bound) / d.bound)
    np.testing.assert_allclose(d.apply(W), W[d.permutation])


def test_the_search_is_deterministic_for_a_seed():
    rng = np.random.default_rng(5)
    S = random_psd(rng, 40, 40)
    runs = [descramble.descramble(hidden=S, criterion="signed-permutation", seed=seed, max_iterations=30)
            for seed in (7, 7, 8)]
    np.testing.assert_array_equal(runs[0].permutation, runs[1].permutation)
    np.testing.assert_array_equal(runs[0].signs, runs[1].signs)
    assert runs[0].loss == runs[1].loss
    # any seed and budget: a valid result with a non-negative certificate
    for d in runs + [descramble.descramble(hidden=S, criterion="permutation", max_iterations=0),
                     descramble.descramble(hidden=S, criterion="permutation", time_limit=1e-3)]:
        assert sorted(d.permutation) == list(range(40)) and d.gap >= 0


def test_the_other_criteria_have_no_permutation():
    S = random_psd(np.random.default_rng(0), 5, 5)
    d = descramble.descramble(hidden=S)
    assert d.permutation is None and d.signs is None and d.gap is None


@pytest.mark.parametrize("criterion", ["permutation", "signed-permutation"])
def test_save_and_load_keep_the_permutation(tmp_path, criterion):
    S = random_psd(np.random.default_rng(1), 7, 7)
    d = descramble.descramble(np.eye(7), hidden=S, criterion=criterion)
    d.save(tmp_path / "d.npz")
    e = Descrambler.load(tmp_path / "d.npz")
    assert e.criterion == criterion and e.gap == d.gap and e.loss == d.loss
    np.testing.assert_array_equal(e.permutation, d.permutation)
    np.testing.assert_array_equal(e.P, d.P)
    assert (e.signs is None) == (criterion == "permutation")
    # a P that disagrees with the permutation is rejected
    state = d._state()
    state["P"] = np.eye(7)[::-1].copy() if not np.array_equal(d.P, np.eye(7)[::-1]) else np.eye(7)
    np.savez(tmp_path / "bad.npz", **state)
    with pytest.raises(ValueError, match="permutation matrix"):
        Descrambler.load(tmp_path / "bad.npz")


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(criterion="permutations"), ValueError, "criterion"),
    (dict(criterion=3), TypeError, "criterion"),
    (dict(criterion="permutation", seed=-1), ValueError, "seed"),
    (dict(criterion="permutation", seed=1.5), TypeError, "seed"),
    (dict(criterion="permutation", seed=2**64), ValueError, "seed"),
    (dict(criterion="permutation", max_iterations=-2), ValueError, "max_iterations"),
    (dict(criterion="permutation", max_iterations=True), TypeError, "max_iterations"),
    (dict(criterion="permutation", time_limit=0), ValueError, "time_limit"),
    (dict(criterion="permutation", time_limit=float("nan")), ValueError, "time_limit"),
    (dict(criterion="permutation", time_limit="1s"), TypeError, "time_limit"),
])
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        descramble.descramble(hidden=np.eye(4), **kwargs)


@pytest.mark.parametrize("criterion", ["permutation", "signed-permutation"])
def test_the_underdetermined_warning_speaks_of_the_order_not_of_rotations(criterion):
    rng = np.random.default_rng(7)
    W = rng.standard_normal((6, 2))
    with pytest.warns(descramble.UnderdeterminedWarning) as caught:
        d = descramble.descramble(W, autocorrelation=np.eye(2), criterion=criterion)
    message = str(caught[0].message)
    assert "weakly determined" in message and "certificate gap" in message
    assert "null space of S" not in message  # the rotation wording does not apply to an order
    assert caught[0].message.rank == 2 and caught[0].message.size == 6
    assert d.permutation is not None
    with pytest.warns(descramble.UnderdeterminedWarning, match="null space of S"):
        descramble.descramble(W, autocorrelation=np.eye(2))


@pytest.mark.parametrize("time_limit", [1e10, 1e20, 1e300])
def test_a_huge_time_limit_is_no_limit(time_limit):
    # The core's deadline t0 + time_limit in int64 nanoseconds overflowed past ~9.2e9 s: the search stopped at once.
    rng = np.random.default_rng(0)
    W, X = rng.standard_normal((6, 5)), rng.standard_normal((50, 5))
    unlimited = descramble.descramble(W, data=X, criterion="permutation")
    limited = descramble.descramble(W, data=X, criterion="permutation", time_limit=time_limit)
    assert limited.loss == unlimited.loss
    np.testing.assert_array_equal(limited.permutation, unlimited.permutation)


@pytest.mark.parametrize("scale", [1e302, 1e303])
def test_losses_that_overflow_in_the_search_are_a_value_error(scale):
    # The closed form's loss is finite but every permutation's overflows: the core's search kept no best (segfault).
    rng = np.random.default_rng(0)
    W, X = rng.standard_normal((16, 16)), rng.standard_normal((200, 16))
    S = W @ (X.T @ X / 200) @ W.T
    with pytest.raises(ValueError, match="overflow"):
        descramble.descramble(hidden=S * scale, criterion="permutation", max_iterations=2)
