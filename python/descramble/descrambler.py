"""The closed-form descrambler (MATH.md §2, §3, §5) and its diagnostics."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, List, NamedTuple, Optional

import numpy as np

from .accumulator import Autocorrelation, accumulate
from .linalg import eigh, svd
from .smoothness import Smoothness, degenerate_groups, resolve
from .sources import open_source


class Degeneracy(NamedTuple):
    """Indices where the descrambler is not unique (MATH.md §3).

    ``kind`` is ``"smoothness"`` (equal eigenvalues of A: the basis T may
    rotate inside the group) or ``"spectrum"`` (equal hidden variances mu:
    the components U may rotate inside the group). Two correct descramblers
    may differ there; compare them by loss and by subspace angles.
    """

    kind: str
    indices: np.ndarray


@dataclass
class Descrambler:
    """The result of :func:`descramble`.

    Attributes
    ----------
    P : ndarray of shape (m, m)
        The descrambler: orthogonal, det +1.
    weights : ndarray or None
        ``P @ W``, the descrambled weights, when W was given.
    loss : float
        For ``criterion="smooth"``: eta(P) = tr(A P S P^T), the smoothness
        loss at P (MATH.md §2). For ``"diagonal"``: ``-tr(P W)``.
    bound : float
        The lower bound of the loss over all orthogonal P: sum_k lambda_k mu_k
        for "smooth" (MATH.md §3), ``-sum(singular values)`` for "diagonal".
    basis : ndarray of shape (m, m)
        T, the smoothness eigenbasis (columns, smoothest first); for
        "diagonal", the right singular vectors V of W.
    basis_values : ndarray of shape (m,)
        lambda, A's eigenvalues (ascending); for "diagonal", empty.
    components : ndarray of shape (m, m)
        U, the principal directions of the hidden data (columns, largest
        variance first); for "diagonal", the left singular vectors of W.
    spectrum : ndarray of shape (m,)
        mu, the hidden variances along U (descending, zero-padded when
        rank < m); for "diagonal", the singular values of W.
    degenerate : list of Degeneracy
        Where the answer is not unique.
    hidden : ndarray of shape (m, m) or None
        S, the hidden autocorrelation the loss was evaluated on.
    smoothness : Smoothness or None
    criterion : str
    """

    P: np.ndarray
    weights: Optional[np.ndarray]
    loss: float
    bound: float
    basis: np.ndarray
    basis_values: np.ndarray
    components: np.ndarray
    spectrum: np.ndarray
    degenerate: List[Degeneracy] = field(default_factory=list)
    hidden: Optional[np.ndarray] = None
    smoothness: Optional[Smoothness] = None
    criterion: str = "smooth"

    def apply(self, W: Any) -> np.ndarray:
        """Descramble this layer's rows: ``P @ W`` (W of shape (m, n))."""
        W = _as_real_matrix(W, "W")
        if W.shape[0] != self.P.shape[0]:
            raise ValueError(f"W: expected {self.P.shape[0]} rows (hidden units), got {W.shape[0]}")
        return self.P @ W

    def apply_next(self, W_next: Any) -> np.ndarray:
        """Descramble the next layer's columns: ``W_next @ P.T`` (W_next of shape (k, m))."""
        W_next = _as_real_matrix(W_next, "W_next")
        if W_next.shape[1] != self.P.shape[0]:
            raise ValueError(f"W_next: expected {self.P.shape[0]} columns (hidden units), got {W_next.shape[1]}")
        return W_next @ self.P.T

    def __repr__(self) -> str:
        m = self.P.shape[0]
        name = self.smoothness.name if self.smoothness is not None else self.criterion
        return (f"Descrambler(m={m}, {name}, loss={self.loss:.6g}, bound={self.bound:.6g}, "
                f"degenerate groups={len(self.degenerate)})")


def _as_real_matrix(a: Any, name: str) -> np.ndarray:
    arr = np.asarray(a)
    if arr.dtype.kind == "c":
        raise TypeError(f"{name}: complex matrices are not supported")
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected a real matrix, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D matrix, got shape {arr.shape}")
    arr = arr.astype(np.float64, copy=False)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name}: contains NaN or infinity")
    return arr


def _as_symmetric(a: Any, name: str, size: Optional[int] = None) -> np.ndarray:
    arr = _as_real_matrix(a, name)
    if arr.shape[0] != arr.shape[1]:
        raise ValueError(f"{name}: expected a square matrix, got shape {arr.shape}")
    if size is not None and arr.shape[0] != size:
        raise ValueError(f"{name}: expected shape ({size}, {size}), got {arr.shape}")
    scale = max(float(np.abs(arr).max()), np.finfo(float).tiny)
    if np.abs(arr - arr.T).max() > 1e-10 * scale:
        raise ValueError(f"{name}: expected a symmetric matrix")
    return (arr + arr.T) / 2


def _orthogonal_det_plus_one(T: np.ndarray, U: np.ndarray) -> np.ndarray:
    """P = T U^T; if det(P) = -1, flip the last column of U (MATH.md §3: the
    last column's sign fixes det = +1; the loss is unchanged)."""
    P = T @ U.T
    if np.linalg.det(P) < 0:
        U[:, -1] *= -1
        P = T @ U.T
    return P


def _input_factor(W: np.ndarray, bias: Optional[np.ndarray], acc: Optional[Autocorrelation],
                  C: Optional[np.ndarray]) -> np.ndarray:
    """M = W~ L with L L^T = C~ (MATH.md §1, §3): the hidden autocorrelation is
    S = M M^T, and U comes from the SVD of M rather than from eigh(W C W^T),
    which would square the condition number."""
    if acc is not None:
        C = acc.autocorrelation()
    assert C is not None
    if bias is not None:
        # Augmented input x~ = [x; 1]: C~ = [[C, mean], [mean^T, 1]], W~ = [W b].
        mean = acc.mean if acc is not None else None
        n = C.shape[0]
        C_aug = np.empty((n + 1, n + 1))
        C_aug[:n, :n] = C
        C_aug[:n, n] = C_aug[n, :n] = mean
        C_aug[n, n] = 1.0
        C, W = C_aug, np.hstack([W, bias[:, None]])
    values, V = eigh(C)
    L = V * np.sqrt(np.clip(values, 0.0, None))  # C = L L^T; rounding negatives clipped
    return W @ L


def descramble(
    weights: Any = None,
    *,
    autocorrelation: Any = None,
    data: Any = None,
    bias: Any = None,
    hidden: Any = None,
    smoothness: Any = "fourier",
    order: Optional[int] = None,
    criterion: str = "smooth",
) -> Descrambler:
    """The closed-form descrambler of a layer (Sule, Spencer & Czaja; MATH.md §3).

    With A = T diag(lambda ascending) T^T (the smoothness operator) and
    S = U diag(mu descending) U^T (the hidden autocorrelation), ``P = T U^T``
    minimises eta(P) = tr(A P S P^T) over all orthogonal P, reaching the
    bound sum_k lambda_k mu_k: the largest principal component of the hidden
    data goes to the smoothest mode, the next to the next, and so on.

    Parameters
    ----------
    weights : array_like of shape (m, n), optional
        The layer's weights W (m hidden units, n inputs).
    autocorrelation : ndarray of shape (n, n) or Autocorrelation, optional
        E[x x^T] of the layer's input. With ``bias``, pass an
        :class:`Autocorrelation` (it carries the input mean).
    data : source, optional
        The layer's input samples (any source :func:`descramble.accumulate`
        takes), streamed once into an Autocorrelation.
    bias : array_like of shape (m,), optional
        The layer's bias b, handled exactly through the augmented input
        [x; 1] (MATH.md §1): the descrambler of the pre-activations W x + b.
    hidden : ndarray of shape (m, m) or Autocorrelation, optional
        The hidden autocorrelation S itself (for non-linear layers: record
        the hidden signals and accumulate them). ``weights`` is then optional
        and only descrambled.
    smoothness : str, Smoothness or array_like, default "fourier"
        ``"fourier"``, ``"fd"``, ``"fd-circular"``, a
        :mod:`descramble.smoothness` object, or a differentiation matrix D.
    order : int, optional
        Derivative order for a named smoothness (default 2 for "fourier",
        1 for finite differences).
    criterion : {"smooth", "diagonal"}, default "smooth"
        "diagonal": the maximum-diagonality descrambler of a square W,
        maximising tr(P W) over SO(m): P = V U^T from W = U Sigma V^T (the
        orthogonal Procrustes solution), with the Kabsch sign fix when
        det(V U^T) = -1.

    Returns
    -------
    Descrambler

    Raises
    ------
    ValueError, TypeError
        For missing or conflicting inputs, shape mismatches, non-finite or
        non-symmetric matrices, or an unknown smoothness name or criterion.

    Notes
    -----
    Deterministic: the same input gives the same P. Signs: T is fixed
    analytically (or by :func:`descramble.eigh`'s convention), every column
    of U has its largest-magnitude entry positive, except that the last
    column's sign is chosen to make det(P) = +1.
    """
    if criterion == "diagonal":
        if weights is None:
            raise ValueError("weights: criterion='diagonal' needs a square weight matrix")
        if any(x is not None for x in (autocorrelation, data, bias, hidden)):
            raise ValueError("criterion='diagonal' uses the weights only; drop autocorrelation/data/bias/hidden")
        return _diagonal(_as_real_matrix(weights, "weights"))
    if criterion != "smooth":
        raise ValueError(f"criterion: expected 'smooth' or 'diagonal', got {criterion!r}")

    W = None if weights is None else _as_real_matrix(weights, "weights")
    if hidden is not None:
        if autocorrelation is not None or data is not None or bias is not None:
            raise ValueError("hidden: pass either the hidden autocorrelation, or the input "
                             "(autocorrelation= or data=, with bias=), not both")
        S = hidden.autocorrelation() if isinstance(hidden, Autocorrelation) else _as_symmetric(hidden, "hidden")
        m = S.shape[0]
        if W is not None and W.shape[0] != m:
            raise ValueError(f"weights: expected {m} rows (the hidden size), got {W.shape[0]}")
        values, vectors = eigh(S)
        mu, U = values[::-1].copy(), vectors[:, ::-1].copy()
    else:
        if W is None:
            raise ValueError("weights: needed unless hidden= is given")
        if (autocorrelation is None) == (data is None):
            raise ValueError("pass exactly one of autocorrelation= (a matrix or an Autocorrelation) or data=")
        m, n = W.shape
        acc = None
        C = None
        if data is not None:
            acc = accumulate(data)
        elif isinstance(autocorrelation, Autocorrelation):
            acc = autocorrelation
        else:
            C = _as_symmetric(autocorrelation, "autocorrelation")
        width = acc.n_features if acc is not None else C.shape[0]
        if width != n:
            raise ValueError(f"autocorrelation: the input has {width} features, the weights have {n} columns")
        b = None
        if bias is not None:
            b = np.asarray(bias, dtype=np.float64)
            if b.shape != (m,):
                raise ValueError(f"bias: expected shape ({m},), got {b.shape}")
            if not np.isfinite(b).all():
                raise ValueError("bias: contains NaN or infinity")
            if acc is None:
                raise ValueError("bias: needs the input mean; pass an Autocorrelation or data= "
                                 "instead of an autocorrelation matrix")
        M = _input_factor(W, b, acc, C)
        U, sigma, _ = svd(M, full_matrices=True)
        mu = np.zeros(m)
        mu[: sigma.size] = sigma**2
        S = M @ M.T

    smooth = resolve(smoothness, m, order)
    lam, T = smooth.basis()
    P = _orthogonal_det_plus_one(T, U)
    with np.errstate(over="ignore", invalid="ignore"):
        loss = float(np.sum(smooth.gram * (P @ S @ P.T)))  # tr(A P S P^T), A and P S P^T symmetric
        bound = float(np.dot(lam, mu))
    if not (np.isfinite(loss) and np.isfinite(bound)):
        raise ValueError(f"the smoothness loss overflows float64 (loss {loss}, bound {bound}): "
                         "rescale the data or the weights")
    degenerate = [Degeneracy("smoothness", g) for g in smooth.degenerate()]
    degenerate += [Degeneracy("spectrum", g) for g in degenerate_groups(mu)]
    return Descrambler(
        P=P, weights=None if W is None else P @ W, loss=loss, bound=bound, basis=T, basis_values=lam,
        components=U, spectrum=mu, degenerate=degenerate, hidden=S, smoothness=smooth, criterion="smooth",
    )


def _diagonal(W: np.ndarray) -> Descrambler:
    if W.shape[0] != W.shape[1]:
        raise ValueError(f"weights: criterion='diagonal' needs a square matrix, got shape {W.shape}")
    U, sigma, Vt = svd(W)
    V = Vt.T.copy()
    # max tr(P W) = max tr(P U Sigma V^T) over orthogonal P: P = V U^T (Procrustes).
    if np.linalg.det(V @ U.T) < 0:  # Kabsch: SO(m) costs the smallest singular value
        V[:, -1] *= -1
    P = V @ U.T
    return Descrambler(
        P=P, weights=P @ W, loss=-float(np.trace(P @ W)), bound=-float(sigma.sum()), basis=V,
        basis_values=np.empty(0), components=U, spectrum=sigma,
        degenerate=[Degeneracy("spectrum", g) for g in degenerate_groups(sigma)], criterion="diagonal",
    )


class Stability(NamedTuple):
    """Split-half diagnostic of :func:`stability`.

    Attributes
    ----------
    loss_gap : float
        |eta_1 - eta_2| / mean(eta_1, eta_2) between the halves' descramblers.
    angles : ndarray of shape (m,)
        Angle in degrees between the halves' k-th components (within a
        degenerate group of the spectrum: the largest principal angle between
        the groups' subspaces). Small angles mean N is large enough for that
        component; large ones mark ill-determined components (small gaps
        between successive mu, MATH.md §5).
    first, second : Descrambler
        The descramblers of the two halves.
    """

    loss_gap: float
    angles: np.ndarray
    first: Descrambler
    second: Descrambler


def stability(weights: Any, data: Any, *, bias: Any = None, smoothness: Any = "fourier",
              order: Optional[int] = None) -> Stability:
    """Descramble two halves of the data (alternate rows) and compare (MATH.md §5).

    Parameters
    ----------
    weights : array_like of shape (m, n)
    data : source
        The layer's input samples: an array, a .npy file, a dataset or an
        iterable of chunks; rows are split between the halves alternately.
    bias, smoothness, order
        As in :func:`descramble`.

    Returns
    -------
    Stability
    """
    W = _as_real_matrix(weights, "weights")
    src = open_source(data)
    halves = [Autocorrelation(src.n_features), Autocorrelation(src.n_features)]
    for chunk, _ in src.chunks():
        halves[0].update(chunk[0::2])
        halves[1].update(chunk[1::2])
    if min(h.count for h in halves) == 0:
        raise ValueError("data: need at least two rows to split in halves")
    first, second = (descramble(W, autocorrelation=h, bias=bias, smoothness=smoothness, order=order)
                     for h in halves)
    angles = component_angles(first.components, second.components, first.spectrum)
    gap = abs(first.loss - second.loss) / max((first.loss + second.loss) / 2, np.finfo(float).tiny)
    return Stability(float(gap), angles, first, second)


def component_angles(U1: np.ndarray, U2: np.ndarray, spectrum: np.ndarray) -> np.ndarray:
    """Angles (degrees) between matching columns of U1 and U2, by subspace
    within degenerate groups of ``spectrum`` (sign and rotation free)."""
    m = U1.shape[1]
    angles = np.degrees(np.arccos(np.clip(np.abs(np.sum(U1 * U2, axis=0)), 0.0, 1.0)))
    for group in degenerate_groups(spectrum):
        # Principal angles: singular values of U1_g^T U2_g are their cosines.
        cosines = np.linalg.svd(U1[:, group].T @ U2[:, group], compute_uv=False)
        angles[group] = np.degrees(np.arccos(np.clip(cosines.min(), 0.0, 1.0)))
    return angles[:m]
