"""Find the modes of a posterior, weigh them, and place emcee walkers across them in proportion.

An ensemble started from the prior populates each well-separated mode with the walkers that happened to
start in its basin, and stretch/DE moves rarely carry a walker across a deep valley, so the chain's mode
fractions reflect the start, not the posterior. This module supplies the start and the check:

1. **Multi-start optimization** (``multistart_optimize``). Draw ``n_draws`` points from the prior (seeded),
   evaluate the log posterior log pi(theta) at all of them in one vectorized call, keep the best
   ``keep_fraction`` (at most ``max_starts``) and maximize log pi from them, best first, with L-BFGS-B (box
   bounds from the prior support; gradients by central differences, the 2p + 1 stencil points of one
   iterate in one vectorized call) or Nelder-Mead. After each optimum the remaining starts that already lie
   in its basin (the hill-valley test of step 2 between start and optimum, all starts in one call) are
   dropped, so the number of optimizations is about the number of modes, not of starts. Before that, all
   starts climb together by up to ``ASCENT_ITERATIONS`` steps of normalized-gradient ascent with adaptive
   step length (two vectorized calls per step), so that far-out starts reach their own basin's top first; a
   start whose step length has shrunk below ``ASCENT_MIN_STEP`` prior standard deviations sits at its top (to
   that resolution) and is not evaluated again.
2. **Clustering into modes** (``cluster_optima``), a hill-valley test (Ursem 1999): optima are visited from
   the highest; optimum b joins the mode of an earlier representative a when log pi on the segment between
   them never drops below min(log pi(a), log pi(b)) - ``valley_tol`` (``VALLEY_POINTS`` interior points,
   one vectorized call); otherwise it opens a new mode. Within one Gaussian-like mode the segment is
   concave and never dips; between separated modes it crosses a valley.
3. **Mass of each mode**. With H_k = -grad^2 log pi at the mode theta_k (central finite differences,
   2p^2 + 1 points in one call, step 0.1 x the mode's own standard deviation after a first pass at
   1e-3 x the prior's), the Laplace approximation of the mass is
       Z_k ~ pi(theta_k) (2 pi)^(p/2) det(H_k)^(-1/2),
   exact for a Gaussian mode. The default refines it by importance sampling (``mass="importance"``): with
   q_k a multivariate Student-t (``IS_DF`` degrees of freedom) at theta_k with scale Sigma_k = H_k^-1,
       Z_k ~ (1 / n) sum_i pi(theta_i) 1[a(theta_i) = k] / q_k(theta_i),   theta_i ~ q_k,
   where a(theta) = argmax_j [log w_j + log N(theta; theta_j, Sigma_j)] assigns a point to the mode whose
   Laplace Gaussian (weighted by its Laplace mass w_j) explains it best; the indicator keeps the basins of
   the modes disjoint, and the heavy-tailed proposal covers skewed or truncated modes the Laplace
   Gaussian misses. Mode weights are W_k = Z_k / sum_j Z_j.
4. **Walkers** (``place_walkers``): n_k walkers in mode k by largest remainders of W_k x n_walkers (at
   least ``MIN_WALKERS_PER_MODE`` in every mode that gets any, so that stretch/DE moves have a partner in
   the same mode), each drawn from N(theta_k, Sigma_k) with a finite posterior. The walkers are
   interleaved so that the consecutive walker groups used by split-R-hat hold the modes in equal shares.
5. **After the run** (``mode_check``): every post-burn-in sample is assigned to a mode with a(theta); the
   report gives each mode's fraction of samples against W_k, and the number of between-mode transitions of
   the walkers. When the walkers did not mix between modes (fewer transitions than walkers) the chain's
   mode fractions only echo the start, so the per-mode sample sets are re-weighted to W_k: each mode's
   samples are thinned (without replacement, seeded, time order kept) to the largest sample set whose
   mode fractions are W_k (importance weights W_k / f_k, resampled). When the walkers did mix, the chain's
   own fractions are kept. Warnings: a mode whose chain fraction differs from W_k by more than
   ``MASS_WARN_POINTS`` percentage points, and all samples in one mode while several modes carry mass.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize
from scipy.special import gammaln, logsumexp

from mflow_sbi.errors import InputError

N_DRAWS_MIN = 1000
N_DRAWS_PER_DIM = 200
KEEP_FRACTION = 0.1
MAX_STARTS = 100
ASCENT_ITERATIONS = 40
ASCENT_MIN_STEP = 1e-3  # x the prior's standard deviation: a start stops climbing once its step is this short
GRADIENT_STEP = 1e-4  # x the prior's standard deviation
HESSIAN_FIRST_STEP = 1e-3  # x the prior's standard deviation
HESSIAN_STEP = 0.1  # x the mode's standard deviation
VALLEY_TOL = 1.0  # nats
VALLEY_POINTS = 5
N_IMPORTANCE = 2048
IS_DF = 5.0
MIN_WALKERS_PER_MODE = 2
MASS_WARN_POINTS = 10.0
ONE_MODE_MASS = 0.05  # modes below this weight do not count for the "all walkers in one mode" warning
BIG = 1e300  # objective value outside the support (finite, so that line searches can back off)
MASSES = ("importance", "laplace")
METHODS = ("L-BFGS-B", "Nelder-Mead")
LOG_2PI = math.log(2 * math.pi)

LogDensity = Callable[[np.ndarray], np.ndarray]


class _Counted:
    """A vectorized log density that counts the points it was asked for."""

    def __init__(self, log_density: LogDensity):
        self.log_density = log_density
        self.points = 0

    def __call__(self, theta: np.ndarray) -> np.ndarray:
        theta = np.atleast_2d(np.asarray(theta, dtype=np.float64))
        self.points += len(theta)
        values = np.asarray(self.log_density(theta), dtype=np.float64).reshape(len(theta))
        return np.where(np.isnan(values), -np.inf, values)


@dataclass
class Mode:
    """One mode: location, log pi there, Laplace covariance, log masses, and how many optima landed in it."""

    location: np.ndarray
    log_density: float
    covariance: np.ndarray
    log_mass_laplace: float
    log_mass: float
    n_optima: int = 1
    importance_ess: float | None = None

    def to_dict(self) -> dict:
        return {"location": self.location.tolist(), "log_density": self.log_density,
                "std": np.sqrt(np.diag(self.covariance)).tolist(), "log_mass_laplace": self.log_mass_laplace,
                "log_mass": self.log_mass, "n_optima": self.n_optima, "importance_ess": self.importance_ess}


@dataclass
class ModeSet:
    """The modes found, best (highest mass) first, with the cost of finding them."""

    modes: list[Mode]
    mass_method: str
    evaluations: int = 0
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.modes)

    @property
    def weights(self) -> np.ndarray:
        """W_k = Z_k / sum_j Z_j."""
        log_mass = np.array([m.log_mass for m in self.modes])
        return np.exp(log_mass - logsumexp(log_mass))

    def assign(self, points: np.ndarray) -> np.ndarray:
        """Mode index a(theta) of each point (n, p): argmax_k log W_k^Laplace + log N(theta; theta_k, Sigma_k)."""
        points = np.atleast_2d(np.asarray(points, dtype=np.float64))
        log_laplace = np.array([m.log_mass_laplace for m in self.modes])
        log_w = log_laplace - logsumexp(log_laplace)
        scores = np.stack([log_w[k] + _gauss_log_pdf(points, m.location, m.covariance)
                           for k, m in enumerate(self.modes)], axis=1)
        return np.argmax(scores, axis=1)

    def to_dict(self) -> dict:
        return {"n_modes": len(self.modes), "weights": self.weights.tolist(), "mass_method": self.mass_method,
                "evaluations": self.evaluations, "seconds": self.seconds,
                "modes": [m.to_dict() for m in self.modes], **self.extra}


def _gauss_log_pdf(points: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
    chol = np.linalg.cholesky(cov)
    white = np.linalg.solve(chol, (points - mean).T)
    return -0.5 * (white**2).sum(0) - np.log(np.diag(chol)).sum() - 0.5 * len(mean) * LOG_2PI


def t_log_pdf(points: np.ndarray, mean: np.ndarray, cov: np.ndarray, df: float) -> np.ndarray:
    """Multivariate Student-t log density with location ``mean``, scale ``cov`` and ``df`` degrees of freedom:
    log Gamma((df + p)/2) - log Gamma(df/2) - (p/2) log(df pi) - (1/2) log det cov - ((df + p)/2) log(1 + m/df),
    m the squared Mahalanobis distance to ``mean``."""
    p = len(mean)
    chol = np.linalg.cholesky(cov)
    maha = (np.linalg.solve(chol, (points - mean).T) ** 2).sum(0)
    return (gammaln((df + p) / 2) - gammaln(df / 2) - 0.5 * p * math.log(df * math.pi)
            - np.log(np.diag(chol)).sum() - 0.5 * (df + p) * np.log1p(maha / df))


def t_draws(rng, mean: np.ndarray, cov: np.ndarray, df: float, n: int) -> np.ndarray:
    """``n`` draws (n, p) of the Student-t of :func:`t_log_pdf`: mean + L z sqrt(df / c), z ~ N(0, I),
    c ~ chi^2(df), L L^T = cov. ``rng`` is a numpy ``Generator`` or ``RandomState`` (emcee's)."""
    chol = np.linalg.cholesky(cov)
    radius = np.sqrt(df / rng.chisquare(df, n))
    return mean + (rng.standard_normal((n, len(mean))) @ chol.T) * radius[:, None]


def prior_scale(prior, rng: np.random.Generator, n: int = 2000) -> np.ndarray:
    """Per-parameter standard deviation of ``n`` prior draws (1 where it is zero or not finite)."""
    std = np.atleast_2d(prior.sample(n, rng)).std(axis=0)
    return np.where(np.isfinite(std) & (std > 0), std, 1.0)


def _bounds(prior, p: int) -> list[tuple[float | None, float | None]] | None:
    support = getattr(prior, "support", None)
    if support is None:
        return None
    low, high = (np.broadcast_to(np.asarray(b, dtype=np.float64), (p,)) for b in support)
    return [(float(lo) if np.isfinite(lo) else None, float(hi) if np.isfinite(hi) else None)
            for lo, hi in zip(low, high, strict=True)]


def _value_and_gradient(log_post: LogDensity, x: np.ndarray, step: np.ndarray) -> tuple[float, np.ndarray]:
    """-log pi(x) and its gradient by central differences (one-sided next to the support's edge)."""
    p = len(x)
    shifts = np.diag(step)
    values = log_post(np.concatenate([x[None], x + shifts, x - shifts]))
    centre, plus, minus = values[0], values[1 : p + 1], values[p + 1 :]
    if not np.isfinite(centre):
        return BIG, np.zeros(p)
    with np.errstate(invalid="ignore"):  # the branches not taken may hold -inf - -inf
        gradient = np.where(np.isfinite(plus) & np.isfinite(minus), (plus - minus) / (2 * step),
                            np.where(np.isfinite(plus), (plus - centre) / step,
                                     np.where(np.isfinite(minus), (centre - minus) / step, 0.0)))
    return -float(centre), -gradient


def _batched_ascent(log_post: LogDensity, x: np.ndarray, values: np.ndarray, scale: np.ndarray, bounds,
                    iterations: int = ASCENT_ITERATIONS) -> tuple[np.ndarray, np.ndarray]:
    """All starts at once: normalized-gradient ascent in prior-scaled coordinates, theta <- theta + eta g / |g|
    (g the central-difference gradient times the prior scale), eta x 1.5 after an improvement and x 0.5
    otherwise (a rejected step is not taken). Two vectorized calls per iteration, whatever the number of
    starts; only starts still climbing (eta >= ``ASCENT_MIN_STEP``, gradient not zero) are evaluated. It only
    brings every start near the top of its own basin for the hill-valley test."""
    n, p = x.shape
    low = np.array([-np.inf if b[0] is None else b[0] for b in bounds]) if bounds else np.full(p, -np.inf)
    high = np.array([np.inf if b[1] is None else b[1] for b in bounds]) if bounds else np.full(p, np.inf)
    step = GRADIENT_STEP * scale
    eta = np.full(n, 0.1)
    shifts = np.diag(step)
    climbing = np.ones(n, dtype=bool)
    for _ in range(iterations):
        rows = np.flatnonzero(climbing)
        if rows.size == 0:
            break
        here = x[rows]
        stencil = np.concatenate([here[:, None, :] + shifts[None], here[:, None, :] - shifts[None]], axis=1)
        f = log_post(stencil.reshape(-1, p)).reshape(rows.size, 2, p)
        with np.errstate(invalid="ignore"):
            gradient = np.where(np.isfinite(f).all(axis=1), (f[:, 0] - f[:, 1]) / (2 * step), 0.0) * scale
        norm = np.linalg.norm(gradient, axis=1)
        moving = norm > 0
        climbing[rows[~moving]] = False
        rows, gradient, norm, here = rows[moving], gradient[moving], norm[moving], here[moving]
        if rows.size == 0:
            break
        proposal = np.clip(here + eta[rows, None] * (gradient / norm[:, None]) * scale, low, high)
        new = log_post(proposal)
        better = new > values[rows]
        x[rows[better]], values[rows[better]] = proposal[better], new[better]
        eta[rows] = np.where(better, 1.5 * eta[rows], 0.5 * eta[rows])
        climbing[rows[eta[rows] < ASCENT_MIN_STEP]] = False
    return x, values


def multistart_optimize(log_post: LogDensity, prior, rng: np.random.Generator, n_draws: int | None = None,
                        keep_fraction: float = KEEP_FRACTION, max_starts: int = MAX_STARTS,
                        method: str = "L-BFGS-B", scale: np.ndarray | None = None,
                        valley_tol: float = VALLEY_TOL) -> tuple[np.ndarray, np.ndarray]:
    """Local maxima of ``log_post`` from the best ``keep_fraction`` of ``n_draws`` prior draws.

    Starts are optimized best first; after each optimum, the remaining starts that pass the hill-valley test
    against it (no valley on the segment between them: they lie in its basin) are dropped, all in one
    vectorized call, so a unimodal posterior costs one optimization. Returns the optima (K, p) and log pi
    there (K,), finite ones only.
    """
    if method not in METHODS:
        raise InputError(f"method must be one of {METHODS}, got {method!r}")
    draws = np.atleast_2d(np.asarray(prior.sample(1, rng), dtype=np.float64))
    p = draws.shape[1]
    n_draws = max(N_DRAWS_MIN, N_DRAWS_PER_DIM * p) if n_draws is None else int(n_draws)
    candidates = np.atleast_2d(np.asarray(prior.sample(n_draws, rng), dtype=np.float64))
    values = log_post(candidates)
    finite = np.flatnonzero(np.isfinite(values))
    if finite.size == 0:
        raise InputError(f"the posterior is -inf at all {n_draws} prior draws used to look for its modes")
    n_starts = int(min(max_starts, max(1, math.ceil(keep_fraction * n_draws)), finite.size))
    starts = candidates[finite[np.argsort(-values[finite], kind="stable")[:n_starts]]]
    scale = prior_scale(prior, rng) if scale is None else scale
    step = GRADIENT_STEP * scale
    bounds = _bounds(prior, p)
    start_values = values[finite[np.argsort(-values[finite], kind="stable")[:n_starts]]]
    starts, start_values = _batched_ascent(log_post, starts.copy(), start_values.copy(), scale, bounds)
    order = np.argsort(-start_values, kind="stable")
    starts, start_values = starts[order], start_values[order]
    optima, optimum_values = [], []
    remaining = np.arange(n_starts)
    while remaining.size:
        start, remaining = starts[remaining[0]], remaining[1:]
        if method == "L-BFGS-B":
            result = minimize(lambda x: _value_and_gradient(log_post, x, step), start, jac=True, method="L-BFGS-B",
                              bounds=bounds, options={"maxiter": 500})
        else:
            def objective(x: np.ndarray) -> float:
                value = log_post(x[None])[0]
                return -float(value) if np.isfinite(value) else BIG

            result = minimize(objective, start, method="Nelder-Mead",
                              options={"maxiter": 200 * p, "xatol": 1e-6, "fatol": 1e-8})
        value = log_post(result.x[None])[0]
        if np.isfinite(value):
            optima.append(np.asarray(result.x, dtype=np.float64))
            optimum_values.append(float(value))
            if remaining.size:
                # starts with no valley between them and this optimum would climb to it: not optimized again
                reached = _no_valley(log_post, starts[remaining], start_values[remaining], optima[-1],
                                     optimum_values[-1], valley_tol)
                remaining = remaining[~reached]
    if not optima:
        raise InputError("every multi-start optimization of the posterior ended outside its support")
    return np.array(optima), np.array(optimum_values)


def _no_valley(log_post: LogDensity, points: np.ndarray, values: np.ndarray, optimum: np.ndarray, value: float,
               valley_tol: float, n_points: int = VALLEY_POINTS) -> np.ndarray:
    """For each of ``points`` (n, p): log pi on the segment to ``optimum`` stays above
    min(log pi(point), log pi(optimum)) - ``valley_tol`` at ``n_points`` interior points (one call)."""
    t = np.linspace(0.0, 1.0, n_points + 2)[1:-1]
    segment = points[:, None, :] + t[None, :, None] * (optimum - points)[:, None, :]
    along = log_post(segment.reshape(-1, points.shape[1])).reshape(len(points), n_points)
    return np.all(along >= (np.minimum(values, value) - valley_tol)[:, None], axis=1)


def cluster_optima(log_post: LogDensity, optima: np.ndarray, values: np.ndarray, valley_tol: float = VALLEY_TOL,
                   n_points: int = VALLEY_POINTS) -> list[np.ndarray]:
    """Group optima into modes with the hill-valley test (module docstring); returns index arrays, one per
    mode, each starting with its highest optimum, modes in order of their highest optimum."""
    order = np.argsort(-values, kind="stable")
    heads: list[int] = []
    members: list[list[int]] = []
    for j in order:
        if heads:
            same = np.flatnonzero(_no_valley(log_post, optima[heads], values[heads], optima[j], values[j], valley_tol,
                                             n_points))
            if same.size:
                members[same[0]].append(int(j))
                continue
        heads.append(int(j))
        members.append([int(j)])
    return [np.array(m) for m in members]


def hessian(log_post: LogDensity, x: np.ndarray, step: np.ndarray) -> np.ndarray:
    """grad^2 log pi at ``x`` by central differences with per-parameter ``step``, all points in one call:
    H_ii = (f(x + h_i) - 2 f(x) + f(x - h_i)) / h_i^2,
    H_ij = (f(x + h_i + h_j) - f(x + h_i - h_j) - f(x - h_i + h_j) + f(x - h_i - h_j)) / (4 h_i h_j)."""
    p = len(x)
    shifts = np.diag(step)
    pairs = [(i, j) for i in range(p) for j in range(i + 1, p)]
    points = [x[None], x + shifts, x - shifts]
    for signs in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
        points.append(np.array([x + signs[0] * shifts[i] + signs[1] * shifts[j] for i, j in pairs]).reshape(-1, p))
    f = log_post(np.concatenate(points))
    centre, plus, minus = f[0], f[1 : p + 1], f[p + 1 : 2 * p + 1]
    h = np.empty((p, p))
    with np.errstate(invalid="ignore"):  # -inf - -inf next to the support's edge: NaN, handled by the caller
        h[np.diag_indices(p)] = (plus - 2 * centre + minus) / step**2
        if pairs:
            n = len(pairs)
            pp, pm, mp, mm = (f[2 * p + 1 + k * n : 2 * p + 1 + (k + 1) * n] for k in range(4))
            rows, cols = np.array(pairs).T
            h[rows, cols] = h[cols, rows] = (pp - pm - mp + mm) / (4 * step[rows] * step[cols])
    return h


def laplace_covariance(log_post: LogDensity, x: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Sigma = (-grad^2 log pi)^-1 at ``x``, made positive definite: eigenvalues of -H that are not finite or
    below 1 / max(scale)^2 (a mode wider than the prior) are raised to it. Two passes: step 1e-3 x scale,
    then 0.1 x the standard deviations of the first pass."""
    floor = 1.0 / float(np.max(scale)) ** 2
    step = HESSIAN_FIRST_STEP * scale
    cov = np.diag(scale**2)
    for _ in range(2):
        precision = -hessian(log_post, x, step)
        if not np.all(np.isfinite(precision)):
            break
        eigenvalues, vectors = np.linalg.eigh(0.5 * (precision + precision.T))
        eigenvalues = np.where(np.isfinite(eigenvalues) & (eigenvalues > floor), eigenvalues, floor)
        cov = (vectors / eigenvalues) @ vectors.T
        step = HESSIAN_STEP * np.sqrt(np.diag(cov))
    return 0.5 * (cov + cov.T)


def _importance_log_mass(log_post: LogDensity, modes: ModeSet, k: int, rng: np.random.Generator,
                         n: int) -> tuple[float, float]:
    """log Z_k by importance sampling from a Student-t at mode k (module docstring) and the weights' ESS."""
    mode = modes.modes[k]
    draws = t_draws(rng, mode.location, mode.covariance, IS_DF, n)
    log_target = log_post(draws)
    keep = np.isfinite(log_target) & (modes.assign(draws) == k)
    if not keep.any():
        return -np.inf, 0.0
    log_w = np.where(keep, log_target - t_log_pdf(draws, mode.location, mode.covariance, IS_DF), -np.inf)
    w = np.exp(log_w - log_w.max())
    return float(logsumexp(log_w) - math.log(n)), float(w.sum() ** 2 / (w**2).sum())


def find_modes(log_post: LogDensity, prior, rng: np.random.Generator, n_draws: int | None = None,
               keep_fraction: float = KEEP_FRACTION, max_starts: int = MAX_STARTS, method: str = "L-BFGS-B",
               mass: str = "importance", n_importance: int = N_IMPORTANCE, valley_tol: float = VALLEY_TOL) -> ModeSet:
    """Modes of the unnormalized log posterior ``log_post`` (theta (K, p) -> (K,)), weighed (module docstring).

    Every random choice comes from ``rng``. Modes are returned by decreasing mass.
    """
    if mass not in MASSES:
        raise InputError(f"mass must be one of {MASSES}, got {mass!r}")
    began = time.perf_counter()
    counted = _Counted(log_post)
    scale = prior_scale(prior, rng)
    optima, values = multistart_optimize(counted, prior, rng, n_draws, keep_fraction, max_starts, method, scale,
                                         valley_tol)
    groups = cluster_optima(counted, optima, values, valley_tol)
    p = optima.shape[1]
    modes = []
    for group in groups:
        head = group[0]
        cov = laplace_covariance(counted, optima[head], scale)
        log_laplace = float(values[head] + 0.5 * p * LOG_2PI + 0.5 * np.linalg.slogdet(cov)[1])
        modes.append(Mode(optima[head], float(values[head]), cov, log_laplace, log_laplace, n_optima=len(group)))
    found = ModeSet(modes, mass)
    if mass == "importance" and len(modes) > 1:  # one mode has weight 1 whatever its mass
        estimates = [_importance_log_mass(counted, found, k, rng, n_importance) for k in range(len(modes))]
        for mode, (log_z, ess) in zip(modes, estimates, strict=True):
            if np.isfinite(log_z):
                mode.log_mass, mode.importance_ess = log_z, ess
    found.modes = sorted(modes, key=lambda m: -m.log_mass)
    found.evaluations = counted.points
    found.seconds = time.perf_counter() - began
    found.extra = {"n_optimized": len(optima)}
    return found


def allocate(weights: np.ndarray, n: int, min_per_mode: int = MIN_WALKERS_PER_MODE) -> np.ndarray:
    """Walkers per mode: largest remainders of weights x n, then at least ``min_per_mode`` in every mode that
    got one (taken from the most populated modes) when that fits."""
    weights = np.asarray(weights, dtype=np.float64)
    exact = weights / weights.sum() * n
    counts = np.floor(exact).astype(int)
    remainder = n - counts.sum()
    counts[np.argsort(-(exact - counts), kind="stable")[:remainder]] += 1
    occupied = counts > 0
    if occupied.sum() * min_per_mode <= n:
        for k in np.flatnonzero(occupied & (counts < min_per_mode)):
            while counts[k] < min_per_mode:
                counts[int(np.argmax(counts))] -= 1
                counts[k] += 1
    return counts


def place_walkers(modes: ModeSet, n_walkers: int, log_post: LogDensity, rng: np.random.Generator,
                  groups: int = 4, attempts: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Starting points (n_walkers, p) across the modes in proportion to their weights, and each one's mode.

    Walkers of mode k are drawn from N(theta_k, Sigma_k) (redrawn where log pi is not finite; after
    ``attempts`` rounds the rest start at theta_k plus 1e-6 of its spread). The order interleaves the modes so
    that each of ``groups`` consecutive blocks holds them in equal shares.
    """
    counts = allocate(modes.weights, n_walkers)
    labels = np.repeat(np.arange(len(modes)), counts)
    points = np.empty((n_walkers, len(modes.modes[0].location)))
    for k, mode in enumerate(modes.modes):
        rows = np.flatnonzero(labels == k)
        if rows.size == 0:
            continue
        chol = np.linalg.cholesky(mode.covariance)
        todo = rows
        for _ in range(attempts):
            points[todo] = mode.location + rng.standard_normal((todo.size, chol.shape[0])) @ chol.T
            todo = todo[~np.isfinite(log_post(points[todo]))]
            if todo.size == 0:
                break
        if todo.size:
            points[todo] = mode.location + 1e-6 * rng.standard_normal((todo.size, chol.shape[0])) @ chol.T
    order = np.concatenate([np.arange(n_walkers)[g::groups] for g in range(groups)])
    return points[order], labels[order]


def mode_check(modes: ModeSet, chain: np.ndarray, chain_log_prob: np.ndarray, thin: int = 1, seed: int = 0,
               correct: bool = True) -> tuple[np.ndarray, np.ndarray, dict]:
    """Compare a post-burn-in ``chain`` (steps, walkers, p) with the mode weights; re-weight if it did not mix.

    Returns the samples chain[::thin] flattened (step-major), their log pi, and a report: ``weights`` (W_k),
    ``chain_fraction`` (share of post-burn-in samples per mode), ``sample_fraction`` (after any
    correction), ``walkers_per_mode`` (at the first and last post-burn-in step), ``transitions`` (number of
    times a walker changed mode), ``corrected``, ``locations`` and ``warnings``. With ``correct`` and fewer
    transitions than walkers, each mode's samples are thinned to W_k (module docstring).
    """
    steps, walkers, p = chain.shape
    weights = modes.weights
    labels = modes.assign(chain.reshape(-1, p)).reshape(steps, walkers)
    k = len(modes)
    chain_fraction = np.bincount(labels.ravel(), minlength=k) / labels.size
    transitions = int((labels[1:] != labels[:-1]).sum())
    samples = chain[::thin].reshape(-1, p)
    log_prob = chain_log_prob[::thin].reshape(-1)
    sample_labels = labels[::thin].reshape(-1)
    counts = np.bincount(sample_labels, minlength=k)
    corrected = False
    if correct and k > 1 and transitions < walkers:
        occupied = counts > 0
        target = weights * occupied / (weights * occupied).sum()
        with np.errstate(divide="ignore"):  # a mode of zero estimated mass keeps none of its samples
            total = int(np.floor(np.min(counts[occupied] / target[occupied])))
        keep_counts = allocate(target, total, min_per_mode=0)
        keep_counts = np.minimum(keep_counts, counts)
        rng = np.random.default_rng(seed)
        keep = np.concatenate([rng.choice(np.flatnonzero(sample_labels == j), keep_counts[j], replace=False)
                               for j in range(k) if keep_counts[j]])
        keep.sort()
        if len(keep) >= 2:
            samples, log_prob, sample_labels = samples[keep], log_prob[keep], sample_labels[keep]
            corrected = True
    sample_fraction = np.bincount(sample_labels, minlength=k) / len(sample_labels)
    warnings = []
    for j in range(k):
        gap = 100 * (chain_fraction[j] - weights[j])
        if abs(gap) > MASS_WARN_POINTS:
            where = ", ".join(f"{v:.3g}" for v in modes.modes[j].location)
            fix = ("; walkers did not move between modes, samples re-weighted to the estimated masses" if corrected
                   else "; the chain mixed between modes, so either the mass estimate or the chain is off")
            warnings.append(f"mode {j} at ({where}) has estimated mass {weights[j]:.3f} but holds "
                            f"{chain_fraction[j]:.3f} of the chain samples ({gap:+.1f} points){fix}")
    heavy = weights >= ONE_MODE_MASS
    if heavy.sum() >= 2 and np.max(chain_fraction) > 0.99:
        warnings.append(f"all walkers are in one mode (mode {int(np.argmax(chain_fraction))}) of the "
                        f"{int(heavy.sum())} modes found with mass >= {ONE_MODE_MASS}")
    report = {
        "weights": weights.tolist(), "chain_fraction": chain_fraction.tolist(),
        "sample_fraction": sample_fraction.tolist(),
        "walkers_per_mode": {"first": np.bincount(labels[0], minlength=k).tolist(),
                             "last": np.bincount(labels[-1], minlength=k).tolist()},
        "transitions": transitions, "corrected": corrected,
        "locations": [m.location.tolist() for m in modes.modes], "warnings": warnings,
    }
    return samples, log_prob, report
