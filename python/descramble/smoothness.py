"""Smoothness operators along the neuron axis and their eigenbases (MATH.md §4).

A smoothness operator is a differentiation matrix ``D`` acting on the neuron
index; descrambling minimises ``sum_i ||D P y_i||^2 = tr(A P S P^T)`` with
``A = D^T D``. The closed form needs ``A``'s eigenbasis ``T`` with
eigenvalues ascending (smoothest first); where MATH.md §4 gives it
analytically, it is built exactly in O(m^2), otherwise it comes from
:func:`descramble.eigh`.

Constructors: :func:`fourier`, :func:`finite_difference`, :func:`from_matrix`,
:func:`from_gram`; :func:`resolve` turns a name, an object or a matrix into
one of these.
"""

from __future__ import annotations

from typing import Any, Callable, List, Optional, Tuple

import numpy as np

from ._validation import as_positive_int
from .linalg import eigh

#: Relative tolerance under which eigenvalues count as equal (degenerate).
DEGENERACY_RTOL = 1e-9


def degenerate_groups(values: np.ndarray, rtol: float = DEGENERACY_RTOL) -> List[np.ndarray]:
    """Index groups (of 2 or more) of consecutive sorted values equal within ``rtol``.

    Parameters
    ----------
    values : ndarray
        Sorted (ascending or descending) values.
    rtol : float
        Values closer than ``rtol * max(|values|)`` (or ``rtol`` when all are
        zero) count as equal.

    Returns
    -------
    list of ndarray of int
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size < 2:
        return []
    tol = rtol * max(float(np.abs(values).max()), 1.0 if not np.any(values) else 0.0)
    groups: List[np.ndarray] = []
    start = 0
    for i in range(1, values.size + 1):
        if i == values.size or abs(values[i] - values[i - 1]) > tol:
            if i - start >= 2:
                groups.append(np.arange(start, i))
            start = i
    return groups


class Smoothness:
    """A smoothness operator on ``size`` neurons: ``matrix`` D, ``gram`` A = D^T D, and A's eigenbasis.

    Use the constructors :func:`fourier`, :func:`finite_difference`,
    :func:`from_matrix` and :func:`from_gram` rather than this class directly.

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
    """

    def __init__(self, name: str, gram: np.ndarray, matrix: Optional[np.ndarray] = None,
                 analytic_basis: Optional[Callable[[], Tuple[np.ndarray, np.ndarray]]] = None) -> None:
        self.name = name
        self.gram = gram
        self.matrix = matrix
        self.size = gram.shape[0]
        self._analytic_basis = analytic_basis
        self._basis: Optional[Tuple[np.ndarray, np.ndarray]] = None

    @property
    def analytic(self) -> bool:
        """True when :meth:`basis` is built analytically rather than by ``eigh``."""
        return self._analytic_basis is not None

    def basis(self) -> Tuple[np.ndarray, np.ndarray]:
        """Eigenvalues of A (ascending: smoothest first) and the orthonormal eigenbasis T.

        Returns
        -------
        eigenvalues : ndarray of shape (m,)
        T : ndarray of shape (m, m)
            Columns are the eigenvectors, in the order of ``eigenvalues``.
        """
        if self._basis is None:
            if self._analytic_basis is not None:
                self._basis = self._analytic_basis()
            else:
                values, vectors = eigh(self.gram)
                self._basis = (values, vectors)
        values, vectors = self._basis
        return values.copy(), vectors.copy()

    def degenerate(self) -> List[np.ndarray]:
        """Groups of indices of (near-)equal eigenvalues, where T is not unique."""
        return degenerate_groups(self.basis()[0])

    def __repr__(self) -> str:
        return f"Smoothness({self.name}, size={self.size})"


def _real_fourier_basis(m: int, frequencies: np.ndarray, eigenvalue: Callable[[np.ndarray], np.ndarray],
                        ) -> Tuple[np.ndarray, np.ndarray]:
    """Real Fourier modes on m points: the constant, cos/sin pairs, and the
    alternating Nyquist mode for even m; sorted by ``eigenvalue(frequency)``
    ascending (stable: within a frequency, cosine before sine)."""
    j = np.arange(m)
    columns, values, keys = [], [], []
    for k in range(0, m // 2 + 1):
        if k == 0:
            modes = [np.full(m, 1.0 / np.sqrt(m))]
        elif 2 * k == m:
            modes = [np.cos(np.pi * j) / np.sqrt(m)]
        else:
            modes = [np.cos(2 * np.pi * k * j / m) * np.sqrt(2.0 / m), np.sin(2 * np.pi * k * j / m) * np.sqrt(2.0 / m)]
        lam = float(eigenvalue(np.array([frequencies[k]]))[0])
        for index, mode in enumerate(modes):
            columns.append(mode)
            values.append(lam)
            keys.append((lam, k, index))
    order = sorted(range(len(keys)), key=lambda i: keys[i])
    T = np.column_stack([columns[i] for i in order])
    return np.array([values[i] for i in order]), T


#: Largest operator eigenvalue accepted next to the smoothest modes' 0 and 1
#: (float64 keeps about 16 digits).
_LARGEST_EIGENVALUE = 1e15


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
    m = as_positive_int(m, "m")
    order = as_positive_int(order, "order")
    largest = (m / 2.0) ** (2.0 * order)
    if largest > _LARGEST_EIGENVALUE:
        raise ValueError(f"order: fourier(order={order}) on {m} neurons has eigenvalues up to "
                         f"(m/2)^(2 order) = {largest:.1e}, beyond float64's reach next to the smoothest "
                         f"modes' 1 (at most {_LARGEST_EIGENVALUE:.0e}); use a lower order")
    n1 = (m - 1) // 2
    nyquist = [] if m % 2 else [(-m / 2) if order % 2 == 0 else 0.0]
    waves = np.concatenate([np.arange(0, n1 + 1), nyquist, np.arange(-n1, 0)])
    symbol = (1j * waves) ** order
    # Columns of D are the spectral derivative of the unit vectors.
    D = np.real(np.fft.ifft(symbol[:, None] * np.fft.fft(np.eye(m), axis=0), axis=0))
    freq = np.abs(np.concatenate([np.arange(0, n1 + 1), nyquist]))
    return Smoothness(
        f"fourier(order={order})", D.T @ D, D,
        lambda: _real_fourier_basis(m, freq, lambda k: k ** (2 * order)),
    )


def _difference_matrix(m: int, order: int) -> np.ndarray:
    D = np.eye(m)
    for _ in range(min(order, m)):
        D = D[1:] - D[:-1]
    return D


def finite_difference(m: int, order: int = 1, circular: bool = False) -> Smoothness:
    """Finite differences of ``order`` along the neuron axis.

    * ``circular=False``: the ((m - order) x m) forward difference. For order 1
      A is the path-graph Laplacian with eigenvalues ``4 sin^2(pi k / (2m))``
      and the DCT-II vectors ``cos(pi k (j + 1/2) / m)`` as eigenvectors, all
      distinct (T unique up to sign). Higher orders use ``eigh``.
    * ``circular=True``: the circulant m x m difference ``(S - I)^order``, with
      eigenvalues ``(2 sin(pi k / m))^(2 order)`` and Fourier eigenvectors.

    Parameters
    ----------
    m : int
        Number of neurons.
    order : int, default 1
    circular : bool, default False

    Returns
    -------
    Smoothness
    """
    m = as_positive_int(m, "m")
    order = as_positive_int(order, "order")
    if 4.0**order > _LARGEST_EIGENVALUE:  # eigenvalues up to 4^order, as for fourier()
        raise ValueError(f"order: a finite difference of order {order} has eigenvalues up to 4^order, beyond "
                         f"float64's reach next to the smoothest modes (at most {_LARGEST_EIGENVALUE:.0e}, "
                         "order <= 24); use a lower order")
    if circular:
        shift = np.roll(np.eye(m), 1, axis=1)  # (S x)_j = x_{j+1}
        D = np.linalg.matrix_power(shift - np.eye(m), order)
        freq = np.arange(0, m // 2 + 1, dtype=float)
        return Smoothness(
            f"finite_difference(order={order}, circular=True)", D.T @ D, D,
            lambda: _real_fourier_basis(m, freq, lambda k: (2 * np.sin(np.pi * k / m)) ** (2 * order)),
        )
    D = _difference_matrix(m, order)  # empty (0 x m) when order >= m: nothing to smooth
    basis = None
    if order == 1:
        def basis() -> Tuple[np.ndarray, np.ndarray]:
            k = np.arange(m)
            T = np.cos(np.pi * np.outer(np.arange(m) + 0.5, k) / m)
            T /= np.linalg.norm(T, axis=0)
            return 4 * np.sin(np.pi * k / (2 * m)) ** 2, T
    return Smoothness(f"finite_difference(order={order})", D.T @ D, D, basis)


def _as_real_matrix(a: Any, name: str) -> np.ndarray:
    arr = np.asarray(a)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected a real matrix, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D matrix, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name}: contains NaN or infinity")
    return arr


def from_matrix(D: Any) -> Smoothness:
    """A smoothness operator from any differentiation matrix D (k x m); T from ``eigh(D^T D)``.

    Parameters
    ----------
    D : array_like of shape (k, m)

    Returns
    -------
    Smoothness
    """
    D = _as_real_matrix(D, "D")
    if D.shape[1] < 1:
        raise ValueError("D: expected at least one column (neuron)")
    return Smoothness(f"matrix({D.shape[0]}x{D.shape[1]})", D.T @ D, D)


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
    A = _as_real_matrix(A, "A")
    if A.shape[0] != A.shape[1] or A.shape[0] < 1:
        raise ValueError(f"A: expected a square matrix, got shape {A.shape}")
    scale = max(float(np.abs(A).max()), np.finfo(float).tiny)
    if np.abs(A - A.T).max() > 1e-12 * scale:
        raise ValueError("A: expected a symmetric matrix (A = D^T D)")
    A = (A + A.T) / 2
    s = Smoothness(f"gram({A.shape[0]}x{A.shape[0]})", A)
    if s.basis()[0][0] < -1e-10 * scale:
        raise ValueError("A: expected a positive semi-definite matrix (A = D^T D), found a negative eigenvalue")
    return s


_NAMES = {
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
