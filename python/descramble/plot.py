"""Figures of a descrambled layer (needs matplotlib: ``pip install matplotlib``).

Every function returns a :class:`matplotlib.figure.Figure` built without
pyplot, so it works in scripts, on headless machines and in notebooks (a
Figure displays itself there). Save one with :func:`save` (PNG, SVG or PDF).

Descrambled weights are ``P W`` for a layer whose inputs keep their order,
and ``P W Q^T`` when the descrambler carries ``Q``, the descrambler of the
layer's input axis (layer k of a network, whose inputs are layer k-1's
descrambled post-activations): both axes are then descrambled.

The rows of ``P W`` are the hidden units laid out along the smooth neuron
axis the smoothness operator acts on (row i is position i of that axis, not
the i-th mode); the smoothness eigenmodes themselves, smoothest first, are
the columns of ``descrambler.basis`` (see :func:`eigenmode_power`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence, Tuple

import numpy as np

from . import _core
from ._validation import as_matrix
from .convergence import Convergence
from .descrambler import Descrambler

#: The formats :func:`save` writes.
FORMATS = ("png", "svg", "pdf")

#: At most this many rows are drawn by :func:`weight_images` unless ``rows=`` says otherwise.
MAX_IMAGES = 64

_DIVERGING = "RdBu_r"


def _figure(figsize: Tuple[float, float]) -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError:  # pragma: no cover - exercised only without matplotlib
        raise ImportError("descramble.plot needs matplotlib: pip install matplotlib") from None
    return Figure(figsize=figsize, layout="constrained")


def _edges(first: float, last: float, count: int, step: float) -> "tuple[float, float]":
    """imshow's extent runs from the first pixel's edge to the last's: centre the pixels on the coordinates."""
    if count > 1:
        step = (last - first) / (count - 1)
    return first - step / 2, last + step / 2


def _input_descrambler(d: Descrambler, n: int) -> Optional[np.ndarray]:
    """``d.Q`` checked against the layer's n inputs (None when the inputs keep their order)."""
    if d.Q is None:
        return None
    Q = np.asarray(d.Q, dtype=np.float64)
    if Q.shape != (n, n):
        raise ValueError(f"descrambler: Q (the input-axis descrambler) has shape {Q.shape}, "
                         f"but the weights have {n} inputs: expected ({n}, {n})")
    return Q


def _weights_of(d: Descrambler, weights: Any) -> np.ndarray:
    """The raw W: ``weights`` checked, or recovered from ``d.weights`` (``P^T (P W Q^T) Q``)."""
    if weights is not None:
        # W: one row per hidden unit.
        return as_matrix(weights, "weights", rows=d.P.shape[1])
    if d.weights is None:
        raise ValueError("weights: this Descrambler has no weights; pass the layer's W")
    W = d.P.T @ d.weights
    Q = _input_descrambler(d, W.shape[1])
    return W if Q is None else W @ Q


def descrambled_weights(descrambler: Descrambler, weights: Any = None) -> np.ndarray:
    """The descrambled weights the figures draw: ``P W``, or ``P W Q^T`` when ``descrambler.Q`` is set.

    Parameters
    ----------
    descrambler : Descrambler
    weights : array_like of shape (m, n), optional
        The raw W (default: ``descrambler.weights``, which already is the
        descrambled matrix).

    Returns
    -------
    ndarray of shape (m, n)
    """
    d = descrambler
    if weights is None:
        _weights_of(d, None)  # checks that there are weights, and Q's shape
        return np.array(d.weights, dtype=np.float64)
    W = _weights_of(d, weights)
    PW = np.asarray(_core.descramble_rows(d.P, W))
    Q = _input_descrambler(d, W.shape[1])
    return PW if Q is None else np.asarray(_core.descramble_columns(Q, PW))


def _symmetric_limit(M: np.ndarray) -> float:
    """max |M| for a colour scale centred on zero (1 for an all-zero matrix)."""
    limit = float(np.max(np.abs(M))) if M.size else 0.0
    return limit if np.isfinite(limit) and limit > 0 else 1.0


def _alias(new: Any, new_name: str, old: Any, old_name: str) -> Tuple[Any, str]:
    """One of a keyword and its older alias (``x=`` for ``input_values=``); both is an error."""
    if old is not None:
        if new is not None:
            raise TypeError(f"{new_name}: pass either {new_name}= or its older name {old_name}=, not both")
        return old, old_name
    return new, new_name


def _coordinates(values: Any, name: str, n: int) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64)
    if x.shape != (n,):
        raise ValueError(f"{name}: expected {n} coordinates, got shape {x.shape}")
    steps = np.diff(x)
    if not np.all(np.isfinite(x)) or (steps.size and not np.allclose(steps, steps[0], rtol=1e-6, atol=0)):
        raise ValueError(f"{name}: expected finite, evenly spaced coordinates (the columns are drawn as equal "
                         "pixels)")
    return x


def weights(
    descrambler: Descrambler,
    weights: Any = None,
    *,
    input_values: Any = None,
    input_label: Optional[str] = None,
    title: Optional[str] = None,
    x: Any = None,
    xlabel: Optional[str] = None,
) -> Any:
    """The layer's weights before and after descrambling, side by side.

    Left: the trained W (hidden units in the order training left them,
    inputs in their own order). Right: ``P W`` (hidden units along the
    smooth neuron axis), or ``P W Q^T`` when ``descrambler.Q`` is set (the
    inputs are then the previous layer's descrambled units). Each panel has
    its own colour scale, symmetric about zero (``[-max|M|, max|M|]``), so
    neither washes the other out.

    Parameters
    ----------
    descrambler : Descrambler
    weights : array_like of shape (m, n), optional
        The raw W (default: recovered from ``descrambler.weights``).
    input_values : array_like of shape (n,), optional
        Coordinates of the inputs (e.g. echo times), for the x axis of the
        trained panel, and of the descrambled one when the inputs keep their
        order; evenly spaced (each column is drawn as a pixel of the same
        width).
    input_label : str, optional
        Name of the input axis (default ``"input"``).
    title : str, optional
    x, xlabel
        Older names of ``input_values`` and ``input_label``, still accepted
        (passing both spellings of one is a TypeError).

    Returns
    -------
    matplotlib.figure.Figure
    """
    values, values_name = _alias(input_values, "input_values", x, "x")
    label, _ = _alias(input_label, "input_label", xlabel, "xlabel")
    label = "input" if label is None else str(label)
    d = descrambler
    W = _weights_of(d, weights)
    PW = descrambled_weights(d, W)
    m, n = W.shape
    extent = None
    if values is not None:
        coords = _coordinates(values, values_name, n)
        extent = (*_edges(coords[0], coords[-1], n, 1.0), m - 0.5, -0.5)
    fig = _figure((11, 4.2))
    left, right = fig.subplots(1, 2)
    panels = [
        (left, W, extent, "trained weights W", label, "hidden unit (trained order)"),
        (right, PW, None if d.Q is not None else extent,
         "descrambled weights P W Q$^T$" if d.Q is not None else "descrambled weights P W",
         "descrambled input unit (previous layer)" if d.Q is not None else label,
         "descrambled unit (smooth neuron axis)"),
    ]
    for ax, M, box, name, xname, yname in panels:
        limit = _symmetric_limit(M)
        image = ax.imshow(M, aspect="auto", cmap=_DIVERGING, vmin=-limit, vmax=limit, extent=box,
                          interpolation="nearest")
        ax.set_title(name, fontsize=10)
        ax.set_xlabel(xname)
        ax.set_ylabel(yname)
        fig.colorbar(image, ax=ax, shrink=0.9, label="weight")
    if title:
        fig.suptitle(title)
    return fig


def certificate(descrambler: Descrambler) -> str:
    """One line with a descrambler's loss, bound and (for the permutation criteria) certificate gap."""
    d = descrambler
    text = f"loss {d.loss:.4g}, bound {d.bound:.4g}"
    if d.gap is not None:
        text += f", gap {d.gap:.3g}" if np.isfinite(d.gap) else ", gap inf"
    return text


def permuted_weights(
    descrambler: Descrambler,
    weights: Any = None,
    *,
    input_label: Optional[str] = None,
    title: Optional[str] = None,
) -> Any:
    """A layer before and after a permutation of its units: the trained W and the permuted ``W' = P W Q^T``.

    For a permutation descrambler (``criterion="permutation"`` or
    ``"signed-permutation"``) of layer k of a network, ``P`` permutes (and
    flips) the layer's units and ``Q`` is the previous layer's permutation:
    ``W'`` is the weight matrix of the rewritten network, which computes the
    same function. The figure's title carries the certificate: loss, bound
    and gap. Each panel has its own colour scale, symmetric about zero.

    Parameters
    ----------
    descrambler : Descrambler
        A permutation descrambler (any descrambler is drawn, but the
        labels speak of permutations).
    weights : array_like of shape (m, n), optional
        The trained W (default: recovered from ``descrambler.weights``).
    input_label : str, optional
        Name of the input axis in the trained order (default ``"input"``).
    title : str, optional
        Put before the certificate in the figure's title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    d = descrambler
    W = _weights_of(d, weights)
    permuted = descrambled_weights(d, W)
    label = "input" if input_label is None else str(input_label)
    signed = d.signs is not None and bool(np.any(np.asarray(d.signs) < 0))
    fig = _figure((11, 4.2))
    left, right = fig.subplots(1, 2)
    after = "permuted and sign-flipped" if signed else "permuted"
    panels = [
        (left, W, "trained order: W", label, "hidden unit (trained order)"),
        (right, permuted, f"{after}: W' = P W Q$^T$" if d.Q is not None else f"{after}: W' = P W",
         "input (previous layer's new order)" if d.Q is not None else label, "hidden unit (new order)"),
    ]
    for ax, M, name, xname, yname in panels:
        limit = _symmetric_limit(M)
        image = ax.imshow(M, aspect="auto", cmap=_DIVERGING, vmin=-limit, vmax=limit, interpolation="nearest")
        ax.set_title(name, fontsize=10)
        ax.set_xlabel(xname)
        ax.set_ylabel(yname)
        fig.colorbar(image, ax=ax, shrink=0.9, label="weight")
    fig.suptitle(f"{title}: {certificate(d)}" if title else certificate(d))
    return fig


def permuted_network(
    before: Sequence[Any],
    after: Sequence[Any],
    descramblers: Sequence[Descrambler],
    *,
    names: Optional[Sequence[str]] = None,
    title: Optional[str] = None,
) -> Any:
    """A whole network before (top row) and after (bottom row) its hidden units were permuted.

    One column per layer: the trained ``W_k`` above, the rewritten
    ``W_k'`` below (rows permuted by layer k's permutation, columns by
    layer k-1's). The hidden layers' columns are titled with their
    certificates (loss, bound, gap); the output layer's units keep their
    order (only its columns move).

    Parameters
    ----------
    before, after : sequence of (W, b, activation) or of W
        The original and the rewritten layers (as :func:`descramble.permute_network`
        takes and returns them), the same count and shapes.
    descramblers : sequence of Descrambler
        One per hidden layer (the first ``len(descramblers)`` layers).
    names : sequence of str, optional
        The layers' names (default ``layer 1``, ``layer 2``, ...).
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    def matrix(layer: Any, where: str) -> np.ndarray:
        W = layer[0] if isinstance(layer, (tuple, list)) else layer
        return as_matrix(W, where)

    if len(before) != len(after) or not before:
        raise ValueError(f"after: expected as many layers as before ({len(before)}), got {len(after)}")
    if len(descramblers) > len(before):
        raise ValueError(f"descramblers: at most one per layer ({len(before)}), got {len(descramblers)}")
    count = len(before)
    labels = [f"layer {k + 1}" for k in range(count)] if names is None else [str(n) for n in names]
    if len(labels) != count:
        raise ValueError(f"names: expected {count} names, got {len(labels)}")
    old = [matrix(layer, f"before[{k}]") for k, layer in enumerate(before)]
    new = [matrix(layer, f"after[{k}]") for k, layer in enumerate(after)]
    for k, (a, b) in enumerate(zip(old, new)):
        if a.shape != b.shape:
            raise ValueError(f"after[{k}]: shape {b.shape}, but before[{k}] has shape {a.shape}")
    from matplotlib.ticker import MaxNLocator

    widths = [float(np.clip(W.shape[1] / max(W.shape[0], 1) * 2.5, 1.6, 4.0)) for W in old]
    fig = _figure((min(1.9 * sum(widths) + 1.3 * count, 20), 7.6))
    axes = fig.subplots(2, count, squeeze=False, width_ratios=widths)
    for k in range(count):
        limit = _symmetric_limit(old[k])  # one scale per layer: the same numbers, moved
        image = None
        for row, (M, when) in enumerate(((old[k], "trained"), (new[k], "new"))):
            ax = axes[row, k]
            image = ax.imshow(M, aspect="auto", cmap=_DIVERGING, vmin=-limit, vmax=limit, interpolation="nearest")
            ax.set_xlabel("input" if k == 0 else f"{labels[k - 1]} unit ({when} order)", fontsize=8)
            ax.set_ylabel(f"{labels[k]} unit ({when} order)" if k < len(descramblers) else f"{labels[k]} output",
                          fontsize=8)
            ax.tick_params(labelsize=7)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
            if row == 0:
                ax.set_title(f"{labels[k]}: {M.shape[0]} x {M.shape[1]}, trained", fontsize=9)
            elif k < len(descramblers):
                ax.set_title(certificate(descramblers[k]).replace(", gap", "\ngap"), fontsize=8)
            else:
                ax.set_title("output units in their order\n(columns moved)", fontsize=8)
        fig.colorbar(image, ax=list(axes[:, k]), shrink=0.6, aspect=30, label="weight")
    fig.suptitle(title or "the network before (top) and after (bottom) permuting its hidden units", fontsize=10)
    return fig


def weight_images(
    descrambler: Descrambler,
    weights: Any = None,
    *,
    input_shape: Sequence[int],
    rows: Any = None,
    columns: Optional[int] = None,
    title: Optional[str] = None,
) -> Any:
    """Rows of the descrambled weights drawn as images of ``input_shape`` (e.g. (8, 8) for 8x8 digits).

    Every row of ``P W`` (``P W Q^T`` when ``descrambler.Q`` is set) is the
    filter one descrambled unit applies to the input; reshaped to the
    input's shape it is a small picture. All panels share one colour scale,
    symmetric about zero, so their contrasts compare.

    Parameters
    ----------
    descrambler : Descrambler
    weights : array_like of shape (m, n), optional
        The raw W (default: recovered from ``descrambler.weights``).
    input_shape : sequence of two positive ints
        (height, width) with height * width == n, the number of inputs.
        Rows are reshaped in C order (NumPy's default).
    rows : sequence of int, optional
        Which rows (descrambled units, 0-based) to draw; default the first
        ``min(m, MAX_IMAGES)`` (64). At most ``MAX_IMAGES`` rows.
    columns : int, optional
        Panels per row of the grid (default: about square).
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    d = descrambler
    W = _weights_of(d, weights)
    m, n = W.shape
    shape = image_shape(input_shape, n)
    if rows is None:
        chosen = np.arange(min(m, MAX_IMAGES))
    else:
        chosen = np.asarray(rows)
        if chosen.ndim != 1 or chosen.size == 0 or not np.issubdtype(chosen.dtype, np.integer):
            raise ValueError(f"rows: expected a non-empty sequence of row indices (integers), got {rows!r}")
        if chosen.min() < 0 or chosen.max() >= m:
            raise ValueError(f"rows: indices must lie in 0 ... {m - 1} (the layer has {m} units)")
        if chosen.size > MAX_IMAGES:
            raise ValueError(f"rows: at most {MAX_IMAGES} rows are drawn in one figure, got {chosen.size}")
    if columns is None:
        columns = int(np.ceil(np.sqrt(chosen.size)))
    elif isinstance(columns, bool) or not isinstance(columns, (int, np.integer)) or columns < 1:
        raise ValueError(f"columns: expected a positive integer, got {columns!r}")
    columns = int(min(columns, chosen.size))
    grid_rows = int(np.ceil(chosen.size / columns))
    PW = descrambled_weights(d, W)[chosen]
    limit = _symmetric_limit(PW)
    aspect = shape[0] / shape[1]
    size = 1.35
    fig = _figure((columns * size + 1.2, grid_rows * size * aspect + 0.6 + (0.4 if title else 0.0)))
    axes = np.atleast_1d(fig.subplots(grid_rows, columns, squeeze=False)).ravel()
    image = None
    for ax, row, values in zip(axes, chosen, PW):
        image = ax.imshow(values.reshape(shape), cmap=_DIVERGING, vmin=-limit, vmax=limit,
                          interpolation="nearest")
        ax.set_title(f"unit {int(row)}", fontsize=8, pad=2)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes[chosen.size:]:
        ax.set_axis_off()
    fig.colorbar(image, ax=list(axes), shrink=0.8, label="weight")
    what = ("rows of P W Q$^T$" if d.Q is not None else "rows of P W") + " as images"
    fig.suptitle(f"{title}: {what}" if title else what, fontsize=10)
    return fig


def image_shape(input_shape: Any, n: int) -> Tuple[int, int]:
    """``input_shape`` checked as the (height, width) of images of ``n`` pixels (for :func:`weight_images`).

    Raises
    ------
    ValueError
        Naming ``input_shape``, unless it is two positive integers whose
        product is ``n``.
    """
    try:
        shape = tuple(input_shape)
    except TypeError:
        raise ValueError(f"input_shape: expected (height, width), got {input_shape!r}") from None
    if (len(shape) != 2 or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1
                               for s in shape)):
        raise ValueError(f"input_shape: expected two positive integers (height, width), got {input_shape!r}")
    if shape[0] * shape[1] != n:
        raise ValueError(f"input_shape: {shape[0]} x {shape[1]} = {shape[0] * shape[1]} pixels, but the layer has "
                         f"{n} inputs")
    return int(shape[0]), int(shape[1])


def _value_scale(ax: Any, values: np.ndarray) -> None:
    """A y scale that shows every value of a non-negative series: log when all are positive, else symlog
    whose linear part ends at the smallest positive value (so small values are not squashed onto 0)."""
    positive = values[values > 0]
    if positive.size == values.size and values.size:
        ax.set_yscale("log")
    elif positive.size:
        from matplotlib.ticker import FixedLocator, LogFormatterSciNotation, NullLocator

        # Linear from 0 to the decade below the smallest positive value, logarithmic above, and the linear
        # part as tall as one decade: 0 and that decade get their own, separate labelled ticks.
        low = int(np.floor(np.log10(float(positive.min()))))
        high = int(np.ceil(np.log10(float(positive.max()))))
        linthresh = 10.0 ** low
        ax.set_yscale("symlog", linthresh=linthresh, linscale=1.0)
        step = max(1, int(np.ceil((high - low + 1) / 8)))  # at most about 8 labelled decades
        ax.yaxis.set_major_locator(FixedLocator([0.0] + [10.0 ** e for e in range(low, high + 1, step)]))
        ax.yaxis.set_major_formatter(LogFormatterSciNotation(labelOnlyBase=False, linthresh=linthresh))
        ax.yaxis.set_minor_locator(NullLocator())
        ax.set_ylim(-0.3 * linthresh, 10.0 ** high * 1.5)
    # all zeros: the default linear scale


def singular_spectrum(descrambler: Descrambler, *, title: Optional[str] = None) -> Any:
    """The hidden data's principal standard deviations sqrt(mu_k), and the smoothness eigenvalues.

    The closed form pairs the k-th largest mu with the k-th smallest
    lambda (docs/math.md §3); the loss is sum_k lambda_k mu_k. The right panel's
    lambda axis is logarithmic when every lambda is positive and symlog
    (linear up to the smallest positive lambda) when some are zero; the
    legend sits below the panels, clear of the data.

    Returns
    -------
    matplotlib.figure.Figure
    """
    d = descrambler
    mu = np.clip(d.spectrum, 0.0, None)
    k = np.arange(1, mu.size + 1)
    fig = _figure((11, 4.2))
    left, right = fig.subplots(1, 2)
    positive = mu > 0
    left.semilogy(k[positive], np.sqrt(mu[positive]), "o-", ms=3)
    left.set_xlabel("principal component k (largest variance first)")
    left.set_ylabel(r"$\sqrt{\mu_k}$ (hidden standard deviation)")
    left.set_title("singular spectrum of the hidden signals", fontsize=10)
    left.grid(True, which="both", alpha=0.3)
    if d.basis_values.size:
        lam = np.asarray(d.basis_values, dtype=np.float64)
        (line,) = right.plot(k, lam, "s-", ms=3, color="C1", zorder=3,
                             label=r"$\lambda_k$ (smoothness cost of mode k, left axis)")
        _value_scale(right, lam)
        right.set_zorder(2)  # the line above the twin's bars
        right.patch.set_visible(False)
        contribution = lam * mu
        twin = right.twinx()
        bars = twin.bar(k, contribution, alpha=0.35, color="C2",
                        label=r"$\lambda_k \mu_k$ (term k of the bound, right axis)")
        twin.set_ylabel(r"$\lambda_k \mu_k$")
        right.set_xlabel(r"smooth mode k ($\lambda$ ascending), paired with $\mu_k$")
        right.set_ylabel(r"$\lambda_k$")
        right.set_title(f"pairing: loss {d.loss:.4g}, bound {d.bound:.4g}", fontsize=10)
        right.grid(True, which="major", alpha=0.3)
        _legend_below(fig, [line, bars], "right")
    else:
        right.set_axis_off()
    if title:
        fig.suptitle(title)
    return fig


def eigenmode_power(descrambler: Descrambler) -> Tuple[np.ndarray, np.ndarray]:
    """The hidden power in each smoothness eigenmode, before and after descrambling.

    With T = ``descrambler.basis`` (columns t_k, ascending lambda) and S =
    ``descrambler.hidden``: ``before[k] = t_k^T S t_k`` and ``after[k] =
    t_k^T (P S P^T) t_k``. Both sum to tr(S) (T and P are orthogonal); at
    the closed form ``after`` is mu in descending order (docs/math.md §3): the
    most power in the smoothest modes.

    Returns
    -------
    before, after : ndarray of shape (m,)

    Raises
    ------
    ValueError
        (naming ``descrambler``) Without a hidden autocorrelation (a
        ``criterion="diagonal"`` descrambler).
    """
    d = descrambler
    if d.hidden is None or d.basis_values.size == 0:
        raise ValueError("descrambler: no hidden autocorrelation (criterion='diagonal'): no power per eigenmode")
    T = np.asarray(d.basis, dtype=np.float64)
    S = np.asarray(d.hidden, dtype=np.float64)
    PT = d.P.T @ T  # t_k^T P S P^T t_k = (P^T t_k)^T S (P^T t_k)
    before = np.einsum("ik,ij,jk->k", T, S, T)
    after = np.einsum("ik,ij,jk->k", PT, S, PT)
    return before, after


def fourier_magnitude(
    descrambler: Descrambler,
    weights: Any = None,
    *,
    sample_spacing: float = 1.0,
    frequency_unit: str = "cycles per input",
    title: Optional[str] = None,
) -> Any:
    """Fourier magnitudes of the descrambled rows, and hidden power per smoothness eigenmode.

    Left: ``|rfft|`` of every row of P W (P W Q^T when ``descrambler.Q``
    is set) along the input axis (each descrambled unit as a filter).
    Right: the hidden power in each eigenmode t_k of the smoothness
    operator actually used (:func:`eigenmode_power`), before (S) and after
    (P S P^T) descrambling, modes in ascending lambda (smoothest first; the
    top axis gives lambda): descrambling moves the power into the smoothest
    modes (docs/math.md §2-§4). For the Fourier operator the modes are the cosine
    and sine of each frequency, drawn one by one (a degenerate pair shares
    its lambda). Without a hidden autocorrelation (``criterion="diagonal"``)
    the right panel is empty.

    Parameters
    ----------
    descrambler : Descrambler
    weights : array_like, optional
        The raw W (default: recovered from ``descrambler.weights``).
    sample_spacing : float
        Spacing of the inputs (e.g. the echo spacing), for the frequency axis.
    frequency_unit : str
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not (np.isfinite(sample_spacing) and sample_spacing > 0):
        raise ValueError(f"sample_spacing: expected a positive number, got {sample_spacing!r}")
    d = descrambler
    W = _weights_of(d, weights)
    PW = descrambled_weights(d, W)
    magnitude = np.abs(np.fft.rfft(PW, axis=1))
    freqs = np.fft.rfftfreq(W.shape[1], d=sample_spacing)
    fig = _figure((11, 4.2))
    left, right = fig.subplots(1, 2)
    image = left.imshow(magnitude, aspect="auto", cmap="magma", interpolation="nearest",
                        extent=(*_edges(freqs[0], freqs[-1], freqs.size, 1.0 / (W.shape[1] * sample_spacing)),
                                W.shape[0] - 0.5, -0.5))
    fig.colorbar(image, ax=left, label="|FFT|")
    if d.Q is not None:
        left.set_xlabel("frequency along the descrambled input axis (cycles per unit)")
        left.set_title("Fourier magnitude of the rows of P W Q$^T$", fontsize=10)
    else:
        left.set_xlabel(f"frequency ({frequency_unit})")
        left.set_title("Fourier magnitude of the rows of P W", fontsize=10)
    left.set_ylabel("descrambled unit (smooth neuron axis)")
    if d.hidden is not None and d.basis_values.size:
        before, after = eigenmode_power(d)
        k = np.arange(before.size)
        floor = 1e-300
        (trained,) = right.semilogy(k, np.clip(before, floor, None), "o-", ms=3, label="trained ($t_k^T S t_k$)")
        (descrambled,) = right.semilogy(k, np.clip(after, floor, None), "s-", ms=3,
                                        label=r"descrambled ($t_k^T P S P^T t_k$)")
        right.set_xlabel(r"smoothness eigenmode k ($\lambda$ ascending)")
        right.set_ylabel("hidden power")
        right.set_title("hidden power per smoothness eigenmode", fontsize=10)
        right.grid(True, which="both", alpha=0.3)
        _legend_below(fig, [trained, descrambled], "right")
        _lambda_axis(right, np.asarray(d.basis_values, dtype=np.float64))
    else:
        right.set_axis_off()
    if title:
        fig.suptitle(title)
    return fig


def _legend_below(fig: Any, handles: Any, side: str) -> Any:
    """A legend under the panels (outside every axes, so it never covers data), on the side of its panel."""
    handles = list(handles)
    return fig.legend(handles, [h.get_label() for h in handles], loc=f"outside lower {side}",
                      ncols=len(handles), fontsize=8, frameon=False)


def _lambda_axis(ax: Any, lam: np.ndarray) -> None:
    """A top axis labelling a few modes with their eigenvalue lambda_k."""
    top = ax.secondary_xaxis("top")
    count = min(lam.size, 6)
    ticks = np.unique(np.round(np.linspace(0, lam.size - 1, count)).astype(int))
    top.set_xticks(ticks, labels=[f"{lam[t]:.3g}" for t in ticks], fontsize=8)
    top.set_xlabel(r"$\lambda_k$", fontsize=9)


def convergence(result: Convergence, *, title: Optional[str] = None) -> Any:
    """The loss of the descrambler built from N samples, against N, converging to the bound.

    Left: eta(P_N) on all the data, with the bound as a line. Right: the
    relative excess (eta(P_N) - bound) / bound on log-log axes, without the
    last point (all the data, which is the reference itself); the N^-1
    guide is where the excess of a descrambler whose error falls as
    N^-1/2 lands (the excess is quadratic in the error at the optimum).

    Returns
    -------
    matplotlib.figure.Figure
    """
    N = np.asarray(result.n_samples, dtype=np.float64)
    loss = np.asarray(result.loss)
    fig = _figure((11, 4.2))
    left, right = fig.subplots(1, 2)
    left.semilogx(N, loss, "o-", ms=4, label=r"$\eta(P_N)$ on all the data")
    left.axhline(result.bound, color="k", ls="--", lw=1, label=f"bound {result.bound:.4g}")
    left.set_xlabel("samples N used to build P")
    left.set_ylabel("smoothness loss")
    _legend_below(fig, left.get_lines(), "left")
    left.grid(True, which="both", alpha=0.3)
    left.set_title("loss against N", fontsize=10)
    with np.errstate(divide="ignore", invalid="ignore"):  # a zero bound (zero loss) has no relative excess
        excess = (loss - result.bound) / abs(result.bound)
    keep = (excess > 0) & np.isfinite(excess) & (N < N[-1])
    if keep.any():
        right.loglog(N[keep], excess[keep], "o-", ms=4, label="relative excess")
        anchor = np.flatnonzero(keep)[0]
        guide = excess[anchor] * N[anchor] / N[keep]
        right.loglog(N[keep], guide, "k:", lw=1, label=r"$\propto N^{-1}$")
        _legend_below(fig, right.get_lines(), "right")
    right.set_xlabel("samples N")
    right.set_ylabel(r"$(\eta(P_N) - \mathrm{bound}) / \mathrm{bound}$")
    right.grid(True, which="both", alpha=0.3)
    right.set_title("convergence to the bound", fontsize=10)
    if title:
        fig.suptitle(title)
    return fig


def save(fig: Any, path: Any, *, dpi: float = 150, format: Optional[str] = None) -> Path:
    """Save a figure as PNG, SVG or PDF and return the path.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    path : str or os.PathLike
    dpi : float
        Resolution (pixels per inch) of a PNG, and of any raster part of an
        SVG or PDF. A PNG of a ``figsize`` (w, h) figure is w*dpi x h*dpi pixels.
    format : {"png", "svg", "pdf"}, optional
        Default: from the suffix of ``path``. When given, the suffix (if
        any) must agree.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    ValueError
        Naming ``format`` for an unknown or unguessable format, or one that
        contradicts the suffix; naming ``dpi`` for a non-positive one.
    """
    target = Path(path)
    suffix = target.suffix.lower().lstrip(".")
    if format is None:
        if suffix not in FORMATS:
            raise ValueError(f"format: cannot tell the format from the suffix of {target.name!r}; "
                             f"pass format= one of {', '.join(FORMATS)}")
        chosen = suffix
    else:
        chosen = str(format).lower()
        if chosen not in FORMATS:
            raise ValueError(f"format: expected one of {', '.join(FORMATS)}, got {format!r}")
        if suffix and suffix != chosen:
            raise ValueError(f"format: {chosen!r} does not match the suffix of {target.name!r}")
    if isinstance(dpi, bool) or not isinstance(dpi, (int, float, np.integer, np.floating)) \
            or not (np.isfinite(dpi) and dpi > 0):
        raise ValueError(f"dpi: expected a positive number, got {dpi!r}")
    # No creation date in SVG/PDF: the same figure gives the same bytes.
    metadata = {"svg": {"Date": None}, "pdf": {"CreationDate": None}}.get(chosen)
    fig.savefig(target, dpi=float(dpi), format=chosen, metadata=metadata)
    return target
