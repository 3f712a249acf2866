"""Read a trained network's weights from the files people keep them in.

:func:`load_weights` turns a weights file into an ordered mapping
``name -> ndarray``; :func:`load_layer` picks one dense layer's weight matrix
``W`` (m outputs x n inputs, the layout :func:`descramble.descramble` takes)
and its bias out of it.

Formats, chosen by the file's suffix (case-insensitive):

=============  ==========================================  =====================
suffix         read with                                   extra
=============  ==========================================  =====================
.npy, .npz     NumPy, ``allow_pickle=False``               (none)
.pt, .pth      ``torch.load(weights_only=True)``           ``descramble[torch]``
.mat           SciPy (v4 to v7), h5py (v7.3 / HDF5)        ``descramble[matlab]``
.onnx          ``onnx.load``, graph initializers           ``descramble[onnx]``
=============  ==========================================  =====================

Nothing here unpickles arbitrary Python objects: NumPy object arrays are
skipped, and PyTorch files go through PyTorch's weights-only unpickler.
"""

from __future__ import annotations

import errno
import os
import re
import warnings
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import numpy as np

from ._validation import check_real_dtype

__all__ = ["SUFFIXES", "load_layer", "load_weights"]

#: The suffixes :func:`load_weights` reads, and the format each one means.
SUFFIXES = {
    ".npy": "NumPy .npy",
    ".npz": "NumPy .npz",
    ".pt": "PyTorch",
    ".pth": "PyTorch",
    ".mat": "MATLAB",
    ".onnx": "ONNX",
}

# Keys of a training checkpoint whose value is the model's state dict.
_CHECKPOINT_KEYS = ("state_dict", "model_state_dict")

# HDF5 files start with this signature at offset 0, 512, 1024, 2048, ...
# (MATLAB v7.3 files put their 128-byte header in a 512-byte user block).
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"

# Numeric dtype kinds load_weights returns: bool, integers, floats, complex.
_NUMERIC_KINDS = "biufc"


# --------------------------------------------------------------------------
# load_weights
# --------------------------------------------------------------------------


def load_weights(path: str | os.PathLike) -> Dict[str, np.ndarray]:
    """Every numeric array in a weights file, by name, in file order.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.npy``, ``.npz``, ``.pt``/``.pth``, ``.mat`` or ``.onnx`` file
        (see :data:`SUFFIXES`; the suffix decides the format).

    Returns
    -------
    dict of str to ndarray
        Insertion-ordered (file order). Arrays keep the dtype and shape they
        have in the file, with the exceptions listed below. Only numeric
        arrays (bool, integer, float, complex) are returned; other entries
        are skipped as described per format.

    Notes
    -----
    **.npy**: one entry named after the file's stem (``W1.npy`` -> ``"W1"``).

    **.npz**: every array, in the archive's order. Object arrays (which
    need pickle to read) and strings are skipped.

    **.pt / .pth**: ``torch.load(path, map_location="cpu", weights_only=True)``.
    The file may hold a state dict (``model.state_dict()``), a training
    checkpoint dict with the state dict under ``"state_dict"`` or
    ``"model_state_dict"`` (then only that entry is read: optimizer state,
    epoch counters and the like are ignored), or a single tensor (named
    after the stem). Nested dicts are flattened with dots (``{"enc":
    {"fc.weight": t}}`` -> ``"enc.fc.weight"``), lists and tuples with their
    index (``"layers.0"``). Entries that are not tensors (ints, floats,
    strings, None, ...) are skipped. Tensors are detached and moved to
    NumPy with their dtype; bfloat16 (and other dtypes NumPy lacks) become
    float32, sparse tensors dense, quantized tensors are dequantized.
    A file that needs the full unpickler (a pickled ``nn.Module``, NumPy
    arrays, custom classes) or a TorchScript archive is refused with a
    ValueError: save ``model.state_dict()`` instead.

    **.mat**: v4 to v7 files are read with :func:`scipy.io.loadmat`, v7.3
    files (HDF5, recognised by their header or HDF5 signature) with h5py.
    Shapes are MATLAB's: a column vector is (n, 1), and v7.3 datasets, which
    MATLAB stores transposed (column-major), are transposed back. Names:

    * struct fields are joined with dots: ``net.W1``; elements of a struct
      array with MATLAB subscripts (1-based): ``layer(1,2).W``;
    * cell elements with braces and all their MATLAB subscripts (1-based):
      ``net.IW{1,1}``, ``c{2,1}``;
    * sparse matrices become dense; logical arrays bool.

    Strings (char), function handles and class objects that are not
    struct-like (MATLAB's opaque ``classdef`` objects, ``#subsystem#``) are
    skipped. In v5 files numbers keep MATLAB's class (a double matrix is
    float64 even when the file stores it in a narrower integer type), except
    in files holding complex numbers, whose arrays keep the stored type.
    v7.3 cells and struct arrays are followed through their object
    references; references that do not point to datasets or groups are
    skipped.

    **.onnx**: every graph initializer, in graph order, converted with
    ``onnx.numpy_helper.to_array`` (external data is loaded from the
    model's directory), then the ``value`` tensors of ``Constant`` nodes,
    named after the node's output. Sparse initializers and subgraphs are
    not read.

    Raises
    ------
    TypeError
        ``path`` is not a str or os.PathLike.
    ValueError
        Unknown suffix; a corrupted file or one of the wrong format
        ("path: not a valid <format> file (...)", the underlying error is
        chained); a PyTorch file that weights-only loading refuses.
    FileNotFoundError
        ``path`` does not exist.
    ImportError
        The format's optional dependency is missing (the message names the
        extra to install).
    """
    path, suffix = _check_path(path)
    return _READERS[suffix](path)


def _check_path(path: Any) -> Tuple[str, str]:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path: expected a str or os.PathLike, got {type(path).__name__}")
    path = os.fspath(path)
    if not isinstance(path, str):  # a bytes path from a PathLike
        path = os.fsdecode(path)
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in SUFFIXES:
        supported = ", ".join(SUFFIXES)
        raise ValueError(
            f"{path}: unknown weights file suffix {suffix or '(none)'!r}; supported: {supported}"
        )
    if not os.path.exists(path):
        message = "weights file not found"
        if path.startswith("~") and os.path.exists(os.path.expanduser(path)):
            # like open() and numpy.load, "~" is not expanded; say so
            message += " ('~' is not expanded: pass os.path.expanduser(path))"
        raise FileNotFoundError(errno.ENOENT, message, path)
    if os.path.isdir(path):
        raise ValueError(f"{path}: is a directory, expected a {SUFFIXES[suffix]} file")
    # Opening it now surfaces PermissionError as itself, before any parser wraps it.
    with open(path, "rb"):
        pass
    return path, suffix


def _invalid(path: str, fmt: str, err: BaseException) -> ValueError:
    detail = str(err).strip().splitlines()
    detail = detail[0] if detail else ""
    what = type(err).__name__ + (f": {detail}" if detail else "")
    return ValueError(f"{path}: not a valid {fmt} file ({what})")


def _missing(module: str, fmt: str, extra: str) -> ImportError:
    return ImportError(
        f"descramble.io needs {module} to read {fmt} files: pip install 'descramble[{extra}]'"
    )


def _is_numeric(arr: np.ndarray) -> bool:
    return arr.dtype.kind in _NUMERIC_KINDS


# ---- NumPy ---------------------------------------------------------------


def _starts_with(path: str, *signatures: bytes) -> bool:
    with open(path, "rb") as f:
        head = f.read(max(len(sig) for sig in signatures))
    return any(head.startswith(sig) for sig in signatures)


def _read_npy(path: str) -> Dict[str, np.ndarray]:
    if _starts_with(path, b"PK\x03\x04", b"PK\x05\x06"):
        raise ValueError(f"{path}: not a valid NumPy .npy file (it is a zip archive such as .npz; rename it)")
    if not _starts_with(path, b"\x93NUMPY"):
        raise ValueError(f"{path}: not a valid NumPy .npy file (no .npy signature)")
    try:
        arr = np.load(path, allow_pickle=False)
    except ValueError as err:
        if "allow_pickle" in str(err):
            raise ValueError(
                f"{path}: holds Python objects (an object array), which would need pickle; "
                "descramble reads numeric arrays only"
            ) from err
        raise _invalid(path, "NumPy .npy", err) from err
    except Exception as err:
        raise _invalid(path, "NumPy .npy", err) from err
    if not _is_numeric(arr):
        raise ValueError(f"{path}: holds a {arr.dtype} array, not numbers")
    name = os.path.splitext(os.path.basename(path))[0]
    return {name: arr}


def _read_npz(path: str) -> Dict[str, np.ndarray]:
    if _starts_with(path, b"\x93NUMPY"):
        raise ValueError(f"{path}: not a valid NumPy .npz file (it is a single .npy array; rename it)")
    if not _starts_with(path, b"PK\x03\x04", b"PK\x05\x06"):
        raise ValueError(f"{path}: not a valid NumPy .npz file (no zip signature)")
    out: Dict[str, np.ndarray] = {}
    try:
        with np.load(path, allow_pickle=False) as archive:
            for name in archive.files:
                try:
                    arr = archive[name]
                except ValueError as err:
                    if "allow_pickle" in str(err):
                        continue  # an object array: skipped, never unpickled
                    raise
                if _is_numeric(arr):
                    out[name] = arr
    except Exception as err:
        raise _invalid(path, "NumPy .npz", err) from err
    return out


# ---- PyTorch -------------------------------------------------------------


def _read_torch(path: str) -> Dict[str, np.ndarray]:
    try:
        import torch
    except ImportError:
        raise _missing("PyTorch", "PyTorch .pt/.pth", "torch") from None
    import pickle

    try:
        with warnings.catch_warnings():
            # torch warns before refusing a TorchScript archive; the error below says it all
            warnings.filterwarnings("ignore", message=".*TorchScript archive", category=UserWarning)
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        message = str(err)
        if "Weights only load failed" in message:
            found = re.search(r"Unsupported global: GLOBAL (\S+)", message)
            offending = f" (it needs {found.group(1)})" if found else ""
            raise ValueError(
                f"{path}: PyTorch refused to load it with weights_only=True{offending}: the file "
                "holds Python objects besides tensors, such as a whole pickled model. "
                "descramble never unpickles arbitrary objects; save the weights instead: "
                "torch.save(model.state_dict(), path)"
            ) from err
        raise _invalid(path, "PyTorch", err) from err
    except Exception as err:
        if "TorchScript" in str(err):
            raise ValueError(
                f"{path}: a TorchScript archive, which weights-only loading does not read; "
                "save the weights instead: torch.save(model.state_dict(), path)"
            ) from err
        raise _invalid(path, "PyTorch", err) from err

    if isinstance(obj, dict):
        for key in _CHECKPOINT_KEYS:
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    out: Dict[str, np.ndarray] = {}
    if isinstance(obj, torch.Tensor):
        out[os.path.splitext(os.path.basename(path))[0]] = _tensor_to_numpy(obj, torch)
        return out
    for name, value in _flatten_torch(obj, ""):
        if isinstance(value, torch.Tensor):
            out[name] = _tensor_to_numpy(value, torch)
    return out


def _flatten_torch(obj: Any, prefix: str) -> Iterator[Tuple[str, Any]]:
    if isinstance(obj, dict):
        items = obj.items()
    elif isinstance(obj, (list, tuple)):
        items = enumerate(obj)
    else:
        yield prefix, obj
        return
    for key, value in items:
        name = f"{prefix}.{key}" if prefix else str(key)
        yield from _flatten_torch(value, name)


def _tensor_to_numpy(t: Any, torch: Any) -> np.ndarray:
    t = t.detach()
    if t.is_quantized:
        t = t.dequantize()
    if t.layout != torch.strided:
        t = t.to_dense()
    if t.dtype == torch.bfloat16:
        t = t.float()
    try:
        return t.numpy()
    except TypeError:  # float8 and other dtypes NumPy lacks
        return t.float().numpy()


# ---- MATLAB --------------------------------------------------------------


def _mat_is_hdf5(path: str) -> bool:
    """True for MATLAB v7.3 files: HDF5 behind a 512-byte MATLAB header."""
    with open(path, "rb") as f:
        header = f.read(128)
        if header.startswith(b"MATLAB 7.3"):
            return True
        for offset in (0, 512, 1024, 2048):
            f.seek(offset)
            if f.read(8) == _HDF5_SIGNATURE:
                return True
    return False


def _read_mat(path: str) -> Dict[str, np.ndarray]:
    if _mat_is_hdf5(path):
        return _read_mat73(path)
    try:
        import scipy.io
        import scipy.sparse
        from scipy.io import matlab
    except ImportError:
        raise _missing("SciPy", "MATLAB .mat", "matlab") from None
    complex_warning = getattr(getattr(np, "exceptions", np), "ComplexWarning")

    def read(mat_dtype: bool) -> Dict[str, Any]:
        return scipy.io.loadmat(path, mat_dtype=mat_dtype, squeeze_me=False, struct_as_record=True)

    try:
        try:
            # mat_dtype=True: MATLAB's class (double stays float64 even when
            # stored as small integers). It drops imaginary parts, so a file
            # holding complex numbers is read again with the stored types.
            with warnings.catch_warnings():
                warnings.simplefilter("error", complex_warning)
                variables = read(True)
        except complex_warning:
            variables = read(False)
    except Exception as err:
        raise _invalid(path, "MATLAB", err) from err

    out: Dict[str, np.ndarray] = {}
    skip = (matlab.MatlabOpaque, matlab.MatlabFunction)
    issparse = scipy.sparse.issparse

    def walk(name: str, value: Any) -> None:
        if issparse(value):
            out[name] = value.toarray()
            return
        if isinstance(value, skip) or not isinstance(value, np.ndarray):
            return
        if value.dtype.names:  # struct (or struct-based object): one entry per field
            for index in np.ndindex(value.shape):
                element = f"{name}({_subscripts(index)})" if value.size != 1 else name
                for field in value.dtype.names:
                    walk(f"{element}.{field}", value[index][field])
        elif value.dtype.kind == "O":  # cell array
            for index in np.ndindex(value.shape):
                walk(f"{name}{{{_subscripts(index)}}}", value[index])
        elif _is_numeric(value):
            out[name] = value

    for name, value in variables.items():
        if not (name.startswith("__") and name.endswith("__")):
            walk(name, value)
    return out


def _subscripts(index: Tuple[int, ...]) -> str:
    """MATLAB's 1-based subscripts of a NumPy index in MATLAB's shape."""
    return ",".join(str(i + 1) for i in index)


_MAT_NUMERIC_CLASSES = {
    "double", "single", "logical",
    "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
}
_MAT_DTYPES = {"double": np.float64, "single": np.float32, "logical": np.bool_}


def _attr_str(obj: Any, name: str) -> Optional[str]:
    value = obj.attrs.get(name)
    if value is None:
        return None
    if isinstance(value, np.ndarray):
        value = value.reshape(-1)[0] if value.size else b""
    if isinstance(value, bytes):
        return value.decode("ascii", "replace")
    return str(value)


def _read_mat73(path: str) -> Dict[str, np.ndarray]:
    try:
        import h5py
    except ImportError:
        raise _missing("h5py", "MATLAB v7.3 .mat", "matlab") from None
    out: Dict[str, np.ndarray] = {}
    try:
        with h5py.File(path, "r") as f:
            for name, item in f.items():
                if name.startswith("#"):  # #refs#, #subsystem#: MATLAB's internals
                    continue
                _walk_h5(f, name, item, out, h5py)
    except Exception as err:
        raise _invalid(path, "MATLAB v7.3", err) from err
    return out


def _walk_h5(f: Any, name: str, item: Any, out: Dict[str, np.ndarray], h5py: Any) -> None:
    cls = _attr_str(item, "MATLAB_class")
    if isinstance(item, h5py.Group):
        if cls == "function_handle":
            return
        if item.attrs.get("MATLAB_sparse") is not None:
            out[name] = _h5_sparse(item, cls)
            return
        fields = _h5_fields(item)
        for field in fields:
            member = item[field]
            if (isinstance(member, h5py.Dataset) and h5py.check_dtype(ref=member.dtype) is not None
                    and _attr_str(member, "MATLAB_class") is None):
                # struct array: one reference per element, stored transposed
                refs = member[()].T
                for index in np.ndindex(refs.shape):
                    target = _deref(f, refs[index])
                    if target is not None:
                        _walk_h5(f, f"{name}({_subscripts(index)}).{field}", target, out, h5py)
            else:
                _walk_h5(f, f"{name}.{field}", member, out, h5py)
        return
    if not isinstance(item, h5py.Dataset):
        return
    if item.attrs.get("MATLAB_object_decode") is not None:
        return  # opaque classdef object, string object, ...: skipped
    if cls == "cell":
        if item.attrs.get("MATLAB_empty"):
            return
        refs = item[()].T
        for index in np.ndindex(refs.shape):
            target = _deref(f, refs[index])
            if target is not None:
                _walk_h5(f, f"{name}{{{_subscripts(index)}}}", target, out, h5py)
        return
    if cls is not None and cls not in _MAT_NUMERIC_CLASSES:
        return  # char, function_handle, class objects
    if h5py.check_dtype(ref=item.dtype) is not None:
        return
    if item.attrs.get("MATLAB_empty"):
        dims = tuple(int(d) for d in np.asarray(item[()]).reshape(-1))
        out[name] = np.zeros(dims, dtype=_MAT_DTYPES.get(cls, cls or np.float64))
        return
    data = item[()]
    if isinstance(data, np.ndarray) and data.dtype.names and {"real", "imag"} <= set(data.dtype.names):
        data = data["real"] + 1j * data["imag"]
    data = np.asarray(data)
    if not _is_numeric(data):
        return
    if cls == "logical":
        data = data.astype(bool)
    out[name] = np.ascontiguousarray(data.T)  # MATLAB is column-major: back to its shape


def _h5_fields(group: Any) -> List[str]:
    """A struct group's fields, in MATLAB's order when the file records it."""
    names = list(group.keys())
    recorded = group.attrs.get("MATLAB_fields")
    if recorded is not None:
        try:
            order = ["".join(c.decode("ascii") if isinstance(c, bytes) else str(c) for c in field)
                     for field in recorded]
        except Exception:
            order = []
        if sorted(order) == sorted(names):
            return order
    return names


def _deref(f: Any, ref: Any) -> Any:
    if not ref:
        return None
    try:
        return f[ref]
    except Exception:
        return None  # a dangling or unsupported reference: skipped


def _h5_sparse(group: Any, cls: Optional[str]) -> np.ndarray:
    """A MATLAB sparse matrix (CSC: data, ir row indices, jc column starts) as dense."""
    rows = int(np.asarray(group.attrs["MATLAB_sparse"]).reshape(-1)[0])
    jc = np.asarray(group["jc"][()], dtype=np.int64).reshape(-1)
    cols = jc.size - 1
    dtype = _MAT_DTYPES.get(cls, np.float64)
    if "data" not in group:  # all zeros
        return np.zeros((rows, cols), dtype=dtype)
    data = group["data"][()]
    if data.dtype.names and {"real", "imag"} <= set(data.dtype.names):
        data = data["real"] + 1j * data["imag"]
    data = np.asarray(data).reshape(-1)
    ir = np.asarray(group["ir"][()], dtype=np.int64).reshape(-1)
    dense = np.zeros((rows, cols), dtype=np.result_type(dtype, data.dtype))
    dense[ir, np.repeat(np.arange(cols), np.diff(jc))] = data
    return dense


# ---- ONNX ----------------------------------------------------------------


def _read_onnx(path: str) -> Dict[str, np.ndarray]:
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise _missing("onnx", "ONNX", "onnx") from None
    try:
        model = onnx.load(path)
        if not model.HasField("graph"):
            raise ValueError("no graph in the model")
        graph = model.graph
        out: Dict[str, np.ndarray] = {}
        for tensor in graph.initializer:
            out[tensor.name] = numpy_helper.to_array(tensor)
        for node in graph.node:
            if node.op_type == "Constant" and node.output:
                for attr in node.attribute:
                    if attr.name == "value" and attr.HasField("t"):
                        out.setdefault(node.output[0], numpy_helper.to_array(attr.t))
    except Exception as err:
        raise _invalid(path, "ONNX", err) from err
    return {name: arr for name, arr in out.items() if _is_numeric(arr)}


_READERS: Dict[str, Callable[[str], Dict[str, np.ndarray]]] = {
    ".npy": _read_npy,
    ".npz": _read_npz,
    ".pt": _read_torch,
    ".pth": _read_torch,
    ".mat": _read_mat,
    ".onnx": _read_onnx,
}


# --------------------------------------------------------------------------
# load_layer
# --------------------------------------------------------------------------

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
    arrays = {k: v for k, v in weights.items() if _is_numeric(v) and v.size > 0}
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
    raise ValueError(
        f"{where}: several 2-D arrays, pass layer=NAME to choose one: {_weight_listing(matrices)}"
    )


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
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        raise ValueError(
            f"{where}: layer {layer!r} is ambiguous, pass one of: "
            f"{_listing({k: matrices[k] for k in found})}"
        )
    # 3. matrices whose name contains NAME as whole parts
    found = [k for k in matrices if _contains_parts(k, layer)]
    if len(found) > 1:
        proper = [k for k in found if not _is_vector(matrices[k])]
        if len(proper) == 1:
            found = proper
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        raise ValueError(
            f"{where}: layer {layer!r} matches several 2-D arrays, pass the full name of one: "
            f"{_listing({k: matrices[k] for k in found})}"
        )
    raise ValueError(
        f"layer {layer!r} not found in {where}; 2-D weights there: {_weight_listing(matrices)}"
    )


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
        hint = ""
        if _is_vector(b) and b.size == W.shape[1]:
            layout = "(inputs, outputs)" if not transpose else "(outputs, inputs)"
            hint = (f" (it matches W's other dimension: the matrix is stored as {layout}; "
                    f"pass transpose={not transpose})")
        raise ValueError(
            f"{where}: bias {bias_key!r} has shape {b.shape}, expected a vector of {m} entries "
            f"for weights {key!r} of shape {_shape(W)}{hint}"
        )
    check_real_dtype(b.dtype, f"{where}: {bias_key}")
    return np.array(b, dtype=np.float64).reshape(-1)
