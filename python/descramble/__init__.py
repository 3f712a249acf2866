"""descramble: closed-form descrambling of neural-network layers.

The C++ core streams data of any size into autocorrelation and covariance
matrices (MATH.md §1, §7); this package is its NumPy-first API.

Main entry points
-----------------
Autocorrelation
    Streaming accumulator (update, merge, save/load, pickling).
autocorrelation
    ``E[x x^T]`` of an array or an iterable of chunks.
cov
    Drop-in replacement for :func:`numpy.cov` on real data.
reference
    Plain NumPy reference implementations of every kernel.
"""

from importlib.metadata import PackageNotFoundError, version as _version

from . import reference
from ._core import NonFiniteError
from .accumulator import Autocorrelation, autocorrelation
from .covariance import cov

try:
    __version__ = _version("descramble")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = ["Autocorrelation", "NonFiniteError", "autocorrelation", "cov", "reference", "__version__"]
