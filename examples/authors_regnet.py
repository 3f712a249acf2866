"""The authors' own experiment: the "regnet" of ShashankSule/descrambling-NN, scaled down.

A scaled-down reproduction (not their trained network, not their data files) of
the inverse-Laplace / biexponential-relaxometry network whose first layer Sule,
Spencer & Czaja descramble in their public code (``regnet/``), checked against
that code:

* signals ``0.6 exp(-t/T21) + 0.4 exp(-t/T22)`` on 64 times ``linspace(0, 800)``
  (800 = 1.6 x 500), (T21, T22) on the Cartesian product of ``linspace(50, 500, 50)``
  with each pair swapped so that T21 <= T22 (makeDataset_2022_SNR900Lneg3.py);
  test set on ``linspace(75, 475, 50)``, as their Testing/Validation sets;
* Gaussian noise of standard deviation ``1/sqrt(SNR)`` (variance 1/SNR), SNR 1e4;
* input of 128 samples: the SAME noisy decay concatenated with itself (one
  noise realisation, not two): their "ND, ND" input (``NoisyDecaysDataSet``
  with ``noisy_concat=2``; ``regnetdata.m`` builds ``[nd nd]`` the same way).
  Note: the training notebook in their repository (RegTraj_2022_SNR900_L3.ipynb)
  trains its network on "ND, B" instead: the noisy decay followed by the decay
  of an L2-regularised NLLS fit (lambda 1.6e-4); their jun10 figures cover both
  nets (NDND, NDBP). This example does ND, ND only;
* ``regularizationTrajNN``: 128-32-256-256-32-2, ReLU, PyTorch's default
  initialisation; Adam, MSE on (T21, T22) in ms, NOT normalised, shuffled
  batches of 50.

Scaled down: theirs is 625 000 signals (2 500 pairs x 250 draws), 15 epochs at
learning rate 1e-4 (187 500 steps, on a GPU). Here: 40 000 signals (16 draws per
pair), 15 epochs, learning rate 1e-3 (10x theirs, for 16x fewer steps); about
4 minutes on one contended core (240 s measured, seed 0), test mean percent
error 3.4 % (T21) and 4.6 % (T22). ``--quick`` (the test): 5 000 signals, 3
epochs and targets in units of 500 ms (raw-ms targets sit on a plateau for
~2 000 steps first), percent errors 5-9 %.

The first layer is descrambled from the test inputs WITH its bias
(``descramble.descramble(W1, data=X, bias=b1)``, Fourier smoothness of order 2).
Their code differs here: ``descramble.m`` minimises iteratively (fmincon over
the Cayley parametrisation) with ``fourdif(m, 1)`` (order 1: for even m its
Nyquist row is zero, so the alternating pattern counts as smooth) in one
version and a circular central difference ``finitediff(m, 1)`` in another
(jun10/FinDiff); its figures tap the first layer's output (pre-activation,
bias included) on their validation inputs, and some runs on Gaussian inputs
(x_randn). The central difference is shown too, as a user-supplied D: its null
space holds the constant AND the alternating pattern, and half the descrambled
power lands on the Nyquist frequency.

What matches their figures (Weights_2, FFTs_2, LeftSV_2, SingLeftFFT_2; seed 0,
full run; quick-mode ranges over seeds 0-6 in tests/test_examples.py):

* the loss equals the bound (relative gap ~1e-11);
* the descrambled pre-activations put all their power on the lowest neuron
  frequencies (k < 3: 1.000, raw 0.30), the descrambled left singular vectors
  P u1, P u2 are low-frequency (|FFT|^2 fraction at k < 3: 0.9999 and 0.998,
  raw 0.48 and 0.07), P W1 is smooth down its columns (roughness 0.44, W1 1.67)
  and its |2-D DFT| gathers at the centre;
* the filter the descrambler puts first (the frequency-0 row of P W1) is a
  smooth function of time (0.96 of its |FFT|^2 at input frequencies < 8; a raw
  row 0.58).

What does not, or is not what it seems:

* rows as a whole do not get smoother along the input axis: P only mixes rows,
  so the total input-axis roughness of P W1 equals that of W1 exactly;
* the descrambled weights are not the SVD laid out along T (docs/math.md §3's
  ``P W = T Sigma V^T`` needs isotropic inputs): the frequency < 3 rows of P W1
  share three or four of their five directions with the top five right singular
  vectors of W1 (angles 75.6, 26.9, 2.8, 0.5, 0.05 deg); with Gaussian inputs
  the same angles are 20.6, 7.4, 0.4, 0.2, 0.03 deg (the quick network: largest
  angle 73-87 deg from the decays, 6-14 deg from Gaussian inputs);
* with the same decay fed twice both halves of W1 get identical gradients, so
  their difference never leaves its random initialisation (drift ~1e-7): half
  of the raw W1 in their Weights figures is untrained noise, and the right
  singular vectors of W1 carry it.

Run ``python examples/authors_regnet.py [--quick] [--seed S] [--out DIR]``
(needs PyTorch; figures need matplotlib).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

import descramble

sys.path.insert(0, str(Path(__file__).resolve().parent))
import example_cli  # noqa: E402  (the examples' shared figure helpers)

try:  # PyTorch is optional: the example says so and stops without it
    import torch
except ImportError:  # pragma: no cover - exercised only without torch
    torch = None  # type: ignore[assignment]

NEEDS_TORCH = "examples/authors_regnet.py trains a PyTorch network: pip install torch"

# The authors' problem (makeDataset_2022_SNR900Lneg3.py, RegTraj_2022_SNR900_L3.ipynb).
C1, C2 = 0.6, 0.4                      # fixed component fractions
N_TIMES, T_MAX = 64, 800.0             # 64 echo times in [0, 1.6 * 500]
TRAIN_RANGE = (50.0, 500.0)            # training grid of T21, T22 (ms)
TEST_RANGE = (75.0, 475.0)             # their testing / validation grid
SNR = 1e4                              # noise standard deviation 1/sqrt(SNR) = 0.01
WIDTHS = (2 * N_TIMES, 32, 256, 256, 32, 2)


def times() -> np.ndarray:
    """The 64 acquisition times, ``linspace(0, 800, 64)``."""
    return np.linspace(0.0, T_MAX, N_TIMES)


def make_signals(grid: int, realisations: int, t_range: Tuple[float, float], rng: np.random.Generator,
                 snr: float = SNR) -> Tuple[np.ndarray, np.ndarray]:
    """Noisy biexponential decays on a grid of (T21, T22), each fed twice (the authors' "ND, ND" input).

    Every pair of the ``grid x grid`` Cartesian product of ``linspace(*t_range, grid)``
    is swapped so that T21 <= T22 (as the authors do), and gets ``realisations``
    independent noise draws of standard deviation ``1/sqrt(snr)``. The input is
    the noisy decay concatenated with the SAME noisy decay (128 samples).

    Returns
    -------
    X : ndarray of shape (grid**2 * realisations, 128)
    Y : ndarray of shape (grid**2 * realisations, 2)
        The targets (T21, T22) in ms, not normalised (as the authors').
    """
    axis = np.linspace(t_range[0], t_range[1], grid)
    a, b = np.meshgrid(axis, axis, indexing="ij")
    pairs = np.sort(np.stack([a.ravel(), b.ravel()], axis=1), axis=1)
    Y = np.repeat(pairs, realisations, axis=0)
    t = times()
    clean = C1 * np.exp(-t / Y[:, :1]) + C2 * np.exp(-t / Y[:, 1:])
    noisy = clean + rng.standard_normal(clean.shape) / np.sqrt(snr)
    return np.hstack([noisy, noisy]), Y


def make_network(seed: int) -> Any:
    """The authors' ``regularizationTrajNN``: 128-32-256-256-32-2, ReLU, PyTorch's default initialisation."""
    torch.manual_seed(seed)
    layers: List[Any] = []
    for k, (n_in, n_out) in enumerate(zip(WIDTHS[:-1], WIDTHS[1:])):
        layers.append(torch.nn.Linear(n_in, n_out))
        if k < len(WIDTHS) - 2:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def train(net: Any, X: np.ndarray, Y: np.ndarray, *, epochs: int, batch: int, lr: float, seed: int) -> List[float]:
    """Adam on the mean squared error of (T21, T22) in ms, shuffled mini-batches (the authors' loop)."""
    Xt = torch.as_tensor(X, dtype=torch.float32)
    Yt = torch.as_tensor(Y, dtype=torch.float32)
    optimiser = torch.optim.Adam(net.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    history = []
    for _ in range(epochs):
        order = torch.randperm(len(Xt), generator=generator)
        total = 0.0
        for start in range(0, len(Xt), batch):
            idx = order[start:start + batch]
            optimiser.zero_grad()
            loss = torch.nn.functional.mse_loss(net(Xt[idx]), Yt[idx])
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * len(idx)
        history.append(total / len(Xt))
    return history


def predict(net: Any, X: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return net(torch.as_tensor(X, dtype=torch.float32)).double().numpy()


# -- measures --------------------------------------------------------------------------


def low_fraction(M: np.ndarray, k: int, axis: int) -> np.ndarray:
    """Fraction of |FFT|^2 in the lowest ``k`` frequencies (0..k-1 and their negatives) along ``axis``.

    For each vector along the other axis; independent of the descrambler's basis.
    """
    F = np.abs(np.fft.fft(M, axis=axis)) ** 2
    n = M.shape[axis]
    freq = np.abs(np.fft.fftfreq(n, d=1.0 / n))
    low = np.take(F, np.flatnonzero(freq < k), axis=axis).sum(axis=axis)
    return low / F.sum(axis=axis)


def roughness(M: np.ndarray, axis: int) -> float:
    """Mean squared circular first difference along ``axis`` over the mean square: 0 for constants, 4 at most."""
    return float(np.sum((np.roll(M, -1, axis=axis) - M) ** 2) / np.sum(M**2))


def principal_angles(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Principal angles (degrees, ascending) between the row spaces of A and B."""
    Qa = np.linalg.svd(A, full_matrices=False)[2]
    Qb = np.linalg.svd(B, full_matrices=False)[2]
    cosines = np.clip(np.linalg.svd(Qa @ Qb.T, compute_uv=False), 0.0, 1.0)
    return np.degrees(np.arccos(cosines))[::-1]


def neuron_blocks(M: np.ndarray, k: int) -> np.ndarray:
    """The rows of M (m x n) resolved onto the 2k-1 lowest real Fourier modes of the neuron axis (numpy.fft)."""
    m = M.shape[0]
    F = np.fft.fft(M, axis=0) / np.sqrt(m)
    rows = [F[0].real] + [np.sqrt(2.0) * part for j in range(1, k) for part in (F[j].real, F[j].imag)]
    return np.array(rows)


def central_difference(m: int) -> np.ndarray:
    """The authors' alternative operator (their ``finitediff(m, 1)``): circular central difference / m.

    Row i is ``(e_{i+1} - e_{i-1}) / (2 m)``. Its null space holds the constant AND
    the alternating (Nyquist) pattern, and frequencies k and m/2 - k share an
    eigenvalue, so it does not order modes by frequency the way fourdif does.
    """
    D = (np.roll(np.eye(m), 1, axis=1) - np.roll(np.eye(m), -1, axis=1)) / 2.0
    return D / m


def hidden_power(H: np.ndarray) -> np.ndarray:
    """Power of hidden signals (rows of H, m columns) per neuron-axis frequency k = 0..m/2 (numpy.fft)."""
    m = H.shape[1]
    F = np.abs(np.fft.fft(H, axis=1)) ** 2 / m
    k = np.abs(np.fft.fftfreq(m, d=1.0 / m)).astype(int)
    return np.bincount(k, weights=F.mean(axis=0), minlength=m // 2 + 1)


def run(seed: int = 0, grid: int = 50, realisations: int = 16, epochs: int = 15, batch: int = 50,
        lr: float = 1e-3, target_scale: float = 1.0, test_realisations: int = 4, threads: Optional[int] = 1,
        k_low: int = 3, k_input: int = 8) -> Dict[str, Any]:
    """Train the authors' network (scaled down), descramble its first layer with its bias, measure.

    Parameters
    ----------
    seed : int
        Seeds the data (NumPy) and the network's initialisation and batches (PyTorch).
    grid, realisations : int
        The training set: a ``grid x grid`` grid of (T21, T22) in [50, 500] ms,
        ``realisations`` noise draws per pair (authors: 50 x 50, 250).
    epochs, batch, lr : int, int, float
        Adam's schedule (authors: 15 epochs, batch 50, lr 1e-4).
    target_scale : float
        Train on (T21, T22) / target_scale (authors: 1, targets in ms).
    test_realisations : int
        Noise draws per pair of the test grid (50 x 50 in [75, 475] ms, as theirs).
        The first layer is descrambled from these test inputs (the authors used
        their validation inputs).
    threads : int or None
        PyTorch threads while training (restored afterwards); None: leave as is.
    k_low, k_input : int
        Frequencies counted as "low" along the neuron axis and along the input axis.

    Returns
    -------
    dict
        The numbers the report prints (see :func:`main`) and the matrices the figures draw.
    """
    if torch is None:
        raise ImportError(NEEDS_TORCH)
    for name, value in (("grid", grid), ("realisations", realisations), ("epochs", epochs), ("batch", batch),
                        ("test_realisations", test_realisations)):
        if int(value) < 1:
            raise ValueError(f"{name}: expected a positive integer, got {value}")
    if not lr > 0 or not target_scale > 0:
        raise ValueError(f"lr and target_scale must be positive, got {lr} and {target_scale}")
    rng = np.random.default_rng(seed)
    X, Y = make_signals(grid, realisations, TRAIN_RANGE, rng)
    X_test, Y_test = make_signals(50, test_realisations, TEST_RANGE, rng)

    saved_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        net = make_network(seed)
        W_init = net[0].weight.detach().double().numpy().copy()
        t0 = time.perf_counter()
        history = train(net, X, Y / target_scale, epochs=epochs, batch=batch, lr=lr, seed=seed)
        train_s = time.perf_counter() - t0
        predicted = predict(net, X_test) * target_scale
    finally:
        torch.set_num_threads(saved_threads)
    history = [h * target_scale**2 for h in history]
    percent_error = np.mean(np.abs(predicted - Y_test) / Y_test, axis=0) * 100
    rmse = np.sqrt(np.mean((predicted - Y_test) ** 2, axis=0))

    W = net[0].weight.detach().double().numpy()
    b = net[0].bias.detach().double().numpy()
    m = W.shape[0]
    # The same decay fed twice: both halves of W1 get identical gradients, so their
    # difference never leaves its initial value (Adam's updates are elementwise).
    antisym_drift = float(np.abs((W[:, :N_TIMES] - W[:, N_TIMES:]) - (W_init[:, :N_TIMES] - W_init[:, N_TIMES:])).max())
    sym_change = float(np.abs((W - W_init)[:, :N_TIMES] + (W - W_init)[:, N_TIMES:]).max())

    d = descramble.descramble(W, data=X_test, bias=b, smoothness="fourier", order=2)
    PW = d.weights
    H = X_test @ W.T + b                                  # the pre-activations, neurons in training order
    power_raw, power = hidden_power(H), hidden_power(H @ d.P.T)
    U, sigma, Vt = np.linalg.svd(W, full_matrices=False)

    # Gaussian inputs (the authors' x_randn runs): isotropic C, where docs/math.md §3 predicts P W = T Sigma V^T.
    Z = np.random.default_rng(seed + 1).standard_normal((20_000, WIDTHS[0]))
    d_randn = descramble.descramble(W, data=Z, bias=b)
    # The authors' central-difference operator (their finitediff.m), as a user-supplied D.
    d_fd = descramble.descramble(W, data=X_test, bias=b, smoothness=central_difference(m))
    power_fd = hidden_power(H @ d_fd.P.T)

    r_top = 2 * k_low - 1                                 # rows of the k_low lowest neuron frequencies
    low_rows = neuron_blocks(PW, k_low)
    first_row = neuron_blocks(PW, 1)
    rng_rot = np.random.default_rng(seed + 2)
    R, _ = np.linalg.qr(rng_rot.standard_normal((m, m)))
    return {
        "seed": seed, "n_train": len(X), "n_test": len(X_test), "epochs": epochs, "batch": batch, "lr": lr,
        "target_scale": target_scale, "train_s": train_s, "history": history,
        "percent_error": percent_error, "rmse": rmse,
        "antisym_drift": antisym_drift, "sym_change": sym_change,
        "loss": d.loss, "bound": d.bound, "gap": (d.loss - d.bound) / abs(d.bound),
        "power": power, "power_raw": power_raw, "power_fd": power_fd,
        "low_power": float(power[:k_low].sum() / power.sum()),
        "low_power_raw": float(power_raw[:k_low].sum() / power_raw.sum()),
        "low_power_fd": float(power_fd[:k_low].sum() / power_fd.sum()),
        "nyquist_power_fd": float(power_fd[-1] / power_fd.sum()),
        "lsv_low": low_fraction(d.P @ U[:, :2], k_low, axis=0),
        "lsv_low_raw": low_fraction(U[:, :2], k_low, axis=0),
        "weights_low": float(low_fraction(PW, k_low, axis=0).mean()),
        "weights_low_raw": float(low_fraction(W, k_low, axis=0).mean()),
        "column_roughness": roughness(PW, 0), "column_roughness_raw": roughness(W, 0),
        "row_roughness": roughness(PW, 1), "row_roughness_raw": roughness(W, 1),
        "first_row_input_low": float(low_fraction(first_row[:, :N_TIMES], k_input, axis=1)[0]),
        "rows_input_low_raw": float(low_fraction(W[:, :N_TIMES], k_input, axis=1).mean()),
        "rsv_input_low": low_fraction(Vt[:3, :N_TIMES], k_input, axis=1),
        "angle_first": float(principal_angles(first_row, Vt[:1])[-1]),
        "angle_first_raw": float(principal_angles(W[:1], Vt[:1])[-1]),
        "angle_first_rotated": float(principal_angles(neuron_blocks(R @ PW, 1), Vt[:1])[-1]),
        "angles_low": principal_angles(low_rows, Vt[:r_top]),
        "angles_low_randn": principal_angles(neuron_blocks(d_randn.weights, k_low), Vt[:r_top]),
        "k_low": k_low, "k_input": k_input,
        "W": W, "b": b, "PW": PW, "P": d.P, "U": U, "sigma": sigma, "Vt": Vt, "PW_randn": d_randn.weights,
        "PW_fd": d_fd.weights,
    }


def _figure(r: Dict[str, Any], out: Path) -> List[Path]:
    """The authors' figures (Weights_2, FFTs_2, LeftSV_2, SingLeftFFT_2), plus the right singular vectors."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def recentred(M: np.ndarray) -> np.ndarray:  # |2-D DFT| with frequency 0 in the middle of both axes
        return np.abs(np.fft.fftshift(np.fft.fft2(M)))

    W, PW, U, P, Vt = r["W"], r["PW"], r["U"], r["P"], r["Vt"]
    paths = []
    fig, axes = plt.subplots(2, 2, figsize=(12, 7))
    for ax, M, title in ((axes[0, 0], W, "W1: raw (neurons in training order)"),
                         (axes[0, 1], PW, "P W1: descrambled (Fourier, order 2, with bias)"),
                         (axes[1, 0], recentred(W), "|2-D DFT| of W1 (centred)"),
                         (axes[1, 1], recentred(PW), "|2-D DFT| of P W1 (centred)")):
        im = ax.imshow(M, aspect="auto", cmap="viridis")
        ax.set_title(title)
        ax.set_xlabel("input index (64 times, then the same 64 again)")
        ax.set_ylabel("neuron")
        fig.colorbar(im, ax=ax)
    paths.append(example_cli.save(plt, fig, out, "authors_regnet_weights.png"))

    fig, axes = plt.subplots(2, 3, figsize=(15, 7))
    axes[0, 0].imshow(U, aspect="auto", cmap="viridis")
    axes[0, 0].set_title("left singular vectors of W1: raw")
    axes[0, 1].imshow(P @ U, aspect="auto", cmap="viridis")
    axes[0, 1].set_title("left singular vectors: descrambled (P U)")
    m = U.shape[0]
    k = np.fft.fftshift(np.fft.fftfreq(m, d=1.0 / m))
    for j, style in ((0, "-o"), (1, "-s")):
        axes[0, 2].plot(k, np.fft.fftshift(np.abs(np.fft.fft(U[:, j]))), "r" + style, ms=3, label=f"raw u{j + 1}")
        axes[0, 2].plot(k, np.fft.fftshift(np.abs(np.fft.fft((P @ U)[:, j]))), "b" + style, ms=3,
                        label=f"descrambled P u{j + 1}")
    axes[0, 2].set_title("|FFT| of the first two left singular vectors")
    axes[0, 2].set_xlabel("neuron-axis frequency")
    axes[0, 2].legend(fontsize=8)
    t = times()
    for j in range(3):
        axes[1, 0].plot(t, Vt[j, :N_TIMES], label=f"v{j + 1} (first copy of the decay)")
    axes[1, 0].set_title("right singular vectors of W1 (input axis)")
    axes[1, 0].set_xlabel("time (ms)")
    axes[1, 0].legend(fontsize=8)
    kin = np.fft.fftshift(np.fft.fftfreq(N_TIMES, d=1.0 / N_TIMES))
    for j in range(3):
        axes[1, 1].plot(kin, np.fft.fftshift(np.abs(np.fft.fft(Vt[j, :N_TIMES]))), label=f"|FFT v{j + 1}|")
    axes[1, 1].set_title("|FFT| of the right singular vectors (input axis)")
    axes[1, 1].set_xlabel("input-axis frequency")
    axes[1, 1].legend(fontsize=8)
    first = neuron_blocks(PW, 1)[0]
    v1 = Vt[0] * np.sign(Vt[0] @ first)
    axes[1, 2].plot(t, first[:N_TIMES] / np.linalg.norm(first), "b-", label="frequency-0 row of P W1 (normalised)")
    axes[1, 2].plot(t, v1[:N_TIMES], "r--", label="v1")
    axes[1, 2].set_title(f"descrambled filter vs v1: {r['angle_first']:.0f} deg apart")
    axes[1, 2].set_xlabel("time (ms)")
    axes[1, 2].legend(fontsize=8)
    paths.append(example_cli.save(plt, fig, out, "authors_regnet_singular_vectors.png"))

    fig, ax = plt.subplots(1, 1, figsize=(7, 4))
    kk = np.arange(len(r["power"]))
    ax.semilogy(kk, r["power_raw"], "r-o", ms=3, label="raw pre-activations")
    ax.semilogy(kk, r["power"], "b-o", ms=3, label="descrambled, Fourier order 2")
    ax.semilogy(kk, r["power_fd"], "g-s", ms=3, label="descrambled, their central difference")
    ax.set_xlabel("neuron-axis frequency k")
    ax.set_ylabel("mean power")
    ax.set_title("first-layer pre-activations on the test decays")
    ax.legend(fontsize=8)
    paths.append(example_cli.save(plt, fig, out, "authors_regnet_power.png"))
    return paths


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command line: train, descramble, print the report (and save the figures with --out)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true",
                        help="5 000 training signals, 3 epochs, targets in units of 500 ms (about 10 s; the test)")
    parser.add_argument("--realisations", type=int, default=None, help="noise draws per (T21, T22) pair (16)")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (15)")
    parser.add_argument("--threads", type=int, default=1, help="PyTorch threads while training (1)")
    parser.add_argument("--out", type=Path, default=None, help="directory for the figures (needs matplotlib)")
    args = parser.parse_args(argv)
    if torch is None:
        print(NEEDS_TORCH, file=sys.stderr)
        return 1
    settings: Dict[str, Any] = (dict(realisations=2, epochs=3, target_scale=500.0, test_realisations=1)
                                if args.quick else {})
    if args.realisations is not None:
        settings["realisations"] = args.realisations
    if args.epochs is not None:
        settings["epochs"] = args.epochs
    try:
        r = run(seed=args.seed, threads=args.threads, **settings)
    except ValueError as exc:
        parser.error(str(exc))
    k = r["k_low"]
    print(f"The authors' regnet, scaled down: {r['n_train']} training signals ((T21, T22) on a 50 x 50 grid in "
          f"[50, 500] ms, SNR 1e4, the noisy decay fed twice), 128-32-256-256-32-2 ReLU, Adam lr {r['lr']:g}, "
          f"batch {r['batch']}, {r['epochs']} epochs, targets / {r['target_scale']:g}; seed {r['seed']}")
    print(f"training: {r['train_s']:.1f} s, final training MSE {r['history'][-1]:.1f} ms^2")
    print(f"test ({r['n_test']} signals, grid in [75, 475] ms): mean percent error T21 {r['percent_error'][0]:.2f} %, "
          f"T22 {r['percent_error'][1]:.2f} %; RMSE {r['rmse'][0]:.1f} / {r['rmse'][1]:.1f} ms")
    print(f"same decay twice: the antisymmetric half of W1 moved {r['antisym_drift']:.1e} from its "
          f"initialisation (the symmetric half: {r['sym_change']:.3f})")
    print(f"first layer descrambled from the test inputs with its bias: loss {r['loss']:.8g}, bound {r['bound']:.8g}, "
          f"relative gap {r['gap']:.1e}")
    print(f"pre-activation power in neuron frequencies k < {k}: descrambled {r['low_power']:.4f}, "
          f"raw {r['low_power_raw']:.4f}")
    print(f"  with their central-difference operator: {r['low_power_fd']:.4f}, and {r['nyquist_power_fd']:.4f} "
          f"at the Nyquist frequency (that operator calls the alternating pattern smooth)")
    print(f"left singular vectors u1, u2 of W1, |FFT|^2 fraction at k < {k}: descrambled "
          f"{r['lsv_low'][0]:.3f}, {r['lsv_low'][1]:.3f}; raw {r['lsv_low_raw'][0]:.3f}, {r['lsv_low_raw'][1]:.3f}")
    print(f"roughness along the neuron axis (columns): P W1 {r['column_roughness']:.3f}, "
          f"W1 {r['column_roughness_raw']:.3f}")
    print(f"roughness along the input axis (rows), all rows: P W1 {r['row_roughness']:.6f}, W1 "
          f"{r['row_roughness_raw']:.6f} (equal: P only mixes rows)")
    print(f"input-axis |FFT|^2 fraction at k < {r['k_input']} (first copy of the decay): frequency-0 row of P W1 "
          f"{r['first_row_input_low']:.3f}, mean raw row {r['rows_input_low_raw']:.3f}, "
          f"v1..v3 {np.round(r['rsv_input_low'], 3).tolist()}")
    print(f"principal angles (deg) between the frequency < {k} rows of P W1 and the top {2 * k - 1} right "
          f"singular vectors of W1: {np.round(r['angles_low'], 1).tolist()}")
    print(f"  the same with Gaussian inputs (the authors' x_randn runs): "
          f"{np.round(r['angles_low_randn'], 1).tolist()}")
    if args.out is not None:
        try:
            paths = _figure(r, args.out)
        except ImportError:
            print("no figure: matplotlib is missing (pip install matplotlib)")
        else:
            for path in paths:
                print(f"figure: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
