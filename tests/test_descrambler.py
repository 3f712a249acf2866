"""The closed-form descrambler against its bound, the iterative reference and known closed forms."""

import numpy as np
import pytest

import descramble
from descramble import reference, smoothness

scipy = pytest.importorskip("scipy", reason="SciPy (the reference extra) runs the iterative descrambler")


def random_layer(rng, m, n, spread=3.0):
    W = rng.normal(size=(m, n))
    L = rng.normal(size=(n, n)) * rng.uniform(0.2, spread, size=n)
    C = L @ L.T / n
    return W, C


def assert_orthogonal_det_one(P):
    np.testing.assert_allclose(P @ P.T, np.eye(P.shape[0]), atol=1e-10)
    assert np.linalg.det(P) == pytest.approx(1.0, abs=1e-9)


# Layers with more units than inputs (m > n) are underdetermined by design here.
@pytest.mark.filterwarnings("ignore::descramble.UnderdeterminedWarning")
@pytest.mark.parametrize("m, n", [(1, 1), (1, 4), (4, 1), (8, 8), (16, 5), (5, 16), (33, 20)])
@pytest.mark.parametrize("name", ["fourier", "fd", "fd-circular"])
def test_closed_form_reaches_the_bound(rng, m, n, name):
    W, C = random_layer(rng, m, n)
    d = descramble.descramble(W, autocorrelation=C, smoothness=name)
    assert_orthogonal_det_one(d.P)
    S = W @ C @ W.T
    np.testing.assert_allclose(d.hidden, S, rtol=1e-10, atol=1e-12)
    assert d.loss == pytest.approx(reference.eta(d.P, d.smoothness.gram, S), rel=1e-10, abs=1e-12)
    assert d.loss == pytest.approx(d.bound, rel=1e-9, abs=1e-10)
    np.testing.assert_allclose(d.weights, d.P @ W)
    # The bound is a bound: no random orthogonal matrix does better.
    for _ in range(20):
        Q, _ = np.linalg.qr(rng.normal(size=(m, m)))
        assert reference.eta(Q, d.smoothness.gram, S) >= d.bound * (1 - 1e-9) - 1e-12


def test_never_worse_than_the_iterative_reference_from_several_starts(rng):
    m = 10
    W, C = random_layer(rng, m, 14)
    S = W @ C @ W.T
    closed = descramble.descramble(hidden=S)
    for seed in [None, 1, 2, 3]:
        it = reference.descramble_iterative(S, "fourier", seed=seed, max_iter=3000)
        assert closed.loss <= it["loss"] * (1 + 1e-9), (closed.loss, it["loss"], seed)
        assert_orthogonal_det_one(it["P"])
    # and the best iterative run gets close to the closed form (same problem, docs/math.md §5)
    best = min(reference.descramble_iterative(S, "fourier", seed=s)["loss"] for s in [None, 1, 2])
    assert best <= closed.loss * (1 + 1e-3)


def test_iterative_gradient_matches_finite_differences(rng):
    m = 6
    A = smoothness.fourier(m).gram
    W, C = random_layer(rng, m, 6)
    S = W @ C @ W.T
    q = rng.normal(scale=0.3, size=m * (m - 1) // 2)
    value, grad = reference.eta_and_gradient(q, A, S)
    assert value == pytest.approx(reference.eta(reference.cayley(q, m), A, S), rel=1e-12)
    h = 1e-6
    numeric = np.array([
        (reference.eta_and_gradient(q + h * e, A, S)[0] - reference.eta_and_gradient(q - h * e, A, S)[0]) / (2 * h)
        for e in np.eye(q.size)
    ])
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-6 * np.abs(numeric).max())


def test_isotropic_inputs_give_the_svd_along_the_smooth_basis(rng):
    """C = c I: P W = T Sigma V^T (docs/math.md §3, 'the emergence of the SVD')."""
    m, n = 7, 12
    W = rng.normal(size=(m, n))
    d = descramble.descramble(W, autocorrelation=2.5 * np.eye(n), smoothness="fd")
    assert d.degenerate == []  # unique basis, distinct singular values
    _, sigma, Vt = np.linalg.svd(W, full_matrices=False)
    T = smoothness.finite_difference(m).basis()[1]
    rows = T.T @ d.weights  # = Sigma V^T up to the sign of each row
    np.testing.assert_allclose(np.abs(rows), np.abs(sigma[:, None] * Vt), atol=1e-10)
    np.testing.assert_allclose(d.spectrum, 2.5 * sigma**2, rtol=1e-12)
    # the largest principal component sits on the smoothest mode, the next on the next
    np.testing.assert_allclose(np.linalg.norm(rows, axis=1), sigma, rtol=1e-12)


def test_bias_equals_explicit_pre_activations(rng):
    m, n = 6, 9
    X = rng.normal(loc=2.0, size=(4000, n))
    W = rng.normal(size=(m, n))
    b = rng.normal(size=m) * 3
    with_bias = descramble.descramble(W, data=X, bias=b, smoothness="fd")
    hidden = descramble.Autocorrelation(m).update(X @ W.T + b)
    explicit = descramble.descramble(W, hidden=hidden, smoothness="fd")
    np.testing.assert_allclose(with_bias.hidden, explicit.hidden, rtol=1e-10)
    np.testing.assert_allclose(with_bias.P, explicit.P, atol=1e-8)
    assert with_bias.loss == pytest.approx(explicit.loss, rel=1e-10)


def test_autocorrelation_object_matrix_and_data_agree(rng):
    X = rng.normal(size=(500, 5))
    W = rng.normal(size=(4, 5))
    acc = descramble.Autocorrelation(5).update(X)
    a = descramble.descramble(W, autocorrelation=acc)
    b = descramble.descramble(W, autocorrelation=acc.autocorrelation())
    c = descramble.descramble(W, data=iter(np.array_split(X, 3)))
    np.testing.assert_allclose(a.P, b.P, atol=1e-10)
    np.testing.assert_allclose(a.P, c.P, atol=1e-10)


@pytest.mark.parametrize("m, n, rank", [(12, 4, 4), (10, 10, 3), (5, 8, 2)])
def test_more_units_than_rank(rng, m, n, rank):
    W = rng.normal(size=(m, rank)) @ rng.normal(size=(rank, n))
    with pytest.warns(descramble.UnderdeterminedWarning) as caught:
        d = descramble.descramble(W, autocorrelation=np.eye(n), smoothness="fd")
    assert [(w.message.size, w.message.rank, w.message.n_samples) for w in caught] == [(m, rank, None)]
    assert_orthogonal_det_one(d.P)
    np.testing.assert_allclose(d.spectrum[rank:], 0, atol=1e-10)
    assert d.loss == pytest.approx(d.bound, rel=1e-9, abs=1e-9)
    assert any(g.kind == "spectrum" and list(g.indices) == list(range(rank, m)) for g in d.degenerate)


def test_degeneracies_are_reported(rng):
    d = descramble.descramble(hidden=np.eye(6), smoothness="fourier")
    kinds = {(g.kind, tuple(g.indices)) for g in d.degenerate}
    assert ("spectrum", tuple(range(6))) in kinds  # S = I: any U
    assert ("smoothness", (1, 2)) in kinds  # the cos/sin pair of frequency 1
    assert d.loss == pytest.approx(d.bound)


@pytest.mark.filterwarnings("ignore::descramble.UnderdeterminedWarning")  # random m > n layers
def test_determinism_and_det_one_on_many_layers(rng):
    for trial in range(30):
        m, n = rng.integers(1, 12, size=2)
        W, C = random_layer(rng, m, n)
        a = descramble.descramble(W, autocorrelation=C)
        b = descramble.descramble(W.copy(), autocorrelation=C.copy())
        np.testing.assert_array_equal(a.P, b.P)
        assert_orthogonal_det_one(a.P)


def test_samples_converge_to_the_population_descrambler_at_rate_one_over_root_n():
    rng = np.random.default_rng(5)
    m, n = 6, 8
    W = rng.normal(size=(m, n))
    Sigma_half = rng.normal(size=(n, n)) * np.linspace(0.5, 2.0, n)
    Sigma = Sigma_half @ Sigma_half.T
    population = descramble.descramble(W, autocorrelation=Sigma, smoothness="fd")
    sizes = [1_000, 10_000, 100_000]
    errors = []
    for N in sizes:
        errs = []
        for rep in range(6):
            X = rng.normal(size=(N, n)) @ Sigma_half.T
            d = descramble.descramble(W, data=X, smoothness="fd")
            angles = descramble.descrambler.component_angles(d.components, population.components, population.spectrum)
            errs.append(np.radians(angles).max())
        errors.append(np.median(errs))
    slope = np.polyfit(np.log(sizes), np.log(errors), 1)[0]
    assert -0.75 < slope < -0.3, (errors, slope)


def test_diagonal_criterion_is_procrustes_with_the_kabsch_fix(rng):
    from scipy.optimize import minimize

    for flip in [False, True]:
        W = rng.normal(size=(5, 5))
        if (np.linalg.det(W) < 0) != flip:
            W[0] *= -1
        d = descramble.descramble(W, criterion="diagonal")
        assert_orthogonal_det_one(d.P)
        best = -np.inf
        for seed in range(6):
            x0 = np.random.default_rng(seed).normal(size=10)
            res = minimize(lambda q: -np.trace(reference.cayley(q, 5) @ W), x0, method="BFGS")
            best = max(best, -res.fun)
        assert np.trace(d.P @ W) >= best - 1e-6
        assert np.trace(d.P @ W) == pytest.approx(best, rel=1e-4)
        assert -d.loss == pytest.approx(np.trace(d.P @ W))
        if not flip:  # SO(m) reaches the O(m) bound only when det(V U^T) = +1
            assert d.loss == pytest.approx(d.bound)


def test_apply_and_apply_next(rng):
    W, C = random_layer(rng, 5, 7)
    d = descramble.descramble(W, autocorrelation=C)
    W_next = rng.normal(size=(3, 5))
    np.testing.assert_allclose(d.apply(W), d.weights)
    np.testing.assert_allclose(d.apply_next(W_next), W_next @ d.P.T)
    # the composed map is unchanged: W_next P^T P W = W_next W
    np.testing.assert_allclose(d.apply_next(W_next) @ d.apply(W), W_next @ W, atol=1e-12)
    with pytest.raises(ValueError, match="W: expected 5 rows"):
        d.apply(np.ones((4, 7)))
    with pytest.raises(ValueError, match="W_next: expected 5 columns"):
        d.apply_next(np.ones((3, 4)))


def test_stability_shrinks_with_more_data(rng):
    m, n = 5, 6
    W = rng.normal(size=(m, n))
    mix = rng.normal(size=(n, n)) * np.linspace(0.5, 3, n)
    small = descramble.stability(W, rng.normal(size=(200, n)) @ mix.T, smoothness="fd")
    large = descramble.stability(W, rng.normal(size=(200_000, n)) @ mix.T, smoothness="fd")
    assert large.angles.max() < small.angles.max()
    assert large.loss_gap < small.loss_gap
    assert large.angles.max() < 5.0  # degrees
    assert large.first.P.shape == (m, m)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"weights": np.ones((3, 4))}, ValueError, r"pass exactly one of autocorrelation="),
        ({"weights": np.ones((3, 4)), "autocorrelation": np.eye(4), "data": np.ones((5, 4))}, ValueError,
         r"pass exactly one of"),
        ({"weights": np.ones((3, 4)), "autocorrelation": np.eye(5)}, ValueError,
         r"autocorrelation: the input has 5 features, the weights have 4 columns"),
        ({"weights": np.ones((3, 4)), "autocorrelation": np.ones((4, 3))}, ValueError,
         r"autocorrelation: expected a square matrix"),
        ({"weights": np.ones((3, 4)), "autocorrelation": np.triu(np.ones((4, 4)))}, ValueError,
         r"autocorrelation: expected a symmetric matrix"),
        ({"weights": np.full((3, 4), np.nan), "autocorrelation": np.eye(4)}, ValueError, r"weights: contains NaN"),
        ({"weights": np.ones(4), "autocorrelation": np.eye(4)}, ValueError, r"weights: expected a 2-D matrix"),
        ({"weights": np.ones((3, 4)), "autocorrelation": np.eye(4), "bias": np.ones(3)}, ValueError,
         r"bias: needs the input mean"),
        ({"weights": np.ones((3, 4)), "data": np.ones((5, 4)), "bias": np.ones(4)}, ValueError,
         r"bias: expected shape \(3,\)"),
        ({"hidden": np.ones((3, 4))}, ValueError, r"hidden: expected a square matrix"),
        ({"hidden": np.eye(3), "weights": np.ones((4, 2))}, ValueError, r"weights: expected 3 rows"),
        ({"hidden": np.eye(3), "autocorrelation": np.eye(3)}, ValueError, r"hidden: pass either"),
        ({"hidden": np.eye(3), "smoothness": "splines"}, ValueError, r"smoothness: unknown name 'splines'"),
        ({"hidden": np.eye(3), "smoothness": np.ones((2, 4))}, ValueError, r"acts on 4 neurons, the layer has 3"),
        ({"hidden": np.eye(3), "criterion": "sparse"}, ValueError,
         r"criterion: expected one of 'smooth', 'diagonal', 'permutation', 'signed-permutation'"),
        ({"weights": np.ones((3, 4)), "criterion": "diagonal"}, ValueError, r"needs a square matrix"),
        ({"weights": np.eye(3), "hidden": np.eye(3), "criterion": "diagonal"}, ValueError, r"uses the weights only"),
        ({}, ValueError, r"weights: needed unless hidden= is given"),
        ({"weights": np.ones((2, 2), complex), "autocorrelation": np.eye(2)}, TypeError, r"weights: expected a real matrix, got complex"),
    ],
)
def test_bad_input(kwargs, error, message):
    with pytest.raises(error, match=message):
        descramble.descramble(**kwargs)


def test_overflowing_loss_is_an_error_not_nan():
    S = np.diag(np.full(8, 1e307))  # lambda up to 4^4 = 256: sum lambda_k mu_k overflows
    with pytest.raises(ValueError, match="overflows float64"):
        descramble.descramble(hidden=S)


def test_progress_bars_count_the_streamed_rows(rng, capsys):
    pytest.importorskip("tqdm", reason="tqdm (a dependency) is not installed")
    W, X, b = rng.normal(size=(3, 4)), rng.normal(size=(1234, 4)), rng.normal(size=3)
    quiet = descramble.descramble(W, data=X, bias=b)
    assert capsys.readouterr().err == ""
    shown = descramble.descramble(W, data=X, bias=b, progress=True)
    np.testing.assert_array_equal(shown.P, quiet.P)
    assert "1.23k/1.23k" in capsys.readouterr().err
    descramble.stability(W, X, bias=b, progress=True)
    assert "stability" in capsys.readouterr().err
    descramble.convergence(W, X, bias=b, progress=True)
    assert "convergence" in capsys.readouterr().err
    rows = []
    descramble.convergence(W, X, bias=b, progress=rows.append, chunk_rows=500)  # the callable form
    assert sum(rows) == 1234 and capsys.readouterr().err == ""
    with pytest.raises(TypeError, match="progress: expected True or False"):
        descramble.stability(W, X, bias=b, progress=1)
    with pytest.raises(TypeError, match="progress: expected True, False or a callable"):
        descramble.convergence(W, X, bias=b, progress="yes")


@pytest.mark.parametrize("offset", [1e3, 1e6, 1e9])
def test_bias_under_a_large_common_offset_keeps_the_centred_part(offset):
    # X = offset + Z with a bias that cancels W offset: the pre-activations are W Z (plus rounding
    # of b). Factoring E[x x^T] = Sigma + mean mean^T rounded Sigma away (overlaps 0.16 at 1e9);
    # the core factors the covariance and the mean separately (docs/math.md §1, §7).
    rng = np.random.default_rng(0)
    m, n, N = 6, 10, 20_000
    W = rng.standard_normal((m, n))
    Z = rng.standard_normal((N, n)) * 1e-3
    b = -W @ np.full(n, offset)
    d = descramble.descramble(W, data=offset + Z, bias=b)
    exact = descramble.descramble(hidden=(Z @ W.T).T @ (Z @ W.T) / N)
    overlaps = np.abs(np.sum(d.components * exact.components, axis=0))
    assert overlaps.min() > 1 - 1e-9
    np.testing.assert_allclose(d.spectrum, exact.spectrum, rtol=1e-4)
