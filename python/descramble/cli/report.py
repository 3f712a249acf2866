"""Writing a descrambling report to a directory: PNG figures, arrays, a JSON summary.

Shared by ``descramble demo`` and ``descramble run``. Figures need
matplotlib (the ``plot`` extra); without it the arrays and the summary are
still written and the summary says why the figures are missing.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

from .._validation import as_matrix
from ..convergence import Convergence
from ..descrambler import Descrambler, smoothness_loss


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


def layer_files(name: str, *, figures: bool, convergence: bool) -> List[str]:
    """The names of the files :func:`layer_report` writes for layer ``name``."""
    files = [f"P_{name}.npy", f"PW_{name}.npy"]
    if figures:
        files += [f"weights_{name}.png", f"spectrum_{name}.png", f"fourier_{name}.png"]
        if convergence:
            files.append(f"convergence_{name}.png")
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


def _save_figure(fig: Any, path: Path, files: List[str]) -> None:
    fig.savefig(path, dpi=80)
    files.append(path.name)


def layer_report(
    out: Path,
    name: str,
    descrambler: Descrambler,
    weights: np.ndarray,
    *,
    convergence: Optional[Convergence] = None,
    x: Optional[np.ndarray] = None,
    xlabel: str = "input index",
    sample_spacing: float = 1.0,
    frequency_unit: str = "cycles per input",
    figures: bool = True,
) -> Dict[str, Any]:
    """Write one layer's arrays and figures into ``out`` and return its summary.

    Files: ``P_<name>.npy``, ``PW_<name>.npy`` and, with matplotlib,
    ``weights_<name>.png``, ``spectrum_<name>.png``, ``fourier_<name>.png``
    and (given ``convergence``) ``convergence_<name>.png``.

    Returns
    -------
    dict
        Shapes, loss, bound, degeneracies, convergence numbers and the
        files written (JSON-ready).
    """
    d = descrambler
    if not (np.isfinite(d.loss) and np.isfinite(d.bound)):
        raise ValueError(f"{name}: the loss ({d.loss}) or the bound ({d.bound}) is not finite: the hidden "
                         "autocorrelation overflows float64 under the smoothness operator; rescale the data")
    W = as_matrix(weights, "weights", rows=d.P.shape[0])
    files: List[str] = []
    for stem, array in (("P", d.P), ("PW", d.P @ W)):
        path = out / f"{stem}_{name}.npy"
        np.save(path, array)
        files.append(path.name)
    if figures:
        from .. import plot

        title = f"{name}: {W.shape[0]} neurons x {W.shape[1]} inputs"
        _save_figure(plot.weights(d, W, x=x, xlabel=xlabel, title=title), out / f"weights_{name}.png", files)
        _save_figure(plot.singular_spectrum(d, title=title), out / f"spectrum_{name}.png", files)
        _save_figure(plot.fourier_magnitude(d, W, sample_spacing=sample_spacing, frequency_unit=frequency_unit,
                                            title=title), out / f"fourier_{name}.png", files)
        if convergence is not None:
            _save_figure(plot.convergence(convergence, title=title), out / f"convergence_{name}.png", files)
    summary: Dict[str, Any] = {
        "m": int(W.shape[0]),
        "n": int(W.shape[1]),
        "smoothness": None if d.smoothness is None else d.smoothness.name,
        "loss": d.loss,
        "bound": d.bound,
        "relative_gap": (d.loss - d.bound) / abs(d.bound) if d.bound else d.loss - d.bound,
        # eta(I): the loss of the layer in its trained order.
        "raw_loss": (None if d.hidden is None or d.smoothness is None
                     else smoothness_loss(np.eye(d.P.shape[0]), d.hidden, d.smoothness)),
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


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
