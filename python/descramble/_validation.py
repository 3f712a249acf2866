"""Input validation shared by the public API: precise messages, no copies
unless the core cannot read the data in place."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

# dtype kinds the core reads directly: bool, signed and unsigned integers, floats.
_REAL_KINDS = "biuf"


def as_positive_int(value: Any, name: str) -> int:
    """Return ``value`` as an ``int`` >= 1, or raise naming ``name``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected a positive integer, got {value!r}")
    if value < 1:
        raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    return int(value)


def as_threads(threads: Any) -> int:
    """The core's thread count for ``threads``: 0 (every core) for None, else a positive int."""
    return 0 if threads is None else as_positive_int(threads, "threads")


def check_real_dtype(dtype: np.dtype, name: str) -> None:
    """Raise TypeError unless ``dtype`` holds real numbers (bool, int, float)."""
    if dtype.kind == "c":
        raise TypeError(
            f"{name}: complex input (dtype {dtype}) is not supported; "
            "pass the real and imaginary parts as separate features"
        )
    if dtype.kind not in _REAL_KINDS:
        raise TypeError(f"{name}: expected real numbers (bool, integer or float), got dtype {dtype}")


def as_chunk(chunk: Any, n_features: int | None = None, name: str = "chunk") -> np.ndarray:
    """Return ``chunk`` as a 2-D array of samples the core can read in place.

    Arrays of float64, float32, any integer width or bool pass through
    untouched, in any memory order or striding. Only float16, extended
    precision and non-native byte order are converted (a copy).
    """
    if isinstance(chunk, (str, bytes)):
        raise TypeError(f"{name}: expected a 2-D array of numbers, got {type(chunk).__name__}")
    arr = np.asarray(chunk)
    check_real_dtype(arr.dtype, name)
    if arr.ndim != 2:
        width = "n_features" if n_features is None else n_features
        raise ValueError(
            f"{name}: expected a 2-D array of shape (rows, {width}) with one sample per row, "
            f"got shape {arr.shape}"
        )
    if n_features is not None and arr.shape[1] != n_features:
        raise ValueError(f"{name}: expected {n_features} columns (n_features), got {arr.shape[1]}")
    if arr.dtype.kind == "f" and arr.dtype.itemsize not in (4, 8):
        # float16 widens exactly to float32; extended precision rounds to float64.
        arr = arr.astype(np.float32 if arr.dtype.itemsize < 4 else np.float64)
    elif not arr.dtype.isnative or not arr.flags.aligned:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return arr


def as_weights(weights: Any, rows: int, name: str = "weights") -> np.ndarray:
    """Return ``weights`` as a contiguous float64 vector of ``rows`` entries.

    Finiteness and signs are checked by the core, which names the offending entry.
    """
    if isinstance(weights, (str, bytes)):
        raise TypeError(f"{name}: expected a 1-D array of numbers, got {type(weights).__name__}")
    w = np.asarray(weights)
    check_real_dtype(w.dtype, name)
    if w.ndim != 1 or w.shape[0] != rows:
        raise ValueError(f"{name}: expected a 1-D array of {rows} weights (one per row), got shape {w.shape}")
    return np.ascontiguousarray(w, dtype=np.float64)
