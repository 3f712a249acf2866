"""The closed-form descrambler (docs/math.md §2, §3, §5) and its diagnostics.

Every number comes from the C++ core (``descrambler.hpp``): this module checks
and converts the arguments, and wraps the core's result.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import Any, List, NamedTuple, Optional, Tuple

import numpy as np

from . import _core
from ._validation import as_matrix, as_numpy, as_square, as_symmetric, as_vector, check_flag
from .accumulator import Autocorrelation, accumulate
from .diagnostics import (ConstantDataWarning, DescrambleWarning, IgnoredArgumentWarning, MissingBiasWarning,
                          UnderdeterminedWarning, warn)
from .smoothness import Smoothness, degenerate_groups, resolve
from .sources import open_source, progress_bar

#: Relative tolerance of :func:`numerical_rank`, in units of the arithmetic's
#: machine epsilon times m: mu_k counts when mu_k > m * eps * max(mu) (the
#: convention of :func:`numpy.linalg.matrix_rank`).
#: ``eps`` is float64's, or float32's for an accumulator of precision "mixed".
_EPS = {"float64": float(np.finfo(np.float64).eps), "mixed": float(np.finfo(np.float32).eps)}

#: Data are constant when every feature's standard deviation is at most this
#: many float64 epsilons times its root-mean-square value: identical rows, up
#: to the rounding of the accumulation (which in practice gives exactly zero).
CONSTANT_RTOL = 64 * float(np.finfo(np.float64).eps)

#: The input mean counts as zero when every ``|mean_j|`` is within this many
#: standard errors sigma_j / sqrt(N) of zero (sampling noise of zero-mean data)...
ZERO_MEAN_STANDARD_ERRORS = 6.0
#: ...or at most this times the largest root-mean-square input (sqrt(eps):
#: centred data, up to rounding).
ZERO_MEAN_RTOL = float(np.sqrt(np.finfo(np.float64).eps))


class Degeneracy(NamedTuple):
    """Indices where the descrambler is not unique (docs/math.md §3).

    ``kind`` is ``"smoothness"`` (equal eigenvalues of A: the basis T may
    rotate inside the group) or ``"spectrum"`` (equal hidden variances mu:
    the components U may rotate inside the group). Two correct descramblers
    may differ there; compare them by loss and by subspace angles.
    """

    kind: str
    indices: np.ndarray


@dataclass
class Descrambler:
    """The result of :func:`descramble`.

    Attributes
    ----------
    P : ndarray of shape (m, m)
        The descrambler: orthogonal, det +1 (for "permutation": a
        permutation matrix; for "signed-permutation": a signed one; either
        determinant).
    weights : ndarray or None
        ``P @ W``, the descrambled weights, when W was given.
    loss : float
        For ``criterion="smooth"``: eta(P) = tr(A P S P^T), the smoothness
        loss at P (docs/math.md §2); the same for the permutation criteria, at
        the permutation found. For ``"diagonal"``: ``-tr(P W)``.
    bound : float
        The lower bound of the loss over all orthogonal P: sum_k lambda_k mu_k
        for "smooth" and the permutation criteria (docs/math.md §3; permutations
        are orthogonal), ``-sum(singular values)`` for "diagonal".
    basis : ndarray of shape (m, m)
        T, the smoothness eigenbasis (columns, smoothest first); for
        "diagonal", the right singular vectors V of W.
    basis_values : ndarray of shape (m,)
        lambda, A's eigenvalues (ascending); for "diagonal", empty.
    components : ndarray of shape (m, m)
        U, the principal directions of the hidden data (columns, largest
        variance first); for "diagonal", the left singular vectors of W.
    spectrum : ndarray of shape (m,)
        mu, the hidden variances along U (descending, zero-padded when
        rank < m); for "diagonal", the singular values of W.
    degenerate : list of Degeneracy
        Where the answer is not unique.
    hidden : ndarray of shape (m, m) or None
        S, the hidden autocorrelation the loss was evaluated on.
    smoothness : Smoothness or None
    criterion : str
        "smooth", "diagonal", "permutation" or "signed-permutation". For the
        permutation criteria, basis, basis_values, components, spectrum and
        degenerate are those of the closed form the search started from.
    Q : ndarray of shape (n, n) or None
        The descrambler of the layer's input axis (for layer k of a network,
        the descrambler of layer k-1's post-activation signals); when set,
        ``weights`` is ``P @ W @ Q.T``. None: the inputs keep their order.
    n_samples : int or None
        N, the number of samples the statistics were estimated from, when known.
    permutation : ndarray of shape (m,) or None
        For ``criterion="permutation"`` and ``"signed-permutation"``: the
        index array p with ``P @ x == signs * x[permutation]`` (hidden unit
        ``permutation[i]`` goes to position i). None for the other criteria.
    signs : ndarray of shape (m,) or None
        For ``"signed-permutation"``: the signs (+1/-1) of P's entries,
        ``P[i, permutation[i]] == signs[i]``. None otherwise.
    gap : float or None
        For the permutation criteria: the certificate
        ``max(0, (loss - bound) / bound)``, how far the permutation's loss
        can be above the optimum over all permutations at most (relative to
        the orthogonal bound; inf when bound = 0 < loss). None otherwise.
    """

    P: np.ndarray
    weights: Optional[np.ndarray]
    loss: float
    bound: float
    basis: np.ndarray
    basis_values: np.ndarray
    components: np.ndarray
    spectrum: np.ndarray
    degenerate: List[Degeneracy] = field(default_factory=list)
    hidden: Optional[np.ndarray] = None
    smoothness: Optional[Smoothness] = None
    criterion: str = "smooth"
    Q: Optional[np.ndarray] = None
    n_samples: Optional[int] = None
    permutation: Optional[np.ndarray] = None
    signs: Optional[np.ndarray] = None
    gap: Optional[float] = None

    def apply(self, W: Any) -> np.ndarray:
        """Descramble this layer's rows: ``P @ W`` (W of shape (m, n))."""
        return _core.descramble_rows(self.P, as_matrix(W, "W", rows=self.P.shape[0]))

    def apply_next(self, W_next: Any) -> np.ndarray:
        """Descramble the next layer's columns: ``W_next @ P.T`` (W_next of shape (k, m))."""
        return _core.descramble_columns(self.P, as_matrix(W_next, "W_next", columns=self.P.shape[0]))

    # -- persistence: save()/load() write and read an .npz archive; pickling goes through
    # -- Smoothness.__reduce__ (its spec and array). ------------------------------------------------

    def _state(self) -> dict[str, Any]:
        import json

        kinds = [d.kind for d in self.degenerate]
        state: dict[str, Any] = {
            "format": "descramble.Descrambler", "version": 1, "criterion": self.criterion,
            "P": self.P, "loss": float(self.loss), "bound": float(self.bound), "basis": self.basis,
            "basis_values": self.basis_values, "components": self.components, "spectrum": self.spectrum,
            "degenerate_kinds": np.array(kinds, dtype="<U10"),
            "degenerate_sizes": np.array([len(d.indices) for d in self.degenerate], dtype=np.int64),
            "degenerate_indices": np.concatenate(
                [np.asarray(d.indices, dtype=np.int64) for d in self.degenerate] + [np.zeros(0, np.int64)]),
        }
        for key in ("weights", "hidden", "Q", "signs"):
            if getattr(self, key) is not None:
                state[key] = np.asarray(getattr(self, key))
        if self.permutation is not None:
            state["permutation"] = np.asarray(self.permutation, dtype=np.int64)
        if self.gap is not None:
            state["gap"] = np.float64(self.gap)
        if self.n_samples is not None:
            state["n_samples"] = np.int64(self.n_samples)
        if self.smoothness is not None:
            state["smoothness_spec"] = json.dumps(self.smoothness.spec)
            array = self.smoothness.spec_array()
            if array is not None:
                state["smoothness_array"] = array
        return state

    def save(self, path: Any) -> None:
        """Write the descrambler to ``path`` (an ``.npz`` archive, no pickles), atomically.

        Every field is stored: P, the weights, loss and bound, T and lambda,
        U and mu, the degenerate groups, S, the criterion, Q, n_samples, the
        permutation, signs and gap of the permutation criteria, and
        the smoothness (its :attr:`~descramble.smoothness.Smoothness.spec`
        and, for a matrix or Gram operator, its array). As
        :meth:`Autocorrelation.save`: written to a temporary file in the same
        directory, synced and renamed over ``path``; on any error the
        temporary file is removed and an existing ``path`` is untouched.

        Parameters
        ----------
        path : str or os.PathLike
            Destination file; written as given (no suffix is added).
        """
        from .accumulator import atomic_savez

        atomic_savez(path, self._state())

    @classmethod
    def load(cls, path: Any) -> "Descrambler":
        """Read a descrambler written by :meth:`save` (``allow_pickle=False``; every field validated).

        Parameters
        ----------
        path : str or os.PathLike

        Returns
        -------
        Descrambler

        Raises
        ------
        FileNotFoundError
            If ``path`` does not exist.
        ValueError
            Naming the file, for anything else that is not a descrambler
            written by :meth:`save`: not an .npz archive, truncated or
            damaged, a foreign archive, missing or unexpected members, wrong
            shapes, dtypes or values.
        """
        import json
        import os
        import zipfile

        from .smoothness import from_spec

        path = os.fspath(path)
        required = ("format", "version", "criterion", "P", "loss", "bound", "basis", "basis_values",
                    "components", "spectrum", "degenerate_kinds", "degenerate_sizes", "degenerate_indices")
        optional = ("weights", "hidden", "Q", "n_samples", "smoothness_spec", "smoothness_array", "permutation",
                    "signs", "gap")

        def scalar(f: Any, key: str, kinds: str) -> Any:
            value = f[key]
            if value.shape != () or value.dtype.kind not in kinds:
                raise ValueError(f"{key} is a {value.dtype} array of shape {value.shape}, expected a scalar")
            return value[()]

        def floats(f: Any, key: str, shape: tuple) -> np.ndarray:
            value = f[key]
            if value.dtype != np.float64:
                raise ValueError(f"{key} has dtype {value.dtype}, expected float64")
            if value.ndim != len(shape) or any(s is not None and s != v for s, v in zip(shape, value.shape)):
                raise ValueError(f"{key} has shape {value.shape}, expected {shape}")
            if not np.isfinite(value).all():
                raise ValueError(f"{key} is not finite")
            return np.array(value)

        try:
            with open(path, "rb") as handle:
                if handle.read(4) != b"PK\x03\x04":
                    raise ValueError("not an .npz archive")
            with np.load(path, allow_pickle=False) as f:
                names = set(f.files)
                missing = [k for k in required if k not in names]
                if missing:
                    raise ValueError(f"missing member {missing[0]!r}")
                unexpected = sorted(names - set(required) - set(optional))
                if unexpected:
                    raise ValueError(f"unexpected member {unexpected[0]!r}")
                if str(scalar(f, "format", "U")) != "descramble.Descrambler":
                    raise ValueError(f"format is {str(scalar(f, 'format', 'U'))!r}")
                version = int(scalar(f, "version", "iu"))
                if version != 1:
                    raise ValueError(f"unsupported version {version}")
                criterion = str(scalar(f, "criterion", "U"))
                if criterion not in _CRITERIA:
                    raise ValueError(f"criterion is {criterion!r}")
                P = floats(f, "P", (None, None))
                m = P.shape[0]
                if m < 1 or P.shape != (m, m):
                    raise ValueError(f"P has shape {P.shape}, expected a square matrix")
                loss = float(scalar(f, "loss", "f"))
                bound = float(scalar(f, "bound", "f"))
                if not (np.isfinite(loss) and np.isfinite(bound)):
                    raise ValueError("loss or bound is not finite")
                basis = floats(f, "basis", (m, m))
                values = floats(f, "basis_values", (m if criterion != "diagonal" else 0,))
                components = floats(f, "components", (m, m))
                spectrum = floats(f, "spectrum", (m,))
                kinds, sizes, indices = f["degenerate_kinds"], f["degenerate_sizes"], f["degenerate_indices"]
                if (kinds.ndim != 1 or (kinds.size and kinds.dtype.kind != "U") or sizes.ndim != 1
                        or sizes.dtype.kind not in "iu" or indices.ndim != 1 or indices.dtype.kind not in "iu"
                        or sizes.shape != kinds.shape or int(sizes.sum()) != indices.size
                        or (sizes.size and sizes.min() < 2) or (indices.size and (indices.min() < 0
                                                                                  or indices.max() >= m))
                        or not set(kinds.tolist()) <= {"smoothness", "spectrum"}):
                    raise ValueError("the degenerate groups are malformed")
                bounds: Any = np.cumsum(sizes)[:-1] if sizes.size else []
                degenerate = [Degeneracy(str(k), np.asarray(g, dtype=np.intp))
                              for k, g in zip(kinds.tolist(), np.split(indices, bounds))]
                weights = floats(f, "weights", (m, None)) if "weights" in names else None
                hidden = floats(f, "hidden", (m, m)) if "hidden" in names else None
                if (hidden is None) != (criterion == "diagonal"):
                    raise ValueError("hidden: expected S exactly for the criteria other than 'diagonal'")
                Q = floats(f, "Q", (None, None)) if "Q" in names else None
                if Q is not None and (Q.shape[0] != Q.shape[1] or (weights is not None
                                                                   and Q.shape[0] != weights.shape[1])):
                    raise ValueError(f"Q has shape {Q.shape}, expected n x n for the weights' n inputs")
                n_samples = int(scalar(f, "n_samples", "iu")) if "n_samples" in names else None
                if n_samples is not None and n_samples < 0:
                    raise ValueError(f"n_samples is {n_samples}")
                smooth = None
                if "smoothness_spec" in names:
                    spec = json.loads(str(scalar(f, "smoothness_spec", "U")))
                    array = np.array(f["smoothness_array"]) if "smoothness_array" in names else None
                    smooth = from_spec(spec, array)
                    if smooth.size != m:
                        raise ValueError(f"the smoothness acts on {smooth.size} neurons, P on {m}")
                elif "smoothness_array" in names:
                    raise ValueError("smoothness_array without smoothness_spec")
                if (smooth is None) != (criterion == "diagonal"):
                    raise ValueError("smoothness: expected one exactly for the criteria other than 'diagonal'")
                permutation = signs = gap = None
                searched = criterion in PERMUTATION_CRITERIA
                if searched != ("permutation" in names) or searched != ("gap" in names):
                    raise ValueError("permutation, gap: expected exactly for the permutation criteria")
                if (criterion == "signed-permutation") != ("signs" in names):
                    raise ValueError("signs: expected exactly for criterion 'signed-permutation'")
                if searched:
                    permutation = np.array(f["permutation"])
                    if (permutation.dtype.kind not in "iu" or permutation.shape != (m,)
                            or not np.array_equal(np.sort(permutation), np.arange(m))):
                        raise ValueError("permutation is not a permutation of 0..m-1")
                    permutation = permutation.astype(np.intp)
                    gap = float(scalar(f, "gap", "f"))
                    if not gap >= 0:
                        raise ValueError(f"gap is {gap}")
                    expected = np.zeros((m, m))
                    if "signs" in names:
                        signs = floats(f, "signs", (m,))
                        if not np.all(np.abs(signs) == 1):
                            raise ValueError("signs: expected +1 or -1 entries")
                    expected[np.arange(m), permutation] = 1.0 if signs is None else signs
                    if not np.array_equal(P, expected):
                        raise ValueError("P is not the (signed) permutation matrix of permutation and signs")
        except (FileNotFoundError, IsADirectoryError, PermissionError):
            raise
        except (ValueError, TypeError, KeyError, OSError, EOFError, zipfile.BadZipFile) as exc:
            raise ValueError(f"path: {path!r} is not a valid descramble.Descrambler file ({exc})") from None
        return cls(P=P, weights=weights, loss=loss, bound=bound, basis=basis, basis_values=values,
                   components=components, spectrum=spectrum, degenerate=degenerate, hidden=hidden,
                   smoothness=smooth, criterion=criterion, Q=Q, n_samples=n_samples, permutation=permutation,
                   signs=signs, gap=gap)

    def __repr__(self) -> str:
        m = self.P.shape[0]
        name = self.smoothness.name if self.smoothness is not None else self.criterion
        if self.gap is not None:
            return (f"Descrambler(m={m}, {name}, {self.criterion}, loss={self.loss:.6g}, bound={self.bound:.6g}, "
                    f"gap={self.gap:.3g})")
        return (f"Descrambler(m={m}, {name}, loss={self.loss:.6g}, bound={self.bound:.6g}, "
                f"degenerate groups={len(self.degenerate)})")


#: The criteria whose P is a (signed) permutation matrix.
PERMUTATION_CRITERIA = ("permutation", "signed-permutation")
_CRITERIA = ("smooth", "diagonal") + PERMUTATION_CRITERIA


#: Time limits beyond this many seconds (about 31 years) are no limit.
_NO_TIME_LIMIT = 1e9


class _Search(NamedTuple):
    """The permutation search's arguments (checked)."""

    with_signs: bool
    seed: int
    max_iterations: int
    time_limit: float


def _search_options(criterion: str, seed: Any, max_iterations: Any, time_limit: Any) -> Optional[_Search]:
    """Checks the permutation search's arguments; None for the other criteria."""
    for name, value in (("seed", seed), ("max_iterations", max_iterations)):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
            raise TypeError(f"{name}: expected an int, got {value!r}")
        if value < 0:
            raise ValueError(f"{name}: expected >= 0, got {value}")
    if int(seed) >= 2**64:
        raise ValueError(f"seed: expected < 2**64, got {seed}")
    limit = 0.0
    if time_limit is not None:
        if isinstance(time_limit, (bool, np.bool_)) or not isinstance(time_limit, numbers.Real):
            raise TypeError(f"time_limit: expected seconds (a positive number) or None, got {time_limit!r}")
        limit = float(time_limit)
        if not (np.isfinite(limit) and limit > 0):
            raise ValueError(f"time_limit: expected a positive number of seconds or None, got {time_limit!r}")
        if limit > _NO_TIME_LIMIT:
            limit = 0.0  # none: the core's steady-clock deadline (int64 nanoseconds) would overflow past ~292 years
    if criterion not in PERMUTATION_CRITERIA:
        return None
    return _Search(criterion == "signed-permutation", int(seed), int(max_iterations), limit)


def _result(r: Any, W: Optional[np.ndarray], smooth: Optional[Smoothness], criterion: str,
            n_samples: Optional[int] = None, search: Optional[_Search] = None) -> Descrambler:
    """A :class:`Descrambler` from the core's ClosedForm ``r`` (arrays copied out of the core);
    with ``search``, the (signed) permutation found from it."""
    P = np.array(r.P)
    loss = float(r.loss)
    permutation = signs = gap = None
    if search is not None:
        assert smooth is not None
        # Every loss and move delta of the search is a few times sum|A| max|S| at most; when that overflows,
        # no permutation's loss is finite and the core's search has no best to keep (it crashed).
        scale = float(np.abs(smooth.gram).sum()) * float(np.abs(np.asarray(r.hidden)).max(initial=0.0))
        if not scale * 64.0 < np.finfo(np.float64).max:
            raise ValueError(f"the permutation search's losses overflow float64 (sum|A| max|S| = {scale:.3g}): "
                             "rescale the data or the weights")
        found = _core.permutation_search(r, smooth._core, search.with_signs, search.seed, search.max_iterations,
                                         search.time_limit)
        P = np.array(found.matrix())
        loss, gap = float(found.loss), float(found.gap)
        permutation = np.asarray(found.permutation, dtype=np.intp)
        signs = None if found.signs is None else np.array(found.signs)
    return Descrambler(
        P=P, weights=None if W is None else _core.descramble_rows(P, W), loss=loss,
        bound=float(r.bound), basis=np.array(r.basis), basis_values=np.array(r.basis_values),
        components=np.array(r.components), spectrum=np.array(r.spectrum),
        degenerate=[Degeneracy(kind, np.asarray(g, dtype=np.intp)) for kind, g in r.degenerate],
        hidden=np.array(r.hidden) if criterion != "diagonal" else None, smoothness=smooth, criterion=criterion,
        n_samples=n_samples, permutation=permutation, signs=signs, gap=gap,
    )


# -- diagnostics (docs/math.md §3: what a result does not determine) -----------------------------


def numerical_rank(spectrum: Any, precision: str = "float64") -> int:
    """The number of hidden variances mu_k above ``m * eps * max(mu)``.

    ``eps`` is float64's machine epsilon (2.2e-16), or float32's (1.2e-7)
    for statistics accumulated with ``precision="mixed"``, whose products
    resolve no finer. Zero when every mu is zero.
    """
    mu = np.asarray(spectrum, dtype=np.float64)
    top = float(mu.max(initial=0.0))
    if not top > 0:
        return 0
    return int(np.count_nonzero(mu > mu.shape[0] * _EPS[precision] * top))


def is_constant(acc: Autocorrelation) -> bool:
    """True when ``acc`` holds N >= 2 rows (of positive total weight) that are all the same.

    Every feature's standard deviation must be at most :data:`CONSTANT_RTOL`
    (64 eps) times its root-mean-square value sqrt(E[x_j^2]): identical rows
    up to rounding; all-zero data are constant too.
    """
    if acc.count < 2 or not acc.weight_sum > 0:
        return False
    variance = np.diag(acc.scatter) / acc.weight_sum
    second = variance + acc.mean**2  # E[x_j^2]
    return bool(np.all(variance <= CONSTANT_RTOL**2 * second))


def has_zero_mean(acc: Autocorrelation) -> bool:
    """True when the mean of ``acc``'s samples is zero, up to sampling noise or rounding.

    Every ``|mean_j|`` must be at most :data:`ZERO_MEAN_STANDARD_ERRORS` (6)
    standard errors ``sigma_j / sqrt(N)`` (N = ``count``: a sample of
    zero-mean data), or at most :data:`ZERO_MEAN_RTOL` (sqrt(eps)) times the
    largest root-mean-square input (centred data, up to rounding).
    """
    if not acc.weight_sum > 0:
        return True
    mean = np.abs(acc.mean)
    variance = np.maximum(np.diag(acc.scatter) / acc.weight_sum, 0.0)
    rms = float(np.sqrt(np.max(variance + mean**2, initial=0.0)))
    noise = ZERO_MEAN_STANDARD_ERRORS * np.sqrt(variance / max(acc.count, 1))
    return bool(np.all(mean <= np.maximum(noise, ZERO_MEAN_RTOL * rms)))


def _underdetermined(d: Descrambler, precision: str, inputs: Optional[Tuple[int, bool]], constant: bool,
                     where: str) -> Optional[DescrambleWarning]:
    """An UnderdeterminedWarning when rank(S) < m (None otherwise).

    ``inputs``: (n, with a bias) when S is W~ C~ W~^T, whose rank is at most n (+1 with a bias).
    """
    m = d.P.shape[0]
    rank = numerical_rank(d.spectrum, precision)
    N = d.n_samples
    if N is not None:
        rank = min(rank, N)  # S = (1/N) sum_i y_i y_i^T has rank <= N
    if rank >= m:
        return None
    if N is not None and N < m:
        why = f"only N = {N} samples for m = {m} hidden units (S = (1/N) sum y y^T has rank <= N)"
    elif constant:
        why = "the samples are constant"
    elif inputs is not None and inputs[0] + inputs[1] < m:
        n, with_bias = inputs
        why = (f"the layer has n = {n} inputs{' and a bias' if with_bias else ''} for m = {m} units, so "
               f"rank(S) <= {n + with_bias}")
    else:
        why = "the hidden signals are rank deficient (dead, duplicated or collinear units, or collinear inputs)"
    rest = m - rank
    message = f"{where}the hidden autocorrelation S has numerical rank {rank} < m = {m}: {why}. "
    if d.criterion in PERMUTATION_CRITERIA:
        # The loss tr(A P S P^T) sees the units only through S: units whose signals are zero or
        # linear combinations of the others can trade places at little or no cost (docs/math.md §3).
        message += (f"The order's loss sees only the leading {rank} component{'s' * (rank != 1)} of the hidden "
                    "signals: units with zero or collinear signals can change places at little or no cost, so "
                    "their positions are weakly determined (the certificate gap still holds)")
    else:
        message += (f"P is determined only on the leading {rank} component{'s' * (rank != 1)}; the other {rest} "
                    f"direction{'s' * (rest != 1)} (the null space of S) {'fill' if rest != 1 else 'fills'} the "
                    "remaining smooth modes in an arbitrary, deterministic order")
    return UnderdeterminedWarning(message, size=m, rank=rank, n_samples=N)


_SAMPLES = {"data": "data", "autocorrelation": "the Autocorrelation's samples", "hidden": "hidden signals"}


def _constant(acc: Autocorrelation, source: str, where: str) -> Optional[DescrambleWarning]:
    if not is_constant(acc):
        return None
    return ConstantDataWarning(
        f"{where}{_SAMPLES.get(source, 'hidden signals')}: all {acc.count} samples are identical (zero "
        "variance), so they say nothing about how the units vary together; the descrambler reflects only "
        "their common value", source=source)


def _missing_bias(acc: Autocorrelation, where: str) -> Optional[DescrambleWarning]:
    if has_zero_mean(acc):
        return None
    return MissingBiasWarning(
        f"{where}no bias given and the input mean is not zero (max |mean| = {np.abs(acc.mean).max():.3g}): this "
        "is the descrambler of W x, not of the layer's pre-activations W x + b, and the bias can change P "
        "completely. Pass bias=b (the authors' method always includes it), or bias=0 for a layer without one",
        layer="weights")


def _is_zero_scalar(bias: Any) -> bool:
    """True for ``bias=0`` (a scalar zero: "this layer has no bias"); False for arrays; errors for other scalars."""
    b = as_numpy(bias)
    if isinstance(b, (bool, np.bool_)):
        raise TypeError(f"bias: expected an array of shape (m,) or 0 (no bias), got {bias!r}")
    if isinstance(b, numbers.Number) or (isinstance(b, (np.ndarray, np.generic)) and np.ndim(b) == 0):
        value = np.asarray(b)
        if value.dtype.kind not in "iuf":
            raise TypeError(f"bias: expected an array of shape (m,) or 0 (no bias), got {bias!r}")
        if value != 0:
            raise ValueError(f"bias: a scalar bias must be 0 (the layer has no bias); got {bias!r}: "
                             "pass the bias vector, of shape (m,)")
        return True
    return False


def descramble(
    weights: Any = None,
    *,
    autocorrelation: Any = None,
    data: Any = None,
    bias: Any = None,
    hidden: Any = None,
    smoothness: Any = "fourier",
    order: Optional[int] = None,
    criterion: str = "smooth",
    progress: bool = False,
    seed: int = 0,
    max_iterations: int = 100,
    time_limit: Optional[float] = None,
) -> Descrambler:
    """The closed-form descrambler of a layer (Sule, Spencer & Czaja; docs/math.md §3).

    With A = T diag(lambda ascending) T^T (the smoothness operator) and
    S = U diag(mu descending) U^T (the hidden autocorrelation), ``P = T U^T``
    minimises eta(P) = tr(A P S P^T) over all orthogonal P, reaching the
    bound sum_k lambda_k mu_k: the largest principal component of the hidden
    data goes to the smoothest mode, the next to the next, and so on.

    Parameters
    ----------
    weights : array_like of shape (m, n), optional
        The layer's weights W (m hidden units, n inputs).
    autocorrelation : ndarray of shape (n, n) or Autocorrelation, optional
        E[x x^T] of the layer's input. With ``bias``, pass an
        :class:`Autocorrelation` (it carries the input mean).
    data : source, optional
        The layer's input samples (any source :func:`descramble.accumulate`
        takes), streamed once into an Autocorrelation.
    bias : array_like of shape (m,) or 0, optional
        The layer's bias b, handled exactly through the augmented input
        [x; 1] (docs/math.md §1): the descrambler of the pre-activations W x + b.
        ``bias=0`` (a scalar zero) says the layer has no bias: the
        descrambler of W x, without the :class:`~descramble.MissingBiasWarning`
        that leaving ``bias`` out gives when the input mean is not zero; it
        also works with an autocorrelation matrix.
    hidden : ndarray of shape (m, m) or Autocorrelation, optional
        The hidden autocorrelation S itself (for non-linear layers: record
        the hidden signals and accumulate them). ``weights`` is then optional
        and only descrambled.
    smoothness : str, Smoothness or array_like, default "fourier"
        ``"fourier"``, ``"fd"``, ``"fd-circular"``, a
        :mod:`descramble.smoothness` object, or a differentiation matrix D.
    order : int, optional
        Derivative order for a named smoothness (default 2 for "fourier",
        1 for finite differences).
    criterion : {"smooth", "diagonal"}, default "smooth"
        "diagonal": the maximum-diagonality descrambler of a square W,
        maximising tr(P W) over SO(m): P = V U^T from W = U Sigma V^T (the
        orthogonal Procrustes solution), with the Kabsch sign fix when
        det(V U^T) = -1.
        "permutation": the smoothest ordering of the hidden units found, a
        permutation matrix P minimising tr(A P S P^T) over the permutations
        (a quadratic assignment problem): the closed form's T U^T projected
        onto the permutations by an exact linear assignment, then local
        search by pair swaps, sign flips and segment reversals, then a
        robust tabu search seeded by ``seed``, in the C++ core.
        Unlike a rotation, a permutation commutes with element-wise
        activations. "signed-permutation": the same over signed
        permutations (for odd activations such as tanh). Both report
        ``gap``, the certificate against the orthogonal bound.
    progress : bool, default False
        Show a tqdm progress bar while ``data`` is streamed (ignored, with an
        :class:`~descramble.IgnoredArgumentWarning`, without ``data``).
    seed : int, default 0
        Seeds the permutation search's tabu tenures and restarts: the same input
        and seed give the same permutation (unless ``time_limit`` cuts the
        search short). Checked, otherwise unused, for the other criteria.
    max_iterations : int, default 100
        Rounds of robust tabu search after the starts, each of
        ``max(8, 8192 // m)`` swap/flip moves (0: the starts' local searches
        and polish only). The search costs O(m^2) per move: about 1 s at
        m = 128 and 40 to 70 s at m = 512 with the default on 2 cores; pass
        ``time_limit`` to bound it.
    time_limit : float, optional
        Seconds after which the permutation search stops with its best so
        far (None, or more than 1e9 s: no limit). The result then depends on
        the machine's speed.

    Every array may also be a PyTorch tensor or ``nn.Parameter`` (on any
    device, requiring grad or not): it is detached and copied to the CPU.

    Returns
    -------
    Descrambler
        ``n_samples`` is N when the statistics came from data (``data=``, an
        :class:`Autocorrelation`, ``hidden=`` an Autocorrelation).

    Raises
    ------
    ValueError, TypeError
        For missing or conflicting inputs, shape mismatches, non-finite or
        non-symmetric matrices, or an unknown smoothness name or criterion.

    Warns
    -----
    UnderdeterminedWarning
        The hidden autocorrelation S has numerical rank r < m (mu_k counted
        when above ``m * eps * max(mu)``; see :func:`numerical_rank`; r is at
        most N when N is known): P is determined only on the leading r
        components. Typical causes: N < m samples, a layer with fewer inputs
        than units, dead units.
    ConstantDataWarning
        The data (or the hidden Autocorrelation) hold N >= 2 identical
        samples: every feature's standard deviation is at most 64 eps times
        its RMS value (see :func:`is_constant`). Not checked for matrices.
    MissingBiasWarning
        ``data=`` or an Autocorrelation was given without ``bias`` and the
        input mean is not zero (some ``|mean_j|`` more than 6 standard
        errors sigma_j / sqrt(N) and more than sqrt(eps) times the largest
        RMS input from zero; see :func:`has_zero_mean`): the answer is the
        descrambler of W x, not of W x + b. Pass the bias, or ``bias=0``
        when the layer has none.
        Not checked for an autocorrelation matrix (it carries no mean).

    Silence one kind with ``warnings.filterwarnings("ignore", category=...)``.

    Notes
    -----
    Deterministic: the same input gives the same P. Signs: T is fixed
    analytically (or by :func:`descramble.eigh`'s convention), every column
    of U has its largest-magnitude entry positive, except that the last
    column's sign is chosen to make det(P) = +1.
    """
    result, found = _descramble(weights, autocorrelation=autocorrelation, data=data, bias=bias, hidden=hidden,
                                smoothness=smoothness, order=order, criterion=criterion, progress=progress,
                                seed=seed, max_iterations=max_iterations, time_limit=time_limit)
    for warning in found:
        warn(warning)
    return result


def _descramble(
    weights: Any = None,
    *,
    autocorrelation: Any = None,
    data: Any = None,
    bias: Any = None,
    hidden: Any = None,
    smoothness: Any = "fourier",
    order: Optional[int] = None,
    criterion: str = "smooth",
    progress: bool = False,
    where: str = "",
    source: str = "",
    inputs: Optional[Tuple[int, bool]] = None,
    seed: int = 0,
    max_iterations: int = 100,
    time_limit: Optional[float] = None,
) -> Tuple[Descrambler, List[DescrambleWarning]]:
    """:func:`descramble`, returning its warnings instead of issuing them.

    ``where`` prefixes every message (``"layer 'fc1': "``); ``source`` is
    the ``source`` of a ConstantDataWarning (default ``"data"``,
    ``"autocorrelation"`` or ``"hidden"``, by the input given); ``inputs``,
    (n, with a bias) of the layer that produced ``hidden``, explains a rank
    below m in the UnderdeterminedWarning.
    """
    found: List[Optional[DescrambleWarning]] = []
    if check_flag(progress, "progress") and data is None:
        found.append(IgnoredArgumentWarning(f"{where}progress=True shows the streaming of data=; without data= "
                                            "there is nothing to stream", argument="progress"))
    if not isinstance(criterion, str):
        raise TypeError(f"criterion: expected a string, got {criterion!r}")
    search = _search_options(criterion, seed, max_iterations, time_limit)
    if criterion == "diagonal":
        if weights is None:
            raise ValueError("weights: criterion='diagonal' needs a square weight matrix")
        if any(x is not None for x in (autocorrelation, data, bias, hidden)):
            raise ValueError("criterion='diagonal' uses the weights only; drop autocorrelation/data/bias/hidden")
        square = as_matrix(weights, "weights")
        if square.shape[0] != square.shape[1]:
            raise ValueError(f"weights: criterion='diagonal' needs a square matrix, got shape {square.shape}")
        return _result(_core.descramble_diagonal(square), square, None, "diagonal"), [w for w in found if w is not None]
    if criterion not in _CRITERIA:
        raise ValueError(f"criterion: expected one of {', '.join(map(repr, _CRITERIA))}, got {criterion!r}")

    W = None if weights is None else as_matrix(weights, "weights")
    if hidden is not None:
        if autocorrelation is not None or data is not None or bias is not None:
            raise ValueError("hidden: pass either the hidden autocorrelation, or the input "
                             "(autocorrelation= or data=, with bias=), not both")
        hidden_acc = hidden if isinstance(hidden, Autocorrelation) else None
        S = hidden_acc.autocorrelation() if hidden_acc is not None else as_symmetric(hidden, "hidden")
        m = S.shape[0]
        if W is not None and W.shape[0] != m:
            raise ValueError(f"weights: expected {m} rows (the hidden size), got {W.shape[0]}")
        smooth = resolve(smoothness, m, order)
        d = _result(_core.descramble_closed_form(S, smooth._core), W, smooth, criterion,
                    None if hidden_acc is None else hidden_acc.count, search)
        constant = None if hidden_acc is None else _constant(hidden_acc, source or "hidden", where)
        found.append(constant)
        found.append(_underdetermined(d, "float64" if hidden_acc is None else hidden_acc.precision, inputs,
                                      constant is not None, where))
        return d, [w for w in found if w is not None]

    if W is None:
        raise ValueError("weights: needed unless hidden= is given")
    if (autocorrelation is None) == (data is None):
        raise ValueError("pass exactly one of autocorrelation= (a matrix or an Autocorrelation) or data=")
    m, n = W.shape
    acc: Optional[Autocorrelation] = None
    C = np.empty((0, 0))  # the autocorrelation matrix, when given as one
    if data is not None:
        acc = accumulate(data, progress=progress)
    elif isinstance(autocorrelation, Autocorrelation):
        acc = autocorrelation
    else:
        C = as_symmetric(autocorrelation, "autocorrelation")
    width = acc.n_features if acc is not None else C.shape[0]
    if width != n:
        raise ValueError(f"autocorrelation: the input has {width} features, the weights have {n} columns")
    no_bias = bias is not None and _is_zero_scalar(bias)
    b = None if bias is None or no_bias else as_vector(bias, "bias", m)
    if b is not None and acc is None:
        raise ValueError("bias: needs the input mean; pass an Autocorrelation or data= "
                         "instead of an autocorrelation matrix (or bias=0 for a layer without a bias)")
    smooth = resolve(smoothness, m, order)
    # U from the SVD of W~ L with C~ = L L^T, the bias through the augmented
    # input [x; 1] (docs/math.md §1, §3): all in the core.
    if acc is None:
        r = _core.descramble_layer(W, C, smooth._core)
    elif b is None:
        r = _core.descramble_layer(W, acc._core, smooth._core)
    else:
        r = _core.descramble_layer(W, b, acc._core, smooth._core)
    d = _result(r, W, smooth, criterion, None if acc is None else acc.count, search)
    constant = None if acc is None else _constant(acc, source or ("data" if data is not None else "autocorrelation"),
                                                  where)
    found.append(constant)
    if acc is not None and bias is None:
        found.append(_missing_bias(acc, where))
    found.append(_underdetermined(d, "float64" if acc is None else acc.precision, (n, b is not None),
                                  constant is not None, where))
    return d, [w for w in found if w is not None]


def smoothness_loss(P: Any, hidden: Any, smoothness: Smoothness) -> float:
    """eta(P) = tr(A P S P^T) (docs/math.md §2): the loss of the descrambler ``P`` on the hidden autocorrelation ``S``.

    Parameters
    ----------
    P : array_like of shape (m, m)
        A descrambler (any orthogonal matrix).
    hidden : array_like of shape (m, m)
        The hidden autocorrelation S.
    smoothness : Smoothness
        The operator on m neurons (its Gram matrix A).

    Returns
    -------
    float
    """
    if not isinstance(smoothness, Smoothness):
        raise TypeError(f"smoothness: expected a descramble.smoothness.Smoothness (e.g. smoothness.fourier(m)), "
                        f"got {type(smoothness).__name__}")
    m = smoothness.size
    return float(_core.smoothness_loss(smoothness.gram, as_symmetric(hidden, "hidden", m), as_square(P, "P", m)))


class Stability(NamedTuple):
    """Split-half diagnostic of :func:`stability`.

    Attributes
    ----------
    loss_gap : float
        ``|eta_1 - eta_2| / mean(eta_1, eta_2)`` between the halves' descramblers.
    angles : ndarray of shape (m,)
        Angle in degrees between the halves' k-th components (within a
        degenerate group of the spectrum: the largest principal angle between
        the groups' subspaces). Small angles mean N is large enough for that
        component; large ones mark ill-determined components (small gaps
        between successive mu, docs/math.md §5).
    first, second : Descrambler
        The descramblers of the two halves.
    """

    loss_gap: float
    angles: np.ndarray
    first: Descrambler
    second: Descrambler


def stability(weights: Any, data: Any, *, bias: Any = None, smoothness: Any = "fourier",
              order: Optional[int] = None, progress: bool = False) -> Stability:
    """Descramble two halves of the data (even and odd rows) and compare (docs/math.md §5).

    Parameters
    ----------
    weights : array_like of shape (m, n)
    data : source
        The layer's input samples: an array, a .npy file, a dataset or an
        iterable of chunks; rows are split between the halves alternately.
    bias, smoothness, order
        As in :func:`descramble`.
    progress : bool, default False
        Show a tqdm progress bar while ``data`` is streamed.

    Returns
    -------
    Stability

    Warns
    -----
    UnderdeterminedWarning, ConstantDataWarning, MissingBiasWarning
        As :func:`descramble`, for the halves (each of about N/2 samples),
        each kind at most once.
    """
    W = as_matrix(weights, "weights")
    check_flag(progress, "progress")
    src = open_source(data)
    halves = [Autocorrelation(src.n_features), Autocorrelation(src.n_features)]

    def split(chunk: np.ndarray, weights: Optional[np.ndarray], first_row: int, name: str) -> None:
        # Even rows of the stream to the first half, odd rows to the second,
        # whatever the chunking; errors name the row of the stream, the first
        # bad one of the chunk whichever half holds it.
        errors: List[_core.NonFiniteError] = []
        for k, half in enumerate(halves):
            start = (k - first_row) % 2
            try:
                half._core.update(chunk[start::2], None, first_row + start, name, 2)
            except _core.NonFiniteError as exc:
                errors.append(exc)
        if errors:
            raise min(errors, key=lambda exc: exc.row if exc.row is not None else -1)

    with progress_bar(progress, src.rows, "stability") as report:
        src.feed(split, report)
    if min(h.count for h in halves) == 0:
        raise ValueError("data: need at least two rows to split in halves")
    (first, found), (second, more) = (
        _descramble(W, autocorrelation=h, bias=bias, smoothness=smoothness, order=order, source="data")
        for h in halves)
    kinds = {type(w) for w in found}
    for warning in found + [w for w in more if type(w) not in kinds]:
        warn(warning)
    angles = component_angles(first.components, second.components, first.spectrum)
    gap = abs(first.loss - second.loss) / max((first.loss + second.loss) / 2, np.finfo(float).tiny)
    return Stability(float(gap), angles, first, second)


def component_angles(U1: np.ndarray, U2: np.ndarray, spectrum: np.ndarray) -> np.ndarray:
    """Angles (degrees) between matching columns of U1 and U2, by subspace
    within degenerate groups of ``spectrum`` (sign and rotation free)."""
    m = U1.shape[1]
    angles = np.degrees(np.arccos(np.clip(np.abs(np.sum(U1 * U2, axis=0)), 0.0, 1.0)))
    for group in degenerate_groups(spectrum):
        # Principal angles: singular values of U1_g^T U2_g are their cosines.
        cosines = np.linalg.svd(U1[:, group].T @ U2[:, group], compute_uv=False)
        angles[group] = np.degrees(np.arccos(np.clip(cosines.min(), 0.0, 1.0)))
    return angles[:m]
