"""A small multilayer perceptron trained with plain NumPy (the demo's network).

Deterministic for a seed: Glorot-uniform initialisation, mini-batch Adam on
the mean squared error, float64 throughout. Its ``layers`` are the
``(W, b, activation)`` triples that :func:`descramble.hidden_autocorrelations`
takes, so the trained network goes straight into the descrambler.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .._validation import as_positive_int

_Function = Callable[[np.ndarray], np.ndarray]
# name -> (activation, its derivative as a function of the activation's output)
_ACTIVATIONS: Dict[str, Tuple[_Function, _Function]] = {
    "identity": (lambda z: z, lambda a: np.ones_like(a)),
    "tanh": (np.tanh, lambda a: 1.0 - a * a),
    "relu": (lambda z: np.maximum(z, 0.0), lambda a: (a > 0).astype(a.dtype)),
    "sigmoid": (lambda z: 0.5 * (1.0 + np.tanh(0.5 * z)), lambda a: a * (1.0 - a)),
}


@dataclass
class MLP:
    """A dense network: ``layers[k] = (W_k, b_k, activation_k)``, ``W_k`` of shape (out, in).

    Attributes
    ----------
    layers : list of (ndarray, ndarray, str)
    history : list of float
        Training loss (mean squared error) after each epoch.
    checkpoints : list of list of (ndarray, ndarray, str)
        Copies of ``layers`` saved during training (see :func:`train`).
    """

    layers: List[Tuple[np.ndarray, np.ndarray, str]]
    history: List[float] = field(default_factory=list)
    checkpoints: List[List[Tuple[np.ndarray, np.ndarray, str]]] = field(default_factory=list)

    @classmethod
    def initialise(cls, sizes: Sequence[int], activation: str = "tanh", seed: int = 0) -> "MLP":
        """Glorot-uniform weights, zero biases; ``activation`` on every layer but the last.

        Parameters
        ----------
        sizes : sequence of int
            Widths from input to output, e.g. ``(64, 32, 32, 3)``.
        activation : {"tanh", "relu", "sigmoid", "identity"}
        seed : int
        """
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation: expected one of {sorted(_ACTIVATIONS)}, got {activation!r}")
        sizes = [as_positive_int(s, "sizes") for s in sizes]
        if len(sizes) < 2:
            raise ValueError(f"sizes: expected at least an input and an output width, got {sizes}")
        rng = np.random.default_rng(seed)
        layers = []
        for k, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            limit = np.sqrt(6.0 / (n_in + n_out))
            act = activation if k < len(sizes) - 2 else "identity"
            layers.append((rng.uniform(-limit, limit, (n_out, n_in)), np.zeros(n_out), act))
        return cls(layers)

    def forward(self, X: np.ndarray) -> np.ndarray:
        """The network's output for the rows of ``X``."""
        a = np.asarray(X, dtype=np.float64)
        for W, b, act in self.layers:
            a = _ACTIVATIONS[act][0](a @ W.T + b)
        return a

    __call__ = forward

    def _gradients(self, X: np.ndarray, Y: np.ndarray) -> Tuple[float, List[Tuple[np.ndarray, np.ndarray]]]:
        outputs = [X]
        for W, b, act in self.layers:
            outputs.append(_ACTIVATIONS[act][0](outputs[-1] @ W.T + b))
        residual = outputs[-1] - Y
        loss = float(np.mean(residual**2))
        delta = 2.0 * residual / residual.size
        grads = []
        for k in range(len(self.layers) - 1, -1, -1):
            W, _, act = self.layers[k]
            delta = delta * _ACTIVATIONS[act][1](outputs[k + 1])
            grads.append((delta.T @ outputs[k], delta.sum(axis=0)))
            delta = delta @ W
        return loss, grads[::-1]


def train(
    model: MLP,
    X: np.ndarray,
    Y: np.ndarray,
    *,
    epochs: int = 40,
    batch_size: int = 128,
    learning_rate: float = 2e-3,
    weight_decay: float = 0.0,
    seed: int = 0,
    checkpoint_every: Optional[int] = None,
    callback: Optional[Callable[[int, float], None]] = None,
) -> MLP:
    """Train ``model`` in place by mini-batch Adam on the mean squared error.

    Parameters
    ----------
    model : MLP
    X : ndarray of shape (N, n_in)
    Y : ndarray of shape (N, n_out)
    epochs, batch_size : int
    learning_rate : float
        Adam's step size (betas 0.9, 0.999); it decays as 1/sqrt(epoch).
    weight_decay : float, default 0
        Decoupled weight decay (AdamW) on the weights, not the biases: it
        shrinks the directions the data never excite, so the weights keep
        only what the task taught them.
    seed : int
        Seeds the order of the mini-batches.
    checkpoint_every : int, optional
        Save a copy of the layers every this many epochs (and at the start)
        in ``model.checkpoints``.
    callback : callable(epoch, loss), optional
        Called after every epoch (progress reporting).

    Returns
    -------
    MLP
        ``model``, trained; ``model.history`` holds the loss per epoch.
    """
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    n_in = model.layers[0][0].shape[1]
    n_out = model.layers[-1][0].shape[0]
    if X.ndim != 2 or X.shape[1] != n_in:
        raise ValueError(f"X: expected shape (N, {n_in}), got {X.shape}")
    if Y.shape != (X.shape[0], n_out):
        raise ValueError(f"Y: expected shape ({X.shape[0]}, {n_out}), got {Y.shape}")
    epochs = as_positive_int(epochs, "epochs")
    batch_size = as_positive_int(batch_size, "batch_size")
    rng = np.random.default_rng(seed)
    params = [p for W, b, _ in model.layers for p in (W, b)]
    decays = [weight_decay, 0.0] * len(model.layers)
    m1 = [np.zeros_like(p) for p in params]
    m2 = [np.zeros_like(p) for p in params]
    beta1, beta2, eps, step = 0.9, 0.999, 1e-8, 0

    def save() -> None:
        model.checkpoints.append([(W.copy(), b.copy(), act) for W, b, act in model.layers])

    if checkpoint_every:
        save()
    for epoch in range(1, epochs + 1):
        order = rng.permutation(X.shape[0])
        lr = learning_rate / np.sqrt(epoch)
        total = 0.0
        for start in range(0, X.shape[0], batch_size):
            idx = order[start:start + batch_size]
            loss, grads = model._gradients(X[idx], Y[idx])
            total += loss * idx.size
            step += 1
            flat = [g for pair in grads for g in pair]
            for p, g, a, v, decay in zip(params, flat, m1, m2, decays):
                if decay:
                    p *= 1.0 - lr * decay
                a *= beta1
                a += (1 - beta1) * g
                v *= beta2
                v += (1 - beta2) * g * g
                p -= lr * (a / (1 - beta1**step)) / (np.sqrt(v / (1 - beta2**step)) + eps)
        model.history.append(total / X.shape[0])
        if checkpoint_every and epoch % checkpoint_every == 0:
            save()
        if callback is not None:
            callback(epoch, model.history[-1])
    return model
