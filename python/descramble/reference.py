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
    """Uncentred second moment ``E[x x^T] = sum_i w_i x_i x_i^T / sum_i w_i`` (MATH.md §1)."""
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
    a large offset (MATH.md §7), which the accumulator is built to avoid.
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
