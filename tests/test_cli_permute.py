"""``descramble permute`` and ``descramble run --criterion permutation``: the rewritten network file computes the
same outputs as the original, the report carries every layer's certificate gap, and user errors are one line."""

import json
import re

import numpy as np
import pytest

import descramble
from descramble.cli import main

pytestmark = pytest.mark.filterwarnings("ignore::descramble.UnderdeterminedWarning")

ACT = {"identity": lambda z: z, "relu": lambda z: np.maximum(z, 0), "tanh": np.tanh}


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def forward(layers, X):
    h = X
    for W, b, activation in layers:
        h = ACT[activation](h @ W.T + (0 if b is None else b))
    return h


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    """A 12-16-10-3 network as .npz (W1, b1, ..., float64 and a float32 copy, and one stored transposed) and its
    input data."""
    d = tmp_path_factory.mktemp("permute")
    rng = np.random.default_rng(5)
    sizes = (12, 16, 10, 3)
    arrays = {}
    for k, (n, m) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        arrays[f"W{k}"], arrays[f"b{k}"] = rng.normal(size=(m, n)) / np.sqrt(n), rng.normal(size=m) * 0.3
    np.savez(d / "relu.npz", **arrays, activation="relu")
    np.savez(d / "tanh32.npz", **{k: v.astype(np.float32) for k, v in arrays.items()})
    np.savez(d / "keras.npz", **{k: (v.T if k.startswith("W") else v) for k, v in arrays.items()})
    np.savez(d / "one.npz", W1=arrays["W1"], b1=arrays["b1"])
    np.savez(d / "small.npz", W1=arrays["W1"][:6], b1=arrays["b1"][:6], W2=arrays["W2"][:3, :6], activation="tanh")
    X = rng.normal(size=(800, 12)) + 0.1
    np.save(d / "X.npy", X)
    layers = [(arrays[f"W{k}"], arrays[f"b{k}"]) for k in (1, 2, 3)]
    return d, arrays, layers, X


def test_permute_an_npz_network(net, tmp_path, capsys):
    d, arrays, layers, X = net
    out = tmp_path / "r"
    code, stdout, err = run_cli(capsys, "permute", "--weights", d / "relu.npz", "--data", d / "X.npy", "--out", out,
                                "--no-figures", "--max-iterations", "5", "--seed", "2")
    assert code == 0, err
    with np.load(out / "relu.npz") as z:
        written = {k: z[k] for k in z.files}
    assert list(written) == ["W1", "b1", "W2", "b2", "W3", "b3", "activation"]  # the same keys, in order
    assert str(written["activation"]) == "relu"
    assert all(written[k].dtype == arrays[k].dtype for k in arrays)
    relu = [(W, b, "relu" if k < 2 else "identity") for k, (W, b) in enumerate(layers)]
    rewritten = [(written[f"W{k}"], written[f"b{k}"], a) for k, (_, _, a) in enumerate(relu, start=1)]
    fresh = np.random.default_rng(0).normal(size=(300, 12)) * 3
    expected = forward(relu, fresh)
    np.testing.assert_allclose(forward(rewritten, fresh), expected, rtol=1e-12, atol=1e-12 * np.abs(expected).max())
    assert not np.array_equal(written["W1"], arrays["W1"])  # not the identity
    np.testing.assert_array_equal(written["b3"], arrays["b3"])  # the output units keep their order
    # The same permutations, losses and gaps as the library's.
    library = descramble.permute_network(relu, X, max_iterations=5, seed=2)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["command"] == "permute" and list(summary["layers"]) == ["W1", "W2"]
    assert summary["rewritten"]["file"] == "relu.npz"
    assert summary["rewritten"]["max_abs_output_difference"] <= 1e-12 * summary["rewritten"]["max_abs_output"]
    for name, dl, (W, b, _) in zip(("W1", "W2"), library.descramblers, library.layers):
        layer = summary["layers"][name]
        assert layer["criterion"] == "permutation"
        assert layer["gap"] == pytest.approx(dl.gap, rel=1e-12) and layer["gap"] > 0
        assert layer["loss"] == pytest.approx(dl.loss, rel=1e-12) and layer["bound"] == pytest.approx(dl.bound)
        np.testing.assert_array_equal(np.load(out / f"permutation_{name}.npy"), dl.permutation)
        np.testing.assert_array_equal(np.load(out / f"PW_{name}.npy"), W)
        assert not (out / f"signs_{name}.npy").exists()
    assert "certificate gap" in stdout and "rewritten network:" in stdout
    assert "certificate gap" in (out / "index.html").read_text()


def test_permute_signed_float32_and_transposed(net, tmp_path, capsys):
    d, arrays, layers, X = net
    tanh = [(W, b, "tanh" if k < 2 else "identity") for k, (W, b) in enumerate(layers)]
    fresh = np.random.default_rng(1).normal(size=(200, 12))
    code, _, err = run_cli(capsys, "permute", "--weights", d / "tanh32.npz", "--data", d / "X.npy", "--out",
                           tmp_path / "a", "--no-figures", "--activation", "tanh", "--criterion",
                           "signed-permutation", "--max-iterations", "3")
    assert code == 0, err
    with np.load(tmp_path / "a" / "tanh32.npz") as z:
        assert all(z[k].dtype == np.float32 for k in z.files)
        rewritten = [(z[f"W{k}"], z[f"b{k}"], a) for k, (_, _, a) in enumerate(tanh, start=1)]
    original = [(W.astype(np.float32), b.astype(np.float32), a) for W, b, a in tanh]
    x32 = fresh.astype(np.float32)
    np.testing.assert_allclose(forward(rewritten, x32), forward(original, x32), rtol=1e-6, atol=1e-6)
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert all(np.isin(np.load(tmp_path / "a" / f"signs_{n}.npy"), (-1, 1)).all() for n in ("W1", "W2"))
    assert all(layer["criterion"] == "signed-permutation" and layer["gap"] >= 0
               for layer in summary["layers"].values())
    # Stored as (inputs, outputs): written back in that layout.
    code, _, err = run_cli(capsys, "permute", "--weights", d / "keras.npz", "--transpose", "--data", d / "X.npy",
                           "--out", tmp_path / "k", "--no-figures", "--activation", "tanh", "--max-iterations", "3")
    assert code == 0, err
    with np.load(tmp_path / "k" / "keras.npz") as z:
        rewritten = [(z[f"W{k}"].T, z[f"b{k}"], a) for k, (_, _, a) in enumerate(tanh, start=1)]
    np.testing.assert_allclose(forward(rewritten, fresh), forward(tanh, fresh), rtol=1e-12, atol=1e-12)


def test_permute_a_pytorch_state_dict(net, tmp_path, capsys):
    torch = pytest.importorskip("torch", reason="PyTorch state dicts need torch")
    d, _, _, X = net
    torch.manual_seed(0)

    def model():
        return torch.nn.Sequential(torch.nn.Linear(12, 16), torch.nn.Tanh(), torch.nn.Linear(16, 10, bias=False),
                                   torch.nn.Tanh(), torch.nn.Linear(10, 3))

    original = model()
    torch.save(original.state_dict(), tmp_path / "model.pt")
    code, stdout, err = run_cli(capsys, "permute", "--weights", tmp_path / "model.pt", "--data", d / "X.npy",
                                "--out", tmp_path / "r", "--no-figures", "--activation", "tanh", "--criterion",
                                "signed-permutation", "--max-iterations", "3")
    assert code == 0, err
    state = torch.load(tmp_path / "r" / "model.pt", weights_only=True)
    reference = original.state_dict()
    assert list(state) == list(reference)
    assert all(state[k].dtype == reference[k].dtype and state[k].shape == reference[k].shape for k in state)
    rewritten = model()
    rewritten.load_state_dict(state)  # strict: the same keys
    x = torch.randn(256, 12)
    with torch.no_grad():
        expected = original(x)
        torch.testing.assert_close(rewritten(x), expected, rtol=1e-6, atol=1e-6)
    assert not torch.equal(state["0.weight"], reference["0.weight"])
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert list(summary["layers"]) == ["layer1", "layer2"]
    assert summary["layers"]["layer1"]["keys"] == ["0.weight", "0.bias"]
    assert summary["layers"]["layer2"]["keys"] == ["2.weight"]
    assert summary["rewritten"]["format"] == "PyTorch state dict"
    assert all(layer["gap"] is not None for layer in summary["layers"].values())
    # A training checkpoint: the model's state dict is rewritten (and written alone).
    torch.save({"epoch": 3, "state_dict": original.state_dict()}, tmp_path / "checkpoint.pt")
    code, _, err = run_cli(capsys, "permute", "--weights", tmp_path / "checkpoint.pt", "--data", d / "X.npy",
                           "--out", tmp_path / "c", "--no-figures", "--activation", "tanh", "--max-iterations", "3")
    assert code == 0, err
    rewritten.load_state_dict(torch.load(tmp_path / "c" / "checkpoint.pt", weights_only=True))
    with torch.no_grad():
        torch.testing.assert_close(rewritten(x), expected, rtol=1e-6, atol=1e-6)


def test_permute_report_figures(net, tmp_path, capsys):
    pytest.importorskip("matplotlib", reason="the report's figures need matplotlib")
    d, _, _, _ = net
    out = tmp_path / "r"
    code, _, err = run_cli(capsys, "permute", "--weights", d / "small.npz", "--data", d / "X.npy", "--out", out,
                           "--max-iterations", "3", "--dpi", "40")
    assert code == 0, err
    names = {p.name for p in out.iterdir()}
    assert {"network.png", "weights_W1.png", "spectrum_W1.png", "fourier_W1.png", "small.npz", "summary.json",
            "index.html"} == names - {"P_W1.npy", "PW_W1.npy", "permutation_W1.npy"}
    page = (out / "index.html").read_text()
    assert '<img src="network.png"' in page and "certificate gap" in page
    summary = json.loads((out / "summary.json").read_text())
    assert summary["figures"] == ["network.png"]
    assert set(summary["layers"]["W1"]["files"]) <= names


def test_run_with_a_permutation_criterion(net, tmp_path, capsys):
    d, _, layers, X = net
    out = tmp_path / "r"
    code, stdout, err = run_cli(capsys, "run", "--weights", d / "relu.npz", "--data", d / "X.npy", "--out", out,
                                "--no-figures", "--criterion", "permutation", "--max-iterations", "4", "--seed", "1")
    assert code == 0, err
    relu = [(W, b, "relu") for W, b in layers]
    expected = descramble.descramble_network(relu, X, criterion="permutation", max_iterations=4, seed=1)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["inputs"]["criterion"] == "permutation" and summary["inputs"]["seed"] == 1
    for name, e in zip(("W1", "W2"), expected):
        layer = summary["layers"][name]
        assert layer["gap"] == pytest.approx(e.gap, rel=1e-12) and layer["criterion"] == "permutation"
        np.testing.assert_array_equal(np.load(out / f"permutation_{name}.npy"), e.permutation)
        np.testing.assert_array_equal(np.load(out / f"P_{name}.npy"), e.P)
    np.testing.assert_array_equal(np.load(out / "Q_W2.npy"), expected[0].P)
    assert "certificate gap" in stdout
    # One layer: the search on the whole stream's statistics (no convergence curve), with its gap.
    code, _, err = run_cli(capsys, "run", "--weights", d / "relu.npz", "--layer", "W1", "--data", d / "X.npy",
                           "--out", tmp_path / "one", "--no-figures", "--criterion", "signed-permutation",
                           "--max-iterations", "4")
    assert code == 0, err
    layer = json.loads((tmp_path / "one" / "summary.json").read_text())["layers"]["W1"]
    e = descramble.descramble(layers[0][0], data=X, bias=layers[0][1], criterion="signed-permutation",
                              max_iterations=4)
    assert layer["gap"] == pytest.approx(e.gap, rel=1e-9) and "convergence" not in layer
    # The closed form's certificate is zero (to rounding), and shown too.
    code, _, err = run_cli(capsys, "run", "--weights", d / "relu.npz", "--data", d / "X.npy", "--out",
                           tmp_path / "smooth", "--no-figures")
    assert code == 0, err
    summary = json.loads((tmp_path / "smooth" / "summary.json").read_text())
    assert all(layer["criterion"] == "smooth" and layer["gap"] < 1e-9 for layer in summary["layers"].values())


def test_user_errors_are_one_line_and_status_2(net, tmp_path, capsys):
    d, arrays, _, _ = net
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "relu.npz").write_bytes(b"mine")
    np.save(tmp_path / "W.npy", arrays["W1"])
    common = ["--data", d / "X.npy", "--no-figures"]
    cases = [
        (["permute", "--weights", d / "relu.npz", "--criterion", "signed-permutation", "--out", tmp_path / "e"],
         r"--criterion: 'signed-permutation' flips the signs of layer W1's units, but its activation 'relu' is not "
         r"odd.*use --criterion permutation"),
        (["run", "--weights", d / "relu.npz", "--criterion", "signed-permutation", "--out", tmp_path / "e"],
         r"--criterion: .*layer W1's units, but its activation 'relu'"),
        (["permute", "--weights", d / "relu.npz", "--criterion", "smooth", "--out", tmp_path / "e"],
         r"argument --criterion: invalid choice: 'smooth'"),
        (["run", "--weights", d / "relu.npz", "--criterion", "diagonal", "--out", tmp_path / "e"],
         r"argument --criterion: invalid choice: 'diagonal'"),
        (["permute", "--weights", d / "relu.npz", "--out", taken], r"--out: .*relu.npz already exists"),
        (["permute", "--weights", d / "relu.npz", "--out", d, "--force"], r"--out: .*is the --weights input"),
        (["permute", "--weights", tmp_path / "W.npy", "--out", tmp_path / "e"],
         r"--weights: .*W.npy: permute rewrites PyTorch state dicts \(.pt, .pth\) and .npz/.mat archives"),
        (["permute", "--weights", d / "one.npz", "--out", tmp_path / "e", "--activation", "relu"],
         r"--weights: .*one.npz holds one dense layer"),
        (["permute", "--weights", d / "tanh32.npz", "--out", tmp_path / "e"], r"--activation: .*does not say"),
        (["permute", "--weights", tmp_path / "missing.npz", "--out", tmp_path / "e"], r"--weights: .*no such file"),
        (["permute", "--weights", d / "relu.npz", "--out", tmp_path / "e", "--seed", "-1"],
         r"argument --seed: expected an integer >= 0"),
        (["permute", "--weights", d / "relu.npz", "--out", tmp_path / "e", "--time-limit", "0"],
         r"argument --time-limit: expected a positive number"),
        (["permute", "--weights", d / "relu.npz", "--out", tmp_path / "e", "--smoothness", "grid:3x3"],
         r"--smoothness: layer W1 \(16 units\): grid 3x3 has 9 units"),
    ]
    for argv, match in cases:
        code, _, err = run_cli(capsys, *argv, *common)
        assert code == 2 and len(err.strip().splitlines()) == 1, (argv, err)
        assert re.search(match, err), (match, err)
        assert err.startswith(f"descramble {argv[0]}: error: "), err
    assert not (tmp_path / "e").exists()  # every check before anything is written
    assert (taken / "relu.npz").read_bytes() == b"mine"


@pytest.mark.parametrize("with_bias", [True, False])
def test_permute_rewrites_the_entries_the_layers_were_read_from(tmp_path, capsys, with_bias):
    # An unrelated 2-D entry named like a layer ("fc1" beside "fc1.weight"): it was taken for the layer's weights
    # (a StopIteration traceback looking for its bias, or, without biases, a rewrite of the wrong entry).
    rng = np.random.default_rng(3)
    entries = {"fc1": rng.normal(size=(8, 5)), "fc1.weight": rng.normal(size=(8, 5)), "fc1.bias": rng.normal(size=8),
               "fc2.weight": rng.normal(size=(3, 8)), "fc2.bias": rng.normal(size=3)}
    if not with_bias:
        del entries["fc1.bias"], entries["fc2.bias"]
    np.savez(tmp_path / "net.npz", **entries)
    X = rng.normal(size=(200, 5))
    np.save(tmp_path / "X.npy", X)
    code, _, err = run_cli(capsys, "permute", "--weights", tmp_path / "net.npz", "--data", tmp_path / "X.npy",
                           "--out", tmp_path / "r", "--activation", "tanh", "--no-figures", "--max-iterations", "2")
    assert code == 0, err
    with np.load(tmp_path / "r" / "net.npz") as z:
        written = {k: z[k] for k in z.files}
    np.testing.assert_array_equal(written["fc1"], entries["fc1"])  # not a layer: copied as it is
    b1, b2 = (entries["fc1.bias"], entries["fc2.bias"]) if with_bias else (None, None)
    b1w, b2w = (written["fc1.bias"], written["fc2.bias"]) if with_bias else (None, None)
    before = forward([(entries["fc1.weight"], b1, "tanh"), (entries["fc2.weight"], b2, "identity")], X)
    after = forward([(written["fc1.weight"], b1w, "tanh"), (written["fc2.weight"], b2w, "identity")], X)
    np.testing.assert_allclose(after, before, atol=1e-12)
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["rewritten"]["max_abs_output_difference"] < 1e-12


def test_permute_refuses_sign_flips_of_unsigned_entries(tmp_path, capsys):
    # uint8 weights: -x wrapped around and the written network silently differed (exit status 0).
    rng = np.random.default_rng(20)
    W1, W2 = rng.integers(0, 4, (6, 6)).astype(np.uint8), rng.integers(0, 4, (2, 6)).astype(np.uint8)
    X = rng.standard_normal((300, 6))
    d = descramble.descramble(W1.astype(float), data=X, criterion="signed-permutation", max_iterations=2)
    assert np.any(d.signs < 0)  # the search flips some units of this layer
    np.savez(tmp_path / "u8.npz", W1=W1, W2=W2)
    np.save(tmp_path / "X.npy", X)
    code, _, err = run_cli(capsys, "permute", "--weights", tmp_path / "u8.npz", "--data", tmp_path / "X.npy",
                           "--out", tmp_path / "r", "--activation", "tanh", "--criterion", "signed-permutation",
                           "--no-figures", "--max-iterations", "2")
    assert code == 2 and "'W1' has dtype uint8" in err and "--criterion permutation" in err
    assert not (tmp_path / "r" / "u8.npz").exists()
    code, _, err = run_cli(capsys, "permute", "--weights", tmp_path / "u8.npz", "--data", tmp_path / "X.npy",
                           "--out", tmp_path / "r2", "--activation", "tanh", "--no-figures", "--max-iterations", "2")
    assert code == 0, err
    with np.load(tmp_path / "r2" / "u8.npz") as z:
        assert z["W1"].dtype == np.uint8


def test_permute_does_not_keep_a_rewrite_that_differs(net, tmp_path, capsys, monkeypatch):
    # The read-back check is a safety net: a rewrite whose outputs differ is an error, not a number in the report.
    from descramble.cli import permute as cli_permute

    d, arrays, layers, X = net
    rewrite = cli_permute._rewrite

    def broken(entries, keys, permutations, signs, transpose):
        changed = rewrite(entries, keys, permutations, signs, transpose)
        entries["b1"] = entries["b1"] + 1.0
        return changed

    monkeypatch.setattr(cli_permute, "_rewrite", broken)
    code, _, err = run_cli(capsys, "permute", "--weights", d / "relu.npz", "--data", d / "X.npy", "--out",
                           tmp_path / "r", "--no-figures", "--max-iterations", "2")
    assert code == 1 and "outputs differ" in err
    assert not (tmp_path / "r" / "relu.npz").exists()
