"""descramble.permute_network: exact rewrites of dense stacks with their hidden units in the smoothest order found.

Checked: the rewritten network computes the same outputs (float64 and float32), each permutation is the one
descramble(hidden=<pre-activation autocorrelation>) finds on an independent NumPy forward pass, a planted order
comes back, and bad inputs are named.
"""

import numpy as np
import pytest

import descramble
from descramble import smoothness as sm

pytestmark = pytest.mark.filterwarnings("ignore::descramble.UnderdeterminedWarning")

ACT = {"identity": lambda z: z, "relu": lambda z: np.maximum(z, 0), "tanh": np.tanh,
       "sigmoid": lambda z: 1 / (1 + np.exp(-z))}


def forward(layers, X, keep=False):
    """The network's outputs (and every layer's pre-activations with keep=True), plain NumPy, in X's dtype."""
    h, pre = X, []
    for W, b, activation in layers:
        z = h @ W.T + (0 if b is None else b)
        pre.append(z)
        h = ACT[activation](z)
    return (h, pre) if keep else h


def make(rng, sizes, activation, dtype=np.float64, bias=True):
    layers = []
    for k, (n, m) in enumerate(zip(sizes[:-1], sizes[1:])):
        last = k == len(sizes) - 2
        W = (rng.normal(size=(m, n)) / np.sqrt(n)).astype(dtype)
        b = (rng.normal(size=m) * 0.5).astype(dtype) if bias else None
        layers.append((W, b, "identity" if last else activation))
    return layers


CASES = [("relu", "permutation", (12, 24, 3)), ("sigmoid", "permutation", (10, 16, 20, 4)),
         ("tanh", "signed-permutation", (8, 20, 16, 12, 2)), ("tanh", "permutation", (8, 16, 12, 2)),
         ("identity", "signed-permutation", (6, 10, 8, 3))]


@pytest.mark.parametrize("activation, criterion, sizes", CASES)
def test_the_rewritten_network_computes_the_same_outputs(activation, criterion, sizes):
    rng = np.random.default_rng(len(sizes) * 10 + len(activation))
    layers = make(rng, sizes, activation)
    X = rng.normal(size=(400, sizes[0])) + 0.2
    result = descramble.permute_network(layers, X, criterion=criterion, max_iterations=5)
    assert result.criterion == criterion and len(result.descramblers) == len(sizes) - 2
    fresh = rng.normal(size=(200, sizes[0])) * 2
    expected = forward(layers, fresh)
    got = forward(result.layers, fresh)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12 * np.abs(expected).max())
    # Not the identity: some hidden layer was reordered (or flipped).
    assert any(not np.array_equal(p, np.arange(len(p))) for p in result.permutations)
    if criterion == "signed-permutation":
        assert all(d.signs is not None for d in result.descramblers)
    # Every hidden layer's units (rows and biases) are the original's, moved (and flipped); the output layer keeps
    # its rows' order; the weights are P_k W_k P_{k-1}^T, the descramblers' own.
    for k, (W, b, act) in enumerate(result.layers):
        assert act == layers[k][2]
        if k < len(layers) - 1:
            p, s = result.permutations[k], result.signs[k]
            np.testing.assert_array_equal(b, s * layers[k][1][p])
            np.testing.assert_allclose(W, result.descramblers[k].weights, rtol=0, atol=0)
            d = result.descramblers[k]
            assert d.gap is not None and d.gap >= 0 and d.loss >= d.bound * (1 - 1e-12)
        else:
            p = result.permutations[k - 1]
            np.testing.assert_array_equal(W, layers[k][0][:, p] * result.signs[k - 1])
            np.testing.assert_array_equal(b, layers[k][1])


@pytest.mark.parametrize("activation, criterion", [("relu", "permutation"), ("tanh", "signed-permutation")])
def test_float32_networks_stay_float32_and_agree_to_1e6(activation, criterion):
    rng = np.random.default_rng(3)
    layers = make(rng, (16, 32, 24, 4), activation, dtype=np.float32)
    X = rng.normal(size=(300, 16)).astype(np.float32)
    result = descramble.permute_network(layers, X, criterion=criterion, max_iterations=5)
    assert all(W.dtype == np.float32 and b.dtype == np.float32 for W, b, _ in result.layers)
    expected = forward(layers, X)
    got = forward(result.layers, X)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6 * np.abs(expected).max())


def test_each_permutation_is_the_search_on_an_independent_forward_pass():
    rng = np.random.default_rng(7)
    layers = make(rng, (10, 14, 12, 3), "tanh")
    X = rng.normal(size=(600, 10))
    for criterion in ("permutation", "signed-permutation"):
        result = descramble.permute_network(layers, X, criterion=criterion, max_iterations=10, seed=3)
        stats = descramble.hidden_autocorrelations(layers, X)
        _, pre = forward(layers, X, keep=True)
        smooth = [sm.fourier(14), sm.fourier(12)]
        for k, d in enumerate(result.descramblers):
            S = pre[k].T @ pre[k] / len(X)  # E[z z^T] of the pre-activations (bias included), NumPy
            # The statistics are the pre-activations' (layer 1 too), to rounding...
            np.testing.assert_allclose(stats.pre[k].autocorrelation(), S, rtol=1e-12, atol=1e-12 * np.abs(S).max())
            np.testing.assert_allclose(d.hidden, S, rtol=1e-12, atol=1e-12 * np.abs(S).max())
            # ...and the search is descramble's on them: the same permutation, signs, loss and bound. (The
            # search's path depends on S to the last bit, so it is compared on the core's S; NumPy's S checks
            # the loss and the bound.)
            e = descramble.descramble(hidden=stats.pre[k], criterion=criterion, max_iterations=10, seed=3)
            np.testing.assert_array_equal(d.permutation, e.permutation)
            np.testing.assert_array_equal(d.P, e.P)
            if criterion == "signed-permutation":
                np.testing.assert_array_equal(d.signs, e.signs)
            P = np.zeros((len(S), len(S)))
            P[np.arange(len(S)), d.permutation] = result.signs[k]
            assert d.loss == pytest.approx(np.trace(smooth[k].gram @ P @ S @ P.T), rel=1e-9)
            assert d.bound == pytest.approx(np.sort(np.linalg.eigvalsh(smooth[k].gram))
                                            @ np.sort(np.linalg.eigvalsh(S))[::-1], rel=1e-9)
            assert d.gap == pytest.approx(max(0.0, (d.loss - d.bound) / d.bound), rel=1e-9)


def test_a_planted_order_comes_back():
    """Hidden units whose signals are smooth along a known order, scrambled, come back to an order of that loss."""
    rng = np.random.default_rng(11)
    m, n, N = 24, 6, 2000
    t = np.arange(m) / m
    # Row i of W_1 is a smooth (circular) function of t_i: neighbouring units see nearly the same weights.
    W1 = np.stack([np.cos(2 * np.pi * (f * t + rng.random())) for f in (1, 1, 2, 1, 2, 1)], axis=1)
    b1 = 0.2 * np.cos(2 * np.pi * t)
    scramble = rng.permutation(m)
    W2 = rng.normal(size=(3, m))
    planted = [(W1, b1, "tanh"), (W2, None, "identity")]
    layers = [(W1[scramble], b1[scramble], "tanh"), (W2[:, scramble], None, "identity")]
    X = rng.normal(size=(N, n))
    result = descramble.permute_network(layers, X, max_iterations=20)
    d = result.descramblers[0]
    smooth = sm.fourier(m)
    _, pre = forward(planted, X, keep=True)
    S = pre[0].T @ pre[0] / N
    planted_loss = float(np.trace(smooth.gram @ S))
    scrambled_loss = float(np.trace(smooth.gram @ S[np.ix_(np.argsort(scramble), np.argsort(scramble))]))
    assert scrambled_loss > 5 * planted_loss  # the scramble is rough
    assert d.loss == pytest.approx(planted_loss, rel=1e-6)
    # The order found is the planted one up to the Fourier operator's symmetries (shifts and reversal).
    units = scramble[d.permutation]  # planted index of the unit at each new position
    steps = np.diff(np.concatenate([units, units[:1]])) % m
    assert np.all(steps == 1) or np.all(steps == m - 1)
    np.testing.assert_allclose(forward(result.layers, X), forward(layers, X), rtol=1e-12, atol=1e-12)


def test_bias_none_and_statistics_reused():
    rng = np.random.default_rng(5)
    layers = make(rng, (8, 12, 10, 2), "relu", bias=False)
    X = rng.normal(size=(300, 8))
    result = descramble.permute_network(layers, X, max_iterations=5)
    assert all(b is None for _, b, _ in result.layers)
    np.testing.assert_allclose(forward(result.layers, X), forward(layers, X), rtol=1e-12, atol=1e-12)
    stats = descramble.hidden_autocorrelations(layers, X)
    again = descramble.permute_network(layers, stats, max_iterations=5)
    for a, b in zip(again.permutations, result.permutations):
        np.testing.assert_array_equal(a, b)
    assert "PermutedNetwork(sizes=[8, 12, 10, 2], permutation, gaps=[" in repr(result)


def test_torch_tensors_are_accepted():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    layers = make(rng, (6, 10, 2), "relu", dtype=np.float32)
    tensors = [(torch.nn.Parameter(torch.from_numpy(W)), torch.from_numpy(b), a) for W, b, a in layers]
    X = rng.normal(size=(200, 6)).astype(np.float32)
    result = descramble.permute_network(tensors, X, max_iterations=3)
    np.testing.assert_allclose(forward(result.layers, X), forward(layers, X), rtol=1e-6, atol=1e-6)


def test_bad_inputs_are_named():
    rng = np.random.default_rng(0)
    layers = make(rng, (6, 10, 8, 2), "relu")
    X = rng.normal(size=(100, 6))
    with pytest.raises(ValueError, match=r"layer 1's units, but its activation 'relu' is not odd"):
        descramble.permute_network(layers, X, criterion="signed-permutation")
    mixed = [(layers[0][0], layers[0][1], "tanh"), layers[1], layers[2]]
    with pytest.raises(ValueError, match=r"layer 2's units, but its activation 'relu'"):
        descramble.permute_network(mixed, X, criterion="signed-permutation")
    for criterion in ("smooth", "diagonal", "rotation"):
        with pytest.raises(ValueError, match="criterion: expected 'permutation' or 'signed-permutation'"):
            descramble.permute_network(layers, X, criterion=criterion)
    with pytest.raises(TypeError, match="criterion"):
        descramble.permute_network(layers, X, criterion=None)
    with pytest.raises(ValueError, match="at least two layers"):
        descramble.permute_network(layers[:1], X)
    with pytest.raises(ValueError, match=r"layers\[1\]: activation must be one of"):
        descramble.permute_network([layers[0], (layers[1][0], None, "gelu"), layers[2]], X)
    with pytest.raises(ValueError, match="max_iterations"):
        descramble.permute_network(layers, X, max_iterations=-1)
    with pytest.raises(ValueError, match="data: expected 6 columns"):
        descramble.permute_network(layers, X[:, :5])
    # An iterator source is never read when the arguments are wrong.
    consumed = []

    def chunks():
        consumed.append(1)
        yield X

    with pytest.raises(ValueError):
        descramble.permute_network(layers, chunks(), criterion="signed-permutation")
    assert consumed == []


def test_permute_layers_checks_its_arguments():
    from descramble.permute import permute_layers

    rng = np.random.default_rng(0)
    layers = make(rng, (4, 5, 2), "relu")
    with pytest.raises(ValueError, match="permutations: expected one per hidden layer"):
        permute_layers(layers, [])
    with pytest.raises(ValueError, match=r"permutations\[0\]: expected a permutation of 0..4"):
        permute_layers(layers, [np.array([0, 1, 2, 3, 3])])
    with pytest.raises(ValueError, match=r"signs\[0\]: layer 1's activation 'relu' is not odd"):
        permute_layers(layers, [np.arange(5)], [np.array([1, 1, -1, 1, 1.0])])
    same = permute_layers(layers, [np.arange(5)], [np.ones(5)])
    for (W, b, _), (W0, b0, _) in zip(same, layers):
        np.testing.assert_array_equal(W, W0)
        np.testing.assert_array_equal(b, b0)


def test_descramble_network_criteria():
    rng = np.random.default_rng(4)
    layers = make(rng, (8, 12, 10, 3), "tanh")
    X = rng.normal(size=(300, 8))
    smooth = descramble.descramble_network(layers, X)
    assert all(d.criterion == "smooth" and d.gap is None for d in smooth)
    assert smooth[1].Q is not None and not np.allclose(smooth[1].Q, smooth[0].P)  # tanh: Q from the outputs
    perm = descramble.descramble_network(layers, X, criterion="permutation", max_iterations=5, output=True)
    assert [d.criterion for d in perm] == ["permutation"] * 3
    for k in (1, 2):
        np.testing.assert_array_equal(perm[k].Q, perm[k - 1].P)
        np.testing.assert_allclose(perm[k].weights, perm[k].P @ layers[k][0] @ perm[k - 1].P.T, atol=1e-14)
    with pytest.raises(ValueError, match="criterion: 'diagonal'.*does not apply"):
        descramble.descramble_network(layers, X, criterion="diagonal")
    with pytest.raises(ValueError, match="criterion: expected 'smooth', 'permutation' or 'signed-permutation'"):
        descramble.descramble_network(layers, X, criterion="permutations")
    with pytest.raises(TypeError, match="seed"):
        descramble.descramble_network(layers, X, criterion="permutation", seed=1.5)
    relu = [(W, b, "relu") for W, b, _ in layers]
    with pytest.raises(ValueError, match="layer 1's units, but its activation 'relu' is not odd"):
        descramble.descramble_network(relu, X, criterion="signed-permutation")
    # The output layer's own activation counts when it is descrambled too.
    last = layers[:2] + [(layers[2][0], layers[2][1], "sigmoid")]
    descramble.descramble_network(last, X, criterion="signed-permutation", max_iterations=2)
    with pytest.raises(ValueError, match="layer 3's units, but its activation 'sigmoid'"):
        descramble.descramble_network(last, X, criterion="signed-permutation", output=True)
    # The budget reaches the search: a different seed may find another order, never a different bound.
    other = descramble.descramble_network(layers, X, criterion="permutation", max_iterations=5, seed=9, output=True)
    assert [d.bound for d in other] == [d.bound for d in perm]


def test_warnings_point_at_the_callers_line():
    rng = np.random.default_rng(3)
    layers = [(rng.standard_normal((10, 3)), rng.standard_normal(10), "relu"),
              (rng.standard_normal((2, 10)), None, "identity")]
    with pytest.warns(descramble.UnderdeterminedWarning, match="layer 1: .*weakly determined") as caught:
        descramble.permute_network(layers, rng.standard_normal((400, 3)), max_iterations=2)
    assert caught[0].filename == __file__


@pytest.mark.parametrize("dtype", [np.uint8, np.uint32, bool])
def test_sign_flips_of_unsigned_or_bool_arrays_are_a_type_error(dtype):
    # -x of a uint8 weight wrapped around (a silently different network); of a bool one, a NumPy TypeError.
    from descramble.permute import permute_layers

    W1 = np.array([[1, 2], [3, 4]]).astype(dtype)
    W2 = np.array([[1, 1]]).astype(dtype)
    layers = [(W1, None, "tanh"), (W2, None, "identity")]
    with pytest.raises(TypeError, match=r"layers\[0\]: arrays of dtype .* cannot hold the negated values"):
        permute_layers(layers, [np.array([1, 0])], [np.array([-1.0, 1.0])])
    same = permute_layers(layers, [np.array([1, 0])], [np.array([1.0, 1.0])])  # no flip: fine
    np.testing.assert_array_equal(same[0][0], W1[[1, 0]])
    assert same[0][0].dtype == W1.dtype
