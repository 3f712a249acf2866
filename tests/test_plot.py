"""descramble.plot: every figure function returns a Figure drawn from the numbers it is given."""

import dataclasses

import numpy as np
import pytest

import descramble
from descramble import plot
from descramble.convergence import convergence

matplotlib = pytest.importorskip("matplotlib", reason="descramble.plot needs matplotlib (pip install matplotlib)")
from matplotlib.figure import Figure  # noqa: E402


@pytest.fixture(scope="module")
def layer():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 16)) * np.linspace(2, 0.1, 16)
    W, b = rng.normal(size=(8, 16)), rng.normal(size=8)
    return W, b, X, descramble.descramble(W, data=X, bias=b)


@pytest.fixture(scope="module")
def second_layer():
    """Layer 2 of a small network: its inputs are layer 1's post-activations, descrambled by Q."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(2000, 16)) * np.linspace(2, 0.1, 16)
    W1, W2 = rng.normal(size=(12, 16)), rng.normal(size=(6, 12))
    a1 = np.maximum(X @ W1.T, 0.0)
    Q = descramble.descramble(hidden=a1.T @ a1 / len(a1)).P  # layer 1's post-activation descrambler
    h2 = a1 @ W2.T
    d2 = descramble.descramble(W2, hidden=h2.T @ h2 / len(h2))
    d2 = dataclasses.replace(d2, Q=Q, weights=d2.P @ W2 @ Q.T)
    return W2, Q, d2


def _images(fig):
    return [im for ax in fig.axes for im in ax.get_images()]


def _arrays(fig):
    return [im.get_array() for im in _images(fig)]


def _drawn(fig):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig).draw()
    return fig.canvas.get_renderer()


def test_weights_figure_shows_w_and_pw(layer):
    W, _, _, d = layer
    fig = plot.weights(d, input_values=np.arange(16) * 2.0, input_label="time", title="t")
    assert isinstance(fig, Figure)
    raw, descrambled = _arrays(fig)
    np.testing.assert_allclose(raw, W, atol=1e-12)
    np.testing.assert_allclose(descrambled, d.P @ W, atol=1e-12)
    left, right = fig.axes[:2]
    assert left.get_xlabel() == right.get_xlabel() == "time"
    assert left.get_ylabel() == "hidden unit (trained order)"
    assert "descrambled" in right.get_ylabel()
    # Without weights=, W is recovered from the descrambler's P W.
    np.testing.assert_allclose(_arrays(plot.weights(d))[0], W, atol=1e-10)
    assert plot.weights(d).axes[0].get_xlabel() == "input"


def test_weights_panels_have_their_own_symmetric_colour_scale(layer):
    W, _, _, d = layer
    scaled = W * np.linspace(0.01, 1, 16)  # P W then has a much larger range than the smallest entries
    fig = plot.weights(d, scaled)
    raw, descrambled = _images(fig)
    for image, M in ((raw, scaled), (descrambled, d.P @ scaled)):
        limit = np.abs(M).max()
        assert image.get_clim() == pytest.approx((-limit, limit))
    assert raw.get_clim() != pytest.approx(descrambled.get_clim())
    # One colorbar per panel.
    assert sum(1 for ax in fig.axes if ax.get_label() == "<colorbar>") == 2


def test_weights_of_a_second_layer_descramble_both_axes(second_layer):
    W2, Q, d2 = second_layer
    expected = d2.P @ W2 @ Q.T
    np.testing.assert_allclose(plot.descrambled_weights(d2, W2), expected, atol=1e-12)
    np.testing.assert_allclose(plot.descrambled_weights(d2), expected, atol=1e-12)
    for fig in (plot.weights(d2, W2), plot.weights(d2)):  # W recovered as P^T (P W Q^T) Q
        raw, descrambled = _arrays(fig)
        np.testing.assert_allclose(raw, W2, atol=1e-10)
        np.testing.assert_allclose(descrambled, expected, atol=1e-10)
    fig = plot.weights(d2, W2, input_label="layer-1 unit")
    assert fig.axes[0].get_xlabel() == "layer-1 unit"
    assert "descrambled input" in fig.axes[1].get_xlabel()
    assert "Q" in fig.axes[1].get_title()
    np.testing.assert_allclose(_arrays(plot.fourier_magnitude(d2, W2))[0],
                               np.abs(np.fft.rfft(expected, axis=1)), rtol=1e-10, atol=1e-12)
    wrong = dataclasses.replace(d2, Q=np.eye(5))
    with pytest.raises(ValueError, match=r"descrambler: Q .* expected \(12, 12\)"):
        plot.weights(wrong, W2)


def test_weights_older_keyword_names_still_work(layer):
    W, _, _, d = layer
    fig = plot.weights(d, W, x=np.arange(16) * 2.0, xlabel="time")
    assert fig.axes[0].get_xlabel() == "time"
    assert fig.axes[0].get_images()[0].get_extent()[:2] == pytest.approx([-1.0, 31.0])
    with pytest.raises(TypeError, match="input_values"):
        plot.weights(d, W, x=np.arange(16), input_values=np.arange(16))
    with pytest.raises(TypeError, match="input_label"):
        plot.weights(d, W, xlabel="a", input_label="b")


def test_spectrum_figure_plots_sqrt_mu(layer):
    d = layer[3]
    fig = plot.singular_spectrum(d)
    line = fig.axes[0].get_lines()[0]
    np.testing.assert_allclose(line.get_ydata(), np.sqrt(d.spectrum[d.spectrum > 0]), rtol=1e-12)
    assert f"{d.loss:.4g}" in fig.axes[1].get_title()


def _with_lambda(d, lam):
    return dataclasses.replace(d, basis_values=np.asarray(lam, dtype=np.float64))


def _labelled_ticks(ax, renderer):
    lo, hi = ax.get_ylim()
    return [t.get_text() for t, v in zip(ax.get_yticklabels(), ax.get_yticks())
            if lo <= v <= hi and t.get_text()]


@pytest.mark.parametrize("zeros", [0, 3])
def test_spectrum_lambda_axis_shows_small_eigenvalues(layer, zeros):
    d = layer[3]
    lam = np.geomspace(1e-6, 1e4, 8)
    lam[:zeros] = 0.0
    fig = plot.singular_spectrum(_with_lambda(d, lam))
    renderer = _drawn(fig)
    right = fig.axes[1]
    assert right.get_yscale() == ("log" if zeros == 0 else "symlog")
    if zeros:
        # The linear part ends at the decade below the smallest positive lambda, not at 1.
        assert right.yaxis.get_transform().linthresh == pytest.approx(10.0 ** np.floor(np.log10(lam[zeros])))
    labels = _labelled_ticks(right, renderer)
    assert len(labels) >= 5, labels
    if zeros:
        assert "0" in labels[0] or labels[0].strip("$") == "0"
    # Every lambda is inside the axis.
    lo, hi = right.get_ylim()
    assert lo <= lam.min() and lam.max() <= hi


def test_spectrum_with_tiny_eigenvalues_and_a_zero(layer):
    d = layer[3]
    lam = np.r_[0.0, np.geomspace(1e-6, 1e-3, 7)]  # once drawn with ticks "0" and "10^0" only
    fig = plot.singular_spectrum(_with_lambda(d, lam))
    renderer = _drawn(fig)
    labels = _labelled_ticks(fig.axes[1], renderer)
    assert len(labels) >= 4, labels
    assert not any("10^{0}" in t for t in labels)  # no decade far above the data


@pytest.mark.parametrize("lam", [None, np.geomspace(1e-6, 1e4, 8), np.r_[0, 0, np.geomspace(1e-6, 1e4, 6)]])
def test_spectrum_legend_covers_no_data(layer, lam):
    d = layer[3] if lam is None else _with_lambda(layer[3], lam)
    fig = plot.singular_spectrum(d)
    renderer = _drawn(fig)
    (legend,) = fig.legends
    box = legend.get_window_extent(renderer)
    for ax in fig.axes:  # both panels, the twin with the bars and the colorbar-free layout
        assert not box.overlaps(ax.get_window_extent(renderer)), ax
    assert len(legend.get_texts()) == 2


def test_fourier_figure_power_per_smoothness_eigenmode(layer):
    W, _, _, d = layer
    fig = plot.fourier_magnitude(d, W, sample_spacing=0.5, frequency_unit="Hz")
    (magnitude,) = _arrays(fig)
    np.testing.assert_allclose(magnitude, np.abs(np.fft.rfft(d.P @ W, axis=1)), rtol=1e-12)
    right = fig.axes[1]
    before, after = (np.asarray(line.get_ydata()) for line in right.get_lines())
    T, S = d.basis, d.hidden
    # The numbers drawn: t_k^T S t_k and t_k^T P S P^T t_k over the operator's own eigenvectors.
    np.testing.assert_allclose(before, np.diag(T.T @ S @ T), rtol=1e-10)
    np.testing.assert_allclose(after, np.diag(T.T @ d.P @ S @ d.P.T @ T), rtol=1e-10)
    np.testing.assert_allclose(plot.eigenmode_power(d)[0], before, rtol=1e-12)
    # A rotation keeps the total power, and at the closed form the descrambled power is mu, descending.
    assert before.sum() == pytest.approx(np.trace(S), rel=1e-9)
    assert after.sum() == pytest.approx(np.trace(S), rel=1e-9)
    np.testing.assert_allclose(after, d.spectrum, rtol=1e-8, atol=1e-10 * d.spectrum[0])
    assert "eigenmode" in right.get_xlabel()
    # For the Fourier operator, the cos/sin pair of each frequency sums to the old neuron-axis DFT power.
    m = S.shape[0]
    F = np.fft.rfft(np.eye(m), axis=0, norm="ortho")
    dft = np.real(np.einsum("ki,ij,kj->k", F, S, F.conj()))
    dft[1:(m + 1) // 2] *= 2.0
    lam = d.basis_values
    pairs = [before[np.isclose(lam, value)].sum() for value in np.unique(np.round(lam, 9))]
    np.testing.assert_allclose(pairs, dft, rtol=1e-9)


def test_fourier_power_with_another_operator(layer):
    W, b, X, _ = layer
    d = descramble.descramble(W, data=X, bias=b, smoothness="fd")  # DCT eigenvectors, not Fourier modes
    before, after = plot.eigenmode_power(d)
    T = d.basis
    np.testing.assert_allclose(before, np.einsum("ik,ij,jk->k", T, d.hidden, T), rtol=1e-10)
    np.testing.assert_allclose(after, d.spectrum, rtol=1e-8, atol=1e-10 * d.spectrum[0])
    fig = plot.fourier_magnitude(d, W)
    renderer = _drawn(fig)
    (legend,) = fig.legends
    for ax in fig.axes:
        assert not legend.get_window_extent(renderer).overlaps(ax.get_window_extent(renderer))


def test_diagonal_descrambler_has_no_power_panel(rng):
    square = rng.normal(size=(6, 6))
    d = descramble.descramble(square, criterion="diagonal")
    fig = plot.fourier_magnitude(d, square)
    assert not fig.axes[1].axison
    with pytest.raises(ValueError, match="descrambler: no hidden autocorrelation"):
        plot.eigenmode_power(d)


def test_weight_images(layer):
    W, _, _, d = layer
    fig = plot.weight_images(d, W, input_shape=(4, 4))
    images = _images(fig)
    assert len(images) == 8
    PW = d.P @ W
    for k, image in enumerate(images):
        np.testing.assert_allclose(image.get_array(), PW[k].reshape(4, 4), atol=1e-12)
        assert image.axes.get_title() == f"unit {k}"
    limit = np.abs(PW).max()
    for image in images:
        assert image.get_clim() == pytest.approx((-limit, limit), rel=1e-12)
    chosen = plot.weight_images(d, W, input_shape=[2, 8], rows=[5, 1])
    np.testing.assert_allclose(_arrays(chosen)[0], PW[5].reshape(2, 8), atol=1e-12)
    assert _images(chosen)[0].get_clim() == pytest.approx((-np.abs(PW[[5, 1]]).max(), np.abs(PW[[5, 1]]).max()))


def test_weight_images_cap_and_q(second_layer):
    W2, Q, d2 = second_layer
    images = _arrays(plot.weight_images(d2, input_shape=(3, 4)))
    np.testing.assert_allclose(images[0], (d2.P @ W2 @ Q.T)[0].reshape(3, 4), atol=1e-10)
    rng = np.random.default_rng(3)
    big = rng.normal(size=(100, 4))
    d = descramble.descramble(big, data=rng.normal(size=(500, 4)))
    assert len(_images(plot.weight_images(d, big, input_shape=(2, 2)))) == plot.MAX_IMAGES


@pytest.mark.parametrize("kwargs, message", [
    ({"input_shape": (3, 5)}, "input_shape: 3 x 5 = 15 pixels, but the layer has 16 inputs"),
    ({"input_shape": (16,)}, "input_shape: expected two positive integers"),
    ({"input_shape": (4.0, 4)}, "input_shape: expected two positive integers"),
    ({"input_shape": (-4, -4)}, "input_shape: expected two positive integers"),
    ({"input_shape": 16}, r"input_shape: expected \(height, width\)"),
    ({"input_shape": (4, 4), "rows": [8]}, "rows: indices must lie in 0 ... 7"),
    ({"input_shape": (4, 4), "rows": [0.5]}, "rows: expected a non-empty sequence"),
    ({"input_shape": (4, 4), "rows": []}, "rows: expected a non-empty sequence"),
    ({"input_shape": (4, 4), "rows": list(range(8)) * 9}, "rows: at most 64"),
    ({"input_shape": (4, 4), "columns": 0}, "columns: expected a positive integer"),
])
def test_weight_images_bad_input(layer, kwargs, message):
    W, _, _, d = layer
    with pytest.raises(ValueError, match=message):
        plot.weight_images(d, W, **kwargs)


def test_convergence_figure(layer):
    W, b, X, _ = layer
    result = convergence(W, X, bias=b)
    fig = plot.convergence(result)
    left, right = fig.axes[:2]
    np.testing.assert_allclose(left.get_lines()[0].get_ydata(), result.loss)
    excess = right.get_lines()[0].get_ydata()
    np.testing.assert_allclose(excess, ((result.loss - result.bound) / result.bound)[:-1])
    renderer = _drawn(fig)
    assert len(fig.legends) == 2
    for legend in fig.legends:
        for ax in fig.axes:
            assert not legend.get_window_extent(renderer).overlaps(ax.get_window_extent(renderer))


@pytest.mark.parametrize("suffix, magic", [("png", b"\x89PNG"), ("svg", b"<?xml"), ("pdf", b"%PDF")])
def test_save_formats(layer, tmp_path, suffix, magic):
    d = layer[3]
    path = plot.save(plot.weights(d), tmp_path / f"w.{suffix}", dpi=50)
    assert path == tmp_path / f"w.{suffix}"
    assert path.read_bytes()[:len(magic)] == magic
    other = plot.save(plot.weights(d), tmp_path / "noext", format=suffix.upper())
    assert other.read_bytes()[:len(magic)] == magic


@pytest.mark.parametrize("dpi", [40, 150])
def test_save_png_size_is_figsize_times_dpi(layer, tmp_path, dpi):
    from matplotlib.image import imread

    fig = plot.singular_spectrum(layer[3])
    path = plot.save(fig, tmp_path / "s.png", dpi=dpi)
    height, width = imread(path).shape[:2]
    w, h = fig.get_size_inches()
    assert (width, height) == (round(w * dpi), round(h * dpi))


def test_save_bad_input(layer, tmp_path):
    fig = plot.weights(layer[3])
    with pytest.raises(ValueError, match="format: cannot tell"):
        plot.save(fig, tmp_path / "w.jpg")
    with pytest.raises(ValueError, match="format: expected one of png, svg, pdf"):
        plot.save(fig, tmp_path / "w", format="eps")
    with pytest.raises(ValueError, match="format: 'pdf' does not match"):
        plot.save(fig, tmp_path / "w.png", format="pdf")
    for dpi in (0, -1, float("nan"), True, "150"):
        with pytest.raises(ValueError, match="dpi: expected a positive number"):
            plot.save(fig, tmp_path / "w.png", dpi=dpi)
    assert not list(tmp_path.iterdir())


def test_bad_input(layer):
    W, _, _, d = layer
    with pytest.raises(ValueError, match="x: expected 16 coordinates"):
        plot.weights(d, x=np.arange(3))
    with pytest.raises(ValueError, match="input_values: expected 16 coordinates"):
        plot.weights(d, input_values=np.arange(3))
    with pytest.raises(ValueError, match="weights: expected a 2-D matrix"):
        plot.weights(d, np.ones(8))
    bare = descramble.descramble(hidden=d.hidden)
    with pytest.raises(ValueError, match="has no weights"):
        plot.fourier_magnitude(bare)


def test_pixels_are_centred_on_their_coordinates(layer):
    W, _, _, d = layer
    x = 8.0 * np.arange(1, 17)  # echo times 8 ... 128: the first column is centred on 8, not on 8 + 4
    raw = plot.weights(d, input_values=x).axes[0].get_images()[0]
    assert raw.get_extent()[:2] == pytest.approx([4.0, 132.0])
    with pytest.raises(ValueError, match="input_values: expected finite, evenly spaced"):
        plot.weights(d, input_values=np.geomspace(1, 100, 16))
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


@pytest.fixture(scope="module")
def permuted():
    """A 10-12-8-3 tanh network and its signed-permutation rewrite."""
    rng = np.random.default_rng(4)
    sizes = (10, 12, 8, 3)
    layers = [(rng.normal(size=(m, n)), rng.normal(size=m), "tanh" if k < 2 else "identity")
              for k, (n, m) in enumerate(zip(sizes[:-1], sizes[1:]))]
    X = rng.normal(size=(400, 10))
    with pytest.warns(descramble.UnderdeterminedWarning):
        result = descramble.permute_network(layers, X, criterion="signed-permutation", max_iterations=3)
    return layers, result


def test_permuted_weights_shows_w_and_the_rewritten_w_with_the_certificate(permuted):
    layers, result = permuted
    d = result.descramblers[1]
    fig = plot.permuted_weights(d, layers[1][0], title="fc2")
    before, after = _arrays(fig)
    np.testing.assert_array_equal(before, layers[1][0])
    np.testing.assert_array_equal(after, result.layers[1][0])  # rows and columns permuted (and flipped)
    title = fig._suptitle.get_text()
    assert title.startswith("fc2: loss ") and f"bound {d.bound:.4g}" in title and f"gap {d.gap:.3g}" in title
    left, right = fig.axes[:2]
    assert left.get_ylabel() == "hidden unit (trained order)" and right.get_ylabel() == "hidden unit (new order)"
    assert "previous layer's new order" in right.get_xlabel()
    # The first layer's inputs keep their order; without signs the panel says "permuted" only.
    first = dataclasses.replace(result.descramblers[0], signs=None)
    assert _arrays(plot.permuted_weights(first, layers[0][0]))[1].shape == (12, 10)
    assert plot.permuted_weights(first, layers[0][0]).axes[1].get_title().startswith("permuted: W' = P W")
    _drawn(fig)


def test_permuted_network_draws_every_layer_before_and_after(permuted):
    layers, result = permuted
    fig = plot.permuted_network(layers, result.layers, result.descramblers, names=["a", "b", "out"])
    arrays = _arrays(fig)
    assert len(arrays) == 6  # two rows of three layers
    for k in range(3):
        np.testing.assert_array_equal(arrays[k], layers[k][0])  # top row: trained
        np.testing.assert_array_equal(arrays[3 + k], result.layers[k][0])  # bottom row: rewritten
    titles = [ax.get_title() for ax in fig.axes]
    assert "a: 12 x 10, trained" in titles and any(t.startswith("loss ") and "gap" in t for t in titles)
    assert any("output units in their order" in t for t in titles)
    _drawn(fig)
    with pytest.raises(ValueError, match="after: expected as many layers"):
        plot.permuted_network(layers, result.layers[:2], result.descramblers)
    with pytest.raises(ValueError, match=r"after\[1\]: shape"):
        plot.permuted_network(layers, [layers[0], layers[0], layers[2]], result.descramblers)
    with pytest.raises(ValueError, match="names: expected 3 names"):
        plot.permuted_network(layers, result.layers, result.descramblers, names=["a"])
