"""``descramble permute``: rewrite a network with its hidden units in the smoothest order found, and report.

The network is read with :func:`descramble.io.load_network`; the permutations
come from :func:`descramble.permute_network` (one pass over the data); the
rewritten file keeps the input's keys and dtypes: a PyTorch state dict for a
``.pt``/``.pth`` file (torch needed), an ``.npz`` archive for ``.npz`` and
``.mat`` files. Only the dense layers' weights and biases change; every
other entry is copied as it is.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from .main import (UserError, _activation, _criterion_error, _layer_names, _load_network, _one_line,
                   _layer_warning_texts, _search_inputs, _smoothness_per_layer, _specs, open_data)

#: Suffixes whose rewritten network is a PyTorch state dict; the others (.npz, .mat) give an .npz archive.
TORCH_SUFFIXES = (".pt", ".pth")
SUFFIXES = TORCH_SUFFIXES + (".npz", ".mat")

#: Random inputs the written network is checked on against the original.
CHECK_ROWS = 256

Layers = List[Tuple[str, np.ndarray, Optional[np.ndarray]]]


def _warn(text: str) -> None:
    print(f"descramble permute: warning: {text}", file=sys.stderr)


def _layer_keys(path: str, layers: Layers) -> List[Tuple[str, Optional[str]]]:
    """The file's (weight key, bias key) of each layer :func:`descramble.io.load_network` returned."""
    from ..io import load_weights
    from ..io.layers import _conventional_weight, _layer_name, _partners

    arrays = load_weights(path)
    keys: List[Tuple[str, Optional[str]]] = []
    for name, _, b in layers:
        # As load_network names them: fc1.weight -> fc1 (preferred: an unrelated 2-D entry may be named fc1 too),
        # else W1, net.W2: the entry's own name.
        conventional = [k for k in arrays if _conventional_weight(k) and _layer_name(k) == name]
        if conventional:
            weight = conventional[0]
        elif name in arrays and arrays[name].ndim == 2:
            weight = name
        else:  # pragma: no cover - load_network names layers after these entries only
            raise UserError(f"--weights: {path}: cannot find the entry of layer {name!r} to rewrite")
        bias = None if b is None else next(k for k in _partners(weight) if k in arrays and k != weight)
        keys.append((weight, bias))
    return keys


def _move(a: Any, p: np.ndarray, s: Optional[np.ndarray], axis: int) -> Any:
    """``a`` (a NumPy array or a torch tensor) indexed by ``p`` along ``axis`` and negated where ``s < 0`` (exact)."""
    index: Any = p
    negative: Any = None if s is None or not np.any(s < 0) else s < 0
    if not isinstance(a, np.ndarray):  # a torch tensor: index with tensors
        import torch

        index = torch.as_tensor(p, dtype=torch.long)
        negative = None if negative is None else torch.as_tensor(negative)
    moved = a[index] if axis == 0 else a[:, index]
    if negative is not None:
        if axis == 0:
            moved[negative] = -moved[negative]
        else:
            moved[:, negative] = -moved[:, negative]
    return moved.contiguous() if not isinstance(moved, np.ndarray) else np.ascontiguousarray(moved)


def _rewrite(entries: Dict[str, Any], keys: List[Tuple[str, Optional[str]]], permutations: List[np.ndarray],
             signs: List[Optional[np.ndarray]], transpose: bool) -> List[str]:
    """Permute the layers' entries in place (hidden layers' rows and biases, the next layers' columns).

    Returns the keys that changed.
    """
    rows, columns = (1, 0) if transpose else (0, 1)
    for k, s in enumerate(signs):
        if s is None or not np.any(s < 0):
            continue
        for key in (keys[k][0], keys[k][1], keys[k + 1][0]):
            dtype = None if key is None else entries[key].dtype
            if dtype is not None and (dtype.kind in "ub" if isinstance(dtype, np.dtype)
                                      else not (dtype.is_floating_point or dtype.is_signed)):
                raise UserError(f"--weights: entry {key!r} has dtype {dtype}, which cannot hold the negated values "
                                "that --criterion signed-permutation writes; use --criterion permutation, or "
                                "store the network in a signed or floating dtype")
    changed = []
    for k, (weight, bias) in enumerate(keys):
        W = entries[weight]
        if k < len(permutations):
            W = _move(W, permutations[k], signs[k], rows)
            if bias is not None:
                entries[bias] = _move(entries[bias], permutations[k], signs[k], 0)
                changed.append(bias)
        if k > 0:
            W = _move(W, permutations[k - 1], signs[k - 1], columns)
        entries[weight] = W
        changed.append(weight)
    return changed


def _torch_state(path: str) -> Tuple[Any, Dict[str, Any], Dict[str, Tuple[Any, Any]], Optional[str]]:
    """The file's state dict (as torch.load gives it), its tensors by flattened name (as
    :func:`descramble.io.load_weights` names them) with their (container, key) slots, and the checkpoint key
    the state dict was found under (None for a bare state dict)."""
    try:
        import torch
    except ImportError:
        raise UserError("--weights: rewriting a PyTorch state dict needs torch: pip install torch") \
            from None
    from ..io.torch_files import _CHECKPOINT_KEYS

    obj = torch.load(path, map_location="cpu", weights_only=True)
    found = None
    if isinstance(obj, dict):
        for key in _CHECKPOINT_KEYS:
            if isinstance(obj.get(key), dict):
                obj, found = obj[key], key
                break
    tensors: Dict[str, Any] = {}
    slots: Dict[str, Tuple[Any, Any]] = {}

    def walk(container: Any, prefix: str) -> None:
        items = container.items() if isinstance(container, dict) else enumerate(container)
        for key, value in items:
            name = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, (dict, list)):
                walk(value, name)
            elif isinstance(value, torch.Tensor):
                tensors[name] = value
                slots[name] = (container, key)

    walk(obj, "")
    return obj, tensors, slots, found


def _npz_entries(path: str, suffix: str) -> Dict[str, np.ndarray]:
    """Every entry of an .npz (in its order and dtype), or the numeric arrays of a .mat and its activation."""
    if suffix == ".mat":
        from ..io import load_activation, load_weights

        entries = dict(load_weights(path))
        activation = load_activation(path)
        if activation is not None and "activation" not in entries:
            entries["activation"] = np.array(activation)
        return entries
    entries = {}
    with np.load(path, allow_pickle=False) as archive:
        for name in archive.files:
            try:
                entries[name] = archive[name]
            except ValueError:
                raise UserError(f"--weights: {path}: entry {name!r} is an object array (it would need pickle); "
                                "the rewritten archive could not keep it") from None
    return entries


def _atomic(target: Path, write: Any) -> None:
    """``write(temporary path)``, then rename it over ``target`` (no half-written file on failure)."""
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(handle)
    try:
        write(temporary)
        os.replace(temporary, target)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def _forward(layers: List[Tuple[np.ndarray, Optional[np.ndarray], str]], X: np.ndarray) -> np.ndarray:
    functions: Dict[str, Any] = {"identity": lambda z: z, "relu": lambda z: np.maximum(z, 0.0), "tanh": np.tanh,
                 "sigmoid": lambda z: 0.5 * (1.0 + np.tanh(0.5 * z))}
    h = X
    for W, b, activation in layers:
        h = functions[activation](h @ W.T + (0.0 if b is None else b))
    return h


def permute_command(args: argparse.Namespace) -> int:
    """``descramble permute``: see the module docstring (and ``descramble permute --help``)."""
    from . import report
    from .demo import describe
    from .main import _check_figures
    from ..io import load_network
    from ..network import check_criterion
    from ..permute import permute_network

    start = time.perf_counter()
    weights = str(args.weights)
    if not Path(weights).is_file():
        raise UserError(f"--weights: {weights}: no such file")
    suffix = Path(weights).suffix.lower()
    if suffix not in SUFFIXES:
        raise UserError(f"--weights: {weights}: permute rewrites PyTorch state dicts (.pt, .pth) and .npz/.mat "
                        f"archives of dense layers, not {suffix or 'files without a suffix'}")
    _check_figures(args)
    layers = _load_network(args)
    if len(layers) < 2:
        raise UserError(f"--weights: {weights} holds one dense layer, the output layer: there is no hidden layer "
                        "to permute")
    activation = _activation(args, layers)
    names = _layer_names(layers)
    count = len(layers) - 1
    written = Path(weights).stem + (suffix if suffix in TORCH_SUFFIXES else ".npz")
    figures = not args.no_figures
    fmt = args.format
    planned = [written, "summary.json", "index.html"] + ([f"network.{fmt}"] if figures else [])
    for k in range(count):
        planned += report.layer_files(names[k], figures=figures, convergence=False, format=fmt,
                                      input_descrambled=k > 0, criterion=args.criterion)
    inputs: Dict[str, Optional[str]] = {"--weights": weights}
    data_path = args.data if Path(args.data).exists() else args.data.partition(":")[0]
    inputs["--data"] = data_path
    for k, spec in enumerate(_specs(args)):
        kind, _, arg = spec.partition(":")
        if kind in ("gram", "matrix") and arg:
            inputs["--smoothness" if k == 0 else f"--smoothness ({k + 1})"] = arg
    report.check_outputs(args.out, planned, inputs, args.force)
    smooths = _smoothness_per_layer(args, layers, names, count)
    stack = [(W, b, activation if k < count else "identity") for k, (_, W, b) in enumerate(layers)]
    try:
        check_criterion(args.criterion, [a for _, _, a in stack[:count]])
    except ValueError as exc:
        raise UserError(_criterion_error(exc, names)) from None
    keys = _layer_keys(weights, layers)
    torch_file = suffix in TORCH_SUFFIXES
    if torch_file:
        state, entries, slots, checkpoint = _torch_state(weights)
    else:
        entries, checkpoint = _npz_entries(weights, suffix), None
    data, keywords = open_data(args.data, args.dtype, args.n_features)
    out = report.prepare(args.out)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = permute_network(stack, data, criterion=args.criterion, smoothness=smooths, seed=args.seed,
                                 max_iterations=args.max_iterations, time_limit=args.time_limit,
                                 progress=args.progress, **keywords)
    searched = time.perf_counter()

    # The rewritten file: the same entries, the layers' weights and biases moved.
    changed = _rewrite(entries, keys, result.permutations,
                       [d.signs for d in result.descramblers], bool(args.transpose))
    target = out / written
    if torch_file:
        import torch

        for name in changed:
            container, key = slots[name]
            container[key] = entries[name]
        _atomic(target, lambda path: torch.save(state, path))
    else:
        _atomic(target, lambda path: _save_npz(path, entries))

    # Read it back as any user would, and compare the two networks on random inputs.
    try:
        reread = load_network(target, transpose=bool(args.transpose))
    except ValueError as exc:  # pragma: no cover - the file was just written from a readable one
        raise UserError(f"{target}: the rewritten network does not read back ({_one_line(exc)})") from None
    rng = np.random.default_rng(0)
    X = rng.standard_normal((CHECK_ROWS, layers[0][1].shape[1]))
    before = _forward([(W, b, a) for (_, W, b), (_, _, a) in zip(layers, stack)], X)
    after = _forward([(W, b, a) for (_, W, b), (_, _, a) in zip(reread, stack)], X)
    difference = float(np.max(np.abs(after - before)))
    scale = float(np.max(np.abs(before)))
    if not difference <= 1e-9 * max(scale, 1.0):  # a reordering only changes the rounding of the sums
        target.unlink()
        print(f"descramble permute: error: the rewritten network's outputs differ from the original's by "
              f"{difference:.3g} (largest output {scale:.3g}) on {CHECK_ROWS} random inputs; {target} was not "
              "kept (please report this)", file=sys.stderr)
        return 1

    summaries: Dict[str, Any] = {}
    for k, d in enumerate(result.descramblers):
        texts = _layer_warning_texts(caught, k)
        for text in texts:
            _warn(text)
        label = "input index" if k == 0 else f"{names[k - 1]} unit (trained order)"
        layer = report.layer_report(out, names[k], d, layers[k][1], figures=figures, dpi=args.dpi, format=fmt,
                                    input_label=label)
        layer["warnings"] = texts
        layer["name_in_file"] = layers[k][0]
        layer["keys"] = [key for key in keys[k] if key is not None]
        layer["activation"] = stack[k][2]
        layer["identity"] = bool(np.array_equal(result.permutations[k], np.arange(d.P.shape[0]))
                                 and (d.signs is None or bool(np.all(d.signs > 0))))
        summaries[names[k]] = layer
    files: List[str] = []
    if figures:
        from .. import plot

        fig = plot.permuted_network([W for _, W, _ in layers], [W for W, _, _ in result.layers],
                                    result.descramblers, names=names,
                                    title=f"{Path(weights).name}: before (top) and after (bottom), "
                                          f"{args.criterion}")
        files.append(plot.save(fig, out / f"network.{fmt}", dpi=args.dpi, format=fmt).name)
    summary = {
        "command": "permute",
        "inputs": {"weights": weights, "data": str(args.data), "activation": activation,
                   "layers": [name for name, _, _ in layers], "transpose": bool(args.transpose),
                   **_search_inputs(args)},
        "network": {"sizes": [int(layers[0][1].shape[1])] + [int(W.shape[0]) for _, W, _ in layers]},
        "rewritten": {
            "file": written,
            "format": "PyTorch state dict" if torch_file else "NumPy .npz",
            "changed_keys": changed,
            **({"from_checkpoint_key": checkpoint} if checkpoint is not None else {}),
            # The written file, read back, against the original on random standard-normal inputs.
            "check_inputs": CHECK_ROWS,
            "max_abs_output_difference": difference,
            "max_abs_output": scale,
        },
        "figures": files,
        "N": int(result.descramblers[0].n_samples or 0),
        "layers": summaries,
        "timings_s": {"search": round(searched - start, 3), "total": round(time.perf_counter() - start, 3)},
        "versions": report.versions(),
    }
    report.write_summary(out, summary)
    report.write_index(out, summary)
    print(describe(summary))
    print(f"rewritten network: {target.resolve()} (outputs agree to {difference:.1e} on {CHECK_ROWS} random "
          f"inputs, largest output {scale:.3g})")
    print(f"report: {out.resolve()} ({len(planned)} files)")
    return 0


def _save_npz(path: str, entries: Dict[str, np.ndarray]) -> None:
    with open(path, "wb") as handle:
        np.savez(handle, **entries)  # type: ignore[arg-type]  # (numpy's stubs: allow_pickle among **kwds)


__all__ = ["permute_command", "SUFFIXES"]
