"""descramble.plot: every figure function returns a Figure drawn from the numbers it is given."""

import numpy as np
import pytest

import descramble
from descramble import plot
from descramble.convergence import convergence

matplotlib = pytest.importorskip("matplotlib", reason="descramble.plot needs matplotlib (the plot extra)")
from matplotlib.figure import Figure  # noqa: E402


@pytest.fixture(scope="module")
def layer():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 16)) * np.linspace(2, 0.1, 16)
    W, b = rng.normal(size=(8, 16)), rng.normal(size=8)
    return W, b, X, descramble.descramble(W, data=X, bias=b)


def _images(fig):
    return [im.get_array() for ax in fig.axes for im in ax.get_images()]


def test_weights_figure_shows_w_and_pw(layer):
    W, _, _, d = layer
    fig = plot.weights(d, x=np.arange(16) * 2.0, xlabel="time", title="t")
    assert isinstance(fig, Figure)
    raw, descrambled = _images(fig)
    np.testing.assert_allclose(raw, W, atol=1e-12)
    np.testing.assert_allclose(descrambled, d.P @ W, atol=1e-12)
    # Without weights=, W is recovered from the descrambler's P W.
    np.testing.assert_allclose(_images(plot.weights(d))[0], W, atol=1e-10)


def test_spectrum_figure_plots_sqrt_mu(layer):
    d = layer[3]
    fig = plot.singular_spectrum(d)
    line = fig.axes[0].get_lines()[0]
    np.testing.assert_allclose(line.get_ydata(), np.sqrt(d.spectrum[d.spectrum > 0]), rtol=1e-12)
    assert f"{d.loss:.4g}" in fig.axes[1].get_title()


def test_fourier_figure_moves_power_to_low_frequencies(layer):
    W, _, _, d = layer
    fig = plot.fourier_magnitude(d, W, sample_spacing=0.5, frequency_unit="Hz")
    (magnitude,) = _images(fig)
    np.testing.assert_allclose(magnitude, np.abs(np.fft.rfft(d.P @ W, axis=1)), rtol=1e-12)
    before, after = (np.asarray(l.get_ydata()) for l in fig.axes[1].get_lines())
    # Parseval, and a rotation keeps the total power: both sum to tr(S).
    assert before.sum() == pytest.approx(np.trace(d.hidden), rel=1e-9)
    assert after.sum() == pytest.approx(np.trace(d.hidden), rel=1e-9)
    assert after[0] > before[0] and after[-1] < before[-1]


def test_convergence_figure(layer):
    W, b, X, _ = layer
    result = convergence(W, X, bias=b)
    fig = plot.convergence(result)
    left, right = fig.axes[:2]
    np.testing.assert_allclose(left.get_lines()[0].get_ydata(), result.loss)
    excess = right.get_lines()[0].get_ydata()
    np.testing.assert_allclose(excess, ((result.loss - result.bound) / result.bound)[:-1])


def test_figures_save_as_png(layer, tmp_path):
    d = layer[3]
    path = tmp_path / "w.png"
    plot.weights(d).savefig(path, dpi=50)
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_bad_input(layer):
    W, _, _, d = layer
    with pytest.raises(ValueError, match="x: expected 16 coordinates"):
        plot.weights(d, x=np.arange(3))
    with pytest.raises(ValueError, match="weights: expected a 2-D matrix"):
        plot.weights(d, np.ones(8))
    bare = descramble.descramble(hidden=d.hidden)
    with pytest.raises(ValueError, match="has no weights"):
        plot.fourier_magnitude(bare)


def test_pixels_are_centred_on_their_coordinates(layer):
    W, _, _, d = layer
    x = 8.0 * np.arange(1, 17)  # echo times 8 ... 128: the first column is centred on 8, not on 8 + 4
    raw = plot.weights(d, x=x).axes[0].get_images()[0]
    assert raw.get_extent()[:2] == pytest.approx([4.0, 132.0])
    with pytest.raises(ValueError, match="x: expected finite, evenly spaced"):
        plot.weights(d, x=np.geomspace(1, 100, 16))
    fig = plot.fourier_magnitude(d, W, sample_spacing=0.5)
    freqs = np.fft.rfftfreq(16, d=0.5)  # 0 ... 1 in steps of 0.125: bins centred on them
    assert fig.axes[0].get_images()[0].get_extent()[:2] == pytest.approx([freqs[0] - 0.0625, freqs[-1] + 0.0625])
    with pytest.raises(ValueError, match="sample_spacing: expected a positive number"):
        plot.fourier_magnitude(d, W, sample_spacing=0.0)


def test_convergence_figure_with_a_zero_bound(layer, recwarn):
    _, _, X, _ = layer
    result = convergence(np.zeros((8, 16)), X)  # zero weights: S = 0, loss = bound = 0
    fig = plot.convergence(result)
    assert not fig.axes[1].get_lines()  # no relative excess to draw
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
