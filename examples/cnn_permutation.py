"""A 1-D CNN that reads spectral lines, with its channels put in the smoothest order (issue 13).

The task: a spectrum of 64 channels holds one Gaussian line,
``a exp(-(x - c)^2 / (2 w^2))``, on a sloping baseline ``b0 + b1 (x - 32) / 32``
with white noise of standard deviation 0.05 (peak SNR 10 to 30); recover the
line's centre ``c`` (8 to 56 channels), width ``w`` (1.5 to 5) and amplitude
``a`` (0.5 to 1.5) - the fit a spectroscopist would do by least squares, done
by a network. The baseline is a nuisance (b0 in [-0.3, 0.3], b1 in [-0.2, 0.2]).

The network: Conv1d(1, 16, 7) - BatchNorm1d - ReLU - MaxPool(2) - Conv1d(16, 24, 5)
- BatchNorm1d - ReLU - MaxPool(2) - Flatten - Linear(384, 32) - ReLU - Linear(32, 3),
trained with Adam on standardised targets (CPU, one thread). It is compared with
the trivial baseline that predicts the training mean of every parameter.

Then ``descramble.torch.permute_model`` collects, in one pass over the test
spectra, the channel autocorrelation of both convolutions (pooled over positions
and spectra) and the autocorrelation of the hidden Linear's units, finds for each
layer the permutation of its units that minimises the smoothness loss
``tr(A P S P^T)`` (first differences along the unit axis: the mean squared difference between neighbouring units) and
rewrites the network: the convolutions' out-channels, the batch norms' statistics,
the next convolution's in-channels and the blocks of the Linear's columns after
the Flatten. The report prints, per layer, the loss of the trained order (the
identity), the loss of the permutation found, the orthogonal lower bound (the
closed form's ``sum_k lambda_k mu_k``, which no permutation can beat) and the
certificate gap ``(loss - bound) / bound``; and it checks that the permuted
network computes the same function (float32, on the test spectra). The figure
shows the filters of both convolutions and their channel autocorrelations in
the trained order and in the permuted order.

Run ``python examples/cnn_permutation.py [--quick] [--seed S] [--out DIR]``
(needs PyTorch; the figure needs matplotlib and goes to ``DIR/cnn_permutation.png``,
by default in a new temporary directory).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

import descramble

sys.path.insert(0, str(Path(__file__).resolve().parent))
import example_cli  # noqa: E402  (the examples' shared figure helpers)

try:  # PyTorch is optional: the example says so and stops without it
    import torch
    from torch import nn

    import descramble.torch as dtorch
except ImportError:  # pragma: no cover - exercised only without torch
    torch = None  # type: ignore[assignment]

NEEDS_TORCH = "examples/cnn_permutation.py trains a PyTorch network: pip install torch"

LENGTH = 64                       # spectral channels
NOISE = 0.05                      # white noise standard deviation
CENTRE = (8.0, 56.0)              # line centre c (channels)
WIDTH = (1.5, 5.0)                # line width w (channels, the Gaussian's standard deviation)
AMPLITUDE = (0.5, 1.5)            # line amplitude a
OFFSET, SLOPE = 0.3, 0.2          # baseline b0 in [-0.3, 0.3], b1 in [-0.2, 0.2]
NAMES = ("centre", "width", "amplitude")


def make_spectra(n: int, rng: np.random.Generator, noise: float = NOISE) -> Tuple[np.ndarray, np.ndarray]:
    """``n`` noisy spectra of shape (n, 1, 64) (float32) and their line parameters (n, 3): c, w, a."""
    c = rng.uniform(*CENTRE, n)
    w = rng.uniform(*WIDTH, n)
    a = rng.uniform(*AMPLITUDE, n)
    b0 = rng.uniform(-OFFSET, OFFSET, n)
    b1 = rng.uniform(-SLOPE, SLOPE, n)
    x = np.arange(LENGTH, dtype=np.float64)
    line = a[:, None] * np.exp(-((x[None, :] - c[:, None]) ** 2) / (2.0 * w[:, None] ** 2))
    baseline = b0[:, None] + b1[:, None] * (x[None, :] - LENGTH / 2) / (LENGTH / 2)
    X = line + baseline + noise * rng.standard_normal((n, LENGTH))
    return X[:, None, :].astype(np.float32), np.stack([c, w, a], axis=1)


def make_network(seed: int) -> "nn.Sequential":
    """The CNN (PyTorch's default initialisation, seeded)."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv1d(1, 16, 7, padding=3), nn.BatchNorm1d(16), nn.ReLU(), nn.MaxPool1d(2),
        nn.Conv1d(16, 24, 5, padding=2), nn.BatchNorm1d(24), nn.ReLU(), nn.MaxPool1d(2),
        nn.Flatten(), nn.Linear(24 * (LENGTH // 4), 32), nn.ReLU(), nn.Linear(32, 3),
    )


def train(net: "nn.Sequential", X: np.ndarray, Z: np.ndarray, *, epochs: int, batch: int, lr: float,
          seed: int) -> List[float]:
    """Adam on the mean squared error of the standardised targets ``Z``; the mean loss per epoch."""
    x, z = torch.from_numpy(X), torch.from_numpy(Z.astype(np.float32))
    optimiser = torch.optim.Adam(net.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=epochs)
    generator = torch.Generator().manual_seed(seed)
    history = []
    net.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        total = 0.0
        for start in range(0, len(x), batch):
            index = order[start:start + batch]
            optimiser.zero_grad()
            loss = torch.mean((net(x[index]) - z[index]) ** 2)
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * len(index)
        schedule.step()
        history.append(total / len(x))
    net.eval()
    return history


def predict(net: "nn.Module", X: np.ndarray) -> np.ndarray:
    """The network's outputs (float32 arithmetic) as a float64 array, in eval mode."""
    net.eval()
    with torch.no_grad():
        return net(torch.from_numpy(X)).double().numpy()


def run(seed: int = 0, n_train: int = 5000, n_test: int = 2000, epochs: int = 8, batch: int = 64,
        lr: float = 3e-3, smoothness: str = "fd", max_iterations: int = 200,
        threads: Optional[int] = 1) -> Dict[str, Any]:
    """Train the CNN, permute its hidden units, measure.

    Parameters
    ----------
    seed : int
        Seeds the spectra (NumPy), the initialisation and batches (PyTorch) and the permutation search.
    n_train, n_test : int
        Training and test spectra (the permutations come from the test spectra).
    epochs, batch, lr : int, int, float
        Adam's schedule (cosine-annealed learning rate).
    smoothness : str
        The smoothness operator along the units (default "fd": first differences, so the loss is
        the mean squared difference between neighbouring units).
    max_iterations : int
        Rounds of the permutation search per layer.
    threads : int or None
        PyTorch threads while training (restored afterwards); None: leave as is.

    Returns
    -------
    dict
        The numbers the report prints and the arrays the figure draws.
    """
    if torch is None:
        raise ImportError(NEEDS_TORCH)
    for name, value in (("n_train", n_train), ("n_test", n_test), ("epochs", epochs), ("batch", batch)):
        if int(value) < 1:
            raise ValueError(f"{name}: expected a positive integer, got {value}")
    if not lr > 0:
        raise ValueError(f"lr: expected a positive learning rate, got {lr}")
    rng = np.random.default_rng(seed)
    X, Y = make_spectra(n_train, rng)
    X_test, Y_test = make_spectra(n_test, rng)
    mean, scale = Y.mean(axis=0), Y.std(axis=0)

    saved_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        net = make_network(seed)
        t0 = time.perf_counter()
        history = train(net, X, (Y - mean) / scale, epochs=epochs, batch=batch, lr=lr, seed=seed)
        train_s = time.perf_counter() - t0
        Z_test = predict(net, X_test)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            # conv '0' has 16 channels computed from 7 taps and a bias: rank(S) <= 8, so only the
            # leading 8 components order its channels (the report says so).
            warnings.filterwarnings("ignore", category=descramble.UnderdeterminedWarning, message="layer '0'")
            permuted, descramblers = dtorch.permute_model(net, X_test, smoothness=smoothness,
                                                          max_iterations=max_iterations, seed=seed)
        permute_s = time.perf_counter() - t0
        Z_permuted = predict(permuted, X_test)
    finally:
        torch.set_num_threads(saved_threads)

    estimate = Z_test * scale + mean
    test_mse = float(np.mean((Z_test - (Y_test - mean) / scale) ** 2))  # standardised units
    baseline_mse = float(np.mean(((Y_test - mean) / scale) ** 2))       # predicting the training mean
    rmse = np.sqrt(np.mean((estimate - Y_test) ** 2, axis=0))
    baseline_rmse = np.sqrt(np.mean((mean - Y_test) ** 2, axis=0))

    layers: Dict[str, Dict[str, Any]] = {}
    for name, d in descramblers.items():
        assert d.hidden is not None and d.smoothness is not None and d.permutation is not None
        A, S = d.smoothness.gram, d.hidden
        trained_loss = float(np.trace(A @ S))            # the identity: units in their trained order
        PSPt = d.P @ S @ d.P.T
        layers[name] = {
            "kind": type(net.get_submodule(name)).__name__, "units": int(S.shape[0]), "rows": d.n_samples,
            "trained_loss": trained_loss, "loss": float(d.loss), "bound": float(d.bound), "gap": float(d.gap or 0.0),
            "loss_check": float(np.trace(A @ PSPt)),     # NumPy's tr(A P S P^T), independent of the core
            "trained_gap": (trained_loss - float(d.bound)) / float(d.bound),
            "permutation": d.permutation, "S": S, "PSPt": PSPt,
            "identity": bool(np.array_equal(d.permutation, np.arange(S.shape[0]))),
            "rank": int(np.sum(d.spectrum > S.shape[0] * np.finfo(float).eps * d.spectrum.max())),
        }
    return {
        "seed": seed, "smoothness": smoothness, "n_train": n_train, "n_test": n_test, "epochs": epochs, "batch": batch, "lr": lr,
        "train_s": train_s, "permute_s": permute_s, "history": history,
        "test_mse": test_mse, "baseline_mse": baseline_mse, "rmse": rmse, "baseline_rmse": baseline_rmse,
        "max_output_change": float(np.abs(Z_permuted - Z_test).max()),
        "max_output": float(np.abs(Z_test).max()),
        "layers": layers,
        "W1": net[0].weight.detach().double().numpy()[:, 0, :], "W1p": permuted[0].weight.detach().double().numpy()[:, 0, :],
        "W2": net[4].weight.detach().double().numpy(), "W2p": permuted[4].weight.detach().double().numpy(),
        "original": net, "permuted": permuted, "X_test": X_test,
    }


def draw_figure(r: Dict[str, Any], out: Path) -> Path:
    """Filters and normalised channel autocorrelations of both convolutions, trained order vs permuted order,
    with each layer's certificate in the titles."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(2, 4, figsize=(18, 9.5))
    for ax in axes.flat:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    fig.subplots_adjust(left=0.04, right=0.97, bottom=0.06, top=0.88, wspace=0.3, hspace=0.38)
    panels = (("0", r["W1"], r["W1p"], "tap", "conv '0' filters (16 x 7 taps)"),
              ("4", r["W2"].sum(axis=2), r["W2p"].sum(axis=2), "in-channel (permuted like conv '0')",
               "conv '4' kernel sums over the 5 taps (24 x 16)"))
    for row, (name, W, Wp, xlabel, what) in enumerate(panels):
        info = r["layers"][name]
        certificate = (f"loss {info['loss']:.4g} (trained order {info['trained_loss']:.4g}), "
                       f"bound {info['bound']:.3g}, gap {info['gap']:.2f}")
        lim = float(np.abs(W).max())
        for ax, M, title in ((axes[row, 0], W, f"{what}\ntrained order"),
                             (axes[row, 1], Wp, f"{what}, permuted\n{certificate}")):
            im = ax.imshow(M, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
            ax.set_title(title, fontsize=10)
            ax.set_ylabel("out-channel")
            ax.set_xlabel(xlabel)
        fig.colorbar(im, ax=axes[row, 1], fraction=0.05, pad=0.03)
        for ax, M, title in ((axes[row, 2], info["S"], f"conv '{name}' channels: S_ij / sqrt(S_ii S_jj)\n"
                                                        f"trained order, loss {info['trained_loss']:.4g}"),
                             (axes[row, 3], info["PSPt"], f"conv '{name}' channels: S_ij / sqrt(S_ii S_jj), permuted\n"
                                                          f"loss {info['loss']:.4g}, gap {info['gap']:.2f}")):
            d = np.sqrt(np.diag(M))
            im = ax.imshow(M / np.outer(d, d), cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
            ax.set_title(title, fontsize=10)
            ax.set_xlabel("channel")
            ax.set_ylabel("channel")
        fig.colorbar(im, ax=axes[row, 3], fraction=0.05, pad=0.03)
    fig.suptitle(f"1-D CNN reading spectral lines: channels permuted to the smoothest order found "
                 f"({r['smoothness']} smoothness; the network's outputs change by at most "
                 f"{r['max_output_change']:.1e})", fontsize=12)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "cnn_permutation.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def report(r: Dict[str, Any]) -> None:
    """Print the report of :func:`run`'s result."""
    print(f"1-D CNN reading a Gaussian line on a sloping baseline (64 channels, noise {NOISE}): {r['n_train']} "
          f"training spectra, {r['epochs']} epochs of Adam (lr {r['lr']:g}, batch {r['batch']}), seed {r['seed']}; "
          f"training {r['train_s']:.1f} s")
    print(f"test ({r['n_test']} spectra): MSE of the standardised parameters {r['test_mse']:.4f} "
          f"(predicting the training mean: {r['baseline_mse']:.4f})")
    print("  RMSE " + ", ".join(f"{n} {e:.3f} (baseline {b:.3f})"
                                for n, e, b in zip(NAMES, r["rmse"], r["baseline_rmse"])))
    print(f"permute_model: one pass over the test spectra, {r['permute_s']:.2f} s")
    print(f"  smoothness loss tr(A P S P^T) of each layer's pre-activations ({r['smoothness']} smoothness), "
          "S from rows of units (a convolution: every position of every spectrum)")
    print(f"  {'layer':<7}{'kind':<8}{'units':>6}{'rank S':>7}{'rows':>9}{'trained order':>15}{'permuted':>12}"
          f"{'bound':>12}{'gap':>9}{'gap of trained':>16}")
    for name, info in r["layers"].items():
        print(f"  {name!r:<7}{info['kind']:<8}{info['units']:>6}{info['rank']:>7}{info['rows']:>9}"
              f"{info['trained_loss']:>15.5g}{info['loss']:>12.5g}{info['bound']:>12.5g}{info['gap']:>9.3f}"
              f"{info['trained_gap']:>16.3f}")
    print(f"outputs of the permuted network vs the trained one (float32, test spectra): max |change| "
          f"{r['max_output_change']:.1e} (outputs up to {r['max_output']:.2f})")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command line: train, permute, print the report and save the figure."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true",
                        help="2 000 training spectra, 5 epochs, 50 search rounds (a few seconds; the test)")
    parser.add_argument("--train", type=int, default=None, help="training spectra (5 000)")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (8)")
    parser.add_argument("--threads", type=int, default=1, help="PyTorch threads while training (1)")
    parser.add_argument("--out", type=Path, default=None,
                        help="directory for cnn_permutation.png (default: a new temporary directory)")
    args = parser.parse_args(argv)
    if torch is None:
        print(NEEDS_TORCH, file=sys.stderr)
        return 1
    settings: Dict[str, Any] = dict(n_train=2000, n_test=1000, epochs=5, max_iterations=50) if args.quick else {}
    if args.train is not None:
        settings["n_train"] = args.train
    if args.epochs is not None:
        settings["epochs"] = args.epochs
    try:
        r = run(seed=args.seed, threads=args.threads, **settings)
    except ValueError as exc:
        parser.error(str(exc))
    report(r)
    out = args.out if args.out is not None else Path(tempfile.mkdtemp(prefix="cnn_permutation_"))
    example_cli.report_figure(draw_figure, r, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
