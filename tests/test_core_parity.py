"""The closed form lives once, in the C++ core (issue 10).

* The Python API (``descramble.descramble``, ``descramble.smoothness``) and the
  core's own API (``descramble._core``) give the same P, loss and bound.
* Both agree with the NumPy reference (``descramble.reference``: the
  operators built by FFT / matrix powers, the closed form from numpy.linalg).
* With ``descramble.linalg`` and ``numpy.linalg`` made to raise, the
  descrambler still works: it never calls them.
"""

import numpy as np
import pytest

import descramble
from descramble import _core, reference, smoothness

# Parity over random shapes: m > n layers (underdetermined) and layers without a bias are the point,
# not a mistake; the warnings they raise are tested in test_warnings.py.
pytestmark = pytest.mark.filterwarnings("ignore::descramble.UnderdeterminedWarning",
                                        "ignore::descramble.MissingBiasWarning")

OPERATORS = {
    "fourier": (lambda m, p: smoothness.fourier(m, p), lambda m, p: reference.fourdif(m, p)),
    "fd": (lambda m, p: smoothness.finite_difference(m, p), lambda m, p: reference.finite_difference_matrix(m, p)),
    "fd-circular": (lambda m, p: smoothness.finite_difference(m, p, circular=True),
                    lambda m, p: reference.finite_difference_matrix(m, p, circular=True)),
}


@pytest.mark.parametrize("name", sorted(OPERATORS))
@pytest.mark.parametrize("m", [1, 2, 3, 8, 9, 16])
@pytest.mark.parametrize("order", [1, 2, 3])
def test_core_operators_equal_the_numpy_reference(name, m, order):
    core, numpy_reference = OPERATORS[name]
    s = core(m, order)
    D = numpy_reference(m, order)
    np.testing.assert_allclose(s.matrix, D, atol=1e-9 * max(1.0, np.abs(D).max(initial=0.0)))
    np.testing.assert_allclose(s.gram, D.T @ D, atol=1e-9 * max(1.0, np.abs(D.T @ D).max(initial=0.0)))
    lam, T = s.basis()
    np.testing.assert_allclose(lam, np.linalg.eigvalsh(D.T @ D), atol=1e-8 * max(1.0, lam.max()))


def layer(rng, m, n, rows=400):
    X = rng.normal(size=(rows, n)) * np.linspace(0.5, 2.0, n) + rng.normal(size=n)
    W = rng.normal(size=(m, n))
    b = rng.normal(size=m)
    return X, W, b


@pytest.mark.parametrize("m, n", [(1, 1), (1, 5), (5, 1), (6, 9), (9, 6), (16, 16)])
@pytest.mark.parametrize("smooth", ["fourier", "fd", "fd-circular"])
def test_python_api_equals_core_api(rng, m, n, smooth):
    X, W, b = layer(rng, m, n)
    acc = descramble.accumulate(X)
    op = smoothness.resolve(smooth, m)
    cases = [
        (descramble.descramble(W, autocorrelation=acc, bias=b, smoothness=smooth),
         _core.descramble_layer(W, b, acc._core, op._core)),
        (descramble.descramble(W, autocorrelation=acc, smoothness=smooth),
         _core.descramble_layer(W, acc._core, op._core)),
        (descramble.descramble(W, autocorrelation=acc.autocorrelation(), smoothness=smooth),
         _core.descramble_layer(W, acc.autocorrelation(), op._core)),
    ]
    S = cases[0][0].hidden
    cases.append((descramble.descramble(hidden=S, smoothness=smooth), _core.descramble_closed_form(S, op._core)))
    for python, core in cases:
        np.testing.assert_array_equal(python.P, core.P)
        assert python.loss == core.loss and python.bound == core.bound
        np.testing.assert_array_equal(python.spectrum, core.spectrum)


@pytest.mark.parametrize("m", [1, 2, 5, 12])
def test_closed_form_equals_the_numpy_reference(rng, m):
    """Against numpy.linalg.eigh: equal loss and bound; equal P where nothing is degenerate (fd: distinct lambda)."""
    X, W, b = layer(rng, m, m + 3)
    acc = descramble.accumulate(X)
    for smooth in ("fourier", "fd"):
        d = descramble.descramble(W, autocorrelation=acc, bias=b, smoothness=smooth)
        ref = reference.closed_form(d.smoothness.gram, d.hidden)
        scale = max(1.0, abs(ref["bound"]))
        assert abs(d.loss - ref["loss"]) <= 1e-9 * scale and abs(d.bound - ref["bound"]) <= 1e-9 * scale
        assert abs(d.loss - d.bound) <= 1e-9 * scale
        if smooth == "fd" and not d.degenerate:
            # T and U are unique up to the sign of each column.
            for mine, theirs in ((d.basis, ref["basis"]), (d.components, ref["components"])):
                np.testing.assert_allclose(np.abs(np.sum(mine * theirs, axis=0)), 1.0, atol=1e-6)
            np.testing.assert_allclose(d.spectrum, ref["spectrum"], atol=1e-9 * scale)


def test_diagonal_criterion_equals_the_numpy_procrustes(rng):
    for m in (1, 2, 5, 8):
        W = rng.normal(size=(m, m))
        d = descramble.descramble(W, criterion="diagonal")
        U, sigma, Vt = np.linalg.svd(W)
        V = Vt.T.copy()
        if np.linalg.det(V @ U.T) < 0:
            V[:, -1] *= -1
        P = V @ U.T
        np.testing.assert_allclose(d.P, P, atol=1e-10)
        assert d.loss == pytest.approx(-np.trace(P @ W), rel=1e-12, abs=1e-12)
        assert d.bound == pytest.approx(-sigma.sum(), rel=1e-12)
        core = _core.descramble_diagonal(W)
        np.testing.assert_array_equal(d.P, core.P)


def test_smoothness_loss_is_the_trace(rng):
    m = 7
    S = np.cov(rng.normal(size=(m, 50)))
    P = np.linalg.qr(rng.normal(size=(m, m)))[0]
    op = smoothness.fourier(m)
    assert descramble.descrambler.smoothness_loss(P, S, op) == pytest.approx(reference.eta(P, op.gram, S), rel=1e-12)


class Forbidden(Exception):
    pass


def forbid(*args, **kwargs):
    raise Forbidden("the descrambler called a Python/NumPy linear-algebra routine")


def test_the_closed_form_runs_in_the_core(rng, monkeypatch):
    X, W, b = layer(rng, 6, 4)
    acc = descramble.accumulate(X)
    S = descramble.descramble(W, autocorrelation=acc, bias=b).hidden
    for name in ("eigh", "svd"):
        monkeypatch.setattr(descramble.linalg, name, forbid)
    for name in ("eigh", "eigvalsh", "svd", "det", "qr", "solve", "inv", "norm", "cholesky", "matrix_power", "slogdet"):
        monkeypatch.setattr(np.linalg, name, forbid)
    with pytest.raises(Forbidden):  # the patches are live
        np.linalg.eigh(np.eye(2))
    for smooth in ("fourier", "fd", "fd-circular"):
        d = descramble.descramble(W, autocorrelation=acc, bias=b, smoothness=smooth)
        h = descramble.descramble(hidden=S, smoothness=smooth)
        assert abs(d.loss - d.bound) <= 1e-9 * d.bound
        assert abs(h.loss - h.bound) <= 1e-9 * h.bound
    descramble.descramble(W[:4], criterion="diagonal")
    descramble.descramble(hidden=S, smoothness=np.eye(6) - np.eye(6, k=1))


def test_the_core_stub_names_everything_the_core_exports():
    """_core.pyi (for mypy and editors) lists every public name and member of the extension."""
    import ast
    import pathlib

    tree = ast.parse((pathlib.Path(_core.__file__).parent / "_core.pyi").read_text())
    stubbed = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            stubbed[node.name] = {n.name if isinstance(n, ast.FunctionDef) else n.target.id
                                  for n in node.body if isinstance(n, (ast.FunctionDef, ast.AnnAssign))}
        elif isinstance(node, ast.FunctionDef):
            stubbed[node.name] = set()
        elif isinstance(node, ast.AnnAssign):
            stubbed[node.target.id] = set()
    public = {name for name in dir(_core) if not name.startswith("_")} | {"__version__"}
    assert public == set(stubbed) - {"_Matrix", "_Vector"}
    for name, members in stubbed.items():
        cls = getattr(_core, name, None)
        if isinstance(cls, type) and not issubclass(cls, BaseException):
            actual = {m for m in vars(cls) if not m.startswith("_")} | ({"__init__"} if "__init__" in members else set())
            assert members == actual, name
