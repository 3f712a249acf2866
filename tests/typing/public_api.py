"""The public API as a user calls it, for mypy (``python -m mypy tests/typing/public_api.py``).

Not a pytest module (no ``test_`` prefix): mypy checks that these calls and
the annotated results agree with the package's annotations and _core.pyi.
It also runs (``python tests/typing/public_api.py``), on small random data.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any, List, Optional, Tuple

import numpy as np

import descramble
from descramble import io, plot, smoothness
from descramble.accumulator import Autocorrelation
from descramble.convergence import Convergence
from descramble.descrambler import Degeneracy, Descrambler, Stability
from descramble.hidden import HiddenAutocorrelations
from descramble.linalg import EighResult, SVDResult
from descramble.smoothness import Smoothness


def accumulators(x: np.ndarray) -> Autocorrelation:
    acc = descramble.Autocorrelation(x.shape[1], precision="float64", threads=1)
    same: Autocorrelation = acc.update(x[:100]).update(x[100:], weights=np.ones(len(x) - 100))
    other = descramble.accumulate(x, chunk_rows=64)
    merged: Autocorrelation = acc.copy().merge(other)
    n: int = merged.n_features
    count: int = merged.count
    w: float = merged.weight_sum
    mean: np.ndarray = merged.mean
    scatter: np.ndarray = merged.scatter
    second: np.ndarray = merged.autocorrelation()
    cov: np.ndarray = merged.covariance(ddof=1)
    direct: np.ndarray = descramble.autocorrelation(x, precision="mixed")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "acc.npz")
        same.save(path)
        loaded: Autocorrelation = descramble.Autocorrelation.load(path)
    assert n == loaded.n_features and count == 2 * len(x) and w > 0
    assert mean.shape == (n,) and scatter.shape == second.shape == cov.shape == direct.shape == (n, n)
    return merged


def numpy_like(x: np.ndarray) -> None:
    c: np.ndarray = descramble.cov(x, rowvar=False, ddof=1)
    c_weighted: np.ndarray = descramble.cov(x.T, aweights=np.ones(len(x)), dtype=np.float32)
    values, vectors = descramble.eigh(c, UPLO="U", threads=1)
    e: EighResult = descramble.eigh(c)
    s: SVDResult = descramble.svd(x, full_matrices=False)
    u, sv, vh = descramble.svd(x, k=2, seed=3)
    top: np.ndarray = s.S
    assert values.shape == e.eigenvalues.shape and vectors.shape == e.eigenvectors.shape
    assert c_weighted.shape == c.shape and top.ndim == sv.ndim == 1 and u.shape == (len(x), 2) and vh.shape == (2, x.shape[1])


def smooth_operators(m: int) -> Smoothness:
    a: Smoothness = smoothness.fourier(m, order=2)
    b: Smoothness = smoothness.finite_difference(m, order=1, circular=True)
    c: Smoothness = smoothness.from_gram(a.gram)
    values, basis = b.basis()
    groups: List[np.ndarray] = c.degenerate()
    analytic: bool = a.analytic
    name: str = a.name
    size: int = a.size
    assert basis.shape == (m, m) and values.shape == (m,) and isinstance(groups, list) and name and size == m and analytic
    return a


def layer(x: np.ndarray, W: np.ndarray, bias: np.ndarray, s: Smoothness) -> Descrambler:
    d: Descrambler = descramble.descramble(W, data=x, bias=bias, smoothness=s)
    d2 = descramble.descramble(W, autocorrelation=descramble.accumulate(x), bias=bias, smoothness="fourier", order=2)
    d3 = descramble.descramble(W[:, : W.shape[0]], criterion="diagonal")
    d4 = descramble.descramble(W, data=x, bias=0, progress=False)  # bias=0: the layer has no bias
    n_samples: Optional[int] = d4.n_samples
    P: np.ndarray = d.P
    PW: Optional[np.ndarray] = d.weights
    loss: float = d.loss
    bound: float = d.bound
    degenerate: List[Degeneracy] = d2.degenerate
    applied: np.ndarray = d.apply(W)
    stab: Stability = descramble.stability(W, x, bias=bias, progress=False)
    assert n_samples == len(x)
    assert P.shape == (W.shape[0],) * 2 and PW is not None and applied.shape == W.shape
    assert loss >= bound - 1e-9 * abs(bound) and isinstance(degenerate, list) and d3.criterion == "diagonal"
    assert stab is not None
    return d


def hidden(x: np.ndarray, W: np.ndarray, bias: np.ndarray) -> None:
    W2 = np.random.default_rng(1).normal(size=(3, W.shape[0]))
    layers: List[Tuple[np.ndarray, Optional[np.ndarray], str]] = [(W, bias, "tanh"), (W2, None, "relu")]
    h: HiddenAutocorrelations = descramble.hidden_autocorrelations(layers, x, chunk_rows=50, threads=1)
    inputs: Autocorrelation = h.input
    d = descramble.descramble(W2, hidden=h.post[1].autocorrelation())
    result: Convergence = descramble.convergence(W, x, bias=bias, sizes=[100, 200, len(x)], progress=False)
    assert d.P.shape == (3, 3) and len(result.n_samples) == 3 and inputs.count == len(x)


def files(W: np.ndarray, bias: np.ndarray) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "layer.npz")
        named: dict[str, Any] = {"fc1.weight": W, "fc1.bias": bias}
        np.savez(path, **named)
        arrays = io.load_weights(path)
        W_loaded, b_loaded, name = io.load_layer(path, "fc1")
        b_checked: Optional[np.ndarray] = b_loaded
        key: str = name
    assert set(arrays) >= {key} and W_loaded.shape == W.shape and b_checked is not None


def figures(d: Descrambler, W: np.ndarray) -> List[Any]:
    return [
        plot.weights(d, W, x=np.arange(W.shape[1], dtype=float), title="weights"),
        plot.singular_spectrum(d),
        plot.fourier_magnitude(d, W, sample_spacing=0.5),
    ]


def main() -> None:
    rng = np.random.default_rng(0)
    n, m = 8, 6
    x = rng.normal(size=(400, n)) * np.linspace(1.0, 2.0, n)
    W = rng.normal(size=(m, n))
    bias = rng.normal(size=m)
    version: str = descramble.__version__
    accumulators(x)
    numpy_like(x)
    s = smooth_operators(m)
    d = layer(x, W, bias, s)
    hidden(x, W, bias)
    files(W, bias)
    figures(d, W)
    try:
        descramble.eigh(np.full((2, 2), np.nan))
    except descramble.NonFiniteError:
        raise AssertionError("eigh raises numpy.linalg.LinAlgError for NaN") from None
    except np.linalg.LinAlgError:
        pass
    print(f"descramble {version}: public API OK")


if __name__ == "__main__":
    main()
