"""ONNX models: graph initializers and ``Constant`` values; onnx is imported on first use."""

from __future__ import annotations

from typing import Dict

import numpy as np

from ._common import invalid, is_numeric, missing


def read_onnx(path: str) -> Dict[str, np.ndarray]:
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise missing("onnx", "ONNX", "onnx") from None
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
        raise invalid(path, "ONNX", err) from err
    return {name: arr for name, arr in out.items() if is_numeric(arr)}
