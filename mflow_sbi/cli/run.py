"""``mflow-sbi run``: the whole workflow (simulate, train, infer, plot) from one configuration."""

from __future__ import annotations

import argparse
from pathlib import Path

from mflow_sbi.cli.options import add_device_argument, examples, show_progress
from mflow_sbi.config import load_config

DEFAULT_OUT = "mflow_sbi_output"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run", help="simulate, train, infer and plot in one go (default: the embedded job)",
        **examples("mflow-sbi run", "mflow-sbi run examples/smoke_run.toml --out smoke",
                   "mflow-sbi run --set simulation.n_train=5000 --set training.epochs_d=10 --out quick",
                   "mflow-sbi run OUT/config.toml   (repeat a run from its folder)"))
    parser.add_argument("config", nargs="?", help="TOML configuration (default: the embedded polynomial-surface job)")
    parser.add_argument("--out", default=DEFAULT_OUT, help=f"output directory (default: ./{DEFAULT_OUT})")
    parser.add_argument("--set", action="append", default=[], metavar="TABLE.KEY=VALUE", dest="overrides",
                        help="override one configuration key, e.g. training.epochs_d=10 or simulation.true_theta=[0.5]; "
                             "repeatable (the effective configuration is saved as OUT/config.toml)")
    parser.add_argument("--resume", action="store_true",
                        help="reuse the data files in --out and continue training and the MCMC from their checkpoints")
    add_device_argument(parser, "[training] device and [inference] device")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from mflow_sbi.workflow.run import run_pipeline

    device = [f"training.device={args.device!r}", f"inference.device={args.device!r}"] if args.device else []
    config = load_config(args.config, [*args.overrides, *device])
    outputs, posterior = run_pipeline(config, Path(args.out), progress=show_progress(args), resume=args.resume)
    truth = posterior.metadata["observed_theta"]
    print(posterior.format_summary())
    parameters = posterior.summary()["parameters"]
    for k, name in enumerate(posterior.parameter_names):
        low, high = parameters[name]["central_95"]
        verdict = "inside" if low <= truth[k] <= high else "OUTSIDE"
        print(f"true {name} = {truth[k]:g} is {verdict} the 95% central interval [{low:.4g}, {high:.4g}]")
    if "mmd2_to_exact" in posterior.metadata:
        print(f"MMD^2 to the exact-likelihood posterior: {posterior.metadata['mmd2_to_exact']:.4g} (0 = identical)")
    print(f"\noutputs in {outputs.directory}/:")
    for label, path in [("training data", outputs.training_data), ("observed data", outputs.observed_data),
                        ("trained model", outputs.model), ("posterior samples", outputs.posterior),
                        ("summary", outputs.summary), ("corner plot", outputs.corner),
                        ("exact posterior", outputs.reference)]:
        if path is None:
            continue
        print(f"  {label:<18} {path}")
