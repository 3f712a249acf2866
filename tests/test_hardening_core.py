"""Hardening of the C++ core (issue 11): hostile values and extremes give a
clear error or the right answer, never a wrapped count or a silent error."""

import numpy as np
import pytest

import descramble


def _hostile_bool(rows: int = 40, cols: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    raw = rng.integers(0, 256, size=(rows, cols), dtype=np.uint8)
    raw[rng.random((rows, cols)) < 0.4] = 0
    return raw.view(bool), (raw != 0).astype(np.float64)


def test_bool_bytes_other_than_one_read_as_true():
    hostile, values = _hostile_bool()
    assert hostile.view(np.uint8).max() > 1  # really not 0/1 bytes
    np.testing.assert_allclose(descramble.autocorrelation(hostile), values.T @ values / len(values), rtol=1e-12)
    np.testing.assert_allclose(descramble.cov(hostile, rowvar=False), np.cov(hostile, rowvar=False), rtol=1e-12)
    acc = descramble.Autocorrelation(3, precision="mixed")
    acc.update(hostile)
    np.testing.assert_allclose(acc.mean, values.mean(axis=0), rtol=1e-12)


def test_bool_npy_file_with_hostile_bytes(tmp_path):
    hostile, values = _hostile_bool(seed=1)
    path = tmp_path / "hostile.npy"
    np.save(path, hostile)
    np.testing.assert_allclose(descramble.autocorrelation(str(path)), values.T @ values / len(values), rtol=1e-12)


def test_self_merge_count_overflow_raises_and_keeps_the_state(tmp_path):
    acc = descramble.Autocorrelation(2)
    acc.update(np.arange(6.0).reshape(3, 2))
    for _ in range(61):
        acc.merge(acc)
    count, scatter = acc.count, acc.scatter
    assert count == 3 * 2**61
    with pytest.raises(OverflowError, match="count"):
        acc.merge(acc)
    assert acc.count == count
    np.testing.assert_array_equal(acc.scatter, scatter)
    path = tmp_path / "big.npz"
    acc.save(path)  # the state is still a valid checkpoint
    assert descramble.Autocorrelation.load(path).count == count


@pytest.mark.parametrize("scale", [1e18, 1e-18, 1e30, 1e-30])
def test_mixed_precision_at_extreme_magnitudes(scale):
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((5000, 4)) * [1.0, 2.0, 3.0, 4.0] * scale).astype(np.float32)
    mixed = descramble.Autocorrelation(4, precision="mixed")
    mixed.update(x)
    exact = descramble.Autocorrelation(4)
    exact.update(x)
    assert np.all(np.isfinite(mixed.scatter))
    err = np.abs(mixed.covariance() - exact.covariance()).max() / np.abs(exact.covariance()).max()
    assert err < 1e-6


def test_subnormal_weights_are_refused():
    x = np.arange(8.0).reshape(4, 2)
    acc = descramble.Autocorrelation(2)
    with pytest.raises(descramble.InvalidWeightError, match="subnormal") as info:
        acc.update(x, weights=[1.0, 0.0, 5e-324, 1.0])
    assert info.value.index == 2 and info.value.value == 5e-324
    assert acc.count == 0
    acc.update(x, weights=[1.0, 0.0, np.finfo(float).tiny, 1.0])  # the smallest normal weight is fine
    assert acc.count == 4


def test_impossible_n_features_is_refused_without_allocating():
    with pytest.raises(ValueError, match="n_features") as info:
        descramble.Autocorrelation(2**40)
    assert not isinstance(info.value, MemoryError)
    assert "GiB" in str(info.value)


def test_npy_header_with_huge_width_is_refused(tmp_path):
    path = tmp_path / "hostile.npy"
    np.save(path, np.zeros((0, 1)))
    raw = path.read_bytes()
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (0, 1099511627776), }"
    header = header + " " * (118 - len(header)) + "\n"
    path.write_bytes(raw[:8] + len(header).to_bytes(2, "little") + header.encode("latin1"))
    with pytest.raises(ValueError, match="n_features"):
        descramble.autocorrelation(str(path))
