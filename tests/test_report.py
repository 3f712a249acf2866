"""descramble.cli.report: the files of a layer's report (formats, dpi, P W Q^T), its summary, and index.html."""

import dataclasses
import html
import json
import re

import numpy as np
import pytest

import descramble
from descramble.cli import report
from descramble.convergence import convergence

matplotlib = pytest.importorskip("matplotlib", reason="the report's figures need matplotlib (pip install matplotlib)")

MAGIC = {"png": b"\x89PNG\r\n\x1a\n", "svg": b"<?xml", "pdf": b"%PDF-"}


@pytest.fixture(scope="module")
def layer():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(1500, 16)) * np.linspace(2, 0.1, 16)
    W, b = rng.normal(size=(8, 16)), rng.normal(size=8)
    return W, b, X, descramble.descramble(W, data=X, bias=b)


@pytest.fixture(scope="module")
def conv(layer):
    W, b, X, _ = layer
    return convergence(W, X, bias=b)


@pytest.fixture(scope="module")
def second_layer():
    rng = np.random.default_rng(6)
    X = rng.normal(size=(1500, 16))
    W1, W2 = rng.normal(size=(9, 16)), rng.normal(size=(5, 9))
    a1 = np.maximum(X @ W1.T, 0.0)
    Q = descramble.descramble(hidden=a1.T @ a1 / len(a1)).P
    h2 = a1 @ W2.T
    d2 = descramble.descramble(W2, hidden=h2.T @ h2 / len(h2))
    return W2, Q, dataclasses.replace(d2, Q=Q, weights=d2.P @ W2 @ Q.T)


@pytest.mark.parametrize("fmt", ["png", "svg", "pdf"])
def test_layer_report_writes_every_figure_in_the_format(layer, conv, tmp_path, fmt):
    W, b, X, d = layer
    summary = report.layer_report(tmp_path, "L1", d, W, convergence=conv, input_shape=(4, 4), format=fmt, dpi=40)
    expected = report.layer_files("L1", figures=True, convergence=True, format=fmt, images=True)
    assert summary["files"] == expected
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(expected)
    figures = [name for name in expected if not name.endswith(".npy")]
    assert {name.split("_")[0] for name in figures} == {"weights", "spectrum", "fourier", "images", "convergence"}
    for name in figures:
        assert name.endswith(f".{fmt}")
        assert (tmp_path / name).read_bytes()[:len(MAGIC[fmt])] == MAGIC[fmt]


@pytest.mark.parametrize("dpi", [50, 150])
def test_png_size_is_figsize_times_dpi(layer, tmp_path, dpi):
    from matplotlib.image import imread

    W, _, _, d = layer
    summary = report.layer_report(tmp_path, "L", d, W, dpi=dpi)
    height, width = imread(tmp_path / "weights_L.png").shape[:2]
    assert (width, height) == (11 * dpi, round(4.2 * dpi))
    assert "weights_L.png" in summary["files"]


def test_default_dpi_is_150(layer, tmp_path):
    from matplotlib.image import imread

    W, _, _, d = layer
    report.layer_report(tmp_path, "L", d, W)
    assert imread(tmp_path / "spectrum_L.png").shape[1] == 11 * 150  # once saved at 80 dpi


def test_layer_files_lists_the_suffix():
    assert report.layer_files("a", figures=False, convergence=True) == ["P_a.npy", "PW_a.npy"]
    assert report.layer_files("a", figures=True, convergence=False, format="svg") == [
        "P_a.npy", "PW_a.npy", "weights_a.svg", "spectrum_a.svg", "fourier_a.svg"]
    assert report.layer_files("a", figures=True, convergence=True, format="pdf", images=True)[-2:] == [
        "images_a.pdf", "convergence_a.pdf"]
    with pytest.raises(ValueError, match="format: expected one of png, svg, pdf"):
        report.layer_files("a", figures=True, convergence=False, format="jpg")


def test_saved_pw_is_p_w_q_transpose(second_layer, tmp_path):
    W2, Q, d2 = second_layer
    summary = report.layer_report(tmp_path, "layer2", d2, W2, figures=False)
    np.testing.assert_allclose(np.load(tmp_path / "PW_layer2.npy"), d2.P @ W2 @ Q.T, atol=1e-12)
    np.testing.assert_array_equal(np.load(tmp_path / "P_layer2.npy"), d2.P)
    assert summary["input_descrambled"] is True
    # Q is saved too: the columns of P W Q^T map back to the previous layer's units through it.
    np.testing.assert_array_equal(np.load(tmp_path / "Q_layer2.npy"), Q)
    assert summary["files"] == ["P_layer2.npy", "PW_layer2.npy", "Q_layer2.npy"]
    assert summary["files"] == report.layer_files("layer2", figures=False, convergence=False, input_descrambled=True)


def test_saved_pw_without_q(layer, tmp_path):
    W, _, _, d = layer
    summary = report.layer_report(tmp_path, "L", d, W, figures=False)
    np.testing.assert_allclose(np.load(tmp_path / "PW_L.npy"), d.P @ W, atol=1e-12)
    assert summary["input_descrambled"] is False


def test_summary_says_whether_loss_equals_bound(layer, tmp_path):
    W, _, _, d = layer
    summary = report.layer_report(tmp_path, "L", d, W, figures=False)
    assert summary["equal"] is True
    assert summary["relative_gap"] == pytest.approx((d.loss - d.bound) / abs(d.bound))
    off = dataclasses.replace(d, loss=d.bound * (1 + 1e-6))
    assert report.layer_report(tmp_path, "M", off, W, figures=False)["equal"] is False
    zero = dataclasses.replace(d, loss=0.0, bound=0.0)
    assert report.layer_report(tmp_path, "Z", zero, W, figures=False)["equal"] is True
    # A bound of zero: the gap is measured against the loss's scale lambda_max tr(S) (to 1e-12 of it).
    scale = float(np.max(d.basis_values) * np.trace(d.hidden))
    rounding = dataclasses.replace(d, loss=1e-14 * scale, bound=0.0)
    summary_zero = report.layer_report(tmp_path, "T", rounding, W, figures=False)
    assert summary_zero["equal"] is True and summary_zero["relative_gap"] is None
    assert summary_zero["loss_scale"] == pytest.approx(scale)
    real = dataclasses.replace(d, loss=1e-9 * scale, bound=0.0)
    assert report.layer_report(tmp_path, "U", real, W, figures=False)["equal"] is False
    json.dumps(summary, allow_nan=False)


def test_old_keywords_still_work(layer, tmp_path):
    W, b, X, d = layer
    # The call the demo and the CLI make.
    summary = report.layer_report(tmp_path, "L", d, W, convergence=None, x=np.arange(16) * 2.0,
                                  xlabel="echo time (ms)", sample_spacing=0.002, frequency_unit="Hz", figures=True)
    assert summary["files"] == report.layer_files("L", figures=True, convergence=False)
    report.layer_report(tmp_path, "S", d, W, x=np.arange(16) * 2.0, xlabel="echo time (ms)", format="svg")
    assert "echo time (ms)" in (tmp_path / "weights_S.svg").read_text()
    with pytest.raises(ValueError, match="input_values: pass either"):
        report.layer_report(tmp_path, "L", d, W, x=np.arange(16), input_values=np.arange(16), figures=False)
    with pytest.raises(ValueError, match="input_label: pass either"):
        report.layer_report(tmp_path, "L", d, W, xlabel="a", input_label="b", figures=False)


def test_labels_reach_the_figure(layer, tmp_path):
    W, _, _, d = layer
    report.layer_report(tmp_path, "L", d, W, input_label="echo <time> & ms", format="svg")
    text = (tmp_path / "weights_L.svg").read_text()
    assert "echo &lt;time&gt; &amp; ms" in text  # svg keeps the text (as a comment/glyph name)


def test_bad_format_and_shape(layer, tmp_path):
    W, _, _, d = layer
    with pytest.raises(ValueError, match="format: expected one of"):
        report.layer_report(tmp_path, "L", d, W, format="gif")
    with pytest.raises(ValueError, match="input_shape: 3 x 3 = 9 pixels"):
        report.layer_report(tmp_path, "L", d, W, input_shape=(3, 3))
    with pytest.raises(ValueError, match="dpi: expected a positive number"):
        report.layer_report(tmp_path, "L", d, W, dpi=0)
    with pytest.raises(ValueError, match="input_values: expected 16 coordinates"):
        report.layer_report(tmp_path, "L", d, W, input_values=np.arange(3))
    assert not list(tmp_path.iterdir())  # checked before anything is written


def _summary(tmp_path, layer, conv, second_layer, fmt="png"):
    W, b, X, d = layer
    W2, Q, d2 = second_layer
    layers = {
        "layer1": report.layer_report(tmp_path, "layer1", d, W, convergence=conv, input_shape=(4, 4), format=fmt,
                                      dpi=30),
        "layer2": report.layer_report(tmp_path, "layer2", d2, W2, format=fmt, dpi=30),
    }
    layers["layer2"]["warnings"] = ["<b>underdetermined</b>: N = 3 < m = 5 & more"]
    return {
        "command": "run",
        "inputs": {"weights": "net<1>.npz", "bias": True},
        "N": 1500,
        "network": {"layers": ["fc1", "fc2"], "activation": "relu"},
        "timings_s": {"total": 1.25},
        "versions": {"descramble": "0.x", "numpy": np.__version__},
        "layers": layers,
    }


@pytest.mark.parametrize("fmt", ["png", "pdf"])
def test_index_shows_every_figure_and_number(layer, conv, second_layer, tmp_path, fmt):
    summary = _summary(tmp_path, layer, conv, second_layer, fmt)
    path = report.write_index(tmp_path, summary)
    assert path == tmp_path / "index.html"
    page = path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    for name, layer_summary in summary["layers"].items():
        for file in layer_summary["files"]:
            if file.endswith((".png", ".svg")):
                assert f'<img src="{file}"' in page
            else:
                assert f'<a href="{file}">' in page
            assert (tmp_path / file).is_file()
        for key in ("loss", "bound", "raw_loss"):
            assert f"{layer_summary[key]:.6g}" in page
        assert f"{layer_summary['relative_gap']:.6g}" in page
    assert page.count("<img ") == (0 if fmt == "pdf" else 8)  # layer 1: 5 figures, layer 2: 3
    conv = summary["layers"]["layer1"]["convergence"]
    for N in conv["n_samples"]:
        assert f">{N}<" in page
    # The run's inputs, network, timings and versions, escaped.
    for text in ("net&lt;1&gt;.npz", "relu", "fc2", "1.25", np.__version__, "1500"):
        assert text in page
    # The warning is shown as text, not as markup.
    assert "&lt;b&gt;underdetermined&lt;/b&gt;: N = 3 &lt; m = 5 &amp; more" in page
    assert "<b>" not in page
    # No script, no external resource.
    assert "<script" not in page.lower()
    assert not re.search(r"""(src|href)="(https?:)?//""", page)


def test_index_escapes_layer_and_file_names(tmp_path):
    name = 'a<b>&"c'
    summary = {"command": "demo<x>", "layers": {name: {
        "m": 2, "n": 3, "loss": 1.0, "bound": 1.0, "relative_gap": 0.0, "equal": True,
        "degenerate": [{"kind": "smoothness", "indices": [0, 1]}],
        "files": [f"weights_{name}.png", f"spectrum_{name}.pdf", f"P_{name}.npy", "x y#1.svg"]}}}
    page = report.write_index(tmp_path, summary).read_text()
    assert name not in page and "demo<x>" not in page
    assert html.escape(name) in page
    assert 'src="weights_a%3Cb%3E%26%22c.png"' in page
    assert 'href="spectrum_a%3Cb%3E%26%22c.pdf"' in page
    assert 'src="x%20y%231.svg"' in page
    assert "smoothness: indices 0, 1" in page
    # Every tag in the page is one of the page's own.
    tags = set(re.findall(r"<\s*([a-zA-Z][a-zA-Z0-9]*)", page))
    assert tags <= {"html", "head", "meta", "title", "style", "body", "h1", "h2", "p", "a", "table", "tr", "th",
                    "td", "ul", "li", "figure", "img", "figcaption", "details", "summary"}, tags


def test_index_of_an_empty_summary(tmp_path):
    page = report.write_index(tmp_path, {"layers": {}}).read_text()
    assert "</html>" in page
    with pytest.raises(ValueError, match="summary"):
        report.write_index(tmp_path, {"layers": ["layer1"]})


def test_layer_files_and_report_of_a_permutation(tmp_path):
    from descramble.cli import report

    assert report.layer_files("fc1", figures=False, convergence=False, criterion="permutation") == [
        "P_fc1.npy", "PW_fc1.npy", "permutation_fc1.npy"]
    assert report.layer_files("fc1", figures=False, convergence=False, criterion="signed-permutation")[-2:] == [
        "permutation_fc1.npy", "signs_fc1.npy"]
    rng = np.random.default_rng(3)
    W = rng.normal(size=(6, 4))
    S = W @ np.diag([3.0, 2, 1, 0.5]) @ W.T + 0.1 * np.eye(6)
    d = descramble.descramble(W, hidden=S, criterion="signed-permutation", max_iterations=2)
    summary = report.layer_report(tmp_path, "fc1", d, W, figures=False)
    assert summary["criterion"] == "signed-permutation" and summary["gap"] == d.gap
    assert summary["files"] == report.layer_files("fc1", figures=False, convergence=False,
                                                  criterion="signed-permutation")
    np.testing.assert_array_equal(np.load(tmp_path / "permutation_fc1.npy"), d.permutation)
    np.testing.assert_array_equal(np.load(tmp_path / "signs_fc1.npy"), d.signs)
    page = report.write_index(tmp_path, {"command": "permute", "layers": {"fc1": summary}, "figures": ["n.png"]})
    text = page.read_text()
    assert f"fc1 {d.gap:.6g}" in text and "certificate gap" in text and '<img src="n.png"' in text
    smooth = report.layer_report(tmp_path, "s", descramble.descramble(W, hidden=S), W, figures=False)
    assert smooth["criterion"] == "smooth" and 0 <= smooth["gap"] < 1e-9
