"""The documentation's promises: every Python example on the pages runs, and every section citation resolves.

Examples: each ```python block of ``docs/*.md`` runs, page by page, in order, in one namespace per page and a
fresh temporary directory (so a page may write files and read them back). A block preceded by the line
``<!-- no-test -->`` is shown but not run (used sparingly: code that needs a cluster, a GPU or the user's own
files). A page whose blocks import an optional package that is not installed (torch, dask, distributed,
sklearn, matplotlib, h5py, zarr, onnx) is skipped with the reason printed; a page that uses one only through the library (``descramble.plot`` needs
matplotlib) says so with a ``<!-- requires: matplotlib -->`` line.

Citations: code, tests and pages cite the mathematics as "MATH.md §N" or "docs/math.md §N"; every such N
must be a section of docs/math.md (``## N. Title``), and every section must be a link target
``(math-sN)=`` for the pages' ``{ref}`` links.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import sys
import time
from pathlib import Path
from typing import Dict, List, Set, Tuple

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
NO_TEST = "<!-- no-test -->"
REQUIRES = re.compile(r"<!--\s*requires:\s*([\w, ]+?)\s*-->")
OPTIONAL = {"torch", "dask", "distributed", "sklearn", "matplotlib", "h5py", "zarr", "onnx", "scipy"}
FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`\s]*)")


def python_blocks(text: str) -> List[Tuple[int, str, bool]]:
    """``[(first line number, code, run)]`` of the ```python fences of a Markdown page, in order."""
    lines = text.splitlines()
    blocks = []
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        fence, info = match.group("fence"), match.group("info").lower()
        j = i + 1
        while j < len(lines) and not lines[j].strip().startswith(fence[0] * len(fence)):
            j += 1
        if info in ("python", "py", "{code-block}python"):
            previous = next((lines[k].strip() for k in range(i - 1, -1, -1) if lines[k].strip()), "")
            blocks.append((i + 2, "\n".join(lines[i + 1:j]), previous != NO_TEST))
        i = j + 1
    return blocks


def imported_modules(code: str) -> Set[str]:
    """Top-level package names a block imports."""
    names = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def declared_requirements(page: Path) -> Set[str]:
    """Packages a page declares with ``<!-- requires: matplotlib, ... -->`` (used through the library, not imported)."""
    text = page.read_text(encoding="utf-8")
    return {name.strip() for match in REQUIRES.finditer(text) for name in match.group(1).split(",") if name.strip()}


def _importable(name: str) -> bool:
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True


# The pages, and README.md (the front page's example runs too).
PAGES = [p for p in sorted(DOCS.glob("*.md")) + [ROOT / "README.md"] if python_blocks(p.read_text(encoding="utf-8"))]


def test_the_pages_have_examples():
    assert {p.stem for p in PAGES} >= {"tutorial", "streams", "pytorch", "dask", "real-data"}


@pytest.mark.parametrize("page", PAGES, ids=[p.stem for p in PAGES])
def test_page_examples_run(page, tmp_path, monkeypatch, capsys):
    blocks = python_blocks(page.read_text(encoding="utf-8"))
    runnable = [(line, code) for line, code, run in blocks if run]
    needed = {n for line, code in runnable for n in imported_modules(code)} | declared_requirements(page)
    missing = sorted(name for name in needed if name in OPTIONAL and not _importable(name))
    if missing:
        message = f"{page.name}: its examples need {', '.join(missing)} (not installed)"
        print(message)
        pytest.skip(message)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    namespace: Dict[str, object] = {"__name__": "__main__"}
    start = time.perf_counter()
    try:
        for line, code in runnable:
            # Padding keeps the page's line numbers in tracebacks.
            compiled = compile("\n" * (line - 1) + code, str(page), "exec")
            exec(compiled, namespace)
    finally:
        if "matplotlib.pyplot" in sys.modules:
            sys.modules["matplotlib.pyplot"].close("all")
    print(f"{page.name}: {len(runnable)} blocks in {time.perf_counter() - start:.1f} s")


def test_block_extraction():
    text = "\n".join([
        "# t", "```python", "a = 1", "```", "", NO_TEST, "", "```python", "raise SystemExit", "```",
        "````markdown", "```python", "inside = 1", "```", "````", "```bash", "ls", "```", "```python", "b = a", "```",
    ])
    assert python_blocks(text) == [(3, "a = 1", True), (9, "raise SystemExit", False), (20, "b = a", True)]


def test_declared_requirements(tmp_path):
    page = tmp_path / "p.md"
    page.write_text("# p\n\n<!-- requires: matplotlib, h5py -->\n", encoding="utf-8")
    assert declared_requirements(page) == {"matplotlib", "h5py"}


# -- the API reference ---------------------------------------------------------------------------


def test_api_pages_list_every_public_name(tmp_path):
    """docs/conf.py writes the reference from the modules; every public name of every module gets an entry."""
    sys.path.insert(0, str(DOCS / "_ext"))
    try:
        import api_pages
    finally:
        sys.path.remove(str(DOCS / "_ext"))
    modules = [module for module, _, _ in api_pages.MODULES]
    assert set(modules) >= {"descramble", "descramble.smoothness", "descramble.sources", "descramble.io",
                            "descramble.plot", "descramble.dask", "descramble.torch", "descramble.reference",
                            "descramble.diagnostics", "descramble.cli"}
    documented = api_pages.write_pages(tmp_path)
    assert {"descramble", "Autocorrelation", "cov", "Descrambler", "NonFiniteError"} <= set(documented["descramble"])
    assert "fourier" in documented["descramble.smoothness"]
    assert {"collect", "descramble_model"} <= set(documented["descramble.torch"])
    for module in modules:
        text = (tmp_path / f"{module}.rst").read_text(encoding="utf-8")
        entries = set(re.findall(r"^   (\w+)$", text, re.MULTILINE))
        assert entries == set(documented[module]), module
        exported = getattr(importlib.import_module(module), "__all__", None)
        if exported is not None:  # everything a module exports, but its submodules and __version__
            assert set(exported) - entries <= {"__version__", "io", "plot", "reference", "smoothness", "sources",
                                               "convergence", "dask", "torch"}, module


# -- docstring examples -------------------------------------------------------------------------

PACKAGE = ROOT / "python" / "descramble"
DOCTEST_MODULES = sorted(
    "descramble." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts).replace(".__init__", "")
    for path in PACKAGE.rglob("*.py") if ">>>" in path.read_text(encoding="utf-8"))
NEEDS = {"descramble.dask": "dask", "descramble.torch": "torch"}


def test_docstring_examples_are_found():
    assert {"descramble.accumulator", "descramble.covariance"} <= set(DOCTEST_MODULES)


@pytest.mark.parametrize("name", DOCTEST_MODULES)
def test_docstring_examples_run(name, tmp_path, monkeypatch):
    """The ``>>>`` examples of the docstrings (the API reference shows them) give the output they show."""
    import doctest
    import importlib
    import warnings

    if name in NEEDS:
        pytest.importorskip(NEEDS[name], reason=f"{name}'s examples need {NEEDS[name]}")
    monkeypatch.chdir(tmp_path)
    module = importlib.import_module(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # examples on tiny data may warn (rank); the output is what is checked
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
                                 verbose=False, report=True)
    assert result.attempted > 0
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples of {name} failed (printed above)"


# -- section citations --------------------------------------------------------------------------

CITATION = re.compile(r"MATH\.md\s*((?:§\s*\d+(?:\s*(?:,|and|-|–)\s*)?)+)", re.IGNORECASE)
SECTION = re.compile(r"^## (\d+)\. ", re.MULTILINE)
CITED_TREES = ("python", "cpp", "tests", "bench", "examples", "docs")
SUFFIXES = {".py", ".pyi", ".cpp", ".hpp", ".h", ".md", ".rst", ".txt", ".cmake"}


def math_sections() -> Set[int]:
    return {int(n) for n in SECTION.findall((DOCS / "math.md").read_text(encoding="utf-8"))}


def citations(text: str) -> List[int]:
    """Every section number cited as "MATH.md §N" (also "§1, §7" lists and "docs/math.md §N")."""
    return [int(n) for match in CITATION.finditer(text) for n in re.findall(r"§\s*(\d+)", match.group(1))]


def cited_files() -> List[Path]:
    files = [ROOT / "README.md"]
    for tree in CITED_TREES:
        for path in sorted((ROOT / tree).rglob("*")):
            parts = set(path.relative_to(ROOT).parts)
            if path.is_file() and path.suffix in SUFFIXES and not parts & {"_build", "api", "__pycache__"}:
                files.append(path)
    return files


def test_citation_pattern():
    assert citations("see MATH.md §3, and (MATH.md §1, §7); docs/math.md §10: x. §4 alone") == [3, 1, 7, 10]
    assert citations("(MATH.md §3 and §5)") == [3, 5]


def test_every_math_citation_names_a_section():
    sections = math_sections()
    assert sections == set(range(1, max(sections) + 1)), sorted(sections)
    bad = []
    count = 0
    for path in cited_files():
        for number, line in _numbered(path):
            for n in citations(line):
                count += 1
                if n not in sections:
                    bad.append(f"{path.relative_to(ROOT)}:{number}: §{n}")
    assert count > 50  # the code does cite the mathematics (the pattern still matches it)
    assert not bad, f"citations of sections docs/math.md does not have ({sorted(sections)}):\n" + "\n".join(bad)


def test_math_page_sections_are_link_targets_and_its_own_references_resolve():
    text = (DOCS / "math.md").read_text(encoding="utf-8")
    sections = math_sections()
    for n in sections:
        assert re.search(rf"^\(math-s{n}\)=\n## {n}\. ", text, re.MULTILINE), f"§{n} has no (math-s{n})= target"
    own = {int(n) for n in re.findall(r"§\s*(\d+)", text)}
    assert own <= sections, sorted(own - sections)
    for page in DOCS.glob("*.md"):
        for n in re.findall(r"math-s(\d+)", page.read_text(encoding="utf-8")):
            assert int(n) in sections, f"{page.name}: math-s{n}"


def _numbered(path: Path):
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return []
    return enumerate(text.splitlines(), 1)
