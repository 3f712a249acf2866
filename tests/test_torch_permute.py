"""descramble.torch.permute_model: exact rewrites of PyTorch models with permuted hidden units (issue 13)."""

import copy

import numpy as np
import pytest

torch = pytest.importorskip(
    "torch", reason="descramble.torch tests need PyTorch (pip install torch==2.13.0 for the CPU build)"
)
from torch import nn  # noqa: E402

import descramble  # noqa: E402
import descramble.torch as dtorch  # noqa: E402

ITER = 20  # permutation-search rounds: enough to move away from the identity, fast


def randomise_batchnorms(model, generator_seed=0):
    """Non-trivial running statistics and affine parameters, so that permuting them matters."""
    g = torch.Generator().manual_seed(generator_seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                n = module.num_features
                module.running_mean.copy_(torch.randn(n, generator=g) * 0.5)
                module.running_var.copy_(torch.rand(n, generator=g) + 0.5)
                module.weight.copy_(torch.randn(n, generator=g))
                module.bias.copy_(torch.randn(n, generator=g) * 0.3)
    return model


def snapshot(model):
    return {key: value.detach().clone() for key, value in model.state_dict().items()}


def assert_untouched(model, before):
    after = model.state_dict()
    assert after.keys() == before.keys()
    for key in before:
        assert torch.equal(after[key], before[key]), key


def assert_same_function(original, permuted, x, tol=1e-6):
    original.eval()
    permuted.eval()
    with torch.no_grad():
        y, y_new = original(x), permuted(x)
    assert y.dtype == torch.float32 and y.shape == y_new.shape
    scale = max(1.0, float(y.abs().max()))
    assert float((y - y_new).abs().max()) <= tol * scale


def no_hooks(model):
    return all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def not_identity(d):
    m = len(d.permutation)
    return not np.array_equal(d.permutation, np.arange(m)) or (d.signs is not None and np.any(d.signs < 0))


def mlp(activation=nn.ReLU):
    torch.manual_seed(11)
    return nn.Sequential(nn.Linear(12, 24), activation(), nn.Linear(24, 16), activation(), nn.Linear(16, 3))


def cnn1d():
    torch.manual_seed(12)
    model = nn.Sequential(
        nn.Conv1d(2, 12, 5, padding=2), nn.BatchNorm1d(12), nn.ReLU(), nn.MaxPool1d(2),
        nn.Conv1d(12, 10, 3, padding=1), nn.BatchNorm1d(10), nn.ReLU(), nn.Dropout(0.3),
        nn.Flatten(), nn.Linear(10 * 16, 4),
    )
    return randomise_batchnorms(model, 1)


def cnn2d():
    torch.manual_seed(13)
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Sequential(nn.Conv2d(8, 6, 3), nn.BatchNorm2d(6), nn.GELU(), nn.AdaptiveAvgPool2d((3, 2))),
        nn.Flatten(), nn.Linear(6 * 3 * 2, 5), nn.ReLU(), nn.Linear(5, 2),
    )
    return randomise_batchnorms(model, 2)


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(20261202)


# -- exactness ------------------------------------------------------------------------------


def test_mlp_relu_permuted_model_computes_the_same_function(gen):
    model = mlp()
    x = torch.randn(400, 12, generator=gen) * 1.5 + 0.3
    before = snapshot(model)
    with pytest.warns(descramble.UnderdeterminedWarning):  # layer "0": 24 units from 12 inputs and a bias
        result = dtorch.permute_model(model, x, max_iterations=ITER)
    new, descramblers = result  # a named tuple
    assert new is result.model and descramblers is result.descramblers and new is not model
    assert list(descramblers) == ["0", "2"]
    assert all(not_identity(d) for d in descramblers.values())
    assert all(d.criterion == "permutation" and d.signs is None for d in descramblers.values())
    assert_untouched(model, before)
    assert no_hooks(model) and no_hooks(new)
    assert_same_function(model, new, torch.randn(300, 12, generator=gen) * 2)
    # The rewrite is the convention: W' = W[p], b' = b[p], W_next' = W_next[:, p].
    p0, p2 = descramblers["0"].permutation, descramblers["2"].permutation
    W0, W2, W4 = (model[i].weight.detach().numpy() for i in (0, 2, 4))
    np.testing.assert_array_equal(new[0].weight.detach().numpy(), W0[p0])
    np.testing.assert_array_equal(new[0].bias.detach().numpy(), model[0].bias.detach().numpy()[p0])
    np.testing.assert_array_equal(new[2].weight.detach().numpy(), W2[p2][:, p0])
    np.testing.assert_array_equal(new[4].weight.detach().numpy(), W4[:, p2])
    np.testing.assert_array_equal(new[4].bias.detach().numpy(), model[4].bias.detach().numpy())
    # Negative control: the same rows without the consumer's columns change the function.
    broken = copy.deepcopy(new)
    with torch.no_grad():
        broken[2].weight.copy_(model[2].weight[p2])
    with pytest.raises(AssertionError):
        assert_same_function(model, broken, x)


def test_mlp_tanh_signed_permutations(gen):
    model = mlp(nn.Tanh)
    x = torch.randn(400, 12, generator=gen)
    with pytest.warns(descramble.UnderdeterminedWarning):
        new, descramblers = dtorch.permute_model(model, x, criterion="signed-permutation", max_iterations=ITER)
    for d in descramblers.values():
        assert d.criterion == "signed-permutation"
        assert set(np.unique(d.signs)) == {-1.0, 1.0}  # flips happen (the test could fail)
    s0, p0 = descramblers["0"].signs, descramblers["0"].permutation
    np.testing.assert_array_equal(new[0].weight.detach().numpy(), s0[:, None] * model[0].weight.detach().numpy()[p0])
    assert_same_function(model, new, torch.randn(300, 12, generator=gen) * 2)


def test_cnn1d_batchnorm_relu_maxpool_flatten_linear(gen):
    model = cnn1d()
    x = torch.randn(64, 2, 32, generator=gen)
    before = snapshot(model)
    model.train()  # collection runs in eval mode and restores the flags
    with pytest.warns(descramble.UnderdeterminedWarning, match="layer '0'"):  # 12 channels from 2 x 5 inputs + 1
        new, descramblers = dtorch.permute_model(model, x, max_iterations=ITER)
    assert all(m.training for m in model.modules())
    assert list(descramblers) == ["0", "4"]
    assert all(not_identity(d) for d in descramblers.values())
    assert_untouched(model, before)
    assert_same_function(model, new, torch.randn(50, 2, 32, generator=gen))
    # Batch norm permuted with its channels; the Linear's columns in blocks of 16 positions.
    p0, p4 = descramblers["0"].permutation, descramblers["4"].permutation
    for key in ("weight", "bias", "running_mean", "running_var"):
        np.testing.assert_array_equal(getattr(new[1], key).detach().numpy(), getattr(model[1], key).detach().numpy()[p0])
        np.testing.assert_array_equal(getattr(new[5], key).detach().numpy(), getattr(model[5], key).detach().numpy()[p4])
    W9 = model[9].weight.detach().numpy().reshape(4, 10, 16)
    np.testing.assert_array_equal(new[9].weight.detach().numpy(), W9[:, p4, :].reshape(4, 160))
    # Negative control: the Linear's columns permuted one by one instead of in blocks break the function.
    broken = copy.deepcopy(new)
    with torch.no_grad():
        broken[9].weight.copy_(model[9].weight[:, np.concatenate([p4, np.arange(10, 160)])])
    with pytest.raises(AssertionError):
        assert_same_function(model, broken, x)


def test_cnn2d_batchnorm_nested_sequential_adaptive_pool(gen):
    model = cnn2d()
    x = torch.randn(40, 1, 8, 7, generator=gen)
    new, descramblers = dtorch.permute_model(model, x, max_iterations=ITER)
    assert list(descramblers) == ["0", "3.0", "5"]
    assert all(not_identity(d) for d in descramblers.values())
    assert_same_function(model, new, torch.randn(30, 1, 8, 7, generator=gen))
    p = descramblers["3.0"].permutation
    np.testing.assert_array_equal(new[3][0].weight.detach().numpy(),
                                  model[3][0].weight.detach().numpy()[p][:, descramblers["0"].permutation])


def test_cnn2d_signed_with_tanh_batchnorm_and_average_pooling(gen):
    torch.manual_seed(14)
    model = randomise_batchnorms(nn.Sequential(
        nn.Conv2d(2, 8, 3), nn.BatchNorm2d(8), nn.Tanh(), nn.AvgPool2d(2), nn.Dropout2d(0.2),
        nn.Conv2d(8, 6, 2), nn.Hardtanh(), nn.Flatten(), nn.Linear(6 * 2 * 2, 3),
    ), 3)
    x = torch.randn(50, 2, 8, 8, generator=gen)
    new, descramblers = dtorch.permute_model(model, x, criterion="signed-permutation", max_iterations=ITER)
    assert list(descramblers) == ["0", "5"]
    assert any(np.any(d.signs < 0) for d in descramblers.values())
    s = descramblers["0"].signs
    p = descramblers["0"].permutation
    # Batch norm after a flipped channel: weight and var permuted, bias and running mean flipped too.
    np.testing.assert_array_equal(new[1].weight.detach().numpy(), model[1].weight.detach().numpy()[p])
    np.testing.assert_array_equal(new[1].running_var.detach().numpy(), model[1].running_var.detach().numpy()[p])
    np.testing.assert_array_equal(new[1].bias.detach().numpy(), s * model[1].bias.detach().numpy()[p])
    np.testing.assert_array_equal(new[1].running_mean.detach().numpy(), s * model[1].running_mean.detach().numpy()[p])
    assert_same_function(model, new, torch.randn(30, 2, 8, 8, generator=gen))


def test_batchnorm_after_linear_per_channel_prelu_and_other_convolutions(gen):
    torch.manual_seed(16)
    mlp_bn = randomise_batchnorms(nn.Sequential(
        nn.Linear(12, 10), nn.BatchNorm1d(10), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(10, 8), nn.PReLU(8), nn.Linear(8, 3),
    ), 4)
    with torch.no_grad():
        mlp_bn[5].weight.uniform_(-0.5, 0.5)  # one slope per unit, permuted with the units
    x = torch.randn(200, 12, generator=gen)
    new, descramblers = dtorch.permute_model(mlp_bn, x, max_iterations=ITER)
    assert all(not_identity(d) for d in descramblers.values())
    np.testing.assert_array_equal(new[5].weight.detach().numpy(),
                                  mlp_bn[5].weight.detach().numpy()[descramblers["4"].permutation])
    assert_same_function(mlp_bn, new, x)
    torch.manual_seed(17)
    conv = nn.Sequential(nn.Conv1d(2, 6, 3, padding=1, padding_mode="circular"), nn.ELU(), nn.AvgPool1d(2),
                         nn.Conv1d(6, 5, 3, dilation=2, stride=2), nn.SiLU(), nn.AdaptiveMaxPool1d(1),
                         nn.Flatten(), nn.Linear(5, 2))
    x = torch.randn(60, 2, 24, generator=gen)
    new, descramblers = dtorch.permute_model(conv, x, max_iterations=ITER)
    assert list(descramblers) == ["0", "3"] and all(not_identity(d) for d in descramblers.values())
    assert_same_function(conv, new, x)
    torch.manual_seed(18)
    conv3 = nn.Sequential(nn.Conv3d(1, 4, 2), nn.BatchNorm3d(4), nn.Tanh(), nn.Conv3d(4, 3, 2), nn.Flatten(),
                          nn.Linear(3 * 8, 2))
    x = torch.randn(30, 1, 4, 4, 4, generator=gen)
    new, descramblers = dtorch.permute_model(randomise_batchnorms(conv3, 5), x, criterion="signed-permutation",
                                             max_iterations=ITER)
    assert_same_function(conv3, new, x)


# -- the permutations are the descramblers of the collected statistics ------------------------


@pytest.mark.parametrize("criterion", ["permutation", "signed-permutation"])
def test_permutations_are_descramble_of_the_collected_statistics(gen, criterion):
    torch.manual_seed(15)
    model = nn.Sequential(nn.Conv1d(3, 9, 3), nn.Tanh(), nn.Flatten(), nn.Linear(9 * 14, 11), nn.Tanh(),
                          nn.Linear(11, 2)).double()  # float64: the reference below is float64 NumPy
    x = torch.randn(80, 3, 16, generator=gen, dtype=torch.float64)
    options = dict(criterion=criterion, smoothness="fd", order=1, seed=4, max_iterations=7)
    _, descramblers = dtorch.permute_model(model, x, **options)
    assert list(descramblers) == ["0", "3"]
    # The statistics are the pre-activations' (channels pooled over positions for the convolution) ...
    with torch.no_grad():
        h0 = model[0](x).numpy()
        h3 = model[3](torch.tanh(model[0](x)).flatten(1)).numpy()
    rows = {"0": np.moveaxis(h0, 1, -1).reshape(-1, 9), "3": h3}
    stats = dtorch.collect(model, ["0", "3"], x)
    for name, d in descramblers.items():
        S = rows[name].T @ rows[name] / len(rows[name])
        assert np.abs(stats[name].autocorrelation() - S).max() <= 1e-12 * np.abs(S).max()
        # ... and the permutation is descramble(hidden=S) of them, with the same options.
        ref = descramble.descramble(hidden=stats[name], **options)
        np.testing.assert_array_equal(d.permutation, ref.permutation)
        if criterion == "signed-permutation":
            np.testing.assert_array_equal(d.signs, ref.signs)
        assert d.loss == ref.loss and d.bound == ref.bound and d.gap == ref.gap
        assert d.n_samples == len(rows[name])
        assert d.smoothness.name == ref.smoothness.name
        # Independent of the core's search: the loss is tr(A P S P^T) with the NumPy S.
        D = np.diff(np.eye(9 if name == "0" else 11), axis=0)  # first differences along the units
        assert np.trace(D.T @ D @ d.P @ S @ d.P.T) == pytest.approx(d.loss, rel=1e-9)
        assert np.isfinite(d.gap) and d.loss >= d.bound * (1 - 1e-12)


def test_layers_selects_the_permuted_layers(gen):
    model = mlp()
    x = torch.randn(300, 12, generator=gen)
    new, descramblers = dtorch.permute_model(model, x, layers="2", max_iterations=ITER)
    assert list(descramblers) == ["2"]
    np.testing.assert_array_equal(new[0].weight.detach().numpy(), model[0].weight.detach().numpy())
    p = descramblers["2"].permutation
    np.testing.assert_array_equal(new[2].weight.detach().numpy(), model[2].weight.detach().numpy()[p])
    assert_same_function(model, new, x)


# -- bad input ------------------------------------------------------------------------------


def test_unsupported_models_are_errors_naming_the_module(gen):
    x = torch.randn(20, 12, generator=gen)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(12, 4), nn.Linear(4, 2)

        def forward(self, inp):
            return self.fc2(torch.relu(self.fc1(inp)))

    with pytest.raises(TypeError, match="model: permute_model rewrites nn.Sequential models.*got Net"):
        dtorch.permute_model(Net(), x)
    class Custom(nn.Sequential):
        def forward(self, inp):
            return self[2](self[1](self[0](inp)) + 1.0)

    with pytest.raises(TypeError, match=r"model: the model \(Custom\) is an nn.Sequential with its own forward"):
        dtorch.permute_model(Custom(nn.Linear(12, 4), nn.ReLU(), nn.Linear(4, 2)), x)
    nested = nn.Sequential(nn.Linear(12, 4), Custom(nn.ReLU(), nn.Identity(), nn.Identity()), nn.Linear(4, 2))
    with pytest.raises(TypeError, match=r"model: '1' \(Custom\) is an nn.Sequential with its own forward"):
        dtorch.permute_model(nested, x)
    with pytest.raises(TypeError, match=r"model: '1' \(Softmax\) lies between layer '0' and its consumer '2'"):
        dtorch.permute_model(nn.Sequential(nn.Linear(12, 4), nn.Softmax(dim=1), nn.Linear(4, 2)), x)
    with pytest.raises(ValueError, match=r"'signed-permutation' needs odd functions.*layer '0'.*'1' \(ReLU\) is not odd"):
        dtorch.permute_model(mlp(), x, criterion="signed-permutation")
    with pytest.raises(ValueError, match=r"'3' \(ReLU6\) is not odd"):
        dtorch.permute_model(nn.Sequential(nn.Linear(12, 4), nn.Tanh(), nn.Linear(4, 4), nn.ReLU6(),
                                           nn.Linear(4, 2)), x, criterion="signed-permutation")
    with pytest.raises(ValueError, match=r"layer '0' and its consumer '3'.*'2' \(MaxPool1d\) is not odd"):
        dtorch.permute_model(nn.Sequential(nn.Conv1d(2, 4, 3), nn.Tanh(), nn.MaxPool1d(2), nn.Conv1d(4, 3, 1)),
                             torch.randn(4, 2, 10), criterion="signed-permutation")
    grouped = nn.Sequential(nn.Conv1d(2, 4, 3), nn.ReLU(), nn.Conv1d(4, 4, 3, groups=2), nn.Flatten(),
                            nn.Linear(4 * 6, 2))
    with pytest.raises(ValueError, match=r"'2' \(Conv1d\) has groups=2"):
        dtorch.permute_model(grouped, torch.randn(5, 2, 10))
    shared = nn.Linear(4, 4)
    with pytest.raises(ValueError, match=r"'1' \(Linear\) appears 2 times"):
        dtorch.permute_model(nn.Sequential(nn.Linear(12, 4), shared, nn.ReLU(), shared), x)
    with pytest.raises(TypeError, match="model: expected a torch.nn.Module"):
        dtorch.permute_model(object(), x)


def test_units_the_chain_cannot_follow_are_errors(gen):
    x = torch.randn(20, 12, generator=gen)
    # A pooling of a Linear's output runs along its units.
    with pytest.raises(ValueError, match=r"layer '0': '1' \(MaxPool1d\) pools the last 1 axes.*would mix units"):
        dtorch.permute_model(nn.Sequential(nn.Linear(12, 8), nn.MaxPool1d(2), nn.Linear(4, 2)), x)
    # A Linear applied to a convolution's (batch, C, L) output acts on the positions, not the channels.
    with pytest.raises(ValueError, match=r"layer '0': its consumer '2' \(Linear\) reads axis 2 .* units are on axis 1"):
        dtorch.permute_model(nn.Sequential(nn.Conv1d(2, 3, 3), nn.ReLU(), nn.Linear(8, 2)), torch.randn(6, 2, 10))
    # A Flatten that merges the batch axis with the units.
    with pytest.raises(ValueError, match=r"'2' \(Flatten\) merges the layer's units"):
        dtorch.permute_model(nn.Sequential(nn.Conv1d(2, 3, 3), nn.ReLU(), nn.Flatten(0), nn.Linear(24, 2)),
                             torch.randn(1, 2, 10))
    # Batch norm over the sequence axis of a (batch, seq, units) Linear output.
    with pytest.raises(ValueError, match=r"'1' \(BatchNorm1d\) normalises axis 1"):
        dtorch.permute_model(nn.Sequential(nn.Linear(12, 5), nn.BatchNorm1d(3), nn.Linear(5, 2)),
                             torch.randn(8, 3, 12))


def test_bad_arguments(gen):
    model = mlp()
    x = torch.randn(30, 12, generator=gen)
    before = snapshot(model)
    with pytest.raises(ValueError, match="criterion: permute_model needs 'permutation' or 'signed-permutation'"):
        dtorch.permute_model(model, x, criterion="smooth")
    with pytest.raises(TypeError, match="criterion: expected a string"):
        dtorch.permute_model(model, x, criterion=1)
    with pytest.raises(ValueError, match="layers: '4' is the output layer"):
        dtorch.permute_model(model, x, layers=["4"])
    with pytest.raises(ValueError, match=r"layers: '1' is not a hidden .* hidden layers: '0', '2'"):
        dtorch.permute_model(model, x, layers=["1"])
    with pytest.raises(ValueError, match="'0' named more than once"):
        dtorch.permute_model(model, x, layers=["0", "0"])
    with pytest.raises(TypeError, match="layers: expected names"):
        dtorch.permute_model(model, x, layers=[0])
    with pytest.raises(ValueError, match="max_iterations: expected >= 0"):
        dtorch.permute_model(model, x, max_iterations=-1)
    with pytest.raises(TypeError, match="seed: expected an int"):
        dtorch.permute_model(model, x, seed=1.5)
    with pytest.raises(ValueError, match=r"model: it has one, '0', the output layer"):
        dtorch.permute_model(nn.Sequential(nn.Linear(12, 2), nn.ReLU()), x)
    with pytest.raises(ValueError, match="model: it has no nn.Linear"):
        dtorch.permute_model(nn.Sequential(nn.ReLU()), x)
    with pytest.raises(ValueError, match="data: no batches"):
        dtorch.permute_model(model, [])
    assert_untouched(model, before)
    assert no_hooks(model)


@pytest.mark.parametrize("where", [0, 1])
def test_forward_hooks_between_a_layer_and_its_consumer_are_refused(gen, where):
    # A forward hook sees the units in their trained order: o * v per unit gave a silently different model.
    x = torch.randn(64, 5, generator=gen)
    model = nn.Sequential(nn.Linear(5, 6), nn.Tanh(), nn.Linear(6, 2)).eval()
    v = torch.arange(1.0, 7.0)
    handle = model[where].register_forward_hook(lambda module, inputs, output: output * v)
    with pytest.raises(TypeError, match=rf"model: '{where}' \(\w+\) has forward hooks.*layer '0'"):
        dtorch.permute_model(model, x, max_iterations=2)
    handle.remove()
    model[2].register_forward_hook(lambda module, inputs, output: None)  # the consumer's output does not move
    permuted, _ = dtorch.permute_model(model, x, max_iterations=2)
    assert_same_function(model, permuted, x)


@pytest.mark.parametrize("tie", ["weight", "bias"])
def test_tied_parameters_are_refused(gen, tie):
    # A parameter shared by two layers was permuted twice (for its rows, then as the consumer's columns): a silently
    # different model.
    x = torch.randn(64, 6, generator=gen)
    model = nn.Sequential(nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 2)).eval()
    setattr(model[2], tie, getattr(model[0], tie))
    with pytest.raises(ValueError, match=rf"model: '0.{tie}', '2.{tie}' share one tensor \(tied weights\)"):
        dtorch.permute_model(model, x, max_iterations=2)
    with pytest.raises(ValueError, match="tied weights"):
        dtorch.permute_model(model, x, layers="2", max_iterations=2)  # '2' is layer '0''s consumer, and permuted
