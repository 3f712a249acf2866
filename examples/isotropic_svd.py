"""Isotropic hidden data: the largest principal components land on the lowest
Fourier modes, and P W = T Sigma V^T (docs/math.md §3).

A layer W (m x n) with a designed, decaying singular spectrum
``W = U Sigma V^T`` sees isotropic Gaussian inputs (E[x x^T] = I). The inputs
are streamed in chunks through :func:`descramble.accumulate`, and the layer is
descrambled with Fourier smoothness of order 2. docs/math.md §3 predicts:

(a) the descrambled weights are the SVD of W laid out along the smooth basis
    T: ``P W = T Sigma V^T``, up to the freedom of the closed form (a sign per
    column of U, a rotation inside every cosine/sine pair of T), so the
    comparison is made per Fourier frequency, up to an orthogonal matrix on
    that frequency's rows, and by the largest principal angle between row
    spaces, never entrywise alone. With N samples the error shrinks like
    N^{-1/2} (docs/math.md §5);
(b) the power of the descrambled hidden signals ``P W x`` per Fourier
    frequency (computed here with ``numpy.fft``, independently of T)
    decreases with frequency: the largest principal components sit on the
    lowest modes;
(c) the loss tr(A P S P^T) equals the lower bound sum_k lambda_k mu_k.

Run ``python examples/isotropic_svd.py [--seed S] [--samples N] [--out DIR]``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

import descramble

sys.path.insert(0, str(Path(__file__).resolve().parent))
import example_cli  # noqa: E402  (the examples' shared command line)


def make_layer(m: int, n: int, decay: float,
               rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A random layer ``W = U diag(sigma) V^T`` with ``sigma_j = decay**j`` (j = 0..m-1).

    Returns
    -------
    W : ndarray of shape (m, n)
    U : ndarray of shape (m, m)
    sigma : ndarray of shape (m,)
    V : ndarray of shape (n, m)
    """
    U, _ = np.linalg.qr(rng.standard_normal((m, m)))
    V, _ = np.linalg.qr(rng.standard_normal((n, m)))
    sigma = decay ** np.arange(m, dtype=float)
    return (U * sigma) @ V.T, U, sigma, V


def gaussian_chunks(n_rows: int, n: int, rng: np.random.Generator, chunk_rows: int = 8192) -> Iterator[np.ndarray]:
    """Isotropic Gaussian samples (rows), ``n_rows`` of them, in chunks: a stream nothing keeps in memory."""
    done = 0
    while done < n_rows:
        k = min(chunk_rows, n_rows - done)
        yield rng.standard_normal((k, n))
        done += k


def frequency_groups(basis_values: np.ndarray, order: int) -> List[Tuple[int, np.ndarray]]:
    """(frequency k, columns of T) for Fourier smoothness of ``order``: lambda = k^(2 order)."""
    k = np.rint(np.clip(basis_values, 0.0, None) ** (1.0 / (2 * order))).astype(int)
    return [(int(f), np.flatnonzero(k == f)) for f in np.unique(k)]


def group_errors(X: np.ndarray, Y: np.ndarray, groups: List[Tuple[int, np.ndarray]]) -> Tuple[float, np.ndarray]:
    """Distance between the rows of X and Y up to an orthogonal matrix per frequency group.

    Per group g: ``min over orthogonal R of ||X_g - R Y_g||_F`` (orthogonal
    Procrustes: ``||X_g||^2 + ||Y_g||^2 - 2 * nuclear norm of X_g Y_g^T``) and
    the largest principal angle (degrees) between the row spaces of X_g and Y_g.

    Returns
    -------
    relative_error : float
        sqrt(sum_g distance_g^2) / ||Y||_F.
    angles : ndarray
        One angle per group.
    """
    total = 0.0
    angles = np.empty(len(groups))
    for i, (_, g) in enumerate(groups):
        Xg, Yg = X[g], Y[g]
        nuclear = np.linalg.svd(Xg @ Yg.T, compute_uv=False).sum()
        total += max(np.sum(Xg**2) + np.sum(Yg**2) - 2.0 * nuclear, 0.0)
        Qx = np.linalg.svd(Xg, full_matrices=False)[2]
        Qy = np.linalg.svd(Yg, full_matrices=False)[2]
        cosines = np.linalg.svd(Qx @ Qy.T, compute_uv=False)
        angles[i] = np.degrees(np.arccos(np.clip(cosines.min(), 0.0, 1.0)))
    return float(np.sqrt(total) / np.linalg.norm(Y)), angles


def fourier_power(S: np.ndarray) -> np.ndarray:
    """Mean power ``E|FFT(z)_k|^2 / m`` of signals z with autocorrelation S, for bins k = 0..m//2.

    Computed with ``numpy.fft`` (independent of the descrambler's basis T).
    For real signals bins k and m-k carry the same power, so bin k is the
    power per real Fourier mode (cosine or sine) of frequency k.
    """
    m = S.shape[0]
    F = np.fft.fft(np.eye(m), axis=0) / np.sqrt(m)  # unitary DFT
    power = np.real(np.einsum("ki,ij,kj->k", F, S, F.conj()))
    return power[: m // 2 + 1]


def run(seed: int = 0, n_samples: int = 200_000, m: int = 32, n: int = 64, decay: float = 0.85,
        checkpoints: int = 5, chunk_rows: int = 8192, order: int = 2) -> Dict[str, Any]:
    """Descramble a layer on isotropic inputs at ``checkpoints`` sample sizes up to ``n_samples``.

    The sample sizes are n_samples / 2^j (j = checkpoints-1 .. 0), nested:
    every segment of the stream is accumulated with
    :func:`descramble.accumulate` and merged into a running
    :class:`descramble.Autocorrelation`.

    Parameters
    ----------
    seed : int
        Seed of the layer and the data.
    n_samples : int
        Largest sample size N.
    m, n : int
        Hidden units and inputs of the layer.
    decay : float
        Singular values are decay**j, j = 0..m-1 (distinct, so U is unique up to signs).
    checkpoints : int
        Number of sample sizes.
    chunk_rows : int
        Rows per chunk of the stream.
    order : int
        Order of the Fourier smoothness.

    Returns
    -------
    dict
        ``samples`` (sample sizes), ``errors`` (relative distance of P W to
        T Sigma V^T per checkpoint, up to the per-frequency freedom),
        ``slope`` (least-squares slope of log error vs log N), ``angles``
        (largest principal angle per frequency at the largest N, degrees),
        ``frequencies``, ``power`` (descrambled hidden power per Fourier bin at
        the largest N), ``power_expected`` (its population value),
        ``power_raw`` (the same for the scrambled hidden signals W x),
        ``loss``, ``bound``, ``gap`` (|loss - bound| / bound, per checkpoint),
        ``control_raw`` and ``control_rotation`` (the error measure applied to
        W itself and to a random rotation of P W: wrong answers, for
        contrast), and the arrays ``W``, ``PW`` (at the largest N), ``target``
        (T Sigma V^T), ``sigma`` and ``V`` (W = U diag(sigma) V^T).
    """
    if checkpoints < 2:
        raise ValueError(f"checkpoints: expected at least 2, got {checkpoints}")
    if n_samples < 2 ** (checkpoints - 1) * n:
        raise ValueError(f"n_samples: expected at least {2 ** (checkpoints - 1) * n} for {checkpoints} checkpoints")
    rng = np.random.default_rng(seed)
    W, U, sigma, V = make_layer(m, n, decay, rng)
    sizes = [n_samples // 2 ** j for j in range(checkpoints - 1, -1, -1)]

    acc = descramble.Autocorrelation(n)
    errors, losses, bounds = [], [], []
    for size in sizes:
        acc.merge(descramble.accumulate(gaussian_chunks(size - acc.count, n, rng, chunk_rows)))
        d = descramble.descramble(W, autocorrelation=acc, smoothness="fourier", order=order)
        groups = frequency_groups(d.basis_values, order)
        target = sigma[:, None] * V.T  # Sigma V^T: row j is laid out on T's column j
        # T^T (P W) against Sigma V^T, row group by row group (docs/math.md §3's freedom).
        err, angles = group_errors(d.basis.T @ d.weights, target, groups)
        errors.append(err)
        losses.append(d.loss)
        bounds.append(d.bound)

    # (b) power per Fourier bin, from the data's S (NumPy: W C_N W^T) and numpy.fft.
    C = acc.autocorrelation()
    S = W @ C @ W.T
    power = fourier_power(d.P @ S @ d.P.T)
    power_raw = fourier_power(S)
    expected = np.array([np.mean(sigma[g] ** 2) for _, g in groups])  # per real mode of frequency k

    # Wrong answers under the same measure: the scrambled W, and P W turned by a random rotation.
    control_raw = group_errors(d.basis.T @ W, target, groups)[0]
    Q, _ = np.linalg.qr(rng.standard_normal((m, m)))
    control_rotation = group_errors(d.basis.T @ Q @ d.weights, target, groups)[0]

    slope = float(np.polyfit(np.log(sizes), np.log(errors), 1)[0])
    losses, bounds = np.array(losses), np.array(bounds)
    return {
        "seed": seed, "m": m, "n": n, "order": order,
        "samples": np.array(sizes), "errors": np.array(errors), "slope": slope,
        "angles": angles, "frequencies": np.array([k for k, _ in groups]),
        "power": power, "power_expected": expected, "power_raw": power_raw,
        "loss": losses, "bound": bounds, "gap": np.abs(losses - bounds) / bounds,
        "control_raw": control_raw, "control_rotation": control_rotation,
        "degenerate": len(d.degenerate),
        "W": W, "PW": d.weights, "target": d.basis @ target, "sigma": sigma, "V": V,
    }


def _figure(result: Dict[str, Any], out: Path) -> Path:
    plt, fig, axes = example_cli.figure(4, (16, 3.6))
    from matplotlib.ticker import NullFormatter
    x = np.random.default_rng(result["seed"]).standard_normal((result["n"], 3))
    for ax, key, title in ((axes[0], "W", "hidden signals W x (scrambled)"),
                           (axes[1], "PW", "P W x (descrambled)")):
        ax.plot(result[key] @ x, ".-")
        ax.set(title=title, xlabel="hidden unit")
    k = result["frequencies"]
    axes[2].semilogy(k, result["power"], "o-", label="P W x")
    axes[2].semilogy(k, result["power_raw"], "s-", label="W x")
    axes[2].semilogy(k, result["power_expected"], "k--", label="sigma^2 (population)")
    axes[2].set(title="power per Fourier bin", xlabel="frequency k")
    axes[2].legend()
    N = result["samples"]
    axes[3].loglog(N, result["errors"], "o-", label="||P W - T Sigma V^T|| / ||W||")
    axes[3].loglog(N, result["errors"][-1] * np.sqrt(N[-1] / N), "k--", label="N^-1/2")
    axes[3].set(title="convergence", xlabel="samples N")
    axes[3].xaxis.set_minor_formatter(NullFormatter())
    axes[3].legend()
    return example_cli.save(plt, fig, out, "isotropic_svd.png")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command line: print the report (and save a figure with --out)."""
    args = example_cli.command_line(__doc__, 200_000, "isotropic_svd.png", argv)
    r = example_cli.run(run, args)

    print(f"Layer m={r['m']} x n={r['n']}, singular values decay**j, isotropic Gaussian inputs, "
          f"Fourier smoothness order {r['order']}, seed {r['seed']}")
    print("(a) P W vs T Sigma V^T (relative distance, up to an orthogonal matrix per frequency):")
    for N, e in zip(r["samples"], r["errors"]):
        print(f"    N = {N:>8d}: error {e:.4f}   error * sqrt(N) = {e * np.sqrt(N):.2f}")
    print(f"    slope of log error vs log N: {r['slope']:.2f} (expected -0.5)")
    print(f"    largest principal angle per frequency at N = {r['samples'][-1]}: "
          f"max {r['angles'].max():.2f} deg, median {np.median(r['angles']):.2f} deg")
    print(f"    wrong answers, same measure: W itself {r['control_raw']:.3f}, "
          f"a random rotation of P W {r['control_rotation']:.3f}")
    print("(b) power per Fourier bin of the hidden signals (numpy.fft):")
    print("    k   descrambled   population    scrambled W x")
    for k, p, e, raw in zip(r["frequencies"], r["power"], r["power_expected"], r["power_raw"]):
        print(f"    {k:2d}  {p:11.5f}   {e:11.5f}   {raw:11.5f}")
    print(f"    descrambled power non-increasing in k: {bool(np.all(np.diff(r['power']) <= 0))}")
    print(f"(c) loss {r['loss'][-1]:.10g}, bound {r['bound'][-1]:.10g}, "
          f"max relative gap over checkpoints {r['gap'].max():.2e}")
    example_cli.report_figure(_figure, r, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
