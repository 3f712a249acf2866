"""descramble_network: every hidden layer of a dense stack, P_k W_k Q_{k-1}^T, from one pass over the data."""

import warnings

import numpy as np
import pytest

import descramble
from descramble import reference

ACT = {
    "identity": lambda z: z,
    "relu": lambda z: np.maximum(z, 0.0),
    "tanh": np.tanh,
    "sigmoid": lambda z: 1.0 / (1.0 + np.exp(-z)),
}


def make_network(rng, sizes, activations):
    layers = []
    for (n, m), act in zip(zip(sizes[:-1], sizes[1:]), activations):
        layers.append((rng.normal(size=(m, n)) / np.sqrt(n), rng.normal(size=m) * 0.5, act))
    return layers


def make_data(rng, N, n):
    # Anisotropic, offset inputs: non-degenerate spectra, so every P is unique up to the sign convention.
    return rng.normal(size=(N, n)) @ np.diag(np.linspace(2.0, 0.2, n)) + 0.3


def forward(layers, X):
    """The NumPy forward pass: every layer's pre- and post-activation signals."""
    pre, post, h = [], [], X
    for W, b, act in layers:
        z = h @ W.T + b
        h = ACT[act](z)
        pre.append(z)
        post.append(h)
    return pre, post


def second_moment(Y):
    """E[y y^T], including the mean (an autocorrelation, not a covariance)."""
    return Y.T @ Y / Y.shape[0]


def closed_form(m, S):
    """The closed form from numpy.linalg.eigh on S, Fourier order 2 (the default smoothness)."""
    return reference.closed_form(descramble.smoothness.fourier(m).gram, S)


@pytest.fixture(scope="module")
def network():
    rng = np.random.default_rng(12)
    layers = make_network(rng, (10, 7, 6, 4), ("tanh", "relu", "identity"))
    X = make_data(rng, 5000, 10)
    return layers, X


def test_every_hidden_layer_matches_an_independent_numpy_computation(network):
    layers, X = network
    result = descramble.descramble_network(layers, X)
    assert len(result) == 2  # the hidden layers only: not the output layer
    pre, post = forward(layers, X)
    for k, d in enumerate(result):
        W = layers[k][0]
        m = W.shape[0]
        S = second_moment(pre[k])
        ref = closed_form(m, S)
        assert d.loss == pytest.approx(ref["loss"], rel=1e-9)
        assert d.bound == pytest.approx(ref["bound"], rel=1e-9)
        # Non-degenerate mu and the Fourier basis's degenerate pairs of T: P = T U^T is unique
        # once T and the signs of U are fixed, and both sides fix U's signs the same way.
        assert not [g for g in d.degenerate if g.kind == "spectrum"]
        U = ref["components"] * np.sign(ref["components"][np.abs(ref["components"]).argmax(axis=0),
                                                           np.arange(m)])
        np.testing.assert_allclose(np.abs(d.components.T @ U), np.eye(m), atol=1e-7)
        np.testing.assert_allclose(d.hidden, S, rtol=1e-10, atol=1e-12)
        assert d.n_samples == 5000
        if k == 0:
            assert d.Q is None
            np.testing.assert_allclose(d.weights, d.P @ W, atol=1e-12)
        else:
            # Q_{k-1}: the closed form on layer k-1's post-activation autocorrelation.
            Sq = second_moment(post[k - 1])
            refq = closed_form(layers[k - 1][0].shape[0], Sq)
            Q = d.Q
            assert Q is not None and Q.shape == (W.shape[1],) * 2
            A = descramble.smoothness.fourier(Q.shape[0]).gram
            assert reference.eta(Q, A, Sq) == pytest.approx(refq["bound"], rel=1e-9)
            np.testing.assert_allclose(Q @ Q.T, np.eye(Q.shape[0]), atol=1e-12)
            np.testing.assert_allclose(d.weights, d.P @ W @ Q.T, atol=1e-12)
            # Q is not layer k-1's P: the activation (tanh) changed the signals.
            assert not np.allclose(Q, result[k - 1].P, atol=1e-3)


def test_q_and_p_are_the_same_descrambler_for_identity_activations():
    rng = np.random.default_rng(3)
    layers = make_network(rng, (9, 6, 5, 4, 3), ("identity", "identity", "relu", "identity"))
    X = make_data(rng, 4000, 9)
    result = descramble.descramble_network(layers, X)
    assert len(result) == 3
    # Layer 1's P comes from the input autocorrelation with the bias (an SVD of W~ L), Q_1 from
    # the accumulated outputs: the same matrix up to rounding.
    np.testing.assert_allclose(result[1].Q, result[0].P, atol=1e-9)
    # Layer 2's P and Q_2 come from the same accumulated signals (identity: post == pre): identical.
    np.testing.assert_array_equal(result[2].Q, result[1].P)
    # After a relu they differ: with output=True, layer 4 reads layer 3's relu outputs.
    out = descramble.descramble_network(layers, X, output=True)
    assert len(out) == 4
    assert not np.allclose(out[3].Q, out[2].P, atol=1e-3)


def test_output_true_also_descrambles_the_last_layer(network):
    layers, X = network
    hidden_only = descramble.descramble_network(layers, X)
    every = descramble.descramble_network(layers, X, output=True)
    assert len(every) == 3
    for a, b in zip(hidden_only, every):
        np.testing.assert_array_equal(a.P, b.P)
        np.testing.assert_array_equal(a.weights, b.weights)
    pre, post = forward(layers, X)
    last = every[2]
    ref = closed_form(4, second_moment(pre[2]))
    assert last.loss == pytest.approx(ref["loss"], rel=1e-9)
    np.testing.assert_allclose(last.weights, last.P @ layers[2][0] @ last.Q.T, atol=1e-12)
    Sq = second_moment(post[1])
    assert reference.eta(last.Q, descramble.smoothness.fourier(6).gram, Sq) == pytest.approx(
        closed_form(6, Sq)["bound"], rel=1e-9)


def test_per_layer_smoothness_and_order(network):
    layers, X = network
    result = descramble.descramble_network(layers, X, smoothness=["fd", descramble.smoothness.fourier(6, 1)],
                                           order=[2, None])
    assert result[0].smoothness.name == descramble.smoothness.finite_difference(7, 2).name
    assert result[1].smoothness.name == descramble.smoothness.fourier(6, 1).name
    pre, post = forward(layers, X)
    # Q_1 uses layer 1's smoothness (fd, order 2), not layer 2's.
    A1 = descramble.smoothness.finite_difference(7, 2).gram
    Sq = second_moment(post[0])
    assert reference.eta(result[1].Q, A1, Sq) == pytest.approx(reference.closed_form(A1, Sq)["bound"], rel=1e-9)
    # the single-layer library gives the same P for layer 1
    single = descramble.descramble(layers[0][0], data=X, bias=layers[0][1], smoothness="fd", order=2)
    np.testing.assert_allclose(result[0].P, single.P, atol=1e-10)


def test_data_are_read_once(network):
    layers, X = network
    consumed = []

    def chunks():
        for start in range(0, X.shape[0], 700):
            consumed.append(start)
            yield X[start:start + 700]

    result = descramble.descramble_network(layers, chunks(), output=True)
    assert len(consumed) == 8  # ceil(5000 / 700): every chunk once, no second pass
    whole = descramble.descramble_network(layers, X, output=True)
    for a, b in zip(result, whole):
        np.testing.assert_allclose(a.P, b.P, atol=1e-9)


def test_warnings_name_the_layer():
    rng = np.random.default_rng(5)
    layers = make_network(rng, (6, 12, 5, 3), ("tanh", "tanh", "identity"))
    X = make_data(rng, 8, 6)  # N = 8 < m = 12 for layer 1
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        descramble.descramble_network(layers, X, smoothness=["fourier", descramble.smoothness.fourier(5)],
                                      order=[2, 3])
    ignored = [w.message for w in caught if isinstance(w.message, descramble.IgnoredArgumentWarning)]
    assert len(ignored) == 1 and "layer 2" in str(ignored[0]) and ignored[0].argument == "order"
    for w in caught:
        if isinstance(w.message, descramble.DescrambleWarning) and hasattr(w.message, "layer_index"):
            k = w.message.layer_index + 1  # the layer, or (for Q) the layer whose input axis it is
            assert str(w.message).startswith((f"layer {k}: ", f"layer {k}'s input axis (layer {k - 1}'s outputs"))


@pytest.mark.parametrize("layers, data, error, match", [
    ([], np.ones((5, 3)), ValueError, "layers: expected at least one layer"),
    ((np.ones((2, 3)), None, "relu"), np.ones((5, 3)), TypeError, "wrap one layer in a list"),
    ([(np.ones((2, 3)), None, "relu")], np.ones((5, 3)), ValueError, "pass output=True"),
    ([(np.ones((2, 3)), None, "relu"), (np.ones((2, 4)), None, "relu")], np.ones((5, 3)), ValueError,
     r"layers\[1\]: the weights have 4 columns, the previous layer has 2 outputs"),
    ([(np.ones((2, 3)), None, "softmax"), (np.ones((2, 2)), None, "relu")], np.ones((5, 3)), ValueError,
     r"layers\[0\]: activation must be one of"),
    ([(np.ones((2, 3)), np.ones(3), "relu"), (np.ones((2, 2)), None, "relu")], np.ones((5, 3)), ValueError,
     r"layers\[0\]: expected a real bias of shape \(2,\)"),
    ([(np.ones((2, 3)), None, "relu"), (np.ones((2, 2)), None, "relu")], np.ones((5, 4)), ValueError,
     "data: expected 3 columns"),
    ([(np.ones((2, 3)), None, "relu"), (np.ones((2, 2)), None, "relu")], np.ones(5), ValueError, "data"),
])
def test_bad_layers_and_data(layers, data, error, match):
    with pytest.raises(error, match=match):
        descramble.descramble_network(layers, data)


def test_bad_smoothness_is_refused_before_the_data_are_read(network):
    layers, X = network
    consumed = []

    def chunks():
        consumed.append(1)
        yield X

    with pytest.raises(ValueError, match=r"smoothness: layer 2 \(6 units\): .*acts on 7 neurons"):
        descramble.descramble_network(layers, chunks(), smoothness=descramble.smoothness.fourier(7))
    with pytest.raises(ValueError, match=r"smoothness: expected one value for all layers or one per descrambled "
                                         r"layer \(2\), got a sequence of 3"):
        descramble.descramble_network(layers, chunks(), smoothness=["fourier"] * 3)
    with pytest.raises(ValueError, match=r"smoothness: layer 1 \(7 units\): unknown name 'wavelet'"):
        descramble.descramble_network(layers, chunks(), smoothness="wavelet")
    with pytest.raises(TypeError, match="output: expected a bool"):
        descramble.descramble_network(layers, chunks(), output=1)
    assert consumed == []


def test_a_bad_order_is_named_as_order_not_smoothness(network):
    # Review of issue 12: 'order=-1' was reported as "smoothness: layer 1 (...): order: ...", and a smoothness
    # that does not fit as "smoothness: layer 2 (...): smoothness: ...".
    layers, X = network
    with pytest.raises(ValueError, match=r"^order: layer 1 \(\d+ units\): expected a positive integer, got -1$"):
        descramble.descramble_network(layers, X, order=-1)
    with pytest.raises(ValueError, match=r"^smoothness: layer 1 \(\d+ units\): the operator acts on 3 neurons"):
        descramble.descramble_network(layers, X, smoothness=descramble.smoothness.fourier(3))
