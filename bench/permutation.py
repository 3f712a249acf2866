#!/usr/bin/env python
"""Permutation descramblers against scipy.optimize.quadratic_assignment (issue 13).

For every size m, layer kind and smoothness operator, the loss
eta(Pi) = tr(A Pi S Pi^T) of the permutation found, its certificate gap
(loss - bound) / bound against the closed-form orthogonal bound, and the
time, for:

- ours: ``descramble.descramble(hidden=S, smoothness=..., criterion="permutation")``
  with its default budget (``max_iterations=100``, no time limit);
- scipy "2opt": ``quadratic_assignment(A, S, method="2opt")`` from one random
  start (seed 0). Its pair-swap descent recomputes the loss from scratch for
  every candidate swap (O(m^4) a sweep): it runs only up to ``--two-opt-max``
  (default 128; m = 256 takes minutes per problem, m = 512 hours);
- scipy "faq": ``quadratic_assignment(A, S, method="faq")``, the best of
  ``--faq-starts`` (default 10) randomized starts (seeds 0, 1, ...).

Layer kinds (S is the hidden autocorrelation of m units):

- ``random``: S = G G^T / m with G standard normal (a random layer on white inputs);
- ``trained``: a 1-hidden-layer tanh MLP (16 inputs, m hidden units) trained with
  Adam for a few hundred steps (NumPy, seeded) to map a noisy sampled sine
  to its clean version; S = the autocorrelation of its hidden pre-activations
  over 2048 samples;
- ``planted``: units tuned to positions on a line (Gaussian bumps of width m / 16),
  plus 10% noise, in a random order.

Columns: "vs 2opt" and "vs faq" are ours minus theirs, relative to |theirs|
(negative or 0: ours is at least as good); "speed-up" is scipy 2opt's time
over ours (same run: the machine's load affects both).

Usage: python bench/permutation.py [--sizes 32 64 128 256 512] [--kinds random trained planted]
       [--operators fd fourier] [--two-opt-max 128] [--faq-starts 10]
(On machines where OpenBLAS misdetects the core, run it with
OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset.)
"""

from __future__ import annotations

import argparse
import time
import warnings
from typing import Dict, Iterator, List, Tuple

import numpy as np
from scipy.optimize import quadratic_assignment

import descramble
from descramble import smoothness as sm


def random_layer(m: int, rng: np.random.Generator) -> np.ndarray:
    """S = G G^T / m, G standard normal."""
    G = rng.standard_normal((m, m))
    return G @ G.T / m


def trained_layer(m: int, rng: np.random.Generator, steps: int = 300) -> np.ndarray:
    """Hidden pre-activation autocorrelation of a small tanh MLP trained (Adam, NumPy) to denoise a sine."""
    n_in, n = 16, 2048
    t = np.linspace(0.0, 1.0, n_in)

    def batch(k: int) -> Tuple[np.ndarray, np.ndarray]:
        f = rng.uniform(1.0, 4.0, (k, 1))
        ph = rng.uniform(0.0, 2 * np.pi, (k, 1))
        clean = np.sin(2 * np.pi * f * t + ph)
        return clean + 0.3 * rng.standard_normal(clean.shape), clean

    W1 = rng.standard_normal((m, n_in)) / np.sqrt(n_in)
    b1 = np.zeros(m)
    W2 = rng.standard_normal((n_in, m)) / np.sqrt(m)
    b2 = np.zeros(n_in)
    params = [W1, b1, W2, b2]
    moments = [(np.zeros_like(p), np.zeros_like(p)) for p in params]
    lr, beta1, beta2 = 3e-3, 0.9, 0.999
    for step in range(1, steps + 1):
        x, y = batch(128)
        z = x @ W1.T + b1
        h = np.tanh(z)
        out = h @ W2.T + b2
        g_out = 2.0 * (out - y) / out.size
        g_W2 = g_out.T @ h
        g_b2 = g_out.sum(0)
        g_z = (g_out @ W2) * (1.0 - h**2)
        g_W1 = g_z.T @ x
        g_b1 = g_z.sum(0)
        for p, g, (mom, var) in zip(params, (g_W1, g_b1, g_W2, g_b2), moments):
            mom *= beta1
            mom += (1 - beta1) * g
            var *= beta2
            var += (1 - beta2) * g * g
            p -= lr * (mom / (1 - beta1**step)) / (np.sqrt(var / (1 - beta2**step)) + 1e-8)
    x, _ = batch(n)
    z = x @ W1.T + b1
    return z.T @ z / n


def planted_layer(m: int, rng: np.random.Generator) -> np.ndarray:
    """Units tuned to positions on a line (Gaussian bumps), 10% noise, scrambled."""
    i = np.arange(m)
    S = np.exp(-0.5 * ((i[:, None] - i[None, :]) / (m / 16)) ** 2)
    G = rng.standard_normal((m, m))
    S = S + 0.1 * G @ G.T / m
    q = rng.permutation(m)
    return S[np.ix_(q, q)]


KINDS = {"random": random_layer, "trained": trained_layer, "planted": planted_layer}
OPERATORS = {"fd": sm.finite_difference, "fourier": sm.fourier}


def timed(f, *args, **kwargs):
    t = time.perf_counter()
    out = f(*args, **kwargs)
    return out, time.perf_counter() - t


def run(m: int, kind: str, operator: str, two_opt_max: int, faq_starts: int) -> Dict[str, object]:
    rng = np.random.default_rng(1000 * m + list(KINDS).index(kind))
    S = KINDS[kind](m, rng)
    smooth = OPERATORS[operator](m)
    A = np.asarray(smooth.gram)
    d, t_ours = timed(descramble.descramble, hidden=S, smoothness=smooth, criterion="permutation")
    row: Dict[str, object] = {"m": m, "kind": kind, "operator": operator, "ours": d.loss, "gap": d.gap,
                              "t_ours": t_ours, "bound": d.bound}
    if m <= two_opt_max:
        r, t = timed(quadratic_assignment, A, S, method="2opt", options={"rng": np.random.default_rng(0)})
        row["2opt"], row["t_2opt"] = float(r.fun), t
    if faq_starts > 0:
        t0 = time.perf_counter()
        best = min(float(quadratic_assignment(A, S, method="faq",
                                              options={"P0": "randomized", "rng": np.random.default_rng(k)}).fun)
                   for k in range(faq_starts))
        row["faq"], row["t_faq"] = best, time.perf_counter() - t0
    return row


def rel(ours: float, theirs: float) -> str:
    return f"{(ours - theirs) / abs(theirs):+.2e}"


def table(rows: List[Dict[str, object]], faq_starts: int) -> Iterator[str]:
    yield (f"| m | layer | operator | ours loss | ours gap | ours s | scipy 2opt loss | 2opt s | "
           f"scipy faq ({faq_starts} starts) loss | faq s | vs 2opt | vs faq | speed-up vs 2opt |")
    yield "|" + "---|" * 13
    for r in rows:
        two = r.get("2opt")
        faq = r.get("faq")
        cells = [
            str(r["m"]), str(r["kind"]), str(r["operator"]),
            f"{r['ours']:.6g}", f"{r['gap']:.4f}", f"{r['t_ours']:.2f}",
            f"{two:.6g}" if two is not None else "not run", f"{r['t_2opt']:.2f}" if two is not None else "-",
            f"{faq:.6g}" if faq is not None else "-", f"{r['t_faq']:.2f}" if faq is not None else "-",
            rel(r["ours"], two) if two is not None else "-",  # type: ignore[arg-type]
            rel(r["ours"], faq) if faq is not None else "-",  # type: ignore[arg-type]
            f"{r['t_2opt'] / r['t_ours']:.1f}x" if two is not None else "-",  # type: ignore[operator]
        ]
        yield "| " + " | ".join(cells) + " |"


def main(argv: List[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 128, 256, 512])
    parser.add_argument("--kinds", nargs="+", choices=list(KINDS), default=list(KINDS))
    parser.add_argument("--operators", nargs="+", choices=list(OPERATORS), default=list(OPERATORS))
    parser.add_argument("--two-opt-max", type=int, default=128,
                        help="largest m for scipy's 2opt (default 128: it takes minutes at 256)")
    parser.add_argument("--faq-starts", type=int, default=10, help="randomized FAQ starts (0: skip FAQ)")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", descramble.UnderdeterminedWarning)
    rows = []
    for m in args.sizes:
        for kind in args.kinds:
            for operator in args.operators:
                row = run(m, kind, operator, args.two_opt_max, args.faq_starts)
                rows.append(row)
                worse = [name for name in ("2opt", "faq") if name in row and row["ours"] > row[name]]  # type: ignore[operator]
                print(f"m={m} {kind} {operator}: ours {row['ours']:.6g} in {row['t_ours']:.2f} s"
                      + "".join(f", {k} {row[k]:.6g} in {row['t_' + k]:.2f} s" for k in ("2opt", "faq") if k in row)
                      + (f"  WORSE than {', '.join(worse)}" if worse else ""), flush=True)
    print()
    for line in table(rows, args.faq_starts):
        print(line)
    worse = sum(1 for r in rows for k in ("2opt", "faq") if k in r and r["ours"] > r[k])  # type: ignore[operator]
    print(f"\nours worse than scipy in {worse} of {sum(1 for r in rows for k in ('2opt', 'faq') if k in r)} comparisons")


if __name__ == "__main__":
    main()
