"""The examples/ scripts (the papers' results, the closed form's properties) and checks on their numbers.

Every example is imported by path (``load_example(name)``), run with small
sizes, and its numbers are checked against independent NumPy computations,
with negative controls (a wrong answer must fail the same check).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load_example(name: str) -> ModuleType:
    """Import ``examples/<name>.py`` as a module (independent of the working directory)."""
    path = EXAMPLES / f"{name}.py"
    module_name = f"descramble_example_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None, f"cannot import {path}"
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def fourier_blocks(X: np.ndarray) -> list:
    """Rows of X resolved per Fourier frequency along the row (neuron) axis, with numpy.fft.

    Returns a list over k = 0..m//2 of real blocks whose rows span frequency k:
    one row for k = 0 and the Nyquist bin, two (cosine, sine parts) otherwise.
    Independent of the descrambler's basis T.
    """
    m = X.shape[0]
    F = np.fft.fft(X, axis=0) / np.sqrt(m)
    blocks = []
    for k in range(m // 2 + 1):
        if k == 0 or 2 * k == m:
            blocks.append(F[k : k + 1].real)
        else:
            blocks.append(np.sqrt(2.0) * np.vstack([F[k].real, F[k].imag]))
    return blocks


def max_principal_angle(A: np.ndarray, B: np.ndarray) -> float:
    """Largest principal angle (degrees) between the row spaces of A and B."""
    Qa = np.linalg.svd(A, full_matrices=False)[2]
    Qb = np.linalg.svd(B, full_matrices=False)[2]
    cosines = np.linalg.svd(Qa @ Qb.T, compute_uv=False)
    return float(np.degrees(np.arccos(np.clip(cosines.min(), 0.0, 1.0))))


# -- examples/isotropic_svd.py (docs/math.md §3) --------------------------------------------


@pytest.fixture(scope="module")
def isotropic():
    return load_example("isotropic_svd").run(seed=0, n_samples=80_000, checkpoints=5)


def test_isotropic_loss_equals_bound(isotropic):
    assert np.all(isotropic["gap"] < 1e-10)


def test_isotropic_descrambled_weights_are_the_svd(isotropic):
    r = isotropic
    PW, sigma, V = r["PW"], r["sigma"], r["V"]
    m = PW.shape[0]
    # Independent of T: resolve the rows of P W per Fourier frequency with numpy.fft. Singular
    # value j belongs to frequency ceil(j / 2) (0; 1, 1; 2, 2; ...; m/2 for the Nyquist bin).
    freq = (np.arange(m) + 1) // 2
    wrong = load_example("isotropic_svd").make_layer(m, r["n"], 0.85, np.random.default_rng(99))[0]
    for k, (block, control) in enumerate(zip(fourier_blocks(PW), fourier_blocks(wrong))):
        j = np.flatnonzero(freq == k)
        np.testing.assert_allclose(np.linalg.svd(block, compute_uv=False), sigma[j], rtol=0.01,
                                   err_msg=f"frequency {k}")
        # The rows span those columns of V (up to the rotation and signs inside the frequency).
        assert max_principal_angle(block, V[:, j].T) < 5.0, f"frequency {k}"
        # Negative control: another layer's rows do not.
        assert max_principal_angle(control, V[:, j].T) > 45.0, f"control, frequency {k}"


def test_isotropic_error_shrinks_like_inverse_sqrt_n(isotropic):
    r = isotropic
    errors = r["errors"]
    assert errors[-1] < 0.03
    assert errors[-1] < errors[0] / 2  # 16 times the samples: expected a factor 4
    assert -0.8 < r["slope"] < -0.25
    # The same error measure rejects wrong answers by a wide margin.
    assert r["control_raw"] > 0.5
    assert r["control_rotation"] > 0.5
    assert r["angles"].max() < 5.0


def test_isotropic_power_decreases_with_frequency(isotropic):
    r = isotropic
    m = r["m"]
    # Independent: the descrambled hidden autocorrelation from W, P and C = I, through numpy.fft.
    power = np.array([np.sum(b**2) / b.shape[0] for b in fourier_blocks(r["PW"])])
    np.testing.assert_allclose(power, r["power_expected"], rtol=0.01)  # P W x with E[x x^T] = I
    assert np.all(np.diff(r["power"]) <= 0)
    np.testing.assert_allclose(r["power"], r["power_expected"], rtol=0.03)  # from the data's C_N
    # Negative control: the scrambled hidden signals W x have no such order.
    assert not np.all(np.diff(r["power_raw"]) <= 0)
    assert r["power"][:4].sum() / r["power"].sum() > 4 * r["power_raw"][:4].sum() / r["power_raw"].sum()
    assert len(r["frequencies"]) == m // 2 + 1


def test_isotropic_main_prints_report(capsys, tmp_path):
    example = load_example("isotropic_svd")
    assert example.main(["--seed", "1", "--samples", "20000"]) == 0
    out = capsys.readouterr().out
    for line in ("(a) P W vs T Sigma V^T", "slope of log error vs log N", "(b) power per Fourier bin",
                 "descrambled power non-increasing in k: True", "(c) loss"):
        assert line in out
    assert not (tmp_path / "isotropic_svd.png").exists()


def test_isotropic_bad_arguments():
    example = load_example("isotropic_svd")
    with pytest.raises(ValueError, match="checkpoints"):
        example.run(checkpoints=1)
    with pytest.raises(ValueError, match="n_samples"):
        example.run(n_samples=100)


# -- examples/linear_network.py (docs/math.md §6) -------------------------------------------


@pytest.fixture(scope="module")
def linear():
    return load_example("linear_network").run(seed=0, n_samples=20_000, steps=600, every=5)


def test_linear_network_reads_the_data_once(linear):
    assert linear["passes"] == 1
    assert linear["chunks_read"] == linear["chunks_per_pass"] == -(-20_000 // 8192)
    assert linear["checkpoints"] == 121
    # The counter does count: a second read shows up.
    example = load_example("linear_network")
    task = example.LinearTask(np.eye(3, 4), n_samples=100, noise=0.0, seed=0, chunk_rows=30)
    first, second = np.vstack(list(task)), np.vstack(list(task))
    assert (task.passes, task.chunks_read) == (2, 8)
    np.testing.assert_array_equal(first, second)  # re-readable: the same samples every pass


def test_linear_network_gradient_step_is_full_batch_gradient_descent():
    example = load_example("linear_network")
    rng = np.random.default_rng(3)
    X, Y = rng.standard_normal((500, 6)), rng.standard_normal((500, 4))
    W1, W2 = rng.standard_normal((5, 6)), rng.standard_normal((4, 5))
    # Gradient of (1/2N) sum_i ||y_i - W2 W1 x_i||^2, from the samples themselves.
    R = (Y - X @ W1.T @ W2.T) / len(X)
    g1, g2 = -W2.T @ R.T @ X, -R.T @ X @ W1.T
    new1, new2 = example.gradient_step(W1, W2, X.T @ X / len(X), Y.T @ X / len(X), lr=0.1)
    np.testing.assert_allclose(new1, W1 - 0.1 * g1, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(new2, W2 - 0.1 * g2, rtol=1e-12, atol=1e-12)


def test_linear_network_modes_appear_in_order(linear):
    r = linear
    half = r["half_rise"]
    assert np.all(np.diff(half) > 0), half
    assert half[0] > 0 and half[-1] < r["steps"][-1]
    # Sigmoidal: a_k starts near 0 and ends at the fixed point's singular values.
    strength = r["strength"]
    assert np.all(strength[0] < 0.05)
    np.testing.assert_allclose(strength[-1], np.sqrt(r["fixed_point"]), rtol=0.005)
    np.testing.assert_allclose(r["fixed_point"], r["singular_values"], rtol=0.1)
    # Larger singular value, earlier: half-rise time roughly proportional to 1/s.
    ratio = half * r["s_yx"]
    assert ratio.max() / ratio.min() < 1.6


def test_linear_network_descrambled_weights_align(linear):
    r = linear
    assert r["gap"] < 1e-10
    assert r["alignment"][-1] < 0.05
    assert r["alignment"][0] > 0.5  # before training there is nothing to align
    assert np.all(r["control_raw"][-20:] > 0.5)
    assert np.all(r["control_rotation"][-20:] > 0.5)
    # Independent of T: the task's input directions land on Fourier frequencies 0, 1, 1, 2, 2
    # along the descrambled hidden axis (numpy.fft of the columns of P W1 V_yx).
    B = r["PW1"] @ r["V_yx"]
    Braw = r["W1"] @ r["V_yx"]
    expected = [0, 1, 1, 2, 2]
    for k, f in enumerate(expected):
        power = np.array([np.sum(b**2) for b in fourier_blocks(B[:, k : k + 1])])
        raw = np.array([np.sum(b**2) for b in fourier_blocks(Braw[:, k : k + 1])])
        assert power[f] / power.sum() > 0.99, (k, power)
        assert raw[f] / raw.sum() < 0.9, (k, raw)  # negative control: the scrambled W1


def test_linear_network_main_prints_report(capsys):
    example = load_example("linear_network")
    assert example.main(["--seed", "2", "--samples", "10000"]) == 0
    out = capsys.readouterr().out
    for line in ("Data reads for the whole trajectory: 1 pass", "Modes appear in order of singular value: True",
                 "distance of P W1 to T a^1/2 V_yx^T", "loss == bound at every checkpoint"):
        assert line in out


def test_linear_network_bad_arguments():
    example = load_example("linear_network")
    with pytest.raises(ValueError, match="singular_values"):
        example.run(singular_values=(1.0, 2.0))
    with pytest.raises(ValueError, match="singular_values"):
        example.run(singular_values=(5, 4, 3, 2, 1, 0.5), m=4)
    with pytest.raises(ValueError, match="n_samples"):
        example.run(n_samples=5)
    with pytest.raises(SystemExit):  # the command line reports it as a usage error (exit code 2)
        example.main(["--samples", "0"])


# -- figures (optional: matplotlib) ------------------------------------------------------


@pytest.mark.parametrize("name, args", [("isotropic_svd", ["--samples", "8000"]),
                                        ("linear_network", ["--samples", "5000"])])
def test_figures(name, args, tmp_path, capsys):
    pytest.importorskip("matplotlib", reason="figures need matplotlib: pip install matplotlib")
    assert load_example(name).main(args + ["--out", str(tmp_path)]) == 0
    path = tmp_path / f"{name}.png"
    assert f"figure: {path}" in capsys.readouterr().out
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# -- a non-linear network: closed form vs iterative, and convergence in N ------------


@pytest.fixture(scope="module")
def relaxometry():
    pytest.importorskip("scipy", reason="the iterative reference descrambler needs SciPy")
    example = load_example("relaxometry_closed_form")
    return example.run(seed=0, n_train=4000, epochs=5, n_stream=40_000, budgets=(100, 400, 1600))


def test_relaxometry_closed_form_is_never_beaten(relaxometry):
    for name, c in relaxometry["comparison"].items():
        assert c["closed_loss"] == pytest.approx(c["bound"], rel=1e-9), name
        losses = [it["loss"] for it in c["iterative"]]
        # The iterative method is the same problem (docs/math.md §5): never below the closed form ...
        assert min(losses) >= c["closed_loss"] * (1 - 1e-9), name
        # ... and it approaches it as its budget grows.
        assert losses[-1] <= losses[0], name
        assert losses[-1] < 2.0 * c["closed_loss"], name


def test_relaxometry_closed_form_is_much_faster(relaxometry):
    # A ratio within one run, not a timed assertion: the iterative descrambler with
    # its largest budget against the closed form on the same S.
    for name, c in relaxometry["comparison"].items():
        assert c["iterative"][-1]["speedup"] > 10, (name, c)


def test_relaxometry_descrambler_converges_in_n(relaxometry):
    conv = relaxometry["convergence"]
    excess = np.array(conv["excess"])
    assert conv["n_samples"][0] == 64 and conv["n_samples"][-1] == 40_000
    assert np.all(excess > 0)  # a descrambler from part of the data is never better on all of it
    assert excess[-1] < 0.05 * excess[0]
    assert -1.6 < conv["slope"] < -0.6  # about N^-1: S_N -> S at N^-1/2, the excess is quadratic


def test_relaxometry_main_prints_report(capsys):
    pytest.importorskip("scipy", reason="the iterative reference descrambler needs SciPy")
    example = load_example("relaxometry_closed_form")
    assert example.main(["--train", "2000", "--epochs", "2", "--stream", "5000", "--budgets", "50"]) == 0
    out = capsys.readouterr().out
    assert "closed form vs iterative" in out and "log-log slope" in out and "layer2 (m=32)" in out


# -- the authors' own experiment: the regnet of ShashankSule/descrambling-NN ------------
#
# Margins from seeds 0..6 of the quick mode (5 000 signals, 3 epochs): percent error 4.9..9.2;
# gap |.| < 1e-10; low-frequency hidden power 0.9998..0.9999 (raw 0.06..0.33); u1's low-frequency
# fraction 0.974..0.995 (raw 0.09..0.39); column roughness ratio 0.68..0.74; first row's input-axis
# low-frequency fraction 2.0..2.5 x the mean raw row; angles to the top-5 right singular vectors:
# largest 73..87 deg (smallest 1.2..3.2) from the decays, largest 6.4..13.5 deg from Gaussian inputs;
# central difference: 0.499 of the power at the Nyquist frequency.


@pytest.fixture(scope="module")
def regnet():
    pytest.importorskip("torch", reason="examples/authors_regnet.py trains a PyTorch network: pip install torch")
    example = load_example("authors_regnet")
    return example.run(seed=0, realisations=2, epochs=3, target_scale=500.0, test_realisations=1, threads=1)


def test_regnet_network_learns(regnet):
    r = regnet
    assert r["n_train"] == 5000 and r["n_test"] == 2500
    assert np.all(r["percent_error"] < 15.0), r["percent_error"]
    assert r["history"][-1] < 0.3 * r["history"][0]
    # The same decay fed twice: identical gradients on both halves leave their difference untrained.
    assert r["antisym_drift"] < 1e-5 and r["sym_change"] > 0.1


def test_regnet_signals_are_the_authors():
    pytest.importorskip("torch", reason="examples/authors_regnet.py trains a PyTorch network: pip install torch")
    example = load_example("authors_regnet")
    X, Y = example.make_signals(3, 2, (50.0, 500.0), np.random.default_rng(0), snr=np.inf)
    assert X.shape == (18, 128) and Y.shape == (18, 2)
    assert np.all(Y[:, 0] <= Y[:, 1])  # swapped so that T21 <= T22
    t = np.linspace(0.0, 800.0, 64)
    np.testing.assert_allclose(X[:, :64], 0.6 * np.exp(-t / Y[:, :1]) + 0.4 * np.exp(-t / Y[:, 1:]))
    np.testing.assert_array_equal(X[:, :64], X[:, 64:])  # the same decay twice
    noisy, _ = example.make_signals(2, 500, (50.0, 500.0), np.random.default_rng(1))
    assert np.std(noisy[:500, :64] - noisy[:500, :64].mean(0)) == pytest.approx(0.01, rel=0.05)  # SNR 1e4


def test_regnet_descrambled_first_layer(regnet):
    r = regnet
    assert abs(r["gap"]) < 1e-9
    # Independent of T (numpy.fft): the descrambled pre-activations sit on the lowest neuron frequencies.
    assert r["low_power"] > 0.995 and r["low_power_raw"] < 0.6
    # The descrambled left singular vectors are low-frequency (the authors' SingLeftFFT figure).
    assert r["lsv_low"][0] > 0.93 and r["lsv_low"][0] > r["lsv_low_raw"][0] + 0.4
    assert r["column_roughness"] < 0.85 * r["column_roughness_raw"]
    # P only mixes rows: the input-axis roughness summed over all rows cannot change ...
    assert r["row_roughness"] == pytest.approx(r["row_roughness_raw"], rel=1e-9)
    # ... but the filter the descrambler puts first is smoother along the input axis than a raw row.
    assert r["first_row_input_low"] > 1.5 * r["rows_input_low_raw"]


def test_regnet_svd_emerges_for_gaussian_inputs_only(regnet):
    r = regnet
    # Gaussian inputs (the authors' x_randn): the lowest-frequency rows of P W1 span the top right
    # singular vectors of W1 (docs/math.md §3, up to the bias column) ...
    assert r["angles_low_randn"].max() < 25.0
    # ... the decays share only one direction with them: the SVD does not emerge from real data.
    assert r["angles_low"].min() < 6.0 and r["angles_low"].max() > 45.0


def test_regnet_central_difference_quirk(regnet):
    # The authors' finitediff.m (central difference) has the alternating pattern in its null space.
    assert regnet["nyquist_power_fd"] > 0.4 and regnet["low_power_fd"] < 0.6
    example = load_example("authors_regnet")
    D = example.central_difference(8)
    np.testing.assert_allclose(D @ np.ones(8), 0.0, atol=1e-15)
    np.testing.assert_allclose(D @ (-1.0) ** np.arange(8), 0.0, atol=1e-15)


def test_regnet_main_quick(capsys, tmp_path):
    pytest.importorskip("torch", reason="examples/authors_regnet.py trains a PyTorch network: pip install torch")
    pytest.importorskip("matplotlib", reason="figures need matplotlib: pip install matplotlib")
    example = load_example("authors_regnet")
    assert example.main(["--quick", "--seed", "1", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for line in ("mean percent error", "relative gap", "central-difference", "principal angles", "x_randn"):
        assert line in out
    for name in ("weights", "singular_vectors", "power"):
        path = tmp_path / f"authors_regnet_{name}.png"
        assert f"figure: {path}" in out and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# -- examples/cnn_permutation.py: a 1-D CNN with its channels permuted (issue 13) -------
#
# Quick mode, seed 0 (2 000 spectra, 5 epochs): standardised test MSE 0.05 (baseline 0.99); losses of the
# trained order / permuted / bound: conv '0' 2.34 / 0.52 / 0.038, conv '4' 29.5 / 5.98 / 1.12, Linear
# '9' 277 / 57.3 / 6.52 (fd smoothness); outputs change by <= 8.3e-7 (outputs up to 2.3).


@pytest.fixture(scope="module")
def cnn():
    pytest.importorskip("torch", reason="examples/cnn_permutation.py trains a PyTorch network: pip install torch")
    example = load_example("cnn_permutation")
    return example.run(seed=0, n_train=2000, n_test=1000, epochs=5, max_iterations=50)


def test_cnn_beats_the_trivial_baseline(cnn):
    assert cnn["test_mse"] < 0.15 * cnn["baseline_mse"]
    assert cnn["baseline_mse"] == pytest.approx(1.0, abs=0.1)  # standardised targets
    assert np.all(cnn["rmse"] < 0.4 * cnn["baseline_rmse"])
    assert cnn["rmse"][0] < 3.0  # the line's centre to within 3 of 64 channels
    assert cnn["history"][-1] < 0.3 * cnn["history"][0]


def test_cnn_permuted_model_computes_the_same_function(cnn):
    torch = pytest.importorskip("torch")
    original, permuted, X = cnn["original"], cnn["permuted"], torch.from_numpy(cnn["X_test"])
    original.eval()
    permuted.eval()
    with torch.no_grad():
        y, y_new = original(X), permuted(X)
        y_noise = original(X + 0.01 * torch.randn(X.shape, generator=torch.Generator().manual_seed(0)))
    scale = max(1.0, float(y.abs().max()))
    assert float((y - y_new).abs().max()) <= 1e-6 * scale
    assert cnn["max_output_change"] <= 1e-6 * scale
    # The same measure sees a change of the input far below the noise of the spectra.
    assert float((y - y_noise).abs().max()) > 100 * 1e-6 * scale
    # The weights did change: the conv filters are permuted, not copied.
    assert not np.array_equal(cnn["W1"], cnn["W1p"])
    np.testing.assert_array_equal(cnn["W1p"], cnn["W1"][cnn["layers"]["0"]["permutation"]])


def test_cnn_permutations_are_smoother_and_certified(cnn):
    layers = cnn["layers"]
    assert list(layers) == ["0", "4", "9"]
    assert [layers[n]["kind"] for n in layers] == ["Conv1d", "Conv1d", "Linear"]
    assert [layers[n]["rows"] for n in layers] == [1000 * 64, 1000 * 32, 1000]  # positions x spectra
    assert layers["0"]["rank"] == 8  # 16 channels from 7 taps and a bias
    for name, info in layers.items():
        assert not info["identity"], name
        assert np.isfinite(info["gap"]) and info["gap"] >= 0, name
        assert info["bound"] * (1 - 1e-12) <= info["loss"] < 0.5 * info["trained_loss"], name
        assert info["loss"] == pytest.approx(info["loss_check"], rel=1e-9), name  # NumPy's tr(A P S P^T)
        assert info["gap"] == pytest.approx((info["loss"] - info["bound"]) / info["bound"], rel=1e-9), name
        assert info["gap"] < info["trained_gap"], name


def test_cnn_report_and_figure(cnn, capsys, tmp_path):
    pytest.importorskip("matplotlib", reason="figures need matplotlib: pip install matplotlib")
    example = load_example("cnn_permutation")
    example.report(cnn)
    out = capsys.readouterr().out
    for line in ("predicting the training mean", "permute_model: one pass", "gap of trained", "'4'    Conv1d",
                 "max |change|"):
        assert line in out
    path = example.draw_figure(cnn, tmp_path)
    assert path == tmp_path / "cnn_permutation.png" and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cnn_bad_arguments(capsys):
    pytest.importorskip("torch", reason="examples/cnn_permutation.py trains a PyTorch network: pip install torch")
    example = load_example("cnn_permutation")
    with pytest.raises(SystemExit):
        example.main(["--train", "0"])
    assert "n_train: expected a positive integer" in capsys.readouterr().err
    with pytest.raises(ValueError, match="lr"):
        example.run(lr=0.0)
