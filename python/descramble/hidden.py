"""Hidden autocorrelations of a stack of dense layers, in one pass over the data."""

from __future__ import annotations

from typing import Any, List, NamedTuple, Optional, Sequence

import numpy as np

from . import _core
from ._validation import as_numpy, as_threads
from .accumulator import Autocorrelation
from .sources import open_source, progress_bar

ACTIVATIONS = ("identity", "relu", "tanh", "sigmoid")


class HiddenAutocorrelations(NamedTuple):
    """The accumulators of :func:`hidden_autocorrelations`.

    Attributes
    ----------
    input : Autocorrelation
        The data (the first layer's input).
    pre : list of Autocorrelation
        Every layer's pre-activation ``W x + b``.
    post : list of Autocorrelation
        Every layer's output ``activation(W x + b)``.
    """

    input: Autocorrelation
    pre: List[Autocorrelation]
    post: List[Autocorrelation]


def _layer(layer: Any, index: int) -> tuple:
    name = f"layers[{index}]"
    try:
        W, b, activation = layer
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected a (weights, bias, activation) triple") from None
    W, b = as_numpy(W), None if b is None else as_numpy(b)
    W = np.asarray(W)
    if W.dtype.kind not in "biuf" or W.ndim != 2:
        raise ValueError(f"{name}: expected real 2-D weights, got dtype {W.dtype} and shape {W.shape}")
    b = np.zeros(W.shape[0]) if b is None else np.asarray(b)
    if b.dtype.kind not in "biuf" or b.shape != (W.shape[0],):
        raise ValueError(f"{name}: expected a real bias of shape ({W.shape[0]},), got shape {b.shape}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"{name}: activation must be one of {ACTIVATIONS}, got {activation!r}")
    return np.asfortranarray(W, dtype=np.float64), b.astype(np.float64), activation


def hidden_autocorrelations(
    layers: Sequence[Any],
    data: Any,
    *,
    chunk_rows: Optional[int] = None,
    dtype: Any = None,
    n_features: Optional[int] = None,
    progress: bool = False,
    threads: Optional[int] = None,
) -> HiddenAutocorrelations:
    """One pass over ``data`` through dense layers, accumulating every hidden autocorrelation.

    The forward pass runs chunk by chunk in the C++ core (float64); nothing
    but the chunk in flight and the accumulators is held in memory. The
    results feed :func:`descramble.descramble` (``hidden=...``) for non-linear
    layers.

    Parameters
    ----------
    layers : sequence of (W, b, activation)
        ``W`` of shape (outputs, inputs), ``b`` of shape (outputs,) or None,
        ``activation`` one of "identity", "relu", "tanh", "sigmoid". Each
        layer's inputs must equal the previous layer's outputs.
    data : source
        Input rows: any source :func:`descramble.accumulate` takes.
    chunk_rows : int, optional
        Rows handed to the core at a time.
    dtype, n_features : optional
        Element type and row width of a raw binary ``data`` file (as
        :func:`descramble.accumulate` takes them).
    progress : bool, default False
        Show a tqdm progress bar.
    threads : int, optional
        Threads for the products (default: every core).

    Returns
    -------
    HiddenAutocorrelations

    Raises
    ------
    TypeError, ValueError
        For malformed layers (naming the layer) or data. A NaN or infinity in
        the data raises :class:`descramble.NonFiniteError` whose ``.row`` is the
        row of ``data``; so does a finite row whose pre-activation overflows
        float64 in a layer (``.column`` None, the message naming the layer).
        A chunk that fails anywhere in the pass adds nothing to any
        accumulator.
    """
    if isinstance(layers, tuple) and len(layers) == 3 and not isinstance(layers[0], (tuple, list)):
        raise TypeError("layers: expected a sequence of (weights, bias, activation) triples; wrap one layer in a list")
    parsed = [_layer(layer, i) for i, layer in enumerate(layers)]
    if not parsed:
        raise ValueError("layers: expected at least one layer")
    core = _core.HiddenStatistics(parsed, as_threads(threads))
    src = open_source(data, chunk_rows=chunk_rows, dtype=dtype, n_features=n_features)
    if src.n_features != parsed[0][0].shape[1]:
        raise ValueError(
            f"data: expected {parsed[0][0].shape[1]} columns (the first layer's inputs), got {src.n_features}"
        )
    with progress_bar(progress, src.rows) as report:
        src.feed(lambda chunk, _, first_row, name: core.update(chunk, first_row, name), report)
    return HiddenAutocorrelations(
        Autocorrelation._wrap(core.input()),
        [Autocorrelation._wrap(core.pre(i)) for i in range(len(parsed))],
        [Autocorrelation._wrap(core.post(i)) for i in range(len(parsed))],
    )
