"""Expected limits from toy data sets: the spread of the limits that data drawn at a hypothesis would give.

For a hypothesis theta_0 (all parameters; nuisances usually at their constraints' centres), toy data sets
D_1 ... D_T are drawn from the model, each of n_t events x ~ p(x | theta_0), with n_t the observed number of
events or, with a rate term, n_t ~ Pois(nu(theta_0)) (the Poisson term of toy t is then log Pois(n_t | nu(theta))).
Each toy gives its own q_t(theta) on the grid (:func:`~mflow_sbi.inference.limits.profile_likelihood_limits`,
nuisances profiled as for the observed data). The expected limits are quantiles over the toys
(Cowan, Cranmer, Gross, Vitells, arXiv:1007.1727, sec. 4: the median and the +-1 sigma / +-2 sigma bands):

- ``profile_quantiles[name]``: per value of the parameter, the quantiles ``QUANTILES`` (2.5, 16, 50, 84, 97.5%)
  of the toys' profiles q_t,j(theta_j); the median is the median expected q, the others its bands;
- ``endpoints[name][level]``: the same quantiles of each toy's interval end points (the lowest lower and the
  highest upper end of its segments at that level); toys whose interval is empty on the grid are left out and
  counted in ``empty``;
- ``coverage[level]``: the fraction of toys whose joint region {q_t <= F^-1_{chi^2_k}(level)} contains theta_0,
  with its binomial standard error sqrt(c (1 - c) / T). Wilks' theorem says c -> level; for a Gaussian mean
  (q quadratic) c = level exactly, for finite samples of a non-Gaussian likelihood it is a check of the
  asymptotics, the frequentist counterpart of the posterior calibration.

Toy t draws everything from ``np.random.default_rng([seed, t])``, so a toy does not depend on T. Unlike the
Asimov data set (one large sample, the median only), toys give the bands and the coverage, at T times the cost.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mflow_sbi.errors import InputError
from mflow_sbi.inference.limits import GridAxis, LimitResult, profile_likelihood_limits, wilks_threshold

QUANTILES = (0.025, 0.16, 0.5, 0.84, 0.975)

LogLikelihood = Callable[[np.ndarray], np.ndarray]


@dataclass
class ToyLimits:
    """Quantiles over ``n_toys`` toy data sets at ``theta_0`` (module docstring); ``theta_0_interest`` holds the
    values of the gridded parameters."""

    names: list[str]
    axes: list[np.ndarray]
    theta_0_interest: np.ndarray
    n_toys: int
    levels: list[float]
    profile_quantiles: dict[str, np.ndarray]
    endpoints: dict[str, dict[float, dict[str, list[float]]]]
    empty: dict[str, dict[float, int]]
    coverage: dict[float, dict[str, float]]
    n_events: list[int]
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable summary (levels as keys like ``"0.68"``, quantiles listed in ``quantiles``)."""
        return {
            "theta_0": dict(zip(self.names, (float(v) for v in self.theta_0_interest), strict=True)),
            "n_toys": self.n_toys, "quantiles": list(QUANTILES),
            "n_events": {"median": float(np.median(self.n_events)), "min": int(min(self.n_events)),
                         "max": int(max(self.n_events))},
            "endpoints": {name: {f"{lv:g}": per[lv] | {"empty": self.empty[name][lv]} for lv in self.levels}
                          for name, per in self.endpoints.items()},
            "coverage": {f"{lv:g}": c for lv, c in self.coverage.items()},
            "metadata": self.metadata,
        }

    def arrays(self) -> dict[str, np.ndarray]:
        """The profile bands as arrays ``q_toys_<name>`` (len(QUANTILES), len(axis)) and ``toy_quantiles``."""
        return {"toy_quantiles": np.asarray(QUANTILES),
                **{f"q_toys_{name}": q for name, q in self.profile_quantiles.items()}}


def _outer_ends(result: LimitResult, name: str, level: float) -> tuple[float, float] | None:
    segments = result.intervals[name][level]
    return (segments[0][0], segments[-1][1]) if segments else None


def toy_limits(
    likelihood_of: Callable[[np.ndarray, int], LogLikelihood],
    draw_events: Callable[[int, np.random.Generator], np.ndarray],
    axes: Sequence[GridAxis],
    theta_0_interest: Sequence[float],
    *,
    n_toys: int,
    n_events: Callable[[np.random.Generator], int],
    levels: Sequence[float],
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    metadata: dict[str, Any] | None = None,
) -> ToyLimits:
    """Expected limits from ``n_toys`` toys (module docstring).

    Toy t: ``n = n_events(rng)``, ``events = draw_events(n, rng)``, then ``likelihood_of(events, n)`` is its
    (profiled) log-likelihood of the gridded parameters, theta (K, k) -> (K,). ``progress(t, n_toys)`` is called
    after every toy.
    """
    if n_toys < 2:
        raise InputError(f"toy limits need at least 2 toys, got {n_toys}")
    theta_0_interest = np.asarray(theta_0_interest, dtype=np.float64).reshape(-1)
    if len(theta_0_interest) != len(axes):
        raise InputError(f"theta_0 needs one value per grid axis ({len(axes)}), got {theta_0_interest.tolist()}")
    levels = [float(lv) for lv in levels]
    names = [a.name for a in axes]
    profiles = {name: [] for name in names}
    ends = {name: {lv: [] for lv in levels} for name in names}
    covered = {lv: 0 for lv in levels}
    counts = []
    for t in range(n_toys):
        rng = np.random.default_rng([seed, t])
        n = int(n_events(rng))
        if n < 1:
            raise InputError(f"toy {t} has {n} events; toys need at least one (is nu(theta_0) that small?)")
        likelihood = likelihood_of(draw_events(n, rng), n)
        result = profile_likelihood_limits(likelihood, axes, levels=levels)
        log_l_0 = float(np.asarray(likelihood(theta_0_interest[None, :]), dtype=np.float64)[0])
        q_0 = max(-2.0 * (log_l_0 - result.log_likelihood_hat), 0.0) if np.isfinite(log_l_0) else np.inf
        for lv in levels:
            covered[lv] += q_0 <= wilks_threshold(lv, len(axes))
        for j, name in enumerate(names):
            profiles[name].append(result.profile(j))
            for lv in levels:
                found = _outer_ends(result, name, lv)
                if found is not None:
                    ends[name][lv].append(found)
        counts.append(n)
        if progress is not None:
            progress(t + 1, n_toys)
    quantiles = np.asarray(QUANTILES)
    endpoints = {name: {lv: ({"lower": np.quantile([e[0] for e in found], quantiles).tolist(),
                              "upper": np.quantile([e[1] for e in found], quantiles).tolist()}
                             if found else {"lower": [], "upper": []}) for lv, found in per.items()}
                 for name, per in ends.items()}
    coverage = {}
    for lv in levels:
        c = covered[lv] / n_toys
        coverage[lv] = {"fraction": c, "stderr": float(np.sqrt(c * (1 - c) / n_toys))}
    return ToyLimits(names, [np.asarray(a.values, dtype=np.float64) for a in axes], theta_0_interest, n_toys, levels,
                     {name: np.quantile(np.stack(p), quantiles, axis=0) for name, p in profiles.items()},
                     endpoints, {name: {lv: n_toys - len(found) for lv, found in per.items()}
                                 for name, per in ends.items()},
                     coverage, counts, dict(metadata or {}))


__all__ = ["QUANTILES", "ToyLimits", "toy_limits"]
