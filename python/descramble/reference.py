"""Plain NumPy reference implementations of every kernel.

These are the obvious formulas, written for clarity, not speed. The tests
compare the C++ core against them and ``bench/`` times the core against them.
All take samples as rows (shape (N, n)) and compute in float64.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np


def _rows(data: Any) -> np.ndarray:
    x = np.asarray(data, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"data: expected a 2-D array (rows = samples), got shape {x.shape}")
    return x


def _weights(weights: Any, rows: int) -> np.ndarray:
    return np.ones(rows) if weights is None else np.asarray(weights, dtype=np.float64)


def mean(data: Any, weights: Any = None) -> np.ndarray:
    """Weighted mean of the rows: ``sum_i w_i x_i / sum_i w_i``."""
    x = _rows(data)
    w = _weights(weights, x.shape[0])
    return w @ x / w.sum()


def scatter(data: Any, weights: Any = None) -> np.ndarray:
    """Two-pass centred scatter ``sum_i w_i (x_i - mean)(x_i - mean)^T``."""
    x = _rows(data)
    w = _weights(weights, x.shape[0])
    c = x - mean(x, w)
    return (c * w[:, None]).T @ c


def autocorrelation(data: Any, weights: Any = None) -> np.ndarray:
    """Uncentred second moment ``E[x x^T] = sum_i w_i x_i x_i^T / sum_i w_i`` (docs/math.md §1)."""
    x = _rows(data)
    w = _weights(weights, x.shape[0])
    return (x * w[:, None]).T @ x / w.sum()


def covariance(data: Any, ddof: float = 1, weights: Any = None) -> np.ndarray:
    """Two-pass covariance ``scatter / (sum_i w_i - ddof)`` (frequency weights)."""
    x = _rows(data)
    w = _weights(weights, x.shape[0])
    return scatter(x, w) / (w.sum() - ddof)


def naive_covariance(data: Any) -> np.ndarray:
    """One-pass textbook formula ``E[x x^T] - mean mean^T`` (biased).

    Shown for contrast only: it cancels catastrophically when the data share
    a large offset (docs/math.md §7), which the accumulator is built to avoid.
    """
    x = _rows(data)
    m = x.mean(axis=0)
    return x.T @ x / x.shape[0] - np.outer(m, m)


def chunked_autocorrelation(chunks: Iterable[Any]) -> np.ndarray:
    """The NumPy loop users write for streams: ``sum_chunks c^T c / N``."""
    total = None
    rows = 0
    for chunk in chunks:
        c = np.asarray(chunk).astype(np.float64, copy=False)
        total = c.T @ c if total is None else total + c.T @ c
        rows += c.shape[0]
    if total is None or rows == 0:
        raise ValueError("chunks: no samples")
    return total / rows


# -- smoothness operators (docs/math.md §4) and the closed form (docs/math.md §3) -------------------


def fourdif(m: int, order: int = 2) -> np.ndarray:
    """Weideman & Reddy's Fourier spectral differentiation matrix of ``order``
    on m points over [0, 2 pi) (the m x m D of :func:`descramble.smoothness.fourier`),
    built from the FFT of the identity. For odd order and even m the Nyquist
    wave is zeroed, as in ``fourdif``."""
    n1 = (m - 1) // 2
    nyquist = [] if m % 2 else [(-m / 2) if order % 2 == 0 else 0.0]
    waves = np.concatenate([np.arange(0, n1 + 1), nyquist, np.arange(-n1, 0)])
    symbol = (1j * waves) ** order
    # Columns of D are the spectral derivative of the unit vectors.
    return np.real(np.fft.ifft(symbol[:, None] * np.fft.fft(np.eye(m), axis=0), axis=0))


def finite_difference_matrix(m: int, order: int = 1, circular: bool = False) -> np.ndarray:
    """The forward difference of ``order`` ((m - order) x m, 0 x m when
    order >= m), or with ``circular`` the m x m circulant ``(S - I)^order``
    with ``(S x)_j = x_{j+1}``."""
    if circular:
        shift = np.roll(np.eye(m), 1, axis=1)
        return np.linalg.matrix_power(shift - np.eye(m), order)
    D = np.eye(m)
    for _ in range(min(order, m)):
        D = D[1:] - D[:-1]
    return D


def finitediff(m: int, order: int = 1) -> np.ndarray:
    """The authors' circular central difference: a NumPy port of ``finitediff.m`` in
    github.com/ShashankSule/descrambling-NN (the D of
    ``descramble.smoothness.finite_difference(m, order, circular=True, scheme="central")``).

    As there: take the central-difference gradient along the rows of the
    (m + 2) x (m + 2) identity (MATLAB's ``gradient``: interior rows
    ``(x_{i+1} - x_{i-1}) / 2``), keep its inner m x m block, set the two
    wrap-around entries (first row, last column: -1/2; last row, first
    column: +1/2 -- written last, so for m <= 2 they overwrite the stencil),
    divide by m, and take the ``order``-th matrix power.
    """
    eye = np.eye(m + 2)
    gradient = np.zeros_like(eye)
    gradient[1:-1] = (eye[2:] - eye[:-2]) / 2  # only the interior rows are kept below
    D = gradient[1:m + 1, 1:m + 1].copy()
    D[0, -1] = -0.5
    D[-1, 0] = 0.5
    D = D / m
    return np.linalg.matrix_power(D, order)


def grid_difference_matrix(shape: Any, order: int = 1, circular: bool = False) -> np.ndarray:
    """The forward difference on a grid of hidden units (row-major ravel).

    The 1-D :func:`finite_difference_matrix` of each axis, Kronecker-multiplied with identities
    (``I (x) ... (x) D_a (x) ... (x) I``), stacked axis by axis.
    """
    shape = tuple(int(n) for n in shape)
    blocks = []
    for a, n in enumerate(shape):
        block = np.ones((1, 1))
        for b, nb in enumerate(shape):
            block = np.kron(block, finite_difference_matrix(n, order, circular) if b == a else np.eye(nb))
        blocks.append(block)
    return np.vstack(blocks)


def closed_form(A: Any, S: Any) -> dict:
    """The closed-form descrambler from ``numpy.linalg.eigh`` (docs/math.md §3):
    ``P = T U^T`` with A = T diag(lambda ascending) T^T, S = U diag(mu
    descending) U^T, the last column of U negated when det(P) = -1.

    Returns
    -------
    dict
        ``P``, ``loss`` (eta(P)), ``bound`` (sum_k lambda_k mu_k), ``basis`` (T),
        ``basis_values`` (lambda), ``components`` (U), ``spectrum`` (mu).
    """
    A = np.asarray(A, dtype=np.float64)
    S = np.asarray(S, dtype=np.float64)
    lam, T = np.linalg.eigh(A)
    mu, U = np.linalg.eigh(S)
    mu, U = mu[::-1], U[:, ::-1].copy()
    P = T @ U.T
    if np.linalg.det(P) < 0:
        U[:, -1] *= -1
        P = T @ U.T
    return {"P": P, "loss": eta(P, A, S), "bound": float(lam @ mu), "basis": T, "basis_values": lam,
            "components": U, "spectrum": mu}


# -- the descrambler (docs/math.md §2): loss, Cayley parametrisation, iterative optimiser ------


def eta(P: Any, A: Any, S: Any) -> float:
    """The smoothness loss ``eta(P) = tr(A P S P^T)`` (docs/math.md §2)."""
    P = np.asarray(P, dtype=np.float64)
    return float(np.trace(np.asarray(A) @ P @ np.asarray(S) @ P.T))


def _skew(q: Any, m: int) -> np.ndarray:
    """The skew-symmetric Q whose strict lower triangle (row by row) holds ``q``."""
    Q = np.zeros((m, m))
    Q[np.tril_indices(m, -1)] = q
    return Q - Q.T


def cayley(q: Any, m: int) -> np.ndarray:
    """``P = (I + Q)^{-1} (I - Q)`` for the skew-symmetric Q whose strict lower
    triangle (row by row) holds the m(m-1)/2 parameters ``q``."""
    Q = _skew(q, m)
    eye = np.eye(m)
    return np.linalg.solve(eye + Q, eye - Q)


def eta_and_gradient(q: Any, A: np.ndarray, S: np.ndarray) -> tuple:
    """eta(P(q)) and its gradient with respect to q (docs/math.md §2):

    ``G = -2 (I + Q)^{-T} A P S (I + P)^T``, ``d eta / d q = lower triangle of (G - G^T)``.
    """
    m = A.shape[0]
    Q = _skew(q, m)
    eye = np.eye(m)
    P = np.linalg.solve(eye + Q, eye - Q)
    APS = A @ P @ S
    value = float(np.sum(APS * P))  # tr(A P S P^T)
    G = -2.0 * np.linalg.solve((eye + Q).T, APS @ (eye + P).T)
    return value, (G - G.T)[np.tril_indices(m, -1)]


def descramble_iterative(
    hidden: Any,
    smoothness: Any,
    *,
    order: int | None = None,
    max_iter: int = 2000,
    tol: float = 1e-12,
    seed: int | None = None,
) -> dict:
    """The original numerical descrambler (Amey et al. 2021; docs/math.md §2).

    Minimises ``eta(P) = tr(A P S P^T)`` over the Cayley parametrisation
    ``P = (I + Q)^{-1} (I - Q)`` with the analytic gradient, by L-BFGS
    (SciPy, an optional dependency). As in the reference implementation, A
    and S are first scaled by ``m / ||.||_2`` (this does not move the
    minimiser); the loss reported is on the unscaled matrices.

    Parameters
    ----------
    hidden : array_like of shape (m, m)
        The hidden autocorrelation S.
    smoothness : str, Smoothness or array_like
        As in :func:`descramble.descramble`.
    order : int, optional
        Derivative order for a named smoothness.
    max_iter : int, default 2000
        L-BFGS iterations at most.
    tol : float, default 1e-12
        Relative tolerance on the (scaled) loss.
    seed : int, optional
        None starts from P = I; an integer starts from a random Q drawn from it.

    Returns
    -------
    dict
        ``P`` (m x m), ``loss`` (eta at P), ``iterations``, ``converged``.
    """
    try:
        from scipy.optimize import minimize
    except ImportError:  # pragma: no cover - exercised only without SciPy
        raise ImportError("descramble_iterative needs SciPy: pip install scipy") from None
    from .smoothness import resolve

    S = np.asarray(hidden, dtype=np.float64)
    m = S.shape[0]
    A = resolve(smoothness, m, order).gram
    A_scaled = A * (m / max(np.linalg.norm(A, 2), np.finfo(float).tiny))
    S_scaled = S * (m / max(np.linalg.norm(S, 2), np.finfo(float).tiny))
    n_params = m * (m - 1) // 2
    x0 = np.zeros(n_params) if seed is None else np.random.default_rng(seed).normal(scale=0.5, size=n_params)
    result = minimize(eta_and_gradient, x0, args=(A_scaled, S_scaled), jac=True, method="L-BFGS-B",
                      options={"maxiter": max_iter, "ftol": tol, "gtol": 1e-10, "maxcor": 30})
    P = cayley(result.x, m)
    return {"P": P, "loss": eta(P, A, S), "iterations": int(result.nit), "converged": bool(result.success)}
