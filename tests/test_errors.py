"""Structured errors: the row, column and source of a bad value are fields, not text to parse.

Every way of streaming data (arrays, iterables, files, hidden layers,
convergence, Dask, PyTorch) hands the core the row of the stream at which a
chunk starts, so ``NonFiniteError.row`` is the row of the user's data.
"""

import os
import pickle
import types

import numpy as np
import pytest

import descramble
from descramble import sources

ROW, COLUMN = 2500, 1


def nan_at_2500(rows=3000):
    X = np.ones((rows, 4))
    X[ROW, COLUMN] = np.nan
    return X


def raises_at(error_type, call):
    with pytest.raises(error_type) as info:
        call()
    return info.value


def assert_located(error, row=ROW, column=COLUMN, source="data"):
    assert isinstance(error, descramble.NonFiniteError)
    assert (error.row, error.column, error.source) == (row, column, source)
    assert str(error).startswith(f"{source}: row {row} ")


# -- NonFiniteError.row is the row of the stream ---------------------------------------------


@pytest.mark.parametrize("make", [
    lambda X: descramble.accumulate(X, chunk_rows=1000),
    lambda X: descramble.accumulate(X, chunk_rows=7),
    lambda X: descramble.accumulate(iter([X[:1000], X[1000:2000], X[2000:]])),
    lambda X: descramble.accumulate([X[:999], X[999:2400], X[2400:]], chunk_rows=50),
    lambda X: descramble.Autocorrelation(4).update_from(X, chunk_rows=1000),
    lambda X: descramble.hidden_autocorrelations([(np.ones((2, 4)), None, "tanh")], X, chunk_rows=700),
    lambda X: descramble.convergence(np.ones((2, 4)), X, sizes=[100, 2400], chunk_rows=700),
    lambda X: descramble.stability(np.ones((2, 4)), X),
    lambda X: descramble.stability(np.ones((2, 4)), iter([X[:999], X[999:2501], X[2501:]])),
], ids=["array", "array-small-chunks", "iterable", "list-split-further", "update_from", "hidden", "convergence",
        "stability", "stability-odd-chunks"])
def test_non_finite_error_fields_name_the_row_of_the_stream(make):
    assert_located(raises_at(descramble.NonFiniteError, lambda: make(nan_at_2500())))


def test_stability_halves_are_the_even_and_odd_rows_of_the_stream_whatever_the_chunking(rng):
    X = rng.normal(size=(1001, 5))
    W = rng.normal(size=(3, 5))
    whole = descramble.stability(W, X)
    chunked = descramble.stability(W, iter([X[:333], X[333:334], X[334:]]))
    for mine, theirs, rows in ((whole.first, chunked.first, X[0::2]), (whole.second, chunked.second, X[1::2])):
        np.testing.assert_allclose(mine.hidden, theirs.hidden, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(mine.hidden, W @ (rows.T @ rows / len(rows)) @ W.T, rtol=1e-10)


def test_npy_file_read_by_the_core_names_the_file_and_its_row(tmp_path):
    path = str(tmp_path / "x.npy")
    np.save(path, nan_at_2500())
    src = sources.open_source(path, chunk_rows=1000)
    assert isinstance(src, sources.FileSource)  # the core reads it, not NumPy
    acc = descramble.Autocorrelation(4)
    assert_located(raises_at(descramble.NonFiniteError, lambda: acc.update_from(path, chunk_rows=1000)),
                   source=f"'{path}'")
    assert acc.count == 2000  # the chunks before the bad one stay


def test_raw_file_names_the_file_and_its_row(tmp_path):
    path = str(tmp_path / "x.f32")
    nan_at_2500().astype(np.float32).tofile(path)
    call = lambda: descramble.accumulate(path, dtype=np.float32, n_features=4, chunk_rows=300)  # noqa: E731
    assert_located(raises_at(descramble.NonFiniteError, call), source=f"'{path}'")


@pytest.mark.parametrize("dtype", [">f8", "<f2"], ids=["byte-swapped", "float16"])
def test_files_numpy_reads_are_named_like_files_the_core_reads(tmp_path, dtype):
    path = str(tmp_path / "x.npy")
    np.save(path, nan_at_2500().astype(dtype))
    assert not isinstance(sources.open_source(path), sources.FileSource)
    call = lambda: descramble.accumulate(path, chunk_rows=1000)  # noqa: E731
    assert_located(raises_at(descramble.NonFiniteError, call), source=f"'{path}'")


def test_hidden_and_convergence_name_a_file_source_by_its_path(tmp_path):
    path = str(tmp_path / "x.npy")
    np.save(path, nan_at_2500())
    layers = [(np.ones((2, 4)), None, "relu")]
    hidden = lambda: descramble.hidden_autocorrelations(layers, path, chunk_rows=600)  # noqa: E731
    assert_located(raises_at(descramble.NonFiniteError, hidden), source=f"'{path}'")
    conv = lambda: descramble.convergence(np.ones((2, 4)), path, sizes=[2501])  # noqa: E731
    assert_located(raises_at(descramble.NonFiniteError, conv), source=f"'{path}'")


def test_infinity_reports_its_column_too():
    X = np.zeros((50, 5))
    X[31, 4] = -np.inf
    error = raises_at(descramble.NonFiniteError, lambda: descramble.accumulate(X, chunk_rows=10))
    assert (error.row, error.column) == (31, 4)
    assert "infinity" in str(error)


# -- InvalidWeightError.index is the row of the stream ---------------------------------------


def test_invalid_weight_index_in_a_later_chunk_of_an_array():
    w = np.ones(3000)
    w[1500] = -2.0
    error = raises_at(descramble.InvalidWeightError,
                      lambda: descramble.accumulate(np.ones((3000, 4)), weights=w, chunk_rows=1000))
    assert (error.index, error.value) == (1500, -2.0)
    assert isinstance(error, ValueError)
    assert str(error).startswith("weights: entry 1500 is -2")


def test_invalid_weight_index_in_the_second_chunk_of_an_iterable():
    w2 = np.ones(500)
    w2[5] = np.nan
    call = lambda: descramble.accumulate(iter([np.ones((1000, 4)), np.ones((500, 4))]),  # noqa: E731
                                         weights=iter([np.ones(1000), w2]))
    error = raises_at(descramble.InvalidWeightError, call)
    assert error.index == 1005 and np.isnan(error.value)


# -- file errors are OSErrors with the file name -------------------------------------------


@pytest.mark.parametrize("raw", [False, True], ids=["npy", "raw"])
def test_missing_file_is_file_not_found_with_the_name(tmp_path, raw):
    path = str(tmp_path / "missing.npy")
    keywords = dict(dtype=np.float64, n_features=4) if raw else {}
    error = raises_at(FileNotFoundError, lambda: descramble.accumulate(path, **keywords))
    assert error.filename == path


@pytest.mark.parametrize("raw", [False, True], ids=["npy", "raw"])
def test_directory_is_an_os_error_with_the_name(tmp_path, raw):
    path = str(tmp_path)
    keywords = dict(dtype=np.uint8, n_features=1) if raw else {}
    error = raises_at(OSError, lambda: descramble.accumulate(path, **keywords))
    assert error.filename == path
    if os.name == "posix":
        assert isinstance(error, IsADirectoryError)


# -- the exceptions travel between processes -------------------------------------------------


def test_errors_pickle_with_their_fields():
    non_finite = raises_at(descramble.NonFiniteError, lambda: descramble.accumulate(nan_at_2500(), chunk_rows=1000))
    copy = pickle.loads(pickle.dumps(non_finite))
    assert type(copy) is descramble.NonFiniteError
    assert (copy.row, copy.column, copy.source, str(copy)) == (ROW, COLUMN, "data", str(non_finite))

    call = lambda: descramble.Autocorrelation(2).update(np.ones((3, 2)), [1, 1, -1], first_row=10)  # noqa: E731
    bad_weight = raises_at(descramble.InvalidWeightError, call)
    copy = pickle.loads(pickle.dumps(bad_weight))
    assert type(copy) is descramble.InvalidWeightError
    assert (copy.index, copy.value, str(copy)) == (12, -1.0, str(bad_weight))


# -- a rejected chunk changes nothing --------------------------------------------------------


def state(acc):
    return {key: np.array(value, copy=True) for key, value in acc._state().items()}


@pytest.mark.parametrize("chunk, weights, error", [
    (nan_at_2500(), None, descramble.NonFiniteError),
    (np.ones((3000, 4)), np.r_[np.ones(2999), -1.0], descramble.InvalidWeightError),
    (np.ones((3000, 4)), np.ones(2999), ValueError),
    (np.ones((3000, 5)), None, ValueError),
], ids=["nan", "weight", "weights-length", "width"])
@pytest.mark.parametrize("precision", ["float64", "mixed"])
def test_a_rejected_chunk_leaves_the_accumulator_exactly_as_it_was(chunk, weights, error, precision):
    acc = descramble.Autocorrelation(4, precision=precision)
    acc.update(np.random.default_rng(0).normal(size=(123, 4)) + 1e6, np.linspace(0.5, 2, 123))
    before = state(acc)
    with pytest.raises(error):
        acc.update(chunk, weights, first_row=123, source="more")
    after = state(acc)
    assert before.keys() == after.keys()
    for key in before:
        np.testing.assert_array_equal(after[key], before[key], err_msg=key)


# -- one streaming loop ----------------------------------------------------------------------


def test_no_message_parsing_is_left():
    for name in ("chunk_index", "ChunkIndex", "_CHUNK_INDEX", "in_stream"):
        assert not hasattr(sources, name)


class _Chunks(sources.Source):
    n_features = 2

    def __init__(self):
        self.closed = False

    def chunks(self):
        try:
            for i in range(5):
                yield np.full((3, 2), float(i)), None
        finally:
            self.closed = True


def test_feed_passes_stream_rows_and_reports_progress():
    src, calls, done = _Chunks(), [], []
    rows = src.feed(lambda chunk, w, first_row, name: calls.append((chunk[0, 0], first_row, name)), done.append)
    assert rows == 15 and done == [3] * 5
    assert calls == [(float(i), 3 * i, "data") for i in range(5)]


def test_feed_stops_the_source_at_once_on_an_error_or_ctrl_c():
    src, done = _Chunks(), []

    def update(chunk, w, first_row, name):
        if first_row == 6:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        src.feed(update, done.append)
    assert src.closed and done == [3, 3]  # the interrupted chunk is not counted


# -- descramble.convergence is a module, and callable ----------------------------------------


def test_convergence_is_a_callable_module_and_returns_the_whole_stream_descrambler():
    import descramble.convergence as c

    assert isinstance(c, types.ModuleType)
    assert c is descramble.convergence
    assert c.convergence.__module__ == "descramble.convergence" and callable(c.convergence)
    rng = np.random.default_rng(3)
    W, X = rng.normal(size=(5, 6)), rng.normal(size=(700, 6))
    result = descramble.convergence(W, X, sizes=[100, 300])
    assert isinstance(result, descramble.Convergence)
    assert result.n_samples.tolist() == [100, 300, 700]
    whole = descramble.descramble(W, data=X)
    assert isinstance(result.descrambler, descramble.Descrambler)
    np.testing.assert_allclose(result.descrambler.P, whole.P, atol=1e-10)
    assert result.descrambler.bound == pytest.approx(result.bound, rel=1e-14)
    # The last point is the whole stream: its loss is the whole stream's own loss.
    assert result.loss[-1] == pytest.approx(whole.loss, rel=1e-10)
    reference = [np.sum(whole.smoothness.gram * (P @ whole.hidden @ P.T))
                 for P in (descramble.descramble(W, data=X[:n]).P for n in (100, 300))]
    np.testing.assert_allclose(result.loss[:2], reference, rtol=1e-10)


# -- Dask and PyTorch feed single blocks: the core is told where they start --------------------


def test_dask_errors_name_the_global_row_of_x():
    da = pytest.importorskip("dask.array")
    import descramble.dask as ddask

    X = nan_at_2500()
    error = raises_at(descramble.NonFiniteError,
                      lambda: ddask.accumulate(da.from_array(X, chunks=(300, 2)), scheduler="sync"))
    assert_located(error, source="x")
    w = np.ones(3000)
    w[2999] = np.inf
    call = lambda: ddask.accumulate(da.ones((3000, 4), chunks=700), weights=w, scheduler="sync")  # noqa: E731
    assert raises_at(descramble.InvalidWeightError, call).index == 2999


def test_dask_errors_with_unknown_chunk_sizes_name_the_block_and_its_row():
    da = pytest.importorskip("dask.array")
    import descramble.dask as ddask

    dx = da.from_array(nan_at_2500(), chunks=1000)
    kept = dx[dx[:, 0] > 0]  # row chunks of unknown size
    error = raises_at(descramble.NonFiniteError, lambda: ddask.accumulate(kept, scheduler="sync"))
    assert_located(error, row=ROW - 2000, source="x (row block 2)")


def test_torch_errors_name_the_layer_and_the_row_of_its_outputs():
    torch = pytest.importorskip("torch")
    import descramble.torch as dtorch

    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU()).double()
    error = raises_at(descramble.NonFiniteError,
                      lambda: dtorch.collect(model, ["0"], nan_at_2500(), chunk_rows=128))
    assert (error.row, error.source) == (ROW, "layer '0' output")
    assert error.column == 0  # the first output the NaN input reaches
