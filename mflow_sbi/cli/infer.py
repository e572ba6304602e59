"""``mflow-sbi infer``: posterior samples for observed events from a trained model."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from mflow_sbi import layout
from mflow_sbi.cli.format_options import add_format_arguments, format_from_args
from mflow_sbi.cli.options import add_device_argument, examples, show_progress
from mflow_sbi.data.datasets import load_events
from mflow_sbi.errors import InputError
from mflow_sbi.inference.settings import DEFAULT_BURN_IN, DEFAULT_STEPS, DEFAULT_WALKERS
from mflow_sbi.layout import ood_scores_path, summary_path
from mflow_sbi.priors import IndependentPrior
from mflow_sbi.workflow.train import read_training_data_record

log = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "infer", help="sample the posterior of theta given observed events",
        **examples("mflow-sbi infer --model model --observed observed.npz --out posterior.npz",
                   "mflow-sbi infer --model model --observed observed.npz --out posterior.npz --until-converged --steps 20000",
                   "mflow-sbi infer --model model --observed observed.npz --out wide.npz --prior 'uniform(-2,2)'"))
    parser.add_argument("--model", required=True, help="trained model directory")
    parser.add_argument("--observed", required=True,
                        help="observed events: .npz with field x (N, d), or ROOT files read with the model's event "
                             "format (or --format)")
    parser.add_argument("--out", required=True, help="posterior samples (.npz); the summary goes to *_summary.json")
    add_sampler_arguments(parser)
    parser.add_argument("--init", choices=("prior", "map", "modes"), default="modes",
                        help="walker start: prior draws, a small ball around the MAP, or across the posterior's "
                             "modes in proportion to their estimated masses (default modes)")
    parser.add_argument("--until-converged", action="store_true",
                        help="stop once the chain exceeds 50 autocorrelation times (--steps is then the maximum)")
    parser.add_argument("--no-cache", action="store_true", help="re-encode the observed events at every step")
    parser.add_argument("--resume", action="store_true",
                        help="continue a killed run from the chain checkpoint beside --out (OUT_mcmc_checkpoint.npz, "
                             "written every 500 steps) instead of starting afresh")
    parser.add_argument("--show-nuisance", action="store_true",
                        help="also print the nuisance parameters (marginalized; by default the printed summary shows "
                             "the parameters of interest)")
    add_format_arguments(parser)
    parser.set_defaults(func=run)


def add_sampler_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by the subcommands that run the MCMC."""
    parser.add_argument("--walkers", type=int, default=DEFAULT_WALKERS, help=f"walkers (default {DEFAULT_WALKERS})")
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS, help=f"steps per walker (default {DEFAULT_STEPS})")
    parser.add_argument("--burn-in", type=int, default=DEFAULT_BURN_IN,
                        help=f"steps discarded at most (default {DEFAULT_BURN_IN}); the burn-in ends earlier once the "
                             "chain has settled, and STEPS - BURN_IN steps are kept")
    parser.add_argument("--fixed-burn-in", action="store_true",
                        help="always discard BURN_IN steps ([inference] adaptive_burn_in = false)")
    parser.add_argument("--thin", type=int, default=1, help="keep every THIN-th step (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the sampler (default 0)")
    parser.add_argument("--prior", action="append", metavar="SPEC",
                        help="override the model's prior: uniform(LOW,HIGH) or normal(LOC,SCALE), once per parameter")
    add_device_argument(parser, "[inference] device")


def prior_override(args: argparse.Namespace, model) -> IndependentPrior | None:
    """The --prior specs, or None to use the model's prior (an error naming the flag when it has none)."""
    if args.prior:
        return IndependentPrior.from_specs(args.prior)
    if getattr(model, "prior", None) is None:
        raise InputError(f"{args.model} stores no prior: give one --prior uniform(LOW,HIGH) or normal(LOC,SCALE) "
                         "per parameter")
    return None


def load_model(path: str, device: str | None = None):
    """``mflow_sbi.flows.load_model`` onto ``device`` (None: the ``[inference] device`` default), imported on use."""
    from mflow_sbi.flows import load_model as load
    from mflow_sbi.inference.settings import InferenceConfig

    return load(path, InferenceConfig.device if device is None else device)


def observed_theta(theta: np.ndarray | None) -> list[float] | None:
    """The parameter point of an observed set simulated at one fixed theta (all rows equal), else None."""
    if theta is None or not np.all(theta == theta[0]):
        return None
    return theta[0].tolist()


def load_observed(args: argparse.Namespace, record: dict):
    """The observed events: an .npz file, or ROOT files read with --format if given, else with the event format
    recorded in the model directory (a different feature list than the model's training ``record`` is an
    error)."""
    from mflow_sbi.data.event_format import load_format
    from mflow_sbi.data.loading import ROOT_SUFFIX, load_any
    from mflow_sbi.tomlio import read_toml

    if Path(args.observed).suffix.lower() != ROOT_SUFFIX:
        return load_events(args.observed)
    stored = Path(args.model) / layout.EVENT_FORMAT_FILE
    fmt = format_from_args(args)
    fmt = fmt if fmt is not None else (load_format(read_toml(stored)) if stored.is_file() else None)
    expected = record.get("feature_names")
    got = load_format(fmt).feature_names() if fmt is not None else None
    if got is not None and expected is not None and got != expected:
        raise InputError(f"the event format for {args.observed} gives the features {got[:4]}... ({len(got)}), "
                         f"the model in {args.model} was trained on {expected[:4]}... ({len(expected)})")
    return load_any(args.observed, fmt, step_size=args.step_size)


def check_observed_source(model_dir: str, record: dict, observed, observed_path: str) -> None:
    """Observed events recorded as coming from another simulator than the model's training data (its
    ``record``) are an error; other simulator options (e.g. detector smearing switched on) only a warning: that
    may be the point. Options are compared with the simulator's defaults filled in (an option left at its default
    and one not given are the same)."""
    from mflow_sbi.simulators import same_options

    if observed.simulator is None or not record:
        return
    trained_on = record.get("simulator")
    if trained_on is not None and trained_on != observed.simulator:
        raise InputError(f"{observed_path} holds events of simulator {observed.simulator!r}, but the model in "
                         f"{model_dir} was trained on {trained_on!r} events")
    if trained_on is not None and not same_options(trained_on, record.get("simulator_options"),
                                                    observed.simulator_options):
        log.warning("%s was simulated with options %s, the training data of %s with %s", observed_path,
                    observed.simulator_options or {}, model_dir, record.get("simulator_options") or {})


def run(args: argparse.Namespace) -> None:
    from mflow_sbi.inference.infer import run_inference
    from mflow_sbi.inference.misspecification import check_model_directory
    from mflow_sbi.workflow.mcmc import posterior_checkpoint

    record = read_training_data_record(args.model)
    observed = load_observed(args, record)
    check_observed_source(args.model, record, observed, args.observed)
    model = load_model(args.model, args.device)
    metadata = {"model_path": str(args.model), "observed_path": str(args.observed),
                "nuisance_parameters": list(record.get("nuisance_names") or [])}
    truth = observed_theta(observed.theta)
    if truth is not None:
        metadata["observed_theta"] = truth
    checkpoint = posterior_checkpoint(args.out, args.model, observed.x, prior=args.prior, cache=not args.no_cache)
    check = check_model_directory(model, args.model, observed.x)
    if check is not None:
        metadata["misspecification"] = check.to_dict()
    posterior = run_inference(
        model, observed.x, labels=record.get("parameter_labels"),
        prior=prior_override(args, model), cache=False if args.no_cache else "auto", metadata=metadata,
        n_walkers=args.walkers, n_steps=args.steps, burn_in=args.burn_in, thin=args.thin, seed=args.seed,
        adaptive_burn_in=not args.fixed_burn_in, init=args.init, progress=show_progress(args),
        until_converged=args.until_converged,
        checkpoint=checkpoint, resume=args.resume,
    )
    out = posterior.save(args.out)
    checkpoint.remove()
    summary = posterior.save_summary(summary_path(out))
    if check is not None:
        check.save(ood_scores_path(out))
    print(posterior.format_summary(show_nuisance=args.show_nuisance))
    log.info("wrote %s and %s", out, summary)
