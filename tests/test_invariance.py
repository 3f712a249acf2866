"""Results do not depend on chunking or on merge order (docs/math.md §7)."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import descramble
from descramble import reference


@st.composite
def data_and_cuts(draw):
    rows = draw(st.integers(1, 300))
    cols = draw(st.integers(1, 8))
    seed = draw(st.integers(0, 2**32 - 1))
    offset = draw(st.sampled_from([0.0, 1.0, -1e6, 1e9]))
    x = offset + np.random.default_rng(seed).normal(size=(rows, cols)) * draw(st.sampled_from([1e-3, 1.0, 1e3]))
    # Cut points may repeat (zero-row chunks) and sit next to each other (one-row chunks).
    cuts = sorted(draw(st.lists(st.integers(0, rows), max_size=12)))
    return x, cuts


def chunks_of(x, cuts):
    edges = [0, *cuts, x.shape[0]]
    return [x[a:b] for a, b in zip(edges[:-1], edges[1:])]


def assert_close_moments(acc, x):
    exact_scatter = reference.scatter(x - x[0])
    scale = max(np.abs(exact_scatter).max(), 1e-300)
    assert acc.count == x.shape[0]
    assert np.abs(acc.scatter - exact_scatter).max() <= 1e-9 * scale + 1e-12 * x.shape[0] * np.abs(x - x[0]).max() ** 2
    np.testing.assert_allclose(acc.mean, x.mean(axis=0), rtol=1e-12, atol=1e-12 * np.abs(x).max())


@settings(max_examples=80, deadline=None)
@given(data_and_cuts())
def test_any_chunking_gives_the_same_moments(case):
    x, cuts = case
    acc = descramble.Autocorrelation(x.shape[1])
    for chunk in chunks_of(x, cuts):
        acc.update(chunk)
    assert_close_moments(acc, x)


@settings(max_examples=60, deadline=None)
@given(data_and_cuts(), st.randoms(use_true_random=False))
def test_any_merge_tree_gives_the_same_moments(case, random):
    x, cuts = case
    parts = [descramble.Autocorrelation(x.shape[1]).update(chunk) for chunk in chunks_of(x, cuts)]
    # Merge random pairs until one accumulator is left: a random binary merge tree.
    while len(parts) > 1:
        i, j = sorted(random.sample(range(len(parts)), 2))
        right = parts.pop(j)
        parts[i].merge(right)
    assert_close_moments(parts[0], x)


@settings(max_examples=40, deadline=None)
@given(data_and_cuts(), st.integers(1, 50))
def test_chunk_rows_does_not_change_the_answer(case, chunk_rows):
    x, _ = case
    whole = descramble.autocorrelation(x)
    split = descramble.autocorrelation(x, chunk_rows=chunk_rows)
    np.testing.assert_allclose(split, whole, rtol=1e-12, atol=1e-12 * np.abs(whole).max())
