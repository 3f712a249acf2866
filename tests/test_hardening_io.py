"""Hostile files and faults around checkpoints and weights files (issue 11).

Checkpoints: bounded memory on load, every field validated, the stored
thread count not trusted, FIFOs refused, temporary files cleaned up, file
mode following the umask, the directory synced. Weights files: FIFOs
refused, MATLAB v7.3 reference DAGs and cycles read in linear time.
"""

import os
import pickle
import signal
import stat
import subprocess
import sys
import textwrap
import time
import tracemalloc
import zipfile

import numpy as np
import pytest

import descramble
from descramble.accumulator import Autocorrelation

posix = pytest.mark.skipif(os.name != "posix", reason="POSIX only")
PYTHONPATH = os.path.dirname(os.path.dirname(descramble.__file__))


def run_python(code, timeout=20):
    """Run ``code`` in a fresh interpreter; a hang fails the test instead of blocking it."""
    env = dict(os.environ, PYTHONPATH=PYTHONPATH + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout, env=env)


@pytest.fixture
def acc():
    rng = np.random.default_rng(5)
    return Autocorrelation(4).update(rng.normal(size=(50, 4)))


def write_state(path, state):
    np.savez(path, **state)
    return path


# -- item 6: memory of a hostile checkpoint -----------------------------------------------------


def add_zero_member(path, name, nbytes, header_shape=None):
    """Append a deflated member of ``nbytes`` zero bytes after a .npy header."""
    shape = header_shape if header_shape is not None else (nbytes // 8,)
    header = np.lib.format.header_data_from_array_1_0(np.zeros(0))
    header["shape"] = shape
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        with z.open(name, "w", force_zip64=True) as member:
            np.lib.format.write_array_header_1_0(member, header)
            block = bytes(1 << 20)
            for _ in range(nbytes >> 20):
                member.write(block)


def peak_bytes(call):
    tracemalloc.start()
    try:
        try:
            call()
        except ValueError as exc:
            error = exc
        else:
            error = None
        return tracemalloc.get_traced_memory()[1], error
    finally:
        tracemalloc.stop()


def test_an_extra_zero_filled_member_is_refused_without_reading_it(acc, tmp_path):
    path = tmp_path / "ckpt.npz"
    acc.save(path)
    add_zero_member(path, "padding.npy", 128 << 20)
    assert path.stat().st_size < 2 << 20
    peak, error = peak_bytes(lambda: Autocorrelation.load(path))
    assert error is not None and "unexpected member 'padding.npy'" in str(error)
    assert peak < 16 << 20, peak


def test_an_expected_member_with_trailing_zeros_is_refused_without_reading_them(acc, tmp_path):
    state = acc._state()
    del state["scatter_tril"]
    path = write_state(tmp_path / "ckpt.npz", state)
    add_zero_member(path, "scatter_tril.npy", 128 << 20, header_shape=(10,))
    peak, error = peak_bytes(lambda: Autocorrelation.load(path))
    assert error is not None and "scatter_tril" in str(error)
    assert peak < 16 << 20, peak


def test_a_member_header_claiming_a_huge_shape_is_refused_before_allocating(acc, tmp_path):
    state = acc._state()
    state["n_features"] = np.int64(2**18)  # a 2**35-element scatter
    path = write_state(tmp_path / "ckpt.npz", state)
    peak, error = peak_bytes(lambda: Autocorrelation.load(path))
    assert error is not None and "wrong size" in str(error)
    assert peak < 16 << 20, peak


@pytest.mark.parametrize("key, value, message", [
    ("format", np.arange(3), "format"),
    ("version", np.array("1"), "version"),
    ("n_features", np.float64(4.0), "n_features"),
    ("n_features", np.int64(0), "n_features"),
    ("count", np.int64(-1), "count"),
    ("count", np.array([1, 2]), "count"),
    ("weight_sum", np.float64(np.inf), "weight_sum"),
    ("weight_sum", np.float64(-1.0), "weight_sum"),
    ("shift", np.full(4, np.nan), "shift"),
    ("scatter_tril", np.ones((2, 5)), "scatter_tril"),
    ("scatter_tril", np.array(["a"] * 10), "scatter_tril"),
    ("precision", np.array("half"), "precision"),
    ("threads", np.float64(2.5), "threads"),
])
def test_every_field_is_validated(acc, tmp_path, key, value, message):
    state = acc._state()
    state[key] = value
    path = write_state(tmp_path / "ckpt.npz", state)
    with pytest.raises(ValueError, match=f"not a valid descramble.Autocorrelation checkpoint.*{message}"):
        Autocorrelation.load(path)
    with pytest.raises(ValueError, match=message):
        Autocorrelation._from_state(state)


def test_an_empty_count_with_a_nonzero_scatter_is_refused(tmp_path):
    state = Autocorrelation(3).update(np.eye(3))._state()
    state["count"] = np.int64(0)
    state["weight_sum"] = np.float64(0.0)
    path = write_state(tmp_path / "ckpt.npz", state)
    with pytest.raises(ValueError, match="count is 0"):
        Autocorrelation.load(path)


def test_missing_and_duplicate_members_are_refused(acc, tmp_path):
    state = acc._state()
    del state["shift"]
    with pytest.raises(ValueError, match="missing member 'shift'"):
        Autocorrelation.load(write_state(tmp_path / "a.npz", state))
    path = tmp_path / "b.npz"
    acc.save(path)
    with zipfile.ZipFile(path, "a") as z, pytest.warns(UserWarning, match="Duplicate"):
        z.writestr("count.npy", b"")
    with pytest.raises(ValueError, match="appears twice"):
        Autocorrelation.load(path)


def test_checkpoints_without_threads_and_precision_still_load(acc, tmp_path):
    state = acc._state()
    del state["threads"], state["precision"]
    loaded = Autocorrelation.load(write_state(tmp_path / "old.npz", state))
    np.testing.assert_array_equal(loaded.covariance(), acc.covariance())
    assert loaded.precision == "float64"


# -- item 9: the stored thread count ------------------------------------------------------------


def test_load_ignores_the_stored_threads_unless_asked(acc, tmp_path):
    state = acc._state()
    state["threads"] = np.int64(10**6)
    path = write_state(tmp_path / "ckpt.npz", state)
    loaded = Autocorrelation.load(path)
    assert loaded.threads is None  # every core, as a new accumulator
    assert Autocorrelation.load(path, threads=2).threads == 2
    Autocorrelation(4, threads=3).save(tmp_path / "three.npz")
    assert Autocorrelation.load(tmp_path / "three.npz").threads is None
    with pytest.raises(ValueError, match="threads"):
        Autocorrelation.load(path, threads=0)


def test_a_pickle_with_an_absurd_thread_count_is_refused(acc):
    state = acc._state()
    state["threads"] = 10**6
    with pytest.raises(ValueError, match="threads is 1000000"):
        Autocorrelation._from_state(state)
    state["threads"] = 3
    assert Autocorrelation._from_state(state).threads == 3
    assert pickle.loads(pickle.dumps(Autocorrelation(2, threads=5))).threads == 5


# -- item 10: FIFOs ---------------------------------------------------------------------------------


@posix
@pytest.mark.parametrize("call", [
    "descramble.Autocorrelation.load(path)",
    "descramble.io.load_weights(path)",
    "descramble.io.load_layer(path)",
])
@pytest.mark.parametrize("suffix", [".npz", ".npy", ".mat"])
def test_a_fifo_is_refused_not_waited_on(tmp_path, call, suffix):
    fifo = tmp_path / f"pipe{suffix}"
    os.mkfifo(fifo)
    result = run_python(f"""
        import descramble, descramble.io
        path = {str(fifo)!r}
        try:
            {call}
        except ValueError as exc:
            print("ValueError:", exc)
    """, timeout=20)
    assert result.returncode == 0, result.stderr
    assert "ValueError:" in result.stdout and "FIFO" in result.stdout, result.stdout


# -- item 7: temporary files, mode, directory sync --------------------------------------------


@posix
@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_the_saved_file_mode_follows_the_umask(acc, tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        acc.save(tmp_path / "ckpt.npz")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "ckpt.npz").stat().st_mode) == mode


def test_a_failing_save_leaves_no_temporary_file(acc, tmp_path, monkeypatch):
    (tmp_path / "target").mkdir()  # os.replace over a directory fails
    with pytest.raises(OSError):
        acc.save(tmp_path / "target")
    assert os.listdir(tmp_path) == ["target"]

    def failing_fsync(fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError):
        acc.save(tmp_path / "ckpt.npz")
    assert os.listdir(tmp_path) == ["target"]


def dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@posix
def test_a_stale_temporary_file_of_a_dead_process_is_removed_by_the_next_save(acc, tmp_path):
    stale = tmp_path / f".ckpt.npz.{dead_pid()}.0badf00d.descramble-tmp"
    stale.write_bytes(b"PK partial")
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = tmp_path / f".ckpt.npz.{sleeper.pid}.0badf00d.descramble-tmp"
        live.write_bytes(b"PK in progress")
        other = tmp_path / f".other.npz.{dead_pid()}.0badf00d.descramble-tmp"
        other.write_bytes(b"PK another target")
        acc.save(tmp_path / "ckpt.npz")
        assert sorted(os.listdir(tmp_path)) == sorted(["ckpt.npz", live.name, other.name])
    finally:
        sleeper.kill()
        sleeper.wait()


@posix
def test_a_save_killed_midway_is_cleaned_up_by_the_next_save(acc, tmp_path):
    target = tmp_path / "ckpt.npz"
    result = run_python(f"""
        import os, signal
        import numpy as np
        import descramble

        def killed(handle, **arrays):
            handle.write(b"PK partial")
            handle.flush()
            os.kill(os.getpid(), signal.SIGKILL)

        np.savez = killed
        descramble.Autocorrelation(3).save({str(target)!r})
    """)
    assert result.returncode == -signal.SIGKILL
    left = os.listdir(tmp_path)
    assert len(left) == 1 and left[0].endswith(".descramble-tmp"), left
    acc.save(target)
    assert os.listdir(tmp_path) == ["ckpt.npz"]


@posix
def test_save_syncs_the_directory_after_the_rename(acc, tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync

    def recording_fsync(fd):
        synced.append(stat.S_ISDIR(os.fstat(fd).st_mode))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    acc.save(tmp_path / "ckpt.npz")
    assert synced == [False, True]  # the file, then its directory


def test_save_never_follows_a_planted_temporary_symlink(acc, tmp_path):
    # temporary names are unpredictable and opened with O_EXCL; the victim is never written
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep")
    acc.save(tmp_path / "ckpt.npz")
    assert victim.read_bytes() == b"keep"


# -- item 5: MATLAB v7.3 reference DAGs and cycles --------------------------------------------


def write_mat73_chain(path, depth, fanout, cycle=False):
    """A v7.3-like file: cell ``c`` whose cells all reference the next level's cell, ``depth`` times."""
    h5py = pytest.importorskip("h5py")
    with h5py.File(path, "w", userblock_size=512) as f:
        refs = f.create_group("#refs#")
        leaf = refs.create_dataset("leaf", data=np.arange(6.0).reshape(2, 3))
        leaf.attrs["MATLAB_class"] = np.bytes_("double")
        target = leaf
        levels = []
        for level in range(depth):
            cell = refs.create_dataset(f"L{level}", shape=(fanout, 1), dtype=h5py.ref_dtype)
            cell[...] = np.array([[target.ref]] * fanout, dtype=h5py.ref_dtype)
            cell.attrs["MATLAB_class"] = np.bytes_("cell")
            levels.append(cell)
            target = cell
        top = f.create_dataset("c", shape=(fanout, 1), dtype=h5py.ref_dtype)
        top[...] = np.array([[target.ref]] * fanout, dtype=h5py.ref_dtype)
        top.attrs["MATLAB_class"] = np.bytes_("cell")
        if cycle:  # the deepest level references the top: c -> L(d-1) -> ... -> L0 -> c
            levels[0][...] = np.array([[top.ref]] * fanout, dtype=h5py.ref_dtype)
    with open(path, "r+b") as fh:
        fh.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: test HDF5 schema 1.00 .")


def test_a_mat73_reference_dag_is_read_in_linear_time(tmp_path):
    path = tmp_path / "dag.mat"
    write_mat73_chain(path, depth=40, fanout=2)  # 2**41 paths to the leaf, 42 objects
    assert path.stat().st_size < 64 << 10
    start = time.perf_counter()
    out = descramble.io.load_weights(path)
    assert time.perf_counter() - start < 1.0
    assert len(out) == 1  # the leaf, once, under the first name that reaches it
    (name, arr), = out.items()
    assert name == "c{1,1}" + "{1,1}" * 40
    np.testing.assert_array_equal(arr, np.arange(6.0).reshape(2, 3).T)


def test_a_mat73_reference_cycle_terminates(tmp_path):
    path = tmp_path / "cycle.mat"
    write_mat73_chain(path, depth=3, fanout=3, cycle=True)
    result = run_python(f"""
        import descramble.io
        try:
            print(sorted(descramble.io.load_weights({str(path)!r})))
        except ValueError as exc:
            print("ValueError:", exc)
    """, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() in ("[]",) or result.stdout.startswith("ValueError:"), result.stdout


def test_a_mat73_hard_link_cycle_terminates(tmp_path):
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "loop.mat"
    with h5py.File(path, "w", userblock_size=512) as f:
        g = f.create_group("s")
        g.attrs["MATLAB_class"] = np.bytes_("struct")
        g.create_dataset("W", data=np.ones((2, 3)))
        g["self"] = g  # a struct containing itself
    result = run_python(f"""
        import descramble.io
        try:
            print(sorted(descramble.io.load_weights({str(path)!r})))
        except ValueError as exc:
            print("ValueError:", exc)
    """, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "s.W" in result.stdout or result.stdout.startswith("ValueError:"), result.stdout


def test_a_mat73_nesting_deeper_than_the_bound_is_refused(tmp_path):
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "deep.mat"
    with h5py.File(path, "w", userblock_size=512) as f:
        g = f.create_group("s")
        for _ in range(300):
            g.attrs["MATLAB_class"] = np.bytes_("struct")
            g = g.create_group("x")
        g.create_dataset("W", data=np.ones((2, 3)))
    with pytest.raises(ValueError, match="nested deeper than"):
        descramble.io.load_weights(path)


@posix
def test_save_leaves_the_temporary_of_a_save_to_a_longer_path_alone(acc, tmp_path):
    # A live save to "ckpt.npz.<n>.npz" (this process) has a temporary that starts like
    # "ckpt.npz"'s, followed by a number: it is not a stale temporary of "ckpt.npz".
    other = tmp_path / f".ckpt.npz.{dead_pid()}.npz.{os.getpid()}.0badf00d.descramble-tmp"
    other.write_bytes(b"PK in progress")
    acc.save(tmp_path / "ckpt.npz")
    assert sorted(os.listdir(tmp_path)) == sorted(["ckpt.npz", other.name])


def test_save_to_a_long_non_ascii_name(acc, tmp_path):
    # 80 three-byte characters (240 bytes): a valid name; its temporary must fit 255 bytes too.
    target = tmp_path / ("\u00e9\u4e00" * 40 + ".npz").replace("\u00e9", "\u4e01")
    try:
        target.write_bytes(b"")
        target.unlink()
    except OSError:
        pytest.skip("the file system refuses this name")
    acc.save(target)
    assert Autocorrelation.load(target).count == acc.count
    assert os.listdir(tmp_path) == [target.name]


def test_mat73_top_level_variables_linked_to_one_dataset_are_all_read(tmp_path):
    # The once-per-object walk must not drop a top-level variable the user names.
    h5py = pytest.importorskip("h5py")
    from descramble.io.matlab import read_mat73_

    path = tmp_path / "linked.mat"
    with h5py.File(path, "w", userblock_size=512) as f:
        d = f.create_dataset("W1", data=np.arange(12.0).reshape(3, 4))
        d.attrs["MATLAB_class"] = np.bytes_("double")
        f["W2"] = d  # a hard link
    arrays = read_mat73_(str(path))
    assert sorted(arrays) == ["W1", "W2"]
    np.testing.assert_array_equal(arrays["W1"], arrays["W2"])
