"""descramble: closed-form descrambling of neural-network layers.

The C++ core streams data of any size into autocorrelation and covariance
matrices (docs/math.md §1, §7); this package is its NumPy-first API.

Main entry points
-----------------
Autocorrelation
    Streaming accumulator (update, merge, save/load, pickling).
autocorrelation, accumulate
    ``E[x x^T]`` (or the accumulator) of an array, a .npy/raw file, an HDF5 or
    zarr dataset, or an iterable of chunks.
cov
    Drop-in replacement for :func:`numpy.cov` on real data.
eigh, svd
    Spectral kernels (LAPACK in the core) with a deterministic sign convention.
smoothness
    Smoothness operators and their eigenbases (docs/math.md §4).
descramble, stability
    The closed-form descrambler (docs/math.md §3) and a split-half diagnostic.
hidden_autocorrelations
    Every hidden layer's autocorrelation from one pass over the data.
descramble_network
    Every hidden layer of a stack of dense layers descrambled, P_k W_k Q_{k-1}^T,
    from one pass over the data.
permute_network
    An equivalent stack of dense layers whose hidden units are in the
    smoothest order found (permutations, certified by their gap).
convergence
    The descrambler from the first N samples, for growing N, in one pass.
plot
    Figures of a descrambled layer (matplotlib, the ``plot`` extra).
io
    ``load_weights`` / ``load_layer``: .npy/.npz, PyTorch, MATLAB and ONNX files.
dask, torch
    ``import descramble.dask`` (Dask arrays, clusters) and
    ``import descramble.torch`` (PyTorch models); never imported by
    ``import descramble``.
cli
    The application: the ``descramble`` command, the demo (its problem and
    NumPy network), the report and the benchmarks; never imported by
    ``import descramble``.
DescrambleWarning (and subclasses)
    Warnings that carry their facts as attributes (:mod:`descramble.diagnostics`).
reference
    Plain NumPy reference implementations of every kernel, and the iterative
    descrambler the closed form replaces.
"""

from typing import TYPE_CHECKING
from importlib.metadata import PackageNotFoundError, version as _version

from . import _blas  # noqa: F401  (loads the core's OpenBLAS before the core)
from . import io, plot, reference, smoothness, sources
from ._core import InvalidWeightError, NonFiniteError
from .accumulator import Autocorrelation, accumulate, autocorrelation
if TYPE_CHECKING:  # type checkers see the function that calls on the module run
    from .convergence import convergence
else:
    from . import convergence  # the module, callable: descramble.convergence(W, data)
from .convergence import Convergence
from .covariance import cov
from .diagnostics import (ConstantDataWarning, DescrambleWarning, IgnoredArgumentWarning, MissingBiasWarning,
                          UnderdeterminedWarning)
from .descrambler import Degeneracy, Descrambler, Stability, descramble, stability
from .hidden import HiddenAutocorrelations, hidden_autocorrelations
from .linalg import eigh, svd
from .network import descramble_network
from .permute import PermutedNetwork, permute_network



def __getattr__(name: str):
    # descramble.dask and descramble.torch load on first use, so that
    # `import descramble` never imports Dask or PyTorch.
    if name in ("dask", "torch"):
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'descramble' has no attribute {name!r}")


try:
    __version__ = _version("descramble")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = [
    "Autocorrelation",
    "Convergence",
    "convergence",
    "io",
    "plot",
    "Degeneracy",
    "Descrambler",
    "HiddenAutocorrelations",
    "hidden_autocorrelations",
    "descramble_network",
    "permute_network",
    "PermutedNetwork",
    "Stability",
    "descramble",
    "eigh",
    "smoothness",
    "stability",
    "svd",
    "NonFiniteError",
    "InvalidWeightError",
    "DescrambleWarning",
    "UnderdeterminedWarning",
    "ConstantDataWarning",
    "IgnoredArgumentWarning",
    "MissingBiasWarning",
    "accumulate",
    "autocorrelation",
    "cov",
    "reference",
    "sources",
    "__version__",
]
