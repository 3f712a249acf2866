"""Write the API reference's module pages (``docs/api/*.rst``) from the modules themselves.

Every public name gets an entry: the names in a module's ``__all__`` (or, for a module
without one, the functions and classes it defines whose names do not start with ``_``).
A name a module adds later (``descramble.permute_network``, ``descramble.torch.permute_model``)
appears in the reference without editing the docs; the autosummary stubs below the pages
(``docs/api/generated/``) are written by ``sphinx.ext.autosummary``.  Both directories are
build outputs (see ``.gitignore``); the page texts (titles, introductions, groups) live here.
"""

from __future__ import annotations

import importlib
import inspect
import types
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

#: The top-level names, grouped; a public name of ``descramble`` in no group lands in "Other".
TOP_LEVEL_GROUPS: List[Tuple[str, Sequence[str]]] = [
    ("Second moments of a data stream", ("Autocorrelation", "accumulate", "autocorrelation", "cov")),
    ("Descramblers", ("descramble", "Descrambler", "Degeneracy", "stability", "Stability",
                      "hidden_autocorrelations", "HiddenAutocorrelations", "descramble_network",
                      "permute_network", "Convergence")),
    ("Linear algebra", ("eigh", "svd")),
    ("Errors", ("NonFiniteError", "InvalidWeightError")),
    ("Warnings", ("DescrambleWarning", "UnderdeterminedWarning", "ConstantDataWarning",
                  "IgnoredArgumentWarning", "MissingBiasWarning")),
]

#: (module, title, introduction). The order is the order of the reference's table of contents.
MODULES: List[Tuple[str, str, str]] = [
    ("descramble", "descramble",
     "The package's top level: streaming second moments, the closed-form and permutation "
     "descramblers, whole networks, and the errors and warnings they raise. "
     "``descramble.convergence(W, data)`` (the module is callable) is "
     ":func:`descramble.convergence.convergence`."),
    ("descramble.smoothness", "descramble.smoothness",
     "Smoothness operators over a layer's hidden units and their eigenbases "
     "(:ref:`the mathematics, section 4 <math-s4>`)."),
    ("descramble.sources", "descramble.sources",
     "Data sources: how arrays, files, HDF5/zarr datasets and iterables of chunks are read "
     "in bounded chunks (see :doc:`../streams`)."),
    ("descramble.io", "descramble.io",
     "Weight and activation files: NumPy, PyTorch, MATLAB and ONNX (see :doc:`../pytorch`)."),
    ("descramble.plot", "descramble.plot",
     "Figures of a descrambled layer (matplotlib, imported on first use)."),
    ("descramble.dask", "descramble.dask",
     "Second moments of Dask arrays, on one machine or a cluster (see :doc:`../dask`). "
     "``import descramble`` does not import it."),
    ("descramble.torch", "descramble.torch",
     "Hidden signals of PyTorch models, recorded with forward hooks (see :doc:`../pytorch`). "
     "``import descramble`` does not import it."),
    ("descramble.convergence", "descramble.convergence",
     "The descrambler from the first N samples for growing N, in one pass "
     "(:ref:`the mathematics, section 5 <math-s5>`)."),
    ("descramble.linalg", "descramble.linalg",
     "The spectral kernels' result types (the functions are :func:`descramble.eigh` and "
     ":func:`descramble.svd`)."),
    ("descramble.diagnostics", "descramble.diagnostics",
     "Warnings that carry their facts as attributes. The classes are also the top-level names "
     "``descramble.DescrambleWarning`` and so on."),
    ("descramble.reference", "descramble.reference",
     "Plain NumPy reference implementations of every kernel, and the iterative descrambler the "
     "closed form replaces: what the tests and benchmarks compare against."),
    ("descramble.cli", "descramble.cli",
     "The application behind the ``descramble`` command (its options are on :doc:`../cli`). "
     "The library never imports it."),
]

#: Names of a module's ``__all__`` that are documented elsewhere (submodules, the version).
SKIP = {"__version__"}


def public_names(module_name: str) -> List[str]:
    """A module's public names: ``__all__``, or the functions and classes it defines."""
    module = importlib.import_module(module_name)
    names: Optional[Sequence[str]] = getattr(module, "__all__", None)
    if names is None:
        names = [name for name, value in vars(module).items()
                 if not name.startswith("_") and (inspect.isfunction(value) or inspect.isclass(value))
                 and getattr(value, "__module__", None) == module_name]
    result = []
    for name in names:
        if name in SKIP:
            continue
        value = getattr(module, name)
        if isinstance(value, types.ModuleType):  # a submodule: it has its own page (or is internal)
            continue
        result.append(name)
    return result


def _table(module: str, names: Sequence[str]) -> str:
    lines = [".. autosummary::", "   :toctree: generated/", ""]
    lines += [f"   {name}" for name in names]
    return "\n".join(lines) + "\n"


def page(module: str, title: str, intro: str) -> str:
    names = public_names(module)
    text = [f".. _api-{module.replace('.', '-')}:", "", title, "=" * len(title), "",
            f".. module:: {module}", "   :no-index:", "", f".. currentmodule:: {module}", "", intro, ""]
    if module == "descramble":
        left = list(names)
        for heading, group in TOP_LEVEL_GROUPS:
            present = [name for name in group if name in left]
            if not present:
                continue
            text += [heading, "-" * len(heading), "", _table(module, present)]
            left = [name for name in left if name not in present]
        if left:
            text += ["Other", "-----", "", _table(module, left)]
    else:
        text.append(_table(module, names))
    return "\n".join(text)


def index() -> str:
    entries = "\n".join(f"   {module}" for module, _, _ in MODULES)
    return f"""\
.. _api:

API reference
=============

Generated from the docstrings (NumPy style). Every public name of every module below has a
page; the command line's options are on :doc:`../cli`.

.. toctree::
   :maxdepth: 1

{entries}
"""


def write_if_changed(path: Path, text: str) -> None:
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def write_pages(directory: Path) -> Dict[str, List[str]]:
    """Write ``index.rst`` and one page per module into ``directory``; return the names per module."""
    directory.mkdir(parents=True, exist_ok=True)
    write_if_changed(directory / "index.rst", index())
    documented = {}
    for module, title, intro in MODULES:
        write_if_changed(directory / f"{module}.rst", page(module, title, intro))
        documented[module] = public_names(module)
    return documented
