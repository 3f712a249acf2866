"""The one argument-checking vocabulary of the package.

Every public function checks its arguments with these helpers, so that the
same mistake gets the same message everywhere: ``TypeError`` for the wrong
kind of value (complex, strings, objects), ``ValueError`` for the wrong
shape or content, each message starting with the argument's name. Nothing is
copied unless the core cannot read the data in place.
"""

from __future__ import annotations

import errno
import numbers
import os
import stat
from typing import Any

import numpy as np

# dtype kinds the core reads directly: bool, signed and unsigned integers, floats.
_REAL_KINDS = "biuf"

# torch dtypes NumPy holds as they are; any other floating tensor (bfloat16,
# the float8 types) is widened exactly to float32 before .numpy().
_NUMPY_FLOATS = ("torch.float16", "torch.float32", "torch.float64")


def is_tensor(a: Any) -> bool:
    """True for a PyTorch tensor (a ``torch.Tensor`` or subclass: ``nn.Parameter``, ...).

    Recognised by duck typing, without importing torch: a class named
    ``Tensor`` from a ``torch`` module in the type's MRO, and a ``detach`` method.
    """
    return hasattr(a, "detach") and any(
        cls.__name__ == "Tensor" and (cls.__module__ == "torch" or cls.__module__.startswith("torch."))
        for cls in type(a).__mro__
    )


def as_numpy(a: Any) -> Any:
    """Return a PyTorch tensor as a NumPy array; anything else unchanged.

    The one place tensors become arrays: ``a.detach()`` (tensors that
    require grad, ``nn.Parameter``), ``.cpu()`` (a copy for tensors on a
    GPU; a view on the CPU), conjugate and negative views resolved, and
    bfloat16 or float8 widened exactly to float32 (a copy); then
    ``.numpy()``, which shares the CPU tensor's memory. torch is never
    imported: a tensor can only be passed by a caller that imported it.
    """
    if not is_tensor(a):
        return a
    t = a.detach()
    if t.device.type != "cpu":
        t = t.cpu()
    t = t.resolve_conj().resolve_neg()
    if t.is_floating_point() and str(t.dtype) not in _NUMPY_FLOATS:
        t = t.float()
    return t.numpy()


def as_positive_int(value: Any, name: str) -> int:
    """Return ``value`` as an ``int`` >= 1, or raise naming ``name``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected a positive integer, got {value!r}")
    if value < 1:
        raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    return int(value)


def check_flag(value: Any, name: str) -> bool:
    """Return ``value`` (True or False, a NumPy bool too) as a bool, or raise TypeError naming ``name``."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected True or False, got {value!r}")
    return bool(value)


def as_row(value: Any, name: str) -> int:
    """Return ``value`` (a row number of a stream) as an ``int`` >= 0, or raise naming ``name``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected a non-negative integer (a row number), got {value!r}")
    row = int(value)
    if row < 0 or row >= 2**62:
        raise ValueError(f"{name}: expected a non-negative integer below 2**62 (a row number), got {value!r}")
    return row


def as_ddof(ddof: Any, name: str = "ddof") -> float:
    """Return ``ddof`` (a real number, not a bool) as a float, or raise TypeError naming ``name``."""
    if isinstance(ddof, (bool, np.bool_)) or not isinstance(ddof, numbers.Real):
        raise TypeError(f"{name}: expected a real number, got {ddof!r}")
    return float(ddof)


def check_finite(arr: np.ndarray, name: str, *, error: type[ValueError] = ValueError) -> None:
    """Raise ``error`` (ValueError) naming ``name`` when ``arr`` holds NaN or infinity."""
    if not np.isfinite(arr).all():
        raise error(f"{name}: contains NaN or infinity")


def as_matrix(a: Any, name: str, *, finite: bool = True, rows: int | None = None,
              columns: int | None = None, error: type[ValueError] = ValueError) -> np.ndarray:
    """Return ``a`` as a real 2-D float64 array (no copy when it already is one).

    Parameters
    ----------
    a : array_like
    name : str
        The argument's name, used in every message.
    finite : bool, default True
        Refuse NaN and infinity.
    rows, columns : int, optional
        Required number of rows / columns.
    error : type, default ValueError
        The ValueError subclass raised for the wrong shape or content
        (``numpy.linalg.LinAlgError`` where numpy.linalg raises it).

    Raises
    ------
    TypeError
        For complex or non-numeric input.
    ValueError
        (``error``) For a shape other than 2-D (or than ``rows`` x
        ``columns``), or non-finite entries when ``finite``.
    """
    if isinstance(a, (str, bytes)):
        raise TypeError(f"{name}: expected a real matrix, got {type(a).__name__}")
    arr = np.asarray(as_numpy(a))
    if arr.dtype.kind not in _REAL_KINDS:
        qualifier = "complex " if arr.dtype.kind == "c" else ""
        raise TypeError(f"{name}: expected a real matrix, got {qualifier}dtype {arr.dtype}")
    if arr.ndim != 2:
        raise error(f"{name}: expected a 2-D matrix, got shape {arr.shape}")
    if rows is not None and arr.shape[0] != rows:
        raise error(f"{name}: expected {rows} rows, got shape {arr.shape}")
    if columns is not None and arr.shape[1] != columns:
        raise error(f"{name}: expected {columns} columns, got shape {arr.shape}")
    arr = arr.astype(np.float64, copy=False)
    if finite:
        check_finite(arr, name, error=error)
    return arr


def as_square(a: Any, name: str, size: int | None = None, *,
              error: type[ValueError] = ValueError) -> np.ndarray:
    """Return ``a`` as a finite, square, real float64 matrix (of ``size`` x ``size`` when given).

    Shape and content errors raise ``error`` (a ValueError subclass), as in :func:`as_matrix`.
    """
    arr = as_matrix(a, name, error=error)
    if arr.shape[0] != arr.shape[1]:
        raise error(f"{name}: expected a square matrix, got shape {arr.shape}")
    if size is not None and arr.shape[0] != size:
        raise error(f"{name}: expected shape ({size}, {size}), got {arr.shape}")
    return arr


def as_symmetric(a: Any, name: str, size: int | None = None, rtol: float = 1e-10) -> np.ndarray:
    """Return ``a`` symmetrised, after checking it is symmetric to ``rtol`` of its largest entry."""
    arr = as_square(a, name, size)
    scale = max(float(np.abs(arr).max(initial=0.0)), np.finfo(float).tiny)
    if arr.size and np.abs(arr - arr.T).max() > rtol * scale:
        raise ValueError(f"{name}: expected a symmetric matrix")
    return arr / 2 + arr.T / 2  # not (arr + arr.T) / 2: that overflows for entries near the float64 limit


def as_vector(a: Any, name: str, size: int | None = None) -> np.ndarray:
    """Return ``a`` as a finite, real 1-D float64 array (of ``size`` entries when given)."""
    if isinstance(a, (str, bytes)):
        raise TypeError(f"{name}: expected a real vector, got {type(a).__name__}")
    arr = np.asarray(as_numpy(a))
    check_real_dtype(arr.dtype, name)
    if arr.ndim != 1 or (size is not None and arr.shape[0] != size):
        expected = "a 1-D array" if size is None else f"shape ({size},)"
        raise ValueError(f"{name}: expected {expected}, got shape {arr.shape}")
    arr = arr.astype(np.float64, copy=False)
    check_finite(arr, name)
    return arr


def as_regular_file(path: Any, name: str) -> str:
    """Return ``os.fspath(path)`` after checking that it names a regular file.

    A FIFO, a device (``/dev/zero``) or a socket would hang or never end a
    reader, so they are refused before anything opens them.

    Raises
    ------
    FileNotFoundError, IsADirectoryError, PermissionError
        As ``open()`` would, with ``filename`` set.
    ValueError
        For anything that is not a regular file, naming ``name`` and the path.
    """
    p = os.fspath(path)
    mode = os.stat(p).st_mode  # FileNotFoundError / PermissionError name the path
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), p)
    if not stat.S_ISREG(mode):
        kind = ("a FIFO" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
                else "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
        raise ValueError(f"{name}: {p!r} is {kind}; expected a regular file")
    return p


def as_threads(threads: Any) -> int:
    """The core's thread count for ``threads``: 0 (every core) for None, else a positive int."""
    return 0 if threads is None else as_positive_int(threads, "threads")


def check_real_dtype(dtype: np.dtype, name: str) -> None:
    """Raise TypeError unless ``dtype`` holds real numbers (bool, int, float)."""
    if dtype.kind == "c":
        raise TypeError(
            f"{name}: complex input (dtype {dtype}) is not supported; "
            "pass the real and imaginary parts as separate features"
        )
    if dtype.kind not in _REAL_KINDS:
        raise TypeError(f"{name}: expected real numbers (bool, integer or float), got dtype {dtype}")


def as_chunk(chunk: Any, n_features: int | None = None, name: str = "chunk") -> np.ndarray:
    """Return ``chunk`` as a 2-D array of samples the core can read in place.

    Arrays of float64, float32, any integer width or bool pass through
    untouched, in any memory order or striding. Only float16, extended
    precision and non-native byte order are converted (a copy).
    """
    if isinstance(chunk, (str, bytes)):
        raise TypeError(f"{name}: expected a 2-D array of numbers, got {type(chunk).__name__}")
    arr = np.asarray(as_numpy(chunk))
    check_real_dtype(arr.dtype, name)
    if arr.ndim != 2:
        width = "n_features" if n_features is None else n_features
        raise ValueError(
            f"{name}: expected a 2-D array of shape (rows, {width}) with one sample per row, "
            f"got shape {arr.shape}"
        )
    if n_features is not None and arr.shape[1] != n_features:
        raise ValueError(f"{name}: expected {n_features} columns (n_features), got {arr.shape[1]}")
    if arr.dtype.kind == "f" and arr.dtype.itemsize not in (4, 8):
        # float16 widens exactly to float32; extended precision rounds to float64.
        arr = arr.astype(np.float32 if arr.dtype.itemsize < 4 else np.float64)
    elif not arr.dtype.isnative or not arr.flags.aligned:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return arr


def as_weights(weights: Any, rows: int, name: str = "weights") -> np.ndarray:
    """Return ``weights`` as a contiguous float64 vector of ``rows`` entries.

    Finiteness and signs are checked by the core, which names the offending entry.
    """
    if isinstance(weights, (str, bytes)):
        raise TypeError(f"{name}: expected a 1-D array of numbers, got {type(weights).__name__}")
    w = np.asarray(as_numpy(weights))
    check_real_dtype(w.dtype, name)
    if w.ndim != 1 or w.shape[0] != rows:
        raise ValueError(f"{name}: expected a 1-D array of {rows} weights (one per row), got shape {w.shape}")
    return np.ascontiguousarray(w, dtype=np.float64)
