"""descramble.eigh and descramble.svd against numpy.linalg and their own contracts."""

import numpy as np
import pytest

import descramble


def canonical(u):
    """numpy's vectors in descramble's sign convention (largest |entry| positive)."""
    idx = np.argmax(np.abs(u), axis=0)
    return u * np.sign(u[idx, np.arange(u.shape[1])])


def symmetric(rng, n, spread=1.0):
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    return (q * rng.uniform(-spread, spread, size=n)) @ q.T


@pytest.mark.parametrize("n", [1, 2, 5, 64, 300])
def test_eigh_matches_numpy(rng, n):
    a = symmetric(rng, n)
    w, v = descramble.eigh(a)
    w_np, v_np = np.linalg.eigh(a)
    np.testing.assert_allclose(w, w_np, atol=1e-12)
    np.testing.assert_allclose(v, canonical(v_np), atol=1e-9)
    np.testing.assert_allclose((v * w) @ v.T, a, atol=1e-12)
    np.testing.assert_allclose(v.T @ v, np.eye(n), atol=1e-12)


def test_eigh_sign_convention_and_determinism(rng):
    a = symmetric(rng, 40)
    w1, v1 = descramble.eigh(a)
    w2, v2 = descramble.eigh(np.asfortranarray(a))
    np.testing.assert_array_equal(v1, v2)
    idx = np.argmax(np.abs(v1), axis=0)
    assert (v1[idx, np.arange(40)] > 0).all()


def test_eigh_reads_one_triangle_like_numpy(rng):
    a = symmetric(rng, 6)
    lower_only = np.tril(a) + np.triu(rng.normal(size=(6, 6)), 1)
    upper_only = np.triu(a) + np.tril(rng.normal(size=(6, 6)), -1)
    np.testing.assert_allclose(descramble.eigh(lower_only).eigenvalues, np.linalg.eigh(a)[0], atol=1e-12)
    np.testing.assert_allclose(descramble.eigh(upper_only, UPLO="U")[0], np.linalg.eigh(upper_only, UPLO="U")[0],
                               atol=1e-12)


def test_eigh_dtypes(rng):
    a = symmetric(rng, 5)
    assert descramble.eigh(a.astype(np.float32)).eigenvalues.dtype == np.float32
    assert descramble.eigh(np.eye(3, dtype=int)).eigenvalues.dtype == np.float64


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (7, 1), (5, 9), (9, 5), (120, 80), (80, 120)])
@pytest.mark.parametrize("full", [False, True])
def test_svd_matches_numpy(rng, shape, full):
    a = rng.normal(size=shape)
    u, s, vt = descramble.svd(a, full_matrices=full)
    u_np, s_np, vt_np = np.linalg.svd(a, full_matrices=full)
    assert u.shape == u_np.shape and s.shape == s_np.shape and vt.shape == vt_np.shape
    np.testing.assert_allclose(s, s_np, atol=1e-12)
    k = s.size
    np.testing.assert_allclose((u[:, :k] * s) @ vt[:k], a, atol=1e-12)
    np.testing.assert_allclose(u.T @ u, np.eye(u.shape[1]), atol=1e-12)
    np.testing.assert_allclose(vt @ vt.T, np.eye(vt.shape[0]), atol=1e-12)
    np.testing.assert_allclose(u[:, :k], canonical(u_np[:, :k]), atol=1e-9)


def test_svd_of_non_contiguous_and_integer_input(rng):
    a = rng.normal(size=(30, 40))[::2, ::3]
    np.testing.assert_allclose(descramble.svd(a).S, np.linalg.svd(a, compute_uv=False), atol=1e-12)
    i = np.arange(12).reshape(3, 4)
    np.testing.assert_allclose(descramble.svd(i).S, np.linalg.svd(i, compute_uv=False), atol=1e-12)


def test_truncated_svd_is_accurate_and_deterministic(rng):
    # A matrix with decaying spectrum: the randomised SVD is exact to rounding for the leading triplets.
    n = 400
    q1, _ = np.linalg.qr(rng.normal(size=(n, n)))
    q2, _ = np.linalg.qr(rng.normal(size=(n, n)))
    sigma = 0.8 ** np.arange(n)
    a = (q1 * sigma) @ q2.T
    u, s, vt = descramble.svd(a, k=20, seed=3)
    assert u.shape == (n, 20) and s.shape == (20,) and vt.shape == (20, n)
    np.testing.assert_allclose(s, sigma[:20], rtol=1e-10)
    np.testing.assert_allclose(np.abs(u.T @ q1[:, :20]), np.eye(20), atol=1e-8)
    again = descramble.svd(a, k=20, seed=3)
    np.testing.assert_array_equal(again.U, u)
    np.testing.assert_array_equal(again.S, s)


def test_truncated_svd_on_a_flat_spectrum_reports_its_error(rng):
    """Gaussian matrices have no spectral gap: the error is bounded, not zero (documented)."""
    a = rng.normal(size=(300, 300))
    s = descramble.svd(a, k=30).S
    exact = np.linalg.svd(a, compute_uv=False)[:30]
    rel = np.abs(s - exact) / exact
    assert rel.max() < 0.05, rel.max()
    assert (s <= exact * (1 + 1e-12)).all()  # a projection never overestimates


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: descramble.eigh(np.ones((2, 3))), np.linalg.LinAlgError, r"a: expected a square matrix"),
        (lambda: descramble.eigh(np.ones(3)), np.linalg.LinAlgError, r"a: expected a 2-D matrix"),
        (lambda: descramble.eigh(np.array([[1.0, np.nan], [np.nan, 1.0]])), np.linalg.LinAlgError, r"NaN"),
        (lambda: descramble.eigh(np.eye(2, dtype=complex)), TypeError, r"complex"),
        (lambda: descramble.eigh(np.eye(2), UPLO="X"), ValueError, r"UPLO"),
        (lambda: descramble.svd(np.array([["a"]])), TypeError, r"expected a real matrix"),
        (lambda: descramble.svd(np.full((2, 2), np.inf)), np.linalg.LinAlgError, r"NaN or infinity"),
        (lambda: descramble.svd(np.eye(4), k=5), ValueError, r"k: expected 1 <= k <= min\(a.shape\) = 4, got 5"),
        (lambda: descramble.svd(np.eye(4), k=0), ValueError, r"k: expected 1 <= k"),
        (lambda: descramble.svd(np.eye(4), k=2.0), TypeError, r"k: expected an integer"),
        (lambda: descramble.svd(np.eye(4), True, k=2), ValueError, r"full_matrices: not available with k"),
        (lambda: descramble.svd(np.eye(4), seed=1), ValueError, r"seed: only used by the randomised SVD"),
    ],
)
def test_bad_input(call, error, message):
    with pytest.raises(error, match=message):
        call()
    assert issubclass(np.linalg.LinAlgError, ValueError)
