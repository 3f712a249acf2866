"""descramble.io: weights files in every format, and picking a layer out of them."""

import os
import struct
import sys
from collections import OrderedDict

import numpy as np
import pytest

from descramble.io import SUFFIXES, LayerChoiceError, load_activation, load_layer, load_weights


def _need(module):
    return pytest.importorskip(module, reason=f"{module} is not installed (optional dependency)")


@pytest.fixture
def rng():
    return np.random.default_rng(61)


def assert_same(loaded, expected):
    """Same names in the same order, arrays equal bit for bit, same dtypes and shapes."""
    assert list(loaded) == list(expected)
    for name, value in expected.items():
        assert loaded[name].dtype == value.dtype, name
        assert loaded[name].shape == value.shape, name
        np.testing.assert_array_equal(loaded[name], value, err_msg=name)


# --------------------------------------------------------------------------
# writers for MATLAB v7.3 (what MATLAB's save -v7.3 produces) and ONNX
# --------------------------------------------------------------------------

MAT73_HEADER = (b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jun  1 12:00:00 2026 "
                b"HDF5 schema 1.00 .")


class Cell:
    """A MATLAB cell array of the given MATLAB shape (elements in column-major order)."""

    def __init__(self, shape, elements):
        self.shape, self.elements = shape, elements


class StructArray:
    """A MATLAB struct array: MATLAB shape, fields, one dict per element (column-major)."""

    def __init__(self, shape, elements):
        self.shape, self.elements = shape, elements


def _mat_class(arr):
    if arr.dtype == np.bool_:
        return "logical"
    return {"f8": "double", "f4": "single", "c16": "double"}.get(arr.dtype.str[1:], arr.dtype.name)


def _write73(h5py, f, group, name, value):
    """Write one MATLAB value the way MATLAB does: column-major (transposed), MATLAB_class attrs."""
    if isinstance(value, dict):
        g = group.create_group(name)
        g.attrs["MATLAB_class"] = np.bytes_("struct")
        for field, item in value.items():
            _write73(h5py, f, g, field, item)
        return g
    if isinstance(value, StructArray):
        g = group.create_group(name)
        g.attrs["MATLAB_class"] = np.bytes_("struct")
        for field in value.elements[0]:
            refs = [_write73(h5py, f, f.require_group("#refs#"), f"{name}_{field}_{i}", e[field]).ref
                    for i, e in enumerate(value.elements)]
            # column-major elements, stored transposed: reverse the MATLAB shape
            g.create_dataset(field, data=np.array(refs, dtype=object).reshape(value.shape[::-1]),
                             dtype=h5py.ref_dtype)
        return g
    if isinstance(value, Cell):
        refs = [_write73(h5py, f, f.require_group("#refs#"), f"{name}_{i}", e).ref
                for i, e in enumerate(value.elements)]
        d = group.create_dataset(name, data=np.array(refs, dtype=object).reshape(value.shape[::-1]),
                                 dtype=h5py.ref_dtype)
        d.attrs["MATLAB_class"] = np.bytes_("cell")
        return d
    if isinstance(value, str):
        d = group.create_dataset(name, data=np.array([[ord(c)] for c in value], dtype=np.uint16))
        d.attrs["MATLAB_class"] = np.bytes_("char")
        return d
    arr = np.asarray(value)
    stored = arr.T  # MATLAB writes column-major
    if arr.dtype.kind == "c":
        comp = np.empty(stored.shape, dtype=[("real", "<f8"), ("imag", "<f8")])
        comp["real"], comp["imag"] = stored.real, stored.imag
        stored = comp
    elif arr.dtype == np.bool_:
        stored = stored.astype(np.uint8)
    d = group.create_dataset(name, data=stored)
    d.attrs["MATLAB_class"] = np.bytes_(_mat_class(arr))
    return d


def write_mat73(path, variables, matlab_header=True):
    h5py = _need("h5py")
    with h5py.File(path, "w", userblock_size=512 if matlab_header else 0) as f:
        for name, value in variables.items():
            _write73(h5py, f, f, name, value)
    if matlab_header:
        header = MAT73_HEADER.ljust(116, b" ") + b" " * 8 + b"\x00\x02" + b"IM"
        with open(path, "r+b") as fh:
            fh.write(header)


def write_sparse73(path, name, dense):
    """A MATLAB v7.3 sparse matrix: CSC arrays data/ir/jc, MATLAB_sparse = rows."""
    h5py = _need("h5py")
    cols, rows = np.nonzero(dense.T)  # column-major order of the non-zeros
    jc = np.concatenate([[0], np.cumsum(np.bincount(cols, minlength=dense.shape[1]))]).astype(np.uint64)
    with h5py.File(path, "w", userblock_size=512) as f:
        g = f.create_group(name)
        g.attrs["MATLAB_class"] = np.bytes_("double")
        g.attrs["MATLAB_sparse"] = np.uint64(dense.shape[0])
        g.create_dataset("data", data=dense[rows, cols])
        g.create_dataset("ir", data=rows.astype(np.uint64))
        g.create_dataset("jc", data=jc)
    with open(path, "r+b") as fh:
        fh.write(MAT73_HEADER.ljust(116, b" ") + b" " * 8 + b"\x00\x02" + b"IM")


def write_onnx(path, initializers, constants=()):
    """A MatMul + Add graph whose initializers are ``initializers`` (name -> array), in order."""
    onnx = _need("onnx")
    from onnx import TensorProto, helper, numpy_helper

    inits = [numpy_helper.from_array(arr, name) for name, arr in initializers.items()]
    nodes = [helper.make_node("Constant", [], [name], value=numpy_helper.from_array(arr, name))
             for name, arr in constants]
    names = list(initializers)
    nodes += [helper.make_node("MatMul", ["x", names[0]], ["h"]),
              helper.make_node("Add", ["h", names[1]], ["y"])]
    n_in, n_out = initializers[names[0]].shape
    graph = helper.make_graph(
        nodes, "layer",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, n_in])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, n_out])],
        initializer=inits,
    )
    model = helper.make_model(graph)
    onnx.checker.check_model(model)
    onnx.save(model, path)


# --------------------------------------------------------------------------
# NumPy
# --------------------------------------------------------------------------


def test_npy_one_entry_named_after_the_stem(tmp_path, rng):
    W = rng.standard_normal((5, 7)).astype(np.float32)
    np.save(tmp_path / "layer3.npy", W)
    assert_same(load_weights(tmp_path / "layer3.npy"), {"layer3": W})
    assert_same(load_weights(str(tmp_path / "layer3.npy")), {"layer3": W})


def test_npz_every_array_in_file_order(tmp_path, rng):
    arrays = OrderedDict(
        z=rng.standard_normal((4, 3)),
        a=rng.integers(-9, 9, size=7).astype(np.int16),
        m=rng.standard_normal((2, 2, 2)).astype(np.float16),
        flags=np.array([True, False]),
        c=np.array([1 + 2j, -3j]),
    )
    np.savez(tmp_path / "w.npz", **arrays)
    assert_same(load_weights(tmp_path / "w.npz"), arrays)
    np.savez_compressed(tmp_path / "wc.npz", **arrays)
    assert_same(load_weights(tmp_path / "wc.npz"), arrays)


def test_npz_skips_strings_and_object_arrays_without_unpickling(tmp_path, rng):
    W = rng.standard_normal((3, 2))
    obj = np.empty(1, dtype=object)
    obj[0] = {"never": "unpickled"}
    np.savez(tmp_path / "w.npz", labels=np.array(["a", "b"]), W=W, meta=obj)
    assert_same(load_weights(tmp_path / "w.npz"), {"W": W})


def test_npy_object_array_is_refused(tmp_path):
    obj = np.empty(2, dtype=object)
    np.save(tmp_path / "o.npy", obj, allow_pickle=True)
    with pytest.raises(ValueError, match=r"o\.npy: holds Python objects"):
        load_weights(tmp_path / "o.npy")


def test_npz_and_npy_swapped_suffixes(tmp_path):
    with open(tmp_path / "really_npz.npy", "wb") as fh:
        np.savez(fh, a=np.ones(2))
    with pytest.raises(ValueError, match=r"really_npz\.npy: not a valid NumPy \.npy file \(it is a zip"):
        load_weights(tmp_path / "really_npz.npy")
    with open(tmp_path / "really_npy.npz", "wb") as fh:
        np.save(fh, np.ones(2))
    with pytest.raises(ValueError, match=r"really_npy\.npz: not a valid NumPy \.npz file \(it is a single"):
        load_weights(tmp_path / "really_npy.npz")


# --------------------------------------------------------------------------
# PyTorch
# --------------------------------------------------------------------------


def _mlp(torch):
    torch.manual_seed(0)
    return torch.nn.Sequential(OrderedDict(
        fc1=torch.nn.Linear(16, 32), act=torch.nn.ReLU(), fc2=torch.nn.Linear(32, 8),
    ))


@pytest.mark.parametrize("suffix", [".pt", ".pth"])
def test_torch_state_dict(tmp_path, suffix):
    torch = _need("torch")
    sd = _mlp(torch).state_dict()
    torch.save(sd, tmp_path / f"model{suffix}")
    expected = {k: v.numpy() for k, v in sd.items()}
    assert list(expected) == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    assert_same(load_weights(tmp_path / f"model{suffix}"), expected)


def test_torch_nested_dicts_and_lists_flattened_non_tensors_skipped(tmp_path):
    torch = _need("torch")
    t = [torch.arange(6.0).reshape(2, 3) + i for i in range(4)]
    obj = {"encoder": {"fc.weight": t[0], "fc.bias": t[1][0]}, "epoch": 3, "note": "x",
           "none": None, "layers": [t[2], (t[3], 1.5)]}
    torch.save(obj, tmp_path / "nested.pt")
    expected = {"encoder.fc.weight": t[0].numpy(), "encoder.fc.bias": t[1][0].numpy(),
                "layers.0": t[2].numpy(), "layers.1.0": t[3].numpy()}
    assert_same(load_weights(tmp_path / "nested.pt"), expected)


@pytest.mark.parametrize("key", ["state_dict", "model_state_dict"])
def test_torch_checkpoint_layout_reads_only_the_model(tmp_path, key):
    torch = _need("torch")
    model = _mlp(torch)
    # the layout of an Adam optimizer's state_dict(): tensors the loader must not pick up
    opt = {"state": {i: {"step": torch.tensor(1.0), "exp_avg": torch.zeros_like(p)}
                     for i, p in enumerate(model.parameters())},
           "param_groups": [{"lr": 1e-3, "params": [0, 1, 2, 3]}]}
    torch.save({"epoch": 7, key: model.state_dict(), "optimizer_state_dict": opt,
                "loss": torch.tensor(0.5)}, tmp_path / "ckpt.pt")
    expected = {k: v.numpy() for k, v in model.state_dict().items()}
    assert_same(load_weights(tmp_path / "ckpt.pt"), expected)


def test_torch_dtypes(tmp_path):
    torch = _need("torch")
    values = torch.tensor([[1.5, -2.25], [3.0, 0.0078125]])
    torch.save({"bf": values.bfloat16(), "half": values.half(), "i64": torch.arange(3),
                "grad": values.clone().requires_grad_()}, tmp_path / "d.pt")
    loaded = load_weights(tmp_path / "d.pt")
    assert loaded["bf"].dtype == np.float32  # NumPy has no bfloat16; these values are exact in it
    np.testing.assert_array_equal(loaded["bf"], values.numpy())
    assert loaded["half"].dtype == np.float16 and loaded["i64"].dtype == np.int64
    np.testing.assert_array_equal(loaded["grad"], values.numpy())


def test_torch_single_tensor_named_after_the_stem(tmp_path):
    torch = _need("torch")
    t = torch.randn(4, 5, generator=torch.Generator().manual_seed(1))
    torch.save(t, tmp_path / "W_out.pt")
    assert_same(load_weights(tmp_path / "W_out.pt"), {"W_out": t.numpy()})


class Pickled(object):
    pass


@pytest.mark.parametrize("what", ["module", "custom object", "numpy array"])
def test_torch_full_pickle_is_refused_under_weights_only(tmp_path, what):
    torch = _need("torch")
    obj = {"module": _mlp(torch), "custom object": {"w": torch.ones(2), "extra": Pickled()},
           "numpy array": {"w": np.ones(3)}}[what]
    torch.save(obj, tmp_path / "full.pt")
    with pytest.raises(ValueError, match=r"full\.pt: PyTorch refused to load it with weights_only=True "
                                         r"\(it needs [\w.]+\).*torch\.save\(model\.state_dict\(\), path\)"):
        load_weights(tmp_path / "full.pt")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_torchscript_archive_is_refused(tmp_path):
    torch = _need("torch")
    torch.jit.save(torch.jit.script(torch.nn.Linear(3, 2)), tmp_path / "ts.pt")
    with pytest.raises(ValueError, match=r"ts\.pt: a TorchScript archive"):
        load_weights(tmp_path / "ts.pt")


# --------------------------------------------------------------------------
# MATLAB v5 (scipy.io)
# --------------------------------------------------------------------------


def test_mat_v5_matrices_structs_cells(tmp_path, rng):
    sio = _need("scipy.io")
    W1, W2 = rng.standard_normal((3, 4)), rng.standard_normal((2, 3))
    b1 = rng.standard_normal((3, 1))
    iw = np.empty((1, 2), dtype=object)
    iw[0, 0], iw[0, 1] = W1, W2
    sio.savemat(tmp_path / "net.mat", {
        "W1": W1, "b1": b1, "note": "a string, skipped",
        "net": {"W": W2, "b": np.arange(2.0), "name": "mlp", "IW": iw, "layers": np.int32([[1, 2]])},
        "single": W1.astype(np.float32),
    })
    expected = {
        "W1": W1, "b1": b1,
        "net.W": W2, "net.b": np.arange(2.0)[None, :],  # savemat writes 1-D arrays as rows
        "net.IW{1,1}": W1, "net.IW{1,2}": W2, "net.layers": np.int32([[1, 2]]),
        "single": W1.astype(np.float32),
    }
    assert_same(load_weights(tmp_path / "net.mat"), expected)


def test_mat_v5_struct_array_and_sparse(tmp_path, rng):
    sio = _need("scipy.io")
    sparse = _need("scipy.sparse")
    sa = np.zeros((1, 2), dtype=[("W", "O"), ("b", "O")])
    Ws = [rng.standard_normal((2, 3)) for _ in range(2)]
    for j in range(2):
        sa[0, j]["W"], sa[0, j]["b"] = Ws[j], np.full((2, 1), float(j))
    dense = np.array([[0.0, 1.5, 0.0], [2.0, 0.0, -3.0]])
    sio.savemat(tmp_path / "sa.mat", {"layer": sa, "S": sparse.csc_matrix(dense)})
    expected = {"layer(1,1).W": Ws[0], "layer(1,1).b": np.zeros((2, 1)),
                "layer(1,2).W": Ws[1], "layer(1,2).b": np.ones((2, 1)), "S": dense}
    assert_same(load_weights(tmp_path / "sa.mat"), expected)


def write_v5_double_as_uint8(path, name, M):
    """A v5 MAT-file whose double matrix is stored as miUINT8, as MATLAB's save does for small integers."""
    M = np.asarray(M, dtype=np.uint8)
    header = b"MATLAB 5.0 MAT-file, written by hand".ljust(116, b" ") + b"\0" * 8 + b"\x00\x01IM"

    def element(dtype, payload):
        return struct.pack("<II", dtype, len(payload)) + payload + b"\0" * (-len(payload) % 8)

    body = (element(6, struct.pack("<II", 6, 0))  # array flags: class mxDOUBLE_CLASS
            + element(5, struct.pack("<ii", *M.shape))  # dimensions
            + element(1, name.encode())  # name
            + element(2, M.tobytes(order="F")))  # real part, data type miUINT8
    with open(path, "wb") as fh:
        fh.write(header + element(14, body))  # one miMATRIX element


def test_mat_v5_keeps_matlab_class_and_complex_numbers(tmp_path):
    sio = _need("scipy.io")
    write_v5_double_as_uint8(tmp_path / "ints.mat", "W", [[1, 2, 3], [4, 5, 6]])
    assert sio.loadmat(tmp_path / "ints.mat")["W"].dtype == np.uint8  # the stored type
    assert_same(load_weights(tmp_path / "ints.mat"), {"W": np.array([[1.0, 2, 3], [4, 5, 6]])})  # MATLAB's
    sio.savemat(tmp_path / "c.mat", {"Z": np.array([[1 + 2j, 3.0]]), "W": np.eye(2)})
    loaded = load_weights(tmp_path / "c.mat")
    np.testing.assert_array_equal(loaded["Z"], [[1 + 2j, 3.0]])  # imaginary parts kept
    np.testing.assert_array_equal(loaded["W"], np.eye(2))


def test_mat_v4(tmp_path, rng):
    sio = _need("scipy.io")
    W = rng.standard_normal((3, 5))
    sio.savemat(tmp_path / "v4.mat", {"W": W}, format="4")
    assert_same(load_weights(tmp_path / "v4.mat"), {"W": W})


# --------------------------------------------------------------------------
# MATLAB v7.3 (HDF5)
# --------------------------------------------------------------------------


def test_mat73_gives_matlab_shapes(tmp_path, rng):
    h5py = _need("h5py")
    W = rng.standard_normal((3, 4))
    b = rng.standard_normal((3, 1))
    T = rng.standard_normal((2, 3, 4))
    variables = {
        "W": W, "b": b, "T": T, "single": W.astype(np.float32), "mask": W > 0,
        "counts": np.arange(6, dtype=np.int32).reshape(2, 3), "Z": W + 1j * W[::-1],
        "label": "skipped",
        "net": {"W": W[:2], "b": b[:2], "name": "skipped too", "inner": {"V": T[0]}},
    }
    write_mat73(tmp_path / "v73.mat", variables)
    with h5py.File(tmp_path / "v73.mat", "r") as f:  # stored transposed, as MATLAB does
        assert f["W"].shape == (4, 3) and f["T"].shape == (4, 3, 2)
    with open(tmp_path / "v73.mat", "rb") as fh:
        assert fh.read(10) == b"MATLAB 7.3"
    expected = {
        "T": T, "W": W, "Z": W + 1j * W[::-1], "b": b, "counts": np.arange(6, dtype=np.int32).reshape(2, 3),
        "mask": W > 0, "net.W": W[:2], "net.b": b[:2], "net.inner.V": T[0],
        "single": W.astype(np.float32),
    }
    loaded = load_weights(tmp_path / "v73.mat")
    # HDF5 lists a group's members by name (MATLAB does not record creation order)
    assert list(loaded) == sorted(loaded, key=lambda k: k.split(".")[0])
    assert_same(dict(sorted(loaded.items())), dict(sorted(expected.items())))


def test_mat73_cells_and_struct_arrays_follow_references(tmp_path, rng):
    _need("h5py")
    A, B, C = (rng.standard_normal((2, 3)) for _ in range(3))
    write_mat73(tmp_path / "c.mat", {
        "IW": Cell((2, 1), [A, B]),
        "mixed": Cell((1, 3), [C, "text", Cell((1, 1), [A])]),
        "layer": StructArray((1, 2), [{"W": A, "b": np.ones((2, 1))}, {"W": B, "b": np.zeros((2, 1))}]),
    })
    loaded = load_weights(tmp_path / "c.mat")
    expected = {"IW{1,1}": A, "IW{2,1}": B, "layer(1,1).W": A, "layer(1,2).W": B,
                "layer(1,1).b": np.ones((2, 1)), "layer(1,2).b": np.zeros((2, 1)),
                "mixed{1,1}": C, "mixed{1,3}{1,1}": A}
    assert not any(k.startswith("#") for k in loaded)
    assert_same(dict(sorted(loaded.items())), dict(sorted(expected.items())))


def test_mat73_sparse(tmp_path):
    _need("h5py")
    dense = np.array([[0.0, 1.5, 0.0, 0.0], [2.0, 0.0, -3.0, 0.0], [0.0, 4.0, 5.0, 0.0]])
    write_sparse73(tmp_path / "s.mat", "S", dense)
    assert_same(load_weights(tmp_path / "s.mat"), {"S": dense})


def test_mat_plain_hdf5_without_matlab_header(tmp_path, rng):
    _need("h5py")
    W = rng.standard_normal((3, 2))
    write_mat73(tmp_path / "plain.mat", {"W": W}, matlab_header=False)
    assert_same(load_weights(tmp_path / "plain.mat"), {"W": W})


# --------------------------------------------------------------------------
# ONNX
# --------------------------------------------------------------------------


def test_onnx_initializers_in_graph_order(tmp_path, rng):
    _need("onnx")
    inits = OrderedDict(
        W=rng.standard_normal((16, 8)).astype(np.float32),
        b=rng.standard_normal(8).astype(np.float32),
        shape=np.array([-1, 8], dtype=np.int64),
        a_double=rng.standard_normal((2, 2)),
    )
    const = rng.standard_normal((3, 3)).astype(np.float32)
    write_onnx(tmp_path / "m.onnx", inits, constants=[("C", const)])
    assert_same(load_weights(tmp_path / "m.onnx"), {**inits, "C": const})


# --------------------------------------------------------------------------
# load_weights: errors
# --------------------------------------------------------------------------


def test_path_type():
    with pytest.raises(TypeError, match="path: expected a str or os.PathLike, got int"):
        load_weights(3)


@pytest.mark.parametrize("suffix", list(SUFFIXES))
def test_missing_file(tmp_path, suffix):
    path = tmp_path / f"nope{suffix}"
    with pytest.raises(FileNotFoundError, match=f"weights file not found: '.*nope\\{suffix}'"):
        load_weights(path)


@pytest.mark.parametrize("name", ["model.h5", "model", "model.safetensors"])
def test_unknown_suffix(tmp_path, name):
    (tmp_path / name).write_bytes(b"x")
    with pytest.raises(ValueError, match=f"{name}: unknown weights file suffix .*supported: "
                                         r"\.npy, \.npz, \.pt, \.pth, \.mat, \.onnx"):
        load_weights(tmp_path / name)


def test_directory(tmp_path):
    (tmp_path / "d.npz").mkdir()
    with pytest.raises(ValueError, match=r"d\.npz: is a directory"):
        load_weights(tmp_path / "d.npz")


def _valid_file(kind, path):
    """Write a valid file of ``kind`` to ``path``; return its bytes."""
    if kind == "npy":
        np.save(path, np.arange(100.0))
    elif kind == "npz":
        np.savez(path, a=np.arange(100.0), b=np.ones(50))
    elif kind == "pt":
        torch = _need("torch")
        torch.save({"w": torch.arange(100.0)}, path)
    elif kind == "mat5":
        _need("scipy.io").savemat(path, {"W": np.arange(100.0).reshape(10, 10)})
    elif kind == "mat73":
        write_mat73(path, {"W": np.arange(100.0).reshape(10, 10)})
    elif kind == "onnx":
        write_onnx(path, {"W": np.ones((4, 3), np.float32), "b": np.ones(3, np.float32)})
    with open(path, "rb") as fh:
        return fh.read()


CORRUPTIONS = {
    "garbage": lambda data: b"this is not a weights file at all " * 8,
    "empty": lambda data: b"",
    "truncated": lambda data: data[: len(data) * 2 // 3],
}
FORMATS = {"npy": (".npy", "NumPy .npy"), "npz": (".npz", "NumPy .npz"), "pt": (".pt", "PyTorch"),
           "mat5": (".mat", "MATLAB"), "mat73": (".mat", "MATLAB v7.3"), "onnx": (".onnx", "ONNX")}


@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
@pytest.mark.parametrize("kind", list(FORMATS))
def test_corrupted_file(tmp_path, kind, corruption):
    suffix, fmt = FORMATS[kind]
    path = tmp_path / f"bad{suffix}"
    data = _valid_file(kind, path)
    if kind == "mat73" and corruption != "truncated":
        data = data[:512]  # a MATLAB 7.3 header and nothing behind it
    else:
        data = CORRUPTIONS[corruption](data)
    path.write_bytes(data)
    with pytest.raises(ValueError, match=f"bad\\{suffix}: not a valid {fmt}") as info:
        load_weights(path)
    assert type(info.value) is ValueError  # not an UnpicklingError, BadZipFile, KeyError, ...


@pytest.mark.parametrize("kind, module, package", [
    ("pt", "torch", "torch"), ("mat5", "scipy.io", "scipy"), ("mat73", "h5py", "h5py"),
    ("onnx", "onnx", "onnx"),
])
def test_missing_optional_dependency(tmp_path, monkeypatch, kind, module, package):
    suffix = FORMATS[kind][0]
    path = tmp_path / f"w{suffix}"
    _valid_file(kind, path)
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` fail
    # The pip package, not an extra: the package may come from a clone, not an index.
    with pytest.raises(ImportError, match=f"pip install {package}$"):
        load_weights(path)


# --------------------------------------------------------------------------
# load_layer
# --------------------------------------------------------------------------


def _two_layers(rng):
    return {"fc1": (rng.standard_normal((32, 16)), rng.standard_normal(32)),
            "fc2": (rng.standard_normal((8, 32)), rng.standard_normal(8))}


def _write_network(kind, tmp_path, layers):
    """The same two layers in each format; returns (path, {layer argument: W entry name})."""
    if kind == "npz":
        path = tmp_path / "net.npz"
        np.savez(path, **{f"{n}.{p}": a for n, (W, b) in layers.items() for p, a in (("weight", W), ("bias", b))})
        return path, {"fc1": "fc1.weight", "fc2": "fc2.weight"}
    if kind == "pt":
        torch = _need("torch")
        path = tmp_path / "net.pt"
        torch.save(OrderedDict((f"{n}.{p}", torch.from_numpy(a)) for n, (W, b) in layers.items()
                               for p, a in (("weight", W), ("bias", b))), path)
        return path, {"fc1": "fc1.weight", "fc2": "fc2.weight"}
    if kind in ("mat5", "mat73"):
        path = tmp_path / "net.mat"
        variables = {}
        for i, (W, b) in enumerate(layers.values(), 1):
            variables[f"W{i}"], variables[f"b{i}"] = W, b[:, None]
        if kind == "mat5":
            _need("scipy.io").savemat(path, variables)
        else:
            write_mat73(path, variables)
        return path, {"W1": "W1", "W2": "W2"}
    if kind == "onnx":
        path = tmp_path / "net.onnx"
        onnx = _need("onnx")
        from onnx import TensorProto, helper, numpy_helper
        inits = [numpy_helper.from_array(a, f"{n}.{p}") for n, (W, b) in layers.items()
                 for p, a in (("weight", W), ("bias", b))]
        nodes = [helper.make_node("Gemm", ["x", "fc1.weight", "fc1.bias"], ["h"], transB=1),
                 helper.make_node("Relu", ["h"], ["r"]),
                 helper.make_node("Gemm", ["r", "fc2.weight", "fc2.bias"], ["y"], transB=1)]
        graph = helper.make_graph(nodes, "mlp",
                                  [helper.make_tensor_value_info("x", TensorProto.DOUBLE, [None, 16])],
                                  [helper.make_tensor_value_info("y", TensorProto.DOUBLE, [None, 8])],
                                  initializer=inits)
        onnx.save(helper.make_model(graph), path)
        return path, {"fc1": "fc1.weight", "fc2": "fc2.weight"}
    raise AssertionError(kind)


NETWORK_KINDS = ["npz", "pt", "mat5", "mat73", "onnx"]


@pytest.mark.parametrize("kind", NETWORK_KINDS)
def test_load_layer_each_format(tmp_path, rng, kind):
    layers = _two_layers(rng)
    path, names = _write_network(kind, tmp_path, layers)
    for (arg, entry), (W, b) in zip(names.items(), layers.values()):
        W_got, b_got, name = load_layer(path, arg)
        assert name == entry
        assert W_got.dtype == np.float64 and W_got.flags.c_contiguous and b_got.dtype == np.float64
        np.testing.assert_array_equal(W_got, W)
        np.testing.assert_array_equal(b_got, b)
        # the full entry name works too
        np.testing.assert_array_equal(load_layer(path, entry)[0], W)


@pytest.mark.parametrize("kind", NETWORK_KINDS)
def test_load_layer_missing_name(tmp_path, rng, kind):
    path, names = _write_network(kind, tmp_path, _two_layers(rng))
    first, second = names.values()
    with pytest.raises(ValueError, match=f"layer 'fc9' not found in .*net\\.{path.suffix[1:]}; 2-D weights there: "
                                         f"{first} \\(32x16\\), {second} \\(8x32\\)$"):
        load_layer(path, "fc9")


@pytest.mark.parametrize("kind", NETWORK_KINDS)
def test_load_layer_none_is_ambiguous_with_two_layers(tmp_path, rng, kind):
    path, names = _write_network(kind, tmp_path, _two_layers(rng))
    with pytest.raises(ValueError, match=r"several 2-D arrays, pass layer=NAME to choose one: .*\(32x16\)"):
        load_layer(path)


def test_load_layer_none_single_layer(tmp_path, rng):
    W, b = rng.standard_normal((4, 6)).astype(np.float32), rng.standard_normal(4).astype(np.float32)
    np.savez(tmp_path / "one.npz", kernel_matrix=W, offsets=b, step=np.array(3))
    W_got, b_got, name = load_layer(tmp_path / "one.npz")
    assert name == "kernel_matrix"
    np.testing.assert_array_equal(W_got, W.astype(np.float64))
    np.testing.assert_array_equal(b_got, b.astype(np.float64))
    np.save(tmp_path / "W.npy", W)
    W_got, b_got, name = load_layer(tmp_path / "W.npy")
    assert name == "W" and b_got is None
    np.testing.assert_array_equal(W_got, W.astype(np.float64))


def test_load_layer_none_matlab_column_bias(tmp_path, rng):
    """A MATLAB file holding W and its (m, 1) bias: both are 2-D, the bias is a vector."""
    sio = _need("scipy.io")
    W, b = rng.standard_normal((3, 5)), rng.standard_normal((3, 1))
    sio.savemat(tmp_path / "layer.mat", {"weights": W, "offset": b})
    W_got, b_got, name = load_layer(tmp_path / "layer.mat")
    assert name == "weights"
    np.testing.assert_array_equal(W_got, W)
    np.testing.assert_array_equal(b_got, b[:, 0])


def test_load_layer_matlab_struct_and_toolbox_cells(tmp_path, rng):
    sio = _need("scipy.io")
    W1, W2 = rng.standard_normal((4, 3)), rng.standard_normal((2, 4))
    b1, b2 = rng.standard_normal((4, 1)), rng.standard_normal((2, 1))
    IW = np.empty((2, 1), dtype=object)
    IW[0, 0], IW[1, 0] = W1, np.zeros((0, 0))
    LW = np.empty((2, 2), dtype=object)
    for i in range(2):
        for j in range(2):
            LW[i, j] = np.zeros((0, 0))
    LW[1, 0] = W2
    bias = np.empty((2, 1), dtype=object)
    bias[0, 0], bias[1, 0] = b1, b2
    sio.savemat(tmp_path / "toolbox.mat", {"net": {"IW": IW, "LW": LW, "b": bias},
                                           "small": {"W": W2, "b": b2}})
    W, b, name = load_layer(tmp_path / "toolbox.mat", "net.IW{1,1}")
    np.testing.assert_array_equal(W, W1)
    np.testing.assert_array_equal(b, b1[:, 0])
    W, b, name = load_layer(tmp_path / "toolbox.mat", "net.LW{2,1}")
    np.testing.assert_array_equal(W, W2)
    np.testing.assert_array_equal(b, b2[:, 0])
    W, b, name = load_layer(tmp_path / "toolbox.mat", "small")  # rule 2: small.W, partner small.b
    assert name == "small.W"
    np.testing.assert_array_equal(b, b2[:, 0])


def test_load_layer_name_parts_not_substrings(tmp_path, rng):
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((5, 6))
    np.savez(tmp_path / "dp.npz", **{"module.fc1.weight": a, "module.fc1.bias": np.ones(3),
                                     "module.fc10.weight": b, "module.fc10.bias": np.zeros(5)})
    W, bias, name = load_layer(tmp_path / "dp.npz", "fc1")
    assert name == "module.fc1.weight"
    np.testing.assert_array_equal(W, a)
    np.testing.assert_array_equal(bias, np.ones(3))
    assert load_layer(tmp_path / "dp.npz", "fc10")[2] == "module.fc10.weight"
    with pytest.raises(ValueError, match="layer 'fc' not found"):
        load_layer(tmp_path / "dp.npz", "fc")
    with pytest.raises(ValueError, match="layer 'module' matches several 2-D arrays, pass the full name"):
        load_layer(tmp_path / "dp.npz", "module")


def test_load_layer_name_parts_prefer_a_matrix_over_a_column(tmp_path, rng):
    """Rule 3 on MATLAB-style data: the (m, 1) column is the bias, not a second candidate W."""
    M, c = rng.standard_normal((3, 4)), rng.standard_normal((3, 1))
    np.savez(tmp_path / "s.npz", **{"enc/layer1/M": M, "enc/layer1/c": c, "enc/layer2/M": M[:2]})
    W, b, name = load_layer(tmp_path / "s.npz", "layer1")
    assert name == "enc/layer1/M"
    np.testing.assert_array_equal(W, M)
    np.testing.assert_array_equal(b, c[:, 0])


def test_load_layer_onnx_matmul_needs_transpose(tmp_path, rng):
    """tf2onnx-style names; MatMul weights stored (inputs, outputs)."""
    W = rng.standard_normal((16, 8)).astype(np.float32)  # (n_in, n_out)
    b = rng.standard_normal(8).astype(np.float32)
    write_onnx(tmp_path / "tf.onnx", OrderedDict([("model/dense/MatMul/ReadVariableOp:0", W),
                                                  ("model/dense/BiasAdd/ReadVariableOp:0", b)]))
    W_got, b_got, name = load_layer(tmp_path / "tf.onnx", "dense", transpose=True)
    assert name == "model/dense/MatMul/ReadVariableOp:0"
    np.testing.assert_array_equal(W_got, W.T.astype(np.float64))
    assert W_got.flags.c_contiguous
    np.testing.assert_array_equal(b_got, b.astype(np.float64))
    # without transpose the 8-entry vector is no bias of the 16 rows: no bias found
    W_got, b_got, _ = load_layer(tmp_path / "tf.onnx", "dense")
    assert W_got.shape == (16, 8) and b_got is None


def test_load_layer_names_its_remedy_as_data(tmp_path, rng):
    # Callers with other spellings (the CLI's --layer, --transpose) use the data, not the message.
    np.savez(tmp_path / "t.npz", W=rng.standard_normal((3, 4)), b=np.ones(4))
    with pytest.raises(LayerChoiceError) as info:
        load_layer(tmp_path / "t.npz", "W")
    assert (info.value.argument, info.value.value) == ("transpose", True)
    assert info.value.spelled(lambda argument, value: f"<{argument} {value}>").endswith("pass <transpose True>)")
    np.savez(tmp_path / "two.npz", A=np.ones((3, 4)), B=np.ones((5, 4)))
    with pytest.raises(LayerChoiceError) as info:
        load_layer(tmp_path / "two.npz")
    assert (info.value.argument, info.value.value) == ("layer", None)
    assert "pass layer=NAME to choose one" in str(info.value)


def test_load_layer_wrong_bias_length(tmp_path, rng):
    np.savez(tmp_path / "w.npz", W=rng.standard_normal((3, 4)), b=np.ones(5))
    with pytest.raises(ValueError, match=r"bias 'b' has shape \(5,\), expected a vector of 3 entries "
                                         r"for weights 'W' of shape 3x4$"):
        load_layer(tmp_path / "w.npz")
    np.savez(tmp_path / "t.npz", W=rng.standard_normal((3, 4)), b=np.ones(4))
    with pytest.raises(ValueError, match=r"matches W's other dimension.*pass transpose=True"):
        load_layer(tmp_path / "t.npz", "W")
    W, b, _ = load_layer(tmp_path / "t.npz", "W", transpose=True)
    assert W.shape == (4, 3) and b.shape == (4,)
    np.savez(tmp_path / "m.npz", **{"fc.weight": np.ones((3, 4)), "fc.bias": np.ones((3, 2))})
    with pytest.raises(ValueError, match=r"bias 'fc.bias' has shape \(3, 2\), expected a vector of 3"):
        load_layer(tmp_path / "m.npz", "fc")


def test_load_layer_partner_names(tmp_path, rng):
    W = rng.standard_normal((3, 4))
    cases = {"weights": "biases", "layer/W": "layer/b", "enc.w2": "enc.b2", "rnn.weight_ih_l0": "rnn.bias_ih_l0",
             "dense/kernel:0": "dense/bias:0"}
    for weight, bias in cases.items():
        np.savez(tmp_path / "p.npz", **{weight: W, bias: np.arange(3.0), "decoy": np.ones(3)})
        W_got, b_got, name = load_layer(tmp_path / "p.npz", weight)
        assert name == weight
        np.testing.assert_array_equal(b_got, np.arange(3.0), err_msg=weight)


def test_load_layer_several_bias_candidates(tmp_path, rng):
    np.savez(tmp_path / "w.npz", M=rng.standard_normal((3, 4)), x=np.ones(3), y=np.zeros(3))
    with pytest.raises(ValueError, match=r"several vectors of 3 entries could be the bias of 'M': x \(3\), y \(3\)"):
        load_layer(tmp_path / "w.npz")


def test_load_layer_no_matrix_and_not_2d(tmp_path, rng):
    np.savez(tmp_path / "v.npz", b=np.ones(3), conv=np.ones((2, 3, 3, 3)))
    with pytest.raises(ValueError, match=r"v\.npz: no 2-D weight matrix in the file"):
        load_layer(tmp_path / "v.npz")
    with pytest.raises(ValueError, match=r"'conv' has shape \(2, 3, 3, 3\), not a 2-D weight matrix"):
        load_layer(tmp_path / "v.npz", "conv")


def test_load_layer_bad_arguments(tmp_path, rng):
    np.savez(tmp_path / "w.npz", W=rng.standard_normal((3, 4)))
    with pytest.raises(TypeError, match="layer: expected a str or None, got int"):
        load_layer(tmp_path / "w.npz", 1)
    with pytest.raises(ValueError, match="layer: expected a layer name or None"):
        load_layer(tmp_path / "w.npz", "")
    with pytest.raises(TypeError, match="transpose: expected a bool, got str"):
        load_layer(tmp_path / "w.npz", transpose="yes")
    np.savez(tmp_path / "c.npz", W=np.ones((2, 2), dtype=complex))
    with pytest.raises(TypeError, match="complex input"):
        load_layer(tmp_path / "c.npz")


def test_load_layer_conventional_weight_without_partner_has_no_bias(tmp_path, rng):
    """A bias-free Linear followed by a LayerNorm: "1.weight" (m entries) is not the bias of "0.weight"."""
    W = rng.standard_normal((4, 5))
    np.savez(tmp_path / "ln.npz", **{"0.weight": W, "1.weight": np.ones(4)})
    W_got, b_got, name = load_layer(tmp_path / "ln.npz")
    assert name == "0.weight" and b_got is None
    np.testing.assert_array_equal(W_got, W)
    np.savez(tmp_path / "tf.npz", **{"dense/kernel:0": W, "norm/gamma:0": np.ones(4)})
    assert load_layer(tmp_path / "tf.npz", "dense")[1] is None
    # names without the convention still fall back to the only vector of m entries
    np.savez(tmp_path / "plain.npz", M=W, offsets=np.arange(4.0))
    np.testing.assert_array_equal(load_layer(tmp_path / "plain.npz")[1], np.arange(4.0))


def test_load_layer_transpose_hint_names_the_stored_layout(tmp_path, rng):
    np.savez(tmp_path / "g.npz", **{"fc.W": rng.standard_normal((4, 5)), "fc.b": np.ones(4)})  # Gemm transB=1
    with pytest.raises(ValueError, match=r"stored as \(outputs, inputs\); pass transpose=False\)$"):
        load_layer(tmp_path / "g.npz", "fc", transpose=True)
    np.savez(tmp_path / "t.npz", **{"fc.W": rng.standard_normal((5, 4)), "fc.b": np.ones(4)})  # transB=0
    with pytest.raises(ValueError, match=r"stored as \(inputs, outputs\); pass transpose=True\)$"):
        load_layer(tmp_path / "t.npz", "fc")


def test_tilde_is_not_expanded_but_the_error_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    np.save(tmp_path / "W.npy", np.ones((2, 3)))
    with pytest.raises(FileNotFoundError, match=r"'~' is not expanded: pass os\.path\.expanduser\(path\)"):
        load_weights("~/W.npy")
    with pytest.raises(FileNotFoundError, match=r"weights file not found: '~/nothing\.npy'"):
        load_weights("~/nothing.npy")
    assert list(load_weights(os.path.expanduser("~/W.npy"))) == ["W"]


def test_load_activation_of_a_missing_file_raises(tmp_path):
    # Review of issue 12: it returned None ("the file does not say") for a file that is not there.
    with pytest.raises(FileNotFoundError):
        load_activation(tmp_path / "missing.npz")
