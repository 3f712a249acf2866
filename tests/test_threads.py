"""Concurrent updates from Python threads; the GIL is released in the core."""

import threading
import time

import numpy as np

import descramble
from descramble import reference


def test_concurrent_updates_lose_no_rows(rng):
    x = 5.0 + rng.normal(size=(16_000, 12))
    chunks = np.array_split(x, 160)
    acc = descramble.Autocorrelation(12)
    barrier = threading.Barrier(8)

    def worker(part):
        barrier.wait()
        for chunk in part:
            acc.update(chunk)

    threads = [threading.Thread(target=worker, args=(chunks[i::8],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert acc.count == 16_000
    np.testing.assert_allclose(acc.covariance(), reference.covariance(x), rtol=1e-11)
    np.testing.assert_allclose(acc.mean, x.mean(axis=0), rtol=1e-13)


def test_concurrent_merges_and_updates(rng):
    x = rng.normal(size=(4000, 5))
    target = descramble.Autocorrelation(5)
    parts = [descramble.Autocorrelation(5).update(c) for c in np.array_split(x[:2000], 20)]
    tail = np.array_split(x[2000:], 20)

    def merge_all():
        for p in parts:
            target.merge(p)

    def update_all():
        for c in tail:
            target.update(c)

    threads = [threading.Thread(target=merge_all), threading.Thread(target=update_all)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert target.count == 4000
    np.testing.assert_allclose(target.covariance(), reference.covariance(x), rtol=1e-11)


def _spin_while(call):
    """Run ``call`` in a thread; spin here until it ends. Returns the spin
    timestamps and the (start, stop) times of ``call``."""
    window = {}
    stamps = []

    def run():
        window["start"] = time.perf_counter()
        call()
        window["stop"] = time.perf_counter()

    t = threading.Thread(target=run)
    t.start()
    while t.is_alive():
        stamps.append(time.perf_counter())
    t.join()
    inside = sum(window["start"] < s < window["stop"] for s in stamps)
    return inside / (window["stop"] - window["start"])


def share_of_time_running(call):
    """Speed of this thread's loop while ``call()`` runs in another thread, relative
    to its speed beside a sleeping thread: near 1 when ``call`` releases the GIL,
    near 0 when it holds it (a switch interval or two of slack at the edges)."""
    solo = _spin_while(lambda: time.sleep(0.1))
    return _spin_while(call) / solo


def test_update_releases_the_gil(rng):
    """While one thread is inside a long update, another Python thread keeps running."""
    x = rng.normal(size=(1_000_000, 48))
    acc = descramble.Autocorrelation(48, threads=1)  # leave the other core to this thread
    share = share_of_time_running(lambda: acc.update(x))
    print(f"share while updating: {share:.3f}")
    assert share > 0.3, share
    assert acc.count == 1_000_000


def test_the_gil_probe_detects_a_held_gil():
    """Control for the test above: sorting a shuffled list holds the GIL throughout."""
    data = np.random.default_rng(1).permutation(1_500_000).tolist()
    share = share_of_time_running(lambda: sorted(data))
    assert share < 0.15, share
    print(f"share while holding the GIL: {share:.3f}")
