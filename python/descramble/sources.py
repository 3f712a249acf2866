"""Where samples come from, and how they reach the core.

A *source* is anything :meth:`descramble.Autocorrelation.update_from` and
:func:`descramble.autocorrelation` accept:

* an ndarray (a ``numpy.memmap`` too) or anything NumPy reads as one array;
* a path to a ``.npy`` file: its header is parsed with ``numpy.lib.format``
  and the C++ core reads the data at file offsets, one chunk at a time, in a
  background thread while the previous chunk is reduced (the file is never
  mapped or loaded whole); formats the core does not read (byte-swapped,
  float16, extended precision) are read by :func:`read_file_chunks`, one
  bounded chunk at a time, and converted chunk by chunk;
* a path to a raw binary file of C-ordered samples, with ``dtype=`` and
  ``n_features=``;

Paths must name regular files: FIFOs and devices are refused before anything
opens them, and a file that shrinks while it is read raises ValueError. No
file is ever memory-mapped (a mapped file that shrinks kills the process with
SIGBUS).
* a sliceable dataset such as an ``h5py.Dataset`` or a ``zarr`` array (any
  object with ``shape``, ``dtype`` and ``dataset[a:b]``), read in slices of
  rows in a background thread;
* any iterable of (k, n) chunks (a generator, an iterator, a list of 2-D
  arrays), also drawn ahead in a background thread.

Every source reaches the core as validated chunks of rows; memory stays
bounded by a few chunks plus the n x n state, whatever the size of the data.
"""

from __future__ import annotations

import contextlib
import os
import queue
import stat
import threading
from collections.abc import Iterable, Iterator
from typing import Any, Callable, Optional, Tuple

import numpy as np

from ._validation import (as_chunk, as_numpy, as_positive_int, as_regular_file, as_weights, check_flag,
                          check_real_dtype, is_tensor)

Chunk = Tuple[np.ndarray, Optional[np.ndarray]]
Progress = Callable[[int], None]

#: Chunks are cut to about this many bytes when the caller does not say.
DEFAULT_CHUNK_BYTES = 32 << 20

# dtypes the C++ core reads from files as they are (native byte order).
_CORE_FILE_KINDS = "biuf"


def _core_reads(dtype: np.dtype) -> bool:
    """True when the C++ core reads ``dtype`` from a file itself: native byte
    order, bool (any nonzero byte is True, as NumPy reads it), int/float of 1,
    2, 4 or 8 bytes, but not float16."""
    return (dtype.isnative and dtype.kind in _CORE_FILE_KINDS and dtype.itemsize in (1, 2, 4, 8)
            and not (dtype.kind == "f" and dtype.itemsize < 4))


def is_array_like(data: Any) -> bool:
    """True when ``data`` is one array (as NumPy would read it), not a stream of chunks.

    Arrays and objects exposing the array protocols are arrays. Lists and
    tuples are arrays too (nested sequences of numbers), unless every element
    is itself a 2-D array: then they are a sequence of chunks.
    """
    if isinstance(data, np.ndarray) or hasattr(data, "__array_interface__"):
        return True
    if hasattr(data, "__array__") and not is_sliceable_dataset(data):
        return True
    if isinstance(data, (list, tuple)):
        return not (len(data) > 0 and all((isinstance(c, np.ndarray) or is_tensor(c)) and c.ndim == 2
                                          for c in data))
    return False


def is_sliceable_dataset(data: Any) -> bool:
    """True for array-like stores read by slicing (h5py, zarr), not held in memory."""
    module = type(data).__module__.split(".")[0]
    return module in ("h5py", "zarr") and hasattr(data, "shape") and hasattr(data, "dtype")


#: In-memory arrays are fed in views of about this much work (n^2 per row).
DEFAULT_CHUNK_FLOPS = 1e11


def default_chunk_rows(n_features: int, itemsize: int = 8) -> int:
    """Rows per chunk for about :data:`DEFAULT_CHUNK_BYTES` bytes."""
    return max(1, DEFAULT_CHUNK_BYTES // max(1, n_features * itemsize))


def default_view_rows(n_features: int, itemsize: int = 8) -> int:
    """Rows per view of an in-memory array: views cost no memory, so they are
    cut by work (a fraction of a second each, keeping Ctrl-C and progress
    responsive), and never below :func:`default_chunk_rows`."""
    return max(default_chunk_rows(n_features, itemsize), int(DEFAULT_CHUNK_FLOPS // max(1, n_features**2)))


def _split(chunk: np.ndarray, weights: np.ndarray | None, chunk_rows: int | None) -> Iterator[Chunk]:
    if chunk_rows is None or chunk.shape[0] <= chunk_rows:
        yield chunk, weights
        return
    for start in range(0, chunk.shape[0], chunk_rows):
        stop = start + chunk_rows
        yield chunk[start:stop], None if weights is None else weights[start:stop]


def prefetch(iterator: Iterator[Any], depth: int = 2) -> Iterator[Any]:
    """Draw items from ``iterator`` in a background thread, at most ``depth`` ahead.

    Whatever produces the items (file reads, decompression, a generator that
    releases the GIL) overlaps with what the caller does with them. Exceptions
    raised by the iterator are re-raised here; if the caller stops early (an
    error, Ctrl-C), the thread stops after its current item.
    """
    items: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def put(entry: Any) -> bool:
        """Queue ``entry`` unless the consumer stopped (never blocks forever on a full queue)."""
        while not stop.is_set():
            try:
                items.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            try:
                for item in iterator:
                    if not put((item, None)):
                        return
                put((done, None))
            except BaseException as exc:  # handed to the consumer
                put((done, exc))
        finally:
            # Close a generator the consumer abandoned here, in the thread that runs it:
            # its files are closed now, not whenever it is garbage-collected.
            close = getattr(iterator, "close", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    close()

    thread = threading.Thread(target=produce, name="descramble-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item, error = items.get()
            if item is done:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()


#: ``update(chunk, weights, first_row, source)``: what :meth:`Source.feed` hands every chunk to.
#: ``first_row`` is the row of the stream at which the chunk starts and ``source``
#: the stream's name; the core's errors name the row of the stream from them
#: (:class:`descramble.NonFiniteError` ``.row``, ``InvalidWeightError.index``).
Update = Callable[[np.ndarray, Optional[np.ndarray], int, str], Any]


class Source:
    """A validated stream of chunks of rows with a known width."""

    #: Number of features (columns).
    n_features: int
    #: Number of rows, when known in advance (for progress bars).
    rows: Optional[int] = None
    #: The stream's name in errors (``.source`` of a NonFiniteError).
    name: str = "data"

    def chunks(self) -> Iterator[Chunk]:
        """Yield ``(chunk, weights)`` pairs of validated arrays."""
        raise NotImplementedError

    def feed(self, update: Update, progress: Optional[Progress] = None) -> int:
        """The streaming loop: hand every chunk to ``update(chunk, weights, first_row, self.name)``.

        ``progress(rows)`` (optional) is called after each chunk. The rows of a
        chunk that ``update`` rejects, and of every later chunk, are not
        counted; on an error or Ctrl-C the chunk iterator is closed at once, so
        that background readers (:func:`prefetch`) stop.

        Returns
        -------
        int
            The number of rows fed.
        """
        first_row = 0
        chunks = self.chunks()
        try:
            for chunk, w in chunks:
                update(chunk, w, first_row, self.name)
                first_row += chunk.shape[0]
                if progress is not None:
                    progress(chunk.shape[0])
        finally:
            close = getattr(chunks, "close", None)  # generators stop their readers (prefetch) at once
            if close is not None:
                close()
        return first_row

    def feed_accumulator(self, core: Any, progress: Optional[Progress] = None) -> None:
        """Add every row to the core accumulator ``core`` (a ``_core.Autocorrelation``)."""
        self.feed(core.update, progress)


class ArraySource(Source):
    """One in-memory array (or memory map), fed in views of ``chunk_rows`` rows."""

    def __init__(self, data: Any, weights: Any, chunk_rows: int | None, name: str = "data") -> None:
        self.name = name
        self.array = as_chunk(data, name=name)
        self.weights = None if weights is None else as_weights(weights, self.array.shape[0])
        self.n_features = self.array.shape[1]
        self.rows = self.array.shape[0]
        # Bounded pieces keep Ctrl-C and progress responsive; each is read in place.
        self.chunk_rows = chunk_rows or default_view_rows(self.n_features, self.array.dtype.itemsize)

    def chunks(self) -> Iterator[Chunk]:
        yield from _split(self.array, self.weights, self.chunk_rows)


class IterableSource(Source):
    """Any iterable of chunks (and optionally an iterable of per-chunk weights)."""

    def __init__(self, data: Iterable[Any], weights: Any, chunk_rows: int | None) -> None:
        if weights is not None and (is_array_like(weights) or not isinstance(weights, Iterable)):
            raise TypeError("weights: with an iterable of chunks, pass an iterable of per-chunk weight arrays")
        self._chunks = iter(data)
        self._weights = None if weights is None else iter(weights)
        self.chunk_rows = chunk_rows
        try:
            self._first = next(self._chunks)
        except StopIteration:
            raise ValueError("data: the iterable yielded no chunks") from None
        self.n_features = as_chunk(self._first, name="data: chunk 0").shape[1]

    def _validated(self) -> Iterator[Chunk]:
        index = 0
        for raw in _chain_first(self._first, self._chunks):
            chunk = as_chunk(raw, self.n_features, name=f"data: chunk {index}")
            w = None
            if self._weights is not None:
                try:
                    raw_w = next(self._weights)
                except StopIteration:
                    raise ValueError(f"weights: ran out after {index} chunks; need one weight array per chunk") from None
                w = as_weights(raw_w, chunk.shape[0], name=f"weights: chunk {index}")
            yield chunk, w
            index += 1
        if self._weights is not None and next(self._weights, None) is not None:
            raise ValueError("weights: more weight arrays than chunks")

    def chunks(self) -> Iterator[Chunk]:
        for chunk, w in prefetch(self._validated()):
            yield from _split(chunk, w, self.chunk_rows)


def _chain_first(first: Any, rest: Iterator[Any]) -> Iterator[Any]:
    yield first
    yield from rest


class DatasetSource(Source):
    """An h5py dataset or zarr array, read in slices of rows ahead of the core."""

    rows: int  # known for datasets and files

    def __init__(self, dataset: Any, chunk_rows: int | None) -> None:
        shape = tuple(dataset.shape)
        dtype = np.dtype(dataset.dtype)
        check_real_dtype(dtype, "data")
        if len(shape) != 2:
            raise ValueError(f"data: expected a 2-D dataset of shape (rows, n_features), got shape {shape}")
        self.dataset = dataset
        self.rows, self.n_features = shape
        self.chunk_rows = chunk_rows or default_chunk_rows(self.n_features, dtype.itemsize)

    def chunks(self) -> Iterator[Chunk]:
        slices = (
            np.asarray(self.dataset[start : start + self.chunk_rows]) for start in range(0, self.rows, self.chunk_rows)
        )
        for chunk in prefetch(slices):
            yield as_chunk(chunk, self.n_features, name="data"), None


def _file_name(path: str) -> str:
    """A file source's name in errors, as the core's file reader gives it: ``'path'``."""
    return f"'{path}'"


class ConvertedFileSource(Source):
    """A .npy or raw file in a format the core does not read itself (byte-swapped,
    float16, extended precision): read by :func:`read_file_chunks` in bounded
    chunks, each converted to a format the core reads."""

    rows: int  # known for files

    def __init__(self, path: str, offset: int, dtype: np.dtype, shape: Tuple[int, int], fortran_order: bool,
                 chunk_rows: int | None) -> None:
        self.path = path
        self.offset = offset
        self.dtype = dtype
        self.rows, self.n_features = shape
        self.fortran_order = fortran_order
        self.chunk_rows = chunk_rows
        self.name = _file_name(path)

    def chunks(self) -> Iterator[Chunk]:
        for chunk in prefetch(read_file_chunks(self.path, self.offset, self.dtype, self.rows, self.n_features,
                                               self.fortran_order, self.chunk_rows), depth=1):
            yield chunk, None


class FileSource(ConvertedFileSource):
    """A .npy or raw file that the C++ core reads itself at file offsets
    (:meth:`feed_accumulator`); other consumers get its rows in bounded chunks
    (:meth:`ConvertedFileSource.chunks`)."""

    def feed_accumulator(self, core: Any, progress: Optional[Progress] = None) -> None:
        """The core reads the file itself, at file offsets; its errors name the file and its row."""
        last = [0]

        def report(done: int, total: int) -> None:
            if progress is not None:
                progress(done - last[0])
            last[0] = done

        core.update_from_file(
            self.path, self.offset, self.dtype, self.rows, self.n_features, self.fortran_order,
            self.chunk_rows or 0, report,
        )


def _native_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype a chunk of ``dtype`` is converted to for the core: native byte
    order; float16 widened (exactly) to float32, extended precision rounded to float64."""
    if dtype.kind == "f" and dtype.itemsize < 4:
        return np.dtype(np.float32)
    if dtype.kind == "f" and dtype.itemsize > 8:
        return np.dtype(np.float64)
    return dtype.newbyteorder("=")


def open_regular_file(path: str, name: str = "data") -> int:
    """Open ``path`` for reading and return the descriptor, refusing anything but
    a regular file (checked on the open descriptor: the open cannot block on a
    FIFO, and the file checked is the file read)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        if exc.filename is None:
            exc.filename = path
        raise
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            as_regular_file(path, name)  # raises, naming what it is
            raise ValueError(f"{name}: {path!r} is not a regular file")  # it changed under us
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_file_chunks(path: str, offset: int, dtype: np.dtype, rows: int, n_features: int,
                     fortran_order: bool = False, chunk_rows: int | None = None) -> Iterator[np.ndarray]:
    """Yield the (rows, n_features) array stored in ``path`` at ``offset`` as chunks of rows.

    The file is opened once and read with ``readinto`` into a buffer of
    ``chunk_rows`` rows (default: about :data:`DEFAULT_CHUNK_BYTES`); each chunk
    is converted to a native format the core reads (byte-swapped in place,
    float16 widened to float32, extended precision rounded to float64) and
    yielded as a new array. A Fortran-ordered array is read one column segment
    at a time. Memory stays bounded by a chunk or two whatever the file's size;
    nothing is memory-mapped, so a file that shrinks while it is read raises
    ``ValueError("'path' ended early: the file is truncated ...")`` instead of
    killing the process with SIGBUS.
    """
    name = _file_name(path)
    dtype = np.dtype(dtype)
    out = _native_dtype(dtype)
    itemsize = dtype.itemsize
    # Same size and kind: byte-swap in place, in a fresh buffer per chunk (the
    # chunk is yielded). Otherwise convert from one reused read buffer (bool:
    # any nonzero byte is True, as NumPy reads it).
    in_place = out.itemsize == itemsize and out.kind == dtype.kind and dtype.kind != "b"
    if chunk_rows is None:
        chunk_rows = default_chunk_rows(n_features, max(itemsize, out.itemsize))
    chunk_rows = max(1, min(chunk_rows, rows))
    need = offset + rows * n_features * itemsize
    fd = open_regular_file(path)
    with os.fdopen(fd, "rb", buffering=0) as handle:

        def read_exactly(position: int, view: memoryview) -> None:
            try:
                handle.seek(position)
                while len(view):
                    got = handle.readinto(view)
                    if not got:
                        size = os.fstat(handle.fileno()).st_size
                        raise ValueError(
                            f"{name} ended early: the file is truncated (it has {size} bytes; a ({rows}, "
                            f"{n_features}) {dtype} array at offset {offset} needs {need})"
                        )
                    view = view[got:]
            except OSError as exc:
                raise OSError(exc.errno, f"cannot read: {exc.strerror}", path) from None

        scratch = None if in_place else np.empty(chunk_rows * n_features * itemsize, dtype=np.uint8)
        for start in range(0, rows, chunk_rows):
            k = min(chunk_rows, rows - start)
            nbytes = k * n_features * itemsize
            raw = np.empty(nbytes, dtype=np.uint8) if scratch is None else scratch[:nbytes]
            view = raw.data  # a memoryview of the bytes, filled in place
            if fortran_order:
                segment = k * itemsize
                for j in range(n_features):
                    read_exactly(offset + (j * rows + start) * itemsize, view[j * segment : (j + 1) * segment])
                chunk = raw.view(dtype).reshape(n_features, k).T
            else:
                read_exactly(offset + start * n_features * itemsize, view)
                chunk = raw.view(dtype).reshape(k, n_features)
            if in_place:
                if not dtype.isnative:
                    chunk = chunk.byteswap(inplace=True).view(out)
            elif dtype.kind == "b":
                chunk = chunk.view(np.uint8) != 0
            else:
                chunk = chunk.astype(out)
            yield chunk


#: The .npy format versions numpy writes (and this reader accepts).
_NPY_VERSIONS = ((1, 0), (2, 0), (3, 0))


def _machine_memory() -> Optional[int]:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def _check_file_width(path: str, n_features: int) -> None:
    """Refuse a width whose n x n state cannot fit in the machine's memory
    (a corrupt header), before anything allocates it."""
    memory = _machine_memory()
    state = 2 * 8 * n_features * n_features  # the n x n state and a result
    if memory is not None and state > memory:
        raise ValueError(
            f"data: {path!r} has n_features = {n_features}: their {n_features} x {n_features} state needs "
            f"{state} bytes, more than this machine's memory ({memory} bytes); a corrupt header?"
        )


def _read_npy_header(path: str) -> Tuple[Tuple[int, ...], bool, np.dtype, int]:
    """``(shape, fortran_order, dtype, data offset)`` of a .npy file, or ValueError naming it."""
    fd = open_regular_file(path)
    with os.fdopen(fd, "rb") as handle:
        try:
            version = np.lib.format.read_magic(handle)
        except Exception as exc:  # numpy raises ValueError; anything else is a corrupt file too
            raise ValueError(f"data: {path!r} is not a valid .npy file ({exc})") from None
        if version not in _NPY_VERSIONS:
            raise ValueError(
                f"data: {path!r} is not a valid .npy file (format version {version[0]}.{version[1]}; "
                "expected 1.0, 2.0 or 3.0)"
            )
        try:
            if version == (1, 0):
                shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(handle)
            else:  # 3.0 differs from 2.0 in the header's encoding only (UTF-8, for structured field names)
                shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(handle)
        except Exception as exc:  # ValueError, SyntaxError, tokenize.TokenError, ... from numpy's parser
            raise ValueError(f"data: {path!r} is not a valid .npy file ({type(exc).__name__}: {exc})") from None
        offset = handle.tell()
    if not isinstance(fortran_order, bool) or not isinstance(shape, tuple) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise ValueError(f"data: {path!r} is not a valid .npy file (header shape {shape!r}, "
                         f"fortran_order {fortran_order!r})")
    return shape, fortran_order, np.dtype(dtype), offset


def _npy_source(path: str, chunk_rows: int | None) -> Source:
    """Parse a .npy header; the data stay in the file."""
    shape, fortran_order, dtype, offset = _read_npy_header(path)
    check_real_dtype(dtype, f"data: {path!r}")
    if len(shape) != 2:
        raise ValueError(f"data: {path!r} holds an array of shape {shape}; expected (rows, n_features)")
    if shape[0] >= 2**62 or shape[1] >= 2**62:
        raise ValueError(f"data: {path!r} is too large: a header shape of {shape} (a corrupt header?)")
    # Python ints: a corrupt shape such as (2**61, 4) must not wrap around.
    need = offset + shape[0] * shape[1] * dtype.itemsize
    have = os.path.getsize(path)
    if have < need:
        raise ValueError(
            f"data: {path!r} is truncated: a {shape} {dtype} array needs {need} bytes, the file has {have}"
        )
    _check_file_width(path, shape[1])
    if _core_reads(dtype):
        return FileSource(path, offset, dtype, shape, bool(fortran_order), chunk_rows)
    # Byte-swapped, float16 or extended precision: read in bounded chunks,
    # converted chunk by chunk (the core does not read these formats itself).
    return ConvertedFileSource(path, offset, dtype, shape, bool(fortran_order), chunk_rows)


def _raw_source(path: str, dtype: Any, n_features: Any, chunk_rows: int | None) -> Source:
    if dtype is None or n_features is None:
        raise TypeError(f"data: {path!r} is not a .npy file; for a raw binary file pass dtype= and n_features=")
    dtype = np.dtype(dtype)
    check_real_dtype(dtype, "dtype")
    n = as_positive_int(n_features, "n_features")
    row_bytes = n * dtype.itemsize
    size = os.path.getsize(path)
    if size % row_bytes:
        raise ValueError(
            f"data: {path!r} has {size} bytes, not a whole number of rows of {n} {dtype} values "
            f"({row_bytes} bytes each): truncated, or wrong dtype/n_features"
        )
    _check_file_width(path, n)
    if not _core_reads(dtype):
        return ConvertedFileSource(path, 0, dtype, (size // row_bytes, n), False, chunk_rows)
    return FileSource(path, 0, dtype, (size // row_bytes, n), False, chunk_rows)


def open_source(
    data: Any,
    *,
    weights: Any = None,
    chunk_rows: int | None = None,
    dtype: Any = None,
    n_features: int | None = None,
) -> Source:
    """Turn ``data`` into a :class:`Source` (see the module docstring for what it may be).

    Parameters
    ----------
    data : array_like, str, os.PathLike, dataset or iterable of array_like
        The samples, as rows. PyTorch tensors (and iterables of them) are
        read through :func:`descramble._validation.as_numpy` (detached,
        copied to the CPU when on a GPU).
    weights : array_like or iterable of array_like, optional
        Per-row weights: one (N,) array for an array, an iterable of per-chunk
        arrays for an iterable. Not supported for files and datasets.
    chunk_rows : int, optional
        Rows per chunk handed to the core (default: about 32 MiB of data).
    dtype, n_features : optional
        Element type and row width of a raw binary file (both required there,
        refused elsewhere).

    Returns
    -------
    Source

    Raises
    ------
    TypeError, ValueError, OSError (FileNotFoundError, IsADirectoryError, ...)
        For sources that cannot be read, with a message naming the problem
        (and the path: FIFOs and devices are refused with ValueError).
    """
    if chunk_rows is not None:
        chunk_rows = as_positive_int(chunk_rows, "chunk_rows")
    # PyTorch tensors (CPU or GPU, requiring grad or not) as NumPy arrays.
    data, weights = as_numpy(data), as_numpy(weights)
    is_path = isinstance(data, (str, os.PathLike))
    if not is_path and (dtype is not None or n_features is not None):
        raise TypeError("dtype= and n_features= describe raw binary files; pass a path with them")
    if is_path:
        path = os.fspath(data)
        if weights is not None:
            raise TypeError("weights: not supported for file sources")
        as_regular_file(path, "data")  # a FIFO or a device would hang or never end the reader
        if dtype is None and n_features is None:
            with os.fdopen(open_regular_file(path), "rb") as handle:  # FileNotFoundError names the path
                is_npy = handle.read(6) == b"\x93NUMPY"
            if not is_npy:
                raise ValueError(
                    f"data: {path!r} is not a .npy file; for a raw binary file pass dtype= and n_features="
                )
            return _npy_source(path, chunk_rows)
        return _raw_source(path, dtype, n_features, chunk_rows)
    if is_sliceable_dataset(data):
        if weights is not None:
            raise TypeError("weights: not supported for dataset sources")
        return DatasetSource(data, chunk_rows)
    if is_array_like(data):
        return ArraySource(data, weights, chunk_rows)
    if not isinstance(data, Iterable) or isinstance(data, (str, bytes)):
        raise TypeError(
            "data: expected an array of shape (N, n_features), a path to a .npy or raw file, a dataset, "
            f"or an iterable of chunks, got {type(data).__name__}"
        )
    return IterableSource(data, weights, chunk_rows)


@contextlib.contextmanager
def progress_bar(enabled: bool, total: Optional[int], desc: str = "descramble",
                 unit: str = "rows") -> Iterator[Progress]:
    """A tqdm progress bar counting rows (or ``unit``) when ``enabled``, or a no-op.

    ``enabled`` must be a bool (TypeError otherwise: a callable or a number
    passed by mistake would otherwise count as True).
    """
    check_flag(enabled, "progress")
    if not enabled:
        yield lambda rows: None
        return
    try:
        from tqdm.auto import tqdm
    except ImportError:
        raise ImportError("progress=True needs tqdm (a dependency of descramble): pip install tqdm") from None
    with tqdm(total=total, unit=unit, unit_scale=unit == "rows", desc=desc) as bar:
        yield bar.update
