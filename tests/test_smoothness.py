"""Smoothness operators: matrices, analytic bases against eigh, degeneracies (docs/math.md §4)."""

import numpy as np
import pytest

from descramble import smoothness


def fourdif_reference(m, order):
    """Weideman & Reddy's fourdif for order 1 and 2, by its closed-form formulas."""
    h = 2 * np.pi / m
    j = np.arange(m)
    diff = (j[:, None] - j[None, :]) % m
    D = np.zeros((m, m))
    off = diff != 0
    x = diff[off] * h / 2
    sign = (-1.0) ** diff[off]
    if order == 1:
        D[off] = 0.5 * sign * (1 / np.tan(x) if m % 2 == 0 else 1 / np.sin(x))
    else:
        if m % 2 == 0:
            D[off] = -0.5 * sign / np.sin(x) ** 2
            D[~off] = -np.pi**2 / (3 * h**2) - 1 / 6
        else:
            D[off] = -0.5 * sign / np.sin(x) / np.tan(x)
            D[~off] = -np.pi**2 / (3 * h**2) + 1 / 12
    return D


@pytest.mark.parametrize("m", [4, 5, 8, 9, 16])
@pytest.mark.parametrize("order", [1, 2])
def test_fourier_matrix_is_fourdif(m, order):
    # fourdif differentiates e^{ikx}: the closed forms here are its order-1 and order-2 matrices.
    np.testing.assert_allclose(smoothness.fourier(m, order).matrix, fourdif_reference(m, order), atol=1e-10)


def test_fourier_differentiates_trigonometric_polynomials():
    m = 16
    x = 2 * np.pi * np.arange(m) / m
    f = np.sin(3 * x) + 0.5 * np.cos(5 * x)
    d1 = smoothness.fourier(m, 1).matrix @ f
    d2 = smoothness.fourier(m, 2).matrix @ f
    np.testing.assert_allclose(d1, 3 * np.cos(3 * x) - 2.5 * np.sin(5 * x), atol=1e-10)
    np.testing.assert_allclose(d2, -9 * np.sin(3 * x) - 12.5 * np.cos(5 * x), atol=1e-10)


def assert_is_eigenbasis(s):
    lam, T = s.basis()
    A = s.gram
    m = s.size
    np.testing.assert_allclose(T.T @ T, np.eye(m), atol=1e-10)
    np.testing.assert_allclose(A @ T, T * lam, atol=1e-8 * max(1.0, np.abs(lam).max()))
    np.testing.assert_allclose(lam, np.linalg.eigvalsh(A), atol=1e-8 * max(1.0, np.abs(lam).max()))
    assert (np.diff(lam) >= -1e-9 * max(1.0, np.abs(lam).max())).all()


def same_subspaces(T1, T2, groups):
    """Columns equal up to sign outside degenerate groups, equal spans inside."""
    m = T1.shape[1]
    grouped = np.zeros(m, bool)
    for g in groups:
        grouped[g] = True
        np.testing.assert_allclose(np.linalg.svd(T1[:, g].T @ T2[:, g], compute_uv=False), 1, atol=1e-8)
    single = ~grouped
    np.testing.assert_allclose(np.abs(np.sum(T1[:, single] * T2[:, single], axis=0)), 1, atol=1e-8)


@pytest.mark.parametrize(
    "make",
    [
        lambda m: smoothness.fourier(m, 1),
        lambda m: smoothness.fourier(m, 2),
        lambda m: smoothness.fourier(m, 3),
        lambda m: smoothness.finite_difference(m, 1),
        lambda m: smoothness.finite_difference(m, 1, circular=True),
        lambda m: smoothness.finite_difference(m, 2, circular=True),
    ],
    ids=["fourier1", "fourier2", "fourier3", "fd1", "fd1-circ", "fd2-circ"],
)
@pytest.mark.parametrize("m", [1, 2, 3, 8, 11, 32])
def test_analytic_bases_are_eigenbases_and_match_eigh(make, m):
    s = make(m)
    assert s.analytic
    assert_is_eigenbasis(s)
    lam_eigh, T_eigh = smoothness.from_gram(s.gram).basis()
    same_subspaces(s.basis()[1], T_eigh, smoothness.degenerate_groups(lam_eigh, rtol=1e-8))


def test_fourier_eigenvalues_and_pairs():
    lam, _ = smoothness.fourier(8, 2).basis()
    np.testing.assert_allclose(lam, [0, 1, 1, 16, 16, 81, 81, 256], atol=1e-9)
    groups = smoothness.fourier(8, 2).degenerate()
    assert [list(g) for g in groups] == [[1, 2], [3, 4], [5, 6]]


def test_fourier_odd_order_even_m_quirk():
    """fourdif's Nyquist row is zero for odd order and even m: eigenvalue 0, tied with the constant."""
    s = smoothness.fourier(8, 1)
    lam, T = s.basis()
    np.testing.assert_allclose(lam[:2], 0, atol=1e-12)
    nyquist = np.cos(np.pi * np.arange(8)) / np.sqrt(8)
    np.testing.assert_allclose(s.matrix @ nyquist, 0, atol=1e-12)
    np.testing.assert_allclose(np.abs(T[:, 1]), np.abs(nyquist), atol=1e-12)
    assert [0, 1] in [list(g) for g in s.degenerate()]


def test_path_laplacian_basis_is_the_dct():
    m = 7
    s = smoothness.finite_difference(m, 1)
    lam, T = s.basis()
    k = np.arange(m)
    np.testing.assert_allclose(lam, 4 * np.sin(np.pi * k / (2 * m)) ** 2, atol=1e-14)
    assert s.degenerate() == []
    np.testing.assert_allclose(s.matrix, np.diff(np.eye(m), axis=0))


def test_circular_difference_eigenvalues():
    m, p = 10, 2
    lam, _ = smoothness.finite_difference(m, p, circular=True).basis()
    k = np.concatenate([[0], np.repeat(np.arange(1, 5), 2), [5]])
    np.testing.assert_allclose(lam, (2 * np.sin(np.pi * k / m)) ** (2 * p), atol=1e-12)


def test_differences_of_order_at_least_m_are_empty():
    s = smoothness.finite_difference(3, 3)
    assert s.matrix.shape == (0, 3)
    np.testing.assert_array_equal(s.gram, np.zeros((3, 3)))
    assert [list(g) for g in s.degenerate()] == [[0, 1, 2]]


def test_higher_order_non_circular_differences_use_eigh():
    s = smoothness.finite_difference(9, 2)
    assert not s.analytic and s.matrix.shape == (7, 9)
    assert_is_eigenbasis(s)


def test_user_operators():
    D = np.random.default_rng(0).normal(size=(5, 6))
    s = smoothness.from_matrix(D)
    np.testing.assert_allclose(s.gram, D.T @ D)
    assert_is_eigenbasis(s)
    g = smoothness.from_gram(D.T @ D)
    assert g.matrix is None
    np.testing.assert_allclose(g.basis()[0], s.basis()[0], atol=1e-10)


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: smoothness.from_gram(np.ones((2, 3))), ValueError, r"A: expected a square matrix"),
        (lambda: smoothness.from_gram(np.array([[1.0, 2.0], [0.0, 1.0]])), ValueError, r"A: expected a symmetric"),
        (lambda: smoothness.from_gram(-np.eye(3)), ValueError, r"positive semi-definite"),
        (lambda: smoothness.from_gram(np.array([[np.nan]])), ValueError, r"A: contains NaN"),
        (lambda: smoothness.from_matrix(np.ones(3)), ValueError, r"D: expected a 2-D matrix"),
        (lambda: smoothness.from_matrix(np.ones((2, 2), complex)), TypeError, r"D: expected a real matrix"),
        (lambda: smoothness.fourier(0), ValueError, r"m: expected a positive integer"),
        (lambda: smoothness.fourier(4, order=0), ValueError, r"order: expected a positive integer"),
        (lambda: smoothness.resolve("wavelets", 4), ValueError, r"smoothness: unknown name 'wavelets'"),
        (lambda: smoothness.resolve(smoothness.fourier(5), 4), ValueError, r"acts on 5 neurons, the layer has 4"),
    ],
)
def test_bad_operators(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_fourier_orders_beyond_float64_are_refused():
    smoothness.fourier(32, 6)  # 16^12 = 2.8e14: fine
    with pytest.raises(ValueError, match=r"order: fourier\(order=100\) on 8 neurons"):
        smoothness.fourier(8, 100)


@pytest.mark.parametrize("circular", [False, True])
def test_finite_difference_orders_beyond_float64_are_refused(circular):
    smoothness.finite_difference(40, 24, circular=circular)
    with pytest.raises(ValueError, match="order: a finite difference of order 25"):
        smoothness.finite_difference(40, 25, circular=circular)


# -- grid(): finite differences on a grid of hidden units (issue 12) ------------------------

import pickle  # noqa: E402
import warnings  # noqa: E402

from descramble import reference  # noqa: E402
from descramble.diagnostics import IgnoredArgumentWarning  # noqa: E402

GRID_SHAPES = [(1,), (5,), (1, 5), (3, 1, 2), (4, 8), (4, 4), (2, 3, 4)]


def kron_gram(shape, order, circular):
    """A as the Kronecker sum of the reference 1-D Gram matrices, with np.kron."""
    m = int(np.prod(shape))
    A = np.zeros((m, m))
    for a, n in enumerate(shape):
        D = reference.finite_difference_matrix(n, order, circular)
        block = np.ones((1, 1))
        for b, nb in enumerate(shape):
            block = np.kron(block, D.T @ D if b == a else np.eye(nb))
        A += block
    return A


@pytest.mark.parametrize("shape", GRID_SHAPES)
@pytest.mark.parametrize("circular", [False, True])
@pytest.mark.parametrize("order", [1, 2])
def test_grid_against_kron(shape, circular, order):
    s = smoothness.grid(shape, order=order, circular=circular)
    m = int(np.prod(shape))
    A = kron_gram(shape, order, circular)
    assert s.size == m
    np.testing.assert_allclose(s.gram, A, rtol=0, atol=1e-12)
    np.testing.assert_allclose(s.matrix, reference.grid_difference_matrix(shape, order, circular), rtol=0, atol=0)
    lam, T = s.basis()
    scale = max(1.0, np.abs(A).max())
    np.testing.assert_allclose(A @ T, T * lam, rtol=0, atol=1e-12 * scale)
    np.testing.assert_allclose(T.T @ T, np.eye(m), rtol=0, atol=1e-12)
    np.testing.assert_allclose(lam, np.linalg.eigvalsh(A), rtol=0, atol=1e-12 * scale)
    assert np.all(np.diff(lam) >= 0)
    assert s.analytic == (circular or order == 1)
    assert s.name == f"grid({'x'.join(map(str, shape))}, order={order}{', circular=True' if circular else ''})"


@pytest.mark.parametrize("m", [1, 2, 5, 8])
@pytest.mark.parametrize("circular", [False, True])
@pytest.mark.parametrize("order", [1, 2])
def test_grid_1d_is_finite_difference(m, circular, order):
    g = smoothness.grid((m,), order, circular)
    f = smoothness.finite_difference(m, order, circular)
    np.testing.assert_array_equal(g.gram, f.gram)
    np.testing.assert_array_equal(g.matrix, f.matrix)
    for a, b in zip(g.basis(), f.basis()):
        np.testing.assert_array_equal(a, b)


def test_grid_ravel_order_is_row_major():
    # Order-1 open grid 2 x 3: units u and v are neighbours iff their grid indices differ by 1 on one axis.
    shape = (2, 3)
    A = smoothness.grid(shape).gram
    for u in range(6):
        for v in range(6):
            du = np.subtract(np.unravel_index(u, shape), np.unravel_index(v, shape))
            neighbours = np.abs(du).sum() == 1
            assert (A[u, v] == -1) == neighbours


def test_grid_degenerate_groups_square():
    s = smoothness.grid((4, 4))
    lam, T = s.basis()
    groups = s.degenerate()
    # (k1, k2) and (k2, k1) share their eigenvalue: 6 pairs of distinct 1-D modes.
    assert len(groups) >= 6
    assert [len(g) for g in groups[:1]] == [2] and lam[0] == 0 and lam[1] == lam[2]
    # Tie-break: the smaller row-major multi-index first (mode (0, 1) before (1, 0)).
    c = smoothness.finite_difference(4).basis()[1]
    np.testing.assert_array_equal(T[:, 1], np.kron(c[:, 0], c[:, 1]))
    np.testing.assert_array_equal(T[:, 2], np.kron(c[:, 1], c[:, 0]))


def test_grid_deterministic():
    a, b = smoothness.grid((3, 4, 2), 2, True), smoothness.grid((3, 4, 2), 2, True)
    for x, y in zip(a.basis(), b.basis()):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("shape, error, text", [
    ((), ValueError, "shape: expected at least one axis"),
    ((4, 0), ValueError, "shape: axis 1 has size 0"),
    ((-2,), ValueError, "shape: axis 0 has size -2"),
    ((2.0, 3), TypeError, "shape: axis 0 is 2.0"),
    ((True, 3), TypeError, "shape: axis 0 is True"),
    (6, TypeError, "shape: expected a tuple"),
    ("4x8", TypeError, "shape: expected a tuple"),
    ((2**16, 2**16), ValueError, "more than 2\\*\\*31 - 1 hidden units"),
])
def test_grid_bad_shapes(shape, error, text):
    with pytest.raises(error, match=text):
        smoothness.grid(shape)


def test_grid_bad_arguments():
    with pytest.raises(ValueError, match="order"):
        smoothness.grid((3, 3), order=0)
    with pytest.raises(TypeError, match="circular"):
        smoothness.grid((3, 3), circular="yes")
    with pytest.raises(ValueError, match="scheme: 'central' is the authors' circular operator"):
        smoothness.grid((3, 3), scheme="central")


def test_grid_central():
    g = smoothness.grid((3, 4), circular=True, scheme="central")
    assert g.name == "grid(3x4, order=1, circular=True, scheme=central)"
    A = np.zeros((12, 12))
    for a, n in enumerate((3, 4)):
        D = reference.finitediff(n)
        A += np.kron(D.T @ D, np.eye(4)) if a == 0 else np.kron(np.eye(3), D.T @ D)
    np.testing.assert_allclose(g.gram, A, rtol=0, atol=1e-15)
    lam, T = g.basis()
    np.testing.assert_allclose(A @ T, T * lam, rtol=0, atol=1e-15)


# -- finite_difference(scheme="central"): the authors' finitediff.m ----------------------------


@pytest.mark.parametrize("m", range(1, 10))
@pytest.mark.parametrize("order", [1, 2, 3])
def test_central_matches_finitediff_port(m, order):
    s = smoothness.finite_difference(m, order, circular=True, scheme="central")
    D = reference.finitediff(m, order)
    np.testing.assert_allclose(s.matrix, D, rtol=0, atol=1e-15 * np.abs(D).max())
    np.testing.assert_allclose(s.gram, D.T @ D, rtol=0, atol=1e-15 * np.abs(D.T @ D).max())
    lam, T = s.basis()
    np.testing.assert_allclose(s.gram @ T, T * lam, rtol=0, atol=1e-15 * max(lam.max(), 1e-300))
    np.testing.assert_allclose(T.T @ T, np.eye(m), rtol=0, atol=1e-13)
    np.testing.assert_allclose(lam, np.linalg.eigvalsh(D.T @ D), rtol=0, atol=1e-14 * lam.max())
    assert s.analytic
    if m >= 3:  # the null space: the constant and, for even m, the alternating mode
        assert np.sum(lam < 1e-12 * lam.max()) == (2 if m % 2 == 0 else 1)


def test_finitediff_port_small_sizes():
    # finitediff.m's wrap-around entries, written last, overwrite the stencil for m <= 2.
    np.testing.assert_array_equal(reference.finitediff(1), [[0.5]])
    np.testing.assert_array_equal(reference.finitediff(2), [[0, -0.25], [0.25, 0]])
    np.testing.assert_array_equal(reference.finitediff(3) * 3, [[0, 0.5, -0.5], [-0.5, 0, 0.5], [0.5, -0.5, 0]])


def test_central_degenerate_quadruples():
    s = smoothness.finite_difference(12, circular=True, scheme="central")
    sizes = sorted(len(g) for g in s.degenerate())
    assert 4 in sizes  # k and m/2 - k (cos and sin each) share sin^2(2 pi k / m)


def test_central_refusals():
    with pytest.raises(ValueError, match="pass circular=True"):
        smoothness.finite_difference(5, scheme="central")
    with pytest.raises(ValueError, match="scheme: expected 'forward' or 'central'"):
        smoothness.finite_difference(5, scheme="backward")
    with pytest.raises(TypeError, match="scheme"):
        smoothness.finite_difference(5, scheme=1)
    with pytest.raises(ValueError, match="underflow"):
        smoothness.finite_difference(10**6, 24, circular=True, scheme="central")


# -- persistence: spec, from_spec, pickle --------------------------------------------------------


def every_kind():
    rng = np.random.default_rng(0)
    L = smoothness.grid((3, 3)).gram
    return [
        smoothness.fourier(8), smoothness.fourier(7, 1),
        smoothness.finite_difference(6), smoothness.finite_difference(6, 2, True),
        smoothness.finite_difference(7, 2, True, "central"),
        smoothness.grid((4, 8)), smoothness.grid((3, 1, 2), 2, True),
        smoothness.from_matrix(rng.normal(size=(4, 6))), smoothness.from_gram(L),
    ]


def same(a, b):
    assert a.name == b.name and a.size == b.size and a.analytic == b.analytic
    np.testing.assert_array_equal(a.gram, b.gram)
    assert (a.matrix is None) == (b.matrix is None)
    if a.matrix is not None:
        np.testing.assert_array_equal(a.matrix, b.matrix)
    for x, y in zip(a.basis(), b.basis()):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("s", every_kind(), ids=lambda s: s.name)
def test_pickle_round_trip(s):
    same(s, pickle.loads(pickle.dumps(s)))


@pytest.mark.parametrize("s", every_kind(), ids=lambda s: s.name)
def test_spec_round_trip_through_json(s):
    import json

    text = json.dumps(s.spec)
    same(s, smoothness.from_spec(json.loads(text), s.spec_array()))
    same(s, smoothness.from_spec(text, s.spec_array()))
    assert s.spec["kind"] in ("fourier", "finite_difference", "grid", "matrix", "gram")


def test_spec_is_a_copy():
    s = smoothness.grid((2, 3))
    s.spec["shape"].append(9)
    assert s.spec == {"kind": "grid", "shape": [2, 3], "order": 1, "circular": False, "scheme": "forward"}


@pytest.mark.parametrize("spec, array, error, text", [
    ({"kind": "laplace", "m": 3}, None, ValueError, "unknown kind"),
    ({"kind": "fourier", "m": 3}, None, ValueError, "needs the key 'order'"),
    ({"kind": "fourier", "m": 3, "order": 2, "shape": [3]}, None, ValueError, "unexpected key 'shape'"),
    ({"kind": "fourier", "m": 3, "order": 2}, np.eye(3), ValueError, "takes no array"),
    ({"kind": "matrix", "m": 3}, None, ValueError, "needs its array"),
    ({"kind": "gram", "m": 4}, np.eye(3), ValueError, "spec says 4 neurons"),
    ({"kind": "fourier", "m": "3", "order": 2}, None, TypeError, "m: expected a positive integer"),
    ([1, 2], None, TypeError, "expected a dict"),
    ("{not json", None, ValueError, "not valid JSON"),
])
def test_from_spec_refuses(spec, array, error, text):
    with pytest.raises(error, match=text):
        smoothness.from_spec(spec, array)


# -- resolve: an ignored order warns ---------------------------------------------------------------


@pytest.mark.parametrize("given", [smoothness.fourier(5), np.eye(5)], ids=["object", "matrix"])
def test_resolve_warns_when_order_is_ignored(given):
    with pytest.warns(IgnoredArgumentWarning, match="order=3 is ignored.*own order") as record:
        smoothness.resolve(given, 5, order=3)
    assert record[0].message.argument == "order"


def test_resolve_no_warning_without_order_or_with_a_name():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        smoothness.resolve(smoothness.fourier(5), 5)
        smoothness.resolve("fd", 5, order=2)


def test_grid_takes_an_integer_array_and_refuses_a_grid_beyond_memory():
    # Review of issue 12: np.array([4, 8]) was refused, and (10000, 10000) died in std::bad_alloc.
    a = smoothness.grid(np.array([2, 3]))
    np.testing.assert_array_equal(a.gram, smoothness.grid((2, 3)).gram)
    with pytest.raises(ValueError, match=r"shape: the grid \(10000, 10000\) has 100000000 units; .* GiB"):
        smoothness.grid((10000, 10000))
