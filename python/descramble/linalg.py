"""Spectral kernels computed by the C++ core: ``eigh`` and ``svd``.

Signatures and results follow :func:`numpy.linalg.eigh` and
:func:`numpy.linalg.svd` for real 2-D input, with one addition: a
deterministic sign convention. Every eigenvector and every left singular
vector has its largest-magnitude entry positive (the first such entry on
ties); the matching right singular vector follows. Two calls on the same
input give identical results, and results do not flip sign between
platforms for the same matrix.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

import numpy as np

from . import _core
from ._validation import as_matrix, as_numpy, as_square, as_threads


class EighResult(NamedTuple):
    """Eigenvalues (ascending) and eigenvectors (columns), as numpy.linalg.eigh."""

    eigenvalues: np.ndarray
    eigenvectors: np.ndarray


class SVDResult(NamedTuple):
    """``a = U @ diag(S) @ Vh``, as numpy.linalg.svd."""

    U: np.ndarray
    S: np.ndarray
    Vh: np.ndarray


def _result_dtype(arr: np.ndarray) -> np.dtype:
    """float32 results for float32 input, float64 otherwise (as numpy.linalg)."""
    return np.dtype(np.float32) if arr.dtype == np.float32 else np.dtype(np.float64)


def eigh(a: Any, UPLO: str = "L", *, threads: Optional[int] = None) -> EighResult:
    """Eigendecomposition of a real symmetric matrix, like :func:`numpy.linalg.eigh`.

    Parameters
    ----------
    a : array_like of shape (M, M)
        Real symmetric matrix; only the triangle named by ``UPLO`` is read.
    UPLO : {"L", "U"}, default "L"
        Which triangle to read.
    threads : int, optional
        LAPACK threads (default: every core).

    Returns
    -------
    EighResult
        ``eigenvalues`` ascending, shape (M,); ``eigenvectors`` as columns,
        shape (M, M), each with its largest-magnitude entry positive.
        float32 input gives float32 results (computed in float64).

    Raises
    ------
    numpy.linalg.LinAlgError
        (a ``ValueError``) for a non-square, non-2-D or non-finite matrix.
    TypeError
        For complex or non-numeric input.
    """
    # numpy.linalg raises LinAlgError (a ValueError) for the shape and for NaN/inf.
    arr = np.asarray(as_numpy(a))
    dtype = _result_dtype(arr)
    arr = as_square(arr, "a", error=np.linalg.LinAlgError)
    if UPLO not in ("L", "U"):
        raise ValueError(f"UPLO: expected 'L' or 'U', got {UPLO!r}")
    m = np.array(arr, dtype=np.float64, order="F")
    if UPLO == "U":  # the core reads the lower triangle
        m = np.asfortranarray(m.T)
    values, vectors = _core.eigh(m, as_threads(threads))
    return EighResult(values.astype(dtype, copy=False), vectors.astype(dtype, copy=False))


def svd(
    a: Any,
    full_matrices: bool = False,
    *,
    k: Optional[int] = None,
    seed: Optional[int] = None,
    oversampling: int = 10,
    power_iterations: int = 4,
    threads: Optional[int] = None,
) -> SVDResult:
    """Singular value decomposition, like :func:`numpy.linalg.svd` (thin by default).

    Parameters
    ----------
    a : array_like of shape (M, N)
        Real matrix.
    full_matrices : bool, default False
        Return U of shape (M, M) and Vh of shape (N, N) (exact SVD only).
        Unlike NumPy the default is the thin SVD, which is what the
        descrambler needs.
    k : int, optional
        Compute only the leading ``k`` singular triplets by a randomised SVD
        (Halko, Martinsson & Tropp 2011): a Gaussian sketch of
        ``k + oversampling`` columns, ``power_iterations`` rounds of
        re-orthonormalised power iteration, then an exact SVD of the small
        projection. Much faster than the full SVD when ``k << min(M, N)``;
        the error in each singular value is of the order of the
        ``(k + oversampling + 1)``-th singular value times
        ``(sigma_{k+oversampling+1} / sigma_k)^(2 power_iterations)``.
    seed : int, optional
        Seed of the sketch (with ``k``); default 0, so results are reproducible.
    oversampling, power_iterations : int
        Parameters of the randomised SVD (with ``k``).
    threads : int, optional
        BLAS/LAPACK threads (default: every core).

    Returns
    -------
    SVDResult
        ``U`` (M, K), ``S`` (K,) descending, ``Vh`` (K, N), with K = min(M, N)
        or ``k``; each column of U has its largest-magnitude entry positive.

    Raises
    ------
    numpy.linalg.LinAlgError
        (a ``ValueError``) for non-2-D or non-finite input.
    ValueError
        For ``k`` out of range, or ``full_matrices`` with ``k``.
    """
    arr = np.asarray(as_numpy(a))
    dtype = _result_dtype(arr)
    arr = as_matrix(arr, "a", error=np.linalg.LinAlgError)
    m = np.array(arr, dtype=np.float64, order="F")
    if k is None:
        if seed is not None:
            raise ValueError("seed: only used by the randomised SVD (pass k)")
        u, s, vt = _core.svd(m, bool(full_matrices), as_threads(threads))
    else:
        if full_matrices:
            raise ValueError("full_matrices: not available with k (a truncated SVD)")
        if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)):
            raise TypeError(f"k: expected an integer, got {k!r}")
        if not 1 <= k <= min(arr.shape):
            raise ValueError(f"k: expected 1 <= k <= min(a.shape) = {min(arr.shape)}, got {k}")
        seed = 0 if seed is None else int(seed)
        if seed < 0:
            raise ValueError(f"seed: expected a non-negative integer, got {seed}")
        u, s, vt = _core.truncated_svd(m, int(k), seed, int(oversampling), int(power_iterations), as_threads(threads))
    return SVDResult(u.astype(dtype, copy=False), s.astype(dtype, copy=False), vt.astype(dtype, copy=False))
