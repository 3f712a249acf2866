"""Exact rewrites of a stack of dense layers: every hidden layer's units in the smoothest order found.

A permutation of a hidden layer's units commutes with every element-wise
activation, so permuting layer k's rows (and bias) and layer k+1's columns
the same way leaves the network's function unchanged; for odd activations
(identity, tanh) sign flips do too. With ``(p, s)`` the permutation and
signs of hidden layer k (``s = 1`` unless signed)::

    W_k'     = s[:, None] * W_k[p, :]
    b_k'     = s * b_k[p]
    W_{k+1}' = W_{k+1}[:, p] * s[None, :]

Each layer's ``(p, s)`` comes from its pre-activation autocorrelation in the
*original* network (permuting layer k does not change layer k+1's
pre-activations), all from one forward pass in the core
(:func:`descramble.descramble_network`); the search itself runs in the core
(:func:`descramble.descramble` with a permutation criterion).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

from ._validation import as_numpy
from .descrambler import PERMUTATION_CRITERIA, Descrambler
from .diagnostics import DescrambleWarning
from .hidden import _layer
from .network import ODD_ACTIVATIONS, descramble_network

__all__ = ["PermutedNetwork", "permute_network", "permute_layers"]

Layer = Tuple[np.ndarray, Optional[np.ndarray], str]


@dataclass
class PermutedNetwork:
    """The result of :func:`permute_network`.

    Attributes
    ----------
    layers : list of (W, b, activation)
        The rewritten network: every hidden layer's units (rows of W and
        entries of b) in the order found, every layer's columns in the
        previous layer's new order, the output layer's units in their own
        order. It computes exactly the same function as the original
        (up to the rounding of a reordered sum). Arrays keep the dtype
        they were given in (a bias that was None stays None).
    descramblers : list of Descrambler
        One per hidden layer: ``permutation``, ``signs`` (signed only),
        ``loss``, ``bound`` and ``gap`` (the certificate), ``P`` the
        (signed) permutation matrix and ``weights`` = ``P_k W_k P_{k-1}^T``
        (float64), as :func:`descramble.descramble_network` returns them.
    criterion : str
        "permutation" or "signed-permutation".
    """

    layers: List[Layer]
    descramblers: List[Descrambler]
    criterion: str

    @property
    def permutations(self) -> List[np.ndarray]:
        """Each hidden layer's index array p (hidden unit ``p[i]`` moved to position i)."""
        return [np.asarray(d.permutation) for d in self.descramblers]

    @property
    def signs(self) -> List[np.ndarray]:
        """Each hidden layer's signs s (all +1 for criterion "permutation")."""
        return [np.ones(d.P.shape[0]) if d.signs is None else np.asarray(d.signs) for d in self.descramblers]

    @property
    def gaps(self) -> List[float]:
        """Each hidden layer's certificate gap ``max(0, (loss - bound) / bound)``."""
        return [float(d.gap) if d.gap is not None else 0.0 for d in self.descramblers]

    def __repr__(self) -> str:
        sizes = [int(self.layers[0][0].shape[1])] + [int(W.shape[0]) for W, _, _ in self.layers]
        gaps = ", ".join(f"{g:.3g}" for g in self.gaps)
        return (f"PermutedNetwork(sizes={sizes}, {self.criterion}, gaps=[{gaps}])")


def permute_layers(layers: Sequence[Any], permutations: Sequence[Any],
                   signs: Optional[Sequence[Any]] = None) -> List[Layer]:
    """Apply given permutations (and signs) to the hidden layers of a stack: the exact rewrite.

    Parameters
    ----------
    layers : sequence of (W, b, activation)
        As :func:`permute_network` takes them.
    permutations : sequence of array_like of int
        One index array per hidden layer (``len(layers) - 1`` of them).
    signs : sequence of array_like or None, optional
        One sign vector (+1/-1) per hidden layer, or None (no flips; also
        per layer).

    Returns
    -------
    list of (W, b, activation)
        ``W_k' = s[:, None] * W_k[p]``, ``b_k' = s * b_k[p]``,
        ``W_{k+1}' = W_{k+1}[:, p] * s``; dtypes kept, None biases kept.

    Raises
    ------
    TypeError, ValueError
        Malformed layers, a count that is not one per hidden layer, an index
        array that is not a permutation of the layer's units, signs that are
        not +1/-1, or signs on a layer whose activation is not odd; a sign
        flip of arrays of an unsigned integer or bool dtype (a TypeError).
    """
    parsed = _checked(layers)
    hidden = len(parsed) - 1
    if len(permutations) != hidden:
        raise ValueError(f"permutations: expected one per hidden layer ({hidden}), got {len(permutations)}")
    if signs is not None and len(signs) != hidden:
        raise ValueError(f"signs: expected one per hidden layer ({hidden}) or None, got {len(signs)}")
    ps: List[np.ndarray] = []
    ss: List[Optional[np.ndarray]] = []
    for k in range(hidden):
        m = parsed[k][0].shape[0]
        p = np.asarray(permutations[k])
        if p.dtype.kind not in "iu" or p.shape != (m,) or not np.array_equal(np.sort(p), np.arange(m)):
            raise ValueError(f"permutations[{k}]: expected a permutation of 0..{m - 1} (layer {k + 1} has {m} units)")
        s = None if signs is None or signs[k] is None else np.asarray(signs[k], dtype=np.float64)
        if s is not None:
            if s.shape != (m,) or not np.all(np.abs(s) == 1):
                raise ValueError(f"signs[{k}]: expected {m} entries of +1 or -1")
            if np.any(s < 0) and parsed[k][2] not in ODD_ACTIVATIONS:
                raise ValueError(f"signs[{k}]: layer {k + 1}'s activation {parsed[k][2]!r} is not odd "
                                 "(f(-x) != -f(x)): flipping its units' signs would change the network")
            if np.any(s < 0):
                for j, a in ((k, parsed[k][0]), (k, parsed[k][1]), (k + 1, parsed[k + 1][0])):
                    if a is not None and a.dtype.kind in "ub":  # -x would wrap around (uint) or fail (bool)
                        raise TypeError(f"layers[{j}]: arrays of dtype {a.dtype} cannot hold the negated values a "
                                        f"sign flip of layer {k + 1}'s units needs; convert the layers to a "
                                        "signed or floating dtype")
        ps.append(p)
        ss.append(s)
    out: List[Layer] = []
    for k, (W, b, activation) in enumerate(parsed):
        if k < hidden:
            W, b = _flip(W[ps[k]], ss[k], rows=True), None if b is None else _flip(b[ps[k]], ss[k], rows=True)
        if k > 0:
            W = _flip(W[:, ps[k - 1]], ss[k - 1], rows=False)
        out.append((np.ascontiguousarray(W), None if b is None else np.ascontiguousarray(b), activation))
    return out


def _flip(a: np.ndarray, s: Optional[np.ndarray], *, rows: bool) -> np.ndarray:
    """``a`` with its rows (entries, for a vector) or columns multiplied by the signs ``s`` (exact)."""
    if s is None or not np.any(s < 0):
        return a
    negative = s < 0
    a = a.copy()
    if rows:
        a[negative] = -a[negative]
    else:
        a[:, negative] = -a[:, negative]
    return a


def _checked(layers: Sequence[Any]) -> List[Tuple[np.ndarray, Optional[np.ndarray], str]]:
    """The layers as NumPy arrays in their own dtypes (checked as hidden_autocorrelations checks them)."""
    if isinstance(layers, tuple) and len(layers) == 3 and not isinstance(layers[0], (tuple, list)):
        raise TypeError("layers: expected a sequence of (weights, bias, activation) triples; wrap one layer in a list")
    out = []
    for i, layer in enumerate(layers):
        _layer(layer, i)  # the checks (shapes, dtypes, activation names), naming the layer
        W, b, activation = layer
        W = np.asarray(as_numpy(W))
        out.append((W, None if b is None else np.asarray(as_numpy(b)), activation))
    if len(out) < 2:
        raise ValueError(f"layers: expected at least two layers (a hidden layer and the output layer), "
                         f"got {len(out)}")
    return out


def permute_network(
    layers: Sequence[Any],
    data: Any,
    *,
    criterion: str = "permutation",
    smoothness: Any = "fourier",
    order: Any = None,
    seed: int = 0,
    max_iterations: int = 100,
    time_limit: Optional[float] = None,
    chunk_rows: Optional[int] = None,
    dtype: Any = None,
    n_features: Optional[int] = None,
    progress: bool = False,
    threads: Optional[int] = None,
) -> PermutedNetwork:
    """An equivalent network whose hidden units are, layer by layer, in the smoothest order found.

    Every hidden layer's units are reordered (and, for
    ``criterion="signed-permutation"``, sign-flipped) by the permutation that
    minimises the smoothness loss tr(A P S P^T) of its pre-activations (the
    search of :func:`descramble.descramble`, with its certificate ``gap``),
    and the next layer's columns follow: the rewritten network computes
    exactly the same function. The output layer's units keep their order.

    Parameters
    ----------
    layers : sequence of (W, b, activation)
        ``W`` of shape (outputs, inputs), ``b`` of shape (outputs,) or None,
        ``activation`` one of "identity", "relu", "tanh", "sigmoid"; at least
        two layers (the last is the output layer). Arrays may be NumPy arrays
        (any real dtype, kept in the result) or PyTorch tensors.
    data : source or HiddenAutocorrelations
        The network's input rows (any source :func:`descramble.accumulate`
        takes, read once), or the statistics
        :func:`descramble.hidden_autocorrelations` returned for these layers.
    criterion : {"permutation", "signed-permutation"}, default "permutation"
        "signed-permutation" also flips units' signs, which commutes only
        with odd activations: every hidden layer's must be "identity" or
        "tanh".
    smoothness, order
        As in :func:`descramble.descramble_network` (one spec for every
        hidden layer, or one per hidden layer).
    seed, max_iterations, time_limit
        The search's budget, as in :func:`descramble.descramble`.
    chunk_rows, dtype, n_features, progress, threads
        As in :func:`descramble.hidden_autocorrelations`.

    Returns
    -------
    PermutedNetwork
        ``layers`` the rewritten network, ``descramblers`` one per hidden
        layer (loss, bound, gap, permutation, signs).

    Raises
    ------
    TypeError, ValueError
        As :func:`descramble.descramble_network`; a criterion other than the
        two permutation criteria; "signed-permutation" with a hidden layer
        whose activation is not odd (naming the layer and its activation);
        fewer than two layers. All checked before the data are read.

    Warns
    -----
    DescrambleWarning
        As :func:`descramble.descramble_network` (named by layer).

    Notes
    -----
    For ReLU layers positive scalings would commute too; they do not change
    the order and are not used. The result's ``layers`` differ from the
    original by a reordering of each hidden layer's units only; in float32 a
    reordered dot product can round differently (about 1e-7 relative).
    """
    if not isinstance(criterion, str):
        raise TypeError(f"criterion: expected a string, got {criterion!r}")
    if criterion not in PERMUTATION_CRITERIA:
        raise ValueError(f"criterion: expected 'permutation' or 'signed-permutation' (an exact rewrite needs a "
                         f"permutation; descramble_network gives the orthogonal descramblers), got {criterion!r}")
    parsed = _checked(layers)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        descramblers = descramble_network(layers, data, smoothness=smoothness, order=order, criterion=criterion,
                                          seed=seed, max_iterations=max_iterations, time_limit=time_limit,
                                          chunk_rows=chunk_rows, dtype=dtype, n_features=n_features,
                                          progress=progress, threads=threads)
    for record in caught:  # issued again at the caller's line, not at this one
        if isinstance(record.message, DescrambleWarning):
            warnings.warn(record.message, stacklevel=2)
        else:
            warnings.warn_explicit(record.message, record.category, record.filename, record.lineno)
    rewritten = permute_layers(parsed, [d.permutation for d in descramblers],
                               [d.signs for d in descramblers])
    return PermutedNetwork(rewritten, descramblers, criterion)
