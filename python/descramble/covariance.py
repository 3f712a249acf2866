"""``descramble.cov``: a drop-in replacement for :func:`numpy.cov` on real data."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from . import _core
from ._validation import as_chunk, as_numpy, check_real_dtype


def _scatter_and_weight(X: np.ndarray, w: np.ndarray | None) -> tuple[np.ndarray, float]:
    """Centred scatter of the variables in the rows of ``X`` and the weight sum."""
    samples = as_chunk(X.T, name="m")  # a view: samples as rows, read in place
    acc = _core.Autocorrelation(samples.shape[1])
    acc.update(samples, w)
    return acc.scatter, acc.weight_sum


def _average_numpy(X: np.ndarray, w: np.ndarray | None, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """numpy.cov's first step, for data holding NaN or infinity (propagated as NumPy does).

    In NumPy's working precision ``dtype``: its float32 arithmetic warns where float64's does not.
    """
    X = X.astype(dtype)
    return X, np.average(X, axis=1, weights=w)


def _scatter_numpy(X: np.ndarray, avg: np.ndarray, w: np.ndarray | None) -> np.ndarray:
    """numpy.cov's own arithmetic after the average (``X`` from _average_numpy, centred in place)."""
    X -= avg[:, None]
    X_T = X.T if w is None else (X * w).T
    return np.dot(X, X_T)


def cov(
    m: Any,
    y: Any = None,
    rowvar: bool = True,
    bias: bool = False,
    ddof: int | None = None,
    fweights: Any = None,
    aweights: Any = None,
    *,
    dtype: Any = None,
) -> np.ndarray:
    """Estimate a covariance matrix, like :func:`numpy.cov`, computed by the C++ core.

    Same signature, results, dtypes, warnings, edge cases and exception types
    as :func:`numpy.cov` for real input: replace ``np.cov`` by
    ``descramble.cov`` and change nothing else. The data are read in place
    (no copy, no centred temporary), accumulated in float64 with per-block
    centring (docs/math.md §7), which is more accurate than NumPy for data with a
    large common offset.

    Parameters
    ----------
    m : array_like
        1-D or 2-D array of variables and observations. With ``rowvar=True``
        each row is a variable and each column an observation.
    y : array_like, optional
        An additional set of variables, shaped like ``m``.
    rowvar : bool, default True
        If False, columns are variables and rows observations.
    bias : bool, default False
        Normalise by N (instead of N - 1); overridden by ``ddof``.
    ddof : int, optional
        Delta degrees of freedom; overrides ``bias``.
    fweights : array_like of int, optional
        Integer frequency weights, one per observation.
    aweights : array_like, optional
        Observation (reliability) weights, one per observation.
    dtype : data-type, optional
        Data type of the result (float64 at least by default). Lower
        precisions round the input first, as NumPy does; the arithmetic is
        float64 (extended precision for ``longdouble`` data, as in NumPy). A
        complex dtype gives the real result with zero imaginary parts.

    Returns
    -------
    ndarray
        The covariance matrix of the variables (squeezed, as in NumPy).

    Raises
    ------
    TypeError
        For complex input or a non-floating, non-complex ``dtype`` (NumPy
        raises a ``TypeError`` subclass there too, after its other checks),
        and as NumPy for non-integer ``fweights``.
    ValueError, RuntimeError, ZeroDivisionError
        Where :func:`numpy.cov` raises them (too many dimensions, bad
        ``ddof``, negative or mis-sized weights, weights summing to zero).

    Notes
    -----
    NaN or infinity in the data propagate to the result exactly as in
    NumPy; for such inputs, and for extended precision (``longdouble``) data,
    which NumPy computes in extended precision, the NumPy arithmetic is used.

    Examples
    --------
    >>> import numpy as np, descramble
    >>> x = np.array([[0, 2], [1, 1], [2, 0]]).T
    >>> descramble.cov(x)
    array([[ 1., -1.],
           [-1.,  1.]])
    """
    # numpy.cov's own ddof check, kept verbatim rather than _validation.as_ddof:
    # cov promises NumPy's exception types and messages, and NumPy lets int()
    # raise for strings, NaN or complex ("invalid literal for int()", ...).
    if ddof is not None and ddof != int(ddof):
        raise ValueError("ddof must be integer")

    m = np.asarray(as_numpy(m))
    check_real_dtype(m.dtype, "m")
    if m.ndim > 2:
        raise ValueError("m has more than 2 dimensions")
    if y is not None:
        y = np.asarray(as_numpy(y))
        check_real_dtype(y.dtype, "y")
        if y.ndim > 2:
            raise ValueError("y has more than 2 dimensions")

    if dtype is None:
        dtype = np.result_type(m, np.float64) if y is None else np.result_type(m, y, np.float64)
    dtype = np.dtype(dtype)
    # A complex `dtype` on real input is computed in its real counterpart
    # (the imaginary parts are zero), as numpy.cov would; other non-floating
    # dtypes fail in _finish, after every check NumPy makes before failing.
    work_dtype = np.finfo(dtype).dtype if dtype.kind == "c" else dtype

    def _as_2d(a: np.ndarray) -> np.ndarray:
        # numpy.cov converts to `dtype` first; only a narrowing conversion
        # changes the values, and only then is a copy needed (the core reads
        # every real dtype in place and widens to float64 exactly as NumPy does).
        if not np.can_cast(a.dtype, work_dtype, "safe"):
            a = a.astype(work_dtype)
        return a.reshape(1, -1) if a.ndim < 2 else a

    X = _as_2d(m)
    if not rowvar and m.ndim != 1:
        X = X.T
    if X.shape[0] == 0:
        return np.array([]).reshape(0, 0)
    if y is not None:
        y2 = _as_2d(y)
        if not rowvar and y2.shape[0] != 1:
            y2 = y2.T
        X = np.concatenate((X, y2), axis=0)

    if ddof is None:
        ddof = 1 if bias == 0 else 0

    # Frequency and observation weights, checked exactly as numpy.cov does.
    w = None
    if fweights is not None:
        fweights = np.asarray(as_numpy(fweights), dtype=float)
        if not np.all(fweights == np.around(fweights)):  # numpy.cov checks this first
            raise TypeError("fweights must be integer")
        w = fweights = _sample_weights(fweights, "fweights", X.shape[1])
    if aweights is not None:
        aweights = _sample_weights(aweights, "aweights", X.shape[1])
        w = aweights if w is None else w * aweights

    n_obs = X.shape[1]
    if w is not None:
        if dtype.kind in "fc":
            # numpy.cov multiplies by the float64 weights: its result is at least float64.
            dtype = np.result_type(dtype, np.float64)
        w = np.ascontiguousarray(w, dtype=np.float64)
        # np.average's weight sum, in its precision: the aweights divisor
        # V1 - ddof * V2 / V1 can cancel, so it must be NumPy's to the last bit.
        w_sum = w.sum(dtype=np.longdouble if work_dtype == np.longdouble else np.float64)
        if w_sum == 0.0:
            raise ZeroDivisionError("Weights sum to zero, can't be normalized")
    else:
        w_sum = float(n_obs)
    scatter = None
    if n_obs == 0:
        X.mean(axis=1)  # NumPy's warnings for the mean of an empty slice
        scatter = np.zeros((X.shape[0], X.shape[0]))
    elif (w is None or np.isfinite(w).all()) and X.dtype.itemsize <= 8:
        # NumPy lets NaN weights through to a NaN result, and computes extended
        # precision data in extended precision, which the float64 core cannot.
        try:
            scatter, _ = _scatter_and_weight(X, w)
        except (_core.NonFiniteError, OverflowError):
            pass
    if scatter is None:
        # NaN or infinity in the data or weights, or extended precision data:
        # NumPy's arithmetic, and its warnings in its order (average,
        # "Degrees of freedom", the rest).
        X, avg = _average_numpy(X, w, work_dtype)
        fact = _normalisation(X, w, aweights, ddof, w_sum)
        _check_result_dtype(dtype)
        return _finish(_scatter_numpy(X, avg, w), fact, dtype)
    return _finish(scatter, _normalisation(X, w, aweights, ddof, w_sum), dtype)


def _sample_weights(values: Any, name: str, samples: int) -> np.ndarray:
    """numpy.cov's checks of fweights/aweights, with its exception types and messages."""
    weights = np.asarray(as_numpy(values), dtype=float)
    if weights.ndim > 1:
        raise RuntimeError(f"cannot handle multidimensional {name}")
    if weights.shape[0] != samples:
        raise RuntimeError(f"incompatible numbers of samples and {name}")
    if any(weights < 0):
        raise ValueError(f"{name} cannot be negative")
    return weights


def _normalisation(X: np.ndarray, w: np.ndarray | None, aweights: Any, ddof: int, w_sum: float) -> float:
    """numpy.cov's divisor (for aweights: V1 - ddof * V2 / V1)."""
    if w is None:
        fact = X.shape[1] - ddof
    elif ddof == 0:
        fact = w_sum
    elif aweights is None:
        fact = w_sum - ddof
    else:
        fact = w_sum - ddof * np.sum(w * aweights) / w_sum
    if fact <= 0:
        warnings.warn("Degrees of freedom <= 0 for slice", RuntimeWarning, stacklevel=3)
        fact = 0.0
    return fact


def _check_result_dtype(dtype: np.dtype) -> None:
    # Where numpy.cov fails for a non-floating dtype (a UFuncTypeError, a TypeError).
    if dtype.kind not in "fc":
        raise TypeError(f"dtype: cov computes in floating point, cannot return dtype {dtype}")


def _finish(scatter: np.ndarray, fact: float, dtype: np.dtype) -> np.ndarray:
    _check_result_dtype(dtype)
    c = scatter * np.true_divide(1, fact)
    return c.astype(dtype, copy=False).squeeze()
