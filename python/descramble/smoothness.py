"""Smoothness operators on the hidden units of a layer and their eigenbases (docs/math.md §4).

Every smoothness operator acts on the hidden units (neurons) of the layer
being descrambled, i.e. on the rows of its weight matrix ``W`` (shape
(m, n)); the descrambler ``P`` reorders and mixes exactly those rows.

``D`` (``Smoothness.matrix``) is a *difference* operator on the neuron index;
descrambling minimises ``sum_i ||D P y_i||^2 = tr(A P S P^T)``, so the
penalty is its Gram matrix ``A = D^T D`` (``Smoothness.gram``), not ``D``
itself. Passing a Laplacian ``L`` as ``D`` penalises ``L^T L = L^2``, not
``L``: to use a Laplacian (or any positive semi-definite matrix) as the
penalty, pass ``from_gram(L)`` -- or, for hidden units on a grid,
:func:`grid`. The closed form needs ``A``'s eigenbasis ``T`` with
eigenvalues ascending (smoothest first); where docs/math.md §4 gives it
analytically, the C++ core builds it exactly in O(m^2), otherwise it comes
from the core's ``eigh``. NumPy versions of the matrices, for checking, are
in :mod:`descramble.reference`.

Constructors: :func:`fourier`, :func:`finite_difference`, :func:`grid`,
:func:`from_matrix`, :func:`from_gram`; :func:`resolve` turns a name, an
object or a matrix into one of these. Every operator pickles, and
:attr:`Smoothness.spec` with :func:`from_spec` rebuilds it from plain data
(JSON and an array).
"""

from __future__ import annotations

import json
import numbers
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import _core
from ._validation import as_matrix, as_positive_int, as_symmetric
from .diagnostics import IgnoredArgumentWarning, warn

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

    The operator acts on the hidden units of a layer (the rows of its
    weights W). Built by the C++ core; use the constructors :func:`fourier`,
    :func:`finite_difference`, :func:`grid`, :func:`from_matrix` and
    :func:`from_gram` rather than this class directly.

    Attributes
    ----------
    name : str
        What the operator is, e.g. ``"fourier(order=2)"``, ``"grid(4x8, order=1)"``.
    size : int
        Number of neurons m.
    matrix : ndarray or None
        The difference matrix D (k x m), or None when built from A.
    gram : ndarray of shape (m, m)
        A = D^T D, the penalty.
    analytic : bool
        True when the basis is built analytically rather than by ``eigh``.
    """

    def __init__(self, core: Any, spec: Dict[str, Any]) -> None:
        self._core = core
        self._spec = dict(spec)
        self.name: str = core.name
        self.size: int = int(core.size)
        self.gram: np.ndarray = np.array(core.gram)
        matrix = core.matrix
        self.matrix: Optional[np.ndarray] = None if matrix is None else np.array(matrix)
        self.analytic: bool = bool(core.analytic)

    @property
    def spec(self) -> Dict[str, Any]:
        """How to rebuild this operator, as JSON-able data (a new dict on every access).

        ``{"kind": "fourier", "m", "order"}``,
        ``{"kind": "finite_difference", "m", "order", "circular", "scheme"}``,
        ``{"kind": "grid", "shape" (a list), "order", "circular", "scheme"}``,
        ``{"kind": "matrix", "m"}`` (with the array D) or ``{"kind": "gram", "m"}``
        (with the array A). :func:`from_spec` takes it back, with :meth:`spec_array`.
        """
        spec = dict(self._spec)
        if "shape" in spec:
            spec["shape"] = list(spec["shape"])
        return spec

    def spec_array(self) -> Optional[np.ndarray]:
        """The array :func:`from_spec` needs besides :attr:`spec`: D for "matrix", A for "gram", else None."""
        kind = self._spec["kind"]
        if kind == "matrix":
            return self.matrix
        if kind == "gram":
            return self.gram
        return None

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

    def __reduce__(self) -> Tuple[Any, Tuple[Any, ...]]:
        return (from_spec, (self.spec, self.spec_array()))

    def __repr__(self) -> str:
        return f"Smoothness({self.name}, size={self.size})"


def fourier(m: int, order: int = 2) -> Smoothness:
    """Fourier spectral differentiation of ``order`` on m points over [0, 2 pi).

    Acts on the m hidden units of the layer (the rows of W). The matrix is
    Weideman & Reddy's ``fourdif(m, order)`` (the original descrambler used
    order 2): circulant, with the real Fourier modes as eigenvectors of
    A = D^T D and eigenvalue ``k^(2 order)`` for frequency k, the cosine and
    sine of each 0 < k < m/2 sharing it (degenerate pairs).
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
    return Smoothness(_core.fourier_smoothness(m, order), {"kind": "fourier", "m": m, "order": order})


_SCHEMES = ("forward", "central")


def _as_scheme(scheme: Any) -> str:
    if not isinstance(scheme, str):
        raise TypeError(f"scheme: expected 'forward' or 'central', got {scheme!r}")
    if scheme not in _SCHEMES:
        raise ValueError(f"scheme: expected 'forward' or 'central', got {scheme!r}")
    return scheme


def _as_bool(value: Any, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected True or False, got {value!r}")
    return bool(value)


def finite_difference(m: int, order: int = 1, circular: bool = False, scheme: str = "forward") -> Smoothness:
    """Finite differences of ``order`` along the neuron axis (the m hidden units, the rows of W).

    * ``scheme="forward"``, ``circular=False``: the ((m - order) x m) forward
      difference (0 x m when order >= m: nothing to smooth). For order 1 A is
      the path-graph Laplacian with eigenvalues ``4 sin^2(pi k / (2m))`` and
      the DCT-II vectors ``cos(pi k (j + 1/2) / m)`` as eigenvectors, all
      distinct (T unique up to sign). Higher orders use ``eigh``.
    * ``scheme="forward"``, ``circular=True``: the circulant m x m difference
      ``(S - I)^order``, ``(S x)_j = x_{j+1}``, with eigenvalues
      ``(2 sin(pi k / m))^(2 order)`` and Fourier eigenvectors.
    * ``scheme="central"`` (needs ``circular=True``): the operator of the
      authors' public code (``finitediff.m`` in ShashankSule/descrambling-NN):
      the circular central difference divided by the size,
      ``D_1 = (S - S^T) / (2 m)``, and ``D = D_1^order`` as there. Eigenvalues
      ``(sin(2 pi k / m) / m)^(2 order)`` with Fourier eigenvectors; the null
      space holds the constant and, for even m, the alternating mode, and
      frequencies k and m/2 - k share an eigenvalue (see
      :meth:`Smoothness.degenerate`). For m <= 2 it is ``finitediff.m``'s
      matrix exactly (its wrap-around entries overwrite the stencil):
      ``[[1/2]]`` for m = 1, ``[[0, -1/4], [1/4, 0]]`` for m = 2.
      ``circular=False`` is refused: the authors' code has no such operator.

    Parameters
    ----------
    m : int
        Number of neurons.
    order : int, default 1
        Derivative order, at most 24 (eigenvalues up to 4^order must stay
        within float64's reach next to the smoothest modes).
    circular : bool, default False
    scheme : {"forward", "central"}, default "forward"

    Returns
    -------
    Smoothness

    Raises
    ------
    ValueError
        For ``scheme="central"`` with ``circular=False``, an order above 24,
        or a central difference whose eigenvalues (below m^(-2 order)) near
        float64's underflow.
    """
    m = as_positive_int(m, "m")
    order = as_positive_int(order, "order")
    circular = _as_bool(circular, "circular")
    scheme = _as_scheme(scheme)
    spec = {"kind": "finite_difference", "m": m, "order": order, "circular": circular, "scheme": scheme}
    return Smoothness(_core.finite_difference_smoothness(m, order, circular, scheme), spec)


#: Most hidden units a grid may have (m x m matrices must stay addressable).
_MAX_GRID_UNITS = 2**31 - 1


def _as_shape(shape: Any) -> Tuple[int, ...]:
    if isinstance(shape, np.ndarray) and shape.ndim == 1:
        shape = shape.tolist()  # np.array([4, 8]) like (4, 8)
    if isinstance(shape, (str, bytes)) or not isinstance(shape, (tuple, list)):
        raise TypeError(f"shape: expected a tuple of positive integers such as (4, 8), got {shape!r}")
    if len(shape) == 0:
        raise ValueError("shape: expected at least one axis, got ()")
    out = []
    for a, n in enumerate(shape):
        if isinstance(n, (bool, np.bool_)) or not isinstance(n, numbers.Integral):
            raise TypeError(f"shape: axis {a} is {n!r}, expected a positive integer")
        if n < 1:
            raise ValueError(f"shape: axis {a} has size {n}, expected a positive size")
        out.append(int(n))
    m = int(np.prod(out, dtype=object))
    if m > _MAX_GRID_UNITS:
        raise ValueError(f"shape: the grid {tuple(out)} has more than 2**31 - 1 hidden units")
    # D (one block of rows per axis), A and T: (2 + axes) m x m float64 matrices.
    need = 8 * m * m * (2 + len(out))
    from .sources import _machine_memory

    memory = _machine_memory()
    if memory is not None and need > memory:
        raise ValueError(f"shape: the grid {tuple(out)} has {m} units; its operator needs {need / 2**30:.3g} GiB "
                         f"(m x m matrices), more than this machine's {memory / 2**30:.3g} GiB")
    return tuple(out)


def grid(shape: Sequence[int], order: int = 1, circular: bool = False, scheme: str = "forward") -> Smoothness:
    """Finite differences on a grid of hidden units (e.g. the units of a layer laid out as an image).

    The layer's m = prod(shape) hidden units (the rows of W) sit on a grid;
    unit ``u`` is at grid index ``np.unravel_index(u, shape)`` (row-major, C
    order; ``u = np.ravel_multi_index(index, shape)``). D stacks, axis by
    axis, the 1-D difference ``finite_difference(shape[a], order, circular,
    scheme)`` applied along that axis (``I (x) ... (x) D_a (x) ... (x) I``),
    so A = D^T D is the Kronecker sum of the 1-D Gram matrices -- for order 1
    and ``circular=False``, the grid-graph Laplacian. The eigenbasis is
    analytic (built in the core, no eigendecomposition of the m x m matrix):
    Kronecker products of the 1-D eigenvectors, eigenvalue the sum of
    theirs, sorted ascending, ties by the row-major multi-index of the 1-D
    modes. Equal sums (every square grid, for one) are degenerate: see
    :meth:`Smoothness.degenerate`. A 1-D grid ``(m,)`` is
    ``finite_difference(m, order, circular, scheme)``.

    Parameters
    ----------
    shape : tuple of int
        The grid's shape, each axis >= 1; prod(shape) is the layer's number
        of hidden units.
    order : int, default 1
        Derivative order along each axis.
    circular : bool, default False
        Periodic along every axis (a torus).
    scheme : {"forward", "central"}, default "forward"
        As in :func:`finite_difference` ("central" needs ``circular=True``).

    Returns
    -------
    Smoothness
        Named like ``"grid(4x8, order=1)"``.

    Raises
    ------
    TypeError, ValueError
        For a shape that is not a non-empty tuple of positive integers (or
        has more than 2**31 - 1 units), and as :func:`finite_difference`.
    """
    dims = _as_shape(shape)
    order = as_positive_int(order, "order")
    circular = _as_bool(circular, "circular")
    scheme = _as_scheme(scheme)
    spec = {"kind": "grid", "shape": list(dims), "order": order, "circular": circular, "scheme": scheme}
    return Smoothness(_core.grid_smoothness(list(dims), order, circular, scheme), spec)


def from_matrix(D: Any) -> Smoothness:
    """A smoothness operator from any difference matrix D (k x m); T from ``eigh(D^T D)``.

    D acts on the m hidden units (its columns are the rows of W); the
    penalty is D^T D. A Laplacian passed here is squared: pass it to
    :func:`from_gram` instead.

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
    return Smoothness(_core.smoothness_from_matrix(D), {"kind": "matrix", "m": int(D.shape[1])})


def from_gram(A: Any) -> Smoothness:
    """A smoothness operator from its Gram matrix, the penalty A = D^T D (symmetric, positive semi-definite).

    The way to use a Laplacian L (of a graph on the m hidden units) as the
    penalty: ``from_gram(L)``.

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
    return Smoothness(_core.smoothness_from_gram(A), {"kind": "gram", "m": int(A.shape[0])})


_SPEC_KEYS: Dict[str, Tuple[str, ...]] = {
    "fourier": ("m", "order"),
    "finite_difference": ("m", "order", "circular", "scheme"),
    "grid": ("shape", "order", "circular", "scheme"),
    "matrix": ("m",),
    "gram": ("m",),
}


def from_spec(spec: Any, array: Any = None) -> Smoothness:
    """Rebuild an operator from :attr:`Smoothness.spec` (and, for "matrix"/"gram", the array D or A).

    Parameters
    ----------
    spec : dict or str
        The spec dict, or its JSON text.
    array : array_like, optional
        D (k x m) for ``kind="matrix"``, A (m x m) for ``kind="gram"``;
        must be None for the other kinds.

    Returns
    -------
    Smoothness
        Equal to the operator the spec came from (name, size, gram, matrix and
        basis identical).

    Raises
    ------
    ValueError, TypeError
        For an unknown kind, missing or unexpected keys, bad values, or an
        array missing, superfluous or of the wrong size.
    """
    if isinstance(spec, str):
        try:
            spec = json.loads(spec)
        except ValueError as exc:
            raise ValueError(f"spec: not valid JSON ({exc})") from None
    if not isinstance(spec, dict):
        raise TypeError(f"spec: expected a dict (Smoothness.spec), got {type(spec).__name__}")
    kind = spec.get("kind")
    if kind not in _SPEC_KEYS:
        raise ValueError(f"spec: unknown kind {kind!r}; expected one of {sorted(_SPEC_KEYS)}")
    keys = _SPEC_KEYS[kind]
    missing = [k for k in keys if k not in spec]
    if missing:
        raise ValueError(f"spec: kind {kind!r} needs the key {missing[0]!r}")
    extra = sorted(set(spec) - set(keys) - {"kind"})
    if extra:
        raise ValueError(f"spec: unexpected key {extra[0]!r} for kind {kind!r}")
    if kind in ("matrix", "gram"):
        if array is None:
            raise ValueError(f"array: kind {kind!r} needs its array ({'D' if kind == 'matrix' else 'A'})")
        m = as_positive_int(spec["m"], "spec['m']")
        s = from_matrix(array) if kind == "matrix" else from_gram(array)
        if s.size != m:
            raise ValueError(f"array: the spec says {m} neurons, the array has {s.size}")
        return s
    if array is not None:
        raise ValueError(f"array: kind {kind!r} takes no array")
    if kind == "fourier":
        return fourier(spec["m"], spec["order"])
    if kind == "finite_difference":
        return finite_difference(spec["m"], spec["order"], spec["circular"], spec["scheme"])
    return grid(spec["shape"], spec["order"], spec["circular"], spec["scheme"])


_NAMES: Dict[str, Callable[[int, int], Smoothness]] = {
    "fourier": lambda m, order: fourier(m, order),
    "fd": lambda m, order: finite_difference(m, order, circular=False),
    "finite_difference": lambda m, order: finite_difference(m, order, circular=False),
    "fd-circular": lambda m, order: finite_difference(m, order, circular=True),
}


def resolve(smoothness: Any, m: int, order: Optional[int] = None) -> Smoothness:
    """Turn ``smoothness`` (a name, a :class:`Smoothness` or a matrix D) into an operator on m neurons.

    Names: ``"fourier"`` (default order 2), ``"fd"`` / ``"finite_difference"``
    (default order 1), ``"fd-circular"`` (default order 1). A grid needs its
    shape: pass a :func:`grid` object. A matrix is taken as the difference
    operator D (penalty D^T D); for a penalty A itself, pass ``from_gram(A)``.

    Warns
    -----
    IgnoredArgumentWarning
        When ``order`` is given with a Smoothness object or a matrix, which
        carry their own order (``argument="order"``).

    Raises
    ------
    ValueError
        For an unknown name, or an operator of the wrong size.
    """
    if isinstance(smoothness, str):
        if smoothness not in _NAMES:
            raise ValueError(f"smoothness: unknown name {smoothness!r}; expected one of {sorted(_NAMES)}, "
                             "a Smoothness object (e.g. descramble.smoothness.grid(shape)) or a matrix D")
        default = 2 if smoothness == "fourier" else 1
        s = _NAMES[smoothness](m, default if order is None else order)
    else:
        if order is not None:
            what = "a Smoothness object" if isinstance(smoothness, Smoothness) else "a matrix D"
            warn(IgnoredArgumentWarning(
                f"order={order!r} is ignored: the smoothness is {what}, and the operator's own order is used "
                "(order applies to a named smoothness such as 'fourier' or 'fd')", argument="order"))
        s = smoothness if isinstance(smoothness, Smoothness) else from_matrix(smoothness)
    if s.size != m:
        raise ValueError(f"smoothness: the operator acts on {s.size} neurons, the layer has {m}")
    return s
