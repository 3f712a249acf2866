"""Import hygiene: ``import descramble`` loads the library only, never the application or optional dependencies."""

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import descramble

PACKAGE = Path(descramble.__file__).resolve().parent

# The application (descramble.cli) and every optional dependency: none is needed to import the library.
NOT_IMPORTED = ("descramble.cli", "descramble.cli.demo", "matplotlib", "torch", "dask", "h5py", "zarr",
                "scipy", "onnx", "tqdm")


def _modules_after(statement: str) -> set:
    code = f"import json, sys; {statement}; print(json.dumps(sorted(sys.modules)))"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(PACKAGE.parent),
                                                                      os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    return set(json.loads(proc.stdout))


def test_import_descramble_loads_no_application_and_no_optional_dependency():
    loaded = _modules_after("import descramble")
    assert "descramble" in loaded
    assert sorted(m for m in NOT_IMPORTED if m in loaded) == []


def test_plot_and_io_stay_importable_as_attributes_without_their_dependencies():
    loaded = _modules_after("import descramble; descramble.plot.weights; descramble.io.load_layer; "
                            "import descramble.io.layers, descramble.io.matlab, descramble.io.torch_files, "
                            "descramble.io.onnx_files")
    assert sorted(m for m in NOT_IMPORTED if m in loaded) == []


def _imported(path: Path) -> list:
    """The absolute names of the modules (or module attributes) ``path`` imports, anywhere in it."""
    # The package a relative import starts from: a module's own (io/layers.py -> descramble.io),
    # and a package's __init__ is in that package too.
    package = ["descramble", *path.relative_to(PACKAGE).parts[:-1]]
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = (node.module or "") if node.level == 0 else ".".join(
                package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
            names += [base] + [f"{base}.{alias.name}" for alias in node.names]
    return names


def test_no_library_module_imports_the_application():
    # descramble.cli builds on the library; nothing outside it may import it back.
    offenders = [
        f"{path.relative_to(PACKAGE)}: {name}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.relative_to(PACKAGE).parts[0] not in ("cli", "__main__.py")
        for name in _imported(path)
        if name == "descramble.cli" or name.startswith("descramble.cli.")
    ]
    assert offenders == []


def test_the_import_check_sees_relative_imports_of_the_application():
    names = _imported(PACKAGE / "__main__.py")
    assert "descramble.cli.main" in names
