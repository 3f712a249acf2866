"""What the example scripts share: their command line and their figure file.

Each example is a standalone script (``python examples/NAME.py --out DIR``);
this module is imported from the script's own directory.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Sequence, Tuple


def command_line(doc: str, samples: int, figure: str, argv: Optional[Sequence[str]]) -> argparse.Namespace:
    """Parse ``--seed``, ``--samples`` (default ``samples``) and ``--out`` (a directory for ``figure``)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--samples", type=int, default=samples, help=f"number of samples N (default {samples})")
    parser.add_argument("--out", type=Path, default=None, help=f"directory for {figure} (needs matplotlib)")
    args = parser.parse_args(argv)
    args.parser = parser
    return args


def run(run: Callable[..., Dict[str, Any]], args: argparse.Namespace) -> Dict[str, Any]:
    """``run(seed=..., n_samples=...)``; a ValueError becomes the command line's usage error."""
    try:
        return run(seed=args.seed, n_samples=args.samples)
    except ValueError as exc:
        args.parser.error(str(exc))
        raise  # unreachable: error() exits


def figure(columns: int, size: Tuple[float, float]) -> Tuple[Any, Any, Any]:
    """A row of ``columns`` axes on the Agg backend: (pyplot, figure, axes)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, columns, figsize=size)
    return plt, fig, axes


def save(plt: Any, fig: Any, out: Path, name: str) -> Path:
    """Save ``fig`` as ``out/name`` (100 dpi) and close it."""
    fig.tight_layout()
    out.mkdir(parents=True, exist_ok=True)
    path = out / name
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def report_figure(draw: Callable[[Dict[str, Any], Path], Path], result: Dict[str, Any], out: Optional[Path]) -> None:
    """Draw the figure when ``--out`` was given, saying where it went (or that matplotlib is missing)."""
    if out is None:
        return
    try:
        path = draw(result, out)
    except ImportError:
        print("no figure: matplotlib is missing (pip install matplotlib)")
    else:
        print(f"figure: {path}")
