"""``mflow-sbi infer``: posterior samples for observed events from a trained model."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from mflow_sbi.cli.options import show_progress
from mflow_sbi.data.datasets import load_events
from mflow_sbi.inference.priors import IndependentPrior
from mflow_sbi.inference.sampler import DEFAULT_BURN_IN, DEFAULT_STEPS, DEFAULT_WALKERS

log = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("infer", help="sample the posterior of theta given observed events")
    parser.add_argument("--model", required=True, help="trained model directory")
    parser.add_argument("--observed", required=True, help="observed events (.npz with field x (N, d))")
    parser.add_argument("--out", required=True, help="posterior samples (.npz); the summary goes to *_summary.json")
    add_sampler_arguments(parser)
    parser.add_argument("--init", choices=("prior", "map", "modes"), default="modes",
                        help="walker start: prior draws, a small ball around the MAP, or across the posterior's "
                             "modes in proportion to their estimated masses (default modes)")
    parser.add_argument("--until-converged", action="store_true",
                        help="stop once the chain exceeds 50 autocorrelation times (--steps is then the maximum)")
    parser.add_argument("--no-cache", action="store_true", help="re-encode the observed events at every step")
    parser.set_defaults(func=run)


def add_sampler_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by the subcommands that run the MCMC."""
    parser.add_argument("--walkers", type=int, default=DEFAULT_WALKERS, help=f"walkers (default {DEFAULT_WALKERS})")
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS, help=f"steps per walker (default {DEFAULT_STEPS})")
    parser.add_argument("--burn-in", type=int, default=DEFAULT_BURN_IN,
                        help=f"steps discarded (default {DEFAULT_BURN_IN})")
    parser.add_argument("--thin", type=int, default=1, help="keep every THIN-th step (default 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--prior", action="append", metavar="SPEC",
                        help="override the model's prior: uniform(LOW,HIGH) or normal(LOC,SCALE), once per parameter")


def prior_override(args: argparse.Namespace) -> IndependentPrior | None:
    return IndependentPrior.from_specs(args.prior) if args.prior else None


def load_model(path: str):
    """``mflow_sbi.flows.load_model``, imported on use."""
    from mflow_sbi.flows import load_model as load

    return load(path)


def summary_path(out: str | Path) -> Path:
    """Where the JSON summary of a posterior written to ``out`` goes: ``<stem>_summary.json`` next to it."""
    out = Path(out)
    return out.with_name(f"{out.stem}_summary.json")


def observed_theta(theta: np.ndarray | None) -> list[float] | None:
    """The parameter point of an observed set simulated at one fixed theta (all rows equal), else None."""
    if theta is None or not np.all(theta == theta[0]):
        return None
    return theta[0].tolist()


def run(args: argparse.Namespace) -> None:
    from mflow_sbi.inference.pipeline import run_inference

    observed = load_events(args.observed)
    model = load_model(args.model)
    metadata = {"model_path": str(args.model), "observed_path": str(args.observed)}
    truth = observed_theta(observed.theta)
    if truth is not None:
        metadata["observed_theta"] = truth
    posterior = run_inference(
        model, observed.x, prior=prior_override(args), cache=False if args.no_cache else "auto", metadata=metadata,
        n_walkers=args.walkers, n_steps=args.steps, burn_in=args.burn_in, thin=args.thin, seed=args.seed,
        init=args.init, progress=show_progress(args), until_converged=args.until_converged,
    )
    out = posterior.save(args.out)
    summary = posterior.save_summary(summary_path(out))
    print(posterior.format_summary())
    log.info("wrote %s and %s", out, summary)
