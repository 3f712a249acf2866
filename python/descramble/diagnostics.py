"""Warnings that prevent wrong science: what a result does not determine, and arguments that are ignored.

Every warning is a :class:`DescrambleWarning` (a :class:`UserWarning`)
carrying its facts as attributes, so that a caller (the command line, a
test) reads them as data rather than parsing the message. Silence one kind
with :func:`warnings.filterwarnings`, e.g.
``warnings.filterwarnings("ignore", category=descramble.MissingBiasWarning)``,
or turn them into errors with ``warnings.simplefilter("error",
descramble.DescrambleWarning)`` (pytest: ``-W error::descramble.DescrambleWarning``;
Python's own ``-W`` option cannot name them, as it resolves only modules
imported before the program starts).

Where the library checks what (see :func:`descramble.descramble`, "Warns"):

* :class:`UnderdeterminedWarning`: numerical rank r of the hidden
  autocorrelation below m, counting mu_k > m * eps * max(mu) (eps of float64,
  or of float32 for ``precision="mixed"`` statistics), and r <= N.
* :class:`ConstantDataWarning`: N >= 2 samples whose every feature has a
  standard deviation at most 64 eps times its RMS value.
* :class:`MissingBiasWarning`: input statistics without ``bias`` whose mean
  is more than 6 standard errors (and sqrt(eps) of the data's scale) from zero.
"""

from __future__ import annotations

import warnings
from typing import Optional

__all__ = [
    "DescrambleWarning",
    "UnderdeterminedWarning",
    "ConstantDataWarning",
    "IgnoredArgumentWarning",
    "MissingBiasWarning",
    "warn",
]


class DescrambleWarning(UserWarning):
    """Base class of descramble's warnings."""


class UnderdeterminedWarning(DescrambleWarning):
    """The hidden autocorrelation has rank < m: P is not determined beyond the rank (docs/math.md §3).

    Attributes
    ----------
    size : int
        m, the number of hidden units.
    rank : int
        The numerical rank of the hidden autocorrelation S.
    n_samples : int or None
        N, the samples S was estimated from, when known (N < m forces rank < m).
    """

    def __init__(self, message: str, *, size: int, rank: int, n_samples: Optional[int] = None) -> None:
        super().__init__(message)
        self.size, self.rank, self.n_samples = size, rank, n_samples


class ConstantDataWarning(DescrambleWarning):
    """Every sample is the same (zero variance): the data say nothing about the order of the units.

    Attributes
    ----------
    source : str
        What was constant (``"data"``, ``"hidden"``, a layer's name).
    """

    def __init__(self, message: str, *, source: str) -> None:
        super().__init__(message)
        self.source = source


class IgnoredArgumentWarning(DescrambleWarning):
    """An argument was given that has no effect here (e.g. ``order`` with a matrix smoothness).

    Attributes
    ----------
    argument : str
        The ignored argument's name.
    """

    def __init__(self, message: str, *, argument: str) -> None:
        super().__init__(message)
        self.argument = argument


class MissingBiasWarning(DescrambleWarning):
    """A layer with a bias is descrambled without it: the answer is that of ``W x``, not ``W x + b``.

    The authors' method always includes the bias (docs/math.md §1, the augmented
    input); leaving it out can change P by orders of magnitude on a trained layer.

    Attributes
    ----------
    layer : str
        The layer's name (or ``"weights"``).
    """

    def __init__(self, message: str, *, layer: str) -> None:
        super().__init__(message)
        self.layer = layer


def warn(warning: DescrambleWarning, stacklevel: int = 3) -> None:
    """Issue ``warning`` (stacklevel 3: the caller of the public function that calls this)."""
    warnings.warn(warning, stacklevel=stacklevel)
