"""Second moments of Dask arrays, on one machine or a ``dask.distributed`` cluster.

Every row block of the array becomes one :class:`~descramble.Autocorrelation`
(a task that runs the C++ core on that block); the accumulators are then
combined by a tree of :meth:`~descramble.Autocorrelation.merge` tasks, ``split_every``
at a time, as Dask's own reductions do. Only accumulators travel between
workers, never data: each pickles to its lower triangle, ``n (n + 1) / 2``
float64 values plus ``2 n`` for the mean (``n`` features). The Chan merge is
exact (docs/math.md §7), so the result equals :func:`descramble.accumulate` on the
whole array in memory up to rounding (tested: 1e-12 relative), whatever the
chunking and whichever worker ran which block.

Dask is an optional dependency (``pip install 'dask[array,distributed]'``); it is
imported by the functions of this module, never by ``import descramble``.

Functions
---------
accumulate
    The :class:`~descramble.Autocorrelation` of a 2-D Dask array (or a
    ``dask.delayed`` one with ``compute=False``).
autocorrelation
    ``E[x x^T]`` of a 2-D Dask array.
covariance
    The covariance of a 2-D Dask array.

Examples
--------
>>> import dask.array as da, numpy as np, descramble.dask
>>> x = da.from_array(np.arange(24.0).reshape(8, 3), chunks=(3, 2))
>>> acc = descramble.dask.accumulate(x, scheduler="sync")
>>> acc.count
8
>>> np.allclose(acc.covariance(), np.cov(np.arange(24.0).reshape(8, 3), rowvar=False))
True
"""

from __future__ import annotations

import math
import numbers
from typing import TYPE_CHECKING, Any, Dict, List, Optional

import numpy as np

from ._validation import as_ddof, as_positive_int, check_real_dtype
from .accumulator import Autocorrelation, _as_precision

if TYPE_CHECKING:  # pragma: no cover - only for type checkers
    import dask.array
    from dask.delayed import Delayed

__all__ = ["accumulate", "autocorrelation", "covariance"]

_MISSING = "descramble.dask needs dask: pip install 'dask[array,distributed]'"


def _import_dask():
    """Import dask and dask.array, or raise an ImportError naming the extra."""
    try:
        import dask
        import dask.array as da
        import dask.base
    except ImportError as exc:  # pragma: no cover - exercised only without dask
        raise ImportError(_MISSING) from exc
    return dask, da


# -- tasks (module level, so that workers unpickle them by reference) ------------------------


def _block_accumulator(
    block: np.ndarray,
    weights: Optional[np.ndarray] = None,
    *,
    n: int,
    precision: str,
    threads: Optional[int],
    block_info: Optional[Dict[Any, Any]] = None,
) -> np.ndarray:
    """One row block -> one accumulator (in a 1-element object array).

    The core names the row of ``x``: it is told the block's first global row
    (``NonFiniteError.row``, ``InvalidWeightError.index``, ``.source == "x"``).
    With unknown chunk sizes the block's start is unknown: the source is then
    ``"x (row block 5)"`` and the row is counted within the block.
    """
    index, first_row, source = 0, 0, "x"
    if block_info:
        index = block_info[None]["chunk-location"][0]
        start = block_info[0]["array-location"][0][0]
        if math.isnan(start):  # unknown chunk sizes
            source = f"x (row block {index})"
        else:
            first_row = int(start)
    if np.ndim(block) == 2 and block.shape[1] != n:  # a block that is not what its array declares
        raise ValueError(f"x: row block {index}: expected {n} columns (n_features), got {block.shape[1]}")
    acc = Autocorrelation(n, precision=precision, threads=threads)
    acc.update(block, None if weights is None else weights[:, 0], first_row=first_row, source=source)
    out = np.empty(1, dtype=object)
    out[0] = acc
    return out


def _merge(parts: List[Any], n: int, precision: str, threads: Optional[int]) -> Autocorrelation:
    """A new accumulator holding every part; the parts are not touched.

    Dask may hand the same in-memory result to a retried task or keep it for
    another consumer (``persist``, a recomputed graph), so inputs must stay
    intact. Merging into a fresh, empty accumulator costs one O(n^2) copy of
    the first part (``merge`` into an empty accumulator is an exact copy),
    negligible next to the O(rows n^2) block products.
    """
    out = Autocorrelation(n, precision=precision, threads=threads)
    for part in parts:
        out.merge(part[0] if isinstance(part, np.ndarray) else part)  # leaves are object arrays
    return out


# -- validation --------------------------------------------------------------------------------


def _as_dask_matrix(x: Any, da: Any) -> "dask.array.Array":
    if not isinstance(x, da.Array):
        hint = (
            "; for in-memory data use descramble.accumulate, or wrap it with dask.array.from_array"
            if isinstance(x, np.ndarray)
            else ""
        )
        raise TypeError(f"x: expected a 2-D dask array, got {type(x).__module__}.{type(x).__qualname__}{hint}")
    check_real_dtype(np.dtype(x.dtype), "x")
    if x.ndim != 2:
        raise ValueError(
            f"x: expected a 2-D dask array of shape (rows, n_features) with one sample per row, got shape {x.shape}"
        )
    if math.isnan(x.shape[1]):
        raise ValueError("x: the number of columns is unknown; call x.compute_chunk_sizes() first")
    if x.shape[1] < 1:
        raise ValueError("x: expected at least one feature (column), got 0")
    return x


def _as_dask_weights(weights: Any, x: "dask.array.Array", da: Any) -> "dask.array.Array":
    row_chunks = x.chunks[0]
    rows_known = not any(math.isnan(c) for c in row_chunks)
    if isinstance(weights, (str, bytes)) or not (isinstance(weights, da.Array) or hasattr(weights, "__len__")):
        raise TypeError(f"weights: expected a 1-D dask array or array of numbers, got {type(weights).__name__}")
    if not isinstance(weights, da.Array):
        weights = np.asarray(weights)
    check_real_dtype(np.dtype(weights.dtype), "weights")
    if weights.ndim != 1:
        raise ValueError(f"weights: expected a 1-D array of one weight per row, got shape {weights.shape}")
    if not rows_known:
        raise ValueError(
            "weights: the row chunks of x have unknown sizes, so weights cannot be aligned with them; "
            "call x.compute_chunk_sizes() first"
        )
    rows = int(sum(row_chunks))
    if isinstance(weights, da.Array) and math.isnan(weights.shape[0]):
        raise ValueError("weights: the length is unknown; call weights.compute_chunk_sizes() first")
    if weights.shape[0] != rows:
        raise ValueError(f"weights: expected {rows} weights (one per row of x), got {weights.shape[0]}")
    if isinstance(weights, da.Array):
        return weights if weights.chunks[0] == row_chunks else weights.rechunk((row_chunks,))
    return da.from_array(weights, chunks=(row_chunks,))


def _as_split_every(split_every: Any, dask: Any) -> int:
    if split_every is None:
        split_every = dask.config.get("split_every", 4)
        if not isinstance(split_every, numbers.Integral) or isinstance(split_every, bool) or split_every < 2:
            split_every = 4  # dask's own default; a dict-valued config is per axis, not for us
    if isinstance(split_every, (bool, np.bool_)) or not isinstance(split_every, numbers.Integral):
        raise TypeError(f"split_every: expected an integer >= 2, got {split_every!r}")
    if split_every < 2:
        raise ValueError(f"split_every: expected an integer >= 2, got {split_every!r}")
    return int(split_every)


# -- public API --------------------------------------------------------------------------------


def accumulate(
    x: "dask.array.Array",
    *,
    weights: Any = None,
    precision: str = "float64",
    threads: Optional[int] = 1,
    split_every: Optional[int] = None,
    compute: bool = True,
    **compute_kwargs: Any,
) -> "Autocorrelation | Delayed":
    """The :class:`~descramble.Autocorrelation` of a 2-D Dask array.

    Each row block is accumulated by its own task; the accumulators are merged
    by a tree of tasks, ``split_every`` at a time. Only accumulators (never
    rows) move between workers, so this runs unchanged on a
    ``dask.distributed`` cluster: activate a ``distributed.Client`` and call it.

    Parameters
    ----------
    x : dask.array.Array of shape (N, n)
        Samples as rows; any real dtype (float, integer, bool), computed in
        float64 (or "mixed", see ``precision``). An array chunked along the
        columns is read by whole rows: the task of a row block joins its
        column blocks (as ``x.rechunk({1: -1})`` would), so it holds one row
        block of all ``n`` columns; choose row chunks of about 32 to 256 MiB
        (``rows * n * itemsize``). NumPy arrays are not accepted: use
        :func:`descramble.accumulate` for in-memory data.
    weights : dask.array.Array or array_like of shape (N,), optional
        Non-negative per-row (frequency) weights; rechunked to ``x``'s row
        chunks when they differ.
    precision : {"float64", "mixed"}, default "float64"
        Arithmetic of the block products (see :class:`~descramble.Autocorrelation`).
    threads : int or None, default 1
        Core threads inside each task. Dask already runs one task per worker
        thread (the threaded scheduler: one per core; ``distributed``:
        ``threads_per_worker`` per worker), so more would oversubscribe the
        cores. Raise it when Dask runs fewer tasks at a time than there are
        cores: with the ``"sync"`` scheduler, with fewer row blocks than
        cores, or with workers started as ``threads_per_worker=1`` on
        machines of ``k`` cores (then ``threads=k``). None: every core of the
        machine.
    split_every : int, optional
        Fan-in of the merge tree, at least 2; default: Dask's
        ``split_every`` config, else 4 (as Dask's reductions).
    compute : bool, default True
        False: return a ``dask.delayed`` object of the accumulator instead,
        to compute together with other work (``dask.compute(a, b)``); its
        methods are delayed too (``d.covariance()``). After ``.persist()``
        every ``compute()`` hands back the same accumulator object: take
        ``acc.copy()`` before updating it.
    **compute_kwargs
        Passed to ``dask.compute`` (e.g. ``scheduler="sync"``); only with
        ``compute=True``.

    Returns
    -------
    Autocorrelation or dask.delayed.Delayed
        The accumulator of every row (precision ``precision``, ``threads``
        None: further updates in this process use every core).

    Raises
    ------
    TypeError
        If ``x`` is not a Dask array, or ``x`` or ``weights`` is complex or not
        numeric; if ``threads`` or ``split_every`` is not an integer.
    ValueError
        If ``x`` is not 2-D or has no columns, ``weights`` has the wrong
        shape, or an argument is out of range. When the graph is computed,
        a block holding NaN or infinity raises
        :class:`descramble.NonFiniteError` (a ValueError) whose ``.row`` is
        the global row of ``x`` and ``.source`` is ``"x"`` (with unknown
        chunk sizes: ``"x (row block 5)"`` and the row within that block); a
        bad weight raises :class:`descramble.InvalidWeightError` whose
        ``.index`` is the global row.

    Examples
    --------
    >>> import dask.array as da, numpy as np, descramble.dask
    >>> x = da.random.default_rng(0).standard_normal((10_000, 4), chunks=(2_500, 4))
    >>> acc = descramble.dask.accumulate(x)
    >>> acc.count
    10000
    """
    dask, da = _import_dask()
    from dask.delayed import Delayed
    from dask.highlevelgraph import HighLevelGraph

    x = _as_dask_matrix(x, da)
    precision_name = "mixed" if _as_precision(precision) else "float64"
    threads = None if threads is None else as_positive_int(threads, "threads")
    fan_in = _as_split_every(split_every, dask)
    if not isinstance(compute, (bool, np.bool_)):
        raise TypeError(f"compute: expected True or False, got {compute!r}")
    if compute_kwargs and not compute:
        raise TypeError(f"compute_kwargs: only with compute=True, got {sorted(compute_kwargs)}")
    n = int(x.shape[1])
    w = None if weights is None else _as_dask_weights(weights, x, da)
    token = dask.base.tokenize(x, w, n, precision_name, threads, fan_in)

    # Leaves: one accumulator per row block, as a 1-D object array of one
    # accumulator per block. ``drop_axis=1`` joins the column blocks of a row
    # block inside its task (no separate rechunk tasks), and building the
    # leaves as array tasks lets Dask fuse them with the tasks producing the
    # blocks (e.g. ``(x - 1) * 2`` or ``from_array`` getters).
    arrays = [x] if w is None else [x, w[:, None]]
    leaves = da.map_blocks(
        _block_accumulator, *arrays, n=n, precision=precision_name, threads=threads,
        drop_axis=1, chunks=((1,) * x.numblocks[0],), dtype=object, meta=np.empty((0,), dtype=object),
        name=f"descramble-block-{token}",
    )
    blocks = leaves.to_delayed(optimize_graph=True)
    base = blocks[0].dask  # one optimised graph shared by every block
    level = [block.key for block in blocks]

    # The merge tree, ``fan_in`` at a time: a graph layer of plain tasks (much
    # faster to build than one dask.delayed call per merge for 10^4 blocks).
    layer: Dict[Any, Any] = {}
    depth = 0
    while len(level) > fan_in:
        depth += 1
        nxt = []
        for j, i in enumerate(range(0, len(level), fan_in)):
            key = (f"descramble-merge-{token}", depth, j)
            layer[key] = (_merge, list(level[i : i + fan_in]), n, precision_name, threads)
            nxt.append(key)
        level = nxt
    # The root always merges into a fresh accumulator with the default threads
    # (None), so the result does not keep the per-task setting.
    root = f"descramble-accumulate-{token}"
    layer[root] = (_merge, list(level), n, precision_name, None)
    graph = HighLevelGraph(
        {**base.layers, root: layer}, {**base.dependencies, root: set(base.layers)}
    )
    result = Delayed(root, graph)
    if not compute:
        return result
    (value,) = dask.compute(result, **compute_kwargs)
    return value


def autocorrelation(
    x: "dask.array.Array",
    *,
    weights: Any = None,
    precision: str = "float64",
    threads: Optional[int] = 1,
    split_every: Optional[int] = None,
    **compute_kwargs: Any,
) -> np.ndarray:
    """Autocorrelation (uncentred second moment) ``E[x x^T]`` of a 2-D Dask array.

    Parameters
    ----------
    x, weights, precision, threads, split_every, **compute_kwargs
        As for :func:`accumulate`.

    Returns
    -------
    ndarray of shape (n, n), float64
        ``(1/W) sum_i w_i x_i x_i^T``.

    Raises
    ------
    TypeError, ValueError
        As for :func:`accumulate`; ValueError also if no row has positive weight.

    Examples
    --------
    >>> import dask.array as da, numpy as np, descramble.dask
    >>> x = np.random.default_rng(0).normal(size=(1000, 4))
    >>> np.allclose(descramble.dask.autocorrelation(da.from_array(x, chunks=300)), x.T @ x / 1000)
    True
    """
    return accumulate(
        x, weights=weights, precision=precision, threads=threads, split_every=split_every, **compute_kwargs
    ).autocorrelation()


def covariance(
    x: "dask.array.Array",
    ddof: float = 1,
    *,
    weights: Any = None,
    precision: str = "float64",
    threads: Optional[int] = 1,
    split_every: Optional[int] = None,
    **compute_kwargs: Any,
) -> np.ndarray:
    """Covariance ``scatter / (weight_sum - ddof)`` of a 2-D Dask array (features as columns).

    Parameters
    ----------
    x, weights, precision, threads, split_every, **compute_kwargs
        As for :func:`accumulate`.
    ddof : float, default 1
        Delta degrees of freedom, as in :meth:`descramble.Autocorrelation.covariance`
        (weights are frequency weights).

    Returns
    -------
    ndarray of shape (n, n), float64

    Raises
    ------
    TypeError, ValueError
        As for :func:`accumulate`; ValueError also if ``weight_sum - ddof <= 0``.

    Examples
    --------
    >>> import dask.array as da, numpy as np, descramble.dask
    >>> x = np.random.default_rng(0).normal(size=(1000, 4))
    >>> np.allclose(descramble.dask.covariance(da.from_array(x, chunks=300)), np.cov(x, rowvar=False))
    True
    """
    ddof = as_ddof(ddof)
    return accumulate(
        x, weights=weights, precision=precision, threads=threads, split_every=split_every, **compute_kwargs
    ).covariance(ddof)
