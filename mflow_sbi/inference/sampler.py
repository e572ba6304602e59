"""Posterior sampling with emcee's affine-invariant ensemble sampler.

    log p(theta | x_1..x_N) = log p(theta) + sum_i log p(x_i | theta) + const,

with log p(theta) = -inf outside the prior support (the likelihood is then not evaluated). emcee's stretch
move updates half of the ensemble at a time, so with ``vectorize=True`` each likelihood call receives
n_walkers / 2 parameter points and evaluates all of them against all events at once.

Proposals (``moves``): "independence" (the default) picks, at each step, the independence Metropolis-Hastings
move (``INDEPENDENCE_SHARE`` = 80% of the steps; independence.py) or the "de" mixture (20%). The independence
move proposes every walker's next point from a fixed Student-t mixture q with one component per mode found
(fitted to the mode set, refitted once to the second half of the burn-in, then fixed) and accepts with
log r = log pi(theta') - log pi(theta) + log q(theta) - log q(theta'): accepted jumps carry walkers between
modes in proportion to their mass, and for near-Gaussian posteriors successive states are nearly
independent (tau 1.8-2.4 steps on the mixture targets against 17-74 with "de"; docs/benchmarks.md). The DE
share keeps curved or heavy-tailed modes mixing where q fits them poorly. The modes are found (modes.py)
whatever ``init`` is. "de" mixes differential-evolution moves (80%, ter Braak 2006) with emcee's
affine-invariant stretch move (20%, Goodman & Weare 2010); "stretch" uses the stretch move only (emcee's
default). On the low-dimensional posteriors here DE moves have autocorrelation times 3-4x shorter than the
stretch move (tau ~ 5 vs ~ 23 steps in 1-D, ~ 12 vs ~ 35 in 4-D, with 32 walkers), hence 3-4x more effective
samples for the same cost; the stretch share keeps the ensemble from being confined to the span of its
differences. emcee's DE snooker move is deliberately not used: in our checks on a 4-D Gaussian posterior it
gave marginal standard deviations about 30% too small.

Walkers start inside the support: across the posterior's modes in proportion to their estimated masses
(``init="modes"``, the default: multi-start optimization, hill-valley clustering, Laplace/importance-sampling
masses; see modes.py), drawn from the prior (``init="prior"``, the default before issue 18), or in a small
ball around the maximum a posteriori point found by a short optimization (``init="map"``: best of a batch
of prior draws, refined by Nelder-Mead). With ``init="modes"`` (or the independence move) the run ends with a mode check
(``diagnostics["modes"]``): the chain's fraction of samples per mode against the estimated mass, a warning
when they differ by more than 10 points or all walkers sit in one mode, and, when the walkers did not move
between modes, the per-mode sample sets re-weighted to the estimated masses (docs/inference.md). With
``until_converged=True`` the run stops once the post-burn-in chain is longer than 50 autocorrelation times
and the estimate of tau has changed by less than 1% since the last check, or after ``n_steps`` steps at
most.

Burn-in (``adaptive_burn_in=True``, the default): ``burn_in`` is the longest burn-in, and the run keeps
``n_steps - burn_in`` steps after the burn-in it actually used. From walkers started at the modes the chain
is close to the posterior from the first step, and a fixed 300-step burn-in was the largest single cost of a
posterior (docs/benchmarks.md, "Time to posterior"). Every ``BURN_IN_BLOCK`` steps from ``MIN_BURN_IN`` on,
the burn-in ends at step t when both

1. t >= ``BURN_IN_TAUS`` x max_k tau_k, with tau_k the autocorrelation time of parameter k estimated on the
   whole chain so far, centred on its grand mean (``diagnostics.pooled_autocorrelation_time``, nearly unbiased
   on chains of a few tau where the per-walker estimate is not): the walkers have forgotten their start many
   times over, and a transient, as from a start far from the posterior, lengthens the estimate and with it
   the burn-in;
2. the chain is stationary between its last two blocks: for the log posterior and for every parameter, the
   per-walker means over steps [t - 2B, t - B) and [t - B, t) (B = ``BURN_IN_BLOCK``) differ by d_w with
   |mean_w d_w| <= ``STATIONARY_Z`` x sd_w(d_w) / sqrt(walkers), a z-test of no drift across the walkers
   (an ensemble that did not move at all fails it).

Both are functions of the chain so far only, so a resumed chain finds the same burn-in again. With
``adaptive_burn_in=False`` exactly ``burn_in`` steps are discarded (the behaviour before the rule).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import emcee
import numpy as np
from scipy.optimize import minimize

from mflow_sbi.errors import InputError
from mflow_sbi.inference import modes as mode_finding
from mflow_sbi.inference.chain_checkpoint import ChainCheckpoint
from mflow_sbi.inference.diagnostics import (
    MIN_TAU_MULTIPLE,
    RHAT_GROUPS,
    autocorrelation_time,
    chain_diagnostics,
    pooled_autocorrelation_time,
)
from mflow_sbi.inference.independence import IndependenceMove, StudentTMixture
from mflow_sbi.inference.posterior import Posterior
from mflow_sbi.inference.potential import LogLikelihood, PosteriorPotential, Potential, Prior
from mflow_sbi.inference.settings import DEFAULT_BURN_IN, DEFAULT_STEPS, DEFAULT_WALKERS

log = logging.getLogger(__name__)

CONVERGENCE_CHECK_EVERY = 100
# adaptive burn-in (module docstring)
BURN_IN_BLOCK = 25
MIN_BURN_IN = 50
BURN_IN_TAUS = 10.0
STATIONARY_Z = 3.0
LOG_EVERY = 250
TAU_RTOL = 0.01
INIT_ATTEMPTS = 100
BALL_SCALE = 1e-3


# The 0.1 name of the posterior potential.
LogPosterior = PosteriorPotential


MOVES = ("de", "stretch", "independence")
DEFAULT_MOVES = "independence"
INDEPENDENCE_SHARE = 0.8
INITS = ("prior", "map", "modes")


def make_moves(name: str, proposal: StudentTMixture | None = None) -> list:
    """emcee moves for ``name`` in MOVES (see module docstring); "independence" needs the ``proposal`` q."""
    if name == "de":
        return [(emcee.moves.DEMove(), 0.8), (emcee.moves.StretchMove(), 0.2)]
    if name == "stretch":
        return [(emcee.moves.StretchMove(), 1.0)]
    if name == "independence":
        if proposal is None:
            raise InputError("the independence move needs a proposal mixture (from the modes found)")
        return [(IndependenceMove(proposal), INDEPENDENCE_SHARE)] + [
            (move, weight * (1 - INDEPENDENCE_SHARE)) for move, weight in make_moves("de")]
    raise InputError(f"moves must be one of {MOVES}, got {name!r}")


def _refit_at_burn_in(sampler: emcee.EnsembleSampler, burn_in: int, move: IndependenceMove | None) -> dict | None:
    """Refit the independence ``move``'s q to the second half of the burn-in chain (independence.py); returns
    the new q's summary, or None without an independence move or a burn-in."""
    if move is None or burn_in < 2:
        return None
    move.proposal = move.proposal.refit(sampler.get_chain()[burn_in // 2 : burn_in])
    return move.proposal.to_dict()


def _check_settings(p: int, n_walkers: int, n_steps: int, burn_in: int, thin: int, init: str) -> None:
    if n_walkers < 2 * p:
        raise InputError(f"need at least 2 x {p} = {2 * p} walkers for {p} parameter(s), got {n_walkers}")
    if burn_in < 0 or thin < 1:
        raise InputError(f"burn-in must be >= 0 and thin >= 1, got burn-in {burn_in}, thin {thin}")
    if n_steps - burn_in < 4:
        raise InputError(f"need at least 4 steps after burn-in, got {n_steps} steps with burn-in {burn_in}")
    if init not in INITS:
        raise InputError(f"init must be one of {INITS}, got {init!r}")


def _draw_valid(draw: Callable[[int], np.ndarray], log_post: Potential, n: int, what: str) -> np.ndarray:
    """``n`` points from ``draw`` with a finite log posterior, redrawing the others."""
    points = draw(n)
    for _ in range(INIT_ATTEMPTS):
        bad = ~np.isfinite(log_post(points))
        if not bad.any():
            return points
        points[bad] = draw(int(bad.sum()))
    raise InputError(f"could not place walkers {what} with a finite posterior after {INIT_ATTEMPTS} attempts")


def find_map(log_post: Potential, prior: Prior, rng: np.random.Generator, n_candidates: int = 256) -> np.ndarray:
    """Approximate MAP: the best of ``n_candidates`` prior draws, refined by Nelder-Mead."""
    candidates = prior.sample(n_candidates, rng)
    values = log_post(candidates)
    if not np.isfinite(values).any():
        raise InputError(f"the posterior is -inf at all {n_candidates} prior draws used to look for its maximum")
    start = candidates[int(np.argmax(values))]

    def objective(theta: np.ndarray) -> float:
        value = log_post(theta[None, :])[0]
        return -value if np.isfinite(value) else np.inf

    result = minimize(objective, start, method="Nelder-Mead", options={"maxiter": 200 * len(start)})
    return result.x if np.isfinite(result.fun) and result.fun <= objective(start) else start


def initial_walkers(log_post: Potential, prior: Prior, n_walkers: int, init: str, rng: np.random.Generator,
                    modes: mode_finding.ModeSet | None = None) -> np.ndarray:
    """Starting points (n_walkers, p), all with a finite log posterior (``modes`` for ``init="modes"``)."""
    if init == "modes":
        modes = mode_finding.find_modes(log_post, prior, rng) if modes is None else modes
        return mode_finding.place_walkers(modes, n_walkers, log_post, rng, groups=RHAT_GROUPS)[0]
    if init == "prior":
        return _draw_valid(lambda n: prior.sample(n, rng), log_post, n_walkers, "from the prior")
    centre = find_map(log_post, prior, rng)
    scale = BALL_SCALE * prior.sample(1000, rng).std(axis=0)
    return _draw_valid(lambda n: centre + scale * rng.standard_normal((n, centre.size)), log_post, n_walkers,
                       "around the MAP")


def _no_drift(first: np.ndarray, second: np.ndarray) -> bool:
    """z-test across walkers that the per-walker means of two blocks (steps, walkers) do not differ."""
    difference = second.mean(axis=0) - first.mean(axis=0)
    spread = difference.std(ddof=1)
    if not np.isfinite(spread) or spread == 0:
        return False  # no walker moved (or a non-finite value): nothing says the chain has settled
    return abs(difference.mean()) <= STATIONARY_Z * spread / np.sqrt(difference.size)


def settled(chain: np.ndarray, log_prob: np.ndarray) -> bool:
    """Whether the adaptive burn-in may end after this chain (steps, walkers, p) with ``log_prob`` (steps,
    walkers): long against its autocorrelation time and without drift between its last two blocks (module
    docstring)."""
    t = len(chain)
    if t < max(MIN_BURN_IN, 2 * BURN_IN_BLOCK) or t < BURN_IN_TAUS * pooled_autocorrelation_time(chain).max():
        return False
    first, second = slice(t - 2 * BURN_IN_BLOCK, t - BURN_IN_BLOCK), slice(t - BURN_IN_BLOCK, t)
    if not _no_drift(log_prob[first], log_prob[second]):
        return False
    return all(_no_drift(chain[first, :, k], chain[second, :, k]) for k in range(chain.shape[2]))


def _burn_in_over(sampler: emcee.EnsembleSampler, step: int, burn_in: int, adaptive: bool) -> bool:
    """Whether the burn-in ends at ``step``: at ``burn_in`` at the latest, earlier by the adaptive rule."""
    if step == burn_in:
        return True
    if not adaptive or step > burn_in or step < MIN_BURN_IN or step % BURN_IN_BLOCK:
        return False
    return settled(sampler.get_chain()[:step], sampler.get_log_prob()[:step])


def _burn_in_so_far(sampler: emcee.EnsembleSampler, burn_in: int, adaptive: bool) -> int | None:
    """The step at which the burn-in of a (restored) chain ended, or None if it has not ended yet."""
    if burn_in == 0:
        return 0
    candidates = range(MIN_BURN_IN, burn_in, BURN_IN_BLOCK) if adaptive else range(0)
    for step in [*candidates, burn_in]:
        if step > sampler.iteration:
            return None
        if _burn_in_over(sampler, step, burn_in, adaptive):
            return step
    return None


def _tau_at_last_check(sampler: emcee.EnsembleSampler, burn_in: int) -> np.ndarray | None:
    """The tau estimate of the last convergence check at or before the current iteration (a resumed chain
    continues the stopping rule with it), or None if no check has run yet."""
    last = sampler.iteration - sampler.iteration % CONVERGENCE_CHECK_EVERY
    if last - burn_in < CONVERGENCE_CHECK_EVERY:
        return None
    return autocorrelation_time(sampler.get_chain()[burn_in:last])


def _run(sampler: emcee.EnsembleSampler, start: np.ndarray | emcee.State, n_steps: int, burn_in: int,
         until_converged: bool, progress: bool, checkpoint: ChainCheckpoint | None = None,
         independence: IndependenceMove | None = None, adaptive_burn_in: bool = False) -> tuple[bool, dict | None, int]:
    """Run the chain: a burn-in of at most ``burn_in`` steps (ended early by the adaptive rule with
    ``adaptive_burn_in``), then ``n_steps - burn_in`` kept steps (a restored sampler continues from its
    iteration). Returns whether the tau-based stopping rule fired (always False without it), the independence
    move's refitted proposal (refitted once, when the burn-in ends; a resumed chain past it refits from its
    stored burn-in) and the burn-in used. Without a progress bar (a batch job's log) every ``LOG_EVERY`` steps
    are reported in one INFO line. ``checkpoint`` is written every ``checkpoint.every`` steps."""
    kept = n_steps - burn_in
    burn_end = _burn_in_so_far(sampler, burn_in, adaptive_burn_in)
    refitted = _refit_at_burn_in(sampler, burn_end, independence) if burn_end is not None else None
    previous_tau = (_tau_at_last_check(sampler, burn_end)
                    if until_converged and burn_end is not None and sampler.iteration else None)
    if burn_end is not None and sampler.iteration >= burn_end + kept:
        return False, refitted, burn_end
    for _ in sampler.sample(start, iterations=n_steps - sampler.iteration, progress=progress):
        done = sampler.iteration
        if burn_end is None and _burn_in_over(sampler, done, burn_in, adaptive_burn_in):
            burn_end = done
            refitted = _refit_at_burn_in(sampler, burn_end, independence)
            if burn_end < burn_in:
                log.info("MCMC: burn-in ended after %d of at most %d steps (the chain had settled)", burn_end, burn_in)
        if checkpoint is not None and checkpoint.due(done):
            checkpoint.save(sampler)
        if not progress and done % LOG_EVERY == 0:
            log.info("MCMC step %d/%d: mean acceptance %.3f", done, n_steps, float(np.mean(sampler.acceptance_fraction)))
        if burn_end is None:
            continue
        if done >= burn_end + kept:
            break
        if not until_converged or done % CONVERGENCE_CHECK_EVERY or done - burn_end < CONVERGENCE_CHECK_EVERY:
            continue
        tau = autocorrelation_time(sampler.get_chain(discard=burn_end))
        stable = previous_tau is not None and np.all(np.abs(previous_tau - tau) < TAU_RTOL * tau)
        if stable and done - burn_end >= MIN_TAU_MULTIPLE * tau.max():
            return True, refitted, burn_end
        previous_tau = tau
    return False, refitted, burn_end


def sample_potential(
    potential: Potential,
    *,
    n_walkers: int = DEFAULT_WALKERS,
    n_steps: int = DEFAULT_STEPS,
    burn_in: int = DEFAULT_BURN_IN,
    thin: int = 1,
    seed: int = 0,
    init: str = "modes",
    progress: bool = True,
    parameter_names: Sequence[str] | None = None,
    labels: Sequence[str] | None = None,
    metadata: dict | None = None,
    until_converged: bool = False,
    moves: str = DEFAULT_MOVES,
    checkpoint: ChainCheckpoint | None = None,
    resume: bool = False,
    adaptive_burn_in: bool = True,
) -> Posterior:
    """Sample exp(U(theta)) for a vectorized ``potential`` U (see :mod:`mflow_sbi.inference.potential`) with emcee.

    ``moves`` is "independence", "de" or "stretch" (see the module docstring); ``init`` is "modes", "prior" or
    "map". ``burn_in`` is the longest burn-in; with ``adaptive_burn_in`` it ends as soon as the chain has settled
    (module docstring) and the run keeps ``n_steps - burn_in`` steps after it. With
    ``until_converged``, ``n_steps - burn_in`` is the maximum number of kept steps. The returned posterior holds the thinned
    post-burn-in samples, the kept chain (all post-burn-in steps) and the burn-in steps beside it, diagnostics
    (see diagnostics.py) and metadata: the sampler settings, the potential's metadata, then ``metadata``.

    ``checkpoint`` (a :class:`~mflow_sbi.inference.chain_checkpoint.ChainCheckpoint`) saves the chain every
    ``checkpoint.every`` steps; its key is extended by the sampler settings. With ``resume`` a run continues
    from the checkpoint file if there is one (the same seed and settings give the same chain as an
    uninterrupted run). The caller deletes the file once the posterior is saved.
    """
    p = potential.parameter_dim
    _check_settings(p, n_walkers, n_steps, burn_in, thin, init)
    if moves not in MOVES:
        raise InputError(f"moves must be one of {MOVES}, got {moves!r}")
    settings = {"n_walkers": n_walkers, "n_steps": n_steps, "burn_in": burn_in, "thin": thin, "seed": seed,
                "init": init, "until_converged": until_converged, "moves": moves, "adaptive_burn_in": adaptive_burn_in}
    if checkpoint is not None:
        checkpoint = ChainCheckpoint(checkpoint.path, {**checkpoint.key, "sampler": settings}, checkpoint.every)
    restored = checkpoint.restore(n_walkers, p) if checkpoint is not None and resume else None
    rng = np.random.default_rng(seed)
    need_modes = init == "modes" or moves == "independence"
    modes = mode_finding.find_modes(potential, potential.prior, rng) if need_modes else None
    proposal = make_moves(moves, StudentTMixture.from_modes(modes) if moves == "independence" else None)
    if restored is None:
        backend, start = None, initial_walkers(potential, potential.prior, n_walkers, init, rng, modes)
    else:
        backend, start = restored
        log.info("MCMC: resuming from step %d of %s", backend.iteration, checkpoint.path)
    resumed_from = 0 if backend is None else backend.iteration
    sampler = emcee.EnsembleSampler(n_walkers, p, potential, vectorize=True, moves=proposal, backend=backend)
    if backend is None:
        sampler.random_state = np.random.RandomState(seed).get_state()
    began = time.perf_counter()
    independence = next((move for move, _ in proposal if isinstance(move, IndependenceMove)), None)
    converged, refitted, burn_in = _run(sampler, start, n_steps, burn_in, until_converged, progress, checkpoint,
                                        independence, adaptive_burn_in)
    elapsed = time.perf_counter() - began
    steps_run = sampler.iteration
    if steps_run - burn_in < 4:
        raise InputError(f"the chain stopped after {steps_run} steps, fewer than burn-in {burn_in} + 4")
    chain, chain_log_prob = sampler.get_chain(), sampler.get_log_prob()
    support = getattr(potential.prior, "support", None)  # (low, high) of an IndependentPrior, else not checked
    diagnostics = chain_diagnostics(chain[burn_in:], sampler.acceptance_fraction, support)
    diagnostics.update(sampling_seconds=elapsed, converged_by_tau=converged)
    if refitted is not None:
        diagnostics["independence_proposal"] = refitted
    samples = chain[burn_in::thin].reshape(-1, p)
    samples_log_prob = chain_log_prob[burn_in::thin].reshape(-1)
    if modes is not None:
        samples, samples_log_prob, report = mode_finding.mode_check(modes, chain[burn_in:], chain_log_prob[burn_in:],
                                                                    thin, seed)
        diagnostics["modes"] = {**modes.to_dict(), **report}
        diagnostics["warnings"].extend(report["warnings"])
    for message in diagnostics["warnings"]:
        log.warning("MCMC: %s", message)
    info = {"sampler": {**settings, "steps_run": steps_run, "burn_in_used": burn_in, "resumed_from_step": resumed_from},
            **potential.metadata, **(metadata or {})}
    return Posterior(
        samples=samples,
        log_prob=samples_log_prob,
        parameter_names=parameter_names,
        labels=labels,
        diagnostics=diagnostics,
        metadata=info,
        chain=chain[burn_in:],
        chain_log_prob=chain_log_prob[burn_in:],
        burn_in_chain=chain[:burn_in],
        burn_in_log_prob=chain_log_prob[:burn_in],
    )


def sample_posterior(log_likelihood: LogLikelihood, prior: Prior, **options: Any) -> Posterior:
    """Sample p(theta | x_obs) proportional to prior(theta) * exp(log_likelihood(theta)): :func:`sample_potential`
    of their :class:`~mflow_sbi.inference.potential.PosteriorPotential`, with the same keyword-only ``options``.

    ``log_likelihood`` maps theta (K, p) to (K,) summed log-likelihoods; ``prior`` is any object with
    ``sample(n, rng)`` -> (n, p) and ``log_prob(theta)`` (theta (K, p) -> (K,), -inf outside its support),
    e.g. an ``IndependentPrior``.
    """
    return sample_potential(PosteriorPotential(log_likelihood, prior), **options)
