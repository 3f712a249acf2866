"""Sphinx configuration of the descramble documentation (NumPy/SciPy style).

Build: ``python -m sphinx -W --keep-going -b html docs docs/_build/html`` after
``pip install '.[docs]'`` (or, from a source tree with the extension built,
with ``python/`` on ``PYTHONPATH``). The build needs no network access.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE / "_ext"))
# A source tree (python/descramble with its built extension) wins over nothing; an installed
# package is found without this.
if importlib.util.find_spec("descramble") is None:
    sys.path.insert(0, str(ROOT / "python"))
os.environ.setdefault("MPLBACKEND", "Agg")

import descramble  # noqa: E402

project = "descramble"
author = "the descramble authors"
copyright = "the descramble authors (MIT licence)"
release = descramble.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
    "cli_help",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
templates_path = ["_templates"]

# -- MyST (Markdown pages) -------------------------------------------------------------------
myst_enable_extensions = ["colon_fence", "dollarmath", "deflist"]
myst_heading_anchors = 3

# -- API reference ----------------------------------------------------------------------------
autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {"members": True, "inherited-members": False, "show-inheritance": True}
autodoc_typehints = "none"  # numpydoc's Parameters sections already give the types
autodoc_member_order = "bysource"
# PyTorch, Dask, h5py, zarr and onnx are optional: their modules import them lazily, but
# mocking keeps autodoc working on a machine without them.
def _missing(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is None
    except (ImportError, ValueError):
        return True


autodoc_mock_imports = [name for name in ("torch", "dask", "distributed", "zarr", "onnx", "h5py") if _missing(name)]

numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_validation_checks: set[str] = set()

# No intersphinx: the build must not need the network (CI reaches only package registries).

# -- HTML -------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"descramble {release}"
html_static_path: list[str] = []
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_sidebars = {"changelog": [], "benchmarks": []}

# -- the API pages, written from the modules' public names (docs/_ext/api_pages.py) ------------
import api_pages  # noqa: E402

api_pages.write_pages(HERE / "api")
