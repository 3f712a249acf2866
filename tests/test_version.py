"""One version: pyproject.toml's [project] version, reported by the package
metadata (descramble.__version__) and compiled into the extension (CMake
passes it to _core as DESCRAMBLE_VERSION)."""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Optional

import pytest

import descramble
from descramble import _core

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def _installed_version() -> Optional[str]:
    try:
        return version("descramble")
    except PackageNotFoundError:
        return None


def _scan_version(text: str) -> str:
    """[project] version by a line scan, as CMakeLists.txt reads it."""
    section = None
    for line in text.splitlines():
        header = re.match(r"\s*\[([^\]]*)\]", line)
        if header:
            section = header.group(1).strip()
        elif section == "project":
            m = re.match(r"""\s*version\s*=\s*["']([^"']+)["']""", line)
            if m:
                return m.group(1)
    raise AssertionError("no [project] version")


def _source_version(path: Path) -> str:
    """[project] version of a pyproject.toml (tomllib on 3.11+, else the line scan)."""
    text = path.read_text(encoding="utf-8")
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        return _scan_version(text)
    return str(tomllib.loads(text)["project"]["version"])


def test_core_version_is_a_version():
    assert isinstance(_core.__version__, str)
    assert re.fullmatch(r"\d+(\.\d+)*\S*", _core.__version__), _core.__version__


@pytest.mark.skipif(_installed_version() is None, reason="descramble is not installed (no package metadata)")
def test_installed_version_is_the_core_version():
    assert descramble.__version__ == _installed_version()
    assert descramble.__version__ == _core.__version__


@pytest.mark.skipif(not PYPROJECT.is_file(), reason="not run from a source tree")
def test_core_version_is_pyproject_version():
    # From a source tree (installed or not), the extension carries the
    # version of the pyproject.toml it was built from.
    assert _core.__version__ == _source_version(PYPROJECT)


def test_line_scan_reads_the_project_table():
    text = '[tool.x]\nversion = "9.9"\n[project]\nname = "a"\n  version = "1.2.3rc1"  # c\n[tool.y]\nversion = "7"\n'
    assert _scan_version(text) == "1.2.3rc1"
    if PYPROJECT.is_file():
        assert _scan_version(PYPROJECT.read_text(encoding="utf-8")) == _source_version(PYPROJECT)


@pytest.mark.skipif(_installed_version() is not None, reason="descramble is installed")
def test_uninstalled_package_has_the_fallback_version():
    assert descramble.__version__ == "0+unknown"
