"""NumPy ``.npy`` and ``.npz`` weights files, read with ``allow_pickle=False``."""

from __future__ import annotations

import os
from typing import Dict

import numpy as np

from ._common import invalid, is_numeric, starts_with


def read_npy(path: str) -> Dict[str, np.ndarray]:
    if starts_with(path, b"PK\x03\x04", b"PK\x05\x06"):
        raise ValueError(f"{path}: not a valid NumPy .npy file (it is a zip archive such as .npz; rename it)")
    if not starts_with(path, b"\x93NUMPY"):
        raise ValueError(f"{path}: not a valid NumPy .npy file (no .npy signature)")
    try:
        arr = np.load(path, allow_pickle=False)
    except ValueError as err:
        if "allow_pickle" in str(err):
            raise ValueError(
                f"{path}: holds Python objects (an object array), which would need pickle; "
                "descramble reads numeric arrays only"
            ) from err
        raise invalid(path, "NumPy .npy", err) from err
    except Exception as err:
        raise invalid(path, "NumPy .npy", err) from err
    if not is_numeric(arr):
        raise ValueError(f"{path}: holds a {arr.dtype} array, not numbers")
    name = os.path.splitext(os.path.basename(path))[0]
    return {name: arr}


def read_npz(path: str) -> Dict[str, np.ndarray]:
    if starts_with(path, b"\x93NUMPY"):
        raise ValueError(f"{path}: not a valid NumPy .npz file (it is a single .npy array; rename it)")
    if not starts_with(path, b"PK\x03\x04", b"PK\x05\x06"):
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
                if is_numeric(arr):
                    out[name] = arr
    except Exception as err:
        raise invalid(path, "NumPy .npz", err) from err
    return out
