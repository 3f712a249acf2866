"""Smoothness operators: matrices, analytic bases against eigh, degeneracies (MATH.md §4)."""

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
