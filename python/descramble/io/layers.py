"""``load_layer``: the naming rules that pick one dense layer's weights and bias out of a file."""

from __future__ import annotations

import os
import re
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from .._validation import as_regular_file, check_real_dtype
from ._common import is_numeric
from .weights import load_weights

__all__ = ["LayerChoiceError", "load_activation", "load_layer", "load_network"]


def keyword(argument: str, value: Any) -> str:
    """How :func:`load_layer`'s messages spell a remedy: as its keyword argument."""
    return f"{argument}=NAME" if value is None else f"{argument}={value!r}"


class LayerChoiceError(ValueError):
    """A :func:`load_layer` error whose remedy is one of its own arguments.

    ``argument`` (``"layer"`` or ``"transpose"``) and ``value`` (the value to
    pass; None for a layer's name) say which. The message spells the remedy
    as a keyword (``layer=NAME``, ``transpose=True``); :meth:`spelled` spells
    it another way, e.g. as a command line's option.
    """

    def __init__(self, before: str, argument: str, value: Any = None, after: str = "") -> None:
        self.before, self.argument, self.value, self.after = before, argument, value, after
        super().__init__(self.spelled(keyword))

    def spelled(self, spell: Callable[[str, Any], str]) -> str:
        """The message, with the remedy written as ``spell(argument, value)``."""
        return self.before + spell(self.argument, self.value) + self.after

# Separators between the parts of a name: PyTorch/ONNX dots, TensorFlow
# slashes and colons. Underscores are not separators ("fc" is not "fc_2").
_PART_SEPARATORS = re.compile(r"[./:]")
# Names of weight tensors after the layer's name: fc1.weight, fc1/W, dense/kernel.
_WEIGHT_NAMES = ("weight", "weights", "W", "kernel")
_NAME_SEPARATORS = (".", "/", "_")


def load_layer(
    path: str | os.PathLike,
    layer: Optional[str] = None,
    *,
    transpose: bool = False,
) -> Tuple[np.ndarray, Optional[np.ndarray], str]:
    """One dense layer's weight matrix and bias from a weights file.

    Parameters
    ----------
    path : str or os.PathLike
        Any file :func:`load_weights` reads.
    layer : str, optional
        Which layer (rules below). None: the file's only weight matrix.
    transpose : bool, default False
        Return ``W.T``: for files that store the matrix as (inputs, outputs),
        e.g. ONNX ``Gemm`` with ``transB=0``, ``MatMul`` initializers, Keras
        kernels. The bias is then matched against the transposed W.

    Returns
    -------
    W : ndarray of shape (m, n), float64
        The matrix as stored (transposed with ``transpose=True``): m outputs,
        n inputs is the layout :func:`descramble.descramble` expects.
    b : ndarray of shape (m,), float64, or None
        The bias (a vector with m entries; MATLAB's (m, 1) columns and
        (1, m) rows are flattened), or None when the layer has none.
    name : str
        The name of W's entry in the file (e.g. ``"fc1.weight"``).

    Notes
    -----
    Only numeric arrays that are not empty take part (a complex W or b is
    a TypeError). A *matrix* is a 2-D array; a *vector* is a 1-D array or a
    2-D array with a dimension of 1 (MATLAB stores vectors as matrices).
    Candidates are taken in file order.

    Finding W, for ``layer=NAME`` (the first rule that matches wins):

    1. the entry named exactly NAME; it must be 2-D;
    2. the entry NAME + separator + weight name, for separators ``.``, ``/``
       and ``_`` and weight names ``weight``, ``weights``, ``W``, ``kernel``
       (``fc1.weight`` for PyTorch and ONNX exports of it, ``net.W`` for a
       MATLAB struct, ``dense/kernel``); more than one such matrix is an
       error;
    3. the matrices whose name contains NAME as whole parts, parts being
       separated by ``.``, ``/`` or ``:`` (NAME ``"dense"`` matches
       ``"model/dense/MatMul:0"`` but not ``"dense_1/MatMul:0"`` and NAME
       ``"fc1"`` does not match ``"fc10.weight"``); when several match and
       exactly one of them is not a vector, that one; otherwise it must be
       unique.

    For ``layer=None``: the only matrix in the file; or, if there are
    several, the only one that is not a vector (so a MATLAB file holding W
    and its (m, 1) bias works).

    Finding b, given W's entry name K:

    1. K's *partner*: the name with the last part's weight word replaced by
       the bias word: ``weight`` -> ``bias``, ``weights`` -> ``biases`` or
       ``bias``, ``kernel`` -> ``bias``, a leading ``W``/``w`` -> ``b``
       (``fc1.weight`` -> ``fc1.bias``, ``net.W1`` -> ``net.b1``,
       ``layer/W`` -> ``layer/b``), and MATLAB's Neural Network Toolbox cells
       ``IW{i,j}``/``LW{i,j}`` -> ``b{i,1}``. If it exists it is the bias,
       and it must be a vector of m entries;
    2. otherwise, if K is a layer's name followed by exactly ``weight``,
       ``weights`` or ``kernel`` (``fc1.weight``, ``dense/kernel:0``), no
       bias (None): such
       files name the bias after W, so a vector elsewhere (the next
       LayerNorm's ``1.weight``) is not it;
    3. otherwise, the vectors of exactly m entries (other than W) -- among
       all entries for ``layer=None``, among those whose name contains NAME
       as whole parts for a named layer: one is the bias, none means no bias
       (None), several are an error.

    Raises
    ------
    TypeError
        ``layer`` is not a str or None; W or b is not real (complex).
    ValueError
        No matching layer (the message lists the file's weight matrices with
        their shapes: the matrices that are not vectors, or every matrix if
        all are vectors; at most 20), an ambiguous match, W not 2-D, a bias that is not a
        vector of m entries; and everything :func:`load_weights` raises.
    """
    if layer is not None and not isinstance(layer, str):
        raise TypeError(f"layer: expected a str or None, got {type(layer).__name__}")
    if layer == "":
        raise ValueError("layer: expected a layer name or None, got ''")
    if not isinstance(transpose, (bool, np.bool_)):
        raise TypeError(f"transpose: expected a bool, got {type(transpose).__name__}")
    weights = load_weights(path)
    where = os.fsdecode(os.fspath(path))
    arrays = {k: v for k, v in weights.items() if is_numeric(v) and v.size > 0}
    matrices = {k: v for k, v in arrays.items() if v.ndim == 2}

    if layer is None:
        key = _pick_unnamed(matrices, where)
        scope = arrays
    else:
        key = _pick_named(layer, arrays, matrices, where)
        scope = {k: v for k, v in arrays.items() if _contains_parts(k, layer)}

    check_real_dtype(arrays[key].dtype, f"{where}: {key}")
    W = np.array(arrays[key], dtype=np.float64, order="C")
    if transpose:
        W = np.ascontiguousarray(W.T)
    b = _pick_bias(key, W, arrays, scope, where, transpose)
    return W, b, key


def _shape(arr: np.ndarray) -> str:
    return "x".join(str(d) for d in arr.shape)


def _listing(matrices: Dict[str, np.ndarray], limit: int = 20) -> str:
    if not matrices:
        return "none"
    items = [f"{k} ({_shape(v)})" for k, v in matrices.items()]
    if len(items) > limit:
        items = items[:limit] + [f"... and {len(items) - limit} more"]
    return ", ".join(items)


def _is_vector(arr: np.ndarray) -> bool:
    return arr.ndim == 1 or (arr.ndim == 2 and min(arr.shape) == 1)


def _weight_listing(matrices: Dict[str, np.ndarray]) -> str:
    """The matrices that can be weights: those that are not vectors, if there are any."""
    proper = {k: v for k, v in matrices.items() if not _is_vector(v)}
    return _listing(proper or matrices)


def _pick_unnamed(matrices: Dict[str, np.ndarray], where: str) -> str:
    if len(matrices) == 1:
        return next(iter(matrices))
    proper = [k for k, v in matrices.items() if not _is_vector(v)]
    if len(proper) == 1:
        return proper[0]
    if not matrices:
        raise ValueError(f"{where}: no 2-D weight matrix in the file")
    raise LayerChoiceError(f"{where}: several 2-D arrays, pass ", "layer",
                           after=f" to choose one: {_weight_listing(matrices)}")


def _parts(name: str) -> List[str]:
    return _PART_SEPARATORS.split(name)


def _contains_parts(name: str, layer: str) -> bool:
    """True when ``layer``'s parts appear as a contiguous run of ``name``'s parts."""
    hay, needle = _parts(name), _parts(layer)
    n = len(needle)
    return any(hay[i:i + n] == needle for i in range(len(hay) - n + 1))


def _pick_named(layer: str, arrays: Dict[str, np.ndarray], matrices: Dict[str, np.ndarray],
                where: str) -> str:
    # 1. exact name
    if layer in arrays:
        if arrays[layer].ndim != 2:
            raise ValueError(
                f"{where}: {layer!r} has shape {arrays[layer].shape}, not a 2-D weight matrix "
                f"(2-D weights there: {_weight_listing(matrices)})"
            )
        return layer
    # 2. NAME + separator + weight word
    suffixed = [layer + sep + word for word in _WEIGHT_NAMES for sep in _NAME_SEPARATORS]
    found = [k for k in suffixed if k in matrices]
    if found:
        return _only(found, matrices, f"{where}: layer {layer!r} is ambiguous, pass one of")
    # 3. matrices whose name contains NAME as whole parts
    found = [k for k in matrices if _contains_parts(k, layer)]
    if len(found) > 1:
        proper = [k for k in found if not _is_vector(matrices[k])]
        if len(proper) == 1:
            found = proper
    if found:
        return _only(found, matrices, f"{where}: layer {layer!r} matches several 2-D arrays, "
                                      "pass the full name of one")
    raise ValueError(
        f"layer {layer!r} not found in {where}; 2-D weights there: {_weight_listing(matrices)}"
    )


def _only(found: List[str], matrices: Dict[str, np.ndarray], several: str) -> str:
    """The one name in ``found``; several are an error, ``several`` followed by their listing."""
    if len(found) > 1:
        raise ValueError(f"{several}: {_listing({k: matrices[k] for k in found})}")
    return found[0]


def _partners(key: str) -> List[str]:
    """Names the bias of weight entry ``key`` would have (see load_layer)."""
    cut = max(key.rfind("."), key.rfind("/"))
    head, tail = key[:cut + 1], key[cut + 1:]
    names: List[str] = []
    toolbox = re.fullmatch(r"(?:IW|LW)\{(\d+),\d+\}", tail)
    if toolbox:
        names.append(f"{head}b{{{toolbox.group(1)},1}}")
    for weight, biases in (("weights", ("biases", "bias")), ("Weights", ("Biases", "Bias")),
                           ("weight", ("bias",)), ("Weight", ("Bias",)), ("WEIGHT", ("BIAS",)),
                           ("kernel", ("bias",)), ("Kernel", ("Bias",))):
        at = tail.rfind(weight)
        if at >= 0:
            names += [head + tail[:at] + bias + tail[at + len(weight):] for bias in biases]
            return names
    if tail[:1] in ("W", "w"):
        names.append(head + "b" + tail[1:])
    return names


def _conventional_weight(key: str) -> bool:
    """True for a layer's name followed by exactly a weight word (``fc1.weight``,
    ``dense/kernel:0``; not a bare ``weights``): such files name the bias after it."""
    cut = max(key.rfind("."), key.rfind("/"))
    tail = re.sub(r":\d+$", "", key[cut + 1:])
    return cut > 0 and tail.lower() in ("weight", "weights", "kernel")


def _pick_bias(key: str, W: np.ndarray, arrays: Dict[str, np.ndarray],
               scope: Dict[str, np.ndarray], where: str, transpose: bool) -> Optional[np.ndarray]:
    m = W.shape[0]
    bias_key = next((k for k in _partners(key) if k in arrays and k != key), None)
    if bias_key is None and _conventional_weight(key):
        # "fc1.weight" without "fc1.bias" (PyTorch bias=False, ONNX exports,
        # TF kernels): the layer has no bias. A vector of m entries elsewhere
        # (the next LayerNorm's "1.weight") is not it.
        return None
    if bias_key is None:
        found = [k for k, v in scope.items() if k != key and _is_vector(v) and v.size == m]
        if len(found) > 1:
            listing = ", ".join(f"{k} ({_shape(scope[k])})" for k in found)
            raise ValueError(
                f"{where}: several vectors of {m} entries could be the bias of {key!r}: {listing}; "
                "use descramble.io.load_weights and pick the arrays yourself"
            )
        if not found:
            return None
        bias_key = found[0]
    b = arrays[bias_key]
    if not _is_vector(b) or b.size != m:
        problem = (f"{where}: bias {bias_key!r} has shape {b.shape}, expected a vector of {m} entries "
                   f"for weights {key!r} of shape {_shape(W)}")
        if _is_vector(b) and b.size == W.shape[1]:
            layout = "(inputs, outputs)" if not transpose else "(outputs, inputs)"
            raise LayerChoiceError(f"{problem} (it matches W's other dimension: the matrix is stored as "
                                   f"{layout}; pass ", "transpose", not transpose, ")")
        raise ValueError(problem)
    check_real_dtype(b.dtype, f"{where}: {bias_key}")
    return np.array(b, dtype=np.float64).reshape(-1)


# -- a whole stack of dense layers ---------------------------------------------------------------

# A numbered weight matrix (W1, net.W2, w3) and its number.
_NUMBERED = re.compile(r"[Ww](\d+)")


def _last_part(key: str) -> Tuple[str, str]:
    cut = max(key.rfind("."), key.rfind("/"))
    return key[:cut + 1], key[cut + 1:]


def _layer_name(key: str) -> str:
    """A layer's name from its weight entry: ``fc1.weight`` -> ``fc1``, ``dense/kernel:0`` -> ``dense``."""
    return _last_part(key)[0][:-1] if _conventional_weight(key) else key


def load_network(
    path: str | os.PathLike,
    *,
    transpose: bool = False,
) -> List[Tuple[str, np.ndarray, Optional[np.ndarray]]]:
    """Every dense layer of a weights file, in the network's order, with its bias.

    Parameters
    ----------
    path : str or os.PathLike
        Any file :func:`load_weights` reads.
    transpose : bool, default False
        Every matrix is stored as (inputs, outputs) (ONNX ``MatMul``,
        Keras kernels): return their transposes.

    Returns
    -------
    list of (name, W, b)
        ``W`` of shape (m, n), float64, as :func:`descramble.descramble` takes
        it; ``b`` of shape (m,), float64, or None; ``name`` the layer's name:
        the weight entry's name without its weight word (``fc1.weight`` ->
        ``fc1``, ``net.0.weight`` -> ``net.0``), or the entry's name
        (``W1``, a single matrix's name).

    Notes
    -----
    The layers are found by their names, in this order of preference:

    1. entries named as a layer followed by a weight word (``fc1.weight``,
       ``net.0.weight``, ``dense/kernel:0``: PyTorch state dicts, their ONNX
       exports, TensorFlow), in the file's order (a state dict's order is
       the order its modules were defined in). Every such entry must be 2-D:
       a 1-D one (a normalisation layer) or a convolution's 4-D kernel is
       an error, since the network would not be a stack of dense layers;
    2. entries named ``W1``, ``W2``, ... (also ``w1``, or a struct's
       ``net.W1``), in numeric order, with the biases ``b1``, ``b2``, ...;
    3. otherwise, the file's single weight matrix (:func:`load_layer`'s
       rules for ``layer=None``): one layer.

    Each layer's bias is its weight entry's partner (``fc1.bias``, ``b1``;
    see :func:`load_layer`), a vector of m entries, or None when the file
    has no partner. Each layer's inputs must equal the previous layer's
    outputs.

    Raises
    ------
    ValueError
        No layers found, names that do not give an order, a non-dense
        layer, a bias of the wrong size, layers that do not chain (a
        :class:`LayerChoiceError` with the remedy ``transpose=True`` when
        the transposed matrices would chain); everything :func:`load_weights`
        raises.
    TypeError
        ``transpose`` is not a bool; a complex W or b.
    """
    if not isinstance(transpose, (bool, np.bool_)):
        raise TypeError(f"transpose: expected a bool, got {type(transpose).__name__}")
    weights = load_weights(path)
    where = os.fsdecode(os.fspath(path))
    arrays = {k: v for k, v in weights.items() if is_numeric(v) and v.size > 0}
    matrices = {k: v for k, v in arrays.items() if v.ndim == 2}

    keys = [k for k in arrays if _conventional_weight(k)]
    numbered = {k: int(m.group(1)) for k in matrices
                for m in [_NUMBERED.fullmatch(_last_part(k)[1])] if m is not None}
    if keys:
        for k in keys:
            if arrays[k].ndim != 2:
                kind = "a normalisation layer's scale" if arrays[k].ndim == 1 else "not a dense layer's matrix"
                raise ValueError(f"{where}: {k!r} has shape {arrays[k].shape} ({kind}): descramble reads networks "
                                 "of dense layers and activations only; pick a layer with load_layer")
    elif numbered:
        heads = {_last_part(k)[0] for k in numbered}
        if len(heads) > 1:
            raise ValueError(f"{where}: numbered weight matrices under several names "
                             f"({', '.join(sorted(numbered))}): cannot tell which network they form")
        keys = sorted(numbered, key=numbered.__getitem__)
        values = [numbered[k] for k in keys]
        if len(set(values)) != len(values):
            raise ValueError(f"{where}: several weight matrices share a number: {', '.join(keys)}")
    else:
        if len(matrices) > 1 and sum(not _is_vector(v) for v in matrices.values()) != 1:
            raise ValueError(
                f"{where}: cannot tell the layers' order from the names of its 2-D arrays "
                f"({_weight_listing(matrices)}); name them as a PyTorch state dict does (fc1.weight, "
                "fc1.bias, fc2.weight, ...) or W1, b1, W2, b2, ...")
        W, b, key = load_layer(path, None, transpose=transpose)
        return [(key, W, b)]

    layers: List[Tuple[str, np.ndarray, Optional[np.ndarray]]] = []
    for key in keys:
        check_real_dtype(arrays[key].dtype, f"{where}: {key}")
        W = np.array(arrays[key], dtype=np.float64, order="C")
        if transpose:
            W = np.ascontiguousarray(W.T)
        bias_key = next((k for k in _partners(key) if k in arrays and k != key), None)
        b = None if bias_key is None else _pick_bias(key, W, arrays, {}, where, transpose)
        layers.append((_layer_name(key), W, b))
    _check_chain(layers, keys, where, transpose)
    return layers


def _check_chain(layers: List[Tuple[str, np.ndarray, Optional[np.ndarray]]], keys: List[str], where: str,
                 transpose: bool) -> None:
    """Each layer's inputs must be the previous layer's outputs."""
    shapes = [W.shape for _, W, _ in layers]
    for k in range(1, len(layers)):
        if shapes[k][1] != shapes[k - 1][0]:
            problem = (f"{where}: the layers do not chain: {keys[k]!r} ({_shape(layers[k][1])}) takes "
                       f"{shapes[k][1]} inputs, but the layer before it, {keys[k - 1]!r} "
                       f"({_shape(layers[k - 1][1])}), has {shapes[k - 1][0]} outputs")
            if all(shapes[j][0] == shapes[j - 1][1] for j in range(1, len(shapes))):
                layout = "(inputs, outputs)" if not transpose else "(outputs, inputs)"
                raise LayerChoiceError(f"{problem} (the matrices are stored as {layout}; pass ", "transpose",
                                       not transpose, ")")
            raise ValueError(problem)


def load_activation(path: str | os.PathLike) -> Optional[str]:
    """The activation a weights file names, when it names one; None otherwise.

    Read from: a ``.npz`` entry ``activation`` (a string, e.g.
    ``np.savez(f, W1=..., activation="relu")``); a ``.mat`` (v4 to v7)
    variable ``activation`` (a char array); an ``.onnx`` graph whose only
    non-linear operators are all ``Relu``, all ``Tanh`` or all ``Sigmoid``.
    PyTorch state dicts hold no activation (None).

    Returns
    -------
    str or None
        One of ``"identity"``, ``"relu"``, ``"tanh"``, ``"sigmoid"``.

    Raises
    ------
    ValueError
        An ``activation`` entry that is not one of those names.
    FileNotFoundError, IsADirectoryError, ...
        As :func:`load_weights`: ``path`` is not a readable regular file.
    """
    from ..hidden import ACTIVATIONS

    where = os.fsdecode(as_regular_file(path, "path"))
    suffix = os.path.splitext(where)[1].lower()
    name: Optional[str] = None
    if suffix == ".npz":
        with np.load(where, allow_pickle=False) as archive:
            if "activation" in archive.files:
                try:
                    value = archive["activation"]
                except ValueError:  # an object array: not read
                    value = np.array(0)
                name = _text(value)
                if name is None:
                    raise ValueError(f"{where}: 'activation' is not a string (expected one of {ACTIVATIONS})")
    elif suffix == ".mat":
        try:
            from scipy.io import loadmat

            found = loadmat(where, variable_names=["activation"]).get("activation")
        except (ImportError, NotImplementedError, ValueError):  # v7.3 files, no SciPy: not read
            found = None
        if found is not None:
            name = _text(found)
            if name is None:
                raise ValueError(f"{where}: 'activation' is not a string (expected one of {ACTIVATIONS})")
    elif suffix == ".onnx":
        name = _onnx_activation(where)
    if name is not None and name.lower() not in ACTIVATIONS:
        raise ValueError(f"{where}: activation {name!r} is not one of {ACTIVATIONS}")
    return None if name is None else name.lower()


def _text(value: np.ndarray) -> Optional[str]:
    if value.dtype.kind in "US" and value.size == 1:
        item = value.reshape(-1)[0]
        return item.decode() if isinstance(item, bytes) else str(item)
    return None


# ONNX operators of a dense stack that are linear (matrix products, bias, reshapes).
_ONNX_LINEAR = {"Gemm", "MatMul", "Add", "Identity", "Constant", "Flatten", "Reshape", "Cast"}
_ONNX_ACTIVATIONS = {"Relu": "relu", "Tanh": "tanh", "Sigmoid": "sigmoid"}


def _onnx_activation(path: str) -> Optional[str]:
    try:
        import onnx
    except ImportError:
        return None
    ops = {node.op_type for node in onnx.load(path, load_external_data=False).graph.node} - _ONNX_LINEAR
    if len(ops) == 1 and next(iter(ops)) in _ONNX_ACTIVATIONS:
        return _ONNX_ACTIVATIONS[next(iter(ops))]
    return None
