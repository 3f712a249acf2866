"""Descrambler persistence: pickling and Descrambler.save/load round trips, refusals, atomic saves."""

import os
import pickle
import warnings
import zipfile

import numpy as np
import pytest

import descramble
from descramble import smoothness
from descramble.descrambler import Descrambler, smoothness_loss


def smooth_operators(m):
    rng = np.random.default_rng(1)
    return [
        "fourier", smoothness.finite_difference(m), smoothness.finite_difference(m, 2, True),
        smoothness.finite_difference(m, 1, True, "central"), smoothness.grid((2, m // 2)),
        rng.normal(size=(m + 1, m)), smoothness.from_gram(smoothness.grid((2, m // 2)).gram),
    ]


def cases():
    # m = 6 units from n = 4 inputs: underdetermined on purpose (the warning is tested in test_warnings.py).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", descramble.UnderdeterminedWarning)
        return _cases()


def _cases():
    rng = np.random.default_rng(0)
    m, n = 6, 4
    W, X = rng.normal(size=(m, n)), rng.normal(size=(50, n))
    out = [descramble.descramble(W, data=X, smoothness=s) for s in smooth_operators(m)]
    out.append(descramble.descramble(W, data=X, bias=rng.normal(size=m)))
    out.append(descramble.descramble(hidden=np.cov(rng.normal(size=(m, 30)))))
    out.append(descramble.descramble(rng.normal(size=(m, m)), criterion="diagonal"))
    d = descramble.descramble(W, data=X, smoothness=smoothness.grid((3, 2)))
    d.Q, d.n_samples = np.linalg.qr(rng.normal(size=(n, n)))[0], 50
    out.append(d)
    return out


CASES = cases()
IDS = [f"{d.criterion}-{d.smoothness.name if d.smoothness else ''}-{i}" for i, d in enumerate(CASES)]


def same(a, b):
    for key in ("P", "weights", "basis", "basis_values", "components", "spectrum", "hidden", "Q"):
        x, y = getattr(a, key), getattr(b, key)
        assert (x is None) == (y is None), key
        if x is not None:
            np.testing.assert_array_equal(x, y, err_msg=key)
    assert (a.loss, a.bound, a.criterion, a.n_samples) == (b.loss, b.bound, b.criterion, b.n_samples)
    assert [d.kind for d in a.degenerate] == [d.kind for d in b.degenerate]
    for x, y in zip(a.degenerate, b.degenerate):
        np.testing.assert_array_equal(x.indices, y.indices)
    assert (a.smoothness is None) == (b.smoothness is None)
    if a.smoothness is not None:
        s, t = a.smoothness, b.smoothness
        assert (s.name, s.size, s.spec) == (t.name, t.size, t.spec)
        np.testing.assert_array_equal(s.gram, t.gram)
        for x, y in zip(s.basis(), t.basis()):
            np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("d", CASES, ids=IDS)
def test_pickle_round_trip(d):
    same(d, pickle.loads(pickle.dumps(d)))


@pytest.mark.parametrize("d", CASES, ids=IDS)
def test_save_load_round_trip(d, tmp_path):
    path = tmp_path / "d.npz"
    d.save(path)
    e = Descrambler.load(path)
    same(d, e)
    assert os.listdir(tmp_path) == ["d.npz"]
    with np.load(path, allow_pickle=False) as f:  # no pickles inside
        assert "P" in f.files


def test_loaded_descrambler_works(tmp_path):
    d = CASES[0]
    d.save(tmp_path / "d.npz")
    e = Descrambler.load(tmp_path / "d.npz")
    W = np.ones((6, 2))
    np.testing.assert_array_equal(e.apply(W), d.apply(W))
    assert smoothness_loss(e.P, e.hidden, e.smoothness) == pytest.approx(d.loss)


def rewrite(src, dst, change=None, drop=(), add=None):
    with np.load(src, allow_pickle=False) as f:
        state = {k: f[k] for k in f.files if k not in drop}
    state.update(change or {})
    state.update(add or {})
    np.savez(dst, **state)


BAD = [
    ("wrong format", dict(change={"format": np.str_("something.else")}), "format is"),
    ("version", dict(change={"version": np.int64(2)}), "unsupported version 2"),
    ("missing P", dict(drop=("P",)), "missing member 'P'"),
    ("extra", dict(add={"junk": np.zeros(2)}), "unexpected member 'junk'"),
    ("P shape", dict(change={"P": np.zeros((6, 5))}), "P has shape"),
    ("P dtype", dict(change={"P": np.zeros((6, 6), np.float32)}), "P has dtype float32"),
    ("nan", dict(change={"basis": np.full((6, 6), np.nan)}), "basis is not finite"),
    ("criterion", dict(change={"criterion": np.str_("rough")}), "criterion is 'rough'"),
    ("groups", dict(change={"degenerate_indices": np.array([0, 99], np.int64),
                            "degenerate_sizes": np.array([2], np.int64),
                            "degenerate_kinds": np.array(["spectrum"])}), "degenerate groups are malformed"),
    ("spec", dict(change={"smoothness_spec": np.str_('{"kind": "laplace"}')}), "unknown kind"),
    ("spec size", dict(change={"smoothness_spec": np.str_('{"kind": "fourier", "m": 5, "order": 2}')}),
     "acts on 5 neurons"),
    ("n_samples", dict(change={"n_samples": np.int64(-1)}), "n_samples is -1"),
    ("hidden", dict(drop=("hidden",)), "hidden"),
]


@pytest.mark.parametrize("name, how, text", BAD, ids=[b[0] for b in BAD])
def test_load_refuses_malformed(name, how, text, tmp_path):
    good, bad = tmp_path / "good.npz", tmp_path / "bad.npz"
    CASES[-1].save(good)
    rewrite(good, bad, **how)
    with pytest.raises(ValueError, match=text) as info:
        Descrambler.load(bad)
    assert "bad.npz" in str(info.value)


def test_load_refuses_truncated_foreign_and_non_archives(tmp_path):
    good = tmp_path / "good.npz"
    CASES[0].save(good)
    data = good.read_bytes()
    (tmp_path / "trunc.npz").write_bytes(data[: len(data) // 2])
    np.savez(tmp_path / "foreign.npz", a=np.zeros(3))
    np.save(tmp_path / "array.npy", np.zeros(3))
    (tmp_path / "text.npz").write_text("hello")
    with zipfile.ZipFile(tmp_path / "pickled.npz", "w") as z:  # an object array: refused, never unpickled
        with z.open("P.npy", "w") as member:
            np.lib.format.write_array(member, np.array([object()], dtype=object), allow_pickle=True)
    for name in ("trunc.npz", "foreign.npz", "array.npy", "text.npz", "pickled.npz"):
        with pytest.raises(ValueError, match=name):
            Descrambler.load(tmp_path / name)
    with pytest.raises(FileNotFoundError):
        Descrambler.load(tmp_path / "absent.npz")


def test_failing_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "d.npz"
    CASES[0].save(path)
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(OSError, match="disk full"):
        CASES[1].save(path)
    assert os.listdir(tmp_path) == ["d.npz"]  # no temporary left behind
    assert path.read_bytes() == before  # the existing file untouched
