"""hidden_autocorrelations: one pass through dense layers against an explicit NumPy forward pass."""

import numpy as np
import pytest

import descramble
from descramble import reference

ACTIVATIONS = {
    "identity": lambda z: z,
    "relu": lambda z: np.maximum(z, 0),
    "tanh": np.tanh,
    "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
}


@pytest.fixture
def network(rng):
    return [
        (rng.normal(size=(16, 10)) / 3, rng.normal(size=16), "tanh"),
        (rng.normal(size=(8, 16)) / 4, None, "relu"),
        (rng.normal(size=(5, 8)), rng.normal(size=5), "sigmoid"),
        (rng.normal(size=(3, 5)), np.zeros(3), "identity"),
    ]


def forward(layers, x):
    pre, post = [], []
    for W, b, act in layers:
        z = x @ W.T + (0 if b is None else b)
        pre.append(z)
        x = ACTIVATIONS[act](z)
        post.append(x)
    return pre, post


@pytest.mark.parametrize("chunking", ["array", "generator", "file"])
def test_every_layer_matches_an_explicit_forward_pass(rng, network, chunking, tmp_path):
    x = rng.normal(size=(9000, 10)).astype(np.float32)
    if chunking == "array":
        data = x
    elif chunking == "generator":
        data = iter(np.array_split(x, 7))
    else:
        data = tmp_path / "x.npy"
        np.save(data, x)
    result = descramble.hidden_autocorrelations(network, data, chunk_rows=1000)
    pre, post = forward(network, x.astype(np.float64))
    np.testing.assert_allclose(result.input.autocorrelation(), reference.autocorrelation(x), rtol=1e-12)
    for got_pre, got_post, z, a in zip(result.pre, result.post, pre, post):
        assert got_pre.count == got_post.count == 9000
        np.testing.assert_allclose(got_pre.autocorrelation(), reference.autocorrelation(z), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(got_post.autocorrelation(), reference.autocorrelation(a), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(got_post.mean, a.mean(axis=0), rtol=1e-10, atol=1e-13)


def test_feeds_the_descrambler_of_a_non_linear_layer(rng, network):
    x = rng.normal(size=(2000, 10))
    result = descramble.hidden_autocorrelations(network, x)
    d = descramble.descramble(network[0][0], hidden=result.post[0])
    _, post = forward(network, x)
    np.testing.assert_allclose(d.hidden, reference.autocorrelation(post[0]), rtol=1e-10)
    assert d.loss == pytest.approx(d.bound, rel=1e-9)


@pytest.mark.parametrize(
    "layers, error, message",
    [
        ([], ValueError, r"layers: expected at least one layer"),
        ([(np.ones((3, 10)), None)], TypeError, r"layers\[0\]: expected a \(weights, bias, activation\) triple"),
        ([(np.ones((3, 10)), None, "gelu")], ValueError, r"layers\[0\]: activation must be one of"),
        ([(np.ones((3, 10)), np.ones(4), "relu")], ValueError, r"layers\[0\]: expected a real bias of shape \(3,\)"),
        ([(np.ones(10), None, "relu")], ValueError, r"layers\[0\]: expected real 2-D weights"),
        ([(np.ones((3, 10)), None, "relu"), (np.ones((2, 4)), None, "relu")], ValueError,
         r"layers\[1\]: the weights have 4 columns, the previous layer has 3 outputs"),
        ([(np.full((3, 10), np.nan), None, "relu")], ValueError, r"layers\[0\]: contains NaN"),
        ([(np.ones((3, 9)), None, "relu")], ValueError, r"data: expected 9 columns \(the first layer's inputs\), got 10"),
    ],
)
def test_bad_layers(layers, error, message):
    with pytest.raises(error, match=message):
        descramble.hidden_autocorrelations(layers, np.ones((5, 10)))


def test_bad_rows_are_named(network):
    x = np.ones((50, 10))
    x[17, 3] = np.nan
    with pytest.raises(ValueError, match="row 17 contains NaN"):
        descramble.hidden_autocorrelations(network, x)
