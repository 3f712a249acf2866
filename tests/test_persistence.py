"""Pickling, save/load checkpoints and their atomicity."""

import os
import pickle

import numpy as np
import pytest

import descramble
from conftest import assert_same_state, state_of


@pytest.fixture
def acc(rng):
    return descramble.Autocorrelation(5).update(1e9 + rng.normal(size=(300, 5)), weights=rng.uniform(size=300))


def assert_equivalent(a, b):
    assert_same_state(state_of(a), state_of(b))
    np.testing.assert_array_equal(a.autocorrelation(), b.autocorrelation())
    np.testing.assert_array_equal(a.covariance(), b.covariance())
    assert (a.count, a.weight_sum, a.n_features) == (b.count, b.weight_sum, b.n_features)


def test_pickle_round_trip_is_exact(acc):
    restored = pickle.loads(pickle.dumps(acc))
    assert_equivalent(acc, restored)


def test_pickle_is_compact(acc):
    """Only the lower triangle of the scatter travels (workers send these around)."""
    n = 200
    big = descramble.Autocorrelation(n).update(np.random.default_rng(0).normal(size=(3, n)))
    size = len(pickle.dumps(big))
    assert size < 8 * (n * (n + 1) // 2 + 3 * n) + 2000, size


def test_empty_accumulator_round_trips():
    acc = descramble.Autocorrelation(2)
    restored = pickle.loads(pickle.dumps(acc))
    assert restored.count == 0 and restored.n_features == 2
    restored.update(np.ones((3, 2)))
    assert restored.count == 3


def test_restored_accumulator_keeps_accumulating(acc, rng):
    more = 1e9 + rng.normal(size=(50, 5))
    restored = pickle.loads(pickle.dumps(acc)).update(more)
    acc.update(more)
    np.testing.assert_allclose(restored.covariance(), acc.covariance(), rtol=1e-15)


def test_save_and_load_round_trip(acc, tmp_path):
    path = tmp_path / "checkpoint.npz"
    acc.save(path)
    assert_equivalent(acc, descramble.Autocorrelation.load(path))
    acc.save(str(tmp_path / "no-suffix"))  # written exactly where asked
    assert (tmp_path / "no-suffix").exists()
    assert_equivalent(acc, descramble.Autocorrelation.load(tmp_path / "no-suffix"))


def test_interrupted_save_keeps_the_previous_checkpoint(acc, tmp_path, monkeypatch, rng):
    path = tmp_path / "checkpoint.npz"
    acc.save(path)
    previous = path.read_bytes()
    newer = acc.copy().update(rng.normal(size=(10, 5)))

    def interrupted_savez(handle, **arrays):
        handle.write(b"PK\x03\x04 partial garbage")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", interrupted_savez)
    with pytest.raises(KeyboardInterrupt):
        newer.save(path)
    assert path.read_bytes() == previous
    assert sorted(os.listdir(tmp_path)) == ["checkpoint.npz"]  # no temporary file left behind
    assert_equivalent(acc, descramble.Autocorrelation.load(path))


def test_load_rejects_what_is_not_a_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError):
        descramble.Autocorrelation.load(tmp_path / "missing.npz")
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file at all")
    with pytest.raises(ValueError, match="not a valid descramble.Autocorrelation checkpoint"):
        descramble.Autocorrelation.load(garbage)
    other = tmp_path / "other.npz"
    np.savez(other, a=np.ones(3))
    with pytest.raises(ValueError, match="not a valid descramble.Autocorrelation checkpoint.*format"):
        descramble.Autocorrelation.load(other)


def test_load_rejects_corrupted_contents(acc, tmp_path):
    state = acc._state()
    state["scatter_tril"] = state["scatter_tril"][:-1]
    path = tmp_path / "truncated.npz"
    np.savez(path, **state)
    with pytest.raises(ValueError, match="scatter_tril has the wrong size"):
        descramble.Autocorrelation.load(path)
    state = acc._state()
    state["mean_minus_shift"] = np.full(5, np.nan)
    np.savez(path, **state)
    with pytest.raises(ValueError, match="finite"):
        descramble.Autocorrelation.load(path)
