"""The demo's inverse problem: biexponential relaxometry.

A signal sampled at ``n_times`` echo times,

    s(t) = c exp(-t / T2a) + (1 - c) exp(-t / T2b) + noise,

hides three parameters (T2a, T2b, c) that a network learns to recover: the
kind of parameter-estimation problem that descrambling was first used to
interpret (Amey et al. 2021). Everything here is plain NumPy and
deterministic for a seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Optional, Tuple

import numpy as np

from .._validation import as_positive_int

PARAMETER_NAMES = ("T2a", "T2b", "c")


@dataclass(frozen=True)
class Relaxometry:
    """A biexponential relaxometry experiment.

    Parameters
    ----------
    n_times : int, default 64
        Echo times ``t_k = k * echo_spacing``, k = 1..n_times.
    echo_spacing : float, default 8.0
        In milliseconds.
    t2a_range, t2b_range : (float, float)
        Uniform ranges (ms) of the fast and slow components' T2; disjoint, so
        the two are told apart by which is faster.
    fraction_range : (float, float)
        Uniform range of c, the fast component's fraction.
    noise : float, default 0.01
        Standard deviation of the Gaussian noise (the signal starts near 1).
    """

    n_times: int = 64
    echo_spacing: float = 8.0
    t2a_range: Tuple[float, float] = (10.0, 50.0)
    t2b_range: Tuple[float, float] = (80.0, 300.0)
    fraction_range: Tuple[float, float] = (0.2, 0.8)
    noise: float = 0.01

    def __post_init__(self) -> None:
        as_positive_int(self.n_times, "n_times")
        for name in ("t2a_range", "t2b_range", "fraction_range"):
            low, high = getattr(self, name)
            if not (np.isfinite(low) and np.isfinite(high) and 0 <= low < high):
                raise ValueError(f"{name}: expected 0 <= low < high, got ({low}, {high})")
        if not (self.echo_spacing > 0 and self.noise >= 0):
            raise ValueError("echo_spacing must be > 0 and noise >= 0")

    @property
    def times(self) -> np.ndarray:
        """The echo times (ms), shape (n_times,)."""
        return self.echo_spacing * np.arange(1, self.n_times + 1)

    def parameters(self, n_samples: int, rng: np.random.Generator) -> np.ndarray:
        """Draw ``n_samples`` rows of (T2a, T2b, c), uniformly in their ranges."""
        n_samples = as_positive_int(n_samples, "n_samples")
        ranges = np.array([self.t2a_range, self.t2b_range, self.fraction_range])
        return ranges[:, 0] + (ranges[:, 1] - ranges[:, 0]) * rng.random((n_samples, 3))

    def signals(self, parameters: np.ndarray, rng: Optional[np.random.Generator] = None) -> np.ndarray:
        """The noisy signals of each row of ``parameters``, shape (rows, n_times)."""
        t2a, t2b, c = (np.asarray(parameters, dtype=np.float64)[:, k, None] for k in range(3))
        t = self.times
        s = c * np.exp(-t / t2a) + (1 - c) * np.exp(-t / t2b)
        if rng is not None and self.noise > 0:
            s += self.noise * rng.standard_normal(s.shape)
        return s

    def sample(self, n_samples: int, seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
        """``(signals, parameters)`` for ``n_samples`` random experiments."""
        rng = np.random.default_rng(seed)
        params = self.parameters(n_samples, rng)
        return self.signals(params, rng), params

    def stream(self, n_samples: int, seed: int = 0, chunk_rows: int = 8192) -> Iterator[np.ndarray]:
        """Yield ``n_samples`` fresh noisy signals in chunks, never holding them all.

        Deterministic for a seed and chunk_rows.
        """
        n_samples = as_positive_int(n_samples, "n_samples")
        chunk_rows = as_positive_int(chunk_rows, "chunk_rows")
        rng = np.random.default_rng(seed)
        for start in range(0, n_samples, chunk_rows):
            rows = min(chunk_rows, n_samples - start)
            yield self.signals(self.parameters(rows, rng), rng)

    def normalise(self, parameters: np.ndarray) -> np.ndarray:
        """Map parameters to [0, 1] per column (the network's targets)."""
        ranges = np.array([self.t2a_range, self.t2b_range, self.fraction_range])
        return (np.asarray(parameters) - ranges[:, 0]) / (ranges[:, 1] - ranges[:, 0])

    def denormalise(self, targets: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`normalise`."""
        ranges = np.array([self.t2a_range, self.t2b_range, self.fraction_range])
        return ranges[:, 0] + np.asarray(targets) * (ranges[:, 1] - ranges[:, 0])
