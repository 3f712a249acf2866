"""``load_weights``: every numeric array of a weights file, read by the module of its format."""

from __future__ import annotations

import os
from typing import Callable, Dict

import numpy as np

from ._common import SUFFIXES, check_path
from .matlab import read_mat
from .numpy_files import read_npy, read_npz
from .onnx_files import read_onnx
from .torch_files import read_torch

__all__ = ["SUFFIXES", "load_weights"]


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
    path, suffix = check_path(path)
    return _READERS[suffix](path)


_READERS: Dict[str, Callable[[str], Dict[str, np.ndarray]]] = {
    ".npy": read_npy,
    ".npz": read_npz,
    ".pt": read_torch,
    ".pth": read_torch,
    ".mat": read_mat,
    ".onnx": read_onnx,
}
