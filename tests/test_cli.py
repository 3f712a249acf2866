"""The descramble command line: demo, run, bench, and one-line errors for every user mistake."""

import json
import subprocess
import sys

import numpy as np
import pytest

import descramble
from descramble.cli import main


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A layer (W, b) and its input data, saved as the CLI reads them."""
    d = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    m, n, N = 8, 20, 3000
    X = rng.normal(size=(N, n)) @ np.diag(np.linspace(2, 0.1, n)) + 0.3
    W, b = rng.normal(size=(m, n)), rng.normal(size=m)
    paths = {k: d / f"{k}.npy" for k in ("W", "b", "X")}
    np.save(paths["W"], W)
    np.save(paths["b"], b)
    np.save(paths["X"], X)
    X.astype(np.float32).tofile(d / "X.f32")
    np.savez(d / "model.npz", **{"fc1.weight": W, "fc1.bias": b, "fc2.weight": rng.normal(size=(3, m))})
    Y = X @ W.T + b
    np.save(d / "S.npy", Y.T @ Y / N)
    return {"dir": d, "Wm": W, "bm": b, "Xm": X, **{k: str(v) for k, v in paths.items()},
            "raw": str(d / "X.f32"), "npz": str(d / "model.npz"), "S": str(d / "S.npy")}


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_run_with_data_matches_the_library(files, tmp_path, capsys):
    pytest.importorskip("matplotlib", reason="the report's figures need matplotlib")
    out = tmp_path / "report"
    code, stdout, err = run_cli(capsys, "run", "--weights", files["W"], "--bias", files["b"],
                                "--data", files["X"], "--out", out)
    assert code == 0, err
    expected = descramble.descramble(files["Wm"], data=files["Xm"], bias=files["bm"])
    summary = json.loads((out / "summary.json").read_text())
    layer = summary["layers"]["W"]
    assert layer["loss"] == pytest.approx(expected.loss, rel=1e-10)
    assert layer["bound"] == pytest.approx(expected.bound, rel=1e-10)
    assert summary["N"] == 3000
    np.testing.assert_allclose(np.load(out / "P_W.npy"), expected.P, atol=1e-10)
    assert {"weights_W.png", "spectrum_W.png", "fourier_W.png", "convergence_W.png"} <= {
        p.name for p in out.glob("*.png")}
    assert "W: 8 x 20" in stdout and "report:" in stdout


def test_run_with_hidden_and_named_layer(files, tmp_path, capsys):
    out = tmp_path / "r"
    code, _, err = run_cli(capsys, "run", "--weights", files["npz"], "--layer", "fc1", "--hidden", files["S"],
                           "--smoothness", "fd:1", "--out", out, "--no-figures")
    assert code == 0, err
    expected = descramble.descramble(files["Wm"], hidden=np.load(files["S"]), smoothness="fd", order=1)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["layers"]["fc1"]["loss"] == pytest.approx(expected.loss, rel=1e-10)
    assert summary["inputs"]["layer"] == "fc1"
    assert not list(out.glob("*.png"))


def test_run_with_a_saved_accumulator_as_hidden(files, tmp_path, capsys):
    acc = descramble.accumulate(files["Xm"] @ files["Wm"].T + files["bm"])
    acc.save(tmp_path / "hidden.npz")
    code, _, err = run_cli(capsys, "run", "--weights", files["W"], "--hidden", tmp_path / "hidden.npz",
                           "--out", tmp_path / "r", "--no-figures")
    assert code == 0, err
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["N"] == 3000
    expected = descramble.descramble(files["Wm"], hidden=acc.autocorrelation())
    assert summary["layers"]["W"]["loss"] == pytest.approx(expected.loss, rel=1e-12)


def test_run_with_an_array_in_a_zarr_group(files, tmp_path, capsys):
    zarr = pytest.importorskip("zarr", reason="zarr stores need zarr (the zarr extra)")
    group = zarr.open_group(str(tmp_path / "g.zarr"), mode="w")
    group.create_array("x", shape=files["Xm"].shape, dtype="f8")[:] = files["Xm"]
    code, _, err = run_cli(capsys, "run", "--weights", files["W"], "--data", tmp_path / "g.zarr",
                           "--out", tmp_path / "r", "--no-figures")
    assert code == 2 and "g.zarr is a zarr group; name its array as" in err and "(it holds x)" in err, err
    code, _, err = run_cli(capsys, "run", "--weights", files["W"], "--data", f"{tmp_path / 'g.zarr'}:x",
                           "--out", tmp_path / "r", "--no-figures")
    assert code == 0, err
    expected = descramble.descramble(files["Wm"], data=files["Xm"])
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["layers"]["W"]["loss"] == pytest.approx(expected.loss, rel=1e-10)


def test_run_with_raw_data(files, tmp_path, capsys):
    code, _, err = run_cli(capsys, "run", "--weights", files["W"], "--data", files["raw"], "--dtype", "float32",
                           "--n-features", 20, "--out", tmp_path / "r", "--no-figures")
    assert code == 0, err
    X32 = files["Xm"].astype(np.float32)
    expected = descramble.descramble(files["Wm"], data=X32)
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["layers"]["W"]["loss"] == pytest.approx(expected.loss, rel=1e-10)


@pytest.mark.parametrize("spec, smoothness, order", [
    ("fourier", "fourier", 2), ("fourier:1", "fourier", 1), ("fd", "fd", 1),
    ("fd-circular:2", "fd-circular", 2),
    ("fd-central", descramble.smoothness.finite_difference(8, 1, circular=True, scheme="central"), None),
    ("fd-central:2", descramble.smoothness.finite_difference(8, 2, circular=True, scheme="central"), None),
    ("grid:2x4", descramble.smoothness.grid((2, 4)), None),
    ("grid:4x2:2", descramble.smoothness.grid((4, 2), order=2), None),
])
def test_smoothness_specs(files, tmp_path, capsys, spec, smoothness, order):
    code, _, err = run_cli(capsys, "run", "--weights", files["W"], "--hidden", files["S"], "--smoothness", spec,
                           "--out", tmp_path / "r", "--no-figures")
    assert code == 0, err
    expected = descramble.descramble(files["Wm"], hidden=np.load(files["S"]), smoothness=smoothness, order=order)
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["layers"]["W"]["smoothness"] == expected.smoothness.name
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["layers"]["W"]["loss"] == pytest.approx(expected.loss, rel=1e-10)


def test_smoothness_from_matrix_files(files, tmp_path, capsys):
    D = np.diff(np.eye(8), axis=0)
    np.save(tmp_path / "D.npy", D)
    np.save(tmp_path / "A.npy", D.T @ D)
    losses = []
    for spec in (f"matrix:{tmp_path / 'D.npy'}", f"gram:{tmp_path / 'A.npy'}"):
        out = tmp_path / spec.split(":")[0]
        code, _, err = run_cli(capsys, "run", "--weights", files["W"], "--hidden", files["S"],
                               "--smoothness", spec, "--out", out, "--no-figures")
        assert code == 0, err
        losses.append(json.loads((out / "summary.json").read_text())["layers"]["W"]["loss"])
    expected = descramble.descramble(files["Wm"], hidden=np.load(files["S"]), smoothness="fd", order=1)
    assert losses == pytest.approx([expected.loss] * 2, rel=1e-9)


def _errors(files, tmp_path):
    W, X, S = files["W"], files["X"], files["S"]
    wide = tmp_path / "wide.npy"
    np.save(wide, np.zeros((10, 21)))
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    bad_bias = tmp_path / "bias.npy"
    np.save(bad_bias, np.zeros(5))
    corrupt = tmp_path / "corrupt.npy"
    corrupt.write_bytes(b"not a numpy file")
    corrupt_npz = tmp_path / "corrupt.npz"
    corrupt_npz.write_bytes(b"not a zip archive")
    corrupt_h5 = tmp_path / "corrupt.h5"
    corrupt_h5.write_bytes(b"not an HDF5 file")
    np.save(tmp_path / "D.npy", np.diff(np.eye(20), axis=0))  # acts on 20 neurons, the layer has 8
    transposed = tmp_path / "transposed.npz"
    np.savez(transposed, W=np.ones((20, 8)), b=np.ones(8))  # stored as (inputs, outputs)
    errors = [
        (["frobnicate"], "invalid choice"),
        (["run", "--weights", W, "--out", tmp_path / "o"], "one of the arguments --data --hidden is required"),
        (["run", "--weights", W, "--data", X], "required: --out"),
        (["run", "--weights", tmp_path / "missing.npy", "--data", X, "--out", tmp_path / "o"],
         "--weights: .*missing.npy: no such file"),
        (["run", "--weights", W, "--data", tmp_path / "missing.npy", "--out", tmp_path / "o"],
         "--data: .*missing.npy: no such file"),
        (["run", "--weights", W, "--data", wide, "--out", tmp_path / "o"], "data: has 21 features, the weights have 20"),
        (["run", "--weights", W, "--bias", bad_bias, "--data", X, "--out", tmp_path / "o"],
         r"--bias: expected 8 values"),
        (["run", "--weights", W, "--data", files["raw"], "--out", tmp_path / "o"], "give --dtype and --n-features"),
        (["run", "--weights", W, "--data", X, "--dtype", "float32", "--out", tmp_path / "o"],
         "only for raw binary files"),
        (["run", "--weights", W, "--hidden", S, "--smoothness", "wavelet", "--out", tmp_path / "o"],
         "unknown operator 'wavelet'"),
        (["run", "--weights", W, "--hidden", S, "--smoothness", "fd:0", "--out", tmp_path / "o"],
         "order must be a positive integer"),
        (["run", "--weights", W, "--hidden", S, "--smoothness", "gram:", "--out", tmp_path / "o"], "needs a file"),
        (["run", "--weights", W, "--hidden", X, "--out", tmp_path / "o"], r"--hidden: expected an 8 x 8"),
        (["run", "--weights", W, "--hidden", S, "--bias", files["b"], "--out", tmp_path / "o"],
         "--bias: not used with --hidden"),
        (["run", "--weights", W, "--hidden", S, "--out", a_file], "exists and is not a directory"),
        (["run", "--weights", files["npz"], "--layer", "fc9", "--hidden", S, "--out", tmp_path / "o"], "fc9"),
        (["run", "--weights", corrupt, "--hidden", S, "--out", tmp_path / "o"], "corrupt.npy"),
        (["run", "--weights", files["npz"], "--hidden", S, "--out", tmp_path / "o"],
         "--weights: .*pass --layer NAME to choose one"),
        (["run", "--weights", transposed, "--layer", "W", "--hidden", S, "--out", tmp_path / "o"],
         r"--weights: .*stored as \(inputs, outputs\); pass --transpose\)$"),
        (["run", "--weights", W, "--data", X, "--n-features", "x", "--out", tmp_path / "o"], "invalid int value"),
        (["bench", "--only", "nothing"], "invalid choice"),
        (["bench", "--repeat", "0"], "argument --repeat: expected a positive integer, got 0"),
        (["bench", "--widths", "64", "0"], "argument --widths: expected a positive integer, got 0"),
        (["bench", "--json", tmp_path / "missing" / "b.json"], "argument --json: cannot write"),
        (["demo", "--seed", "-1", "--out", tmp_path / "d"], "seed: expected a non-negative integer, got -1"),
        # Corrupt or mis-named inputs name the option and the file, not NumPy's pickle advice.
        (["run", "--weights", W, "--data", corrupt_npz, "--out", tmp_path / "o"],
         "--data: .*corrupt.npz: not a readable .npz file \\(neither a .npy header nor a zip archive\\)"),
        (["run", "--weights", W, "--hidden", corrupt_npz, "--out", tmp_path / "o"],
         "--hidden: .*corrupt.npz: not a readable .npz file"),
        (["run", "--weights", W, "--data", f"{X}:key", "--out", tmp_path / "o"],
         "--data: .*X.npy: ':key' names an array, but .npy files hold only one"),
        (["run", "--weights", W, "--data", files["raw"], "--dtype", "float33", "--n-features", 20,
          "--out", tmp_path / "o"], "--dtype: 'float33' is not a NumPy dtype"),
        (["run", "--weights", W, "--hidden", S, "--smoothness", f"matrix:{tmp_path / 'D.npy'}",
          "--out", tmp_path / "o"], "--smoothness: .*D.npy: the operator acts on 20 neurons, the layer has 8"),
        (["run", "--weights", W, "--hidden", S, "--smoothness", f"gram:{tmp_path / 'D.npy'}",
          "--out", tmp_path / "o"], "--smoothness: .*D.npy: A: expected a square matrix"),
    ]
    try:
        import h5py  # noqa: F401
    except ImportError:
        print("skipping the corrupt HDF5 case: h5py is not installed")
    else:
        errors.append((["run", "--weights", W, "--data", f"{corrupt_h5}:x", "--out", tmp_path / "o"],
                       "--data: .*corrupt.h5: not a readable HDF5 file"))
    return errors


def test_every_user_error_is_one_line_and_status_2(files, tmp_path, capsys):
    for argv, match in _errors(files, tmp_path):
        code, out, err = run_cli(capsys, *argv)
        assert code == 2, (argv, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1, (argv, err)
        assert lines[0].startswith("descramble"), lines[0]
        assert ": error: " in lines[0]
        import re

        assert re.search(match, lines[0]), (match, lines[0])
        assert "Traceback" not in err


def test_the_module_entry_point_exits_with_the_status(files, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "descramble", "run", "--weights", files["W"],
                           "--data", str(tmp_path / "nope.npy"), "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"descramble run: error: --data: {tmp_path / 'nope.npy'}: no such file"
    proc = subprocess.run([sys.executable, "-m", "descramble", "--version"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and proc.stdout.startswith("descramble ")


def test_demo_command(tmp_path, capsys):
    pytest.importorskip("matplotlib", reason="the demo's figures need matplotlib")
    code, out, err = run_cli(capsys, "demo", "--quick", "--seed", "3", "--out", tmp_path / "demo")
    assert code == 0, err
    assert len(list((tmp_path / "demo").glob("*.png"))) >= 3
    assert json.loads((tmp_path / "demo" / "summary.json").read_text())["seed"] == 3
    assert "[6/6]" in out and "layer1: 32 x 64" in out


def test_bench_command_prints_its_table(capsys):
    pytest.importorskip("scipy", reason="the descrambler benchmark's iterative reference needs SciPy")
    code, out, err = run_cli(capsys, "bench", "--quick", "--only", "descrambler", "--repeat", "1")
    assert code == 0, err
    assert "closed form vs iterative" in out and "ratio" in out


def test_bench_without_the_blas_variables_runs_in_a_child_and_returns(capsys, monkeypatch):
    # With OPENBLAS_CORETYPE set, the benchmark runs in a child process without it; the
    # caller's process goes on (it used to be replaced by os.execve), with the child's
    # output and exit status, and a bad argument is reported before any child starts.
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    code, out, err = run_cli(capsys, "bench", "--only", "nothing")
    assert code == 2 and "invalid choice" in err
    code, out, err = run_cli(capsys, "bench", "--quick", "--only", "roofline", "--widths", "8", "--repeat", "1")
    assert code == 0, err
    assert "roofline: peak" in out and "float64" in out


def test_bench_child_is_waited_for_and_its_pipes_closed_even_when_interrupted(capsys, monkeypatch):
    # The child that runs the benchmark without OPENBLAS_CORETYPE: after it ends its
    # pipes are closed (no ResourceWarning) and, when the caller is interrupted while
    # passing its output through (Ctrl-C), it is stopped and waited for, not left running.
    children = []

    class Recording(subprocess.Popen):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            children.append(self)

    monkeypatch.setattr(subprocess, "Popen", Recording)
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    argv = ("bench", "--quick", "--only", "roofline", "--widths", "8", "--repeat", "1")
    code, out, err = run_cli(capsys, *argv)
    assert code == 0, err
    assert len(children) == 1 and children[0].returncode == 0
    assert children[0].stdout.closed and children[0].stderr.closed

    class Interrupting:  # Ctrl-C while the child's first line is passed through
        def write(self, text):
            raise KeyboardInterrupt

        def flush(self):
            pass

    monkeypatch.setattr(sys, "stdout", Interrupting())
    code = main(list(argv))
    monkeypatch.undo()
    assert code == 130
    assert len(children) == 2 and children[1].returncode is not None  # stopped, not still running
    assert children[1].stdout.closed and children[1].stderr.closed


def _save_pt(path, arrays):
    torch = pytest.importorskip("torch", reason="PyTorch state dicts need torch (pip install torch==2.13.0)")
    torch.save({k: torch.from_numpy(v) for k, v in arrays.items()}, path)


def _save_mat(path, arrays):
    scipy_io = pytest.importorskip("scipy.io", reason="MATLAB files need SciPy (the matlab extra)")
    scipy_io.savemat(path, {k.replace(".", "_"): v for k, v in arrays.items()})


def _save_onnx(path, arrays):
    onnx = pytest.importorskip("onnx", reason="ONNX files need onnx (the onnx extra)")
    from onnx import helper, numpy_helper

    inits = [numpy_helper.from_array(v, name=k) for k, v in arrays.items()]
    graph = helper.make_graph([helper.make_node("Gemm", ["x", "fc1.weight", "fc1.bias"], ["y"], transB=1)], "g",
                              [helper.make_tensor_value_info("x", onnx.TensorProto.DOUBLE, [None, 20])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.DOUBLE, [None, 8])],
                              initializer=inits)
    onnx.save(helper.make_model(graph), path)


@pytest.mark.parametrize("suffix, save, layer", [
    (".pt", _save_pt, "fc1"),
    (".mat", _save_mat, "fc1"),
    (".onnx", _save_onnx, "fc1"),
])
def test_run_reads_weight_files_by_layer_name(files, tmp_path, capsys, suffix, save, layer):
    path = tmp_path / f"model{suffix}"
    save(path, {"fc1.weight": files["Wm"], "fc1.bias": files["bm"], "fc2.weight": np.ones((3, 8))})
    out = tmp_path / "r"
    code, _, err = run_cli(capsys, "run", "--weights", path, "--layer", layer, "--data", files["X"], "--out", out,
                           "--no-figures")
    assert code == 0, err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["inputs"]["bias"] is True  # the file's bias was found and used
    expected = descramble.descramble(files["Wm"], data=files["Xm"], bias=files["bm"])
    assert summary["layers"][layer]["loss"] == pytest.approx(expected.loss, rel=1e-10)
    code, _, err = run_cli(capsys, "run", "--weights", path, "--layer", "fc9", "--data", files["X"], "--out", out)
    assert code == 2 and "fc9" in err and len(err.strip().splitlines()) == 1


def test_run_with_a_zero_loss_layer(files, tmp_path, capsys):
    # One neuron: every P is the identity and the loss is 0 (describe() used to divide by it).
    np.save(tmp_path / "w1.npy", files["Wm"][:1])
    code, out, err = run_cli(capsys, "run", "--weights", tmp_path / "w1.npy", "--data", files["X"],
                             "--out", tmp_path / "r", "--no-figures")
    assert code == 0, err
    assert "w1: 1 x 20, smoothness loss 0 = bound 0" in out
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["layers"]["w1"]["loss"] == 0.0


def test_overflowing_inputs_are_one_line_errors_not_nan_reports(files, tmp_path, capsys):
    np.save(tmp_path / "huge.npy", files["Xm"] * 1e160)  # X^T X overflows float64 in the core
    S = np.load(files["S"])
    np.save(tmp_path / "S_huge.npy", S / np.abs(S).max() * 1e307)  # tr(A P S P^T) overflows
    for argv, match in [
        (["--data", tmp_path / "huge.npy"], "overflow"),
        (["--hidden", tmp_path / "S_huge.npy"], "overflows float64"),
    ]:
        out = tmp_path / "r"
        code, _, err = run_cli(capsys, "run", "--weights", files["W"], *argv, "--out", out, "--no-figures")
        assert code == 2, err
        assert len(err.strip().splitlines()) == 1 and match in err, err
        assert not (out / "summary.json").exists()  # no summary with NaN/Infinity (invalid JSON)


# -- the report never replaces what it did not write ---------------------------------------------


def layer_in(tmp_path, files):
    """A work directory holding the layer's own files, named like report outputs."""
    work = tmp_path / "work"
    work.mkdir()
    np.save(work / "W.npy", files["Wm"])
    np.save(work / "P_W.npy", files["Xm"])  # the data, named like the report's P matrix
    np.save(work / "PW_W.npy", files["bm"])  # the bias, likewise
    return work


def test_run_never_overwrites_its_own_inputs_even_with_force(files, tmp_path, capsys):
    work = layer_in(tmp_path, files)
    before = {p.name: p.read_bytes() for p in work.iterdir()}
    for force in ([], ["--force"]):
        code, _, err = run_cli(capsys, "run", "--weights", work / "W.npy", "--bias", work / "PW_W.npy",
                               "--data", work / "P_W.npy", "--out", work, "--no-figures", *force)
        assert code == 2, err
        assert err.count("\n") == 1 and "descramble run: error: --out:" in err
        assert "P_W.npy is the --data input" in err or "PW_W.npy is the --bias input" in err, err
    assert {p.name: p.read_bytes() for p in work.iterdir()} == before  # nothing written, nothing replaced


def test_run_protects_inputs_reached_through_links(files, tmp_path, capsys):
    work = tmp_path / "work"
    work.mkdir()
    data = tmp_path / "X.npy"
    np.save(data, files["Xm"])
    (work / "P_W.npy").symlink_to(data)
    code, _, err = run_cli(capsys, "run", "--weights", files["W"], "--data", data, "--out", work,
                           "--no-figures", "--force")
    assert code == 2 and "is the --data input" in err, err
    np.testing.assert_array_equal(np.load(data), files["Xm"])
    spec_dir = tmp_path / "spec"
    spec_dir.mkdir()
    A = np.eye(8)
    np.save(spec_dir / "summary.json", A)  # np.save appends .npy
    gram = spec_dir / "summary.json.npy"
    (spec_dir / "summary.json").symlink_to(gram)
    code, _, err = run_cli(capsys, "run", "--weights", files["W"], "--hidden", files["S"],
                           "--smoothness", f"gram:{gram}", "--out", spec_dir, "--no-figures", "--force")
    assert code == 2 and "is the --smoothness input" in err, err


def test_run_refuses_to_replace_other_files_unless_forced(files, tmp_path, capsys):
    out = tmp_path / "r"
    out.mkdir()
    (out / "summary.json").write_text("mine")
    code, _, err = run_cli(capsys, "run", "--weights", files["W"], "--hidden", files["S"], "--out", out,
                           "--no-figures")
    assert code == 2
    assert err.strip() == (f"descramble run: error: --out: {out / 'summary.json'} already exists and would be "
                           "overwritten; choose another directory or pass --force")
    assert (out / "summary.json").read_text() == "mine" and not (out / "P_W.npy").exists()
    code, _, err = run_cli(capsys, "run", "--weights", files["W"], "--hidden", files["S"], "--out", out,
                           "--no-figures", "--force")
    assert code == 0, err
    assert json.loads((out / "summary.json").read_text())["command"] == "run"
    # a second run into the same directory is refused: those files are not this run's
    code, _, err = run_cli(capsys, "run", "--weights", files["W"], "--hidden", files["S"], "--out", out,
                           "--no-figures")
    assert code == 2 and "P_W.npy already exists" in err, err


def test_run_without_figures_ignores_existing_figures(files, tmp_path, capsys):
    out = tmp_path / "r"
    out.mkdir()
    (out / "weights_W.png").write_bytes(b"not ours")
    code, _, err = run_cli(capsys, "run", "--weights", files["W"], "--hidden", files["S"], "--out", out,
                           "--no-figures")
    assert code == 0, err
    assert (out / "weights_W.png").read_bytes() == b"not ours"


def test_demo_refuses_to_replace_files_unless_forced(tmp_path, capsys):
    out = tmp_path / "d"
    out.mkdir()
    (out / "P_layer2.npy").write_bytes(b"precious")
    code, stdout, err = run_cli(capsys, "demo", "--quick", "--no-figures", "--out", out)
    assert code == 2 and "P_layer2.npy already exists" in err and "--force" in err, err
    assert "[1/6]" not in stdout  # refused before any work
    assert (out / "P_layer2.npy").read_bytes() == b"precious"
    code, _, err = run_cli(capsys, "demo", "--quick", "--no-figures", "--out", out, "--force")
    assert code == 0, err
    assert np.load(out / "P_layer2.npy").ndim == 2


# -- whole-network runs (no --layer) -------------------------------------------------------------


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """A 20-8-6-3 network as a .npz of W1, b1, W2, b2, W3, b3, and its input data."""
    d = tmp_path_factory.mktemp("stack")
    rng = np.random.default_rng(1)
    sizes = (20, 8, 6, 3)
    arrays = {}
    for k, (n, m) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        arrays[f"W{k}"], arrays[f"b{k}"] = rng.normal(size=(m, n)) / np.sqrt(n), rng.normal(size=m) * 0.3
    np.savez(d / "net.npz", **arrays)
    np.savez(d / "net_tanh.npz", **arrays, activation="tanh")
    X = rng.normal(size=(2000, 20)) @ np.diag(np.linspace(2, 0.1, 20)) + 0.3
    np.save(d / "X.npy", X)
    layers = [(arrays[f"W{k}"], arrays[f"b{k}"], "tanh") for k in (1, 2, 3)]
    return d, layers, X


def test_run_without_layer_descrambles_every_hidden_layer(stack, tmp_path, capsys):
    d, layers, X = stack
    out = tmp_path / "r"
    code, stdout, err = run_cli(capsys, "run", "--weights", d / "net_tanh.npz", "--data", d / "X.npy", "--out", out,
                                "--no-figures")
    assert code == 0, err
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["layers"]) == ["W1", "W2"] and summary["inputs"]["activation"] == "tanh"
    expected = descramble.descramble_network(layers, X)
    for name, e in zip(("W1", "W2"), expected):
        np.testing.assert_allclose(np.load(out / f"P_{name}.npy"), e.P, atol=1e-12)
        assert summary["layers"][name]["loss"] == pytest.approx(e.loss, rel=1e-12)
        assert summary["layers"][name]["warnings"] == []
    assert (out / "index.html").is_file()
    assert "W1: 8 x 20" in stdout and "W2: 6 x 8" in stdout
    # --output adds the last layer; --activation overrides the file's
    code, _, err = run_cli(capsys, "run", "--weights", d / "net.npz", "--data", d / "X.npy", "--out", tmp_path / "o",
                           "--no-figures", "--output", "--activation", "relu")
    assert code == 0, err
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert list(summary["layers"]) == ["W1", "W2", "W3"]
    relu = [(W, b, "relu") for W, b, _ in layers]
    P3 = descramble.descramble_network(relu, X, output=True)[2].P
    np.testing.assert_allclose(np.load(tmp_path / "o" / "P_W3.npy"), P3, atol=1e-12)


def test_whole_network_errors(stack, tmp_path, capsys):
    d, layers, X = stack
    broken = tmp_path / "broken.npz"
    np.savez(broken, W1=np.ones((8, 20)), W2=np.ones((6, 7)))
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "P_W2.npy").write_bytes(b"mine")
    cases = [
        (["--weights", d / "net.npz"], "--activation: .*net.npz holds 3 dense layers but does not say which "
                                       "activation"),
        (["--weights", broken, "--activation", "relu"],
         r"--weights: .*the layers do not chain: 'W2' \(6x7\) takes 7 inputs, but the layer before it, 'W1' "
         r"\(8x20\), has 8 outputs"),
        (["--weights", d / "net.npz", "--activation", "relu", "--smoothness", "grid:2x4"],
         r"--smoothness: layer W2 \(6 units\): grid 2x4 has 8 units, the layer has 6"),
        (["--weights", d / "net.npz", "--activation", "relu", "--bias", d / "X.npy"], "--bias: only for a single"),
        (["--weights", d / "net.npz", "--activation", "relu", "--input-shape", "4x4"],
         "--input-shape: 4x4 is 16 inputs, the first layer has 20"),
        (["--weights", d / "net.npz", "--activation", "relu", "--input-shape", "4xa"], "--input-shape: expected"),
        (["--weights", d / "net.npz", "--layer", "W1", "--output"], "--output: only for a whole-network run"),
    ]
    for argv, match in cases:
        code, _, err = run_cli(capsys, "run", *argv, "--data", d / "X.npy", "--out", tmp_path / "e", "--no-figures")
        assert code == 2 and len(err.strip().splitlines()) == 1, (argv, err)
        import re

        assert re.search(match, err), (match, err)
    # Every file of the run is checked before any work: the second layer's P is refused.
    code, _, err = run_cli(capsys, "run", "--weights", d / "net.npz", "--activation", "relu", "--data", d / "X.npy",
                           "--out", existing, "--no-figures")
    assert code == 2 and "P_W2.npy already exists" in err, err
    assert sorted(p.name for p in existing.iterdir()) == ["P_W2.npy"]


def test_whole_network_warnings_are_one_line_each_and_in_the_summary(stack, tmp_path, capsys):
    d, layers, X = stack
    np.save(tmp_path / "few.npy", X[:5])  # N = 5 < m = 8
    code, _, err = run_cli(capsys, "run", "--weights", d / "net.npz", "--activation", "relu", "--data",
                           tmp_path / "few.npy", "--out", tmp_path / "r", "--no-figures")
    assert code == 0, err
    lines = err.strip().splitlines()
    assert lines and all(line.startswith("descramble run: warning: ") for line in lines)
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["layers"]["W1"]["warnings"]
    assert sum(len(layer["warnings"]) for layer in summary["layers"].values()) == len(lines)


def test_load_network_orders_state_dicts_and_numbered_arrays(tmp_path):
    torch = pytest.importorskip("torch", reason="PyTorch state dicts need torch")
    net = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.ReLU(), torch.nn.Linear(4, 3, bias=False),
                              torch.nn.Tanh(), torch.nn.Linear(3, 2))
    torch.save(net.state_dict(), tmp_path / "m.pt")
    layers = descramble.io.load_network(tmp_path / "m.pt")
    assert [(name, W.shape, None if b is None else b.shape) for name, W, b in layers] == [
        ("0", (4, 5), (4,)), ("2", (3, 4), None), ("4", (2, 3), (2,))]
    np.testing.assert_array_equal(layers[0][1], net[0].weight.detach().numpy())
    arrays = {"W10": np.ones((2, 3)), "W2": np.ones((3, 4)), "b2": np.zeros(3), "W1": np.ones((4, 5))}
    np.savez(tmp_path / "n.npz", **arrays)
    assert [n for n, _, _ in descramble.io.load_network(tmp_path / "n.npz")] == ["W1", "W2", "W10"]
    np.savez(tmp_path / "t.npz", W1=np.ones((5, 4)), W2=np.ones((4, 3)))
    with pytest.raises(descramble.io.LayerChoiceError, match="pass transpose=True"):
        descramble.io.load_network(tmp_path / "t.npz")
    assert [W.shape for _, W, _ in descramble.io.load_network(tmp_path / "t.npz", transpose=True)] == [(4, 5), (3, 4)]
    np.savez(tmp_path / "bn.npz", **{"0.weight": np.ones((4, 5)), "1.weight": np.ones(4), "2.weight": np.ones((2, 4))})
    with pytest.raises(ValueError, match=r"'1.weight' has shape \(4,\) \(a normalisation layer's scale\)"):
        descramble.io.load_network(tmp_path / "bn.npz")
    np.savez(tmp_path / "x.npz", a=np.ones((4, 5)), c=np.ones((2, 4)))
    with pytest.raises(ValueError, match="cannot tell the layers' order"):
        descramble.io.load_network(tmp_path / "x.npz")
    np.savez(tmp_path / "act.npz", W1=np.ones((4, 5)), activation="ReLU")
    assert descramble.io.load_activation(tmp_path / "act.npz") == "relu"
    np.savez(tmp_path / "bad.npz", W1=np.ones((4, 5)), activation="softmax")
    with pytest.raises(ValueError, match="activation 'softmax' is not one of"):
        descramble.io.load_activation(tmp_path / "bad.npz")


def test_describe_says_equal_only_when_loss_and_bound_agree():
    from descramble.cli.demo import describe

    layer = {"m": 4, "n": 5, "loss": 2.0, "bound": 2.0 * (1 + 5e-10), "relative_gap": -5e-10, "raw_loss": None}
    assert "smoothness loss 2 = bound 2" in describe({"layers": {"L": layer}})
    layer = {**layer, "bound": 1.9, "relative_gap": 0.1 / 1.9}
    assert "smoothness loss 2, bound 1.9 (relative gap 5.3e-02)" in describe({"layers": {"L": layer}})


def test_whole_network_reads_raw_data_through_the_library(files, tmp_path, capsys):
    # No memory map in the CLI: a raw file streams through the sources (dtype, n-features) like a .npy.
    kw = ["--weights", files["npz"], "--activation", "tanh", "--no-figures"]
    code, _, err = run_cli(capsys, "run", *kw, "--data", files["raw"], "--dtype", "float32", "--n-features", 20,
                           "--out", tmp_path / "raw")
    assert code == 0, err
    X32 = files["Xm"].astype(np.float32)
    np.save(tmp_path / "X32.npy", X32)
    code, _, err = run_cli(capsys, "run", *kw, "--data", tmp_path / "X32.npy", "--out", tmp_path / "npy")
    assert code == 0, err
    for name in ("P_fc1.npy", "PW_fc1.npy"):
        np.testing.assert_array_equal(np.load(tmp_path / "raw" / name), np.load(tmp_path / "npy" / name))


def test_an_input_shape_that_is_not_rows_x_cols_names_the_option_before_any_file(files, tmp_path, capsys):
    # Review of issue 12: '--input-shape 4x5x1' failed in the figures, naming the library's 'input_shape',
    # after the report directory was created.
    out = tmp_path / "o"
    code, _, err = run_cli(capsys, "run", "--weights", files["W"], "--data", files["X"], "--out", out,
                           "--input-shape", "4x5x1")
    assert code == 2
    assert err.strip().startswith("descramble run: error: --input-shape: "), err
    assert not out.exists()


def test_one_row_of_data_warns_and_compares_against_the_loss_scale(files, tmp_path, capsys):
    # One sample: S has rank 1, its one component lands on the constant mode (lambda = 0), so loss and
    # bound are both zero up to rounding (-1.7e-13 and 6e-32 here); their "relative gap" against a
    # bound of 1e-32 would be 1e18. The report compares them at the loss's scale and says so.
    np.save(tmp_path / "x1.npy", files["Xm"][:1])
    code, out, err = run_cli(capsys, "run", "--weights", files["W"], "--data", tmp_path / "x1.npy",
                             "--bias", files["b"], "--out", tmp_path / "r", "--no-figures")
    assert code == 0, err
    assert "warning:" in err and "only N = 1 samples for m = 8" in err
    layer = json.loads((tmp_path / "r" / "summary.json").read_text())["layers"]["W"]
    assert layer["equal"] and layer["loss_scale"] > 0
    if layer["relative_gap"] is None:
        assert "the bound is zero up to rounding" in out
    assert "= bound" in out and "e+1" not in out


def test_one_smoothness_spec_per_layer(stack, tmp_path, capsys):
    # A grid fits one layer only (8 = 2 x 4 units; the next layer has 6): one spec per descrambled layer.
    d, layers, X = stack
    out = tmp_path / "r"
    code, _, err = run_cli(capsys, "run", "--weights", d / "net_tanh.npz", "--data", d / "X.npy", "--out", out,
                           "--no-figures", "--smoothness", "grid:2x4", "--smoothness", "fd")
    assert code == 0, err
    expected = descramble.descramble_network(layers, X, smoothness=[descramble.smoothness.grid((2, 4)), "fd"])
    summary = json.loads((out / "summary.json").read_text())
    assert [layer["smoothness"] for layer in summary["layers"].values()] == [e.smoothness.name for e in expected]
    for name, e in zip(summary["layers"], expected):
        np.testing.assert_allclose(np.load(out / f"PW_{name}.npy"), e.weights, atol=1e-10)
    code, _, err = run_cli(capsys, "run", "--weights", d / "net_tanh.npz", "--data", d / "X.npy",
                           "--out", tmp_path / "s", "--smoothness", "fd", "--smoothness", "fd", "--smoothness", "fd")
    assert code == 2 and "--smoothness: give one spec for every layer or one per descrambled layer (2" in err
