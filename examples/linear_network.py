"""Two-layer linear network on a linear signal-recovery task (docs/math.md §6):
descrambled first-layer weights over training show the task's singular modes
appearing in order of singular value; the whole trajectory from one data pass.

The task: ``y = M x + noise`` with whitened inputs x (E[x x^T] = I) and a map
M whose singular values are 5, 4, 3, 2, 1. The network ``y_hat = W2 W1 x``
(hidden size m) is trained by full-batch gradient descent from small random
weights. Saxe, McClelland & Ganguli's solution: with E[y x^T] =
U_yx S_yx V_yx^T, ``W1(t) = R a(t)^{1/2} V_yx^T`` with a sigmoidal, diagonal
a(t) (mode k rises at a time ~ 1/s_k) and an arbitrary hidden rotation R.
Descrambling the hidden layer removes R: ``P W1(t) = T a(t)^{1/2} V_yx^T``.

One pass over the data: the stream of (x, y) chunks is read once, by
:func:`descramble.accumulate`, into the joint autocorrelation of z = [x; y].
For a linear network with squared loss, full-batch gradient descent depends
on the data only through E[x x^T] and E[y x^T] (blocks of that matrix), so the
training runs from those moments, and every checkpoint W1(t) is descrambled
with ``descramble.descramble(W1, autocorrelation=E[x x^T])`` without reading
the data again.

Run ``python examples/linear_network.py [--seed S] [--samples N] [--out DIR]``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

import descramble

sys.path.insert(0, str(Path(__file__).resolve().parent))
import example_cli  # noqa: E402  (the examples' shared command line)


class LinearTask:
    """A re-readable stream of ``[x | y]`` chunks, ``y = M x + noise``, that counts how often it is read.

    Iterating starts a pass over the same N samples (the same seed every
    time), as reading a file would; ``passes`` and ``chunks_read`` count the
    reads.

    Parameters
    ----------
    M : ndarray of shape (out, n)
        The task's linear map.
    n_samples : int
        Number of samples N.
    noise : float
        Standard deviation of the output noise.
    seed : int
        Seed of the samples.
    chunk_rows : int
        Rows per chunk.
    """

    def __init__(self, M: np.ndarray, n_samples: int, noise: float, seed: int, chunk_rows: int = 8192) -> None:
        self.M = M
        self.n_samples = n_samples
        self.noise = noise
        self.seed = seed
        self.chunk_rows = chunk_rows
        self.passes = 0
        self.chunks_read = 0

    def __iter__(self) -> Iterator[np.ndarray]:
        self.passes += 1
        rng = np.random.default_rng(self.seed)
        out, n = self.M.shape
        done = 0
        while done < self.n_samples:
            k = min(self.chunk_rows, self.n_samples - done)
            x = rng.standard_normal((k, n))
            y = x @ self.M.T + self.noise * rng.standard_normal((k, out))
            self.chunks_read += 1
            done += k
            yield np.hstack([x, y])


def make_task(n: int, out: int, singular_values: Sequence[float], rng: np.random.Generator) -> np.ndarray:
    """``M = U diag(s) V^T`` (out x n) with random orthonormal U, V and the given singular values."""
    r = len(singular_values)
    U, _ = np.linalg.qr(rng.standard_normal((out, r)))
    V, _ = np.linalg.qr(rng.standard_normal((n, r)))
    return (U * np.asarray(singular_values, dtype=float)) @ V.T


def gradient_step(W1: np.ndarray, W2: np.ndarray, Cxx: np.ndarray, Cyx: np.ndarray,
                  lr: float) -> Tuple[np.ndarray, np.ndarray]:
    """One full-batch gradient step on L = (1/2N) sum_i ||y_i - W2 W1 x_i||^2, from the moments.

    dL/dW2 = (W2 W1 Cxx - Cyx) W1^T and dL/dW1 = W2^T (W2 W1 Cxx - Cyx), with
    Cxx = E[x x^T] and Cyx = E[y x^T] over the N samples: exactly the
    full-batch gradient, without the samples.
    """
    E = W2 @ W1 @ Cxx - Cyx
    return W1 - lr * (W2.T @ E), W2 - lr * (E @ W1.T)


def train(Cxx: np.ndarray, Cyx: np.ndarray, m: int, steps: int, every: int, lr: float, init: float,
          rng: np.random.Generator) -> Tuple[np.ndarray, List[np.ndarray], List[np.ndarray]]:
    """Full-batch gradient descent from small random weights (std ``init``); checkpoints every ``every`` steps.

    Returns
    -------
    steps : ndarray
        The step of every checkpoint (0, every, 2 every, ..., steps).
    W1s, W2s : list of ndarray
        The weights at those steps.
    """
    out, n = Cyx.shape
    W1 = init * rng.standard_normal((m, n))
    W2 = init * rng.standard_normal((out, m))
    at, W1s, W2s = [0], [W1], [W2]
    for step in range(1, steps + 1):
        W1, W2 = gradient_step(W1, W2, Cxx, Cyx, lr)
        if step % every == 0:
            at.append(step)
            W1s.append(W1)
            W2s.append(W2)
    return np.array(at), W1s, W2s


def half_rise(steps: np.ndarray, values: np.ndarray) -> np.ndarray:
    """For every column of ``values`` (time x modes): the first step where it reaches half its final value."""
    reached = values >= 0.5 * values[-1]
    return np.array([steps[np.argmax(reached[:, k])] for k in range(values.shape[1])])


def run(seed: int = 0, n_samples: int = 50_000, n: int = 20, out: int = 10, m: int = 16,
        singular_values: Sequence[float] = (5.0, 4.0, 3.0, 2.0, 1.0), noise: float = 0.1,
        steps: int = 800, every: int = 5, lr: float = 0.02, init: float = 1e-3,
        chunk_rows: int = 8192) -> Dict[str, Any]:
    """Train the network and descramble every checkpoint from one pass over the data.

    Parameters
    ----------
    seed : int
        Seed of the task, the data and the initial weights.
    n_samples : int
        Number of samples N.
    n, out, m : int
        Inputs, outputs and hidden units.
    singular_values : sequence of float
        The task's singular values, distinct and descending.
    noise : float
        Output noise standard deviation.
    steps, every : int
        Gradient steps, and steps between checkpoints.
    lr, init : float
        Learning rate and standard deviation of the initial weights.
    chunk_rows : int
        Rows per chunk of the data stream.

    Returns
    -------
    dict
        ``passes``, ``chunks_read`` (reads of the data stream, for the whole
        trajectory), ``steps`` (checkpoint steps), ``strength`` (a_k(t)^{1/2}:
        |(T^T P W1(t) V_yx)_kk|, the descrambled weight of smooth mode k on
        the task's k-th input direction; time x modes), ``s_yx`` (the task's
        singular values from the data), ``fixed_point`` (singular values of
        E[y x^T] E[x x^T]^{-1}, where a(t) ends), ``half_rise`` (step at which a_k
        reaches half its final value), ``alignment`` (relative distance of
        P W1(t) to T a(t)^{1/2} V_yx^T, per checkpoint), ``control_raw`` and
        ``control_rotation`` (the same distance for W1(t) itself and for a
        random rotation of P W1(t): wrong answers), ``gap`` (max |loss -
        bound| / bound over checkpoints), ``loss`` (training loss at the end),
        and the arrays ``PW1`` (final descrambled weights), ``W1``, ``V_yx``.
    """
    s = np.asarray(singular_values, dtype=float)
    if s.ndim != 1 or s.size < 1 or np.any(np.diff(s) >= 0) or s[-1] <= 0:
        raise ValueError(f"singular_values: expected distinct, positive, descending values, got {singular_values}")
    r = s.size
    if r > min(m, n, out):
        raise ValueError(f"singular_values: at most min(m, n, out) = {min(m, n, out)} modes, got {r}")
    if n_samples < n:
        raise ValueError(f"n_samples: expected at least n = {n} samples (E[x x^T] must be invertible), got {n_samples}")
    if steps < 1 or every < 1 or steps % every:
        raise ValueError(f"steps, every: expected positive integers with every dividing steps, got {steps}, {every}")
    rng = np.random.default_rng(seed)
    M = make_task(n, out, s, rng)
    data = LinearTask(M, n_samples, noise, seed + 1, chunk_rows)

    joint = descramble.accumulate(data)  # the only pass over the data
    Z = joint.autocorrelation()  # E[z z^T], z = [x; y]
    Cxx, Cyx, Cyy = Z[:n, :n], Z[n:, :n], Z[n:, n:]

    _, s_yx, Vt = np.linalg.svd(Cyx)
    V = Vt[:r].T  # V_yx: the task's input directions, strongest first
    # Where gradient descent ends: W2 W1 = E[y x^T] E[x x^T]^{-1}, balanced weights a_k -> its singular values.
    fixed_point = np.linalg.svd(np.linalg.solve(Cxx, Cyx.T).T, compute_uv=False)[:r]
    at, W1s, W2s = train(Cxx, Cyx, m, steps, every, lr, init, rng)

    Q, _ = np.linalg.qr(rng.standard_normal((m, m)))
    strength = np.empty((len(at), r))
    alignment = np.empty(len(at))
    control_raw = np.empty(len(at))
    control_rotation = np.empty(len(at))
    gaps = np.empty(len(at))

    def distance(X: np.ndarray, T: np.ndarray) -> Tuple[float, np.ndarray]:
        # X against T diag(a^{1/2}) V^T: the best diagonal is diag(T^T X V) (T, V orthonormal), with signs.
        diag = np.diag(T[:, :r].T @ X @ V)
        return float(np.linalg.norm(X - (T[:, :r] * diag) @ V.T) / np.linalg.norm(X)), np.abs(diag)

    for i, W1 in enumerate(W1s):
        d = descramble.descramble(W1, autocorrelation=Cxx, smoothness="fourier")
        T = d.basis
        alignment[i], strength[i] = distance(d.weights, T)
        control_raw[i] = distance(W1, T)[0]
        control_rotation[i] = distance(Q @ d.weights, T)[0]
        gaps[i] = abs(d.loss - d.bound) / d.bound

    W1, W2 = W1s[-1], W2s[-1]
    loss = 0.5 * float(np.trace(Cyy) - 2 * np.sum(Cyx * (W2 @ W1)) + np.sum((W2 @ W1 @ Cxx) * (W2 @ W1)))
    return {
        "seed": seed, "n": n, "out": out, "m": m, "n_samples": n_samples, "singular_values": s,
        "passes": data.passes, "chunks_read": data.chunks_read,
        "chunks_per_pass": -(-n_samples // chunk_rows), "checkpoints": len(at),
        "steps": at, "strength": strength, "s_yx": s_yx[:r], "fixed_point": fixed_point,
        "half_rise": half_rise(at, strength**2),
        "alignment": alignment, "control_raw": control_raw, "control_rotation": control_rotation,
        "gap": float(gaps.max()), "loss": loss,
        "PW1": d.weights, "W1": W1, "V_yx": V,
    }


def _figure(result: Dict[str, Any], out: Path) -> Path:
    plt, fig, axes = example_cli.figure(3, (14, 3.8))
    steps, strength = result["steps"], result["strength"]
    for k in range(strength.shape[1]):
        line, = axes[0].plot(steps, strength[:, k], label=f"s = {result['singular_values'][k]:g}")
        axes[0].axvline(result["half_rise"][k], color=line.get_color(), ls=":")
        axes[0].axhline(np.sqrt(result["s_yx"][k]), color=line.get_color(), ls="--", lw=0.8)
    axes[0].set(title="a_k(t)^1/2 along the smooth basis", xlabel="step")
    axes[0].legend()
    axes[1].semilogy(steps, result["alignment"], label="P W1 (descrambled)")
    axes[1].semilogy(steps, result["control_raw"], label="W1 (scrambled)")
    axes[1].set(title="distance to T a^1/2 V_yx^T", xlabel="step")
    axes[1].legend()
    V = result["V_yx"]
    axes[2].imshow(result["PW1"] @ V, cmap="RdBu_r", aspect="auto")
    axes[2].set(title="final P W1 V_yx", xlabel="task mode", ylabel="descrambled hidden unit")
    return example_cli.save(plt, fig, out, "linear_network.png")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command line: print the report (and save a figure with --out)."""
    args = example_cli.command_line(__doc__, 50_000, "linear_network.png", argv)
    r = example_cli.run(run, args)

    print(f"Task y = M x + noise: n={r['n']} inputs, {r['out']} outputs, singular values "
          f"{', '.join(f'{v:g}' for v in r['singular_values'])}; hidden m={r['m']}; "
          f"N={r['n_samples']} samples; seed {r['seed']}")
    print(f"Data reads for the whole trajectory: {r['passes']} pass, {r['chunks_read']} chunks "
          f"({r['chunks_per_pass']} per pass); {r['checkpoints']} checkpoints descrambled")
    print("mode   s_yx    final a_k^1/2   expected (fixed point)   half-rise step   s_yx * half-rise")
    for k in range(len(r["s_yx"])):
        print(f"  {k}   {r['s_yx'][k]:6.3f}   {r['strength'][-1, k]:10.4f}   {np.sqrt(r['fixed_point'][k]):18.4f}"
              f"   {r['half_rise'][k]:12d}   {r['s_yx'][k] * r['half_rise'][k]:14.0f}")
    ordered = bool(np.all(np.diff(r["half_rise"]) > 0))
    print(f"Modes appear in order of singular value: {ordered}")
    steps = r["steps"]
    for frac in (0.0, 0.25, 0.5, 1.0):
        i = int(round(frac * (len(steps) - 1)))
        print(f"step {steps[i]:5d}: distance of P W1 to T a^1/2 V_yx^T {r['alignment'][i]:.4f}   "
              f"(W1 itself {r['control_raw'][i]:.3f}, random rotation {r['control_rotation'][i]:.3f})")
    print(f"loss == bound at every checkpoint: max relative gap {r['gap']:.2e}; final training loss {r['loss']:.5f}")
    example_cli.report_figure(_figure, r, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
