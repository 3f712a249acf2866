"""MATLAB ``.mat`` files: v4 to v7 with SciPy, v7.3 (HDF5) with h5py, both imported on first use."""

from __future__ import annotations

import warnings
from typing import Any, Dict, List, Optional, Set, Tuple

import numpy as np

from ._common import invalid, is_numeric, missing

# HDF5 files start with this signature at offset 0, 512, 1024, 2048, ...
# (MATLAB v7.3 files put their 128-byte header in a 512-byte user block).
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


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


def read_mat(path: str) -> Dict[str, np.ndarray]:
    if _mat_is_hdf5(path):
        return read_mat73_(path)
    try:
        import scipy.io
        import scipy.sparse
        from scipy.io import matlab
    except ImportError:
        raise missing("SciPy", "MATLAB .mat", "scipy") from None
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
        raise invalid(path, "MATLAB", err) from err

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
        elif is_numeric(value):
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
_MAT_DTYPES: Dict[Optional[str], Any] = {"double": np.float64, "single": np.float32, "logical": np.bool_}


def _attr_str(obj: Any, name: str) -> Optional[str]:
    value = obj.attrs.get(name)
    if value is None:
        return None
    if isinstance(value, np.ndarray):
        value = value.reshape(-1)[0] if value.size else b""
    if isinstance(value, bytes):
        return value.decode("ascii", "replace")
    return str(value)


def read_mat73_(path: str) -> Dict[str, np.ndarray]:
    try:
        import h5py
    except ImportError:
        raise missing("h5py", "MATLAB v7.3 .mat", "h5py") from None
    out: Dict[str, np.ndarray] = {}
    try:
        with h5py.File(path, "r") as f:
            seen: Set[Any] = set()
            for name, item in f.items():
                if name.startswith("#"):  # #refs#, #subsystem#: MATLAB's internals
                    continue
                _walk_h5(f, name, item, out, h5py, seen, 0)
    except _TooDeep as err:
        raise ValueError(f"{path}: not a valid MATLAB v7.3 file ({err})") from None
    except Exception as err:
        raise invalid(path, "MATLAB v7.3", err) from err
    return out


# Deeper nesting of structs and cells than this is refused (MATLAB files nest a few levels).
_MAX_DEPTH = 100


class _TooDeep(Exception):
    pass


def _walk_h5(f: Any, name: str, item: Any, out: Dict[str, np.ndarray], h5py: Any,
             seen: Set[Any], depth: int) -> None:
    """Add the numeric arrays under ``item`` to ``out``, named from ``name``.

    Every HDF5 object is walked once (``seen``): an object reached again
    through another reference or hard link (a DAG of shared cells, or a
    cycle) is skipped, its arrays having been read under the first name
    that reached it. So a file is read in time linear in its objects. Top-level
    variables are always read under their own names.
    """
    # h5py objects compare and hash by file and address. A top-level variable is read under
    # its own name even when another name links to the same object (``f["W2"] = f["W1"]``).
    if depth > 0 and item in seen:
        return
    seen.add(item)
    if depth > _MAX_DEPTH:
        shown = name if len(name) <= 60 else name[:60] + "..."
        raise _TooDeep(f"{shown}: structs and cells nested deeper than {_MAX_DEPTH} levels")
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
                        _walk_h5(f, f"{name}({_subscripts(index)}).{field}", target, out, h5py, seen,
                                 depth + 1)
            else:
                _walk_h5(f, f"{name}.{field}", member, out, h5py, seen, depth + 1)
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
                _walk_h5(f, f"{name}{{{_subscripts(index)}}}", target, out, h5py, seen, depth + 1)
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
    if not is_numeric(data):
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
