"""How much the members of an ensemble disagree about the posterior: an uncertainty of the learned posterior.

An ensemble's posterior uses the mean of its K members' log-likelihoods (:mod:`mflow_sbi.flows.ensemble`),

    p_ens(theta | x) ~ p(theta) exp(lbar(theta)),    lbar = (1/K) sum_k l_k,   l_k = log L_k(theta).

Member k's own posterior p_k(theta | x) ~ p(theta) exp(l_k(theta)) follows from samples theta_s of p_ens by
importance weighting, with self-normalized weights

    w_ks ~ exp(l_k(theta_s) - lbar(theta_s)),

so the members' posterior means and standard deviations come without K more MCMC runs. The spread (standard
deviation over members) of the posterior means, next to the posterior's own standard deviation, says how much
one trained model's posterior scatters; the ensemble's mean, an average over K members, scatters by about
spread / sqrt(K) (``standard_error_of_mean``) from one ensemble of the same size to the next. Each member's
effective sample size (sum_s w_ks)^2 / sum_s w_ks^2 says how well the ensemble's samples cover that member's
posterior (ignoring the chain's autocorrelation, so it is optimistic); a small one means the members disagree
by more than the posterior width, and the moments of that member are only rough.
"""

from __future__ import annotations

import numpy as np

from mflow_sbi.inference.likelihood import ModelLikelihood

SPREAD_SAMPLES = 2000  # posterior samples reweighted per member
LOW_ESS_FRACTION = 0.1  # below this fraction of the reweighted samples a member's ESS earns a warning


def member_moments(member_log_likelihoods: np.ndarray, samples: np.ndarray) -> dict[str, np.ndarray]:
    """Importance-weighted moments of every member's posterior from samples of the ensemble's.

    ``member_log_likelihoods`` (K, S) holds l_k(theta_s), ``samples`` (S, p) the theta_s. Returns ``mean`` and
    ``std`` of shape (K, p) and ``effective_sample_size`` (K,).
    """
    log_l = np.asarray(member_log_likelihoods, dtype=np.float64)
    theta = np.asarray(samples, dtype=np.float64)
    with np.errstate(invalid="ignore"):  # -inf - -inf: a point outside the support gets no weight
        log_w = log_l - log_l.mean(axis=0)
    log_w[~np.isfinite(log_w)] = -np.inf
    log_w -= log_w.max(axis=1, keepdims=True)
    w = np.exp(log_w)
    w /= w.sum(axis=1, keepdims=True)
    mean = w @ theta
    var = w @ theta**2 - mean**2
    return {"mean": mean, "std": np.sqrt(np.maximum(var, 0.0)), "effective_sample_size": 1.0 / np.sum(w**2, axis=1)}


def ensemble_spread(ensemble, x_observed: np.ndarray, samples: np.ndarray, parameter_names, *,
                    cache: bool | str = "auto", mode: str | None = None, max_samples: int = SPREAD_SAMPLES,
                    seed: int = 0) -> dict:
    """The members' posterior means and standard deviations (:func:`member_moments`, on at most ``max_samples``
    posterior ``samples`` drawn without replacement with ``seed``), the spread of the means over members, and
    the effective sample sizes, as recorded under a posterior's ``metadata["ensemble"]``."""
    samples = np.asarray(samples, dtype=np.float64)
    rng = np.random.default_rng(seed)
    if len(samples) > max_samples:
        samples = samples[np.sort(rng.choice(len(samples), max_samples, replace=False))]
    log_l = np.stack([ModelLikelihood(member, x_observed, cache=cache, mode=mode)(samples)
                      for member in ensemble.members])
    moments = member_moments(log_l, samples)
    names = list(parameter_names)
    spread = moments["mean"].std(axis=0, ddof=1) if len(log_l) > 1 else np.zeros(len(names))
    result = {
        "size": len(ensemble.members),
        "reweighted_samples": len(samples),
        "member_means": {name: moments["mean"][:, j].tolist() for j, name in enumerate(names)},
        "member_stds": {name: moments["std"][:, j].tolist() for j, name in enumerate(names)},
        "spread_of_means": {name: float(spread[j]) for j, name in enumerate(names)},
        "standard_error_of_mean": {name: float(spread[j] / np.sqrt(len(log_l))) for j, name in enumerate(names)},
        "effective_sample_size": moments["effective_sample_size"].tolist(),
    }
    low = [k for k, ess in enumerate(moments["effective_sample_size"]) if ess < LOW_ESS_FRACTION * len(samples)]
    if low:
        result["warning"] = (f"members {low} have an effective sample size below {LOW_ESS_FRACTION:.0%} of the "
                             f"{len(samples)} reweighted samples: the members disagree by more than the posterior "
                             "width, and their moments are rough")
    return result

