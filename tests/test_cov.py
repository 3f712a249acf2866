"""``descramble.cov`` against ``numpy.cov``: a drop-in replacement for real data.

Every comparison goes through :func:`assert_same_as_numpy`, which runs both
functions on private copies of the arguments and checks: the same exception
type and message, or the same result type, dtype (byte order included),
shape and values (NaN and infinity in the same places), the same warnings
(category and message, in order), and that ``descramble.cov`` left its
arguments unmodified.
"""

from __future__ import annotations

import copy
import inspect
import warnings

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import descramble
import descramble.covariance
from descramble import reference

# ---------------------------------------------------------------- helpers


def _run(func, args, kwargs):
    """Call ``func``; return (result, exception, [(category, message), ...], raw warnings)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result, error = func(*args, **kwargs), None
        except Exception as exc:  # noqa: BLE001 - compared with numpy's below
            result, error = None, exc
    return result, error, [(w.category, str(w.message)) for w in caught], caught


def _precision(dtype) -> float:
    """Relative tolerance for a result numpy computed in ``dtype`` (we compute in float64)."""
    dtype = np.dtype(dtype)
    if dtype.kind == "c":
        dtype = np.finfo(dtype).dtype
    if dtype.kind != "f" or dtype.itemsize >= 8:
        return 1e-12
    return 1e-5 if dtype.itemsize == 4 else 1e-2


def _data_args(args, kwargs) -> list:
    """The data arguments m and y, however passed."""
    return [*args[:2], kwargs.get("y")]


def _scale(data) -> float:
    """Largest finite magnitude in the data arguments (m and y)."""
    biggest = 1.0
    for a in data:
        if a is None:
            continue
        a = np.asarray(a)
        if a.dtype.kind in "biuf" and a.size:
            finite = np.abs(a.astype(np.float64))
            finite = finite[np.isfinite(finite)]
            if finite.size:
                biggest = max(biggest, float(finite.max()))
    return biggest


def _numpy_work_dtype(args, kwargs):
    """The dtype numpy.cov does its arithmetic in."""
    if kwargs.get("dtype") is not None:
        return np.dtype(kwargs["dtype"])
    data = [np.asarray(a) for a in _data_args(args, kwargs) if a is not None]
    return np.result_type(*data, np.float64)


def _std(result: np.ndarray) -> float:
    """Largest finite standard deviation on the diagonal of a covariance matrix."""
    diag = np.abs(np.diag(np.atleast_2d(result)).astype(np.complex128))
    diag = diag[np.isfinite(diag)]
    return float(np.sqrt(diag.max())) if diag.size else 0.0


def assert_same_as_numpy(*args, rtol=None, atol=None, **kwargs):
    """descramble.cov(*args, **kwargs) behaves exactly like numpy.cov(*args, **kwargs)."""
    originals = copy.deepcopy((args, kwargs))
    expected, np_error, np_warnings, _ = _run(np.cov, *copy.deepcopy((args, kwargs)))
    got, our_error, our_warnings, _ = _run(descramble.cov, args, kwargs)

    # descramble.cov never modifies its arguments (m, y, weights).
    for before, after in zip([*originals[0], *originals[1].values()], [*args, *kwargs.values()]):
        if isinstance(before, np.ndarray):
            assert after.dtype == before.dtype and after.shape == before.shape
            np.testing.assert_array_equal(after, before, err_msg="descramble.cov modified its input")

    if np_error is not None:
        assert our_error is not None, f"numpy raised {np_error!r}, descramble returned {got!r}"
        assert type(our_error) is type(np_error), f"{our_error!r} instead of numpy's {np_error!r}"
        assert str(our_error) == str(np_error)
        assert our_warnings == np_warnings
        return None
    assert our_error is None, f"descramble raised {our_error!r}, numpy returned {expected!r}"
    assert our_warnings == np_warnings
    assert type(got) is type(expected) is np.ndarray
    assert got.dtype == expected.dtype, f"dtype {got.dtype} instead of numpy's {expected.dtype}"
    assert got.shape == expected.shape
    if rtol is None:
        rtol = _precision(_numpy_work_dtype(args, kwargs))
    if atol is None:
        # numpy.cov's own error: centring loses ~eps * |data| on values of size
        # ~std, so allow rtol * |data| * std (plus a floor for constant data).
        scale = min(_scale(_data_args(args, kwargs)), 1e150)
        atol = rtol * scale * (_std(expected) + 1e-6 * scale)
    # NaN where numpy has NaN, the same infinities, and the values.
    for part in (np.real, np.imag) if expected.dtype.kind == "c" else (np.asarray,):
        ours, theirs = part(got), part(expected)
        np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs), err_msg="NaN pattern")
        np.testing.assert_array_equal(np.isposinf(ours), np.isposinf(theirs), err_msg="+inf pattern")
        np.testing.assert_array_equal(np.isneginf(ours), np.isneginf(theirs), err_msg="-inf pattern")
    wide = np.result_type(expected.dtype, np.float64)  # the tolerance may not fit a float32
    np.testing.assert_allclose(got.astype(wide), expected.astype(wide), rtol=rtol, atol=atol, equal_nan=True)
    return got


def assert_same_error(*args, **kwargs):
    """Both raise the same exception type with the same message, after the same warnings."""
    _, np_error, np_warnings, _ = _run(np.cov, *copy.deepcopy((args, kwargs)))
    _, our_error, our_warnings, _ = _run(descramble.cov, args, kwargs)
    assert np_error is not None, "the case must make numpy.cov raise"
    assert our_error is not None, f"numpy raised {np_error!r}, descramble did not"
    assert type(our_error) is type(np_error), f"{our_error!r} instead of numpy's {np_error!r}"
    assert str(our_error) == str(np_error)
    assert our_warnings == np_warnings
    return our_error


def _data(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape) * 3.0 + 1.0


# ---------------------------------------------------------------- the helper itself


def test_helper_detects_deviations(monkeypatch):
    """The comparison machinery can fail: a slightly wrong, or wrongly typed, cov is caught."""
    x = _data((3, 6))
    monkeypatch.setattr(descramble, "cov", lambda *a, **k: np.cov(*a, **k) * (1 + 1e-9))
    with pytest.raises(AssertionError):
        assert_same_as_numpy(x)
    monkeypatch.setattr(descramble, "cov", lambda *a, **k: np.cov(*a, **k).astype(np.float32))
    with pytest.raises(AssertionError):
        assert_same_as_numpy(x)
    monkeypatch.setattr(descramble, "cov", lambda *a, **k: np.cov(*a, **k)[None])
    with pytest.raises(AssertionError):
        assert_same_as_numpy(x)

    def mutating(m, *a, **k):
        m[0, 0] += 1
        return np.cov(m, *a, **k)

    monkeypatch.setattr(descramble, "cov", mutating)
    with pytest.raises(AssertionError, match="modified"):
        assert_same_as_numpy(x)

    def silent(*a, **k):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return np.cov(*a, **k)

    monkeypatch.setattr(descramble, "cov", silent)
    with pytest.raises(AssertionError):
        assert_same_as_numpy(x[:, :1])  # numpy warns, `silent` does not


def test_is_not_numpy_and_uses_the_core(monkeypatch):
    assert descramble.cov is not np.cov
    assert descramble.cov is descramble.covariance.cov

    class Boom:
        def __init__(self, *args, **kwargs):
            raise RuntimeError("core called")

    monkeypatch.setattr(descramble.covariance._core, "Autocorrelation", Boom)
    with pytest.raises(RuntimeError, match="core called"):
        descramble.cov(_data((3, 5)))


def test_signature_matches_numpy():
    ours = inspect.signature(descramble.cov).parameters
    theirs = inspect.signature(np.cov).parameters
    assert list(ours) == list(theirs)
    for name in theirs:
        assert ours[name].kind == theirs[name].kind, name
        assert ours[name].default == theirs[name].default, name


# ---------------------------------------------------------------- shapes, rowvar, bias, ddof

SHAPES = {
    "one-variable": (1, 9),
    "one-observation": (4, 1),
    "two-observations": (3, 2),
    "more-variables-than-observations": (7, 3),
    "square": (4, 4),
    "tall": (3, 40),
    "1x1": (1, 1),
    "1-D": (8,),
    "1-D-single": (1,),
    "0-d": (),
}
NORMALISATIONS = [
    {},
    {"bias": True},
    {"bias": False},
    {"ddof": 0},
    {"ddof": 1},
    {"ddof": 2},
    {"ddof": None, "bias": True},
    {"ddof": 1, "bias": True},  # ddof overrides bias
    {"ddof": np.int64(2)},
    {"ddof": 1.0},  # integral float ddof is accepted
    {"ddof": -1},
]


@pytest.mark.parametrize("norm", NORMALISATIONS, ids=repr)
@pytest.mark.parametrize("rowvar", [True, False])
@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_shapes_rowvar_normalisation(shape, rowvar, norm):
    x = _data(shape, seed=len(shape) + sum(shape))
    if shape == ():
        x = np.float64(2.5)
    assert_same_as_numpy(x, rowvar=rowvar, **norm)


@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (9,), (), (5, 1)])
def test_squeeze_to_zero_d(shape):
    x = np.asarray(_data(shape))
    got = assert_same_as_numpy(x, rowvar=len(shape) != 2 or shape[0] == 1)
    assert got.ndim == 0 and isinstance(got, np.ndarray)


def test_lists_and_scalars():
    assert_same_as_numpy([[0, 2], [1, 1], [2, 0]], rowvar=False)
    assert_same_as_numpy([1.5, 2, 4, 8])
    assert_same_as_numpy([[1, 2, 4], [3, 1, 0]], [7, 1, 2])
    assert_same_as_numpy(3.0)
    assert_same_as_numpy(7, ddof=0)
    assert_same_as_numpy((1, 2, 3), (2, 2, 5), False, True)  # positional rowvar, bias


def test_documented_example():
    x = np.array([[0, 2], [1, 1], [2, 0]]).T
    np.testing.assert_array_equal(descramble.cov(x), [[1.0, -1.0], [-1.0, 1.0]])


# ---------------------------------------------------------------- y

Y_CASES = {
    "1-D m, 1-D y": ((9,), (9,), True),
    "1-D m, 1-D y, rowvar False": ((9,), (9,), False),
    "2-D m, 1-D y": ((3, 9), (9,), True),
    "2-D m, 2-D y": ((3, 9), (2, 9), True),
    "2-D m, 2-D y, rowvar False": ((9, 3), (9, 2), False),
    "2-D m, 1-D y, rowvar False": ((9, 3), (9,), False),
    "1-D m, 2-D y, rowvar False": ((9,), (9, 2), False),
    "one observation": ((3, 1), (2, 1), True),
    "one observation, rowvar False": ((1, 3), (1, 2), False),
    "y with one variable, rowvar False": ((9, 3), (9, 1), False),
}


@pytest.mark.parametrize("norm", [{}, {"bias": True}, {"ddof": 0}, {"ddof": 3}], ids=repr)
@pytest.mark.parametrize(("mshape", "yshape", "rowvar"), Y_CASES.values(), ids=Y_CASES.keys())
def test_with_y(mshape, yshape, rowvar, norm):
    assert_same_as_numpy(_data(mshape, 1), _data(yshape, 2), rowvar=rowvar, **norm)


@pytest.mark.parametrize(
    ("mdtype", "ydtype"),
    [(np.int8, np.uint8), (np.float32, np.float64), (np.float16, np.int64), (bool, np.float32),
     (np.int64, np.uint64), (np.float32, np.longdouble), (np.int16, np.float16)],
)
def test_y_mixed_dtypes(mdtype, ydtype):
    rng = np.random.default_rng(3)
    m = rng.integers(0, 9, size=(3, 11)).astype(mdtype)
    y = rng.integers(0, 9, size=(2, 11)).astype(ydtype)
    assert_same_as_numpy(m, y)
    assert_same_as_numpy(m.T, y.T, rowvar=False, aweights=rng.random(11))


# ---------------------------------------------------------------- weights


def _weights(n, seed=4):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 5, size=n), rng.random(n) * 3


@pytest.mark.parametrize("norm", [{}, {"bias": True}, {"ddof": 0}, {"ddof": 1}, {"ddof": 2}, {"ddof": 5}], ids=repr)
@pytest.mark.parametrize("which", ["fweights", "aweights", "both"])
@pytest.mark.parametrize("rowvar", [True, False])
def test_weights(which, rowvar, norm):
    x = _data((4, 12), 5)
    fw, aw = _weights(12)
    fw[0] = 3  # the weight sum stays non-zero
    kwargs = {}
    if which in ("fweights", "both"):
        kwargs["fweights"] = fw
    if which in ("aweights", "both"):
        kwargs["aweights"] = aw
    assert_same_as_numpy(x if rowvar else x.T, rowvar=rowvar, **kwargs, **norm)


@pytest.mark.parametrize(
    "fweights",
    [[1, 2, 3, 1, 1, 2], np.array([1.0, 2.0, 3.0, 1.0, 1.0, 2.0]), np.array([1, 0, 0, 0, 0, 2], np.uint8),
     np.array([True, True, False, True, True, True]), (4, 4, 4, 4, 4, 4)],
    ids=["list", "float", "uint8-with-zeros", "bool", "tuple"],
)
def test_fweights_forms(fweights):
    assert_same_as_numpy(_data((3, 6), 6), fweights=fweights)
    assert_same_as_numpy(_data((3, 6), 6), fweights=fweights, aweights=[0.5, 1, 2, 3, 1e-3, 7])


@pytest.mark.parametrize("dtype", [None, np.longdouble])
@pytest.mark.parametrize("seed", range(4))
def test_aweights_divisor_cancels_like_numpy(seed, dtype):
    # One observation carries almost all the weight: V1 - ddof * V2 / V1 cancels
    # to ~1e-6 of V1, so the weight sum V1 must be NumPy's to the last bit (and
    # in NumPy's precision for a longdouble dtype) to agree to 1e-12.
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2, 2000))
    aw = rng.random(2000) * 1e-9
    aw[rng.integers(2000)] = 1.0
    assert_same_as_numpy(x, aweights=aw, dtype=dtype)
    assert_same_as_numpy(x, aweights=aw, fweights=rng.integers(1, 3, 2000), ddof=2, dtype=dtype)
    assert_same_as_numpy(np.zeros((2, 2)), [[0.0, 1.0], [1.0, 1.0]], aweights=[2.0**-24, 3.0], dtype=dtype)


def test_weights_equivalent_to_repetition():
    # An independent check (not via numpy): integer fweights repeat observations.
    x = _data((3, 5), 7)
    fw = np.array([1, 3, 2, 1, 4])
    np.testing.assert_allclose(descramble.cov(x, fweights=fw), descramble.cov(np.repeat(x, fw, axis=1)), rtol=1e-12)


def test_weighted_float32_result_is_float64():
    # numpy.cov multiplies by the float64 weights: with dtype=float32 its result is float64.
    x = _data((3, 8), 8).astype(np.float32)
    for kwargs in ({"fweights": np.arange(1, 9)}, {"aweights": np.linspace(0.1, 1, 8)}):
        assert_same_as_numpy(x, **kwargs)
        assert_same_as_numpy(x, dtype=np.float32, **kwargs)
        assert descramble.cov(x, dtype=np.float32, **kwargs).dtype == np.float64
        assert_same_as_numpy(x, dtype=np.float16, **kwargs)
        assert_same_as_numpy(x, dtype=np.longdouble, **kwargs)


def test_weights_are_not_modified():
    # numpy.cov multiplies a float64 fweights array by aweights in place; descramble must not.
    x = _data((3, 6), 9)
    fw = np.array([1.0, 2, 3, 1, 1, 2])
    aw = np.array([0.5, 1, 2, 3, 0.25, 7])
    fw0, aw0 = fw.copy(), aw.copy()
    descramble.cov(x, fweights=fw, aweights=aw, ddof=1)
    np.testing.assert_array_equal(fw, fw0)
    np.testing.assert_array_equal(aw, aw0)


# ---------------------------------------------------------------- dtypes

INPUT_DTYPES = [np.float64, np.float32, np.float16, np.int8, np.int16, np.int32, np.int64, np.uint8,
                np.uint16, np.uint32, np.uint64, bool, np.longdouble]
RESULT_DTYPES = [None, np.float64, np.float32, np.float16, np.longdouble, "f8", float]


def _small_integers(shape, dtype, seed=10):
    """Values exact in every dtype, and small enough that float16 arithmetic does not overflow."""
    rng = np.random.default_rng(seed)
    if np.dtype(dtype) == bool:
        return rng.integers(0, 2, size=shape).astype(bool)
    low = 0 if np.dtype(dtype).kind in "ub" else -4
    return rng.integers(low, 5, size=shape).astype(dtype)


@pytest.mark.parametrize("result_dtype", RESULT_DTYPES, ids=str)
@pytest.mark.parametrize("dtype", INPUT_DTYPES, ids=lambda d: np.dtype(d).name)
def test_dtypes(dtype, result_dtype):
    x = _small_integers((3, 7), dtype)
    assert_same_as_numpy(x, dtype=result_dtype)
    assert_same_as_numpy(x.T, rowvar=False, bias=True, dtype=result_dtype)
    assert_same_as_numpy(x, fweights=[1, 2, 1, 3, 1, 1, 2], dtype=result_dtype)
    assert_same_as_numpy(x[0], dtype=result_dtype)  # squeezed to 0-d with that dtype


@pytest.mark.parametrize(("dtype", "step"), [(np.float32, 2.0**-30), (np.float16, 2.0**-14)])
def test_dtype_rounds_the_input_first(dtype, step):
    # numpy.cov converts to `dtype` before computing: values closer than its
    # precision become equal and their covariance is exactly zero.
    x = np.array([[1.0, 1.0 + step, 1.0 - step, 1.0], [2.0, 4.0, 6.0, 8.0]])
    got = assert_same_as_numpy(x, dtype=dtype)
    assert got[0, 0] == 0 and got[0, 1] == 0 and got[1, 1] > 0
    assert descramble.cov(x)[0, 0] > 0  # but not in float64


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16, np.longdouble])
def test_floating_values(dtype):
    x = _data((4, 9), 11).astype(dtype)
    got = assert_same_as_numpy(x)
    assert got.dtype == np.result_type(dtype, np.float64)


def test_large_integers_round_like_numpy():
    # Beyond 2**53 both round each value to float64 first.
    rng = np.random.default_rng(12)
    big = rng.integers(-(2**62), 2**62, size=(3, 9))
    assert_same_as_numpy(big)
    assert_same_as_numpy(big.astype(np.uint64) + np.uint64(2**63))
    assert_same_as_numpy(big, big.astype(np.uint64)[::-1])


def test_longdouble_values_beyond_float64():
    # numpy computes longdouble input in longdouble; we agree to float64 precision.
    x = np.array([[1, 2, 4, 8], [3, 1, 4, 1]], dtype=np.longdouble) / 3
    got = assert_same_as_numpy(x)
    assert got.dtype == np.longdouble


@pytest.mark.skipif(np.finfo(np.longdouble).eps >= np.finfo(np.float64).eps, reason="longdouble is float64 here")
def test_longdouble_spread_below_float64_resolution():
    # A spread float64 cannot see: rounding the data to float64 would give 0.
    step = np.longdouble(2.0) ** -60
    x = 1 + np.array([[0, 1, 2, 3], [3, 1, 0, 2]], dtype=np.longdouble) * step
    assert np.all(x.astype(np.float64) == 1.0)
    got = assert_same_as_numpy(x, rtol=1e-15, atol=0)
    assert got[0, 0] > 0 and got.dtype == np.longdouble
    rng = np.random.default_rng(22)
    y = 1e9 + rng.random((2, 500)).astype(np.longdouble) * np.longdouble(1e-9)
    assert_same_as_numpy(y, rtol=1e-15, atol=0)
    assert_same_as_numpy(y, aweights=rng.random(500), ddof=2, rtol=1e-15, atol=0)
    assert_same_as_numpy(y, y.astype(np.float64), rtol=1e-15, atol=1e-30)


@pytest.mark.parametrize("dtype", [complex, np.complex64, np.complex128, np.clongdouble])
def test_complex_result_dtype_on_real_input(dtype):
    # numpy.cov accepts a complex dtype for real data (zero imaginary parts): so must we.
    x = _data((3, 7), 13)
    assert_same_as_numpy(x, dtype=dtype)
    assert_same_as_numpy(x, dtype=dtype, aweights=np.linspace(1, 2, 7))
    got = descramble.cov(x, dtype=dtype)
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(got.imag, 0)


# ---------------------------------------------------------------- memory layouts


def _layouts():
    base = np.asfortranarray(_data((12, 15), 14))
    c = np.ascontiguousarray(base)
    return {
        "C": c,
        "F": base,
        "F-transposed": base.T,
        "strided": c[::2, ::3],
        "strided-F": base[::2, ::3],
        "negative": c[::-1, ::-2],
        "negative-F": base[::-3, ::-1],
        "column": c[:, 4],
        "row-with-stride": c[3, ::2],
        "byteswapped-f8": c.astype(">f8"),
        "byteswapped-f4": c.astype(">f4"),
        "byteswapped-i4": (c * 10).astype(">i4"),
        "byteswapped-strided": c.astype(">f8")[::2, ::-3],
        "little-f8": c.astype("<f8"),
        "readonly": np.frombuffer(c.tobytes(), dtype=np.float64).reshape(c.shape),
        "unaligned": np.frombuffer(b"\0" + c.tobytes(), dtype=np.float64, offset=1, count=c.size).reshape(c.shape),
    }


LAYOUTS = _layouts()


@pytest.mark.parametrize("rowvar", [True, False])
@pytest.mark.parametrize("name", LAYOUTS)
def test_layouts(name, rowvar):
    x = LAYOUTS[name]
    if name == "unaligned":
        assert not x.flags.aligned
    assert_same_as_numpy(x, rowvar=rowvar)
    n = x.shape[0] if x.ndim == 1 else x.shape[1] if rowvar else x.shape[0]  # observations
    assert_same_as_numpy(x, rowvar=rowvar, aweights=np.linspace(0.5, 2, n), ddof=2)
    assert_same_as_numpy(x, x[::-1] if x.ndim == 2 and rowvar else x, rowvar=rowvar)


def test_weights_with_strides():
    x = _data((3, 10), 15)
    fw = np.arange(20)[::-2] % 4 + 1
    aw = np.linspace(0.1, 3, 30)[::3].astype(">f8")
    assert_same_as_numpy(x, fweights=fw, aweights=aw)


# ---------------------------------------------------------------- empty input, ddof >= N


EMPTY = {
    "(0, 4)": ((0, 4), {}),
    "(4, 0)": ((4, 0), {}),
    "(0,)": ((0,), {}),
    "(0, 0)": ((0, 0), {}),
    "(1, 0)": ((1, 0), {}),
    "(0, 4) rowvar False": ((0, 4), {"rowvar": False}),
    "(4, 0) rowvar False": ((4, 0), {"rowvar": False}),
    "(0,) rowvar False": ((0,), {"rowvar": False}),
    "(4, 0) bias": ((4, 0), {"bias": True}),
    "(4, 0) ddof=-1": ((4, 0), {"ddof": -1}),
    "(4, 0) float32": ((4, 0), {"dtype": np.float32}),
    "(4, 0) longdouble": ((4, 0), {"dtype": np.longdouble}),
    "(0, 4) float32": ((0, 4), {"dtype": np.float32}),
}


@pytest.mark.parametrize("input_dtype", [np.float64, np.float32, np.int64, bool])
@pytest.mark.parametrize(("shape", "kwargs"), EMPTY.values(), ids=EMPTY.keys())
def test_empty(shape, kwargs, input_dtype):
    assert_same_as_numpy(np.empty(shape, dtype=input_dtype), **kwargs)


def test_empty_warnings_are_numpys():
    # An explicit record of what numpy does, so a change on either side is visible.
    _, _, ours, _ = _run(descramble.cov, (np.empty((3, 0)),), {})
    assert [message for _, message in ours] == [
        "Mean of empty slice",
        "invalid value encountered in divide",
        "Degrees of freedom <= 0 for slice",
        "divide by zero encountered in divide",
        "invalid value encountered in multiply",
    ]
    result, _, _, _ = _run(descramble.cov, (np.empty((3, 0)),), {})
    assert result.shape == (3, 3) and np.isnan(result).all()
    empty, _, none, _ = _run(descramble.cov, (np.empty((0, 3)),), {"dtype": np.float32})
    assert empty.shape == (0, 0) and empty.dtype == np.float64 and none == []


def test_empty_with_y_and_weights():
    assert_same_as_numpy(np.empty((2, 0)), np.empty((3, 0)))
    assert_same_as_numpy(np.empty((0, 3)), np.empty((2, 3)))  # m empty: (0, 0), y ignored
    assert_same_error(np.empty((2, 0)), fweights=[])  # weights sum to zero
    assert_same_error(np.empty((2, 0)), aweights=np.empty(0))


@pytest.mark.parametrize("ddof", [3, 4, 10])
@pytest.mark.parametrize("weights", [{}, {"fweights": [1, 1, 1]}, {"aweights": [1.0, 1.0, 1.0]}], ids=repr)
def test_ddof_at_least_n(ddof, weights):
    x = np.array([[1.0, 2.5, 7.0], [3.0, -1.0, 0.5], [2.0, 2.0, 9.0]])
    got = assert_same_as_numpy(x, ddof=ddof, **weights)
    assert not np.isfinite(got).any()
    _, _, ours, _ = _run(descramble.cov, (x,), {"ddof": ddof, **weights})
    assert (RuntimeWarning, "Degrees of freedom <= 0 for slice") in ours


def test_one_observation_gives_nan_like_numpy():
    got = assert_same_as_numpy(np.array([[1.0], [2.0], [5.0]]))
    assert np.isnan(got).all()


@pytest.mark.parametrize("x", [np.array([[1.0, 2.5, 7.0]]), np.array([[np.inf, 1.0, 2.0]])], ids=["finite", "inf"])
def test_dof_warning_points_at_the_caller(x):
    # numpy's "Degrees of freedom" warning names the line that called cov; so must ours.
    _, _, _, theirs = _run(np.cov, (x,), {"ddof": 5})
    _, _, _, ours = _run(descramble.cov, (x,), {"ddof": 5})
    dof = [w for w in ours if "Degrees of freedom" in str(w.message)]
    assert len(dof) == 1
    assert dof[0].filename == __file__
    assert [w.filename for w in theirs if "Degrees of freedom" in str(w.message)] == [__file__]


# ---------------------------------------------------------------- exceptions


def test_error_helper_needs_numpy_to_raise():
    with pytest.raises(AssertionError, match="numpy.cov raise"):
        assert_same_error(_data((2, 3)))


ERRORS = {
    "m 3-D": ((np.zeros((2, 3, 4)),), {}),
    "m 4-D": ((np.zeros((1, 1, 1, 1)),), {}),
    "y 3-D": ((np.zeros((2, 4)), np.zeros((2, 1, 4))), {}),
    "ddof 1.5": ((np.zeros((2, 4)),), {"ddof": 1.5}),
    "ddof 0.5 with bias": ((np.zeros((2, 4)),), {"ddof": 0.5, "bias": True}),
    "ddof nan": ((np.zeros((2, 4)),), {"ddof": np.nan}),
    "ddof string": ((np.zeros((2, 4)),), {"ddof": "one"}),
    "fweights non-integer": ((np.zeros((2, 4)),), {"fweights": [1, 2, 1.5, 1]}),
    "fweights nan": ((np.zeros((2, 4)),), {"fweights": [1, 2, np.nan, 1]}),
    "fweights 2-D": ((np.zeros((2, 4)),), {"fweights": np.ones((4, 1))}),
    "fweights 2-D row": ((np.zeros((2, 4)),), {"fweights": np.ones((1, 4))}),
    "aweights 2-D": ((np.zeros((2, 4)),), {"aweights": np.ones((4, 2))}),
    "fweights too short": ((np.zeros((2, 4)),), {"fweights": [1, 2, 3]}),
    "fweights too long": ((np.zeros((2, 4)),), {"fweights": [1, 2, 3, 4, 5]}),
    "fweights counted before rowvar": ((np.zeros((2, 4)),), {"fweights": [1, 2], "rowvar": True}),
    "fweights rowvar False": ((np.zeros((2, 4)),), {"fweights": [1, 2, 3, 4], "rowvar": False}),
    "aweights wrong length": ((np.zeros((2, 4)),), {"aweights": [1.0, 2.0]}),
    "fweights negative": ((np.zeros((2, 4)),), {"fweights": [1, -2, 1, 1]}),
    "aweights negative": ((np.zeros((2, 4)),), {"aweights": [1.0, 2.0, -0.5, 1.0]}),
    "fweights sum to zero": ((np.ones((2, 4)),), {"fweights": [0, 0, 0, 0]}),
    "aweights sum to zero": ((np.ones((2, 4)),), {"aweights": [0.0, 0.0, 0.0, 0.0]}),
    "both sum to zero": ((np.ones((2, 4)),), {"fweights": [1, 0, 2, 0], "aweights": [0.0, 3.0, 0.0, 1.0]}),
    "y fewer observations": ((np.zeros((2, 4)), np.zeros((2, 3))), {}),
    "y fewer observations 1-D": ((np.zeros(4), np.zeros(3)), {}),
    "y mismatch rowvar False": ((np.zeros((4, 2)), np.zeros((3, 2))), {"rowvar": False}),
    "fweights checked before aweights": ((np.zeros((2, 4)),), {"fweights": [1, -1, 1, 1], "aweights": [1.0]}),
    "ddof checked before m": ((np.zeros((2, 2, 2)),), {"ddof": 0.5}),
}


@pytest.mark.parametrize(("args", "kwargs"), ERRORS.values(), ids=ERRORS.keys())
def test_errors_like_numpy(args, kwargs):
    assert_same_error(*args, **kwargs)


def test_error_types_are_the_documented_ones():
    assert type(assert_same_error(np.zeros((2, 2, 2)))) is ValueError
    assert type(assert_same_error(np.zeros((2, 4)), fweights=[1, 2, 1.5, 1])) is TypeError
    assert type(assert_same_error(np.zeros((2, 4)), fweights=np.ones((4, 1)))) is RuntimeError
    assert type(assert_same_error(np.zeros((2, 4)), aweights=[1.0])) is RuntimeError
    assert type(assert_same_error(np.zeros((2, 4)), aweights=[1.0, -1.0, 1.0, 1.0])) is ValueError
    assert type(assert_same_error(np.ones((2, 4)), fweights=[0, 0, 0, 0])) is ZeroDivisionError


@pytest.mark.parametrize("where", ["m", "y"])
@pytest.mark.parametrize("dtype", [np.complex64, np.complex128, np.clongdouble])
def test_complex_input_raises_typeerror(where, dtype):
    x = _data((2, 5), 16)
    z = (x + 1j * x[::-1]).astype(dtype)
    args = (z,) if where == "m" else (x, z)
    with pytest.raises(TypeError, match="complex") as info:
        descramble.cov(*args)
    assert where in str(info.value)
    with pytest.raises(TypeError, match="complex"):
        descramble.cov(*args, dtype=np.float64)
    with pytest.raises(TypeError, match="complex"):
        descramble.cov(*args, dtype=complex)
    with pytest.raises(TypeError, match="complex"):
        descramble.cov([1 + 0j, 2, 3] if where == "m" else [1, 2, 3], None if where == "m" else [1j, 2, 3])


@pytest.mark.parametrize(
    "bad",
    [np.array([["a", "b", "c"]]), np.array([[b"a", b"b", b"c"]]), np.array([[1, 2, 3]], dtype=object),
     np.array([[1.0, 2.0, 3.0]], dtype=object), np.array(["2020-01-01", "2020-01-02"], dtype="M8[D]"),
     np.array([1, 2, 3], dtype="m8[s]"), ["a", "b"]],
    ids=["str", "bytes", "object-int", "object-float", "datetime", "timedelta", "list-of-str"],
)
@pytest.mark.parametrize("where", ["m", "y"])
def test_non_numeric_input_raises_typeerror(bad, where):
    good = np.ones(np.shape(bad)) + np.arange(np.shape(bad)[-1])
    args = (bad,) if where == "m" else (good, bad)
    with pytest.raises(TypeError) as info:
        descramble.cov(*args)
    assert where in str(info.value)
    # numpy fails too (TypeError or a subclass, except for object arrays, where its
    # np.average raises an AttributeError): never a result we would silently differ from.
    _, np_error, _, _ = _run(np.cov, args, {})
    assert np_error is not None
    if np.asarray(bad).dtype != object:
        assert isinstance(np_error, TypeError)


@pytest.mark.parametrize("dtype", [int, np.int32, np.uint8, bool, np.int64])
def test_integer_result_dtype_raises_typeerror(dtype):
    x = _data((2, 5), 17)
    _, np_error, _, _ = _run(np.cov, (x,), {"dtype": dtype})
    assert np_error is not None and issubclass(type(np_error), TypeError)
    with pytest.raises(TypeError, match="dtype"):
        descramble.cov(x, dtype=dtype)
    with pytest.raises(TypeError, match="dtype"):
        descramble.cov(x, aweights=[1, 2, 3, 4, 5], dtype=dtype)
    with pytest.raises(TypeError, match="dtype"):
        descramble.cov(x, aweights=[1, np.nan, 3, 4, 5], dtype=dtype)


def test_integer_result_dtype_fails_where_numpy_fails():
    x = _data((2, 5), 18)
    # numpy checks the weights before failing on the dtype ...
    assert_same_error(x, fweights=[1, -1, 1, 1, 1], dtype=int)
    assert_same_error(x, fweights=[1, 1, 1], dtype=int)
    assert_same_error(x, aweights=[0, 0, 0, 0, 0], dtype=int)
    assert_same_error(np.zeros((2, 2, 2)), dtype=int)
    # ... warns about the degrees of freedom ...
    _, np_error, np_warnings, _ = _run(np.cov, (x,), {"ddof": 9, "dtype": int})
    _, our_error, our_warnings, _ = _run(descramble.cov, (x,), {"ddof": 9, "dtype": int})
    assert isinstance(np_error, TypeError) and isinstance(our_error, TypeError)
    assert our_warnings == np_warnings == [(RuntimeWarning, "Degrees of freedom <= 0 for slice")]
    # ... and returns the empty result for no variables at all.
    assert_same_as_numpy(np.empty((0, 3)), dtype=int)


@pytest.mark.xfail(strict=True, reason="known deviation: numpy.cov does float16 arithmetic and overflows, "
                   "descramble computes in float64 and rounds the (representable) result")
def test_float16_arithmetic_overflow_differs():
    x = np.array([[400.0, 0.0, 0.0, 0.0], [1.0, 2.0, 3.0, 4.0]])
    assert_same_as_numpy(x, dtype=np.float16)  # numpy: inf and "overflow encountered in dot"


# ---------------------------------------------------------------- NaN and infinity

NONFINITE = {
    "nan": ([[1.0, np.nan, 3.0, 4.0], [1.0, 2.0, 3.0, 5.0], [0.5, 2.0, 2.0, 1.0]], {}),
    "nan first": ([[np.nan, 1.0, 3.0, 4.0], [1.0, 2.0, 3.0, 5.0]], {}),
    "nan last variable": ([[1.0, 1.5, 3.0, 4.0], [1.0, 2.0, 3.0, np.nan]], {}),
    "all nan": ([[np.nan, np.nan], [np.nan, np.nan]], {}),
    "inf": ([[1.0, np.inf, 3.0, 4.0], [1.0, 2.0, 3.0, 5.0], [0.5, 2.0, 2.0, 1.0]], {}),
    "-inf": ([[1.0, -np.inf, 3.0, 4.0], [1.0, 2.0, 3.0, 5.0]], {}),
    "inf and -inf": ([[1.0, -np.inf, np.inf, 4.0], [1.0, 2.0, 3.0, 5.0]], {}),
    "nan and inf": ([[1.0, np.nan, 3.0, 4.0], [1.0, 2.0, np.inf, 5.0]], {}),
    "inf rowvar False": ([[1.0, np.inf], [2.0, 3.0], [5.0, 1.0]], {"rowvar": False}),
    "nan with fweights": ([[1.0, np.nan, 3.0, 4.0], [1.0, 2.0, 3.0, 5.0]], {"fweights": [1, 2, 1, 1]}),
    "inf with aweights": ([[1.0, np.inf, 3.0, 4.0], [1.0, 2.0, 3.0, 5.0]], {"aweights": [1.0, 0.5, 2.0, 1.0]}),
    "inf with zero aweight": ([[1.0, np.inf, 3.0, 4.0], [1.0, 2.0, 3.0, 5.0]], {"aweights": [1.0, 0.0, 2.0, 1.0]}),
    "inf and ddof >= N": ([[np.inf, 1.0]], {"ddof": 2}),
    "nan and ddof >= N": ([[np.nan, 1.0], [2.0, 3.0]], {"ddof": 5}),
    "nan and bias": ([[1.0, np.nan, 3.0]], {"bias": True}),
    "nan float32": (np.array([[1.0, np.nan, 3.0], [2.0, 1.0, 0.0]], np.float32), {}),
    "inf float32 dtype": (np.array([[1.0, np.inf, 3.0], [2.0, 1.0, 0.0]]), {"dtype": np.float32}),
    "inf float16": (np.array([[1.0, np.inf, 3.0], [2.0, 1.0, 0.0]], np.float16), {}),
    "nan longdouble": (np.array([[1.0, np.nan, 3.0], [2.0, 1.0, 0.0]], np.longdouble), {}),
    "nan 1-D": ([1.0, np.nan, 3.0], {}),
    "nan 0-d": (np.nan, {}),
    "nan aweights": ([[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 5.0]], {"aweights": [1.0, np.nan, 2.0, 1.0]}),
    "inf aweights": ([[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 5.0]], {"aweights": [1.0, np.inf, 2.0, 1.0]}),
    "inf fweights": ([[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 5.0]], {"fweights": [1, np.inf, 2, 1]}),
    "nan aweights and ddof >= N": ([[1.0, 2.0], [3.0, 5.0]], {"aweights": [np.nan, 1.0], "ddof": 4}),
    "huge finite": ([[1e200, -1e200, 3.0], [1.0, 2.0, 3.0]], {}),
    "near float64 max": ([[1.7e308, -1.7e308, 3.0], [1.0, 2.0, 3.0]], {}),
    "max float": ([[np.finfo(np.float64).max, 0.0]], {}),
    "overflow casting to float32": ([[1e39, 1.0, 2.0], [1.0, 2.0, 0.0]], {"dtype": np.float32}),
    "overflow casting to float16": ([[7e4, 1.0, 2.0], [1.0, 2.0, 0.0]], {"dtype": np.float16}),
}


@pytest.mark.parametrize(("data", "kwargs"), NONFINITE.values(), ids=NONFINITE.keys())
def test_nonfinite_propagates_like_numpy(data, kwargs):
    got = assert_same_as_numpy(data, **kwargs)
    assert not np.isfinite(got).all()


def test_nonfinite_in_y():
    m = _data((2, 5), 19)
    y = _data((1, 5), 20)
    y[0, 2] = np.nan
    got = assert_same_as_numpy(m, y)
    assert np.isfinite(got[:2, :2]).all() and np.isnan(got[2]).all()
    y[0, 2] = np.inf
    assert_same_as_numpy(m, y)
    assert_same_as_numpy(m.T, y.T, rowvar=False, fweights=[1, 2, 3, 1, 1])


def test_nan_only_contaminates_its_variable():
    x = _data((4, 30), 21)
    x[2, 17] = np.nan
    got = assert_same_as_numpy(x)
    finite = np.ones((4, 4), bool)
    finite[2, :] = finite[:, 2] = False
    assert np.isfinite(got[finite]).all() and np.isnan(got[~finite]).all()


# ---------------------------------------------------------------- hypothesis


@st.composite
def cov_problems(draw):
    dtype = np.dtype(draw(st.sampled_from([np.float64, np.float32, np.int32])))
    n_vars = draw(st.integers(1, 5))
    n_obs = draw(st.integers(1, 12))
    rowvar = draw(st.booleans())
    if dtype.kind == "f":
        elements = hnp.from_dtype(dtype, min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False,
                                  allow_subnormal=False)
    else:
        elements = st.integers(-1000, 1000)
    shape = (n_vars, n_obs) if rowvar else (n_obs, n_vars)
    if n_vars == 1 and draw(st.booleans()):
        shape = (n_obs,)
    m = draw(hnp.arrays(dtype, shape, elements=elements))
    kwargs = {"rowvar": rowvar}
    if draw(st.booleans()):
        y_shape = (n_obs,) if len(shape) == 1 else ((draw(st.integers(1, 3)), n_obs) if rowvar else (n_obs, 2))
        kwargs["y"] = draw(hnp.arrays(dtype, y_shape, elements=elements))
    choice = draw(st.sampled_from(["none", "bias", "ddof"]))
    if choice == "bias":
        kwargs["bias"] = True
    elif choice == "ddof":
        kwargs["ddof"] = draw(st.integers(0, 3))
    if draw(st.booleans()):
        kwargs["fweights"] = draw(hnp.arrays(np.int64, n_obs, elements=st.integers(0, 5)))
    if draw(st.booleans()):
        kwargs["aweights"] = draw(hnp.arrays(np.float64, n_obs, elements=st.floats(0, 10, allow_subnormal=False)))
    if draw(st.booleans()):
        kwargs["dtype"] = draw(st.sampled_from([np.float64, np.float32, np.longdouble]))
    return m, kwargs


@settings(max_examples=60, deadline=None)
@given(cov_problems())
def test_hypothesis_agrees_with_numpy(problem):
    m, kwargs = problem
    # Leave out the degenerate normalisations (weights summing to zero, N - ddof <= 0),
    # tested deterministically above: there 0 * inf = NaN versus tiny * inf = inf
    # depends on the last bit of a zero variance.
    _, np_error, np_warnings, _ = _run(np.cov, *copy.deepcopy(((m,), kwargs)))
    assume(np_error is None and not np_warnings)
    assert_same_as_numpy(m, **kwargs)


# ---------------------------------------------------------------- accuracy


def test_accuracy_with_large_offset():
    rng = np.random.default_rng(20261129)
    n_vars, n_obs = 4, 100_000
    x = 1e9 + rng.random((n_vars, n_obs))
    x0 = x.copy()
    # Exact reference: x - x[:, :1] is exact in float64 (Sterbenz), then a
    # two-pass covariance in extended precision on the shifted data.
    shifted = (x - x[:, :1]).astype(np.longdouble)
    centred = shifted - shifted.mean(axis=1, keepdims=True)
    exact = (centred @ centred.T / (n_obs - 1)).astype(np.float64)
    assert np.all(np.diag(exact) > 0.08)  # variance of U(0, 1) is 1/12

    def rel_error(c):
        return float(np.abs(np.asarray(c, np.float64) - exact).max() / np.abs(exact).max())

    ours = rel_error(descramble.cov(x))
    numpy_error = rel_error(np.cov(x))
    naive = rel_error(reference.naive_covariance(x.T) * n_obs / (n_obs - 1))
    numbers = f"relative errors: descramble {ours:.2e}, numpy.cov {numpy_error:.2e}, naive E[xx^T]-mm^T {naive:.2e}"
    print(numbers)
    np.testing.assert_array_equal(x, x0)
    assert ours <= 1e-9, numbers
    assert naive > 1e-1, numbers  # wrong in every digit
    # numpy's two-pass is good here (~1e-13: its mean is off by ~ulp(1e9), squared);
    # per-block centring is still well over 5x better (~1e-15).
    assert 5 * ours <= numpy_error, numbers
    # The transposed, rowvar=False call reads the same data in the other order.
    assert rel_error(descramble.cov(np.asfortranarray(x.T), rowvar=False)) <= 1e-9, numbers
