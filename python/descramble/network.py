"""Descrambling every hidden layer of a stack of dense layers, from one pass over the data.

For a network ``h_k = f_k(W_k h_{k-1} + b_k)`` (``h_0 = x``), layer k's
descrambler ``P_k`` orders its units (docs/math.md §2, §3) and the previous
layer's reordering ``Q_{k-1}`` acts on its inputs, so that the descrambled
weights are ``P_k W_k Q_{k-1}^T``:

* ``P_1`` from the input autocorrelation with the bias (the augmented
  input, docs/math.md §1): the descrambler of the pre-activations ``W_1 x + b_1``;
* ``P_k`` (k >= 2) from the autocorrelation of the pre-activations
  ``W_k h_{k-1} + b_k``;
* ``Q_{k-1}`` from the autocorrelation of layer k-1's *outputs*
  ``h_{k-1} = f_{k-1}(...)`` (the signals layer k reads), with layer k-1's
  smoothness. For identity activations the outputs are the pre-activations,
  so ``Q_{k-1} = P_{k-1}``.

With ``criterion="permutation"`` (or ``"signed-permutation"``) every P_k is
the (signed) permutation found from the same pre-activation statistics, and
``Q_{k-1} = P_{k-1}``: a permutation commutes with element-wise activations
(a signed one with odd activations), so ``P_k W_k P_{k-1}^T`` are the
weights of a network that computes exactly the same function
(:func:`descramble.permute_network` writes it out).

All autocorrelations come from :func:`descramble.hidden_autocorrelations`
(the core's forward pass, one pass over the data); every descrambler and
product is computed by the core.
"""

from __future__ import annotations

import warnings
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from . import _core
from .descrambler import PERMUTATION_CRITERIA, Descrambler, _descramble, _search_options, descramble
from .diagnostics import ConstantDataWarning, DescrambleWarning, IgnoredArgumentWarning, warn
from .hidden import HiddenAutocorrelations, _layer, hidden_autocorrelations
from .smoothness import Smoothness, resolve

__all__ = ["descramble_network", "ODD_ACTIVATIONS"]

#: The activations f with f(-x) = -f(x): a signed permutation of their units commutes with them.
ODD_ACTIVATIONS = ("identity", "tanh")


def _is_spec(value: Any) -> bool:
    """True for one smoothness spec that can sit in a per-layer sequence (a name, an operator, a matrix D)."""
    return isinstance(value, (str, Smoothness)) or (isinstance(value, np.ndarray) and value.ndim == 2)


def _per_layer(value: Any, count: int, argument: str, is_one: Any) -> List[Any]:
    """``value`` for each of ``count`` layers: one value for all, or a list/tuple of ``count`` values."""
    if isinstance(value, (list, tuple)) and value and all(is_one(v) for v in value):
        if len(value) != count:
            raise ValueError(f"{argument}: expected one value for all layers or one per descrambled layer "
                             f"({count}), got a sequence of {len(value)}")
        return list(value)
    return [value] * count


def _is_order(value: Any) -> bool:
    return value is None or (isinstance(value, (int, np.integer)) and not isinstance(value, bool))


def descramble_network(
    layers: Sequence[Any],
    data: Any,
    *,
    smoothness: Any = "fourier",
    order: Any = None,
    output: bool = False,
    criterion: str = "smooth",
    seed: int = 0,
    max_iterations: int = 100,
    time_limit: Optional[float] = None,
    chunk_rows: Optional[int] = None,
    dtype: Any = None,
    n_features: Optional[int] = None,
    progress: bool = False,
    threads: Optional[int] = None,
) -> List[Descrambler]:
    """Descramble every hidden layer of a stack of dense layers, in order, from one pass over ``data``.

    Parameters
    ----------
    layers : sequence of (W, b, activation)
        As :func:`descramble.hidden_autocorrelations` takes them: ``W`` of
        shape (outputs, inputs), ``b`` of shape (outputs,) or None,
        ``activation`` one of "identity", "relu", "tanh", "sigmoid"; each
        layer's inputs equal the previous layer's outputs.
    data : source or HiddenAutocorrelations
        The network's input rows: any source :func:`descramble.accumulate`
        takes, read once; or what :func:`descramble.hidden_autocorrelations`
        returned for these layers (nothing is read again: a caller that
        needs the statistics for more, e.g. the input autocorrelation for
        other checkpoints of the first layer, makes the one pass itself).
    smoothness : spec or sequence of specs, default "fourier"
        One spec for every descrambled layer (a name, a
        :class:`~descramble.smoothness.Smoothness` or a matrix D, as in
        :func:`descramble.descramble`), or a list/tuple with one spec per
        descrambled layer (needed when an operator has a size, e.g. a grid
        of units). A list whose items are all names, Smoothness objects or
        2-D ndarrays is read as per-layer specs; a nested list of numbers is
        one matrix D.
    order : int or sequence of int, optional
        Derivative order of a named smoothness (one for all layers, or one
        per descrambled layer).
    output : bool, default False
        Also descramble the last (output) layer. Its units usually have a
        meaning of their own (the network's outputs), so by default only
        the hidden layers (all but the last) are descrambled. With a
        permutation criterion, permuting the output layer's rows reorders
        the network's outputs: the rewritten network then computes the same
        outputs in another order (why the default is False).
    criterion : {"smooth", "permutation", "signed-permutation"}, default "smooth"
        As in :func:`descramble.descramble`, for every descrambled layer.
        "smooth": the closed-form orthogonal descramblers. "permutation":
        each P_k is the permutation matrix of the smoothest ordering of
        layer k's units found (from the same pre-activation statistics), and
        Q_{k-1} is P_{k-1} itself, so that ``weights`` are the exactly
        permuted ``P_k W_k P_{k-1}^T``. "signed-permutation": the same with
        sign flips, only for layers whose activation is odd ("identity",
        "tanh"): ``-f(x) = f(-x)`` is what lets a flipped unit's sign pass
        through to the next layer's columns. "diagonal" (a square W by
        itself, without data) has no meaning for a network: a ValueError.
    seed, max_iterations, time_limit
        The permutation search's budget, as in :func:`descramble.descramble`
        (the same for every layer; checked, otherwise unused, for "smooth").
    chunk_rows, dtype, n_features, progress, threads
        As in :func:`descramble.hidden_autocorrelations`.

    Returns
    -------
    list of Descrambler
        One per descrambled layer, in order. Layer k's ``P`` is its
        descrambler, ``Q`` the descrambler of layer k-1's outputs (None for
        the first layer; for the permutation criteria ``P_{k-1}``),
        ``weights`` is ``P_k W_k Q_{k-1}^T``, ``hidden`` the pre-activation
        autocorrelation (with the bias) and ``n_samples`` N. For the
        permutation criteria ``permutation``, ``signs`` and ``gap`` are
        set, as by :func:`descramble.descramble`.

    Raises
    ------
    TypeError, ValueError
        For malformed layers (naming the layer), a network of one layer
        without ``output=True`` (it has no hidden layer), a smoothness that
        does not fit a layer (naming it; checked before the data are read),
        or bad data (as :func:`descramble.hidden_autocorrelations`); an
        unknown criterion, ``"diagonal"``, or ``"signed-permutation"`` with a
        descrambled layer whose activation is not odd (naming the layer and
        its activation). All checked before the data are read.

    Warns
    -----
    DescrambleWarning
        What :func:`descramble.descramble` warns for a layer (e.g.
        :class:`descramble.UnderdeterminedWarning` when N < m), re-issued
        with the message prefixed by ``"layer k: "`` (k from 1) and the
        0-based index of the layer in ``layers`` as the attribute
        ``layer_index``; :class:`descramble.ConstantDataWarning` (for layer
        1) when every input row is the same.

    Notes
    -----
    The Q of a layer is that of the *previous* layer's post-activation
    signals, descrambled with the previous layer's smoothness: for
    non-linear activations it differs from the previous layer's P (which
    orders its pre-activations), and ``P_k W_k Q_{k-1}^T`` is the matrix
    that maps the descrambled inputs ``Q_{k-1} h_{k-1}`` to the descrambled
    pre-activations ``P_k (W_k h_{k-1} + b_k)`` (up to the bias ``P_k b_k``).
    """
    if isinstance(layers, tuple) and len(layers) == 3 and not isinstance(layers[0], (tuple, list)):
        raise TypeError("layers: expected a sequence of (weights, bias, activation) triples; wrap one layer in a list")
    if not isinstance(output, (bool, np.bool_)):
        raise TypeError(f"output: expected a bool, got {type(output).__name__}")
    parsed = [_layer(layer, i) for i, layer in enumerate(layers)]
    if not parsed:
        raise ValueError("layers: expected at least one layer")
    count = len(parsed) if output else len(parsed) - 1
    if count == 0:
        raise ValueError("layers: a single layer is the output layer, with no hidden layer before it; "
                         "pass output=True to descramble it")
    check_criterion(criterion, [activation for _, _, activation in parsed[:count]])
    _search_options(criterion, seed, max_iterations, time_limit)  # the search's budget, before the data are read
    permuted = criterion in PERMUTATION_CRITERIA
    search: Dict[str, Any] = {"criterion": criterion, "seed": seed, "max_iterations": max_iterations,
                              "time_limit": time_limit}
    specs = _per_layer(smoothness, count, "smoothness", _is_spec)
    orders = _per_layer(order, count, "order", _is_order)
    # Every operator before the data are read: a spec that does not fit a layer fails now, naming it.
    operators: List[Smoothness] = []
    for k in range(count):
        m = parsed[k][0].shape[0]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                operators.append(resolve(specs[k], m, orders[k]))
            except (TypeError, ValueError) as exc:
                # Name the argument resolve() named (order or smoothness), then the layer.
                argument, sep, detail = str(exc).partition(": ")
                if not (sep and argument in ("order", "smoothness")):
                    argument, detail = "smoothness", str(exc)
                raise type(exc)(f"{argument}: layer {k + 1} ({m} units): {detail}") from None
            if (orders[k] is not None and not isinstance(specs[k], str)
                    and not any(isinstance(w.message, IgnoredArgumentWarning) for w in caught)):
                warn(IgnoredArgumentWarning("order: ignored: the smoothness is an operator, not a name",
                                            argument="order"))
        _reissue(caught, k)
    if isinstance(data, HiddenAutocorrelations):
        stats = data
        _check_statistics(stats, parsed)
    else:
        stats = hidden_autocorrelations(parsed, data, chunk_rows=chunk_rows, dtype=dtype, n_features=n_features,
                                        progress=progress, threads=threads)
    n_samples = int(stats.input.count)
    constant = n_samples > 0 and not np.any(np.diag(stats.input.scatter))

    result: List[Descrambler] = []
    for k in range(count):
        W, b, _ = parsed[k]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if k == 0 and permuted:
                # The search starts from the closed form of S itself: from the pre-activations' S, as for the
                # other layers (the augmented input's SVD gives the same S, but a start that differs by
                # rounding, and the search's path depends on its start).
                d, found = _descramble(W, hidden=stats.pre[0], smoothness=operators[0], inputs=(W.shape[1], True),
                                       **search)
                for warning in found:
                    warn(warning)
            elif k == 0:
                d = descramble(W, autocorrelation=stats.input, bias=b, smoothness=operators[0], **search)
            else:
                d = descramble(W, hidden=stats.pre[k], smoothness=operators[k], **search)
            if k == 0 and constant and not any(isinstance(w.message, ConstantDataWarning) for w in caught):
                warn(ConstantDataWarning("data: every row is the same (zero variance): the data say nothing "
                                         "about the order of the units", source="data"))
        _reissue(caught, k)
        if k > 0 and permuted:
            # Q_{k-1} = P_{k-1}: the previous layer's units are permuted (and flipped) as a whole, which the
            # activation between the layers commutes with.
            d.Q = result[k - 1].P
            assert d.weights is not None
            d.weights = _core.descramble_columns(d.Q, d.weights)
        elif k > 0:
            # Q_{k-1}: the previous layer's outputs (what this layer reads), its smoothness. Its
            # warnings are about those outputs (e.g. dead ReLU units), and say so.
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                Q = descramble(hidden=stats.post[k - 1], smoothness=operators[k - 1]).P
            _reissue(caught, k, f"layer {k + 1}'s input axis (layer {k}'s outputs, after the activation)")
            d.Q = Q
            assert d.weights is not None  # W was given
            d.weights = _core.descramble_columns(Q, d.weights)
        d.n_samples = n_samples
        result.append(d)
    return result


def check_criterion(criterion: Any, activations: Sequence[str]) -> None:
    """The criterion of a network's descramblers, checked against the activations of the layers it permutes.

    Parameters
    ----------
    criterion : str
        "smooth", "permutation" or "signed-permutation".
    activations : sequence of str
        The activation of each descrambled layer, in order.

    Raises
    ------
    TypeError, ValueError
        Not a string; an unknown criterion or "diagonal"; "signed-permutation"
        when a layer's activation is not odd (naming the first such layer,
        counted from 1, and its activation).
    """
    if not isinstance(criterion, str):
        raise TypeError(f"criterion: expected a string, got {criterion!r}")
    if criterion == "diagonal":
        raise ValueError("criterion: 'diagonal' (maximum diagonality of one square W, without data) does not apply "
                         "to a network's layers; use 'smooth', 'permutation' or 'signed-permutation'")
    if criterion not in ("smooth",) + PERMUTATION_CRITERIA:
        raise ValueError(f"criterion: expected 'smooth', 'permutation' or 'signed-permutation', got {criterion!r}")
    if criterion == "signed-permutation":
        for k, activation in enumerate(activations):
            if activation not in ODD_ACTIVATIONS:
                raise ValueError(
                    f"criterion: 'signed-permutation' flips the signs of layer {k + 1}'s units, but its activation "
                    f"{activation!r} is not odd (f(-x) != -f(x)), so the flip would change the network; use "
                    f"criterion='permutation', or signed permutations only for {' or '.join(ODD_ACTIVATIONS)} layers")


def _reissue(caught: List[warnings.WarningMessage], k: int, what: Optional[str] = None) -> None:
    """Issue again what one layer's descramble() warned, naming the layer (see descramble_network).

    ``what`` names what the warning is about (default ``"layer k+1"``).
    """
    for record in caught:
        message = record.message
        if isinstance(message, DescrambleWarning):
            labelled = type(message).__new__(type(message))
            labelled.__dict__.update(message.__dict__)
            labelled.args = (f"{what or f'layer {k + 1}'}: {message}",)
            labelled.layer_index = k  # type: ignore[attr-defined]
            warnings.warn(labelled, stacklevel=3)
        else:
            warnings.warn_explicit(message, record.category, record.filename, record.lineno)


def _check_statistics(stats: HiddenAutocorrelations, parsed: List[tuple]) -> None:
    """``stats`` must be the hidden autocorrelations of these layers (sizes layer by layer)."""
    if len(stats.pre) != len(parsed) or len(stats.post) != len(parsed):
        raise ValueError(f"data: the HiddenAutocorrelations are of {len(stats.pre)} layers, "
                         f"layers has {len(parsed)}")
    if stats.input.n_features != parsed[0][0].shape[1]:
        raise ValueError(f"data: the HiddenAutocorrelations' input has {stats.input.n_features} features, "
                         f"the first layer has {parsed[0][0].shape[1]} inputs")
    for k, (W, _, _) in enumerate(parsed):
        if stats.pre[k].n_features != W.shape[0] or stats.post[k].n_features != W.shape[0]:
            raise ValueError(f"data: the HiddenAutocorrelations' layer {k + 1} has {stats.pre[k].n_features} units, "
                             f"layers[{k}] has {W.shape[0]}")
