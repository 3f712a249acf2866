#!/usr/bin/env python
"""Permutation descramblers against scipy.optimize.quadratic_assignment (issue 13).

For each m and problem, prints the loss eta(Pi) = tr(A Pi S Pi^T), its
certificate gap (loss - bound) / bound against the orthogonal bound, and the
time of: descramble's C++ search (criterion="permutation", default budget),
scipy's "2opt" (from a random start) and scipy's "faq" (best of 10
randomized starts). Problems: a random PSD S (a random layer, N(0,1)
weights on isotropic inputs) and a planted smooth order (a Gaussian kernel
on a line, scrambled), under the Fourier and first-difference operators.

Usage: python bench/permutation.py [m ...]   (default 32 64 128)
(On machines where OpenBLAS misdetects the core, run it with
OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset.)
"""

import sys
import time

import numpy as np
from scipy.optimize import quadratic_assignment

import descramble
from descramble import smoothness as sm


def problems(m, rng):
    G = rng.standard_normal((m, m))
    yield "random", G @ G.T / m
    i = np.arange(m)
    S = np.exp(-0.5 * ((i[:, None] - i[None, :]) / (m / 16)) ** 2)
    q = rng.permutation(m)
    yield "planted", S[np.ix_(q, q)]


def main(sizes):
    print(f"{'m':>4} {'operator':>8} {'problem':>8} | {'method':>12} {'loss':>12} {'gap':>9} {'time s':>8}")
    for m in sizes:
        rng = np.random.default_rng(m)
        for opname, smooth in (("fourier", sm.fourier(m)), ("fd", sm.finite_difference(m))):
            A = smooth.gram
            for name, S in problems(m, rng):
                t = time.perf_counter()
                d = descramble.descramble(hidden=S, smoothness=smooth, criterion="permutation")
                rows = [("descramble", d.loss, time.perf_counter() - t)]
                t = time.perf_counter()
                r = quadratic_assignment(A, S, method="2opt", options={"rng": np.random.default_rng(0)})
                rows.append(("scipy 2opt", float(r.fun), time.perf_counter() - t))
                t = time.perf_counter()
                faq = {"P0": "randomized"}
                best = min(float(quadratic_assignment(A, S, method="faq",
                                                      options={**faq, "rng": np.random.default_rng(k)}).fun)
                           for k in range(10))
                rows.append(("scipy faq10", best, time.perf_counter() - t))
                for method, loss, seconds in rows:
                    gap = (loss - d.bound) / d.bound
                    print(f"{m:>4} {opname:>8} {name:>8} | {method:>12} {loss:>12.6g} {gap:>9.4f} {seconds:>8.3f}",
                          flush=True)


if __name__ == "__main__":
    import warnings

    warnings.simplefilter("ignore", descramble.UnderdeterminedWarning)
    main([int(a) for a in sys.argv[1:]] or [32, 64, 128])
