"""``mflow-sbi train``: train a conditional likelihood model on simulated data."""

from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path

from mflow_sbi.cli.format_options import add_format_arguments, format_from_args
from mflow_sbi.config import RunConfig, load_config
from mflow_sbi.errors import InputError
from mflow_sbi.inference.priors import IndependentPrior
from mflow_sbi.pipeline import train_from_data

log = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("train", help="train p(x|theta) on simulated events")
    parser.add_argument("--data", required=True, nargs="+",
                        help="training events: .npz files with x and theta, or ROOT files (with --format); globs allowed")
    parser.add_argument("--out", required=True, help="model directory to write")
    parser.add_argument("--config", help="TOML file with [model] and [training] options (flags override it)")
    parser.add_argument("--model", choices=["mflow"], help="model type (default mflow)")
    parser.add_argument("--latent-dim", type=int, help="manifold dimension n (default: the simulator's)")
    parser.add_argument("--algorithm", help="training algorithm (default sequential)")
    parser.add_argument("--epochs", type=int, help="epochs per training phase")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--prior", action="append", metavar="SPEC",
                        help="prior per parameter, uniform(LOW,HIGH) or normal(LOC,SCALE); once per parameter")
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    add_format_arguments(parser)
    parser.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """The config file (or defaults) with command-line flags applied on top."""
    config = load_config(args.config) if args.config else RunConfig()
    if args.model:
        config.model.type = args.model
    if args.latent_dim is not None:
        config.model.latent_dim = args.latent_dim
    overrides = {"algorithm": args.algorithm, "batch_size": args.batch_size, "seed": args.seed}
    if args.epochs is not None:
        overrides |= {"epochs_m": args.epochs, "epochs_d": args.epochs}
    config.training = dataclasses.replace(config.training, **{k: v for k, v in overrides.items() if v is not None})
    return config


def run(args: argparse.Namespace) -> None:
    config = config_from_args(args)
    from mflow_sbi.data.loading import load_any

    data = load_any(args.data, format_from_args(args), require_theta=True, step_size=args.step_size)
    if args.prior:
        data.prior = IndependentPrior.from_specs(args.prior)
    if data.prior is None:
        raise InputError(
            f"{' '.join(args.data)} stores no prior: give one --prior uniform(LOW,HIGH) or normal(LOC,SCALE) per parameter"
        )
    out = train_from_data(data, config, Path(args.out), resume=args.resume, progress=not args.quiet)
    print(f"model written to {out}")
