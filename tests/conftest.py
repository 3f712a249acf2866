import numpy as np
import pytest

import descramble


# Every dtype the accumulators take, and samples of them (values rounded and
# clipped for integers, thresholded for bool).
DTYPES = [
    np.float64, np.float32, np.float16, np.longdouble,
    np.int8, np.int16, np.int32, np.int64,
    np.uint8, np.uint16, np.uint32, np.uint64, np.bool_,
]


def sample(rng, shape, dtype):
    x = rng.normal(loc=3.0, scale=2.0, size=shape)
    if np.dtype(dtype).kind in "iu":
        info = np.iinfo(dtype)
        x = np.clip(np.round(x * 10), info.min, info.max)
    elif np.dtype(dtype).kind == "b":
        x = x > 3.0
    return x.astype(dtype)


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
