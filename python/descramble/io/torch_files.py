"""PyTorch ``.pt``/``.pth`` files: ``torch.load(weights_only=True)``; torch is imported on first use."""

from __future__ import annotations

import os
import re
import warnings
from typing import Any, Dict, Iterable, Iterator, Tuple

import numpy as np

from ._common import invalid, missing

# Keys of a training checkpoint whose value is the model's state dict.
_CHECKPOINT_KEYS = ("state_dict", "model_state_dict")


def read_torch(path: str) -> Dict[str, np.ndarray]:
    try:
        import torch
    except ImportError:
        raise missing("PyTorch", "PyTorch .pt/.pth", "torch") from None
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
        raise invalid(path, "PyTorch", err) from err
    except Exception as err:
        if "TorchScript" in str(err):
            raise ValueError(
                f"{path}: a TorchScript archive, which weights-only loading does not read; "
                "save the weights instead: torch.save(model.state_dict(), path)"
            ) from err
        raise invalid(path, "PyTorch", err) from err

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
    items: Iterable[Tuple[Any, Any]]
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
