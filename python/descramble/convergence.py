"""Convergence of the descrambler as the number of samples grows (docs/math.md §5)."""

from __future__ import annotations

import contextlib
import inspect
import sys
import types
from typing import Any, Iterator, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from ._validation import as_matrix, as_positive_int
from .accumulator import Autocorrelation
from .descrambler import Descrambler, _descramble, smoothness_loss
from .diagnostics import DescrambleWarning, warn
from .sources import open_source, progress_bar


class Convergence(NamedTuple):
    """What :func:`convergence` measured.

    Attributes
    ----------
    n_samples : ndarray of int
        The sample counts N at which the descrambler was rebuilt.
    loss : ndarray
        eta(P_N) evaluated on the whole stream's hidden autocorrelation: how
        good the descrambler built from the first N samples is in the
        large-data limit (approximated by all the data).
    own_loss : ndarray
        eta(P_N) on the first N samples themselves: equal to ``own_bound``
        (the closed form is optimal on the data it saw).
    own_bound : ndarray
        The bound sum_k lambda_k mu_k(S_N) of the first N samples.
    bound : float
        The bound of the whole stream: ``loss`` approaches it as N grows.
    accumulator : Autocorrelation
        The input accumulator of the whole stream.
    descrambler : Descrambler
        The descrambler of the whole stream (the last point), the reference
        every P_N is scored against: no need to build it again from
        ``accumulator``.
    """

    n_samples: np.ndarray
    loss: np.ndarray
    own_loss: np.ndarray
    own_bound: np.ndarray
    bound: float
    accumulator: Autocorrelation
    descrambler: Descrambler


def _geometric_sizes(start: int, factor: float = 2.0, stop: int = 1 << 62) -> Iterator[int]:
    size = start
    while size < stop:
        yield size
        size = max(size + 1, int(round(size * factor)))


def convergence(
    weights: Any,
    data: Any,
    *,
    bias: Any = None,
    smoothness: Any = "fourier",
    order: Optional[int] = None,
    sizes: Optional[Sequence[int]] = None,
    chunk_rows: Optional[int] = None,
    dtype: Any = None,
    n_features: Optional[int] = None,
    threads: Optional[int] = None,
    progress: Any = None,
) -> Convergence:
    """Descramble a layer from the first N samples, for growing N, in one pass over ``data``.

    The stream is read once: whenever the count reaches the next size
    (chunks being split at exactly that row) the descrambler P_N of the
    samples so far is built and kept (m x m; the n x n accumulator is not
    copied). Each P_N is then scored on the whole stream's hidden autocorrelation S: its loss
    tends to the whole stream's bound at the N^-1/2 rate of S_N (docs/math.md §5).

    Parameters
    ----------
    weights : array_like of shape (m, n)
    data : source
        Anything :func:`descramble.accumulate` takes.
    bias : array_like of shape (m,) or 0, optional
        As for :func:`descramble.descramble` (0: the layer has no bias).
    smoothness, order
        As for :func:`descramble.descramble`.
    sizes : sequence of int, optional
        Increasing sample counts. Default: 64, 128, 256, ... (doubling); the
        whole stream's count is always the last point.
    chunk_rows, dtype, n_features, threads : optional
        Passed to the source (:func:`descramble.sources.open_source`; dtype
        and n_features for raw files) and the accumulator.
    progress : bool or callable(rows), optional
        True: show a tqdm progress bar while ``data`` is streamed. A callable
        is called with the number of rows after each chunk.

    Returns
    -------
    Convergence

    Raises
    ------
    TypeError, ValueError
        For malformed arguments or data. A NaN or infinity raises
        :class:`descramble.NonFiniteError` whose ``.row`` is the row of ``data``.

    Warns
    -----
    UnderdeterminedWarning, ConstantDataWarning, MissingBiasWarning
        As :func:`descramble.descramble`, for the whole stream only (the
        descramblers of the first N samples are underdetermined by design
        while N < m).
    """
    result, found = _convergence(weights, data, bias=bias, smoothness=smoothness, order=order, sizes=sizes,
                                 chunk_rows=chunk_rows, dtype=dtype, n_features=n_features, threads=threads,
                                 progress=progress)
    for warning in found:
        warn(warning)
    return result


def _convergence(
    weights: Any,
    data: Any,
    *,
    bias: Any,
    smoothness: Any,
    order: Optional[int],
    sizes: Optional[Sequence[int]],
    chunk_rows: Optional[int],
    dtype: Any,
    n_features: Optional[int],
    threads: Optional[int],
    progress: Any,
) -> Tuple[Convergence, List[DescrambleWarning]]:
    """:func:`convergence`, returning the whole stream's warnings instead of issuing them."""
    W = as_matrix(weights, "weights")
    if progress is not None and not isinstance(progress, (bool, np.bool_)) and not callable(progress):
        raise TypeError(f"progress: expected True, False or a callable(rows), got {progress!r}")
    if sizes is None:
        targets: Iterator[int] = _geometric_sizes(64)
    else:
        checked = [as_positive_int(s, "sizes") for s in sizes]
        if any(b <= a for a, b in zip(checked, checked[1:])):
            raise ValueError(f"sizes: expected strictly increasing counts, got {list(sizes)}")
        targets = iter(checked)
    source = open_source(data, chunk_rows=chunk_rows, dtype=dtype, n_features=n_features)
    if source.n_features != W.shape[1]:
        raise ValueError(f"data: has {source.n_features} features, the weights have {W.shape[1]} columns")
    acc = Autocorrelation(source.n_features, threads=threads)
    n_samples: List[int] = []
    rotations: List[np.ndarray] = []
    own_loss: List[float] = []
    own_bound: List[float] = []

    found: List[DescrambleWarning] = []  # the warnings of the latest snapshot

    def snapshot() -> Descrambler:
        nonlocal smoothness, order, found
        d, found = _descramble(W, autocorrelation=acc, bias=bias, smoothness=smoothness, order=order,
                               source="data")
        smoothness, order = d.smoothness, None  # resolved once, shared by every N
        n_samples.append(acc.count)
        rotations.append(d.P)
        own_loss.append(d.loss)
        own_bound.append(d.bound)
        return d

    last: Optional[Descrambler] = None  # the descrambler of the latest snapshot
    target = next(targets, None)

    def update(chunk: np.ndarray, w: Optional[np.ndarray], first_row: int, name: str) -> None:
        # Split the chunk at the target sizes; errors name the row of the stream.
        nonlocal last, target
        start = 0
        while start < chunk.shape[0]:
            stop = chunk.shape[0] if target is None else min(chunk.shape[0], start + target - acc.count)
            acc.update(chunk[start:stop], None if w is None else w[start:stop], first_row=first_row + start,
                       source=name)
            start = stop
            if target is not None and acc.count == target:
                last = snapshot()
                target = next(targets, None)

    bar: Any = (progress_bar(bool(progress), source.rows, "convergence")
                if progress is None or isinstance(progress, (bool, np.bool_)) else contextlib.nullcontext(progress))
    with bar as report:
        source.feed(update, report)
    if acc.count == 0:
        raise ValueError("data: no samples")
    # The whole stream is the last point; its descrambler is the reference.
    # (Samples <= n leave S_N rank deficient; that is fine for the closed form.)
    whole = last if last is not None and n_samples[-1] == acc.count else snapshot()
    smooth, S = whole.smoothness, whole.hidden
    assert smooth is not None and S is not None  # criterion "smooth" always has both
    loss = [smoothness_loss(P, S, smooth) for P in rotations]  # tr(A P S P^T), docs/math.md §2
    result = Convergence(np.array(n_samples), np.array(loss), np.array(own_loss), np.array(own_bound),
                         whole.bound, acc, whole)
    return result, found  # the warnings of the whole stream


class _CallableModule(types.ModuleType):
    """``descramble.convergence`` is this module, and ``descramble.convergence(W, data)`` still works."""

    def __call__(self, *args: Any, **kwargs: Any) -> Convergence:
        # Not convergence(...): its warnings would point here, not at the caller.
        call = inspect.signature(convergence).bind(*args, **kwargs)  # TypeError as the call would raise
        call.apply_defaults()
        result, found = _convergence(*call.args, **call.kwargs)
        for warning in found:
            warn(warning)
        return result


sys.modules[__name__].__class__ = _CallableModule
