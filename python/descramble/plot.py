"""Figures of a descrambled layer (matplotlib, the optional ``plot`` extra).

Every function returns a :class:`matplotlib.figure.Figure` built without
pyplot, so it works in scripts, on headless machines and in notebooks (a
Figure displays itself there). Save one with ``fig.savefig("name.png")``.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ._validation import as_matrix
from .convergence import Convergence
from .descrambler import Descrambler


def _figure(figsize: tuple[float, float]) -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError:  # pragma: no cover - exercised only without matplotlib
        raise ImportError("descramble.plot needs matplotlib: pip install 'descramble[plot]'") from None
    return Figure(figsize=figsize, layout="constrained")


def _edges(first: float, last: float, count: int, step: float) -> "tuple[float, float]":
    """imshow's extent runs from the first pixel's edge to the last's: centre the pixels on the coordinates."""
    if count > 1:
        step = (last - first) / (count - 1)
    return first - step / 2, last + step / 2


def _weights_of(d: Descrambler, weights: Any) -> np.ndarray:
    if weights is not None:
        # P W: one row per hidden neuron.
        return as_matrix(weights, "weights", rows=d.P.shape[1])
    if d.weights is None:
        raise ValueError("weights: this Descrambler has no weights; pass the layer's W")
    return d.P.T @ d.weights  # W = P^T (P W)


def weights(
    descrambler: Descrambler,
    weights: Any = None,
    *,
    x: Optional[np.ndarray] = None,
    xlabel: str = "input index",
    title: Optional[str] = None,
) -> Any:
    """The layer's weights before and after descrambling, side by side.

    Parameters
    ----------
    descrambler : Descrambler
    weights : array_like of shape (m, n), optional
        The raw W (default: recovered from ``descrambler.weights``).
    x : ndarray of shape (n,), optional
        Coordinates of the inputs (e.g. echo times), for the x axis; evenly
        spaced (each column is drawn as a pixel of the same width).
    xlabel, title : str

    Returns
    -------
    matplotlib.figure.Figure
    """
    W = _weights_of(descrambler, weights)
    PW = descrambler.P @ W
    fig = _figure((10, 4))
    axes = fig.subplots(1, 2, sharey=True)
    limit = max(np.abs(W).max(), np.abs(PW).max()) or 1.0
    extent = None
    if x is not None:
        x = np.asarray(x, dtype=np.float64)
        if x.shape != (W.shape[1],):
            raise ValueError(f"x: expected {W.shape[1]} coordinates, got shape {x.shape}")
        steps = np.diff(x)
        if not np.all(np.isfinite(x)) or (steps.size and not np.allclose(steps, steps[0], rtol=1e-6, atol=0)):
            raise ValueError("x: expected finite, evenly spaced coordinates (the columns are drawn as equal pixels)")
        extent = (*_edges(x[0], x[-1], x.size, 1.0), W.shape[0] - 0.5, -0.5)
    for ax, M, label in zip(axes, (W, PW), ("trained weights W (neurons as left by training)",
                                           "descrambled weights P W")):
        image = ax.imshow(M, aspect="auto", cmap="RdBu_r", vmin=-limit, vmax=limit, extent=extent,
                          interpolation="nearest")
        ax.set_title(label, fontsize=10)
        ax.set_xlabel(xlabel)
    axes[0].set_ylabel("hidden neuron")
    fig.colorbar(image, ax=axes, shrink=0.9, label="weight")
    if title:
        fig.suptitle(title)
    return fig


def singular_spectrum(descrambler: Descrambler, *, title: Optional[str] = None) -> Any:
    """The hidden data's principal standard deviations sqrt(mu_k), and the smoothness eigenvalues.

    The closed form pairs the k-th largest mu with the k-th smallest
    lambda (MATH.md §3); the loss is sum_k lambda_k mu_k.

    Returns
    -------
    matplotlib.figure.Figure
    """
    d = descrambler
    mu = np.clip(d.spectrum, 0.0, None)
    k = np.arange(1, mu.size + 1)
    fig = _figure((10, 3.6))
    left, right = fig.subplots(1, 2)
    positive = mu > 0
    left.semilogy(k[positive], np.sqrt(mu[positive]), "o-", ms=3)
    left.set_xlabel("principal component k")
    left.set_ylabel(r"$\sqrt{\mu_k}$ (hidden standard deviation)")
    left.set_title("singular spectrum of the hidden signals", fontsize=10)
    left.grid(True, which="both", alpha=0.3)
    if d.basis_values.size:
        lam = d.basis_values
        right.plot(k, lam, "s-", ms=3, color="C1", label=r"$\lambda_k$ (smoothness cost of mode k)")
        right.set_yscale("symlog", linthresh=1.0)
        contribution = lam * mu
        twin = right.twinx()
        twin.bar(k, contribution, alpha=0.35, color="C2", label=r"$\lambda_k \mu_k$")
        twin.set_ylabel(r"$\lambda_k \mu_k$ (terms of the bound)")
        right.set_xlabel("smooth mode k")
        right.set_ylabel(r"$\lambda_k$")
        right.set_title(f"pairing: loss {d.loss:.4g} = bound {d.bound:.4g}", fontsize=10)
        right.legend(loc="upper left", fontsize=8)
    else:
        right.set_axis_off()
    if title:
        fig.suptitle(title)
    return fig


def fourier_magnitude(
    descrambler: Descrambler,
    weights: Any = None,
    *,
    sample_spacing: float = 1.0,
    frequency_unit: str = "cycles per input",
    title: Optional[str] = None,
) -> Any:
    """Fourier magnitudes of the descrambled rows, and hidden power per neuron-axis frequency.

    Left: ``|rfft|`` of every row of P W along the input axis (each
    descrambled neuron as a filter). Right: the power of the hidden signals
    at each Fourier frequency of the neuron axis, before (S) and after
    (P S P^T) descrambling: descrambling moves the power to the lowest
    frequencies (MATH.md §2, §4).

    Parameters
    ----------
    descrambler : Descrambler
    weights : array_like, optional
        The raw W (default: recovered from ``descrambler.weights``).
    sample_spacing : float
        Spacing of the inputs (e.g. the echo spacing), for the frequency axis.
    frequency_unit : str
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not (np.isfinite(sample_spacing) and sample_spacing > 0):
        raise ValueError(f"sample_spacing: expected a positive number, got {sample_spacing!r}")
    d = descrambler
    W = _weights_of(d, weights)
    PW = d.P @ W
    magnitude = np.abs(np.fft.rfft(PW, axis=1))
    freqs = np.fft.rfftfreq(W.shape[1], d=sample_spacing)
    fig = _figure((10, 3.8))
    left, right = fig.subplots(1, 2)
    image = left.imshow(magnitude, aspect="auto", cmap="magma", interpolation="nearest",
                        extent=(*_edges(freqs[0], freqs[-1], freqs.size, 1.0 / (W.shape[1] * sample_spacing)),
                                W.shape[0] - 0.5, -0.5))
    fig.colorbar(image, ax=left, label="|FFT|")
    left.set_xlabel(f"frequency ({frequency_unit})")
    left.set_ylabel("descrambled neuron")
    left.set_title("Fourier magnitude of the rows of P W", fontsize=10)
    if d.hidden is not None:
        S = d.hidden
        m = S.shape[0]
        F = np.fft.rfft(np.eye(m), axis=0, norm="ortho")  # neuron-axis DFT rows
        before = np.real(np.einsum("ki,ij,kj->k", F, S, F.conj()))
        PSPt = d.P @ S @ d.P.T
        after = np.real(np.einsum("ki,ij,kj->k", F, PSPt, F.conj()))
        # One-sided spectrum: frequencies 0 < k < m/2 stand for k and m - k
        # (the cosine and sine pair), so they carry twice the bin's power.
        both = np.ones(before.size)
        both[1:(m + 1) // 2] = 2.0
        before, after = before * both, after * both
        k = np.arange(before.size)
        right.semilogy(k, np.clip(before, 1e-300, None), "o-", ms=3, label="trained (S)")
        right.semilogy(k, np.clip(after, 1e-300, None), "s-", ms=3, label=r"descrambled ($P S P^T$)")
        right.set_xlabel("frequency along the neuron axis (cycles per layer)")
        right.set_ylabel("hidden power")
        right.set_title("hidden power per neuron-axis frequency", fontsize=10)
        right.grid(True, which="both", alpha=0.3)
        right.legend(fontsize=8)
    else:
        right.set_axis_off()
    if title:
        fig.suptitle(title)
    return fig


def convergence(result: Convergence, *, title: Optional[str] = None) -> Any:
    """The loss of the descrambler built from N samples, against N, converging to the bound.

    Left: eta(P_N) on all the data, with the bound as a line. Right: the
    relative excess (eta(P_N) - bound) / bound on log-log axes, without the
    last point (all the data, which is the reference itself); the N^-1
    guide is where the excess of a descrambler whose error falls as
    N^-1/2 lands (the excess is quadratic in the error at the optimum).

    Returns
    -------
    matplotlib.figure.Figure
    """
    N = np.asarray(result.n_samples, dtype=np.float64)
    loss = np.asarray(result.loss)
    fig = _figure((10, 3.6))
    left, right = fig.subplots(1, 2)
    left.semilogx(N, loss, "o-", ms=4, label=r"$\eta(P_N)$ on all the data")
    left.axhline(result.bound, color="k", ls="--", lw=1, label=f"bound {result.bound:.4g}")
    left.set_xlabel("samples N used to build P")
    left.set_ylabel("smoothness loss")
    left.legend(fontsize=8)
    left.grid(True, which="both", alpha=0.3)
    left.set_title("loss against N", fontsize=10)
    with np.errstate(divide="ignore", invalid="ignore"):  # a zero bound (zero loss) has no relative excess
        excess = (loss - result.bound) / abs(result.bound)
    keep = (excess > 0) & np.isfinite(excess) & (N < N[-1])
    if keep.any():
        right.loglog(N[keep], excess[keep], "o-", ms=4, label="relative excess")
        anchor = np.flatnonzero(keep)[0]
        guide = excess[anchor] * N[anchor] / N[keep]
        right.loglog(N[keep], guide, "k:", lw=1, label=r"$\propto N^{-1}$")
        right.legend(fontsize=8)
    right.set_xlabel("samples N")
    right.set_ylabel(r"$(\eta(P_N) - \mathrm{bound}) / \mathrm{bound}$")
    right.grid(True, which="both", alpha=0.3)
    right.set_title("convergence to the bound", fontsize=10)
    if title:
        fig.suptitle(title)
    return fig
