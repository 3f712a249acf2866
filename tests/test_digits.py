"""The issue's acceptance test: a PyTorch MLP trained on scikit-learn's digits, descrambled by ``descramble run``."""

import json
import re

import numpy as np
import pytest

import descramble
from descramble.cli import main

torch = pytest.importorskip("torch", reason="the acceptance test trains a PyTorch MLP (pip install torch)")
datasets = pytest.importorskip("sklearn.datasets", reason="the digits data come from scikit-learn (the test extra)")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 64-32-16-10 ReLU MLP trained a few epochs on the digits (seeded, 2 threads), saved as the CLI reads it."""
    torch.manual_seed(0)
    torch.set_num_threads(2)
    X, y = datasets.load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float64)
    model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 16), torch.nn.ReLU(),
                                torch.nn.Linear(16, 10)).double()
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    inputs, targets = torch.from_numpy(X), torch.from_numpy(y)
    generator = torch.Generator().manual_seed(0)
    for _ in range(5):
        for batch in torch.randperm(len(X), generator=generator).split(64):
            optimiser.zero_grad()
            torch.nn.functional.cross_entropy(model(inputs[batch]), targets[batch]).backward()
            optimiser.step()
    accuracy = (model(inputs).argmax(1) == targets).double().mean().item()
    assert accuracy > 0.9, accuracy  # it has learnt something
    d = tmp_path_factory.mktemp("digits")
    torch.save(model.state_dict(), d / "mlp.pt")
    np.save(d / "X.npy", X)
    layers = [(layer.weight.detach().numpy().copy(), layer.bias.detach().numpy().copy())
              for layer in model if isinstance(layer, torch.nn.Linear)]
    return d, X, layers


def _components(S):
    """U of S (descending mu) with the core's sign convention: each column's largest-magnitude entry positive."""
    mu, U = np.linalg.eigh(S)
    mu, U = mu[::-1], U[:, ::-1]
    U = U * np.sign(U[np.abs(U).argmax(axis=0), np.arange(U.shape[1])])
    return mu, U


def _unique(mu):
    """Indices where U's column is unique up to sign: outside degenerate groups of mu (e.g. dead ReLU units)."""
    groups = descramble.smoothness.degenerate_groups(mu, rtol=1e-8)
    taken = set(int(i) for g in groups for i in g)
    return np.array([i for i in range(mu.size) if i not in taken])


def _run(d, out, *extra):
    return main(["run", "--weights", str(d / "mlp.pt"), "--data", str(d / "X.npy"), "--out", str(out),
                 "--activation", "relu", *extra])


def test_every_hidden_layer_is_descrambled_and_reported(trained, tmp_path, capsys):
    pytest.importorskip("matplotlib", reason="the report's figures need matplotlib")
    d, X, layers = trained
    out = tmp_path / "report"
    code = _run(d, out, "--format", "svg", "--dpi", "120", "--input-shape", "8x8")
    _, err = capsys.readouterr()
    assert code == 0, err
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["layers"]) == ["layer1", "layer2"]  # the hidden layers, not the output layer
    assert summary["N"] == X.shape[0]
    for name, layer in summary["layers"].items():
        assert layer["equal"] is True
        assert layer["loss"] == pytest.approx(layer["bound"], rel=1e-9)

    # Independent NumPy forward pass: layer 1's outputs h1 and layer 2's pre-activations z2.
    (W1, b1), (W2, b2), _ = layers
    h1 = np.maximum(X @ W1.T + b1, 0.0)
    z2 = h1 @ W2.T + b2
    N = X.shape[0]
    mu1, U1 = _components(h1.T @ h1 / N)  # Q1 = T1 U1^T
    mu2, U2 = _components(z2.T @ z2 / N)  # P2 = T2 U2^T
    T1 = descramble.smoothness.fourier(32).basis()[1]
    T2 = descramble.smoothness.fourier(16).basis()[1]
    saved = np.load(out / "PW_layer2.npy")  # P2 W2 Q1^T = T2 U2^T W2 U1 T1^T
    core = T2.T @ saved @ T1  # = U2^T W2 U1 in the core's convention
    expected = U2.T @ W2 @ U1
    rows, cols = _unique(mu2), _unique(mu1)
    assert rows.size >= 10 and cols.size >= 10
    # The last column of each U carries det(P) = +1, so its sign is the convention's, not the data's: compare
    # up to signs only (exact wherever the components are unique).
    np.testing.assert_allclose(np.abs(core[np.ix_(rows, cols)]), np.abs(expected[np.ix_(rows, cols)]),
                               rtol=1e-6, atol=1e-8 * np.abs(W2).max())
    # And Q1 really is layer 1's post-activation descrambler: not layer 1's own P (a relu in between).
    P1 = np.load(out / "P_layer1.npy")
    assert not np.allclose(np.abs(core), np.abs(T2.T @ np.load(out / "P_layer2.npy") @ W2 @ P1.T @ T1), atol=1e-6)

    index = (out / "index.html").read_text()
    figures = sorted(p.name for p in out.iterdir() if p.suffix in (".svg", ".png", ".pdf"))
    assert figures and all(name.endswith(".svg") for name in figures)
    for name in figures:
        assert name in index, name
        assert (out / name).read_text().lstrip().startswith(("<?xml", "<svg"))
    for layer in summary["layers"].values():
        for name in layer["files"]:
            assert (out / name).is_file()


def test_output_layer_on_request_and_png_size(trained, tmp_path, capsys):
    pytest.importorskip("matplotlib", reason="the report's figures need matplotlib")
    d, X, layers = trained
    out = tmp_path / "png"
    code = _run(d, out, "--dpi", "120", "--output")
    _, err = capsys.readouterr()
    assert code == 0, err
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["layers"]) == ["layer1", "layer2", "layer3"]
    pngs = sorted(out.glob("*.png"))
    assert pngs
    out2 = tmp_path / "png60"
    assert _run(d, out2, "--dpi", "60", "--output") == 0
    capsys.readouterr()
    for png in pngs:
        data = png.read_bytes()
        # pHYs: pixels per metre, 120 dpi = 4724 px/m.
        at = data.index(b"pHYs")
        assert int.from_bytes(data[at + 4:at + 8], "big") == round(120 / 0.0254), png.name
        w1, h1 = _size(data)
        w2, h2 = _size((out2 / png.name).read_bytes())
        # Twice the dpi, twice the pixels (up to the rounding of a tight bounding box).
        assert w1 == pytest.approx(2 * w2, rel=0.02) and h1 == pytest.approx(2 * h2, rel=0.02), png.name


def _size(png):
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
