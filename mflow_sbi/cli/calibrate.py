"""``mflow-sbi calibrate``: simulation-based calibration and expected coverage of a trained model's posteriors."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from mflow_sbi import layout
from mflow_sbi.cli.infer import add_sampler_arguments, load_model, prior_override
from mflow_sbi.cli.options import add_scheduler_argument, examples, show_progress
from mflow_sbi.errors import InputError
from mflow_sbi.inference.settings import DEFAULT_DATASETS, DEFAULT_LOCKSTEP, DEFAULT_RANK_SAMPLES

log = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from mflow_sbi.simulators import SIMULATORS

    parser = subparsers.add_parser(
        "calibrate", help="SBC ranks and expected coverage over simulated data sets",
        **examples("mflow-sbi calibrate --model model --simulator polynomial_surface --n-datasets 200 --n-events 20",
                   "mflow-sbi calibrate --model model --simulator lhc --n-datasets 50 --n-events 20 --out lhc_cal",
                   "mflow-sbi calibrate --model model --simulator lhc --n-datasets 500 --n-events 20 --scheduler tcp://HOST:8786"))
    parser.add_argument("--model", required=True, help="trained model directory")
    parser.add_argument("--simulator", required=True, metavar="NAME",
                        help=f"simulator for the data sets: one of {', '.join(sorted(SIMULATORS))}, or your own as "
                             "package.module:Class or path/to/file.py:Class")
    parser.add_argument("--n-datasets", type=int, default=DEFAULT_DATASETS,
                        help=f"data sets drawn from the prior (default {DEFAULT_DATASETS})")
    parser.add_argument("--n-events", type=int, required=True, help="iid events per data set")
    parser.add_argument("--rank-samples", type=int, default=DEFAULT_RANK_SAMPLES,
                        help=f"posterior draws per data set for the ranks (default {DEFAULT_RANK_SAMPLES})")
    parser.add_argument("--out", default="calibration", help="output folder (default ./calibration)")
    parser.add_argument("--lockstep", type=int, default=DEFAULT_LOCKSTEP, metavar="K",
                        help="data sets whose chains advance together, their likelihood calls evaluated as one batch "
                             "(the posteriors of one after another up to float32 rounding; 1: one after another; "
                             f"default {DEFAULT_LOCKSTEP})")
    parser.add_argument("--resume", action="store_true",
                        help=f"continue after the data sets completed in --out ({layout.CALIBRATION_CHECKPOINT_FILE}, "
                             "written after every lockstep block; with --scheduler one file per data set in "
                             f"{layout.CALIBRATION_TASKS_DIR}/) by a run with the same settings")
    add_sampler_arguments(parser)
    add_scheduler_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from mflow_sbi import plotting
    from mflow_sbi.inference.calibration import run_calibration
    from mflow_sbi.inference.likelihood import ModelLikelihood
    from mflow_sbi.priors import resolve_prior
    from mflow_sbi.simulators import get_simulator
    from mflow_sbi.workflow.train import read_training_data_record

    record = read_training_data_record(args.model)
    options = (record.get("simulator_options") or {}) if record.get("simulator") == args.simulator else {}
    simulator = get_simulator(args.simulator, **options)  # with the options the training data were simulated with
    model = load_model(args.model, args.device)
    if simulator.data_dim != model.data_dim or len(simulator.parameter_names) != model.parameter_dim:
        raise InputError(f"simulator {args.simulator} has data dimension {simulator.data_dim} and "
                         f"{len(simulator.parameter_names)} parameter(s); the model has {model.data_dim} and "
                         f"{model.parameter_dim}")
    prior = resolve_prior(getattr(model, "prior", None), prior_override(args, model), model.parameter_dim)
    out = Path(args.out)
    sampler = {"n_walkers": args.walkers, "n_steps": args.steps, "burn_in": args.burn_in, "thin": args.thin,
               "adaptive_burn_in": not args.fixed_burn_in}
    if args.scheduler:  # one Dask task per data set (mflow_sbi.workflow.calibrate)
        from mflow_sbi.inference.settings import InferenceConfig
        from mflow_sbi.workflow.calibrate import CalibrationJob, calibrate_on_dask

        job = CalibrationJob(str(args.model), args.simulator, args.n_events, options, tuple(args.prior or ()) or None,
                             args.rank_samples, args.device or InferenceConfig.device, sampler,
                             calibration_identity(args.model, args.simulator, options, prior))
        result = calibrate_on_dask(job, args.n_datasets, args.seed, args.scheduler,
                                   task_dir=(out / layout.CALIBRATION_TASKS_DIR).resolve(), resume=args.resume)
    else:
        result = run_calibration(
            simulator.sample, lambda x: ModelLikelihood(model, x), prior, n_datasets=args.n_datasets,
            n_events=args.n_events, seed=args.seed, n_rank_samples=args.rank_samples,
            parameter_names=getattr(model, "parameter_names", None), progress=show_progress(args),
            lockstep=args.lockstep, checkpoint=out / layout.CALIBRATION_CHECKPOINT_FILE, resume=args.resume,
            identity=calibration_identity(args.model, args.simulator, options, prior), **sampler,
        )
    written = [result.save(out / layout.CALIBRATION_FILE), result.save_summary(out / layout.CALIBRATION_SUMMARY_FILE),
               plotting.sbc_plot(result, out / layout.SBC_PLOT_FILE),
               plotting.coverage_plot(result, out / layout.COVERAGE_PLOT_FILE)]
    summary = result.summary()
    print(f"rank uniformity p-values: {summary['rank_uniformity_pvalue']}")
    print(f"expected coverage: {summary['expected_coverage']}")
    log.info("wrote %s", ", ".join(str(path) for path in written))


def calibration_identity(model_dir: str, simulator: str, options: dict, prior) -> dict:
    """What a resumed calibration must share with the checkpoint besides its settings: the model's weights
    (SHA-256), the simulator with its options and the prior."""
    from mflow_sbi.flows import weights_sha256

    return {"model_weights_sha256": weights_sha256(model_dir), "simulator": simulator,
            "simulator_options": options, "prior": list(getattr(prior, "specs", []) or [])}
