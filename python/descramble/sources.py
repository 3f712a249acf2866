"""Where samples come from: arrays and iterables of chunks.

Every source is turned into a sequence of ``(chunk, weights)`` pairs of
validated 2-D arrays (rows = samples) that the core reads in place.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Optional, Tuple

import numpy as np

from ._validation import as_chunk, as_positive_int, as_weights

Chunk = Tuple[np.ndarray, Optional[np.ndarray]]


def is_array_like(data: Any) -> bool:
    """True when ``data`` is one array (as NumPy would read it), not a stream of chunks.

    Arrays and objects exposing the array protocols are arrays. Lists and
    tuples are arrays too (nested sequences of numbers), unless every element
    is itself a 2-D array: then they are a sequence of chunks.
    """
    if isinstance(data, np.ndarray) or hasattr(data, "__array__") or hasattr(data, "__array_interface__"):
        return True
    if isinstance(data, (list, tuple)):
        return not (len(data) > 0 and all(isinstance(c, np.ndarray) and c.ndim == 2 for c in data))
    return False


def _split(chunk: np.ndarray, weights: np.ndarray | None, chunk_rows: int | None) -> Iterator[Chunk]:
    if chunk_rows is None or chunk.shape[0] <= chunk_rows:
        yield chunk, weights
        return
    for start in range(0, chunk.shape[0], chunk_rows):
        stop = start + chunk_rows
        yield chunk[start:stop], None if weights is None else weights[start:stop]


def iter_chunks(data: Any, *, weights: Any = None, chunk_rows: int | None = None) -> Iterator[Chunk]:
    """Yield ``(chunk, weights)`` pairs from an array or an iterable of chunks.

    Parameters
    ----------
    data : array_like or iterable of array_like
        One (N, n) array of samples, or an iterable (generator, iterator,
        list of 2-D arrays, ...) yielding (k, n) chunks with the same n.
    weights : array_like or iterable of array_like, optional
        Non-negative per-row weights: one (N,) array for an array, or an
        iterable yielding one (k,) array per chunk for an iterable.
    chunk_rows : int, optional
        Split chunks into views of at most this many rows (no copies).

    Yields
    ------
    chunk : ndarray of shape (k, n)
    weights : ndarray of shape (k,) or None
    """
    if chunk_rows is not None:
        chunk_rows = as_positive_int(chunk_rows, "chunk_rows")
    if is_array_like(data):
        arr = as_chunk(data, name="data")
        w = None if weights is None else as_weights(weights, arr.shape[0])
        yield from _split(arr, w, chunk_rows)
        return
    if not isinstance(data, Iterable) or isinstance(data, (str, bytes)):
        raise TypeError(
            "data: expected an array of shape (N, n_features) or an iterable of such chunks, "
            f"got {type(data).__name__}"
        )
    if weights is not None and (is_array_like(weights) or not isinstance(weights, Iterable)):
        raise TypeError("weights: with an iterable of chunks, pass an iterable of per-chunk weight arrays")
    weight_iter = None if weights is None else iter(weights)
    n_features = None
    for index, raw in enumerate(data):
        chunk = as_chunk(raw, n_features, name=f"data: chunk {index}")
        n_features = chunk.shape[1]
        w = None
        if weight_iter is not None:
            try:
                raw_w = next(weight_iter)
            except StopIteration:
                raise ValueError(f"weights: ran out after {index} chunks; need one weight array per chunk") from None
            w = as_weights(raw_w, chunk.shape[0], name=f"weights: chunk {index}")
        yield from _split(chunk, w, chunk_rows)
    if weight_iter is not None and next(weight_iter, None) is not None:
        raise ValueError("weights: more weight arrays than chunks")
