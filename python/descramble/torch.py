"""Hidden autocorrelations and descramblers of PyTorch models.

Forward hooks on the named submodules of a model hand every batch's hidden
signals to :class:`~descramble.Autocorrelation` accumulators as the data
stream through the model; the signals themselves are never stored, so memory
stays bounded by one batch plus the ``m x m`` accumulators, whatever the size
of the data (MATH.md §1: ``S = (1/N) sum_i y_i y_i^T``).

PyTorch is an optional dependency (``pip install 'descramble[torch]'``; the
CPU build is enough). It is imported by the functions of this module, never
by ``import descramble``.

Functions
---------
collect
    One :class:`~descramble.Autocorrelation` per named layer, from forward
    passes over the data.
descramble_model
    One :class:`~descramble.Descrambler` per hidden ``nn.Linear`` layer (MATH.md §3).

Conventions
-----------
* **Layers** are named as in ``model.named_modules()`` (``"0"``, ``"fc1"``,
  ``"encoder.fc"``; ``""`` is the model itself). The default is every
  ``nn.Linear``.
* **Signals.** ``pre_activation=True`` records each named module's own output;
  for an ``nn.Linear`` that is the pre-activation ``W x + b``. Name an
  activation module (``"1"`` for the ``nn.ReLU`` of ``nn.Sequential(Linear,
  ReLU, ...)``) to record its output instead; this works in any model.
  ``pre_activation=False`` records, for each named module, the output of the
  element-wise activation module that follows it in its parent
  ``nn.Sequential`` (``nn.ReLU``, ``nn.Tanh``, ``nn.Sigmoid``, ``nn.GELU``,
  ... see :data:`ELEMENTWISE`); a module with no such successor is an error
  (activations applied in a custom ``forward`` with ``torch.relu`` or
  ``F.relu`` are not modules and cannot be hooked).
* **Shapes.** The last dimension of a recorded output is the feature axis;
  leading dimensions are flattened into samples, so a ``(batch, seq, m)``
  output adds ``batch * seq`` rows of ``m`` features (the convention of
  ``nn.Linear``, which acts on the last dimension). Channel-first outputs
  (convolutions, ``(batch, C, H, W)``) would need a permute first.
* **Copies.** CPU float32/float64 outputs reach the C++ core as NumPy views
  of the tensors (no copy when the output is contiguous, as ``nn.Linear``'s
  is). Outputs on another device are copied to the CPU, one batch at a time;
  float16, bfloat16 and other narrow floating types are widened exactly to
  float32 (a copy). NumPy and CPU tensor inputs are fed in views of
  ``chunk_rows`` rows; a floating input whose dtype differs from the model's
  (float64 data, float32 model) is converted chunk by chunk, as are inputs on
  another device than the model, and integer or bool inputs of a model that
  starts with an ``nn.Linear`` (uint8 images: values 0 to 255).
* **Mode.** The passes run under ``torch.no_grad()`` with the model in
  ``eval()`` mode (dropout off, batch norm on its running statistics); every
  module's ``training`` flag is restored afterwards and every hook removed,
  also when an error interrupts the pass.

Examples
--------
>>> import torch, descramble.torch
>>> _ = torch.manual_seed(0)
>>> model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 3))
>>> x = torch.randn(1000, 16)
>>> stats = descramble.torch.collect(model, ["0", "2"], x)
>>> stats["0"].count, stats["0"].n_features
(1000, 32)
>>> descramblers = descramble.torch.descramble_model(model, x)  # not the output layer "2"
>>> sorted(descramblers), descramblers["0"].P.shape
(['0'], (32, 32))
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from ._validation import as_positive_int, check_flag, check_real_dtype
from .accumulator import Autocorrelation, _as_precision
from .descrambler import Descrambler, _descramble
from .diagnostics import warn
from .sources import progress_bar

if TYPE_CHECKING:  # pragma: no cover - only for type checkers
    import torch

__all__ = ["ELEMENTWISE", "collect", "descramble_model"]

_MISSING = ("descramble.torch needs PyTorch: pip install 'descramble[torch]' "
            "(CPU-only build: pip install torch --index-url https://download.pytorch.org/whl/cpu)")

#: Names of the ``torch.nn`` activation modules that ``pre_activation=False``
#: accepts after a layer: element-wise maps, so the recorded signal has the
#: layer's width and row i still belongs to sample i.
ELEMENTWISE = (
    "CELU", "ELU", "GELU", "Hardshrink", "Hardsigmoid", "Hardswish", "Hardtanh", "Identity", "LeakyReLU",
    "LogSigmoid", "Mish", "PReLU", "RReLU", "ReLU", "ReLU6", "SELU", "SiLU", "Sigmoid", "Softplus",
    "Softshrink", "Softsign", "Tanh", "Tanhshrink", "Threshold",
)

#: Input rows per forward pass for tensor and array data: about this many bytes of input...
_CHUNK_BYTES = 32 << 20
#: ...but never more rows than this (hidden layers may be much wider than the input).
_MAX_CHUNK_ROWS = 16384

Layers = Union[str, Sequence[str], None]


def _torch() -> Any:
    """Import torch, or raise an ImportError naming the extra."""
    try:
        import torch  # absolute import: the top-level package, not this module
    except ImportError as exc:  # pragma: no cover - exercised only without torch
        raise ImportError(_MISSING) from exc
    return torch


# -- layers ---------------------------------------------------------------------------------


def _check_model(torch: Any, model: Any) -> None:
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")


def _available(modules: Dict[str, Any]) -> str:
    names = [repr(name) for name in modules if name]
    shown = ", ".join(names[:30])
    return shown + (f", ... ({len(names)} in all)" if len(names) > 30 else "")


def _elementwise(torch: Any) -> Tuple[type, ...]:
    return tuple(getattr(torch.nn, name) for name in ELEMENTWISE if hasattr(torch.nn, name))


def _successor(torch: Any, model: Any, name: str) -> Optional[Any]:
    """The module after ``name`` in its parent ``nn.Sequential``, when it is
    an element-wise activation; else None."""
    if not name:
        return None
    parent_name, _, key = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    if not isinstance(parent, torch.nn.Sequential):
        return None
    keys = list(parent._modules)  # not named_children(): that drops repeated modules
    position = keys.index(key)
    if position + 1 == len(keys):
        return None
    successor = parent._modules[keys[position + 1]]
    return successor if isinstance(successor, _elementwise(torch)) else None


def _resolve_layers(torch: Any, model: Any, layers: Layers, pre_activation: bool) -> Dict[str, Tuple[Any, Any]]:
    """name -> (module, activation module or None), in the order requested."""
    modules = dict(model.named_modules())
    if layers is None:
        names = [name for name, module in modules.items() if isinstance(module, torch.nn.Linear)]
        if not pre_activation:
            names = [name for name in names if _successor(torch, model, name) is not None]
        if not names:
            what = "nn.Linear layers" if pre_activation else \
                "nn.Linear layers followed by an element-wise activation module in an nn.Sequential"
            raise ValueError(f"layers: the model has no {what}; name the layers to record "
                             f"(available: {_available(modules)})")
    else:
        names = [layers] if isinstance(layers, str) else layers  # type: ignore[assignment]
        if not isinstance(names, Iterable):
            raise TypeError(f"layers: expected a layer name or a sequence of names, got {type(layers).__name__}")
        names = list(names)
        if not names:
            raise ValueError("layers: expected at least one layer name (or None for every nn.Linear)")
        for name in names:
            if not isinstance(name, str):
                raise TypeError(f"layers: expected names (str) as in model.named_modules(), got {name!r}")
            if name not in modules:
                raise ValueError(f"layers: unknown layer {name!r}; available: {_available(modules)}")
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"layers: {', '.join(map(repr, repeated))} named more than once")
    resolved = {}
    for name in names:
        activation = None
        if not pre_activation:
            activation = _successor(torch, model, name)
            if activation is None:
                raise ValueError(
                    f"layers: {name!r} is not followed by an element-wise activation module in an "
                    "nn.Sequential, so pre_activation=False has no activation to record; name the "
                    "activation module itself with pre_activation=True (any named module's output "
                    "can be recorded)"
                )
        resolved[name] = (modules[name], activation)
    return resolved


def _first_linear(torch: Any, model: Any) -> Optional[Tuple[str, Any]]:
    """(name, layer) of the nn.Linear that reads the model's input, when the
    model is one (or nested nn.Sequential starting with one); else None."""
    name, module = "", model
    while isinstance(module, torch.nn.Sequential) and len(module._modules) > 0:
        key, module = next(iter(module._modules.items()))
        name = f"{name}.{key}" if name else key
    if not isinstance(module, torch.nn.Linear) or isinstance(module.weight, torch.nn.parameter.UninitializedParameter):
        return None
    return name or "model", module


# -- data -----------------------------------------------------------------------------------


def _model_placement(model: Any) -> Tuple[Any, Any]:
    """(device, floating dtype) of the model's first parameter or buffer (None when it has none)."""
    device = dtype = None
    for tensor in list(model.parameters()) + list(model.buffers()):
        if device is None:
            device = tensor.device
        if dtype is None and tensor.is_floating_point():
            dtype = tensor.dtype
    return device, dtype


def _as_input(torch: Any, x: Any, device: Any, dtype: Any, where: str) -> Any:
    """A batch as the model's input tensor: NumPy arrays become tensors sharing
    their memory, floating tensors take the model's dtype and device."""
    if isinstance(x, np.ndarray):
        check_real_dtype(x.dtype, where)
        if not x.flags.writeable or not x.dtype.isnative:
            x = np.array(x, dtype=x.dtype.newbyteorder("="))  # torch cannot view these
        x = torch.from_numpy(x)
    elif not isinstance(x, torch.Tensor):
        raise TypeError(f"{where}: expected a torch.Tensor or numpy.ndarray, got {type(x).__name__}; for other "
                        "batches pass forward=, e.g. forward=lambda model, batch: model(**batch) for dicts")
    if x.is_complex():
        raise TypeError(f"{where}: complex input (dtype {x.dtype}) is not supported")
    if x.is_floating_point() and dtype is not None and x.dtype != dtype:
        x = x.to(dtype=dtype)
    if device is not None and x.device != device:
        x = x.to(device=device)
    return x


def _default_chunk_rows(x: Any) -> int:
    row_bytes = max(1, int(np.prod(x.shape[1:], dtype=np.int64)) * x.dtype.itemsize)
    return max(1, min(_MAX_CHUNK_ROWS, _CHUNK_BYTES // row_bytes))


def _batches(torch: Any, data: Any, chunk_rows: Optional[int]) -> Iterator[Tuple[Any, bool]]:
    """(batch, is_input) pairs: views of ``chunk_rows`` rows of a tensor or
    array (is_input True), or the items of an iterable of batches."""
    if isinstance(data, (torch.Tensor, np.ndarray)):
        if isinstance(data, np.ndarray):
            check_real_dtype(data.dtype, "data")
        if data.ndim < 1:
            raise ValueError(f"data: expected an array of shape (N, ...) with one sample per row, "
                             f"got shape {tuple(data.shape)}")
        step = _default_chunk_rows(data) if chunk_rows is None else chunk_rows
        for start in range(0, data.shape[0], step):
            yield data[start:start + step], True
        return
    if isinstance(data, (str, bytes)) or not isinstance(data, Iterable):
        raise TypeError("data: expected a torch.Tensor, a numpy.ndarray, or an iterable of batches "
                        f"(a DataLoader, a list, a generator), got {type(data).__name__}")
    for batch in data:
        yield batch, False


def _length(data: Any) -> Optional[int]:
    """``len(data)`` (a DataLoader's number of batches), or None when it has none."""
    try:
        return len(data)
    except Exception:  # no __len__, or one that raises (an IterableDataset's DataLoader)
        return None


def _input_of(batch: Any, index: int) -> Any:
    """The model input in a batch: the batch itself, or the first element of a tuple/list."""
    if isinstance(batch, (tuple, list)):
        if not batch:
            raise ValueError(f"data: batch {index} is an empty {type(batch).__name__}")
        return batch[0]
    return batch


# -- recording ------------------------------------------------------------------------------


def _rows(torch: Any, output: Any, name: str) -> np.ndarray:
    """A recorded output as a (samples, features) NumPy array, a view when possible."""
    if not isinstance(output, torch.Tensor):
        raise TypeError(f"layer {name!r}: expected its output to be a tensor, got {type(output).__name__}; "
                        "name a submodule whose output is a tensor")
    if output.ndim < 2:
        raise ValueError(f"layer {name!r}: output of shape {tuple(output.shape)}; expected "
                         "(batch, ..., features) with at least 2 dimensions")
    if output.is_complex():
        raise TypeError(f"layer {name!r}: complex output (dtype {output.dtype}) is not supported")
    h = output.detach()
    dtype = h.dtype
    if h.is_floating_point():
        if dtype not in (torch.float32, torch.float64):
            dtype = torch.float32  # float16, bfloat16, float8: exact widening
    elif dtype not in (torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64):
        raise TypeError(f"layer {name!r}: unsupported output dtype {dtype}")
    if h.device.type != "cpu" or dtype != h.dtype:
        h = h.to(device="cpu", dtype=dtype)
    if h.ndim > 2:
        h = h.reshape(-1, h.shape[-1])  # a view of contiguous outputs
    return h.numpy()


class _Recorder:
    """The hooks of one named layer and the accumulator they feed."""

    def __init__(self, torch: Any, name: str, module: Any, activation: Any, precision: str,
                 threads: Optional[int]) -> None:
        self.torch, self.name, self.precision, self.threads = torch, name, precision, threads
        self.acc: Optional[Autocorrelation] = None
        self.rows = 0  # rows recorded so far: errors name the row of all the layer's outputs
        self.pending = None  # pre_activation=False: the layer output awaiting its activation
        self.handles = []
        try:
            if activation is None:
                self.handles.append(module.register_forward_hook(self._record_output))
            else:
                self.handles.append(module.register_forward_hook(self._await_activation))
                self.handles.append(activation.register_forward_hook(self._record_activation))
        except BaseException:
            self.remove()
            raise

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles.clear()

    def _update(self, output: Any) -> None:
        rows = _rows(self.torch, output, self.name)
        if self.acc is None:
            self.acc = Autocorrelation(rows.shape[1], precision=self.precision, threads=self.threads)
        # The core names the row of all the layer's outputs recorded so far (the
        # sample, for 2-D outputs), not of this batch: NonFiniteError.row.
        self.acc.update(rows, first_row=self.rows, source=f"layer {self.name!r} output")
        self.rows += rows.shape[0]

    def _record_output(self, module: Any, inputs: Any, output: Any) -> None:
        self._update(output)

    def _await_activation(self, module: Any, inputs: Any, output: Any) -> None:
        if self.pending is not None:
            raise RuntimeError(f"layer {self.name!r} ran twice before its activation; "
                               "record the activation module with pre_activation=True instead")
        self.pending = output

    def _record_activation(self, module: Any, inputs: Any, output: Any) -> None:
        # The same activation module may be reused elsewhere: record only its
        # calls on this layer's output.
        if self.pending is not None and len(inputs) > 0 and inputs[0] is self.pending:
            self.pending = None
            self._update(output)

    def end_batch(self) -> None:
        if self.pending is not None:
            self.pending = None
            raise RuntimeError(f"layer {self.name!r}: its output did not reach the activation module after it; "
                               "record the activation module with pre_activation=True instead")


def collect(
    model: "torch.nn.Module",
    layers: Layers,
    data: Any,
    *,
    pre_activation: bool = True,
    chunk_rows: Optional[int] = None,
    forward: Optional[Callable[[Any, Any], Any]] = None,
    precision: str = "float64",
    threads: Optional[int] = None,
    progress: bool = False,
) -> Dict[str, Autocorrelation]:
    """Stream ``data`` through ``model`` and accumulate the hidden signals of the named layers.

    Forward hooks hand every batch's signals to one
    :class:`~descramble.Autocorrelation` per layer; the signals are never
    stored. ``S = acc.autocorrelation()`` is the layer's hidden
    autocorrelation (MATH.md §1), ready for ``descramble(hidden=acc)``.

    Parameters
    ----------
    model : torch.nn.Module
    layers : str, sequence of str, or None
        Names as in ``model.named_modules()``; None: every ``nn.Linear`` (with
        ``pre_activation=False``: every ``nn.Linear`` followed by an
        element-wise activation module in an ``nn.Sequential``).
    data : torch.Tensor, numpy.ndarray, or iterable of batches
        A tensor or array of shape (N, ...) is fed in views of ``chunk_rows``
        rows. Anything else iterable (a ``DataLoader``, a list, a generator)
        yields batches: a tensor or array is the input; of a tuple or list
        (``(x, y)`` from a ``TensorDataset``) the first element is the input
        and the rest is ignored. For other batches (dicts, several inputs)
        pass ``forward``.
    pre_activation : bool, default True
        True: record each named module's output (for ``nn.Linear``,
        ``W x + b``). False: record the output of the element-wise activation
        module that follows each named module in its ``nn.Sequential``.
    chunk_rows : int, optional
        Rows per forward pass for tensor and array data (default: about
        32 MiB of input, at most 16384 rows). Not used for iterables.
    forward : callable, optional
        ``forward(model, batch)`` runs the model on one batch, replacing the
        default call, for batches the default cannot read (dicts:
        ``lambda m, b: m(**b)``; several inputs: ``lambda m, b: m(*b)``). Each
        batch (for tensor or array data: each view of ``chunk_rows`` rows) is
        passed as it is, without dtype or device conversion or width check.
    precision : {"float64", "mixed"}, default "float64"
        Arithmetic of the accumulators (see :class:`~descramble.Autocorrelation`).
    threads : int, optional
        Threads per accumulator update (default: every core).
    progress : bool, default False
        Show a tqdm progress bar: of input rows for tensor and array data,
        of batches for iterables (out of ``len(data)`` when it has one, as a
        ``DataLoader`` does).

    Returns
    -------
    dict of str to Autocorrelation
        One accumulator per layer, in the order of ``layers``, keyed by the
        names given (with ``pre_activation=False`` the signal is the
        activation's output, keyed by the layer's name).

    Raises
    ------
    TypeError
        ``model`` is not an ``nn.Module``; ``layers``, ``data`` or a batch
        has the wrong type; a recorded output is not a real tensor.
    ValueError
        An unknown or repeated layer name (the message lists the available
        names); a layer without an activation module after it under
        ``pre_activation=False``; input whose last dimension does not match
        the ``in_features`` of a model starting with ``nn.Linear``; no
        batches; a layer that never ran; NaN or infinity in a recorded
        output (naming the layer and row).

    Notes
    -----
    The model runs in ``eval()`` mode under ``torch.no_grad()``; afterwards
    every module's ``training`` flag is restored and every hook removed, also
    when an error (or Ctrl-C) stops the pass. A layer called several times per
    forward pass (shared weights) contributes rows from every call.
    """
    torch = _torch()
    _check_model(torch, model)
    if not isinstance(pre_activation, (bool, np.bool_)):
        raise TypeError(f"pre_activation: expected True or False, got {pre_activation!r}")
    if chunk_rows is not None:
        chunk_rows = as_positive_int(chunk_rows, "chunk_rows")
    if forward is not None and not callable(forward):
        raise TypeError(f"forward: expected a callable forward(model, batch), got {type(forward).__name__}")
    _as_precision(precision)
    if threads is not None:
        as_positive_int(threads, "threads")
    check_flag(progress, "progress")
    resolved = _resolve_layers(torch, model, layers, bool(pre_activation))
    device, dtype = _model_placement(model)
    first = _first_linear(torch, model)

    training = [(module, module.training) for module in model.modules()]
    recorders: List[_Recorder] = []
    batches = 0
    try:
        for name, (module, activation) in resolved.items():
            recorders.append(_Recorder(torch, name, module, activation, precision, threads))
        model.eval()
        by_rows = isinstance(data, (torch.Tensor, np.ndarray)) and data.ndim > 0
        total = data.shape[0] if by_rows else _length(data)
        with torch.no_grad(), progress_bar(progress, total, "collect", "rows" if by_rows else "batches") as report:
            for index, (batch, is_input) in enumerate(_batches(torch, data, chunk_rows)):
                if forward is not None:
                    forward(model, batch)
                else:
                    where = "data" if is_input else f"data: batch {index}"
                    x = _as_input(torch, batch if is_input else _input_of(batch, index), device, dtype, where)
                    if first is not None and (x.ndim < 1 or x.shape[-1] != first[1].in_features):
                        raise ValueError(
                            f"{where}: expected inputs with {first[1].in_features} features in the last "
                            f"dimension (the in_features of layer {first[0]!r}), got shape {tuple(x.shape)}"
                        )
                    if first is not None and not x.is_floating_point():
                        x = x.to(dtype=first[1].weight.dtype)  # integer/bool data: nn.Linear needs floats
                    model(x)
                for recorder in recorders:
                    recorder.end_batch()
                batches += 1
                report(len(batch) if is_input else 1)
    finally:
        for recorder in recorders:
            recorder.remove()
        for module, flag in training:
            module.training = flag
    if batches == 0:
        raise ValueError("data: no batches (empty data)")
    for recorder in recorders:
        if recorder.acc is None:
            raise ValueError(f"layers: layer {recorder.name!r} never ran during the forward passes "
                             "(it is not part of the model's forward computation)")
    return {recorder.name: recorder.acc for recorder in recorders if recorder.acc is not None}


def _output_layer(torch: Any, model: Any) -> Optional[str]:
    """The name of the model's last ``nn.Linear`` in ``named_modules()`` order (its output layer), or None."""
    names = [name for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)]
    return names[-1] if names else None


def descramble_model(
    model: "torch.nn.Module",
    data: Any,
    layers: Layers = None,
    *,
    output: bool = False,
    smoothness: Any = "fourier",
    order: Optional[int] = None,
    chunk_rows: Optional[int] = None,
    forward: Optional[Callable[[Any, Any], Any]] = None,
    precision: str = "float64",
    threads: Optional[int] = None,
    progress: bool = False,
) -> Dict[str, Descrambler]:
    """The closed-form descrambler of every hidden ``nn.Linear`` layer of a model (MATH.md §3).

    One pass over ``data`` (:func:`collect` with ``pre_activation=True``)
    accumulates each layer's pre-activations ``y = W x + b``; each layer's
    descrambler is then ``descramble(W, hidden=S, ...)`` with ``S`` the
    autocorrelation of the recorded ``y``: exactly the finite-N hidden
    autocorrelation of the signals the model computes, bias included (equal,
    up to rounding, to the input route ``descramble(W, autocorrelation=C,
    bias=b)`` of MATH.md §1; tested to 1e-10 relative in float64). It costs
    ``m^2`` per sample and layer (``m`` = out_features) rather than ``n^2``
    for the input.

    Parameters
    ----------
    model : torch.nn.Module
    data : torch.Tensor, numpy.ndarray, or iterable of batches
        As in :func:`collect`.
    layers : str, sequence of str, or None
        Names of ``nn.Linear`` modules (as in ``model.named_modules()``);
        default every ``nn.Linear`` but the output layer (see ``output``).
        Named layers are descrambled whatever ``output`` says.
    output : bool, default False
        With ``layers=None``, also descramble the output layer: the last
        ``nn.Linear`` in ``model.named_modules()`` order. Its units' order is
        fixed by the task (class k is output k), so it is not scrambled and
        by default not descrambled; for a model whose last registered
        ``nn.Linear`` is not its output layer, name the layers.
    smoothness, order
        As in :func:`descramble.descramble`.
    chunk_rows, forward, precision, threads, progress
        As in :func:`collect`.

    Returns
    -------
    dict of str to Descrambler
        In the order of ``layers``. ``d.weights`` is ``P @ W``; descramble
        the bias with ``d.P @ b`` and the next layer's columns with
        ``d.apply_next(W_next)`` (for pre-activation descramblers that
        rotation is exact only for linear successors). ``d.n_samples`` is
        the number of rows each layer recorded.

    Raises
    ------
    TypeError, ValueError
        As :func:`collect`; ValueError when a named layer is not an
        ``nn.Linear``, or when ``layers=None`` leaves no layer (the model's
        only ``nn.Linear`` is its output layer: pass ``output=True``).

    Warns
    -----
    UnderdeterminedWarning, ConstantDataWarning
        As :func:`descramble.descramble`, per layer (the message names it;
        ``ConstantDataWarning.source`` is the layer's name): e.g. a layer
        with more units than inputs plus one, or fewer samples than units.
    """
    torch = _torch()
    _check_model(torch, model)
    check_flag(output, "output")
    if layers is None and not any(isinstance(module, torch.nn.Linear) for module in model.modules()):
        raise ValueError("model: it has no nn.Linear layers, and descramble_model descrambles nn.Linear layers "
                         "only; for other layers use collect() and descramble(hidden=...)")
    if layers is None and not output:
        last = _output_layer(torch, model)
        layers = [name for name, module in model.named_modules()
                  if isinstance(module, torch.nn.Linear) and name != last]
        if not layers:
            raise ValueError(f"model: its only nn.Linear, {last!r}, is the output layer, whose order is fixed by "
                             "the task; pass output=True to descramble it anyway")
    if layers is not None:
        names = [layers] if isinstance(layers, str) else layers
        modules = dict(model.named_modules())
        if isinstance(names, Iterable):
            names = layers = list(names)  # a generator is read once here, then handed to collect
            for name in names:
                if isinstance(name, str) and name in modules and not isinstance(modules[name], torch.nn.Linear):
                    raise ValueError(
                        f"layers: {name!r} is a {type(modules[name]).__name__}, not an nn.Linear; for other "
                        "layers use collect() and descramble(hidden=...)"
                    )
    stats = collect(model, layers, data, pre_activation=True, chunk_rows=chunk_rows, forward=forward,
                    precision=precision, threads=threads, progress=progress)
    modules = dict(model.named_modules())
    result = {}
    for name, acc in stats.items():
        layer = modules[name]
        W = layer.weight.detach().to(device="cpu", dtype=torch.float64).numpy()
        result[name], found = _descramble(W, hidden=acc, smoothness=smoothness, order=order,
                                          where=f"layer {name!r}: ", source=name,
                                          inputs=(W.shape[1], layer.bias is not None))
        for warning in found:
            warn(warning)
    return result
