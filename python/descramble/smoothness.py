"""Smoothness operators along the neuron axis and their eigenbases (MATH.md §4).

A smoothness operator is a differentiation matrix ``D`` acting on the neuron
index; descrambling minimises ``sum_i ||D P y_i||^2 = tr(A P S P^T)`` with
``A = D^T D``. The closed form needs ``A``'s eigenbasis ``T`` with
eigenvalues ascending (smoothest first); where MATH.md §4 gives it
analytically, the C++ core builds it exactly in O(m^2), otherwise it comes
from the core's ``eigh``. NumPy versions of the matrices, for checking, are
in :mod:`descramble.reference`.

Constructors: :func:`fourier`, :func:`finite_difference`, :func:`from_matrix`,
:func:`from_gram`; :func:`resolve` turns a name, an object or a matrix into
one of these.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from . import _core
from ._validation import as_matrix, as_positive_int, as_symmetric

#: Relative tolerance under which eigenvalues count as equal (degenerate).
DEGENERACY_RTOL: float = _core.DEGENERACY_RTOL


def degenerate_groups(values: Any, rtol: float = DEGENERACY_RTOL) -> List[np.ndarray]:
    """Index groups (of 2 or more) of consecutive sorted values equal within ``rtol``.

    Parameters
    ----------
    values : array_like of shape (k,)
        Sorted (ascending or descending) values.
    rtol : float
        Values closer than ``rtol * max(|values|)`` (or ``rtol`` when all are
        zero) count as equal.

    Returns
    -------
    list of ndarray of int
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    return [np.asarray(g, dtype=np.intp) for g in _core.degenerate_groups(values, float(rtol))]


class Smoothness:
    """A smoothness operator on ``size`` neurons: ``matrix`` D, ``gram`` A = D^T D, and A's eigenbasis.

    Built by the C++ core; use the constructors :func:`fourier`,
    :func:`finite_difference`, :func:`from_matrix` and :func:`from_gram`
    rather than this class directly.

    Attributes
    ----------
    name : str
        What the operator is, e.g. ``"fourier(order=2)"``.
    size : int
        Number of neurons m.
    matrix : ndarray or None
        The differentiation matrix D (k x m), or None when built from A.
    gram : ndarray of shape (m, m)
        A = D^T D.
    analytic : bool
        True when the basis is built analytically rather than by ``eigh``.
    """

    def __init__(self, core: Any) -> None:
        self._core = core
        self.name: str = core.name
        self.size: int = int(core.size)
        self.gram: np.ndarray = np.array(core.gram)
        matrix = core.matrix
        self.matrix: Optional[np.ndarray] = None if matrix is None else np.array(matrix)
        self.analytic: bool = bool(core.analytic)

    def basis(self) -> Tuple[np.ndarray, np.ndarray]:
        """Eigenvalues of A (ascending: smoothest first) and the orthonormal eigenbasis T.

        Returns
        -------
        eigenvalues : ndarray of shape (m,)
        T : ndarray of shape (m, m)
            Columns are the eigenvectors, in the order of ``eigenvalues``.
        """
        return np.array(self._core.values), np.array(self._core.basis)

    def degenerate(self) -> List[np.ndarray]:
        """Groups of indices of (near-)equal eigenvalues, where T is not unique."""
        return degenerate_groups(self._core.values)

    def __repr__(self) -> str:
        return f"Smoothness({self.name}, size={self.size})"


def fourier(m: int, order: int = 2) -> Smoothness:
    """Fourier spectral differentiation of ``order`` on m points over [0, 2 pi).

    The matrix is Weideman & Reddy's ``fourdif(m, order)`` (the original
    descrambler used order 2): circulant, with the real Fourier modes as
    eigenvectors of A and eigenvalue ``k^(2 order)`` for frequency k, the
    cosine and sine of each 0 < k < m/2 sharing it (degenerate pairs).
    Quirk kept from ``fourdif``: for odd order and even m the Nyquist row is
    zero, so the Nyquist mode's eigenvalue is 0.

    Parameters
    ----------
    m : int
        Number of neurons.
    order : int, default 2
        Derivative order p >= 1.

    Returns
    -------
    Smoothness

    Raises
    ------
    ValueError
        When the largest eigenvalue (m/2)^(2p) exceeds 1e15: A = D^T D is
        built in float64, so its smoothest modes (eigenvalues 0 and 1) would
        drown in rounding.
    """
    return Smoothness(_core.fourier_smoothness(as_positive_int(m, "m"), as_positive_int(order, "order")))


def finite_difference(m: int, order: int = 1, circular: bool = False) -> Smoothness:
    """Finite differences of ``order`` along the neuron axis.

    * ``circular=False``: the ((m - order) x m) forward difference (0 x m
      when order >= m: nothing to smooth). For order 1 A is the path-graph
      Laplacian with eigenvalues ``4 sin^2(pi k / (2m))`` and the DCT-II
      vectors ``cos(pi k (j + 1/2) / m)`` as eigenvectors, all distinct (T
      unique up to sign). Higher orders use ``eigh``.
    * ``circular=True``: the circulant m x m difference ``(S - I)^order``, with
      eigenvalues ``(2 sin(pi k / m))^(2 order)`` and Fourier eigenvectors.

    Parameters
    ----------
    m : int
        Number of neurons.
    order : int, default 1
        Derivative order, at most 24 (eigenvalues up to 4^order must stay
        within float64's reach next to the smoothest modes).
    circular : bool, default False

    Returns
    -------
    Smoothness
    """
    return Smoothness(_core.finite_difference_smoothness(as_positive_int(m, "m"), as_positive_int(order, "order"),
                                                         bool(circular)))


def from_matrix(D: Any) -> Smoothness:
    """A smoothness operator from any differentiation matrix D (k x m); T from ``eigh(D^T D)``.

    Parameters
    ----------
    D : array_like of shape (k, m)

    Returns
    -------
    Smoothness
    """
    D = as_matrix(D, "D")
    if D.shape[1] < 1:
        raise ValueError("D: expected at least one column (neuron)")
    return Smoothness(_core.smoothness_from_matrix(D))


def from_gram(A: Any) -> Smoothness:
    """A smoothness operator from its Gram matrix A = D^T D (symmetric, positive semi-definite).

    Parameters
    ----------
    A : array_like of shape (m, m)

    Returns
    -------
    Smoothness

    Raises
    ------
    ValueError
        If A is not square, not symmetric, or has a negative eigenvalue.
    """
    A = as_symmetric(A, "A", rtol=1e-12)
    if A.shape[0] < 1:
        raise ValueError(f"A: expected at least a 1 x 1 matrix, got shape {A.shape}")
    return Smoothness(_core.smoothness_from_gram(A))


_NAMES: Dict[str, Callable[[int, int], Smoothness]] = {
    "fourier": lambda m, order: fourier(m, order),
    "fd": lambda m, order: finite_difference(m, order, circular=False),
    "finite_difference": lambda m, order: finite_difference(m, order, circular=False),
    "fd-circular": lambda m, order: finite_difference(m, order, circular=True),
}


def resolve(smoothness: Any, m: int, order: Optional[int] = None) -> Smoothness:
    """Turn ``smoothness`` (a name, a :class:`Smoothness` or a matrix D) into an operator on m neurons.

    Names: ``"fourier"`` (default order 2), ``"fd"`` / ``"finite_difference"``
    (default order 1), ``"fd-circular"`` (default order 1).

    Raises
    ------
    ValueError
        For an unknown name, or an operator of the wrong size.
    """
    if isinstance(smoothness, str):
        if smoothness not in _NAMES:
            raise ValueError(f"smoothness: unknown name {smoothness!r}; expected one of {sorted(_NAMES)}, "
                             "a Smoothness object or a matrix D")
        default = 2 if smoothness == "fourier" else 1
        s = _NAMES[smoothness](m, default if order is None else order)
    elif isinstance(smoothness, Smoothness):
        s = smoothness
    else:
        s = from_matrix(smoothness)
    if s.size != m:
        raise ValueError(f"smoothness: the operator acts on {s.size} neurons, the layer has {m}")
    return s
