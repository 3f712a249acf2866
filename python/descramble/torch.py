"""Hidden autocorrelations and descramblers of PyTorch models.

Forward hooks on the named submodules of a model hand every batch's hidden
signals to :class:`~descramble.Autocorrelation` accumulators as the data
stream through the model; the signals themselves are never stored, so memory
stays bounded by one batch plus the ``m x m`` accumulators, whatever the size
of the data (docs/math.md §1: ``S = (1/N) sum_i y_i y_i^T``).

PyTorch is an optional dependency (``pip install torch``; the
CPU build is enough). It is imported by the functions of this module, never
by ``import descramble``.

Functions
---------
collect
    One :class:`~descramble.Autocorrelation` per named layer, from forward
    passes over the data.
descramble_model
    One :class:`~descramble.Descrambler` per hidden ``nn.Linear`` or
    convolution layer (docs/math.md §3).
permute_model
    An equivalent copy of an ``nn.Sequential`` model whose hidden units
    (``nn.Linear`` units, convolution channels) are in the smoothest order
    found, with the certificate of each layer's permutation (issue 13).

Conventions
-----------
* **Layers** are named as in ``model.named_modules()`` (``"0"``, ``"fc1"``,
  ``"encoder.fc"``; ``""`` is the model itself). The default is every
  ``nn.Linear``, ``nn.Conv1d``, ``nn.Conv2d`` and ``nn.Conv3d``.
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
  ``nn.Linear``, which acts on the last dimension). The outputs of
  convolutions and pooling (``(batch, C, *spatial)``) and of batch norm
  (axis 1) are channel-first: every spatial position of every sample is a
  row of ``C`` channel values, so ``S`` is the channel autocorrelation pooled
  over positions and samples (``batch * prod(spatial)`` rows per batch, row
  ``sample * prod(spatial) + position``). So are the outputs of element-wise
  activations and dropout that follow one of those modules in an
  ``nn.Sequential`` (``pre_activation=False`` after a convolution, or the
  ``nn.ReLU`` after it named directly).
* **Copies.** CPU float32/float64 outputs reach the C++ core as NumPy views
  of the tensors (no copy when the output is contiguous, as ``nn.Linear``'s
  is). A channel-first output is handed to the core sample by sample as
  strided views of its ``(C, positions)`` blocks (no copy) when a sample has
  at least 128 positions, else copied once per batch into ``(rows, C)``.
  Outputs on another device are copied to the CPU, one batch at a time;
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
>>> new, found = descramble.torch.permute_model(model, x, max_iterations=10)  # the same function
>>> found["0"].permutation.shape, bool(torch.allclose(new(x), model(x), atol=1e-6))
((32,), True)
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

from ._validation import as_positive_int, check_flag, check_real_dtype
from .accumulator import Autocorrelation, _as_precision
from .descrambler import Descrambler, _descramble, _search_options
from .diagnostics import warn
from .sources import progress_bar

if TYPE_CHECKING:  # pragma: no cover - only for type checkers
    import torch

__all__ = ["ELEMENTWISE", "PermutedModel", "collect", "descramble_model", "permute_model"]

_MISSING = ("descramble.torch needs PyTorch: pip install torch "
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


def _layer_types(torch: Any) -> Tuple[type, ...]:
    """The weight layers whose units :func:`descramble_model` and :func:`permute_model` order."""
    return (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)


_LAYER_NAMES = "nn.Linear, nn.Conv1d, nn.Conv2d or nn.Conv3d"


def _dropouts(torch: Any) -> Tuple[type, ...]:
    names = ("Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout")
    return tuple(getattr(torch.nn, name) for name in names if hasattr(torch.nn, name))


_POOLS = ("MaxPool", "AvgPool", "AdaptiveAvgPool", "AdaptiveMaxPool", "LPPool")


def _spatial_dims(torch: Any, module: Any) -> Optional[int]:
    """d for a module acting on (batch, C, *d spatial axes) per channel or across channels
    (convolutions, pooling); None for other modules."""
    if isinstance(module, torch.nn.modules.conv._ConvNd):
        return len(module.kernel_size)
    kind = type(module).__name__
    for prefix in _POOLS:
        for d in (1, 2, 3):
            if kind == f"{prefix}{d}d" and isinstance(module, getattr(torch.nn, kind, ())):
                return d
    return None


def _batchnorms(torch: Any) -> Tuple[type, ...]:
    return (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)


def _layout(torch: Any, model: Any, name: str, module: Any) -> Tuple[str, int]:
    """Where a module's output holds its features (see :func:`_rows`): channel-first after
    convolutions, pooling and batch norm, and after element-wise activations and dropout
    that follow one of those in an ``nn.Sequential``; else the last axis."""
    transparent = _elementwise(torch) + _dropouts(torch)
    while True:
        d = _spatial_dims(torch, module)
        if d is not None:
            return ("spatial", d)
        if isinstance(module, _batchnorms(torch)):
            return ("batchnorm", 0)
        if not isinstance(module, transparent) or not name:
            return ("last", 0)
        parent_name, _, key = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        if not isinstance(parent, torch.nn.Sequential):
            return ("last", 0)
        keys = list(parent._modules)
        position = keys.index(key)
        if position == 0:
            return ("last", 0)
        key = keys[position - 1]
        name, module = (f"{parent_name}.{key}" if parent_name else key), parent._modules[key]


def _resolve_layers(torch: Any, model: Any, layers: Layers, pre_activation: bool) -> Dict[str, Tuple[Any, Any]]:
    """name -> (module, activation module or None), in the order requested."""
    modules = dict(model.named_modules())
    if layers is None:
        names = [name for name, module in modules.items() if isinstance(module, _layer_types(torch))]
        if not pre_activation:
            names = [name for name in names if _successor(torch, model, name) is not None]
        if not names:
            what = f"{_LAYER_NAMES} layers" if pre_activation else \
                f"{_LAYER_NAMES} layers followed by an element-wise activation module in an nn.Sequential"
            raise ValueError(f"layers: the model has no {what}; name the layers to record "
                             f"(available: {_available(modules)})")
    else:
        names = [layers] if isinstance(layers, str) else layers  # type: ignore[assignment]
        if not isinstance(names, Iterable):
            raise TypeError(f"layers: expected a layer name or a sequence of names, got {type(layers).__name__}")
        names = list(names)
        if not names:
            raise ValueError("layers: expected at least one layer name (or None for every nn.Linear "
                             "and convolution)")
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


#: Spatial positions per sample from which a channel-first output is handed
#: to the core sample by sample, as strided views (no copy); below it, the
#: batch is copied once into (rows, channels) (fewer, larger core calls).
_VIEW_ROWS = 128


def _channel_axis(layout: Tuple[str, int], ndim: int, name: str, shape: Tuple[int, ...]) -> int:
    """The axis of a recorded output that holds the features (units or channels)."""
    kind, spatial = layout
    if kind == "last":
        return ndim - 1
    if kind == "batchnorm":
        return 1
    axis = ndim - 1 - spatial  # (batch, C, *spatial) or unbatched (C, *spatial)
    if axis < 0:
        raise ValueError(f"layer {name!r}: output of shape {shape} has no channel axis before its "
                         f"{spatial} spatial dimension{'s' * (spatial != 1)}")
    return axis


def _rows(torch: Any, output: Any, name: str, layout: Tuple[str, int] = ("last", 0)) -> List[np.ndarray]:
    """A recorded output as (samples, features) NumPy arrays, in row order: views when possible.

    ``layout`` says where the features are: ``("last", 0)`` the last axis
    (``nn.Linear``); ``("spatial", d)`` the axis before the ``d`` trailing
    spatial axes (convolutions, pooling: every position of every sample is
    a row of channel values); ``("batchnorm", 0)`` axis 1.
    """
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
    axis = _channel_axis(layout, h.ndim, name, tuple(output.shape))
    if axis == h.ndim - 1:
        if h.ndim > 2:
            h = h.reshape(-1, h.shape[-1])  # a view of contiguous outputs
        return [h.numpy()]
    # Channel-first: (lead..., C, *spatial) -> rows (prod(lead) * prod(spatial), C), position-major
    # within each leading index (row = sample * positions + position).
    channels = h.shape[axis]
    positions = int(np.prod(h.shape[axis + 1:], dtype=np.int64))
    lead = int(np.prod(h.shape[:axis], dtype=np.int64))
    if h.is_contiguous() and positions >= _VIEW_ROWS:
        # Each sample's (C, positions) block, transposed: a Fortran-ordered view the core reads in place.
        blocks = h.reshape(lead, channels, positions).numpy()
        return [block.T for block in blocks]
    return [h.movedim(axis, -1).reshape(-1, channels).numpy()]  # one copy per batch


class _Recorder:
    """The hooks of one named layer and the accumulator they feed."""

    def __init__(self, torch: Any, name: str, module: Any, activation: Any, precision: str,
                 threads: Optional[int], layout: Tuple[str, int] = ("last", 0)) -> None:
        self.torch, self.name, self.precision, self.threads = torch, name, precision, threads
        self.layout = layout
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
        chunks = _rows(self.torch, output, self.name, self.layout)
        if self.acc is None:
            self.acc = Autocorrelation(chunks[0].shape[1], precision=self.precision, threads=self.threads)
        # The core names the row of all the layer's outputs recorded so far (the
        # sample, for 2-D outputs; sample * positions + position for channel-first
        # outputs), not of this batch: NonFiniteError.row.
        for rows in chunks:
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
    autocorrelation (docs/math.md §1), ready for ``descramble(hidden=acc)``.

    Parameters
    ----------
    model : torch.nn.Module
    layers : str, sequence of str, or None
        Names as in ``model.named_modules()``; None: every ``nn.Linear``,
        ``nn.Conv1d``, ``nn.Conv2d`` and ``nn.Conv3d`` (with
        ``pre_activation=False``: every one of them followed by an
        element-wise activation module in an ``nn.Sequential``). The outputs
        of convolutions, pooling and batch norm (and of the activations after
        them) are channel-first: each spatial position of each sample is a row
        of channel values (see the module's Conventions).
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
            recorders.append(_Recorder(torch, name, module, activation, precision, threads,
                                       _layout(torch, model, name, module)))
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
    """The name of the model's last weight layer (``nn.Linear`` or convolution) in
    ``named_modules()`` order (its output layer), or None."""
    names = [name for name, module in model.named_modules() if isinstance(module, _layer_types(torch))]
    return names[-1] if names else None


def _weight_matrix(torch: Any, layer: Any) -> np.ndarray:
    """A layer's weights as a float64 (units, inputs) matrix: an ``nn.Linear``'s W, or a
    convolution's (C_out, C_in, *k) kernel with each out-channel's kernel flattened
    (C order: in-channel major, then the kernel positions)."""
    W = layer.weight.detach().to(device="cpu", dtype=torch.float64)
    return W.reshape(W.shape[0], -1).numpy()


def _inputs(torch: Any, layer: Any) -> Tuple[int, bool]:
    """(inputs per unit, with a bias) of a layer, for the UnderdeterminedWarning: a
    convolution's output at one position is a function of C_in * prod(kernel) values."""
    n = int(layer.weight.shape[1])
    if isinstance(layer, torch.nn.modules.conv._ConvNd):
        n = int(layer.in_channels) * int(np.prod(layer.kernel_size))
    return n, layer.bias is not None


def _layer_descrambler(torch: Any, name: str, layer: Any, acc: Autocorrelation, smoothness: Any,
                       order: Optional[int], criterion: str, seed: int, max_iterations: int,
                       time_limit: Optional[float]) -> Descrambler:
    W = _weight_matrix(torch, layer)
    if W.shape[0] != acc.n_features:
        raise ValueError(f"layer {name!r}: recorded {acc.n_features} features per row, but the layer has "
                         f"{W.shape[0]} output units; its output is not laid out as (batch, ..., units) "
                         "or (batch, channels, *spatial)")
    d, found = _descramble(W, hidden=acc, smoothness=smoothness, order=order, criterion=criterion,
                           where=f"layer {name!r}: ", source=name, inputs=_inputs(torch, layer), seed=seed,
                           max_iterations=max_iterations, time_limit=time_limit)
    for warning in found:
        warn(warning)
    return d


def _check_search(criterion: Any, seed: Any, max_iterations: Any, time_limit: Any) -> None:
    """Argument errors of the descrambler options before any data pass."""
    if not isinstance(criterion, str):
        raise TypeError(f"criterion: expected a string, got {criterion!r}")
    _search_options(criterion, seed, max_iterations, time_limit)


def descramble_model(
    model: "torch.nn.Module",
    data: Any,
    layers: Layers = None,
    *,
    output: bool = False,
    smoothness: Any = "fourier",
    order: Optional[int] = None,
    criterion: str = "smooth",
    seed: int = 0,
    max_iterations: int = 100,
    time_limit: Optional[float] = None,
    chunk_rows: Optional[int] = None,
    forward: Optional[Callable[[Any, Any], Any]] = None,
    precision: str = "float64",
    threads: Optional[int] = None,
    progress: bool = False,
) -> Dict[str, Descrambler]:
    """The descrambler of every hidden ``nn.Linear`` and convolution layer of a model (docs/math.md §3).

    One pass over ``data`` (:func:`collect` with ``pre_activation=True``)
    accumulates each layer's pre-activations ``y = W x + b``; each layer's
    descrambler is then ``descramble(W, hidden=S, ...)`` with ``S`` the
    autocorrelation of the recorded ``y``: exactly the finite-N hidden
    autocorrelation of the signals the model computes, bias included (equal,
    up to rounding, to the input route ``descramble(W, autocorrelation=C,
    bias=b)`` of docs/math.md §1; tested to 1e-10 relative in float64). It costs
    ``m^2`` per sample and layer (``m`` = out_features) rather than ``n^2``
    for the input.

    For a convolution (``nn.Conv1d``, ``nn.Conv2d``, ``nn.Conv3d``) the units
    are its output channels and ``S`` is the channel autocorrelation pooled
    over positions and samples: every spatial position of every sample is a
    row of ``C_out`` channel values (see :func:`collect`); the smoothness is
    over the channel axis.

    Parameters
    ----------
    model : torch.nn.Module
    data : torch.Tensor, numpy.ndarray, or iterable of batches
        As in :func:`collect`.
    layers : str, sequence of str, or None
        Names of ``nn.Linear`` or ``nn.Conv1d``/``2d``/``3d`` modules (as in
        ``model.named_modules()``); default every one of them but the output
        layer (see ``output``). Named layers are descrambled whatever
        ``output`` says.
    output : bool, default False
        With ``layers=None``, also descramble the output layer: the last
        ``nn.Linear`` or convolution in ``model.named_modules()`` order. Its
        units' order is fixed by the task (class k is output k), so it is not
        scrambled and by default not descrambled; for a model whose last
        registered weight layer is not its output layer, name the layers.
    smoothness, order, criterion, seed, max_iterations, time_limit
        As in :func:`descramble.descramble` (``criterion="permutation"`` or
        ``"signed-permutation"``: the smoothest ordering of each layer's units
        found, with its certificate ``gap``; :func:`permute_model` rewrites
        the model with them).
    chunk_rows, forward, precision, threads, progress
        As in :func:`collect`.

    Returns
    -------
    dict of str to Descrambler
        In the order of ``layers``. ``d.weights`` is ``P @ W``; for a
        convolution, ``W`` is its kernel ``(C_out, C_in, *k)`` flattened to
        ``(C_out, C_in * prod(k))`` (in-channel major), so ``P`` acts on the
        out-channel axis and ``d.weights.reshape(conv.weight.shape)`` is the
        descrambled kernel. Descramble the bias with ``d.P @ b`` and the next
        layer's columns with ``d.apply_next(W_next)`` (for pre-activation
        descramblers that rotation is exact only for linear successors;
        permutations are exact for every element-wise activation).
        ``d.n_samples`` is the number of rows each layer recorded (samples
        times positions for a convolution).

    Raises
    ------
    TypeError, ValueError
        As :func:`collect` and :func:`descramble.descramble`; ValueError when a
        named layer is not an ``nn.Linear`` or convolution, or when
        ``layers=None`` leaves no layer (the model's only weight layer is its
        output layer: pass ``output=True``).

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
    _check_search(criterion, seed, max_iterations, time_limit)
    types = _layer_types(torch)
    if layers is None and not any(isinstance(module, types) for module in model.modules()):
        raise ValueError(f"model: it has no {_LAYER_NAMES} layers, and descramble_model descrambles those "
                         "only; for other layers use collect() and descramble(hidden=...)")
    if layers is None and not output:
        last = _output_layer(torch, model)
        layers = [name for name, module in model.named_modules() if isinstance(module, types) and name != last]
        if not layers:
            raise ValueError(f"model: its only weight layer, {last!r}, is the output layer, whose order is fixed "
                             "by the task; pass output=True to descramble it anyway")
    if layers is not None:
        names = [layers] if isinstance(layers, str) else layers
        modules = dict(model.named_modules())
        if isinstance(names, Iterable):
            names = layers = list(names)  # a generator is read once here, then handed to collect
            for name in names:
                if isinstance(name, str) and name in modules and not isinstance(modules[name], types):
                    raise ValueError(
                        f"layers: {name!r} is a {type(modules[name]).__name__}, not an {_LAYER_NAMES}; for "
                        "other layers use collect() and descramble(hidden=...)"
                    )
    stats = collect(model, layers, data, pre_activation=True, chunk_rows=chunk_rows, forward=forward,
                    precision=precision, threads=threads, progress=progress)
    modules = dict(model.named_modules())
    return {name: _layer_descrambler(torch, name, modules[name], acc, smoothness, order, criterion, seed,
                                     max_iterations, time_limit)
            for name, acc in stats.items()}


# -- permute_model ----------------------------------------------------------------------------


class PermutedModel(NamedTuple):
    """The result of :func:`permute_model`: unpack it as ``model, descramblers = ...``.

    Attributes
    ----------
    model : torch.nn.Module
        A deep copy of the model with the hidden units of every permuted layer in the
        smoothest order found; it computes the same function as the original.
    descramblers : dict of str to Descrambler
        Per permuted layer, in the model's order: ``P`` the (signed) permutation matrix,
        ``permutation`` and ``signs`` (``P @ x == signs * x[permutation]``: unit
        ``permutation[i]`` of the original layer is unit ``i`` of the new one), ``loss``,
        ``bound`` and the certificate ``gap``; ``weights`` as in :func:`descramble_model`.
    """

    model: Any
    descramblers: Dict[str, Descrambler]


#: Element-wise activations with f(-x) = -f(x) (``nn.Hardtanh`` when its range is symmetric).
_ODD = ("Identity", "Tanh", "Softsign", "Tanhshrink", "Softshrink", "Hardshrink")


class _Step(NamedTuple):
    """One module of a model's chain: its position, name and what it does to the units."""

    position: int
    name: str
    module: Any
    kind: str  # "layer", "elementwise", "dropout", "batchnorm", "pool", "flatten", "other"
    spatial: int  # d for convolutions and pooling, else 0
    odd: bool  # f(-x) == -f(x): a signed permutation passes through it


def _describe(step: _Step) -> str:
    return f"{step.name!r} ({type(step.module).__name__})"


def _classify(torch: Any, module: Any) -> Tuple[str, int, bool]:
    """(kind, spatial dims, odd) of a module in a chain."""
    if isinstance(module, _layer_types(torch)):
        return "layer", _spatial_dims(torch, module) or 0, True
    if isinstance(module, _batchnorms(torch)):
        return "batchnorm", 0, True
    if isinstance(module, _dropouts(torch)):
        return "dropout", 0, True
    if isinstance(module, torch.nn.Flatten):
        return "flatten", 0, True
    if isinstance(module, _elementwise(torch)):
        odd = type(module).__name__ in _ODD
        if isinstance(module, torch.nn.Hardtanh):
            odd = float(module.min_val) == -float(module.max_val)
        return "elementwise", 0, odd
    d = _spatial_dims(torch, module)
    if d is not None and not isinstance(module, torch.nn.modules.conv._ConvNd):
        odd = type(module).__name__.startswith(("AvgPool", "AdaptiveAvgPool"))
        return "pool", d, odd
    return "other", 0, False


def _chain(torch: Any, model: Any) -> List[_Step]:
    """The modules of an ``nn.Sequential`` in call order (nested ``nn.Sequential`` expanded)."""
    steps: List[_Step] = []

    def walk(prefix: str, sequential: Any) -> None:
        if type(sequential).forward is not torch.nn.Sequential.forward:
            where = repr(prefix) if prefix else "the model"
            raise TypeError(f"model: {where} ({type(sequential).__name__}) is an nn.Sequential "
                            "with its own forward(); permute_model follows plain nn.Sequential chains only")
        for key, module in sequential._modules.items():
            if module is None:
                continue
            name = f"{prefix}.{key}" if prefix else key
            if isinstance(module, torch.nn.Sequential):
                walk(name, module)
            else:
                kind, spatial, odd = _classify(torch, module)
                steps.append(_Step(len(steps), name, module, kind, spatial, odd))

    if not isinstance(model, torch.nn.Sequential):
        raise TypeError(f"model: permute_model rewrites nn.Sequential models (nested nn.Sequential included), "
                        f"got {type(model).__name__} with its own forward(); the chain of modules it calls "
                        "cannot be followed")
    walk("", model)
    return steps


def _check_segment(torch: Any, layer: _Step, segment: List[_Step], consumer: _Step, signed: bool,
                   uses: Dict[int, int]) -> None:
    """Type checks of what lies between a permuted layer and the layer that reads its units."""
    for step in [layer] + segment + [consumer]:
        if step.kind == "other":
            raise TypeError(
                f"model: {_describe(step)} lies between layer {layer.name!r} and its consumer "
                f"{consumer.name!r}; permute_model passes units only through element-wise activations, dropout, "
                "batch norm, per-channel pooling and nn.Flatten, so it cannot permute layer "
                f"{layer.name!r} (leave it out with layers=)")
        module = step.module
        has_state = step.kind in ("layer", "batchnorm") or (
            isinstance(module, torch.nn.PReLU) and module.num_parameters > 1)
        if has_state and uses[id(module)] > 1:
            raise ValueError(f"model: {_describe(step)} appears {uses[id(module)]} times in the chain; a shared "
                             "module with parameters cannot be permuted for one of its uses only")
        if step.kind in ("layer", "batchnorm", "elementwise") and (
                torch.nn.utils.parametrize.is_parametrized(module) or module._forward_pre_hooks):
            raise TypeError(f"model: {_describe(step)} has parametrizations or forward pre-hooks (weight_norm, "
                            "spectral_norm?) that recompute its parameters; permute_model rewrites plain "
                            "parameters only")
        if step is not consumer and module._forward_hooks:
            raise TypeError(f"model: {_describe(step)} has forward hooks, which see (and may change) layer "
                            f"{layer.name!r}'s units in their trained order; remove them before permute_model "
                            "(or leave the layer out with layers=)")
        if step.kind == "layer" and isinstance(module, torch.nn.modules.conv._ConvNd) and module.groups != 1:
            raise ValueError(f"model: {_describe(step)} has groups={module.groups}; permuting the channels of a "
                             "grouped convolution would move channels between groups (only groups=1 is supported)")
        if step.kind == "layer" and isinstance(module.weight, torch.nn.parameter.UninitializedParameter):
            raise ValueError(f"model: {_describe(step)} is a lazy module that has not been initialised; run it on "
                             "one batch first")
        if step.kind == "pool" and getattr(module, "return_indices", False):
            raise TypeError(f"model: {_describe(step)} returns indices (return_indices=True); expected a tensor")
        if signed and step in segment and not step.odd:
            raise ValueError(
                f"criterion: 'signed-permutation' needs odd functions (f(-x) = -f(x)) between layer "
                f"{layer.name!r} and its consumer {consumer.name!r}, but {_describe(step)} is not odd; use "
                "criterion='permutation' (or leave the layer out with layers=)")


def _check_tied(torch: Any, model: Any, plan: Dict[str, Tuple[_Step, List[_Step], _Step]]) -> None:
    """No tensor that the rewrite permutes may be shared with another slot of the model (tied weights):
    permuting it for one module would permute it for the other too."""
    slots: Dict[int, List[str]] = {}
    for prefix, module in model.named_modules():
        for kind in ("_parameters", "_buffers"):
            for key, tensor in getattr(module, kind).items():
                if tensor is not None and not isinstance(tensor, torch.nn.parameter.UninitializedParameter):
                    where = f"{prefix}.{key}" if prefix else key
                    slots.setdefault(tensor.data_ptr(), []).append(where)
    for name, (layer, segment, consumer) in plan.items():
        for step in [layer] + segment + [consumer]:
            if step.kind not in ("layer", "batchnorm", "elementwise"):
                continue
            module = step.module
            tensors = list(module._parameters.items()) + list(module._buffers.items())
            for key, tensor in tensors:
                if tensor is None or tensor.numel() == 0 or isinstance(tensor,
                                                                        torch.nn.parameter.UninitializedParameter):
                    continue
                shared = slots.get(tensor.data_ptr(), [])
                if len(shared) > 1:
                    raise ValueError(f"model: {', '.join(map(repr, shared))} share one tensor (tied weights); "
                                     f"permuting layer {name!r} would rewrite it for all of them (leave the layer "
                                     "out with layers=, or untie the weights)")


def _trace(torch: Any, layer: _Step, segment: List[_Step], consumer: _Step, units: int,
           shapes: Dict[int, Tuple[Tuple[int, ...], Tuple[int, ...]]]) -> int:
    """Follow the unit axis of ``layer``'s output to ``consumer``'s input with the shapes of a
    forward pass; returns the block size (positions per unit after an ``nn.Flatten``)."""
    out_shape = shapes[layer.position][1]
    n = len(out_shape)
    axis = n - 1 - layer.spatial  # Linear: the last axis; convolutions: the channel axis
    block = 1
    where = f"layer {layer.name!r}: "
    for step in segment:
        in_shape = shapes[step.position][0]
        n = len(in_shape)
        if step.kind == "batchnorm":
            if axis != 1 or block != 1 or n < 2:
                raise ValueError(f"{where}{_describe(step)} normalises axis 1 of its input of shape {in_shape}, "
                                 f"but the layer's units are on axis {axis}" + (" (flattened)" if block > 1 else ""))
            if step.module.num_features != units:
                raise ValueError(f"{where}{_describe(step)} has {step.module.num_features} features, the layer "
                                 f"{units} units")
        elif step.kind == "pool":
            if block != 1 or axis >= n - step.spatial:
                raise ValueError(f"{where}{_describe(step)} pools the last {step.spatial} axes of its input of "
                                 f"shape {in_shape}, which hold the layer's units (axis {axis}); it would mix units")
        elif step.kind == "elementwise" and isinstance(step.module, torch.nn.PReLU) \
                and step.module.num_parameters > 1:
            if axis != min(1, n - 1) or block != 1:
                raise ValueError(f"{where}{_describe(step)} has one slope per channel (axis 1), but the layer's "
                                 f"units are on axis {axis}")
        elif step.kind == "flatten":
            start, end = step.module.start_dim % n, step.module.end_dim % n
            if axis > end:
                axis -= end - start
            elif axis >= start:
                if axis > start:
                    raise ValueError(f"{where}{_describe(step)} merges the layer's units (axis {axis} of shape "
                                     f"{in_shape}) with the axes before them; permute_model supports flattening "
                                     "the units with the axes after them only")
                block *= int(np.prod(in_shape[axis + 1:end + 1], dtype=np.int64))
    in_shape = shapes[consumer.position][0]
    n = len(in_shape)
    reads = n - 1 - consumer.spatial  # the axis the consumer contracts
    module = consumer.module
    width = module.in_features if isinstance(module, torch.nn.Linear) else module.in_channels
    if axis != reads or (consumer.spatial and block != 1) or width != units * block:
        raise ValueError(
            f"{where}its consumer {_describe(consumer)} reads axis {reads} of its input of shape {in_shape} "
            f"({width} {'features' if consumer.spatial == 0 else 'channels'}), but the layer's {units} units are on "
            f"axis {axis}" + (f" in blocks of {block}" if block > 1 else "") + "; permute_model cannot follow them")
    return block


def _permute_layer(torch: Any, layer: Any, between: List[Any], consumer: Any, block: int,
                   permutation: np.ndarray, signs: Optional[np.ndarray]) -> None:
    """Rewrite (in place, under no_grad) a layer's units, the batch norms and per-channel PReLUs
    after it and its consumer's inputs (the convention of issue 13: W' = s W[p], b' = s b[p],
    W_next' = W_next[:, p] s)."""
    device = layer.weight.device
    p = torch.as_tensor(permutation, dtype=torch.long, device=device)
    s = torch.as_tensor(np.ones(len(permutation)) if signs is None else signs, device=device)

    def signed(t: Any, shape: Tuple[int, ...]) -> Any:
        return s.to(dtype=t.dtype, device=t.device).reshape(shape)

    def put(t: Any, value: Any) -> None:
        t.copy_(value)

    W = layer.weight
    put(W, W[p.to(W.device)] * signed(W, (-1,) + (1,) * (W.ndim - 1)))
    if layer.bias is not None:
        put(layer.bias, layer.bias[p.to(layer.bias.device)] * signed(layer.bias, (-1,)))
    norms: Tuple[Any, ...] = _batchnorms(torch)
    for module in between:
        if isinstance(module, norms):
            if module.weight is not None:
                put(module.weight, module.weight[p.to(module.weight.device)])
            if module.bias is not None:
                put(module.bias, module.bias[p.to(module.bias.device)] * signed(module.bias, (-1,)))
            if module.running_mean is not None:
                rm = module.running_mean
                put(rm, rm[p.to(rm.device)] * signed(rm, (-1,)))
            if module.running_var is not None:
                rv = module.running_var
                put(rv, rv[p.to(rv.device)])
        elif isinstance(module, torch.nn.PReLU):
            put(module.weight, module.weight[p.to(module.weight.device)])
    V = consumer.weight
    q = p.to(V.device)
    if isinstance(consumer, torch.nn.Linear):
        blocks = V.reshape(V.shape[0], -1, block)
        put(V, (blocks[:, q, :] * signed(V, (1, -1, 1))).reshape(V.shape))
    else:
        put(V, V[:, q] * signed(V, (1, -1) + (1,) * (V.ndim - 2)))


def permute_model(
    model: "torch.nn.Module",
    data: Any,
    *,
    criterion: str = "permutation",
    smoothness: Any = "fourier",
    order: Optional[int] = None,
    layers: Layers = None,
    seed: int = 0,
    max_iterations: int = 100,
    time_limit: Optional[float] = None,
    chunk_rows: Optional[int] = None,
    forward: Optional[Callable[[Any, Any], Any]] = None,
    precision: str = "float64",
    threads: Optional[int] = None,
    progress: bool = False,
) -> PermutedModel:
    """An equivalent copy of a model whose hidden units are in the smoothest order found (issue 13).

    Every hidden layer (every ``nn.Linear`` and ``nn.Conv1d``/``2d``/``3d`` of
    the chain but the last, the output layer) gets the (signed) permutation
    ``descramble(hidden=S, criterion=criterion, ...)`` of its pre-activation
    autocorrelation ``S`` (the module's output; pooled over positions for a
    convolution, as in :func:`collect`), all collected in ONE pass over
    ``data`` with the original model: permuting layer k does not change layer
    k+1's pre-activations. The copy is then rewritten exactly: with
    ``(p, s)`` for layer k (``s = 1`` unless signed),

    * layer k's units: ``W' = s * W[p]`` (a convolution's out-channels),
      ``b' = s * b[p]``;
    * every ``nn.BatchNorm1d``/``2d``/``3d`` between layer k and its consumer:
      ``weight[p]``, ``s * bias[p]``, ``s * running_mean[p]``,
      ``running_var[p]``; a per-channel ``nn.PReLU``: ``weight[p]``;
    * the consumer (the next ``nn.Linear`` or convolution): its inputs
      ``W_next[:, p] * s`` (a convolution's in-channels); after an
      ``nn.Flatten`` of ``(C, *spatial)``, the ``nn.Linear``'s columns in
      blocks of ``prod(spatial)`` (found from the shapes of the pass).

    The permuted model computes the same function as the original up to
    float rounding (the order of the consumer's sums changes; tested to 1e-6
    of the output scale in float32) in eval mode. In training mode batch
    norm's batch statistics permute with the channels too, but dropout draws
    its random masks by position, so only the distribution is the same.
    The copy keeps the original's ``training`` flags.

    Parameters
    ----------
    model : torch.nn.Sequential
        A chain (nested ``nn.Sequential`` are followed) of ``nn.Linear``,
        ``nn.Conv1d``/``2d``/``3d`` (``groups=1``), ``nn.BatchNorm1d``/``2d``/``3d``,
        element-wise activations (:data:`ELEMENTWISE`), dropout, per-channel
        pooling (``MaxPool``, ``AvgPool``, ``AdaptiveAvgPool``,
        ``AdaptiveMaxPool``, ``LPPool`` 1d/2d/3d) and ``nn.Flatten``. Modules
        before the first layer and after the output layer are not touched and
        may be anything. Not modified.
    data : torch.Tensor, numpy.ndarray, or iterable of batches
        As in :func:`collect`; read once.
    criterion : {"permutation", "signed-permutation"}, default "permutation"
        "signed-permutation" also flips units, which needs every module between
        a layer and its consumer to be odd (``f(-x) = -f(x)``: ``nn.Tanh``,
        ``nn.Softsign``, a symmetric ``nn.Hardtanh``, ``nn.Identity``, batch
        norm, average pooling, dropout, ``nn.Flatten``; not ``nn.ReLU``,
        ``nn.Sigmoid``, max pooling, ...).
    smoothness, order, seed, max_iterations, time_limit
        As in :func:`descramble.descramble`.
    layers : str, sequence of str, or None
        The hidden layers to permute (names as in ``model.named_modules()``);
        default all of them. The output layer cannot be permuted (it would
        reorder the model's outputs).
    chunk_rows, forward, precision, threads, progress
        As in :func:`collect`.

    Returns
    -------
    PermutedModel
        A named tuple ``(model, descramblers)``: the rewritten deep copy and one
        :class:`~descramble.Descrambler` per permuted layer (``permutation``,
        ``signs``, ``loss``, ``bound``, ``gap``).

    Raises
    ------
    TypeError
        ``model`` is not a plain ``nn.Sequential``; a module between a permuted
        layer and its consumer is not one of the supported kinds (naming it);
        a layer with parametrizations or pre-hooks; forward hooks on a permuted
        layer or on a module between it and its consumer.
    ValueError
        A criterion other than the two permutation criteria; a non-odd module
        under "signed-permutation" (naming the layer and the module); a grouped
        convolution; a shared module with parameters; units that the chain's
        shapes do not carry to the consumer's input axis (a pooling or batch
        norm over the units' axis, an ``nn.Linear`` applied across channels);
        no hidden layer; bad ``layers``; and as :func:`collect`.
    """
    torch = _torch()
    _check_model(torch, model)
    if not isinstance(criterion, str):
        raise TypeError(f"criterion: expected a string, got {criterion!r}")
    if criterion not in ("permutation", "signed-permutation"):
        raise ValueError(f"criterion: permute_model needs 'permutation' or 'signed-permutation' (a rotation "
                         f"does not commute with the activations), got {criterion!r}")
    _check_search(criterion, seed, max_iterations, time_limit)
    steps = _chain(torch, model)
    positions = [step.position for step in steps if step.kind == "layer"]
    if len(positions) < 2:
        found = "no" if not positions else f"one, {steps[positions[0]].name!r}, the output layer:"
        raise ValueError(f"model: it has {found} {_LAYER_NAMES} layer{'s' if not positions else ''} in its chain, "
                         "so no hidden layer to permute")
    output_name = steps[positions[-1]].name
    hidden = {steps[i].name: i for i in positions[:-1]}
    if layers is None:
        chosen = list(hidden)
    else:
        names = [layers] if isinstance(layers, str) else layers
        if not isinstance(names, Iterable):
            raise TypeError(f"layers: expected a layer name or a sequence of names, got {type(layers).__name__}")
        chosen = list(names)
        if not chosen:
            raise ValueError("layers: expected at least one layer name (or None for every hidden layer)")
        for name in chosen:
            if not isinstance(name, str):
                raise TypeError(f"layers: expected names (str) as in model.named_modules(), got {name!r}")
            if name == output_name:
                raise ValueError(f"layers: {name!r} is the output layer; permuting its units would reorder the "
                                 "model's outputs")
            if name not in hidden:
                raise ValueError(f"layers: {name!r} is not a hidden {_LAYER_NAMES} layer of the chain; hidden "
                                 f"layers: {', '.join(map(repr, hidden))}")
        repeated = sorted({name for name in chosen if chosen.count(name) > 1})
        if repeated:
            raise ValueError(f"layers: {', '.join(map(repr, repeated))} named more than once")
        chosen = [name for name in hidden if name in chosen]  # the model's order
    uses: Dict[int, int] = {}
    for step in steps:
        uses[id(step.module)] = uses.get(id(step.module), 0) + 1
    plan = {}
    for name in chosen:
        start = hidden[name]
        end = next(i for i in positions if i > start)
        plan[name] = (steps[start], steps[start + 1:end], steps[end])
        _check_segment(torch, *plan[name], criterion == "signed-permutation", uses)
    _check_tied(torch, model, plan)

    # Shapes of the first forward pass: (input shape, output shape) of every module involved.
    wanted: Dict[int, List[int]] = {}
    for layer, segment, consumer in plan.values():
        for step in [layer] + segment + [consumer]:
            positions_of = wanted.setdefault(id(step.module), [])
            if step.position not in positions_of:
                positions_of.append(step.position)
    occurrences = {key: [step.position for step in steps if id(step.module) == key] for key in wanted}
    shapes: Dict[int, Tuple[Tuple[int, ...], Tuple[int, ...]]] = {}
    calls: Dict[int, int] = {}

    def shape_hook(module: Any, inputs: Any, output: Any) -> None:
        key = id(module)
        count = calls.get(key, 0)
        calls[key] = count + 1
        where = occurrences[key]
        if count < len(where) and where[count] not in shapes and len(inputs) > 0 \
                and isinstance(inputs[0], torch.Tensor) and isinstance(output, torch.Tensor):
            shapes[where[count]] = (tuple(inputs[0].shape), tuple(output.shape))

    modules = {id(step.module): step.module for step in steps}
    handles = []
    try:
        for key in wanted:
            handles.append(modules[key].register_forward_hook(shape_hook))
        stats = collect(model, chosen, data, pre_activation=True, chunk_rows=chunk_rows, forward=forward,
                        precision=precision, threads=threads, progress=progress)
    finally:
        for handle in handles:
            handle.remove()
    blocks = {}
    for name, (layer, segment, consumer) in plan.items():
        for step in [layer] + segment + [consumer]:
            if step.position not in shapes:
                raise ValueError(f"layer {name!r}: {_describe(step)} did not run on a tensor during the forward "
                                 "pass; permute_model follows the chain of an nn.Sequential")
        blocks[name] = _trace(torch, layer, segment, consumer, stats[name].n_features, shapes)

    descramblers = {name: _layer_descrambler(torch, name, plan[name][0].module, stats[name], smoothness, order,
                                             criterion, seed, max_iterations, time_limit)
                    for name in chosen}
    new_model = copy.deepcopy(model)
    new_steps = _chain(torch, new_model)
    with torch.no_grad():
        for name, (layer, segment, consumer) in plan.items():
            d = descramblers[name]
            assert d.permutation is not None
            _permute_layer(torch, new_steps[layer.position].module,
                           [new_steps[step.position].module for step in segment],
                           new_steps[consumer.position].module, blocks[name], d.permutation, d.signs)
    return PermutedModel(new_model, descramblers)
