"""The demo's pieces: the relaxometry problem, the NumPy MLP, convergence, and the report."""

import json

import numpy as np
import pytest

import descramble
from descramble.convergence import convergence
from descramble.cli.demo import describe, run_demo
from descramble.cli.mlp import MLP, train
from descramble.cli.relaxometry import Relaxometry


# -- the relaxometry problem -----------------------------------------------------------


def test_noise_free_signal_is_the_biexponential():
    p = Relaxometry(noise=0.0)
    params = np.array([[20.0, 150.0, 0.3]])
    t = 8.0 * np.arange(1, 65)
    expected = 0.3 * np.exp(-t / 20.0) + 0.7 * np.exp(-t / 150.0)
    np.testing.assert_allclose(p.signals(params)[0], expected, rtol=1e-15)


def test_sample_is_deterministic_and_in_range():
    p = Relaxometry()
    X1, P1 = p.sample(500, seed=3)
    X2, P2 = p.sample(500, seed=3)
    X3, _ = p.sample(500, seed=4)
    assert np.array_equal(X1, X2) and np.array_equal(P1, P2)
    assert not np.array_equal(X1, X3)
    for k, (low, high) in enumerate((p.t2a_range, p.t2b_range, p.fraction_range)):
        assert low <= P1[:, k].min() and P1[:, k].max() <= high
    noise = X1 - p.signals(P1)
    assert abs(noise.std() - p.noise) < 0.1 * p.noise
    np.testing.assert_allclose(p.denormalise(p.normalise(P1)), P1, rtol=1e-12)


def test_stream_yields_every_sample_once_in_chunks():
    p = Relaxometry()
    chunks = list(p.stream(1000, seed=1, chunk_rows=300))
    assert [c.shape for c in chunks] == [(300, 64)] * 3 + [(100, 64)]


@pytest.mark.parametrize("kwargs, match", [
    ({"n_times": 0}, "n_times"),
    ({"t2a_range": (5.0, 1.0)}, "t2a_range"),
    ({"noise": -1.0}, "noise"),
])
def test_bad_problem_settings(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        Relaxometry(**kwargs)


# -- the NumPy MLP -----------------------------------------------------------------------


@pytest.mark.parametrize("activation", ["tanh", "relu", "sigmoid", "identity"])
def test_gradients_match_finite_differences(activation):
    rng = np.random.default_rng(0)
    model = MLP.initialise((5, 4, 3, 2), activation=activation, seed=1)
    for W, b, _ in model.layers:
        b += rng.normal(size=b.shape)  # relu kinks away from the samples
    X, Y = rng.normal(size=(7, 5)), rng.normal(size=(7, 2))
    _, grads = model._gradients(X, Y)
    eps = 1e-6
    for k, (W, b, _) in enumerate(model.layers):
        for array, grad in ((W, grads[k][0]), (b, grads[k][1])):
            index = tuple(rng.integers(s) for s in array.shape)
            array[index] += eps
            plus, _ = model._gradients(X, Y)
            array[index] -= 2 * eps
            minus, _ = model._gradients(X, Y)
            array[index] += eps
            assert abs((plus - minus) / (2 * eps) - grad[index]) < 1e-6 * max(1.0, abs(grad[index]))


def test_training_is_deterministic_and_learns():
    p = Relaxometry()
    X, params = p.sample(3000, seed=0)
    Y = p.normalise(params)
    a = train(MLP.initialise((64, 16, 3), seed=0), X, Y, epochs=5, seed=0)
    b = train(MLP.initialise((64, 16, 3), seed=0), X, Y, epochs=5, seed=0)
    for (Wa, ba, _), (Wb, bb, _) in zip(a.layers, b.layers):
        assert np.array_equal(Wa, Wb) and np.array_equal(ba, bb)
    baseline = np.mean((Y - Y.mean(axis=0)) ** 2)  # the best constant guess
    assert a.history[-1] < 0.5 * baseline
    assert a.history[-1] < a.history[0]


def test_weight_decay_shrinks_weights_and_checkpoints_are_copies():
    p = Relaxometry()
    X, params = p.sample(2000, seed=0)
    Y = p.normalise(params)
    plain = train(MLP.initialise((64, 16, 3), seed=0), X, Y, epochs=4, seed=0, checkpoint_every=2)
    decayed = train(MLP.initialise((64, 16, 3), seed=0), X, Y, epochs=4, seed=0, weight_decay=2.0)
    assert np.linalg.norm(decayed.layers[0][0]) < 0.9 * np.linalg.norm(plain.layers[0][0])
    assert len(plain.checkpoints) == 3  # start, epoch 2, epoch 4
    assert np.array_equal(plain.checkpoints[-1][0][0], plain.layers[0][0])
    assert not np.array_equal(plain.checkpoints[0][0][0], plain.layers[0][0])


def test_mlp_layers_feed_hidden_autocorrelations():
    model = MLP.initialise((8, 6, 3), seed=2)
    X = np.random.default_rng(0).normal(size=(500, 8))
    stats = descramble.hidden_autocorrelations(model.layers, X)
    W1, b1, _ = model.layers[0]
    post = np.tanh(X @ W1.T + b1)
    np.testing.assert_allclose(stats.post[0].autocorrelation(), post.T @ post / 500, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(stats.post[-1].autocorrelation(),
                               model(X).T @ model(X) / 500, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"sizes": (4,)}, ValueError, "sizes"),
    ({"sizes": (4, 0, 2)}, ValueError, "sizes"),
    ({"sizes": (4, 2), "activation": "swish"}, ValueError, "activation"),
])
def test_bad_network_settings(kwargs, error, match):
    with pytest.raises(error, match=match):
        MLP.initialise(**kwargs)


def test_train_rejects_wrong_shapes():
    model = MLP.initialise((4, 3, 2))
    with pytest.raises(ValueError, match=r"X: expected shape \(N, 4\)"):
        train(model, np.zeros((10, 5)), np.zeros((10, 2)))
    with pytest.raises(ValueError, match=r"Y: expected shape \(10, 2\)"):
        train(model, np.zeros((10, 4)), np.zeros((10, 3)))


# -- convergence -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def layer():
    rng = np.random.default_rng(5)
    n, m = 12, 6
    mixing = rng.normal(size=(n, n)) * np.linspace(2.0, 0.2, n)
    X = rng.normal(size=(4000, n)) @ mixing.T + 0.5
    return rng.normal(size=(m, n)), rng.normal(size=m), X


def test_convergence_snapshots_are_prefixes(layer):
    W, b, X = layer
    sizes = [100, 250, 1000]
    # Chunks of 300 rows force splits inside chunks at 100, 250 and 1000.
    chunks = (X[i:i + 300] for i in range(0, len(X), 300))
    result = convergence(W, chunks, bias=b, sizes=sizes)
    assert result.n_samples.tolist() == [100, 250, 1000, 4000]
    whole = descramble.descramble(W, data=X, bias=b)
    assert result.bound == pytest.approx(whole.bound, rel=1e-12)
    for N, loss, own_loss, own_bound in zip(*result[:4]):
        prefix = descramble.descramble(W, data=X[:N], bias=b)
        assert own_loss == pytest.approx(prefix.loss, rel=1e-10)
        assert own_bound == pytest.approx(prefix.bound, rel=1e-10)
        assert own_loss == pytest.approx(own_bound, rel=1e-9)
        # The prefix descrambler scored on all the data: never below the bound.
        expected = np.sum(whole.smoothness.gram * (prefix.P @ whole.hidden @ prefix.P.T))
        assert loss == pytest.approx(expected, rel=1e-10)
        assert loss >= result.bound * (1 - 1e-12)
    assert result.loss[-1] == pytest.approx(result.bound, rel=1e-10)
    assert result.loss[0] > result.loss[-2] > result.bound  # it does converge


def test_convergence_default_sizes_double(layer):
    W, b, X = layer
    result = convergence(W, X, bias=b)
    assert result.n_samples.tolist() == [64, 128, 256, 512, 1024, 2048, 4000]
    assert result.accumulator.count == 4000


@pytest.mark.parametrize("kwargs, error, match", [
    ({"sizes": [10, 10]}, ValueError, "sizes: expected strictly increasing"),
    ({"sizes": [0]}, ValueError, "sizes"),
    ({"weights": np.ones(12)}, ValueError, "weights: expected a 2-D"),
    ({"weights": np.ones((6, 5))}, ValueError, "data: has 12 features"),
])
def test_convergence_bad_input(layer, kwargs, error, match):
    W, b, X = layer
    args = {"weights": W, "sizes": None, **kwargs}
    with pytest.raises(error, match=match):
        convergence(args.pop("weights"), X, **args)


# -- the demo report ---------------------------------------------------------------------


def test_demo_writes_a_complete_report(tmp_path):
    pytest.importorskip("matplotlib", reason="the demo's figures need matplotlib")
    lines = []
    summary = run_demo(tmp_path / "report", seed=1, n_train=2000, epochs=3, log=lines.append)
    out = tmp_path / "report"
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert {"weights_layer1.png", "spectrum_layer1.png", "fourier_layer1.png",
            "convergence_layer1.png", "weights_layer2.png"} <= set(pngs)
    for png in out.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = json.loads((out / "summary.json").read_text())
    assert saved["N"] == 2000 and saved["seed"] == 1
    assert set(saved["versions"]) >= {"descramble", "numpy", "python", "blas"}
    for name, layer in saved["layers"].items():
        assert layer["loss"] == pytest.approx(layer["bound"], rel=1e-8)
        P = np.load(out / f"P_{name}.npy")
        PW = np.load(out / f"PW_{name}.npy")
        np.testing.assert_allclose(P @ P.T, np.eye(P.shape[0]), atol=1e-12)
        assert np.linalg.det(P) == pytest.approx(1.0)
        assert PW.shape == (layer["m"], layer["n"])
    assert len(saved["layers"]["layer1"]["checkpoints"]) == 1  # epochs=3 < checkpoint interval: start only
    assert any("[6/6]" in line for line in lines)
    assert "layer1: 32 x 64" in describe(summary)


def test_demo_is_deterministic_for_a_seed(tmp_path):
    a = run_demo(tmp_path / "a", seed=2, n_train=1000, epochs=2, figures=False, log=lambda s: None)
    b = run_demo(tmp_path / "b", seed=2, n_train=1000, epochs=2, figures=False, log=lambda s: None)
    assert np.array_equal(np.load(tmp_path / "a" / "PW_layer1.npy"), np.load(tmp_path / "b" / "PW_layer1.npy"))
    assert a["layers"]["layer1"]["loss"] == b["layers"]["layer1"]["loss"]
    assert not list((tmp_path / "a").glob("*.png"))


def test_describe_survives_a_zero_loss_and_a_single_convergence_point():
    # m = 1, zero weights or a rank-1 S give loss = bound = 0: no ratio, no relative excess.
    layer = {"m": 1, "n": 20, "loss": 0.0, "bound": 0.0, "relative_gap": 0.0, "raw_loss": 0.0,
             "convergence": {"n_samples": [10], "loss": [0.0], "bound": 0.0}}
    text = describe({"layers": {"W": layer}})
    assert "W: 1 x 20, smoothness loss 0 = bound 0" in text
    assert "rougher" not in text
    assert "P from 10 samples: excess 0.00e+00 (absolute)" in text and "from 10:" not in text
    layer = {**layer, "loss": 2.0, "bound": 2.0, "raw_loss": 5.0,
             "convergence": {"n_samples": [64, 128, 200], "loss": [2.5, 2.1, 2.0], "bound": 2.0}}
    text = describe({"layers": {"W": layer}})
    assert "2.5x rougher" in text and "from 64 samples: excess 2.50e-01; from 128: 5.00e-02" in text


@pytest.mark.parametrize("kwargs, match", [
    ({"seed": -1}, "seed: expected a non-negative integer, got -1"),
    ({"seed": 1.5}, "seed: expected a non-negative integer"),
    ({"n_train": 0}, "n_train"),
    ({"epochs": 0}, "epochs"),
])
def test_demo_rejects_bad_settings_before_doing_anything(tmp_path, kwargs, match):
    lines = []
    with pytest.raises((ValueError, TypeError), match=match):
        run_demo(tmp_path / "r", figures=False, log=lines.append, **kwargs)
    assert lines == [] and not (tmp_path / "r").exists()


def test_convergence_keeps_m_x_m_rotations_not_n_x_n_copies(layer, monkeypatch):
    # Twenty snapshots of an n x n accumulator cost 20 n^2 doubles (n = 4096: 2.7 GB);
    # P_N is m x m. The stream is read once and the accumulator never copied.
    W, b, X = layer
    copies = []
    original = descramble.Autocorrelation.copy
    monkeypatch.setattr(descramble.Autocorrelation, "copy", lambda self: copies.append(1) or original(self))
    result = convergence(W, X, bias=b, smoothness="fd", order=2, sizes=[100, 1000])
    assert copies == []
    assert result.n_samples.tolist() == [100, 1000, 4000]
    prefix = descramble.descramble(W, data=X[:100], bias=b, smoothness="fd", order=2)
    whole = descramble.descramble(W, data=X, bias=b, smoothness="fd", order=2)
    assert result.own_bound[0] == pytest.approx(prefix.bound, rel=1e-10)
    assert result.loss[0] == pytest.approx(np.sum(whole.smoothness.gram * (prefix.P @ whole.hidden @ prefix.P.T)),
                                           rel=1e-10)
    assert result.bound == pytest.approx(whole.bound, rel=1e-12)
