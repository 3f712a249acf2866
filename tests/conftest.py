import numpy as np
import pytest

import descramble


@pytest.fixture
def rng():
    return np.random.default_rng(20261129)


def state_of(acc: descramble.Autocorrelation) -> dict:
    """Everything an accumulator holds, for exact before/after comparisons."""
    return {key: np.array(value, copy=True) for key, value in acc._state().items()}


def assert_same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
