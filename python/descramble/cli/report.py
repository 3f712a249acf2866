"""Writing a descrambling report to a directory: figures (PNG, SVG or PDF), arrays, a JSON summary, index.html.

Shared by ``descramble demo`` and ``descramble run``. Figures need
matplotlib (``pip install matplotlib``); without it the arrays and the
summary are still written.
"""

from __future__ import annotations

import html
import json
import os
import platform
import sys
import urllib.parse
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from .._validation import as_matrix
from ..convergence import Convergence
from ..descrambler import PERMUTATION_CRITERIA, Descrambler, smoothness_loss


class ArgumentError(ValueError):
    """A bad argument of the report or the demo, named as data.

    ``argument`` is the Python argument's name (``"out"``) and ``detail``
    what is wrong with it; the message is ``"<argument>: <detail>"``. The
    command line names its own option from ``argument`` instead.
    """

    def __init__(self, argument: str, detail: str) -> None:
        super().__init__(f"{argument}: {detail}")
        self.argument = argument
        self.detail = detail


def versions() -> Dict[str, str]:
    """Versions of descramble, its BLAS, NumPy, Python and (if present) matplotlib."""
    from .. import __version__, _core

    out = {
        "descramble": __version__,
        "blas": _core.product_backend(),
        "numpy": np.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }
    try:
        import matplotlib

        out["matplotlib"] = matplotlib.__version__
    except ImportError:
        pass
    return out


def have_matplotlib() -> bool:
    """True when matplotlib can be imported (figures can be drawn)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def prepare(out: Any) -> Path:
    """Create the output directory ``out`` (parents too) and return it.

    Raises
    ------
    ArgumentError
        (a ValueError naming ``out``) When ``out`` exists and is not a
        directory, or cannot be created.
    """
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise ArgumentError("out", f"{path} exists and is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ArgumentError("out", f"cannot create {path}: {exc.strerror or exc}") from None
    if not os.access(path, os.W_OK):
        raise ArgumentError("out", f"{path} is not writable")
    return path


#: The figure formats a report can be written in (those of :func:`descramble.plot.save`).
FORMATS = ("png", "svg", "pdf")


def _format(format: Any) -> str:
    chosen = str(format).lower()
    if not isinstance(format, str) or chosen not in FORMATS:
        raise ArgumentError("format", f"expected one of {', '.join(FORMATS)}, got {format!r}")
    return chosen


def layer_files(name: str, *, figures: bool, convergence: bool, format: str = "png",
                images: bool = False, input_descrambled: bool = False, criterion: str = "smooth") -> List[str]:
    """The names of the files :func:`layer_report` writes for layer ``name``.

    ``format`` is the figures' format (png, svg or pdf); ``images`` whether
    the weight-image figure is drawn (``layer_report(..., input_shape=...)``);
    ``input_descrambled`` whether the descrambler has a ``Q`` (saved as
    ``Q_<name>.npy``); ``criterion`` the descrambler's (the permutation
    criteria add ``permutation_<name>.npy``, and ``signs_<name>.npy`` when
    signed).
    """
    files = [f"P_{name}.npy", f"PW_{name}.npy"] + ([f"Q_{name}.npy"] if input_descrambled else [])
    if criterion in PERMUTATION_CRITERIA:
        files.append(f"permutation_{name}.npy")
    if criterion == "signed-permutation":
        files.append(f"signs_{name}.npy")
    if figures:
        suffix = _format(format)
        stems = ["weights", "spectrum", "fourier"] + (["images"] if images else []) \
            + (["convergence"] if convergence else [])
        files += [f"{stem}_{name}.{suffix}" for stem in stems]
    return files


def check_outputs(out: Any, files: List[str], inputs: Dict[str, Any], force: bool) -> None:
    """Refuse to write a report whose files would replace existing ones.

    ``files`` (names in ``out``) that already exist are refused unless
    ``force``; one that is the same file as any of ``inputs`` (option ->
    path: the run's own weights, data, ...) is refused even with ``force``.
    Called before any work starts.

    Raises
    ------
    ArgumentError
        (naming ``out``) For the first file that would be replaced.
    """
    directory = Path(out)
    if not directory.is_dir():
        return  # nothing there yet (or prepare() refuses it)
    sources = []
    for option, path in inputs.items():
        if path is not None and os.path.isfile(path):
            sources.append((option, os.path.realpath(path)))
    for name in files:
        target = directory / name
        if not os.path.lexists(target):
            continue
        for option, source in sources:
            if os.path.exists(target) and (os.path.realpath(target) == source or os.path.samefile(target, source)):
                raise ArgumentError("out", f"{target} is the {option} input; the report would overwrite it: "
                                           "choose another directory")
        if not force:
            raise ArgumentError("out", f"{target} already exists and would be overwritten; "
                                       "choose another directory or pass --force")


def layer_report(
    out: Path,
    name: str,
    descrambler: Descrambler,
    weights: np.ndarray,
    *,
    convergence: Optional[Convergence] = None,
    input_values: Optional[np.ndarray] = None,
    input_label: Optional[str] = None,
    input_shape: Optional[Sequence[int]] = None,
    sample_spacing: float = 1.0,
    frequency_unit: str = "cycles per input",
    figures: bool = True,
    dpi: float = 150,
    format: str = "png",
    x: Optional[np.ndarray] = None,
    xlabel: Optional[str] = None,
) -> Dict[str, Any]:
    """Write one layer's arrays and figures into ``out`` and return its summary.

    Files: ``P_<name>.npy``, ``PW_<name>.npy`` (the descrambled weights
    ``P W``, or ``P W Q^T`` when ``descrambler.Q`` is set: both axes
    descrambled), for a permutation descrambler ``permutation_<name>.npy``
    (and ``signs_<name>.npy`` when signed) and, with matplotlib, ``weights_<name>.<format>``,
    ``spectrum_<name>.<format>``, ``fourier_<name>.<format>``, given
    ``input_shape`` ``images_<name>.<format>`` and given ``convergence``
    ``convergence_<name>.<format>`` (:func:`layer_files` lists them).

    Parameters
    ----------
    out : Path
        The report's directory (see :func:`prepare`).
    name : str
        The layer's name in the file names.
    descrambler : Descrambler
    weights : ndarray of shape (m, n)
        The layer's raw W.
    convergence : Convergence, optional
    input_values : ndarray of shape (n,), optional
        Coordinates of the inputs (evenly spaced), for the weights figure.
    input_label : str, optional
        Name of the input axis (default ``"input"``).
    input_shape : (int, int), optional
        Draw the rows of the descrambled weights as images of this shape
        (:func:`descramble.plot.weight_images`).
    sample_spacing, frequency_unit
        For the Fourier figure's frequency axis.
    figures : bool
        Draw the figures (needs matplotlib).
    dpi : float
        Resolution of the figures (PNG pixels per inch).
    format : {"png", "svg", "pdf"}
    x, xlabel
        Older names of ``input_values`` and ``input_label``, still accepted.

    Returns
    -------
    dict
        Shapes, the criterion, loss, bound, relative gap, the certificate
        ``gap`` (the descrambler's for the permutation criteria, else
        ``max(0, relative gap)``), whether loss and bound agree
        (``"equal"``), the trained-order loss, degeneracies, convergence
        numbers and the files written (JSON-ready).
    """
    d = descrambler
    if not (np.isfinite(d.loss) and np.isfinite(d.bound)):
        raise ValueError(f"{name}: the loss ({d.loss}) or the bound ({d.bound}) is not finite: the hidden "
                         "autocorrelation overflows float64 under the smoothness operator; rescale the data")
    if x is not None:
        if input_values is not None:
            raise ArgumentError("input_values", "pass either input_values= or its older name x=, not both")
        input_values = x
    if xlabel is not None:
        if input_label is not None:
            raise ArgumentError("input_label", "pass either input_label= or its older name xlabel=, not both")
        input_label = xlabel
    suffix = _format(format)
    if isinstance(dpi, bool) or not isinstance(dpi, (int, float, np.integer, np.floating)) \
            or not (np.isfinite(dpi) and dpi > 0):
        raise ArgumentError("dpi", f"expected a positive number, got {dpi!r}")
    W = as_matrix(weights, "weights", rows=d.P.shape[0])
    from .. import plot  # the figure-free helpers need no matplotlib

    PW = plot.descrambled_weights(d, W)
    if input_shape is not None:
        plot.image_shape(input_shape, W.shape[1])
    # Draw every figure before writing any file: a bad argument leaves no half-written report.
    drawn: List[Any] = []
    if figures:
        title = f"{name}: {W.shape[0]} units x {W.shape[1]} inputs"
        if d.permutation is not None:
            drawn.append(("weights", plot.permuted_weights(d, W, input_label=input_label, title=title)))
        else:
            drawn.append(("weights", plot.weights(d, W, input_values=input_values, input_label=input_label,
                                                  title=title)))
        drawn.append(("spectrum", plot.singular_spectrum(d, title=title)))
        drawn.append(("fourier", plot.fourier_magnitude(d, W, sample_spacing=sample_spacing,
                                                        frequency_unit=frequency_unit, title=title)))
        if input_shape is not None:
            drawn.append(("images", plot.weight_images(d, W, input_shape=input_shape, title=title)))
        if convergence is not None:
            drawn.append(("convergence", plot.convergence(convergence, title=title)))
    files: List[str] = []
    # Q: the input axis's descrambler (layer k-1's outputs), so that the columns of P W Q^T map back.
    arrays: List[Any] = [("P", d.P), ("PW", PW)] + ([("Q", d.Q)] if d.Q is not None else [])
    if d.permutation is not None:
        arrays.append(("permutation", np.asarray(d.permutation, dtype=np.int64)))
    if d.signs is not None:
        arrays.append(("signs", np.asarray(d.signs)))
    for stem, array in arrays:
        path = out / f"{stem}_{name}.npy"
        np.save(path, array)
        files.append(path.name)
    for stem, fig in drawn:
        files.append(plot.save(fig, out / f"{stem}_{name}.{suffix}", dpi=dpi, format=suffix).name)
    # The loss's own scale: no orthogonal P gives more than lambda_max tr(S), and the loss is computed
    # to about m eps of it. A bound within 1e-12 of that scale is zero up to rounding: the gap is then
    # measured against the scale (a relative gap against a bound of 1e-32 means nothing).
    scale = (float(np.max(d.basis_values)) * float(np.trace(d.hidden))
             if d.hidden is not None and d.basis_values.size else abs(d.bound))
    tolerance = max(1e-9 * abs(d.bound), 1e-12 * scale, np.finfo(np.float64).tiny)
    # (loss - bound) / |bound|; None when the bound is zero up to rounding (see loss_scale).
    relative = (d.loss - d.bound) / abs(d.bound) if abs(d.bound) > 1e-12 * scale and d.bound else None
    # The certificate: how far above the optimum over all orthogonal P the loss can be (the permutation
    # search's own gap; the closed form's is zero up to rounding). JSON has no infinity: None then.
    gap = d.gap if d.gap is not None else (None if relative is None else max(0.0, relative))
    summary: Dict[str, Any] = {
        "m": int(W.shape[0]),
        "n": int(W.shape[1]),
        "criterion": d.criterion,
        "smoothness": None if d.smoothness is None else d.smoothness.name,
        "loss": d.loss,
        "bound": d.bound,
        "gap": gap if gap is None or np.isfinite(gap) else None,
        "relative_gap": relative,
        "loss_scale": scale,
        # The closed form reaches the bound: "=" only when they agree to 1e-9 relative (or, for a bound that
        # is zero up to rounding, to 1e-12 of the loss's scale).
        "equal": bool(abs(d.loss - d.bound) <= tolerance),
        # eta(I): the loss of the layer in its trained order.
        "raw_loss": (None if d.hidden is None or d.smoothness is None
                     else smoothness_loss(np.eye(d.P.shape[0]), d.hidden, d.smoothness)),
        "input_descrambled": d.Q is not None,
        "hidden_std": np.sqrt(np.clip(d.spectrum, 0, None)).tolist(),
        "degenerate": [{"kind": g.kind, "indices": g.indices.tolist()} for g in d.degenerate],
        "files": files,
    }
    if convergence is not None:
        summary["convergence"] = {
            "n_samples": convergence.n_samples.tolist(),
            "loss": convergence.loss.tolist(),
            "bound": convergence.bound,
        }
    return summary


def write_summary(out: Path, summary: Dict[str, Any]) -> Path:
    """Write ``summary`` as ``summary.json`` in ``out`` (indented, sorted keys)."""
    path = out / "summary.json"
    # allow_nan=False: NaN and Infinity are not JSON; fail here rather than write an unreadable file.
    path.write_text(json.dumps(summary, indent=2, sort_keys=True, default=_jsonable, allow_nan=False) + "\n")
    return path


# -- index.html ---------------------------------------------------------------------------

_STYLE = """
body { font-family: sans-serif; margin: 1.5em auto; max-width: 1200px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.25em; border-bottom: 1px solid #ccc; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 0.2em 0.6em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; font-weight: normal; }
td.num { font-family: monospace; text-align: right; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.85em; color: #555; }
.warning { color: #8a4b00; }
"""

# The layer numbers shown first, with their labels; any other key follows under its own name.
_LAYER_ROWS = (
    ("m", "hidden units m"),
    ("n", "inputs n"),
    ("criterion", "criterion"),
    ("smoothness", "smoothness operator"),
    ("loss", "loss eta(P)"),
    ("bound", "bound sum lambda_k mu_k"),
    ("gap", "certificate gap max(0, (loss - bound) / bound)"),
    ("relative_gap", "relative gap (loss - bound) / |bound|"),
    ("equal", "loss = bound (to 1e-9)"),
    ("loss_scale", "loss scale lambda_max tr(S)"),
    ("raw_loss", "trained-order loss eta(I)"),
    ("input_descrambled", "input axis descrambled (P W Q^T)"),
)
_SHOWN_ELSEWHERE = {"files", "warnings", "degenerate", "convergence", "hidden_std"}
_RUN_KEYS = ("command", "N", "inputs", "network", "timings_s", "versions")


def _text(value: Any) -> str:
    """A scalar as escaped text (floats to 6 significant digits)."""
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (float, np.floating)):
        return html.escape(f"{float(value):.6g}")
    if value is None:
        return "&mdash;"
    return html.escape(str(value))


def _value(value: Any) -> str:
    """Any JSON-like value as escaped HTML: dicts as tables, lists of scalars inline, others as lists."""
    if isinstance(value, dict):
        rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{_value(v)}</td></tr>" for k, v in value.items())
        return f"<table>{rows}</table>"
    if isinstance(value, (list, tuple, np.ndarray)):
        items = list(value)
        if all(not isinstance(v, (dict, list, tuple, np.ndarray)) for v in items):
            return ", ".join(_text(v) for v in items) or "&mdash;"
        return "<ul>" + "".join(f"<li>{_value(v)}</li>" for v in items) + "</ul>"
    return _text(value)


def _href(name: str) -> str:
    return html.escape(urllib.parse.quote(name), quote=True)


def _layer_html(name: str, layer: Dict[str, Any]) -> List[str]:
    parts = [f'<h2 id="{_href("layer-" + name)}">{html.escape(name)}</h2>']
    rows = [(label, layer[key]) for key, label in _LAYER_ROWS if key in layer]
    rows += [(key, value) for key, value in layer.items()
             if key not in dict(_LAYER_ROWS) and key not in _SHOWN_ELSEWHERE]
    parts.append("<table>" + "".join(
        f"<tr><th>{html.escape(label)}</th><td class=\"num\">{_value(value)}</td></tr>" for label, value in rows)
        + "</table>")
    warnings = layer.get("warnings") or []
    if warnings:
        parts.append("<p>Warnings:</p><ul>" + "".join(f'<li class="warning">{_value(w)}</li>' for w in warnings)
                     + "</ul>")
    degenerate = layer.get("degenerate") or []
    if degenerate:
        parts.append("<p>Degenerate groups (the descrambler is not unique inside them):</p><ul>" + "".join(
            f"<li>{html.escape(str(g.get('kind')))}: indices {_value(g.get('indices', []))}</li>"
            if isinstance(g, dict) else f"<li>{_value(g)}</li>" for g in degenerate) + "</ul>")
    else:
        parts.append("<p>No degenerate groups: the descrambler is unique up to signs.</p>")
    conv = layer.get("convergence")
    if isinstance(conv, dict) and conv.get("n_samples"):
        cells = "".join(f"<tr><td class=\"num\">{_text(N)}</td><td class=\"num\">{_text(loss)}</td></tr>"
                        for N, loss in zip(conv.get("n_samples", []), conv.get("loss", [])))
        parts.append(f"<p>Convergence (bound {_text(conv.get('bound'))}):</p>"
                     f"<table><tr><th>samples N</th><th>loss eta(P_N) on all the data</th></tr>{cells}</table>")
    if layer.get("hidden_std"):
        parts.append("<details><summary>hidden standard deviations sqrt(mu_k)</summary><p>"
                     + _value(layer["hidden_std"]) + "</p></details>")
    arrays = []
    for file in layer.get("files", []):
        file = str(file)
        suffix = file.rsplit(".", 1)[-1].lower()
        if suffix in ("png", "svg"):
            parts.append(f'<figure><img src="{_href(file)}" alt="{html.escape(file, quote=True)}">'
                         f"<figcaption>{html.escape(file)}</figcaption></figure>")
        elif suffix == "pdf":
            parts.append(f'<p>Figure: <a href="{_href(file)}">{html.escape(file)}</a> (PDF)</p>')
        else:
            arrays.append(f'<a href="{_href(file)}">{html.escape(file)}</a>')
    if arrays:
        parts.append("<p>Arrays: " + ", ".join(arrays) + "</p>")
    return parts


def write_index(out: Any, summary: Dict[str, Any]) -> Path:
    """Write ``index.html`` in ``out``: every layer's figures and numbers, and the run's inputs and versions.

    A static page (no script, no external resources) that opens from the
    file system; every text is escaped. Figures in PNG or SVG are shown,
    PDFs and arrays linked. ``summary`` is the report's summary:
    ``summary["layers"]`` maps each layer's name to the dict
    :func:`layer_report` returned (with an optional ``"warnings"`` list);
    ``"command"``, ``"inputs"``, ``"N"``, ``"network"``, ``"timings_s"``
    and ``"versions"`` are shown when present; ``"figures"`` (file names
    in ``out``) are the run's own figures, shown before the layers'. The
    permutation criteria's certificate gaps are listed first.

    Returns
    -------
    pathlib.Path
        The page's path.
    """
    layers = summary.get("layers") or {}
    if not isinstance(layers, dict):
        raise ArgumentError("summary", f"summary['layers'] must be a dict (name -> layer summary), "
                                       f"got {type(layers).__name__}")
    command = summary.get("command")
    heading = "descramble report" + (f": {command}" if command else "")
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{html.escape(heading)}</title><style>{_STYLE}</style></head><body>",
             f"<h1>{html.escape(heading)}</h1>"]
    if layers:
        parts.append("<p>Layers: " + ", ".join(f'<a href="#{_href("layer-" + str(n))}">{html.escape(str(n))}</a>'
                                               for n in layers) + "</p>")
    run = [(key, summary[key]) for key in _RUN_KEYS if key in summary and summary[key] is not None]
    run += [(key, value) for key, value in summary.items() if key not in _RUN_KEYS and key not in ("layers", "figures")]
    if run:
        parts.append("<h2>run</h2><table>" + "".join(
            f"<tr><th>{html.escape(str(key))}</th><td>{_value(value)}</td></tr>" for key, value in run) + "</table>")
    gaps = [(str(name), layer.get("gap")) for name, layer in layers.items()
            if isinstance(layer, dict) and layer.get("criterion") in PERMUTATION_CRITERIA]
    if gaps:
        parts.append("<p>Certificate gap max(0, (loss - bound) / bound) of each layer's permutation (how far "
                     "above the best orthogonal descrambler its loss is; the best permutation lies in between): "
                     + ", ".join(f"{html.escape(name)} {_text(gap) if gap is not None else 'inf'}"
                                 for name, gap in gaps) + "</p>")
    for file in summary.get("figures") or []:
        file = str(file)
        if file.rsplit(".", 1)[-1].lower() in ("png", "svg"):
            parts.append(f'<figure><img src="{_href(file)}" alt="{html.escape(file, quote=True)}">'
                         f"<figcaption>{html.escape(file)}</figcaption></figure>")
        else:
            parts.append(f'<p>Figure: <a href="{_href(file)}">{html.escape(file)}</a></p>')
    for name, layer in layers.items():
        parts += _layer_html(str(name), layer if isinstance(layer, dict) else {})
    parts.append("</body></html>")
    path = Path(out) / "index.html"
    path.write_text("\n".join(parts) + "\n", encoding="utf-8")
    return path


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
