"""What every weights reader shares: the suffixes, path checks and error messages."""

from __future__ import annotations

import errno
import os
from typing import Any, Tuple

import numpy as np

from .._validation import as_regular_file

#: The suffixes :func:`load_weights` reads, and the format each one means.
SUFFIXES = {
    ".npy": "NumPy .npy",
    ".npz": "NumPy .npz",
    ".pt": "PyTorch",
    ".pth": "PyTorch",
    ".mat": "MATLAB",
    ".onnx": "ONNX",
}

# Numeric dtype kinds load_weights returns: bool, integers, floats, complex.
_NUMERIC_KINDS = "biufc"


def check_path(path: Any) -> Tuple[str, str]:
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
    # A FIFO or a device would block or never end a reader: refused before anything opens it.
    as_regular_file(path, "path")
    # Opening it now surfaces PermissionError as itself, before any parser wraps it.
    with open(path, "rb"):
        pass
    return path, suffix


def invalid(path: str, fmt: str, err: BaseException) -> ValueError:
    lines = str(err).strip().splitlines()
    detail = lines[0] if lines else ""
    what = type(err).__name__ + (f": {detail}" if detail else "")
    return ValueError(f"{path}: not a valid {fmt} file ({what})")


def missing(module: str, fmt: str, package: str) -> ImportError:
    """The ImportError for a missing optional package, naming the pip package that provides it."""
    return ImportError(f"descramble.io needs {module} to read {fmt} files: pip install {package}")


def is_numeric(arr: np.ndarray) -> bool:
    return arr.dtype.kind in _NUMERIC_KINDS


def starts_with(path: str, *signatures: bytes) -> bool:
    with open(path, "rb") as f:
        head = f.read(max(len(sig) for sig in signatures))
    return any(head.startswith(sig) for sig in signatures)
