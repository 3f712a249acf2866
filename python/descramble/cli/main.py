"""The ``descramble`` command line: ``demo``, ``run``, ``permute`` and ``bench``.

Every user error (a missing file, a wrong shape, an unknown option) ends
with one line on stderr, ``descramble <command>: error: <what>``, and exit
status 2; an interrupted run exits with 130. Nothing prints a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Dict, List, NoReturn, Optional, Tuple

import numpy as np

USAGE_ERROR = 2
INTERRUPTED = 130


class UserError(Exception):
    """An error in what the user asked for: reported in one line, no traceback.

    ``prog``, when given, names the (sub)command the message is about.
    """

    def __init__(self, message: str, prog: Optional[str] = None) -> None:
        super().__init__(message)
        self.prog = prog


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line and through :class:`UserError`."""

    def error(self, message: str) -> NoReturn:
        raise UserError(f"{message} (see '{self.prog} --help')", prog=self.prog)


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        return f"{exc.filename}: {exc.strerror.lower()}"
    text = str(exc) or type(exc).__name__
    if isinstance(exc, KeyError) and exc.args:
        text = str(exc.args[0])
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


# -- inputs ------------------------------------------------------------------------------


def parse_smoothness(spec: str, m: int) -> Any:
    """Turn a ``--smoothness`` spec into a :class:`descramble.smoothness.Smoothness`.

    Specs: ``fourier[:ORDER]``, ``fd[:ORDER]``, ``fd-circular[:ORDER]``,
    ``fd-central[:ORDER]`` (the authors' ``finitediff.m``: circular central
    differences divided by m), ``grid:ROWSxCOLS[:ORDER]`` (the units laid out as an image, row-major;
    ROWS x COLS must be m), ``gram:A.npy`` (A = D^T D, m x m) and
    ``matrix:D.npy`` (D, k x m).
    """
    from .. import smoothness

    name, _, arg = spec.partition(":")
    if name == "grid":
        size, _, order_text = arg.partition(":")
        shape = parse_shape(size, "--smoothness", example="grid:4x8")
        grid_order = _order(order_text) if order_text else 1
        if int(np.prod(shape)) != m:
            raise UserError(f"--smoothness: grid {size} has {int(np.prod(shape))} units, the layer has {m}")
        try:
            return smoothness.grid(shape, order=grid_order)
        except (ValueError, TypeError) as exc:
            raise UserError(f"--smoothness: {spec}: {_one_line(exc)}") from None
    if name in ("gram", "matrix"):
        if not arg:
            raise UserError(f"--smoothness: '{name}' needs a file, e.g. {name}:A.npy")
        M = _load_array(arg, "--smoothness")
        try:
            op = smoothness.from_gram(M) if name == "gram" else smoothness.from_matrix(M)
        except (ValueError, TypeError) as exc:
            raise UserError(f"--smoothness: {arg}: {_one_line(exc)}") from None
        if op.gram.shape != (m, m):
            raise UserError(f"--smoothness: {arg}: the operator acts on {op.gram.shape[0]} neurons, "
                            f"the layer has {m}")
        return op
    if name == "fd-central":
        try:
            return smoothness.finite_difference(m, _order(arg) if arg else 1, circular=True, scheme="central")
        except (ValueError, TypeError) as exc:
            raise UserError(f"--smoothness: {spec}: {_one_line(exc)}") from None
    if name not in ("fourier", "fd", "fd-circular"):
        raise UserError(f"--smoothness: unknown operator {name!r}; expected fourier[:ORDER], fd[:ORDER], "
                        "fd-circular[:ORDER], fd-central[:ORDER], grid:ROWSxCOLS[:ORDER], gram:A.npy or "
                        "matrix:D.npy")
    return smoothness.resolve(name, m, _order(arg) if arg else None)


def _order(text: str) -> int:
    try:
        order = int(text)
    except ValueError:
        raise UserError(f"--smoothness: the order must be a positive integer, got {text!r}") from None
    if order < 1:
        raise UserError(f"--smoothness: the order must be a positive integer, got {order}")
    return order


def parse_shape(text: str, option: str, example: str = "8x8") -> Tuple[int, ...]:
    """``"8x8"`` -> ``(8, 8)``: positive integers separated by ``x``."""
    parts = text.lower().split("x")
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        shape = ()
    if not text or not shape or any(d < 1 for d in shape):
        raise UserError(f"{option}: expected a shape such as {example} (positive integers separated by x), "
                        f"got {text!r}")
    return shape


def _unreadable(path: Any, option: str, kind: str, exc: BaseException) -> UserError:
    # np.load(allow_pickle=False) on a file with neither the .npy magic nor a zip
    # header blames "pickled (object) data": say what is really wrong.
    text = _one_line(exc)
    why = "neither a .npy header nor a zip archive" if "pickled" in text else text
    return UserError(f"{option}: {path}: not a readable {kind} file ({why})")


def _np_load(path: Any, option: str, kind: str) -> Any:
    """``np.load(path, allow_pickle=False)``; a file NumPy cannot read is a UserError naming ``option``."""
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise _unreadable(path, option, kind, exc) from None


def _load_array(path: str, option: str) -> np.ndarray:
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{option}: {path}: no such file")
    loaded = _np_load(path, option, ".npy/.npz")
    if p.suffix != ".npz":
        return loaded
    with loaded as z:
        if len(z.files) != 1:
            raise UserError(f"{option}: {path} holds {len(z.files)} arrays ({', '.join(z.files)}); "
                            "expected exactly one")
        try:
            return z[z.files[0]]
        except (ValueError, OSError, EOFError) as exc:  # a corrupt member, read only now
            raise _unreadable(path, option, ".npy/.npz", exc) from None


def _npz_member(path: Path, key: str) -> Any:
    z = _np_load(path, "--data", ".npz")
    if not key:
        if len(z.files) != 1:
            raise UserError(f"--data: {path} holds {', '.join(z.files)}; name one as {path}:KEY")
        key = z.files[0]
    if key not in z.files:
        raise UserError(f"--data: {path} has no array {key!r}; it holds {', '.join(z.files)}")
    return z[key]


def _optional(module: str, files: str, package: str) -> Any:
    """Import the optional dependency ``module`` that reading ``files`` needs, or say which package installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise UserError(f"--data: {files} need {module}: pip install {package}") from None


def _hdf5_dataset(path: Path, key: str) -> Any:
    h5py = _optional("h5py", "HDF5 files", "h5py")
    if not key:
        raise UserError(f"--data: name the dataset, as {path}:DATASET")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise UserError(f"--data: {path}: not a readable HDF5 file ({_one_line(exc)})") from None
    if key not in f:
        raise UserError(f"--data: {path} has no dataset {key!r}")
    return f[key]


def _zarr_array(path: Path, key: str) -> Any:
    zarr = _optional("zarr", "zarr stores", "zarr")
    try:
        store = zarr.open(str(path), mode="r")
    except Exception as exc:  # zarr raises its own error types for a non-store directory
        raise UserError(f"--data: {path}: not a readable zarr store ({_one_line(exc)})") from None
    if key:
        if not hasattr(store, "array_keys") or key not in store:
            raise UserError(f"--data: {path} has no array {key!r}")
        store = store[key]
    if hasattr(store, "array_keys"):  # a group, not an array
        raise UserError(f"--data: {path} is a zarr group; name its array as {path}:ARRAY "
                        f"(it holds {', '.join(sorted(store.array_keys())) or 'no arrays'})")
    return store


# Containers of several arrays: the CLI opens them and picks the array PATH:KEY names.
_CONTAINERS = {".npz": _npz_member, ".h5": _hdf5_dataset, ".hdf5": _hdf5_dataset, ".zarr": _zarr_array}


def open_data(spec: str, dtype: Optional[str], n_features: Optional[int]) -> Tuple[Any, Dict[str, Any]]:
    """What a ``--data`` spec names, as ``(data, keywords)`` for :func:`descramble.sources.open_source`.

    The command parses its ``PATH[:KEY]`` syntax and opens the containers
    (``FILE.npz[:KEY]``, ``FILE.h5:DATASET`` / ``FILE.hdf5:DATASET`` with h5py,
    ``DIR.zarr[:ARRAY]`` with zarr, ARRAY naming an array in a group); the
    array or dataset, or the path of any other file, goes to the library's
    sources as it is (through :func:`descramble.convergence.convergence`),
    which read ``.npy`` headers, raw binary files and datasets. By this
    syntax a file that is neither ``.npy`` nor a container is raw binary:
    it needs ``--dtype`` and ``--n-features``, which nothing else takes.
    """
    path, _, key = spec.partition(":") if not Path(spec).exists() else (spec, "", "")
    p = Path(path)
    if not p.exists():
        raise UserError(f"--data: {path}: no such file")
    suffix = p.suffix.lower()
    raw_options = dtype is not None or n_features is not None
    container = _CONTAINERS.get(suffix)
    if container is not None:
        if raw_options:
            raise UserError(f"--dtype/--n-features: only for raw binary files, not {suffix} files")
        return container(p, key), {}
    if key:
        raise UserError(f"--data: {path}: ':{key}' names an array, but {suffix or 'raw'} files hold only one")
    if suffix == ".npy":
        if raw_options:
            raise UserError("--dtype/--n-features: only for raw binary files, not .npy files")
        return str(p), {}
    if dtype is None or n_features is None:
        raise UserError(f"--data: {path} is not .npy/.npz/.h5/.zarr, so it is read as raw binary: "
                        "give --dtype and --n-features")
    return str(p), {"dtype": dtype, "n_features": n_features}


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number: {text!r}") from None
    if not (np.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text}")
    return value


def _search_arguments(parser: argparse.ArgumentParser, criteria: Tuple[str, ...], default: str) -> None:
    """``--criterion``, ``--seed``, ``--max-iterations`` and ``--time-limit`` (the permutation search)."""
    parser.add_argument("--criterion", choices=criteria, default=default,
                        help=f"{' | '.join(criteria)} (default {default}): " + (
                            "'smooth' is the closed-form orthogonal descrambler; " if "smooth" in criteria else "")
                        + "'permutation' the smoothest ordering of each layer's units found (it commutes with "
                          "every activation, the rewritten network is exact), with its certificate gap; "
                          "'signed-permutation' also flips units' signs (odd activations only: identity, tanh)")
    parser.add_argument("--seed", type=non_negative_int, default=0,
                        help="seed of the permutation search (default 0): the same seed, the same result")
    parser.add_argument("--max-iterations", type=non_negative_int, default=100, metavar="N",
                        help="rounds of perturbation and local search of the permutation search (default 100)")
    parser.add_argument("--time-limit", type=positive_float, metavar="SECONDS",
                        help="stop each layer's permutation search after this many seconds (default: no limit; "
                             "the result then depends on the machine's speed)")


def numpy_dtype(text: str) -> str:
    """argparse type: a name NumPy reads as a dtype."""
    try:
        np.dtype(text)
    except TypeError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a NumPy dtype (e.g. float32, float64, int16)") from None
    return text


def _load_hidden(path: str, m: int) -> Any:
    from ..accumulator import Autocorrelation

    p = Path(path)
    if p.suffix == ".npz" and p.is_file():
        with _np_load(path, "--hidden", ".npz") as z:
            saved_state = "scatter" in z.files or "version" in z.files
        if saved_state:
            return Autocorrelation.load(p)
    S = _load_array(path, "--hidden")
    if S.shape != (m, m):
        raise UserError(f"--hidden: expected an {m} x {m} hidden autocorrelation (the layer has {m} neurons), "
                        f"got shape {S.shape}")
    return S


# -- commands ----------------------------------------------------------------------------


def _check_figures(args: argparse.Namespace) -> None:
    """Refuse to start a report whose figures cannot be drawn, naming this command's option."""
    from . import report

    if not args.no_figures and not report.have_matplotlib():
        raise UserError("figures need matplotlib: pip install matplotlib (or pass --no-figures)")


def _demo(args: argparse.Namespace) -> int:
    from .demo import describe, run_demo

    from . import report

    start = time.perf_counter()
    _check_figures(args)
    figures = not args.no_figures
    planned = (report.layer_files("layer1", figures=figures, convergence=True)
               + report.layer_files("layer2", figures=figures, convergence=False, input_descrambled=True)
               + ["summary.json", "index.html"])
    report.check_outputs(args.out, planned, {}, args.force)
    kwargs: Dict[str, Any] = {"n_train": 10_000, "epochs": 15} if args.quick else {}
    summary = run_demo(args.out, seed=args.seed, figures=not args.no_figures, **kwargs)
    print(describe(summary))
    print(f"report: {Path(args.out).resolve()} ({len(_files(summary))} files) in "
          f"{time.perf_counter() - start:.1f} s")
    return 0


def _files(summary: dict) -> List[str]:
    return [f for layer in summary["layers"].values() for f in layer["files"]] + ["summary.json", "index.html"]


def _run(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    if not Path(args.weights).is_file():
        raise UserError(f"--weights: {args.weights}: no such file")
    _check_figures(args)
    single = args.layer is not None or args.hidden is not None
    if single:
        for option, given in (("--output", args.output), ("--activation", args.activation is not None)):
            if given:
                raise UserError(f"{option}: only for a whole-network run (--data without --layer)")
    else:
        layers = _load_network(args)
        if len(layers) > 1:
            return _run_network(args, layers, start)
    return _run_layer(args, start)


def _weights_error(exc: ValueError) -> UserError:
    from ..io import LayerChoiceError

    if isinstance(exc, LayerChoiceError):  # the remedy is a keyword of the io function: name this command's option
        return UserError("--weights: " + exc.spelled(_option))
    return UserError(f"--weights: {_one_line(exc)}")


def _load_network(args: argparse.Namespace) -> List[Tuple[str, np.ndarray, Optional[np.ndarray]]]:
    from ..io import load_network

    try:
        return load_network(args.weights, transpose=args.transpose)
    except ValueError as exc:
        raise _weights_error(exc) from None


def _report_options(args: argparse.Namespace, n_inputs: int) -> Dict[str, Any]:
    """The figure options of the layer whose inputs are the data's (``--input-*``), checked against its n inputs."""
    options: Dict[str, Any] = {}
    if args.input_shape is not None:
        shape = parse_shape(args.input_shape, "--input-shape")
        if len(shape) != 2:
            raise UserError(f"--input-shape: expected ROWSxCOLS (two sizes, e.g. 8x8), got {args.input_shape!r}")
        if int(np.prod(shape)) != n_inputs:
            raise UserError(f"--input-shape: {args.input_shape} is {int(np.prod(shape))} inputs, "
                            f"the first layer has {n_inputs}")
        options["input_shape"] = shape
    if args.input_values is not None:
        values = _load_array(args.input_values, "--input-values")
        if values.shape != (n_inputs,):
            raise UserError(f"--input-values: expected {n_inputs} values (one per input), got shape {values.shape}")
        options["input_values"] = values
    if args.input_label is not None:
        options["input_label"] = args.input_label
    return options


def _warn(text: str) -> None:
    print(f"descramble run: warning: {text}", file=sys.stderr)


def _warning_texts(caught: List[warnings.WarningMessage]) -> List[str]:
    return [_one_line(w.message) if isinstance(w.message, Warning) else str(w.message) for w in caught]


def _layer_warning_texts(caught: List[warnings.WarningMessage], k: int) -> List[str]:
    """The texts of what a whole-network call warned about layer ``k`` (0-based; layer 0 also gets the
    warnings that name no layer, e.g. about the data)."""
    texts = _warning_texts([w for w in caught if getattr(w.message, "layer_index", None) == k])
    if k == 0:
        texts = _warning_texts([w for w in caught if getattr(w.message, "layer_index", None) is None]) + texts
    return texts


def _run_layer(args: argparse.Namespace, start: float) -> int:
    """One layer: ``--layer``, ``--hidden``, or a weights file holding one layer."""
    from . import report
    from ..convergence import convergence
    from .demo import describe
    from ..accumulator import accumulate
    from ..descrambler import descramble
    from ..io import load_layer
    from ..sources import progress_bar

    try:
        W, b, key = load_layer(args.weights, args.layer, transpose=args.transpose)
    except ValueError as exc:
        raise _weights_error(exc) from None
    name = args.layer or key  # the report's files are named after the layer
    figures = not args.no_figures
    options = _report_options(args, W.shape[1])
    # Before any work: never replace a file this run did not write, nor any of its inputs.
    permuted = args.criterion != "smooth"
    planned = report.layer_files(_safe(name), figures=figures, convergence=args.hidden is None and not permuted,
                                 format=args.format, images="input_shape" in options, criterion=args.criterion)
    report.check_outputs(args.out, planned + ["summary.json", "index.html"], _inputs(args), args.force)
    if args.bias is not None:
        b = _load_array(args.bias, "--bias")
        if b.shape != (W.shape[0],):
            raise UserError(f"--bias: expected {W.shape[0]} values (one per row of the weights), got shape {b.shape}")
    if len(_specs(args)) != 1:
        raise UserError(f"--smoothness: one layer is descrambled; got {len(_specs(args))} specs")
    smooth = parse_smoothness(_specs(args)[0], W.shape[0])
    out = report.prepare(args.out)
    conv = None
    inputs = {"weights": str(args.weights), "layer": name, "matrix": key, "bias": b is not None,
              **_search_inputs(args)}
    search = _search(args)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if args.hidden is not None:
            if args.bias is not None:
                raise UserError("--bias: not used with --hidden (S already includes it); drop one")
            hidden = _load_hidden(args.hidden, W.shape[0])
            d = descramble(W, hidden=hidden, smoothness=smooth, **search)
            inputs["hidden"] = str(args.hidden)
            n_samples = getattr(hidden, "count", None)
        elif permuted:
            # A permutation: from the whole stream's statistics (no convergence curve: one search, not one per N).
            data, keywords = open_data(args.data, args.dtype, args.n_features)
            acc = accumulate(data, progress=args.progress, **keywords)
            d = descramble(W, autocorrelation=acc, bias=b, smoothness=smooth, **search)
            inputs["data"] = str(args.data)
            n_samples = acc.count
        else:
            data, keywords = open_data(args.data, args.dtype, args.n_features)
            with progress_bar(args.progress, None) as progress:
                conv = convergence(W, data, bias=b, smoothness=smooth, progress=progress, **keywords)
            d = conv.descrambler  # the whole stream's descrambler, computed once by convergence()
            inputs["data"] = str(args.data)
            n_samples = conv.accumulator.count
    texts = _warning_texts(caught)  # N < m, constant data, a missing bias: the library's warnings
    for text in texts:
        _warn(text)
    layer = report.layer_report(out, _safe(name), d, W, convergence=conv, figures=figures, dpi=args.dpi,
                                format=args.format, **options)
    layer["warnings"] = texts
    summary = {
        "command": "run",
        "inputs": inputs,
        "N": n_samples,
        "layers": {_safe(name): layer},
        "timings_s": {"total": round(time.perf_counter() - start, 3)},
        "versions": report.versions(),
    }
    report.write_summary(out, summary)
    report.write_index(out, summary)
    print(describe(summary))
    print(f"report: {out.resolve()} ({len(_files(summary))} files)")
    return 0


def _run_network(args: argparse.Namespace, layers: List[Tuple[str, np.ndarray, Optional[np.ndarray]]],
                 start: float) -> int:
    """Every hidden dense layer (and the output layer with --output), from one pass over --data."""
    from . import report
    from .demo import describe
    from ..network import check_criterion, descramble_network

    if args.bias is not None:
        raise UserError("--bias: only for a single layer (--layer NAME); the weights file gives each layer's bias")
    activation = _activation(args, layers)
    count = len(layers) if args.output else len(layers) - 1
    names = _layer_names(layers)
    figures = not args.no_figures
    options = _report_options(args, layers[0][1].shape[1])
    planned = []
    for k in range(count):
        planned += report.layer_files(names[k], figures=figures, convergence=False, format=args.format,
                                      images=k == 0 and "input_shape" in options, input_descrambled=k > 0,
                                      criterion=args.criterion)
    report.check_outputs(args.out, planned + ["summary.json", "index.html"], _inputs(args), args.force)
    smooths = _smoothness_per_layer(args, layers, names, count)
    # The output layer's activation does not enter any descrambler: identity, whatever --activation says.
    stack = [(W, b, activation if k < len(layers) - 1 else "identity") for k, (_, W, b) in enumerate(layers)]
    try:
        check_criterion(args.criterion, [a for _, _, a in stack[:count]])
    except ValueError as exc:
        raise UserError(_criterion_error(exc, names)) from None
    data, keywords = open_data(args.data, args.dtype, args.n_features)
    out = report.prepare(args.out)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = descramble_network(stack, data, smoothness=smooths, output=args.output, progress=args.progress,
                                    **_search(args), **keywords)
    n_samples = int(result[0].n_samples or 0)
    summaries: Dict[str, Any] = {}
    for k, d in enumerate(result):
        texts = _layer_warning_texts(caught, k)
        for text in texts:
            _warn(text)
        # The input axis: the data's (named by --input-label/--input-values) for the first layer,
        # the previous layer's outputs for the others.
        axis = ({"input_label": "input index", **options} if k == 0
                else {"input_label": f"{names[k - 1]} output (trained order)"})
        layer = report.layer_report(out, names[k], d, layers[k][1], figures=figures, dpi=args.dpi,
                                    format=args.format, **axis)
        layer["warnings"] = texts
        layer["name_in_file"] = layers[k][0]
        layer["activation"] = stack[k][2]
        layer["bias"] = layers[k][2] is not None
        summaries[names[k]] = layer
    summary = {
        "command": "run",
        "inputs": {"weights": str(args.weights), "data": str(args.data), "activation": activation,
                   "layers": [name for name, _, _ in layers], "output": bool(args.output),
                   "transpose": bool(args.transpose), **_search_inputs(args)},
        "network": {"sizes": [int(layers[0][1].shape[1])] + [int(W.shape[0]) for _, W, _ in layers]},
        "N": n_samples,
        "layers": summaries,
        "timings_s": {"total": round(time.perf_counter() - start, 3)},
        "versions": report.versions(),
    }
    report.write_summary(out, summary)
    report.write_index(out, summary)
    print(describe(summary))
    print(f"report: {out.resolve()} ({len(_files(summary))} files)")
    return 0


def _activation(args: argparse.Namespace, layers: List[Tuple[str, np.ndarray, Optional[np.ndarray]]]) -> str:
    """``--activation``, or the one the weights file names (a UserError when neither says)."""
    from ..io import load_activation

    if args.activation is not None:
        return str(args.activation)
    try:
        activation = load_activation(args.weights)
    except (ValueError, OSError) as exc:
        raise UserError(f"--weights: {_one_line(exc)}") from None
    if activation is None:
        raise UserError(f"--activation: {args.weights} holds {len(layers)} dense layers but does not say which "
                        "activation follows them; pass --activation relu|tanh|sigmoid|identity"
                        + (" (or --layer NAME for one layer)" if args.command == "run" else ""))
    return activation


def _layer_names(layers: List[Tuple[str, np.ndarray, Optional[np.ndarray]]]) -> List[str]:
    """The layers' names in file names: fc1 stays fc1; a bare index (a Sequential's "0", "net.2") is "layer<k>"."""
    names = [_safe(name) if re.search(r"[A-Za-z]", re.split(r"[./:]", name)[-1]) else f"layer{k + 1}"
             for k, (name, _, _) in enumerate(layers)]
    if len(set(names)) != len(names):
        names = [f"layer{k + 1}" for k in range(len(layers))]
    return names


def _smoothness_per_layer(args: argparse.Namespace, layers: List[Tuple[str, np.ndarray, Optional[np.ndarray]]],
                          names: List[str], count: int) -> List[Any]:
    """The ``--smoothness`` operator of each of the first ``count`` layers."""
    specs = _specs(args)
    if len(specs) not in (1, count):
        raise UserError(f"--smoothness: give one spec for every layer or one per descrambled layer ({count}: "
                        f"{', '.join(names[:count])}); got {len(specs)}")
    smooths = []
    for k in range(count):
        m = layers[k][1].shape[0]
        try:
            smooths.append(parse_smoothness(specs[k if len(specs) > 1 else 0], m))
        except UserError as exc:
            hint = (f" (one --smoothness per descrambled layer gives each its own operator: {count} here)"
                    if len(specs) == 1 and count > 1 else "")
            raise UserError(f"--smoothness: layer {names[k]} ({m} units): "
                            + str(exc).removeprefix("--smoothness: ") + hint) from None
    return smooths


def _criterion_error(exc: ValueError, names: List[str]) -> str:
    """check_criterion's message ("criterion: ... layer 2's units ...") as this command's, naming the layer."""
    text = _one_line(exc).removeprefix("criterion: ")
    found = re.search(r"layer (\d+)'s units", text)
    if found:
        k = int(found.group(1)) - 1
        text = text.replace(found.group(0), f"layer {names[k]}'s units", 1)
    text = text.replace("use criterion='permutation'", "use --criterion permutation")
    return f"--criterion: {text}"


def _search(args: argparse.Namespace) -> Dict[str, Any]:
    """The descramble keywords of ``--criterion``, ``--seed``, ``--max-iterations`` and ``--time-limit``."""
    return {"criterion": args.criterion, "seed": args.seed, "max_iterations": args.max_iterations,
            "time_limit": args.time_limit}


def _search_inputs(args: argparse.Namespace) -> Dict[str, Any]:
    """The search's options, for the summary (only the criterion for "smooth", which has no search)."""
    if args.criterion == "smooth":
        return {"criterion": "smooth"}
    return {"criterion": args.criterion, "seed": args.seed, "max_iterations": args.max_iterations,
            "time_limit": args.time_limit}


def _inputs(args: argparse.Namespace) -> Dict[str, Optional[str]]:
    """The files a ``run`` reads, by option: its report must never overwrite them."""
    inputs: Dict[str, Optional[str]] = {"--weights": args.weights, "--bias": args.bias, "--hidden": args.hidden,
                                        "--input-values": args.input_values}
    if args.data is not None:
        inputs["--data"] = args.data if Path(args.data).exists() else args.data.partition(":")[0]
    for k, spec in enumerate(_specs(args)):
        kind, _, arg = spec.partition(":")
        if kind in ("gram", "matrix") and arg:
            inputs["--smoothness" if k == 0 else f"--smoothness ({k + 1})"] = arg
    return inputs


def _specs(args: argparse.Namespace) -> List[str]:
    """The ``--smoothness`` specs given (default: ``fourier:2``)."""
    return args.smoothness or ["fourier:2"]


def _option(argument: str, value: object) -> str:
    """load_layer's remedy (``layer=NAME``, ``transpose=True``) as this command's option."""
    if argument == "transpose":
        return "--transpose" if value else "no --transpose"
    return f"--{argument} NAME"


def _safe(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip("._")
    return cleaned or "layer"


def _bench(args: argparse.Namespace, extra: List[str]) -> int:
    from .benchmarks import main as bench_main

    return bench_main((["--quick"] if args.quick else []) + extra, parser_class=_Parser)


# -- the parser --------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The ``descramble`` argument parser (its subcommands: demo, run, permute, bench)."""
    from .. import __version__

    parser = _Parser(prog="descramble", description="Closed-form descrambling of neural-network layers.")
    parser.add_argument("--version", action="version", version=f"descramble {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="{demo,run,permute,bench}", parser_class=_Parser)

    demo = sub.add_parser("demo", help="the whole story on an embedded relaxometry network (10 to 20 s)",
                          description="Simulate biexponential relaxometry, train a small MLP with NumPy, "
                                      "descramble its layers in closed form, and write a report.")
    demo.add_argument("--out", default="descramble-demo", metavar="DIR",
                      help="report directory (default: ./descramble-demo)")
    demo.add_argument("--seed", type=int, default=0,
                      help="seed (>= 0) of the data, the network and its training")
    demo.add_argument("--quick", action="store_true", help="a smaller network run (a few seconds)")
    demo.add_argument("--no-figures", action="store_true", help="skip the PNG figures (no matplotlib needed)")
    demo.add_argument("--force", action="store_true",
                      help="overwrite report files already in --out (never files it reads)")

    run = sub.add_parser("run", help="descramble the layers of your own network",
                         description="Descramble every hidden dense layer of a trained network (or one layer, "
                                     "with --layer or --hidden) and write the same report as the demo.")
    run.add_argument("--weights", required=True, metavar="FILE",
                     help="the weights: .npy (m x n), .npz, PyTorch .pt/.pth state dict, MATLAB .mat or .onnx")
    run.add_argument("--layer", metavar="NAME",
                     help="descramble only this layer (e.g. fc1); default: every hidden dense layer, in order "
                          "(PyTorch state dicts of Linear layers, or W1, b1, W2, b2, ... in .npz/.mat)")
    run.add_argument("--activation", choices=("relu", "tanh", "sigmoid", "identity"),
                     help="the activation after each hidden layer, for a whole-network run (needed unless the "
                          "weights file names it: an 'activation' string in .npz/.mat, Relu/Tanh/Sigmoid in ONNX)")
    run.add_argument("--output", action="store_true",
                     help="also descramble the output (last) layer in a whole-network run")
    run.add_argument("--transpose", action="store_true",
                     help="the file stores the matrix as (inputs, outputs), e.g. ONNX MatMul or Keras kernels")
    run.add_argument("--bias", metavar="FILE", help="the bias (.npy, m values); overrides the file's own")
    source = run.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", metavar="SRC",
                        help="the layer's input samples (rows): FILE.npy, FILE.npz[:KEY], FILE.h5:DATASET, "
                             "DIR.zarr[:ARRAY], or a raw file with --dtype and --n-features")
    source.add_argument("--hidden", metavar="FILE",
                        help="the hidden autocorrelation S (.npy, m x m) or a saved Autocorrelation (.npz)")
    run.add_argument("--smoothness", action="append", metavar="SPEC",
                     help="fourier[:ORDER], fd[:ORDER], fd-circular[:ORDER], fd-central[:ORDER], "
                          "grid:ROWSxCOLS[:ORDER], gram:A.npy or matrix:D.npy (default fourier:2); once for every "
                          "layer, or once per descrambled layer, in order")
    run.add_argument("--dtype", type=numpy_dtype, help="element type of a raw --data file (e.g. float32)")
    run.add_argument("--n-features", type=positive_int, metavar="N", help="row width of a raw --data file")
    run.add_argument("--out", required=True, metavar="DIR", help="report directory")
    run.add_argument("--no-figures", action="store_true", help="skip the figures")
    run.add_argument("--dpi", type=positive_int, default=150, help="resolution of PNG figures (default 150)")
    run.add_argument("--format", choices=("png", "svg", "pdf"), default="png", help="figure format (default png)")
    run.add_argument("--input-shape", metavar="ROWSxCOLS",
                     help="the inputs are images of this shape (e.g. 8x8): draw the first layer's rows as images")
    run.add_argument("--input-label", metavar="TEXT", help="what the inputs are, for the axis (e.g. 'echo time (ms)')")
    run.add_argument("--input-values", metavar="FILE",
                     help="the inputs' coordinates (.npy, one value per input, evenly spaced), for the axis")
    run.add_argument("--force", action="store_true",
                     help="overwrite report files already in --out (never this run's own input files)")
    run.add_argument("--progress", action="store_true", help="show a progress bar while streaming")
    _search_arguments(run, ("smooth", "permutation", "signed-permutation"), "smooth")

    permute = sub.add_parser(
        "permute", help="rewrite a network with its hidden units in the smoothest order (exactly equivalent)",
        description="Permute (and, for odd activations, sign-flip) every hidden layer's units into the smoothest "
                    "order found from one pass over --data, write the rewritten network (a PyTorch state dict "
                    "for .pt/.pth weights, else .npz, with the same keys) and a report with each layer's "
                    "certificate gap. The output layer's units keep their order.")
    permute.add_argument("--weights", required=True, metavar="FILE",
                         help="the network: a PyTorch .pt/.pth state dict of Linear layers, or .npz/.mat with "
                              "W1, b1, W2, b2, ... (or fc1.weight, fc1.bias, ...)")
    permute.add_argument("--data", required=True, metavar="SRC",
                         help="the network's input samples (rows): FILE.npy, FILE.npz[:KEY], FILE.h5:DATASET, "
                              "DIR.zarr[:ARRAY], or a raw file with --dtype and --n-features")
    permute.add_argument("--out", required=True, metavar="DIR",
                         help="directory for the rewritten network and its report")
    permute.add_argument("--activation", choices=("relu", "tanh", "sigmoid", "identity"),
                         help="the activation after each hidden layer (needed unless the weights file names it)")
    _search_arguments(permute, ("permutation", "signed-permutation"), "permutation")
    permute.add_argument("--smoothness", action="append", metavar="SPEC",
                         help="as for run (default fourier:2); once for every hidden layer, or once per hidden "
                              "layer, in order")
    permute.add_argument("--transpose", action="store_true",
                         help="the file stores the matrices as (inputs, outputs), e.g. Keras kernels")
    permute.add_argument("--dtype", type=numpy_dtype, help="element type of a raw --data file (e.g. float32)")
    permute.add_argument("--n-features", type=positive_int, metavar="N", help="row width of a raw --data file")
    permute.add_argument("--no-figures", action="store_true", help="skip the figures")
    permute.add_argument("--dpi", type=positive_int, default=150, help="resolution of PNG figures (default 150)")
    permute.add_argument("--format", choices=("png", "svg", "pdf"), default="png",
                         help="figure format (default png)")
    permute.add_argument("--force", action="store_true",
                         help="overwrite files already in --out (never this run's own input files)")
    permute.add_argument("--progress", action="store_true", help="show a progress bar while streaming")

    bench = sub.add_parser("bench", help="run the benchmark suite against NumPy and print its table",
                           description="Benchmarks against the NumPy reference (see descramble.cli.benchmarks); "
                                       "other options are passed to it (--json, --only, --repeat, --widths).")
    bench.add_argument("--quick", action="store_true", help="small sizes (a few minutes)")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the ``descramble`` command.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success, 2 on a user error, 130 when interrupted.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    command = "descramble"
    try:
        if argv and argv[0] == "bench":
            args, extra = parser.parse_known_args(argv)
        else:
            args, extra = parser.parse_args(argv), []
        if args.command is None:
            parser.print_help()
            return USAGE_ERROR
        command = f"descramble {args.command}"
        if args.command == "demo":
            return _demo(args)
        if args.command == "run":
            return _run(args)
        if args.command == "permute":
            from .permute import permute_command

            return permute_command(args)
        return _bench(args, extra)
    except KeyboardInterrupt:
        print(f"{command}: interrupted", file=sys.stderr)
        return INTERRUPTED
    except (UserError, ValueError, TypeError, OSError, ImportError, KeyError, OverflowError) as exc:
        command = getattr(exc, "prog", None) or command
        print(f"{command}: error: {_one_line(_as_option(exc))}", file=sys.stderr)
        return USAGE_ERROR


def _as_option(exc: BaseException) -> BaseException:
    """An error about a report or demo argument (``out``), as one about this command's option (``--out``)."""
    from .report import ArgumentError

    if isinstance(exc, ArgumentError):
        return UserError(f"--{exc.argument.replace('_', '-')}: {exc.detail}")
    return exc


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
