"""Frequentist limits from the same likelihood: the (profile) likelihood ratio on a grid and Wilks' theorem.

For parameters of interest theta (the grid) and nuisances nu,

    q(theta) = -2 [log L(theta, nu_hat_hat(theta)) - log L(theta_hat, nu_hat)],

with nu_hat_hat(theta) the conditional maximum and (theta_hat, nu_hat) the global one. By Wilks' theorem
(Wilks, Ann. Math. Statist. 9 (1938) 60; Cowan, Cranmer, Gross, Vitells, arXiv:1007.1727) q(theta_true) is
asymptotically chi^2 distributed with as many degrees of freedom as parameters of interest, so

    region at CL alpha:  {theta : q(theta) <= F^-1_{chi^2_k}(alpha)},   k = number of parameters of interest,

(k = 1: 1.00 at 68.27%, 3.84 at 95%; k = 2: 2.30 and 5.99). :func:`profile_likelihood_limits` evaluates the
profiled log-likelihood on every grid point and gives the joint region (contours of q at the k-dof
thresholds) and, per parameter, the 1-D interval {q_j <= F^-1_{chi^2_1}(alpha)} of the profile over the grid,
q_j(theta_j) = min over the other grid axes of q, with its end points linearly interpolated between grid points.

Expected limits (Asimov data; Cowan, Cranmer, Gross, Vitells, sec. 3.2): the limits a typical data set drawn at a
hypothesis theta_0 would give. For an unbinned likelihood the Asimov log-likelihood is the expectation

    log L_A(theta) = N E_{x ~ p(x|theta_0)}[log p(x|theta)]  ~  (N / M) sum_{j=1}^M log p(x_j|theta),  x_j ~ p(x|theta_0),

estimated with M events sampled from the model at theta_0 (:func:`asimov_sample`, :class:`AsimovLikelihood`),
N the number of events expected (the observed number, or nu(theta_0) with a rate term, whose Asimov form is
nu(theta_0) log nu(theta) - nu(theta), :class:`AsimovRate`). Its maximum lies at theta_0 (Gibbs' inequality;
with finite M within O(sigma_1 / sqrt(M)) of it, sigma_1 the one-event resolution), and q_A from it gives the
median expected intervals: :func:`profile_likelihood_limits` applies unchanged.

``log_likelihood`` is the profiled function of the parameters of interest, theta (K, k) -> (K,); without
nuisances it is the likelihood itself (``ModelLikelihood``, ``SimulatorLikelihood``, optionally an
``ExtendedLikelihood`` with a rate term). With nuisance parameters nu, :class:`ProfiledLikelihood` maximizes

    log L_p(theta) = max_nu [log L(theta, nu) + sum_j log c_j(nu_j)]

per grid point, c_j the nuisance's constraint (its prior component: the auxiliary measurement that constrains
it, N(0, 1) for ``lhc``'s jet energy scale), all grid points at once: a scan of ``SCAN_POINTS`` values per nuisance
(within +-4 constraint widths; product grid for up to two nuisances, else the constraint's centre), then
``NEWTON_ITERATIONS`` vectorized Newton steps with central-difference gradient and Hessian (step ``FD_STEP``
constraint widths; a step that does not increase the objective is halved, up to four times; gradient ascent where
the Hessian is not negative definite).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mflow_sbi.errors import InputError
from mflow_sbi.io import save_json, save_npz

DEFAULT_CL = (0.68, 0.95)
MAX_GRID_POINTS = 1_000_000


@dataclass(frozen=True)
class GridAxis:
    """One parameter of interest and the values it takes on the grid (increasing)."""

    name: str
    values: np.ndarray


def parse_grid_spec(text: str) -> GridAxis:
    """``NAME=LOW:HIGH:N`` -> N evenly spaced values from LOW to HIGH inclusive (N >= 2, LOW < HIGH)."""
    name, sep, spec = text.partition("=")
    parts = spec.split(":")
    if not sep or not name.strip() or len(parts) != 3:
        raise InputError(f"grid {text!r} is not of the form NAME=LOW:HIGH:N (e.g. theta_0=-2:2:41)")
    try:
        low, high, n = float(parts[0]), float(parts[1]), int(parts[2])
    except ValueError:
        raise InputError(f"grid {text!r}: LOW and HIGH must be numbers and N an integer") from None
    if not (np.isfinite(low) and np.isfinite(high) and low < high) or n < 2:
        raise InputError(f"grid {text!r}: needs finite LOW < HIGH and N >= 2")
    return GridAxis(name.strip(), np.linspace(low, high, n))


def order_axes(axes: Sequence[GridAxis], parameter_names: Sequence[str],
               nuisance_names: Sequence[str] = ()) -> list[GridAxis]:
    """The axes in the order of ``parameter_names``; every parameter that is not one of the ``nuisance_names``
    needs exactly one axis (the nuisances without an axis are profiled; a nuisance may also be put on the grid)."""
    by_name: dict[str, GridAxis] = {}
    for axis in axes:
        if axis.name not in parameter_names:
            raise InputError(f"grid axis {axis.name}: not a parameter of the model (parameters: {', '.join(parameter_names)})")
        if axis.name in by_name:
            raise InputError(f"grid axis {axis.name} is given twice")
        by_name[axis.name] = axis
    missing = [name for name in parameter_names if name not in by_name and name not in nuisance_names]
    if missing:
        extra = f" (the nuisance parameters {', '.join(nuisance_names)} are profiled)" if nuisance_names else ""
        raise InputError(f"no grid axis for {', '.join(missing)}: every parameter of interest needs a grid{extra}")
    return [by_name[name] for name in parameter_names if name in by_name]


SCAN_POINTS = 17
SCAN_WIDTH = 4.0  # constraint widths
NEWTON_ITERATIONS = 12
FD_STEP = 0.05  # constraint widths


class ProfiledLikelihood:
    """theta of interest (K, k) -> (K,) max over the nuisances of log L(theta, nu) + sum_j log c_j(nu_j) (module
    docstring). ``log_likelihood`` takes the full parameter vector (K, p); ``interest`` and ``nuisance`` are the
    column indices of the gridded parameters and of the profiled ones; ``constraints`` the nuisances' prior
    components (``log_prob``, ``support``; a normal one gives the centre and width of the search)."""

    def __init__(self, log_likelihood: Callable[[np.ndarray], np.ndarray], dim: int, interest: Sequence[int],
                 nuisance: Sequence[int], constraints: Sequence[Any]):
        if sorted([*interest, *nuisance]) != list(range(dim)) or len(constraints) != len(nuisance) or not nuisance:
            raise InputError(f"profiling needs the {dim} parameters split into gridded and profiled ones with one "
                             f"constraint per profiled parameter, got {list(interest)}, {list(nuisance)}")
        self.log_likelihood = log_likelihood
        self.dim = int(dim)
        self.interest, self.nuisance = list(interest), list(nuisance)
        self.constraints = list(constraints)
        self.centre = np.array([getattr(c, "loc", 0.5 * sum(c.support)) for c in constraints], dtype=np.float64)
        self.width = np.array([getattr(c, "scale", (c.support[1] - c.support[0]) / (2 * SCAN_WIDTH))
                               for c in constraints], dtype=np.float64)
        self.parameter_dim = len(self.interest)

    def objective(self, theta: np.ndarray, nu: np.ndarray) -> np.ndarray:
        """log L(theta, nu) + sum_j log c_j(nu_j) for rows theta (K, k), nu (K, m); NaN -> -inf."""
        full = np.empty((len(theta), self.dim))
        full[:, self.interest], full[:, self.nuisance] = theta, nu
        value = np.asarray(self.log_likelihood(full), dtype=np.float64)
        for j, c in enumerate(self.constraints):
            value = value + c.log_prob(nu[:, j])
        return np.where(np.isnan(value), -np.inf, value)

    def _scan(self, theta: np.ndarray) -> np.ndarray:
        m = len(self.nuisance)
        if m > 2:
            return np.tile(self.centre, (len(theta), 1))
        offsets = np.linspace(-SCAN_WIDTH, SCAN_WIDTH, SCAN_POINTS)
        grid = np.stack(np.meshgrid(*[offsets] * m, indexing="ij"), axis=-1).reshape(-1, m) * self.width + self.centre
        values = self.objective(np.repeat(theta, len(grid), axis=0), np.tile(grid, (len(theta), 1)))
        return grid[np.argmax(values.reshape(len(theta), len(grid)), axis=1)]

    def _derivatives(self, theta: np.ndarray, nu: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(f, gradient (K, m), Hessian (K, m, m)) by central differences, all points in one call."""
        k, m = nu.shape
        h = FD_STEP * self.width
        shifts = [np.zeros(m)]
        for i in range(m):
            shifts += [h[i] * np.eye(m)[i], -h[i] * np.eye(m)[i]]
        pairs = [(i, j) for i in range(m) for j in range(i + 1, m)]
        for i, j in pairs:
            for a, b in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
                shifts.append(a * h[i] * np.eye(m)[i] + b * h[j] * np.eye(m)[j])
        shifts = np.array(shifts)
        values = self.objective(np.repeat(theta, len(shifts), axis=0),
                                (nu[:, None, :] + shifts[None]).reshape(-1, m)).reshape(k, len(shifts))
        f = values[:, 0]
        gradient = np.empty((k, m))
        hessian = np.empty((k, m, m))
        with np.errstate(invalid="ignore"):
            for i in range(m):
                plus, minus = values[:, 1 + 2 * i], values[:, 2 + 2 * i]
                gradient[:, i] = (plus - minus) / (2 * h[i])
                hessian[:, i, i] = (plus - 2 * f + minus) / h[i] ** 2
            for n, (i, j) in enumerate(pairs):
                pp, pm, mp, mm = (values[:, 1 + 2 * m + 4 * n + t] for t in range(4))
                hessian[:, i, j] = hessian[:, j, i] = (pp - pm - mp + mm) / (4 * h[i] * h[j])
        return f, gradient, hessian

    def maximize(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(log L_p(theta) (K,), nu_hat_hat (K, m)) for gridded parameters theta (K, k)."""
        theta = np.atleast_2d(np.asarray(theta, dtype=np.float64))
        nu = self._scan(theta)
        best = self.objective(theta, nu)
        for _ in range(NEWTON_ITERATIONS):
            f, gradient, hessian = self._derivatives(theta, nu)
            finite = np.isfinite(f) & np.all(np.isfinite(gradient), axis=1) & np.all(np.isfinite(hessian), axis=(1, 2))
            step = np.where(finite[:, None], gradient * self.width**2 * 0.1, 0.0)
            ok = finite.copy()
            ok[finite] &= np.all(np.linalg.eigvalsh(hessian[finite]) < 0, axis=1)
            if ok.any():
                step[ok] = np.linalg.solve(-hessian[ok], gradient[ok][:, :, None])[:, :, 0]
            step = np.clip(step, -SCAN_WIDTH * self.width / 4, SCAN_WIDTH * self.width / 4)
            moved = np.zeros(len(theta), dtype=bool)
            for fraction in (1.0, 0.5, 0.25, 0.125, 0.0625):
                trial = nu + fraction * step
                value = self.objective(theta, trial)
                better = ~moved & (value > best)
                nu[better], best[better] = trial[better], value[better]
                moved |= better
            if not moved.any() or np.max(np.abs(step[moved]) / self.width) < 1e-6:
                break
        return best, nu

    def __call__(self, theta: np.ndarray) -> np.ndarray:
        return self.maximize(theta)[0]


def wilks_threshold(level: float, dof: int) -> float:
    """F^-1_{chi^2_dof}(level): the value of q bounding the region at confidence ``level``."""
    from scipy.stats import chi2

    if not 0 < level < 1:
        raise InputError(f"confidence level must be in (0, 1), got {level}")
    return float(chi2.ppf(level, dof))


def interval_segments(values: np.ndarray, q: np.ndarray, threshold: float) -> list[list[float]]:
    """The set {q <= threshold} of a function sampled at increasing ``values``, as [low, high] segments with
    end points linearly interpolated between grid points (a segment reaching a grid end stops there)."""
    inside = q <= threshold
    segments: list[list[float]] = []
    k = 0
    while k < len(values):
        if not inside[k]:
            k += 1
            continue
        start = k
        while k + 1 < len(values) and inside[k + 1]:
            k += 1
        low = values[0] if start == 0 else _crossing(values, q, start - 1, threshold)
        high = values[-1] if k == len(values) - 1 else _crossing(values, q, k, threshold)
        segments.append([float(low), float(high)])
        k += 1
    return segments


def _crossing(values: np.ndarray, q: np.ndarray, i: int, threshold: float) -> float:
    """Where the straight line through (values[i], q[i]) and (values[i+1], q[i+1]) reaches ``threshold``."""
    q0, q1 = q[i], q[i + 1]
    if not (np.isfinite(q0) and np.isfinite(q1)) or q0 == q1:
        return float(values[i] if q0 <= threshold else values[i + 1])
    t = (threshold - q0) / (q1 - q0)
    return float(values[i] + t * (values[i + 1] - values[i]))


@dataclass
class LimitResult:
    """q on the grid and the regions it gives (see the module docstring).

    ``q`` has one axis per parameter of interest (``indexing="ij"``); ``thresholds[level]`` is the joint
    (k-dof) threshold, ``intervals[name][level]`` the 1-D profile interval segments (1 dof), with
    ``open[name][level]`` true when a segment reaches the grid's edge (the limit lies beyond the grid).
    """

    names: list[str]
    axes: list[np.ndarray]
    log_likelihood: np.ndarray
    q: np.ndarray
    theta_hat: np.ndarray
    log_likelihood_hat: float
    levels: list[float]
    thresholds: dict[float, float]
    intervals: dict[str, dict[float, list[list[float]]]]
    open: dict[str, dict[float, bool]]
    metadata: dict[str, Any] = field(default_factory=dict)
    expected: LimitResult | None = None  # the Asimov (median expected) result on the same grid, when computed
    expected_toys: Any = None  # a :class:`~mflow_sbi.inference.toys.ToyLimits` on the same grid, when computed

    def profile(self, k: int) -> np.ndarray:
        """q_k(theta_k): q minimized over every other grid axis."""
        other = tuple(j for j in range(self.q.ndim) if j != k)
        return self.q.min(axis=other) if other else self.q

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable: the MLE, the thresholds and the intervals per level (keys like ``"0.68"``)."""
        return {
            "parameters": self.names,
            "theta_hat": dict(zip(self.names, (float(v) for v in self.theta_hat), strict=True)),
            "log_likelihood_hat": self.log_likelihood_hat,
            "dof": len(self.names),
            "grid": {name: [float(a[0]), float(a[-1]), len(a)] for name, a in zip(self.names, self.axes, strict=True)},
            "thresholds": {f"{lv:g}": t for lv, t in self.thresholds.items()},
            "intervals": {name: {f"{lv:g}": {"segments": segs, "open": self.open[name][lv]} for lv, segs in per.items()}
                          for name, per in self.intervals.items()},
            "metadata": self.metadata,
            **({"expected": self.expected.to_dict()} if self.expected is not None else {}),
            **({"expected_toys": self.expected_toys.to_dict()} if self.expected_toys is not None else {}),
        }

    def save(self, json_path: str | os.PathLike, npz_path: str | os.PathLike) -> tuple[Path, Path]:
        """The summary as JSON and the grid (one array per axis, ``q``, ``log_likelihood``, ``theta_hat``, and for
        expected limits ``q_expected``, ``log_likelihood_expected``, ``theta_hat_expected``, for toys
        ``toy_quantiles`` and ``q_toys_<name>``) as NPZ."""
        arrays = {f"axis_{name}": a for name, a in zip(self.names, self.axes, strict=True)}
        if self.expected_toys is not None:
            arrays.update(self.expected_toys.arrays())
        if self.expected is not None:
            arrays.update(q_expected=self.expected.q, log_likelihood_expected=self.expected.log_likelihood,
                          theta_hat_expected=self.expected.theta_hat)
        npz = save_npz(npz_path, q=self.q, log_likelihood=self.log_likelihood, theta_hat=self.theta_hat,
                       names=np.array(self.names), **arrays)
        return save_json(json_path, self.to_dict()), npz


def profile_likelihood_limits(
    log_likelihood: Callable[[np.ndarray], np.ndarray],
    axes: Sequence[GridAxis],
    *,
    levels: Sequence[float] = DEFAULT_CL,
    refine: bool = True,
    chunk_size: int = 4096,
    metadata: dict[str, Any] | None = None,
) -> LimitResult:
    """q(theta) on the grid spanned by ``axes`` for the (profiled) ``log_likelihood`` theta (K, k) -> (K,).

    log L(theta_hat) is the grid maximum, improved with ``refine`` by a Nelder-Mead maximization started there
    (so q >= 0 everywhere and q is not biased by the grid spacing). Points where the likelihood is not finite
    get q = inf. ``levels``: confidence levels of the regions and intervals.
    """
    if not axes:
        raise InputError("limits need at least one grid axis")
    values = [np.asarray(a.values, dtype=np.float64) for a in axes]
    for a, v in zip(axes, values, strict=True):
        if v.ndim != 1 or len(v) < 2 or np.any(np.diff(v) <= 0):
            raise InputError(f"grid axis {a.name}: needs >= 2 increasing values")
    shape = tuple(len(v) for v in values)
    n_points = int(np.prod(shape))
    if n_points > MAX_GRID_POINTS:
        raise InputError(f"the grid has {n_points} points, more than {MAX_GRID_POINTS}")
    levels = [float(lv) for lv in levels]
    dof = len(values)
    thresholds = {lv: wilks_threshold(lv, dof) for lv in levels}
    points = np.stack(np.meshgrid(*values, indexing="ij"), axis=-1).reshape(-1, dof)
    log_l = np.concatenate([np.asarray(log_likelihood(points[s:s + chunk_size]), dtype=np.float64)
                            for s in range(0, n_points, chunk_size)])
    log_l = np.where(np.isnan(log_l), -np.inf, log_l)
    if not np.isfinite(log_l).any():
        raise InputError("the log-likelihood is not finite anywhere on the grid")
    best = int(np.argmax(log_l))
    theta_hat, log_l_hat = points[best].copy(), float(log_l[best])
    if refine:
        theta_hat, log_l_hat = _refine_maximum(log_likelihood, theta_hat, log_l_hat)
    q = np.where(np.isfinite(log_l), np.maximum(-2.0 * (log_l - log_l_hat), 0.0), np.inf).reshape(shape)
    names = [a.name for a in axes]
    result = LimitResult(names, values, log_l.reshape(shape), q, theta_hat, log_l_hat, levels, thresholds, {}, {},
                         dict(metadata or {}))
    for k, name in enumerate(names):
        profile = result.profile(k)
        result.intervals[name], result.open[name] = {}, {}
        for lv in levels:
            segments = interval_segments(values[k], profile, wilks_threshold(lv, 1))
            result.intervals[name][lv] = segments
            result.open[name][lv] = bool(segments) and bool(segments[0][0] <= values[k][0]
                                                            or segments[-1][1] >= values[k][-1])
    return result


class AsimovLikelihood:
    """log L_A(theta) = (n_expected / M) x ``sample_likelihood(theta)`` (+ ``rate(theta)``), ``sample_likelihood``
    the summed log-likelihood of M events drawn at theta_0 (e.g. a ``ModelLikelihood`` on them)."""

    def __init__(self, sample_likelihood: Callable[[np.ndarray], np.ndarray], n_sample: int, n_expected: float,
                 rate: Callable[[np.ndarray], np.ndarray] | None = None):
        if n_sample < 1 or not n_expected > 0:
            raise InputError(f"Asimov data need M >= 1 sampled and N > 0 expected events, got {n_sample} and {n_expected}")
        self.sample_likelihood = sample_likelihood
        self.factor = float(n_expected) / int(n_sample)
        self.rate = rate

    def __call__(self, theta: np.ndarray) -> np.ndarray:
        value = self.factor * np.asarray(self.sample_likelihood(theta), dtype=np.float64)
        return value if self.rate is None else value + self.rate(theta)


class AsimovRate:
    """The Poisson term at its expectation n = nu_0 = nu(theta_0): nu_0 log nu(theta) - nu(theta) (-inf for nu <= 0);
    ``expected_events``: theta (K, p) -> nu (K,)."""

    def __init__(self, expected_events: Callable[[np.ndarray], np.ndarray], theta_0: np.ndarray):
        self.expected_events = expected_events
        self.nu_0 = float(np.asarray(expected_events(np.atleast_2d(theta_0)), dtype=np.float64).reshape(-1)[0])
        if not self.nu_0 > 0:
            raise InputError(f"the expected number of events at theta_0 must be positive, got {self.nu_0}")

    def __call__(self, theta: np.ndarray) -> np.ndarray:
        nu = np.asarray(self.expected_events(np.atleast_2d(theta)), dtype=np.float64).reshape(-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            value = self.nu_0 * np.log(nu) - nu
        return np.where(nu > 0, value, -np.inf)


def asimov_sample(model: Any, theta_0: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """M = ``n`` events x ~ p_model(x | theta_0) (float64, seeded): the Monte-Carlo Asimov data set."""
    import torch

    theta_0 = np.asarray(theta_0, dtype=np.float64).reshape(-1)
    if theta_0.shape != (int(model.parameter_dim),):
        raise InputError(f"theta_0 needs {model.parameter_dim} value(s), got {theta_0.tolist()}")
    with torch.no_grad():
        events = model.sample(torch.as_tensor(theta_0, dtype=torch.float32), int(n), torch.Generator().manual_seed(seed))
    return events.double().cpu().numpy()


def _refine_maximum(log_likelihood: Callable[[np.ndarray], np.ndarray], start: np.ndarray,
                    value: float) -> tuple[np.ndarray, float]:
    from scipy.optimize import minimize

    def negative(theta: np.ndarray) -> float:
        result = float(np.asarray(log_likelihood(theta[None, :]), dtype=np.float64)[0])
        return -result if np.isfinite(result) else np.inf

    found = minimize(negative, start, method="Nelder-Mead", options={"xatol": 1e-6, "fatol": 1e-9, "maxiter": 2000})
    if np.isfinite(found.fun) and -found.fun > value:
        return np.asarray(found.x, dtype=np.float64), float(-found.fun)
    return start, value


__all__ = ["DEFAULT_CL", "AsimovLikelihood", "AsimovRate", "GridAxis", "LimitResult", "ProfiledLikelihood", "asimov_sample",
           "interval_segments", "order_axes", "parse_grid_spec", "profile_likelihood_limits", "wilks_threshold"]
