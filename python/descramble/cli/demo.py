"""``descramble demo``: the whole story on an embedded default problem.

1. Simulate biexponential relaxometry signals (:mod:`descramble.cli.relaxometry`).
2. Train a small tanh MLP to recover (T2a, T2b, c) with NumPy (:mod:`descramble.cli.mlp`).
3. Stream the training signals through the core once: the input, and every
   hidden layer's autocorrelation (:func:`descramble.hidden_autocorrelations`).
4. Descramble the first layer in closed form from the input autocorrelation
   (docs/math.md §3), and the second (non-linear input) from its hidden
   autocorrelation, its inputs reordered by the descrambler of the first
   layer's outputs (P2 W2 Q1^T, :func:`descramble.descramble_network`);
   descramble every training checkpoint from the same single input
   accumulator (no second pass over the data).
5. Measure how the descrambler converges as N grows (docs/math.md §5).
6. Write figures, arrays, ``summary.json`` and ``index.html``
   (:mod:`descramble.cli.report`).
"""

from __future__ import annotations

import time
from typing import Any, Callable, Dict, Optional

import numpy as np

from . import report
from .._validation import as_positive_int
from ..convergence import convergence
from ..descrambler import descramble
from ..hidden import hidden_autocorrelations
from ..network import descramble_network
from .mlp import MLP, train
from .relaxometry import PARAMETER_NAMES, Relaxometry

#: The embedded default (10 to 20 s on 2 cores, figures included).
DEFAULTS: Dict[str, Any] = {
    "n_train": 40_000,
    "n_test": 4_000,
    "hidden": (32, 32),
    "epochs": 40,
    "batch_size": 128,
    "learning_rate": 2e-3,
    "weight_decay": 0.5,
    "checkpoint_every": 10,
}


def run_demo(
    out: Any,
    *,
    seed: int = 0,
    n_train: int = DEFAULTS["n_train"],
    epochs: int = DEFAULTS["epochs"],
    figures: bool = True,
    log: Callable[[str], None] = print,
) -> Dict[str, Any]:
    """Run the demo and write its report to ``out``.

    Parameters
    ----------
    out : str or os.PathLike
        Output directory (created if missing).
    seed : int
        Seeds the data, the network's initialisation and its training: the
        same seed gives the same report (timings aside).
    n_train, epochs : int
        Training-set size and epochs (smaller values make a quick run).
    figures : bool
        Draw the PNG figures (needs matplotlib).
    log : callable(str)
        Where progress lines go.

    Returns
    -------
    dict
        The summary also written to ``out/summary.json``.
    """
    # NumPy's "expected non-negative integer" would not say which argument (seed + 1 seeds the test set).
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise report.ArgumentError("seed", f"expected a non-negative integer, got {seed!r}")
    n_train, epochs = as_positive_int(n_train, "n_train"), as_positive_int(epochs, "epochs")
    out = report.prepare(out)
    if figures and not report.have_matplotlib():
        raise ImportError("the demo's figures need matplotlib: pip install matplotlib "
                          "(or pass figures=False)")
    timings: Dict[str, float] = {}
    clock = time.perf_counter()

    def step(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 3)
        clock = now

    problem = Relaxometry()
    log(f"[1/6] simulating {n_train:,} training signals: {problem.n_times} echo times, noise {problem.noise}")
    X, params = problem.sample(n_train, seed=seed)
    X_test, params_test = problem.sample(DEFAULTS["n_test"], seed=seed + 1)
    step("simulate")

    sizes = (problem.n_times, *DEFAULTS["hidden"], len(PARAMETER_NAMES))
    log(f"[2/6] training a {'-'.join(map(str, sizes))} tanh MLP with NumPy, {epochs} epochs")
    model = MLP.initialise(sizes, activation="tanh", seed=seed)

    def epoch_done(epoch: int, loss: float) -> None:
        if epoch % 10 == 0 or epoch == epochs:
            log(f"      epoch {epoch:3d}/{epochs}: training loss {loss:.5f}")

    train(model, X, problem.normalise(params), epochs=epochs, batch_size=DEFAULTS["batch_size"],
          learning_rate=DEFAULTS["learning_rate"], weight_decay=DEFAULTS["weight_decay"], seed=seed,
          checkpoint_every=DEFAULTS["checkpoint_every"], callback=epoch_done)
    estimate = problem.denormalise(model(X_test))
    relative_error = np.median(np.abs(estimate - params_test) / np.abs(params_test), axis=0)
    step("train")

    log("[3/6] streaming the training signals through the core (input and hidden autocorrelations, one pass)")
    stats = hidden_autocorrelations(model.layers, X)
    step("stream")

    log("[4/6] descrambling in closed form: layer 1 from the input autocorrelation, layer 2 from its hidden one "
        "(inputs ordered by layer 1's outputs)")
    (W1, b1, _), (W2, b2, _) = model.layers[0], model.layers[1]
    # Layer 1: P1 W1. Layer 2: P2 W2 Q1^T, Q1 ordering layer 1's tanh outputs (what layer 2 reads).
    first, second = descramble_network(model.layers, stats, smoothness="fourier")
    trajectory = []
    for k, checkpoint in enumerate(model.checkpoints):
        Wk, bk, _ = checkpoint[0]
        dk = descramble(Wk, autocorrelation=stats.input, bias=bk, smoothness="fourier")
        trajectory.append({"epoch": k * DEFAULTS["checkpoint_every"], "loss": dk.loss, "bound": dk.bound})
    step("descramble")

    log("[5/6] convergence: the descrambler from the first N signals, N = 64 ... all")
    conv = convergence(W1, X, bias=b1, smoothness=first.smoothness)
    step("convergence")

    log(f"[6/6] writing the report to {out}")
    layers = {
        "layer1": report.layer_report(out, "layer1", first, W1, convergence=conv, x=problem.times,
                                      xlabel="echo time (ms)", sample_spacing=problem.echo_spacing / 1000.0,
                                      frequency_unit="Hz", figures=figures),
        "layer2": report.layer_report(out, "layer2", second, W2, xlabel="layer-1 output (trained order)",
                                      figures=figures),
    }
    layers["layer1"]["checkpoints"] = trajectory
    step("report")

    summary = {
        "command": "demo",
        "seed": seed,
        "problem": {
            "name": "biexponential relaxometry",
            "model": "s(t) = c exp(-t/T2a) + (1-c) exp(-t/T2b) + noise",
            "n_times": problem.n_times,
            "echo_spacing_ms": problem.echo_spacing,
            "noise": problem.noise,
            "ranges": {"T2a": problem.t2a_range, "T2b": problem.t2b_range, "c": problem.fraction_range},
        },
        "network": {
            "sizes": list(sizes),
            "activation": "tanh",
            "epochs": epochs,
            "final_training_loss": model.history[-1],
            "median_relative_error": dict(zip(PARAMETER_NAMES, relative_error.tolist())),
        },
        "N": int(stats.input.count),
        "layers": layers,
        "timings_s": timings,
        "versions": report.versions(),
    }
    report.write_summary(out, summary)
    report.write_index(out, summary)
    return summary


def describe(summary: Dict[str, Any]) -> str:
    """A short human-readable summary of a demo or run report."""
    lines = []
    network = summary.get("network")
    if network and "median_relative_error" in network:
        errors = ", ".join(f"{k} {100 * v:.1f}%" for k, v in network["median_relative_error"].items())
        lines.append(f"network: median relative error on fresh signals: {errors}")
    for name, layer in summary["layers"].items():
        raw = layer.get("raw_loss")
        raw_text = ""
        if raw is not None:
            # A zero loss (m = 1, rank-deficient S, zero weights) has no ratio.
            ratio = f", {raw / layer['loss']:.1f}x rougher" if layer['loss'] > 0 else ""
            raw_text = f" (trained order {raw:.4g}{ratio})"
        loss, bound = layer["loss"], layer["bound"]
        if layer.get("criterion") in ("permutation", "signed-permutation"):
            certificate = layer.get("gap")
            gap_text = "inf" if certificate is None else f"{certificate:.3g}"
            lines.append(f"{name}: {layer['m']} x {layer['n']}, {layer['criterion']}: smoothness loss {loss:.6g}, "
                         f"bound {bound:.6g} (certificate gap {gap_text}){raw_text}")
            continue
        # "=" only when the report found them equal to 1e-9 relative (layer_report's "equal").
        equal = layer.get("equal", abs(loss - bound) <= 1e-9 * max(abs(loss), abs(bound)))
        relation = " = bound" if equal else ", bound"
        gap = layer.get("relative_gap")
        gap_text = (f"relative gap {gap:.1e}" if gap is not None
                    else f"the bound is zero up to rounding; gap {loss - bound:.1e} absolute")
        lines.append(f"{name}: {layer['m']} x {layer['n']}, smoothness loss {loss:.6g}{relation} "
                     f"{bound:.6g} ({gap_text}){raw_text}")
        conv = layer.get("convergence")
        if conv:
            n, loss, bound = conv["n_samples"], conv["loss"], conv["bound"]
            relative = gap is not None and bound != 0

            def excess(k: int) -> str:
                return f"{(loss[k] - bound) / abs(bound):.2e}" if relative else f"{loss[k] - bound:.2e} (absolute)"

            text = f"        P from {n[0]} samples: excess {excess(0)}"
            if len(n) > 2:  # the last point is all the data, the reference itself
                text += f"; from {n[-2]}: {excess(-2)}"
            lines.append(text)
    timings = summary.get("timings_s")
    if timings:
        lines.append("time: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
    return "\n".join(lines)
