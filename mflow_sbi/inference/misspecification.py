"""Misspecification check: do the observed events look like the simulated events the model was trained on?

A model with a learned manifold (M-flow, Me-flow, PIE) gives every event two numbers that a density on the
full space cannot:

- its distance to the learned manifold, d(x) = |x - g(g^-1(x))| (raw units; g the decoder, g^-1 the encoder);
- its latent log-density l(x; theta) = log p(u'(x) | theta) of the inner flow at the encoding u'(x).

At training time both are computed on the held-out (validation) events, each at its own theta, and stored in
the model directory (:class:`ReferenceScores`, ``ood_reference.npz``). Before sampling, the observed events
x_1..x_N get the same numbers, with theta = theta_hat, the candidate among the stored validation parameter
points that maximizes the observed log-likelihood (a coarse MLE; fitting theta makes the observed densities
if anything larger, so the check errs towards passing). Then, with n validation events (weights w_v, 1 when
the training data were unweighted; sums below are weighted sums over the validation set, W = sum_v w_v):

- per-event tail probabilities p_d(x_i) = (1 + W{d_v >= d_i}) / (1 + W) and
  p_l(x_i) = (1 + W{l_v <= l_i}) / (1 + W), the per-event p-value p_i = min(1, 2 min(p_d, p_l))
  (Bonferroni over the two) and the per-event OOD score s_i = -log10 p_i (0: typical; 3: as rare as the
  0.1% most unusual validation events);
- the 99.9% validation quantiles d* (of d) and l* (the 0.1% quantile of l), and the fraction of observed
  events beyond either, f = #{d_i > d* or l_i < l*} / N;
- a combined p-value: the count k_d = #{d_i > d*} is Binomial(N, r_d) for events like the validation ones,
  r_d = (1 + W{d_v > d*}) / (1 + W) (about 0.001, estimated on the validation set itself, with one pseudo
  count so that it is never 0); likewise k_l with r_l. The one-sided binomial tail probabilities
  P(K >= k) are combined with a bulk test of the distances by Bonferroni, p = min(1, 3 min(p_d, p_l, p_bulk)).
  The bulk test asks whether the observed events lie farther from the manifold than validation events at the
  same place on it: the reconstruction quality varies along a learned manifold, so each observed event is
  compared with its k = ``NEIGHBOURS`` nearest validation events in latent space (u'), by the local tail
  probability q_i = (1 + W_nn{d_v >= d_i}) / (1 + W_nn). For events like the validation ones q_i is about
  Uniform(0, 1), so the mean m of the q_i has mean 1/2 and variance at most 1/(12 N) + 1/(12 k) (the second
  term: neighbours shared between events), and p_bulk = Phi((m - 1/2) / sd).

When p < ``alpha`` (default 0.01) the check fails: ``infer`` logs a warning and the posterior summary records
the report (``metadata["misspecification"]``). The latent density enters only through its tail, because its
distribution depends on theta (a fixed-theta observed set has a narrower or wider latent distribution than the
validation mixture over theta); the distance to the manifold, which depends on theta only through where an
event lies on the manifold, is compared in bulk as well, locally. The check detects events off the manifold or where
the model puts almost no density, not subtle changes of shape on the manifold; its power grows with N.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mflow_sbi import layout
from mflow_sbi.errors import DataFileError, InputError
from mflow_sbi.io import read_npz, save_npz

log = logging.getLogger(__name__)

DEFAULT_ALPHA = 0.01
QUANTILE = 0.999
MAX_CANDIDATES = 256
NEIGHBOURS = 50
CHUNK_ROWS = 8192
REFERENCE_FORMAT = "mflow-sbi ood reference 1"


def has_learned_manifold(model: Any) -> bool:
    """True for models with a decoder onto a learned manifold and an inner latent density."""
    return bool(getattr(model, "needs_latent_dim", False))


def _check_manifold_model(model: Any) -> None:
    if not has_learned_manifold(model):
        raise InputError(f"{type(model).__name__} has no learned manifold: the misspecification check needs an "
                         "M-flow, Me-flow or PIE")


def manifold_scores(model: Any, x: np.ndarray,
                    theta: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Per event (float64): the distance d(x) to the learned manifold, with ``theta`` ((p,) or (N, p)) the
    latent log-density log p(u'(x) | theta) (else None), and the encoding u'(x) (N, n) in standardized units.
    Models whose outer flow is conditional need theta for all three."""
    _check_manifold_model(model)
    x_t = model.check_x(x)
    theta_t = None if theta is None else model.check_theta(theta, x_t.shape[0])
    if theta_t is None and model.conditional_outer:
        raise InputError("this model has conditional_outer=True: the distance to its manifold needs theta")
    distances, densities, latents = [], [], []
    model.eval()
    with torch.no_grad():
        for start in range(0, x_t.shape[0], CHUNK_ROWS):
            x_std = model.x_scaler(x_t[start:start + CHUNK_ROWS])
            theta_std = None if theta_t is None else model.theta_scaler(theta_t[start:start + CHUNK_ROWS])
            outer_theta = theta_std if model.conditional_outer else None
            u = model.encode_std(x_std, outer_theta)
            latents.append(u.double())
            projected = model.x_scaler.inverse(model.decode_std(u, outer_theta))
            distances.append((projected - x_t[start:start + CHUNK_ROWS]).double().norm(dim=1))
            if theta_std is not None:
                densities.append(model.latent_log_prob_std(u, theta_std).double())
    distance = torch.cat(distances).cpu().numpy()
    return distance, (torch.cat(densities).cpu().numpy() if densities else None), torch.cat(latents).cpu().numpy()


def distance_to_learned_manifold(model: Any, x: np.ndarray, theta: np.ndarray | None = None) -> np.ndarray:
    """d(x) = |x - g(g^-1(x))| per event, raw units (``mflow-sbi evaluate`` reports its distribution)."""
    return manifold_scores(model, x, theta)[0]


@dataclass
class ReferenceScores:
    """The validation events' distances, latent log-densities (at their own theta), encodings u' and weights,
    and up to ``MAX_CANDIDATES`` of their parameter points (the candidates for theta_hat)."""

    distance: np.ndarray
    log_density: np.ndarray
    latent: np.ndarray
    weights: np.ndarray
    candidates: np.ndarray

    FIELDS = ("distance", "log_density", "latent", "weights", "candidates")

    def __post_init__(self) -> None:
        n = len(self.distance)
        if (n < 1 or self.log_density.shape != (n,) or self.weights.shape != (n,) or self.latent.ndim != 2
                or len(self.latent) != n or self.candidates.ndim != 2):
            raise InputError(f"reference scores need distance, log_density, latent and weights for the same events "
                             f"and candidates (K, p); got shapes {[getattr(self, k).shape for k in self.FIELDS]}")

    @property
    def n_events(self) -> int:
        return len(self.distance)

    def save(self, path: str | os.PathLike) -> Path:
        return save_npz(path, format=np.array(REFERENCE_FORMAT), **{k: getattr(self, k) for k in self.FIELDS})

    @classmethod
    def load(cls, path: str | os.PathLike) -> ReferenceScores:
        fields = read_npz(path)
        if str(fields.get("format", "")) != REFERENCE_FORMAT:
            raise DataFileError(f"{path}: not a misspecification reference (format {REFERENCE_FORMAT!r} expected)")
        try:
            return cls(*(np.asarray(fields[k], dtype=np.float64) for k in cls.FIELDS))
        except (KeyError, InputError) as err:
            raise DataFileError(f"{path}: {err}") from None


def reference_scores(model: Any, x: np.ndarray, theta: np.ndarray, weights: np.ndarray | None = None,
                     seed: int = 0) -> ReferenceScores:
    """:class:`ReferenceScores` of held-out events (x, theta) for ``model``; the candidates are a seeded random
    subset of their theta (all of them when there are at most ``MAX_CANDIDATES``)."""
    theta = np.atleast_2d(np.asarray(theta, dtype=np.float64))
    distance, log_density, latent = manifold_scores(model, x, theta)
    w = np.ones(len(distance)) if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
    if w.shape != distance.shape:
        raise InputError(f"{len(w)} weights for {len(distance)} reference events")
    rows = np.arange(len(theta))
    if len(rows) > MAX_CANDIDATES:
        rows = np.sort(np.random.default_rng(seed).choice(rows, MAX_CANDIDATES, replace=False))
    return ReferenceScores(distance, log_density, latent, w, theta[rows])


def _tail_fraction(weights: np.ndarray, mask: np.ndarray) -> float:
    """(1 + W{mask}) / (1 + W): a weighted tail fraction with one pseudo count (never 0 or above 1 for W > 0)."""
    total = max(float(weights.sum()), 0.0)
    return float(np.clip((1.0 + float(weights[mask].sum())) / (1.0 + total), 0.0, 1.0))


def _weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """The smallest value whose weighted empirical CDF reaches q (negative weights clipped to 0 here)."""
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(np.clip(weights[order], 0.0, None))
    if cumulative[-1] <= 0:
        return float(np.quantile(values, q))
    return float(values[order][min(np.searchsorted(cumulative, q * cumulative[-1]), len(values) - 1)])


def _upper_tail(reference: np.ndarray, weights: np.ndarray, values: np.ndarray) -> np.ndarray:
    """(1 + W{reference >= value}) / (1 + W) for each value."""
    order = np.argsort(reference, kind="stable")
    sorted_ref, sorted_w = reference[order], weights[order]
    above = np.concatenate([np.cumsum(sorted_w[::-1])[::-1], [0.0]])  # above[j] = W of sorted_ref[j:]
    total = max(float(weights.sum()), 0.0)
    return np.clip((1.0 + above[np.searchsorted(sorted_ref, values, side="left")]) / (1.0 + total), 0.0, 1.0)


def choose_theta(model: Any, x: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """theta_hat: the candidate maximizing sum_i log p_model(x_i | theta) (fixed-manifold density, cheap)."""
    from mflow_sbi.inference.likelihood import ModelLikelihood

    mode = "fixed_manifold" if "fixed_manifold" in getattr(model, "modes", ()) else None
    values = ModelLikelihood(model, x, mode=mode)(candidates)
    if not np.isfinite(values).any():
        raise InputError("the model's log-likelihood of the observed events is not finite at any candidate theta")
    return candidates[int(np.argmax(values))]


def binomial_tail(k: int, n: int, rate: float) -> float:
    """P(K >= k) for K ~ Binomial(n, rate)."""
    from scipy.stats import binom

    return 1.0 if k <= 0 else float(binom.sf(k - 1, n, rate))


def local_tail_probabilities(reference: ReferenceScores, latent: np.ndarray, distance: np.ndarray,
                             k: int = NEIGHBOURS) -> tuple[np.ndarray, int]:
    """q_i = (1 + W_nn{d_v >= d_i}) / (1 + W_nn) over the k nearest reference events to u'_i, and k used."""
    k = min(k, reference.n_events)
    q = np.empty(len(latent))
    for start in range(0, len(latent), 1024):
        block = latent[start:start + 1024]
        squared = ((block[:, None, :] - reference.latent[None, :, :]) ** 2).sum(-1)
        nearest = np.argpartition(squared, k - 1, axis=1)[:, :k]
        w = reference.weights[nearest]
        above = (reference.distance[nearest] >= distance[start:start + 1024, None]) * w
        q[start:start + 1024] = np.clip((1.0 + above.sum(1)) / (1.0 + np.clip(w.sum(1), 0.0, None)), 0.0, 1.0)
    return q, k


def bulk_p_value(tail_probabilities: np.ndarray, k: int) -> float:
    """Phi((m - 1/2) / sd), m the mean of the local tail probabilities, sd^2 = 1/(12 N) + 1/(12 k): small when the
    observed events lie systematically farther from the manifold than their validation neighbours."""
    from scipy.stats import norm

    sd = np.sqrt(1.0 / (12 * len(tail_probabilities)) + 1.0 / (12 * k))
    return float(norm.cdf((float(np.mean(tail_probabilities)) - 0.5) / sd))


@dataclass
class MisspecificationReport:
    """The result of :func:`check_misspecification`; :meth:`to_dict` is what the posterior summary records."""

    ood_score: np.ndarray
    distance: np.ndarray
    log_density: np.ndarray
    theta_hat: np.ndarray
    thresholds: dict[str, float]
    fraction_beyond: float
    expected_fraction: float
    counts: dict[str, int]
    p_values: dict[str, float]
    p_value: float
    alpha: float
    n_reference: int

    @property
    def flagged(self) -> bool:
        """True when the combined p-value is below ``alpha``: the data do not look like the simulation."""
        return self.p_value < self.alpha

    def message(self) -> str:
        verdict = ("the observed events do NOT look like the simulated training data" if self.flagged
                   else "the observed events look like the simulated training data")
        return (f"misspecification check: {verdict} (p = {self.p_value:.3g}, alpha {self.alpha:g}; "
                f"{100 * self.fraction_beyond:.2f}% of {len(self.ood_score)} events beyond the 99.9% validation "
                f"quantiles, {100 * self.expected_fraction:.2f}% expected; max OOD score {self.ood_score.max():.2f})")

    def to_dict(self) -> dict[str, Any]:
        return {
            "flagged": self.flagged, "p_value": self.p_value, "alpha": self.alpha,
            "fraction_beyond": self.fraction_beyond, "expected_fraction": self.expected_fraction,
            "counts": self.counts, "p_values": self.p_values, "thresholds": self.thresholds,
            "theta_hat": self.theta_hat.tolist(), "n_events": len(self.ood_score), "n_reference": self.n_reference,
            "ood_score": {"median": float(np.median(self.ood_score)), "max": float(self.ood_score.max()),
                          "above_3": int((self.ood_score > 3).sum())},
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Per-event arrays: ``ood_score``, ``distance``, ``log_density``."""
        return save_npz(path, ood_score=self.ood_score, distance=self.distance, log_density=self.log_density)


def check_misspecification(model: Any, reference: ReferenceScores, x: np.ndarray, *, alpha: float = DEFAULT_ALPHA,
                           theta: np.ndarray | None = None) -> MisspecificationReport:
    """Compare observed events ``x`` with the validation ``reference`` (see the module docstring); ``theta``
    overrides theta_hat (the point the latent density is evaluated at)."""
    if not 0 < alpha < 1:
        raise InputError(f"alpha must lie in (0, 1), got {alpha}")
    x = np.asarray(x, dtype=np.float64)
    theta_hat = choose_theta(model, x, reference.candidates) if theta is None else np.asarray(theta, dtype=np.float64)
    distance, log_density, latent = manifold_scores(model, x, theta_hat)
    w = reference.weights
    p_d = _upper_tail(reference.distance, w, distance)
    p_l = _upper_tail(-reference.log_density, w, -log_density)
    ood_score = -np.log10(np.minimum(1.0, 2.0 * np.minimum(p_d, p_l)))
    d_star = _weighted_quantile(reference.distance, w, QUANTILE)
    l_star = -_weighted_quantile(-reference.log_density, w, QUANTILE)
    beyond_d, beyond_l = distance > d_star, log_density < l_star
    rates = {"distance": _tail_fraction(w, reference.distance > d_star),
             "log_density": _tail_fraction(w, reference.log_density < l_star)}
    counts = {"distance": int(beyond_d.sum()), "log_density": int(beyond_l.sum())}
    n = len(x)
    p_values = {key: binomial_tail(counts[key], n, rates[key]) for key in counts}
    p_values["distance_bulk"] = bulk_p_value(*local_tail_probabilities(reference, latent, distance))
    return MisspecificationReport(
        ood_score=ood_score, distance=distance, log_density=log_density, theta_hat=np.atleast_1d(theta_hat),
        thresholds={"distance": d_star, "log_density": l_star}, fraction_beyond=float((beyond_d | beyond_l).mean()),
        expected_fraction=min(1.0, rates["distance"] + rates["log_density"]), counts=counts, p_values=p_values,
        p_value=min(1.0, len(p_values) * min(p_values.values())), alpha=float(alpha), n_reference=reference.n_events)


def check_model_directory(model: Any, model_dir: str | os.PathLike, x: np.ndarray, *,
                          alpha: float = DEFAULT_ALPHA) -> MisspecificationReport | None:
    """The check against ``MODEL_DIR/ood_reference.npz``, logged (a warning when it fails); None for models
    without a learned manifold or directories without the file (trained before it was written, or without
    validation events). An ensemble is checked with its member 0 and that member's reference
    (:func:`mflow_sbi.flows.ensemble.representative`)."""
    from mflow_sbi.flows.ensemble import representative

    model, model_dir = representative(model, model_dir)
    path = Path(model_dir) / layout.OOD_REFERENCE_FILE
    if not has_learned_manifold(model):
        return None
    if not path.is_file():
        log.info("%s has no %s: misspecification check skipped", model_dir, layout.OOD_REFERENCE_FILE)
        return None
    report = check_misspecification(model, ReferenceScores.load(path), x, alpha=alpha)
    (log.warning if report.flagged else log.info)("%s", report.message())
    return report


__all__ = ["DEFAULT_ALPHA", "MisspecificationReport", "ReferenceScores", "check_misspecification", "check_model_directory",
           "choose_theta", "distance_to_learned_manifold", "has_learned_manifold", "manifold_scores", "reference_scores"]
