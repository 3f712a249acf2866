"""PyTorch tensors and Parameters wherever arrays are accepted (descramble._validation.as_numpy):
detached, copied to the CPU, bfloat16/float8 widened; torch never imported when no tensor is passed."""

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="tensor inputs need PyTorch")

import descramble  # noqa: E402
from descramble import smoothness  # noqa: E402
import descramble._validation as validation  # noqa: E402


@pytest.fixture
def layer(rng):
    W = rng.normal(size=(5, 7))
    X = rng.normal(size=(400, 7)) + 0.5
    b = rng.normal(size=5)
    return W, X, b


def param(a, dtype=torch.float64):
    """A Parameter (requires grad: ``.numpy()`` on it raises in torch)."""
    return torch.nn.Parameter(torch.tensor(a, dtype=dtype))


def test_as_numpy_recognises_tensors_by_duck_typing():
    p = param(np.ones((2, 3)))
    assert validation.is_tensor(p) and validation.is_tensor(torch.ones(2)) and validation.is_tensor(p[0])
    assert not validation.is_tensor(np.ones(2)) and not validation.is_tensor([1.0])
    out = validation.as_numpy(p)
    assert isinstance(out, np.ndarray) and out.dtype == np.float64 and out.shape == (2, 3)
    t = torch.arange(6.0).reshape(2, 3)
    assert np.shares_memory(validation.as_numpy(t), t.numpy())  # CPU tensors: a view, no copy
    assert validation.as_numpy(torch.ones(3, dtype=torch.bfloat16)).dtype == np.float32  # NumPy has no bfloat16
    assert validation.as_numpy(torch.ones(3, dtype=torch.float16)).dtype == np.float16
    assert validation.as_numpy(torch.ones(3, dtype=torch.int32)).dtype == np.int32
    assert validation.as_numpy(torch.tensor([1.0, -2.0])._neg_view()).tolist() == [-1.0, 2.0]  # a negative view
    a = np.ones(2)
    assert validation.as_numpy(a) is a  # anything else: unchanged

    class Custom(torch.Tensor):  # a subclass from another module (torchvision's tv_tensors are these)
        pass

    assert validation.is_tensor(torch.ones(2).as_subclass(Custom))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.int64])
def test_descramble_takes_parameters_of_every_dtype(layer, dtype):
    W, X, b = layer
    Wt, Xt, bt = param(W * 4, dtype) if dtype.is_floating_point else torch.tensor((W * 4).round(), dtype=dtype), \
        torch.tensor(X, dtype=dtype) if dtype.is_floating_point else torch.tensor(X.round(), dtype=dtype), \
        param(b, dtype) if dtype.is_floating_point else torch.tensor(b.round(), dtype=dtype)
    # The arrays the tensors hold, as NumPy sees them: the same answer.
    Wn, Xn, bn = (t.detach().to(torch.float64).numpy() for t in (Wt, Xt, bt))
    got = descramble.descramble(Wt, data=Xt, bias=bt)
    expected = descramble.descramble(Wn, data=Xn, bias=bn)
    np.testing.assert_array_equal(got.P, expected.P)
    np.testing.assert_array_equal(got.weights, expected.weights)
    assert got.n_samples == 400


def test_every_input_form_takes_tensors(layer):
    W, X, b = layer
    acc = descramble.accumulate(X)
    C = acc.autocorrelation()
    Y = X @ W.T + b
    S = Y.T @ Y / len(Y)
    ref = descramble.descramble(W, data=X, bias=b)
    np.testing.assert_array_equal(descramble.descramble(param(W), autocorrelation=acc, bias=param(b)).P, ref.P)
    np.testing.assert_array_equal(descramble.descramble(param(W), autocorrelation=param(C), bias=0).P,
                                  descramble.descramble(W, autocorrelation=C).P)
    np.testing.assert_array_equal(descramble.descramble(hidden=param(S)).P, descramble.descramble(hidden=S).P)
    np.testing.assert_array_equal(descramble.descramble(param(W), hidden=param(S), smoothness=param(np.eye(5))).P,
                                  descramble.descramble(W, hidden=S, smoothness=np.eye(5)).P)
    chunks = [torch.tensor(X[:150]), param(X[150:])]  # a list (or iterator) of tensor chunks
    by_chunks = descramble.descramble(W, data=[X[:150], X[150:]], bias=b).P  # the same chunking in NumPy
    np.testing.assert_array_equal(descramble.descramble(W, data=chunks, bias=b).P, by_chunks)
    np.testing.assert_array_equal(descramble.descramble(W, data=iter(chunks), bias=b).P, by_chunks)
    np.testing.assert_array_equal(ref.apply(param(W)), ref.apply(W))
    np.testing.assert_array_equal(ref.apply_next(param(W.T)), ref.apply_next(W.T))
    gram = smoothness.fourier(5)
    assert descramble.descrambler.smoothness_loss(param(ref.P), param(S), gram) == \
        descramble.descrambler.smoothness_loss(ref.P, S, gram)
    np.testing.assert_array_equal(smoothness.from_matrix(param(np.eye(5))).gram, smoothness.from_matrix(np.eye(5)).gram)


def test_statistics_take_tensors(layer, rng):
    W, X, b = layer
    w = rng.uniform(0.5, 2.0, size=len(X))
    ref = descramble.accumulate(X, weights=w)
    got = descramble.accumulate(param(X), weights=torch.tensor(w))
    np.testing.assert_array_equal(got.autocorrelation(), ref.autocorrelation())
    np.testing.assert_array_equal(descramble.autocorrelation(param(X)), descramble.autocorrelation(X))
    acc = descramble.Autocorrelation(7).update(param(X[:10]), weights=param(w[:10])).update_from(torch.tensor(X[10:]))
    assert acc.count == 400
    np.testing.assert_array_equal(descramble.cov(param(X.T)), descramble.cov(X.T))
    np.testing.assert_array_equal(descramble.cov(param(X), rowvar=False, fweights=torch.arange(400) % 3,
                                                 aweights=param(w)),
                                  descramble.cov(X, rowvar=False, fweights=np.arange(400) % 3, aweights=w))
    S = X.T @ X
    got_eigh, ref_eigh = descramble.eigh(param(S)), descramble.eigh(S)
    np.testing.assert_array_equal(got_eigh.eigenvalues, ref_eigh.eigenvalues)
    assert descramble.eigh(param(S, torch.float32)).eigenvalues.dtype == np.float32
    np.testing.assert_array_equal(descramble.svd(param(X)).S, descramble.svd(X).S)


def test_stability_and_convergence_take_tensors(layer):
    W, X, b = layer
    s_ref, s = descramble.stability(W, X, bias=b), descramble.stability(param(W), param(X), bias=param(b))
    np.testing.assert_array_equal(s.angles, s_ref.angles)
    c_ref = descramble.convergence(W, X, bias=b, sizes=[50, 100])
    c = descramble.convergence(param(W), param(X), bias=param(b), sizes=[50, 100])
    np.testing.assert_array_equal(c.loss, c_ref.loss)


def test_complex_tensors_are_refused_by_name(layer):
    W, X, b = layer
    with pytest.raises(TypeError, match="weights: expected a real matrix, got complex"):
        descramble.descramble(torch.ones(3, 3, dtype=torch.complex64), data=X, bias=b)
    with pytest.raises(TypeError, match="complex"):
        descramble.accumulate(torch.ones(3, 3, dtype=torch.complex128))


def test_a_tensor_on_another_device_is_copied_to_the_cpu(layer):
    """The ``.cpu()`` step, on the "meta"-free path available everywhere: a tensor whose device is not
    the CPU (simulated: its .device says "cuda") is copied with .cpu() before .numpy()."""
    W, X, b = layer

    class OnDevice(torch.Tensor):
        moved = 0

        @property
        def device(self):
            return torch.device("cuda", 0)

        def detach(self):
            return self  # keep the subclass, so that .device still says "cuda"

        def cpu(self):
            OnDevice.moved += 1
            return torch.Tensor(self.as_subclass(torch.Tensor).clone())

    Wd = torch.tensor(W).as_subclass(OnDevice)
    np.testing.assert_array_equal(validation.as_numpy(Wd), W)
    assert OnDevice.moved == 1


def test_import_and_numpy_use_never_import_torch():
    code = ("import sys, numpy as np, descramble\n"
            "rng = np.random.default_rng(0)\n"
            "d = descramble.descramble(rng.normal(size=(3, 4)), data=rng.normal(size=(50, 4)), bias=0)\n"
            "descramble.stability(rng.normal(size=(3, 4)), rng.normal(size=(50, 4)), bias=0)\n"
            "descramble.cov(rng.normal(size=(3, 9))); descramble.eigh(np.eye(3))\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [os.path.dirname(os.path.dirname(descramble.__file__)), os.environ.get("PYTHONPATH")]))}
    with warnings.catch_warnings():
        subprocess.run([sys.executable, "-c", code], check=True, env=env)
