"""descramble.torch: hidden autocorrelations and descramblers of PyTorch models."""

import subprocess
import sys
import warnings

import numpy as np
import pytest

torch = pytest.importorskip(
    "torch", reason="descramble.torch tests need PyTorch (pip install torch==2.13.0 for the CPU build)"
)
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

import descramble  # noqa: E402
import descramble.torch as dtorch  # noqa: E402

N = 1000
CHUNK = 128  # does not divide N


def mlp(dtype=torch.float64):
    torch.manual_seed(20261129)
    return nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 8), nn.Tanh(), nn.Linear(8, 3)).to(dtype)


@pytest.fixture
def x(rng):
    return rng.standard_normal((N, 16)) * 2.0 + 0.5


def params(model):
    """(W, b) of each Linear of the MLP, as float64 NumPy arrays."""
    return [(m.weight.detach().double().numpy(), m.bias.detach().double().numpy())
            for m in model if isinstance(m, nn.Linear)]


def numpy_forward(model, x):
    """Independent float64 forward pass: {name: hidden rows} for pre- and post-activations."""
    (W0, b0), (W2, b2), (W4, b4) = params(model)
    h0 = x @ W0.T + b0
    a1 = np.maximum(h0, 0.0)
    h2 = a1 @ W2.T + b2
    a3 = np.tanh(h2)
    h4 = a3 @ W4.T + b4
    return {"0": h0, "1": a1, "2": h2, "3": a3, "4": h4}


def assert_matches(acc, rows, rtol, label=""):
    """acc holds exactly the rows: count, mean and E[h h^T]."""
    assert (acc.count, acc.n_features) == rows.shape, label
    S = rows.T @ rows / rows.shape[0]
    scale = np.abs(S).max()
    assert np.abs(acc.autocorrelation() - S).max() <= rtol * scale, label
    assert np.abs(acc.mean - rows.mean(axis=0)).max() <= rtol * np.abs(rows).max(), label


def no_hooks(model):
    return all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


# -- results --------------------------------------------------------------------------------


def test_float64_tensor_pre_and_post_activations(x):
    model = mlp()
    ref = numpy_forward(model, x)
    t = torch.from_numpy(x)
    pre = dtorch.collect(model, None, t, chunk_rows=CHUNK)
    assert list(pre) == ["0", "2", "4"]
    for name, acc in pre.items():
        assert isinstance(acc, descramble.Autocorrelation)
        assert_matches(acc, ref[name], 1e-10)
    post = dtorch.collect(model, ["2", "0"], t, pre_activation=False, chunk_rows=CHUNK)
    assert list(post) == ["2", "0"]  # order as requested
    assert_matches(post["0"], ref["1"], 1e-10)
    assert_matches(post["2"], ref["3"], 1e-10)
    # Default layers with pre_activation=False: the Linears followed by an activation.
    assert list(dtorch.collect(model, None, t, pre_activation=False)) == ["0", "2"]
    # Naming the activation modules records the same signals.
    named = dtorch.collect(model, ["1", "3"], t, chunk_rows=CHUNK)
    assert_matches(named["1"], ref["1"], 1e-10)
    assert_matches(named["3"], ref["3"], 1e-10)
    # A single name is accepted as a string.
    assert_matches(dtorch.collect(model, "4", t)["4"], ref["4"], 1e-10)


def test_numpy_dataloader_and_lists_agree(x):
    model = mlp()
    ref = numpy_forward(model, x)
    y = np.arange(N) % 3
    sources = {
        "numpy": x,
        "numpy memmap-like read-only": np.lib.stride_tricks.as_strided(x, writeable=False),
        "dataloader (x, y)": DataLoader(TensorDataset(torch.from_numpy(x), torch.from_numpy(y)), batch_size=96),
        "list of arrays": np.array_split(x, 7),
        "generator of [x, y] lists": ([torch.from_numpy(c), None] for c in np.array_split(x, 5)),
    }
    for label, data in sources.items():
        stats = dtorch.collect(model, ["0", "2"], data, pre_activation=False, chunk_rows=CHUNK)
        assert_matches(stats["0"], ref["1"], 1e-10, label)
        assert_matches(stats["2"], ref["3"], 1e-10, label)


def test_forward_callable_for_dict_batches(x):
    model = mlp()
    ref = numpy_forward(model, x)
    batches = [{"features": torch.from_numpy(c)} for c in np.array_split(x, 4)]
    stats = dtorch.collect(model, ["2"], batches, forward=lambda m, b: m(b["features"]))
    assert_matches(stats["2"], ref["2"], 1e-10)
    # With array data, forward receives the chunks as they are (NumPy views here).
    seen = []
    stats = dtorch.collect(model, ["0"], x, chunk_rows=CHUNK,
                           forward=lambda m, b: (seen.append(type(b)), m(torch.from_numpy(b))))
    assert seen == [np.ndarray] * 8
    assert_matches(stats["0"], ref["0"], 1e-10)
    with pytest.raises(TypeError, match=r"batch 0: expected a torch.Tensor or numpy.ndarray, got dict; "
                                        r"for other batches pass forward=, e.g. forward=lambda model, batch"):
        dtorch.collect(model, ["2"], batches)


def test_float32_model_matches_float64_accumulation_of_its_own_values(x):
    model = mlp(torch.float32)
    x32 = x.astype(np.float32)
    stats = dtorch.collect(model, None, x32, chunk_rows=CHUNK)
    # The same float32 hidden values, from the same chunks, accumulated in NumPy float64.
    hidden = {"0": [], "2": [], "4": []}
    with torch.no_grad():
        for start in range(0, N, CHUNK):
            h = torch.from_numpy(x32[start:start + CHUNK])
            for i, module in enumerate(model):
                h = module(h)
                if str(i) in hidden:
                    hidden[str(i)].append(h.numpy().astype(np.float64))
    for name, acc in stats.items():
        assert_matches(acc, np.concatenate(hidden[name]), 1e-12)
    # float64 data into a float32 model: converted chunk by chunk to the model's dtype.
    again = dtorch.collect(model, None, x, chunk_rows=CHUNK)
    for name in stats:
        np.testing.assert_array_equal(again[name].autocorrelation(), stats[name].autocorrelation())


def test_integer_and_bool_inputs_of_a_linear_model_are_converted_to_its_dtype(rng):
    # uint8 images, int64 counts, bool masks: nn.Linear needs floats (torch alone raises
    # "mat1 and mat2 must have the same dtype").
    model = mlp()
    for data in (rng.integers(0, 256, size=(300, 16)).astype(np.uint8),
                 rng.integers(-5, 5, size=(300, 16)),
                 rng.random((300, 16)) > 0.5):
        ref = numpy_forward(model, data.astype(np.float64))
        for batches in (data, [torch.from_numpy(data)], [(data, None)]):
            stats = dtorch.collect(model, ["0", "2"], batches, chunk_rows=CHUNK)
            assert_matches(stats["0"], ref["0"], 1e-10, str(data.dtype))
            assert_matches(stats["2"], ref["2"], 1e-10, str(data.dtype))


def test_half_precision_outputs_are_widened(x):
    model = mlp(torch.bfloat16)
    stats = dtorch.collect(model, ["2"], torch.from_numpy(x).to(torch.bfloat16), chunk_rows=CHUNK)
    with torch.no_grad():
        rows = np.concatenate([model[:3](torch.from_numpy(x[s:s + CHUNK]).to(torch.bfloat16)).float().numpy()
                               for s in range(0, N, CHUNK)]).astype(np.float64)
    assert_matches(stats["2"], rows, 1e-12)


def test_three_dimensional_outputs_flatten_leading_dimensions(rng):
    model = mlp()
    x = rng.standard_normal((40, 7, 16))  # (batch, seq, features)
    stats = dtorch.collect(model, ["0", "2"], torch.from_numpy(x), chunk_rows=9)
    ref = numpy_forward(model, x.reshape(-1, 16))
    assert_matches(stats["0"], ref["0"], 1e-10)
    assert_matches(stats["2"], ref["2"], 1e-10)
    assert stats["0"].count == 280


def test_cpu_outputs_and_inputs_reach_the_core_without_copies(x, monkeypatch):
    model = mlp()
    seen_outputs, seen_inputs, fed = [], [], []
    handles = [model[2].register_forward_hook(lambda m, i, o: seen_outputs.append(o)),
               model.register_forward_pre_hook(lambda m, i: seen_inputs.append(i[0]))]
    original = descramble.Autocorrelation.update

    def spy(self, chunk, weights=None, **where):
        fed.append(chunk)
        return original(self, chunk, weights, **where)

    monkeypatch.setattr(descramble.Autocorrelation, "update", spy)
    dtorch.collect(model, ["2"], x, chunk_rows=CHUNK)
    assert len(fed) == len(seen_outputs) == len(seen_inputs) == 8
    for chunk, output, inp in zip(fed, seen_outputs, seen_inputs):
        assert isinstance(chunk, np.ndarray)
        assert np.shares_memory(chunk, output.numpy())  # hidden signals: a view
        assert np.shares_memory(inp.numpy(), x)  # the data: views of the array
    for handle in handles:
        handle.remove()
    assert no_hooks(model)  # collect's own hooks are gone too


# -- modes and hooks --------------------------------------------------------------------------


def test_eval_mode_and_no_grad_during_collection_and_modes_restored(x):
    torch.manual_seed(1)
    model = nn.Sequential(nn.Dropout(0.5), nn.Linear(16, 4), nn.ReLU()).double()
    model.train()
    model[2].eval()  # mixed modes are restored exactly
    grad_enabled = []
    handle = model.register_forward_pre_hook(lambda m, i: grad_enabled.append(torch.is_grad_enabled()))
    stats = dtorch.collect(model, ["1"], x)
    W, b = model[1].weight.detach().numpy(), model[1].bias.detach().numpy()
    assert_matches(stats["1"], x @ W.T + b, 1e-10)  # dropout was off
    assert grad_enabled and not any(grad_enabled)
    assert [m.training for m in model.modules()] == [True, True, True, False]
    handle.remove()
    assert no_hooks(model)
    model.eval()
    dtorch.collect(model, ["1"], x)
    assert not any(m.training for m in model.modules())


def test_hooks_removed_and_mode_restored_after_errors(x):
    model = mlp()
    model.train()

    def failing():
        yield torch.from_numpy(x[:100])
        yield torch.from_numpy(x[100:200])
        raise RuntimeError("loader broke")

    with pytest.raises(RuntimeError, match="loader broke"):
        dtorch.collect(model, None, failing(), pre_activation=False)
    assert no_hooks(model)
    assert all(m.training for m in model.modules())

    bad = x.copy()
    bad[517, 3] = np.nan
    # The row of all the layer's outputs (here the sample), not row 5 of the fifth chunk.
    with pytest.raises(descramble.NonFiniteError, match=r"layer '0' output: row 517 contains NaN \(column \d+\)"):
        dtorch.collect(model, ["0"], bad, chunk_rows=CHUNK)
    with pytest.raises(descramble.NonFiniteError, match=r"layer '2' output: row 517 contains NaN"):
        dtorch.collect(model, ["2"], DataLoader(TensorDataset(torch.from_numpy(bad)), batch_size=100))
    assert no_hooks(model)
    assert all(m.training for m in model.modules())
    # The model still works normally afterwards.
    assert dtorch.collect(model, ["0"], x)["0"].count == N


def test_shared_activation_module_records_only_its_call_on_the_layer(x):
    torch.manual_seed(2)
    act = nn.Tanh()
    model = nn.Sequential(nn.Linear(16, 6), act, nn.Linear(6, 5), act).double()
    W0, b0 = model[0].weight.detach().numpy(), model[0].bias.detach().numpy()
    W2, b2 = model[2].weight.detach().numpy(), model[2].bias.detach().numpy()
    a1 = np.tanh(x @ W0.T + b0)
    a3 = np.tanh(a1 @ W2.T + b2)
    stats = dtorch.collect(model, None, x, pre_activation=False)
    assert_matches(stats["0"], a1, 1e-10)
    assert_matches(stats["2"], a3, 1e-10)
    assert no_hooks(model)


def test_activation_not_applied_to_the_layer_output_is_an_error(x):
    class Custom(nn.Sequential):
        def forward(self, inp):
            h = self[0](inp)
            return self[1](h + 1.0)  # the activation never sees the layer's own output

    model = Custom(nn.Linear(16, 4), nn.ReLU()).double()
    with pytest.raises(RuntimeError, match="layer '0': its output did not reach the activation module"):
        dtorch.collect(model, ["0"], x, pre_activation=False)
    assert no_hooks(model)


def test_nested_names_and_inplace_activation(x):
    torch.manual_seed(3)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = nn.Sequential(nn.Linear(16, 10), nn.LeakyReLU(0.1, inplace=True))
            self.head = nn.Linear(10, 2)

        def forward(self, inp):
            return self.head(self.encoder(inp))

    model = Net().double()
    W, b = model.encoder[0].weight.detach().numpy(), model.encoder[0].bias.detach().numpy()
    h = x @ W.T + b
    pre = dtorch.collect(model, ["encoder.0", "head"], x)
    assert_matches(pre["encoder.0"], h, 1e-10)  # recorded before the in-place activation ran
    post = dtorch.collect(model, None, x, pre_activation=False)
    assert list(post) == ["encoder.0"]
    assert_matches(post["encoder.0"], np.where(h > 0, h, 0.1 * h), 1e-10)
    with pytest.raises(ValueError, match="'head' is not followed by an element-wise activation"):
        dtorch.collect(model, ["head"], x, pre_activation=False)


# -- bad input ------------------------------------------------------------------------------


def test_bad_arguments(x):
    model = mlp()
    t = torch.from_numpy(x)
    with pytest.raises(ValueError, match=r"unknown layer 'fc1'; available: '0', '1', '2', '3', '4'"):
        dtorch.collect(model, ["fc1"], t)
    with pytest.raises(ValueError, match="'0' named more than once"):
        dtorch.collect(model, ["0", "0"], t)
    with pytest.raises(TypeError, match="layers: expected names"):
        dtorch.collect(model, [0], t)
    with pytest.raises(ValueError, match="layers: expected at least one"):
        dtorch.collect(model, [], t)
    with pytest.raises(TypeError, match="model: expected a torch.nn.Module, got function"):
        dtorch.collect(lambda v: v, None, t)
    with pytest.raises(ValueError, match=r"expected inputs with 16 features .* layer '0'\), got shape \(1000, 10\)"):
        dtorch.collect(model, None, t[:, :10])
    with pytest.raises(ValueError, match=r"batch 0: expected inputs with 16 features"):
        dtorch.collect(model, None, [x[:, :5]])
    with pytest.raises(ValueError, match="'4' is not followed by an element-wise activation"):
        dtorch.collect(model, ["4"], t, pre_activation=False)
    with pytest.raises(ValueError, match="chunk_rows: expected a positive integer"):
        dtorch.collect(model, None, t, chunk_rows=0)
    with pytest.raises(TypeError, match="pre_activation: expected True or False"):
        dtorch.collect(model, None, t, pre_activation="yes")
    with pytest.raises(TypeError, match="data: expected a torch.Tensor, a numpy.ndarray, or an iterable"):
        dtorch.collect(model, None, 3.0)
    with pytest.raises(TypeError, match="data: expected a torch.Tensor, a numpy.ndarray, or an iterable"):
        dtorch.collect(model, None, "x.npy")
    with pytest.raises(TypeError, match="data: complex input"):
        dtorch.collect(model, None, x.astype(complex))
    with pytest.raises(ValueError, match="data: no batches"):
        dtorch.collect(model, None, [])
    with pytest.raises(ValueError, match="batch 0 is an empty tuple"):
        dtorch.collect(model, None, [()])
    with pytest.raises(ValueError, match="precision: expected"):
        dtorch.collect(model, None, t, precision="half")
    with pytest.raises(TypeError, match="forward: expected a callable"):
        dtorch.collect(model, None, t, forward=1)
    assert no_hooks(model)


def test_unsupported_outputs_and_unused_layers(x):
    torch.manual_seed(4)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(16, 4)
            self.unused = nn.Linear(4, 4)
            self.rnn = nn.GRU(4, 3, batch_first=True)

        def forward(self, inp):
            return self.rnn(self.fc(inp)[:, None, :])

    model = Net().double()
    with pytest.raises(ValueError, match="layer 'unused' never ran"):
        dtorch.collect(model, ["fc", "unused"], x)
    with pytest.raises(TypeError, match="layer 'rnn': expected its output to be a tensor, got tuple"):
        dtorch.collect(model, ["rnn"], x)
    flat = nn.Sequential(nn.Linear(16, 1), nn.Flatten(0))
    with pytest.raises(ValueError, match=r"layer '1': output of shape \(1000,\)"):
        dtorch.collect(flat.double(), ["1"], x)
    assert no_hooks(model) and no_hooks(flat)
    with pytest.raises(ValueError, match="model has no nn.Linear, nn.Conv1d, nn.Conv2d or nn.Conv3d layers"):
        dtorch.collect(nn.Sequential(nn.ReLU()), None, x)


# -- descramble_model -------------------------------------------------------------------------


def test_descramble_model_per_linear_layer(x):
    model = mlp()
    with pytest.warns(descramble.UnderdeterminedWarning) as caught:
        result = dtorch.descramble_model(model, torch.from_numpy(x), chunk_rows=CHUNK, output=True)
    assert list(result) == ["0", "2", "4"]
    # Layer "0" maps 16 inputs and a bias to 32 units: rank(S) <= 17 (docs/math.md §3).
    assert [(w.message.size, w.message.rank, w.message.n_samples) for w in caught] == [(32, 17, N)]
    assert "layer '0'" in str(caught[0].message) and "n = 16 inputs and a bias" in str(caught[0].message)
    assert [d.n_samples for d in result.values()] == [N, N, N]
    ref = numpy_forward(model, x)
    for (name, d), (W, b) in zip(result.items(), params(model)):
        m = W.shape[0]
        assert isinstance(d, descramble.Descrambler)
        assert d.P.shape == (m, m)
        np.testing.assert_allclose(d.P @ d.P.T, np.eye(m), atol=1e-12)
        assert np.linalg.det(d.P) == pytest.approx(1.0, abs=1e-12)
        np.testing.assert_allclose(d.weights, d.P @ W, rtol=0, atol=1e-12 * np.abs(W).max())
        assert abs(d.loss - d.bound) <= 1e-10 * abs(d.bound)  # the closed form reaches the bound
        S = ref[name].T @ ref[name] / N
        assert np.abs(d.hidden - S).max() <= 1e-10 * np.abs(S).max()
        # The input route (docs/math.md §1: S = W~ C~ W~^T with the bias) gives the same descrambler.
        inputs = {"0": x, "2": ref["1"], "4": ref["3"]}[name]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", descramble.UnderdeterminedWarning)  # layer "0", as above
            via_input = descramble.descramble(W, autocorrelation=descramble.accumulate(inputs), bias=b)
        assert np.abs(via_input.hidden - d.hidden).max() <= 1e-10 * np.abs(S).max()
        assert via_input.loss == pytest.approx(d.loss, rel=1e-10)
        assert via_input.bound == pytest.approx(d.bound, rel=1e-10)
        # Components: equal where the spectrum is simple; within a degenerate
        # group (layer "0": 32 units, rank 17) only the subspace is defined.
        groups = [g.indices for g in d.degenerate if g.kind == "spectrum"]
        assert [len(g) for g in groups] == ([15] if name == "0" else [])
        simple = np.setdiff1d(np.arange(m), np.concatenate(groups + [np.empty(0, int)]))
        np.testing.assert_allclose(via_input.components[:, simple], d.components[:, simple], atol=1e-10)
        for g in groups:
            U1, U2 = via_input.components[:, g], d.components[:, g]
            np.testing.assert_allclose(U1 @ U1.T, U2 @ U2.T, atol=1e-10)
        if not groups:
            np.testing.assert_allclose(via_input.P, d.P, atol=1e-10)


def test_descramble_model_leaves_the_output_layer_alone_by_default(x):
    model = mlp()
    with pytest.warns(descramble.UnderdeterminedWarning):  # layer "0": 32 units from 16 inputs and a bias
        default = dtorch.descramble_model(model, x)
    assert list(default) == ["0", "2"]  # not "4": the output units' order is the task's
    assert list(dtorch.descramble_model(model, x, ["2", "4"])) == ["2", "4"]  # named: descrambled
    single = nn.Sequential(nn.Linear(16, 3)).double()
    with pytest.raises(ValueError, match=r"only weight layer, '0', is the output layer.*output=True"):
        dtorch.descramble_model(single, x)
    assert list(dtorch.descramble_model(single, x, output=True)) == ["0"]
    with pytest.raises(TypeError, match="output: expected True or False"):
        dtorch.descramble_model(model, x, output="yes")


@pytest.mark.filterwarnings("ignore::descramble.UnderdeterminedWarning")  # layer "0" (see above)
def test_progress_bars_of_collect_and_descramble_model(x, capsys):
    pytest.importorskip("tqdm", reason="tqdm (a dependency) is not installed")
    model = mlp()
    dtorch.collect(model, "0", x, chunk_rows=CHUNK)
    assert capsys.readouterr().err == ""
    dtorch.collect(model, "0", x, chunk_rows=CHUNK, progress=True)  # rows of a tensor or array
    assert "1.00k/1.00k" in capsys.readouterr().err
    loader = DataLoader(TensorDataset(torch.from_numpy(x)), batch_size=100)
    dtorch.descramble_model(model, loader, progress=True)  # batches of an iterable, out of len(loader)
    err = capsys.readouterr().err
    assert "10/10" in err and "batches" in err
    with pytest.raises(TypeError, match="progress: expected True or False"):
        dtorch.collect(model, "0", x, progress="yes")


@pytest.mark.filterwarnings("ignore::descramble.UnderdeterminedWarning")  # layer "0" (see above)
def test_descramble_model_options_and_errors(x):
    model = mlp()
    one = dtorch.descramble_model(model, x, "2", smoothness="fd", order=1)
    assert list(one) == ["2"]
    # Any iterable of names, also a generator (read once).
    assert list(dtorch.descramble_model(model, x, (name for name in ["4", "0"]))) == ["4", "0"]
    h = numpy_forward(model, x)["2"]
    expected = descramble.descramble(params(model)[1][0], hidden=h.T @ h / N, smoothness="fd", order=1)
    assert one["2"].smoothness.name == expected.smoothness.name
    np.testing.assert_allclose(one["2"].P, expected.P, atol=1e-10)
    assert one["2"].loss == pytest.approx(expected.loss, rel=1e-10)
    with pytest.raises(ValueError, match="'1' is a ReLU, not an nn.Linear, nn.Conv1d, nn.Conv2d or nn.Conv3d"):
        dtorch.descramble_model(model, x, ["0", "1"])
    with pytest.raises(ValueError, match="unknown layer 'nope'"):
        dtorch.descramble_model(model, x, ["nope"])
    with pytest.raises(TypeError, match="model: expected a torch.nn.Module"):
        dtorch.descramble_model(object(), x)
    # Not "name the layers to record": naming a non-Linear layer is refused too.
    with pytest.raises(ValueError, match=r"model: it has no nn.Linear, nn.Conv1d, nn.Conv2d or nn.Conv3d layers.*use collect\(\) and descramble\(hidden"):
        dtorch.descramble_model(nn.Sequential(nn.Tanh()), x)
    assert no_hooks(model)


# -- convolutional channels -------------------------------------------------------------------


def channel_rows(h):
    """(B, C, *spatial) -> (B * prod(spatial), C), row = sample * positions + position, in NumPy."""
    h = np.asarray(h)
    return np.moveaxis(h, 1, -1).reshape(-1, h.shape[1])


def cnn1d(length_out=14):
    torch.manual_seed(5)
    return nn.Sequential(nn.Conv1d(3, 6, 5, padding=2), nn.ReLU(), nn.MaxPool1d(2), nn.Conv1d(6, 5, 3),
                         nn.Tanh(), nn.Flatten(), nn.Linear(5 * length_out, 2)).double()


@pytest.mark.parametrize("length", [32, 400])  # positions per sample below and above the strided-view path
def test_conv1d_channels_pooled_over_positions_and_samples(rng, length):
    model = cnn1d((length // 2) - 2)
    x = rng.standard_normal((37, 3, length))
    t = torch.from_numpy(x)
    with torch.no_grad():
        h0 = model[0](t)
        a1 = torch.relu(h0)
        h3 = model[3](model[2](a1))
    stats = dtorch.collect(model, None, x, chunk_rows=10)
    assert list(stats) == ["0", "3", "6"]  # the convolutions are layers by default
    assert_matches(stats["0"], channel_rows(h0), 1e-10)
    assert_matches(stats["3"], channel_rows(h3), 1e-10)
    assert stats["0"].count == 37 * length
    # The activation after a convolution (pre_activation=False, or named) and pooling are channel-first too.
    post = dtorch.collect(model, ["0", "3"], x, pre_activation=False, chunk_rows=10)
    assert_matches(post["0"], channel_rows(a1), 1e-10)
    assert_matches(post["3"], channel_rows(torch.tanh(h3)), 1e-10)
    named = dtorch.collect(model, ["1", "2", "4"], x, chunk_rows=10)
    assert_matches(named["1"], channel_rows(a1), 1e-10)
    assert_matches(named["2"], channel_rows(model[2](a1)), 1e-10)
    assert_matches(named["4"], channel_rows(torch.tanh(h3)), 1e-10)
    # Negative control: the same values read as (rows, last axis) are a different matrix.
    wrong = np.asarray(h0).reshape(-1, length)[:, :6]
    assert np.abs(stats["0"].autocorrelation() - wrong.T @ wrong / len(wrong)).max() > 0.1


def test_conv_outputs_reach_the_core_as_views_when_long(rng, monkeypatch):
    model = cnn1d(198)
    x = rng.standard_normal((4, 3, 400))
    fed = []
    original = descramble.Autocorrelation.update

    def spy(self, chunk, weights=None, **where):
        fed.append((chunk, where["first_row"]))
        return original(self, chunk, weights, **where)

    monkeypatch.setattr(descramble.Autocorrelation, "update", spy)
    outputs = []
    handle = model[0].register_forward_hook(lambda m, i, o: outputs.append(o))
    dtorch.collect(model, ["0"], x)
    handle.remove()
    assert [first for _, first in fed] == [0, 400, 800, 1200]  # one (400, 6) block per sample
    for (chunk, _), block in zip(fed, outputs[0]):
        assert chunk.shape == (400, 6) and np.shares_memory(chunk, outputs[0].numpy())
        np.testing.assert_array_equal(chunk, block.numpy().T)


def test_conv2d_and_conv3d_channels(rng):
    torch.manual_seed(6)
    model = nn.Sequential(nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 3, 1)).double()
    with torch.no_grad():
        model[1].running_mean.uniform_(-1, 1)
    model.eval()  # the reference below: batch norm on its running statistics, as collect runs it
    x = rng.standard_normal((20, 2, 9, 7))
    with torch.no_grad():
        h0 = model[0](torch.from_numpy(x))
        b1 = model[1](h0)
    stats = dtorch.collect(model, ["0", "1", "2", "3"], x)
    assert_matches(stats["0"], channel_rows(h0), 1e-10)
    assert stats["0"].count == 20 * 7 * 5
    assert_matches(stats["1"], channel_rows(b1), 1e-10)  # batch norm: channels on axis 1
    assert_matches(stats["2"], channel_rows(torch.relu(b1)), 1e-10)
    conv3 = nn.Sequential(nn.Conv3d(1, 3, 2)).double()
    x3 = rng.standard_normal((5, 1, 4, 3, 3))
    with torch.no_grad():
        h = conv3(torch.from_numpy(x3))
    assert_matches(dtorch.collect(conv3, None, x3)["0"], channel_rows(h), 1e-10)


def test_conv_nan_names_the_row_of_sample_and_position(rng):
    model = cnn1d()
    x = rng.standard_normal((20, 3, 32))
    x[13, 1, 7] = np.nan  # reaches positions 5..9 of sample 13 through the kernel of 5
    with pytest.raises(descramble.NonFiniteError, match=rf"layer '0' output: row {13 * 32 + 5} contains NaN"):
        dtorch.collect(model, ["0"], x, chunk_rows=6)
    assert no_hooks(model)


def test_descramble_model_on_convolutions(rng):
    model = cnn1d()
    x = rng.standard_normal((50, 3, 32))
    with torch.no_grad():
        h3 = model[3](model[2](torch.relu(model[0](torch.from_numpy(x)))))
    result = dtorch.descramble_model(model, x)
    assert list(result) == ["0", "3"]  # not the output layer "6"
    rows = channel_rows(h3)
    W3 = model[3].weight.detach().numpy()
    expected = descramble.descramble(W3.reshape(5, -1), hidden=rows.T @ rows / len(rows))
    d = result["3"]
    assert d.n_samples == 50 * 14
    np.testing.assert_allclose(d.P, expected.P, atol=1e-10)
    # The weights: P on the out-channel axis of the (C_out, C_in * k) kernel.
    assert d.weights.shape == (5, 6 * 3)
    np.testing.assert_allclose(d.weights.reshape(W3.shape), np.einsum("ij,jkl->ikl", d.P, W3), atol=1e-12)
    # The permutation criteria and their options pass through.
    perm = dtorch.descramble_model(model, x, "3", criterion="signed-permutation", seed=3, max_iterations=5)["3"]
    ref = descramble.descramble(hidden=rows.T @ rows / len(rows), criterion="signed-permutation", seed=3,
                                max_iterations=5)
    # The streamed S and rows.T @ rows / N differ by rounding, and the circulant Fourier operator has ties
    # (rotations, reversal): the two searches may end at different orders of one loss.
    assert perm.loss == pytest.approx(ref.loss, rel=1e-9)
    S = rows.T @ rows / len(rows)
    P = np.zeros((5, 5))
    P[np.arange(5), perm.permutation] = perm.signs
    assert np.trace(descramble.smoothness.fourier(5).gram @ P @ S @ P.T) == pytest.approx(ref.loss, rel=1e-9)
    assert perm.criterion == "signed-permutation" and perm.gap == pytest.approx(ref.gap, rel=1e-9)
    with pytest.raises(ValueError, match="time_limit: expected a positive number"):
        dtorch.descramble_model(model, x, criterion="permutation", time_limit=0)
    with pytest.raises(ValueError, match="criterion: expected one of"):
        dtorch.descramble_model(model, x, criterion="best")
    with pytest.raises(ValueError, match="'2' is a MaxPool1d, not an nn.Linear, nn.Conv1d"):
        dtorch.descramble_model(model, x, ["2"])


# -- packaging ------------------------------------------------------------------------------


def test_import_descramble_does_not_import_torch():
    code = "import sys, descramble; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_torch_names_the_package():
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import numpy, descramble.torch as dt\n"
        "try:\n"
        "    dt.collect(None, None, numpy.zeros((2, 2)))\n"
        "except ImportError as exc:\n"
        "    assert 'pip install torch' in str(exc), exc\n"
        "else:\n"
        "    raise AssertionError('no ImportError')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
