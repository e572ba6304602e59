"""``mflow-sbi train``: train a conditional likelihood model on simulated data.

Options come from ``--config FILE.toml`` ([model] and [training] tables, every key optional), then from the
flags, which override the file.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING

from mflow_sbi.cli.format_options import add_format_arguments, format_from_args
from mflow_sbi.cli.options import add_device_argument, examples, show_progress
from mflow_sbi.config import RunConfig, load_config
from mflow_sbi.data.datasets import EventData
from mflow_sbi.errors import InputError
from mflow_sbi.flows import MODEL_TYPES
from mflow_sbi.priors import IndependentPrior
from mflow_sbi.training.settings import ALGORITHMS, RECONSTRUCTION_KINDS
from mflow_sbi.workflow.train import train_from_data

if TYPE_CHECKING:
    from mflow_sbi.training.streaming import StreamedData

# flag destination -> TrainingConfig field
TRAINING_FLAGS = {
    "algorithm": "algorithm", "batch_size": "batch_size", "seed": "seed", "learning_rate": "learning_rate",
    "scandal": "scandal", "threads": "threads", "reconstruction": "reconstruction", "latent_l2": "latent_l2",
    "epochs_m": "epochs_m", "epochs_d": "epochs_d", "patience": "patience", "stream": "stream", "device": "device",
    "ensemble": "ensemble",
}
EPOCH_FIELDS = ("epochs", "epochs_m", "epochs_d", "epochs_pretrain", "epochs_posttrain")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train", help="train p(x|theta) on simulated events",
        **examples("mflow-sbi train --data train.npz --out model",
                   "mflow-sbi train --data train.npz --out af_model --model af --epochs 50",
                   "mflow-sbi train --data 'events_*.root' --format delphes --stream --out model --config job.toml"))
    parser.add_argument("--data", required=True, nargs="+",
                        help="training events: .npz files with x and theta (t_xz for --scandal), or ROOT files "
                             "(with --format); globs allowed")
    parser.add_argument("--out", required=True, help="model directory to write")
    parser.add_argument("--config", help="TOML file with [model] and [training] options (flags override it)")
    parser.add_argument("--model", choices=list(MODEL_TYPES), help="model type (default: the config's, else mflow)")
    parser.add_argument("--latent-dim", type=int, help="manifold dimension n (default: the simulator's)")
    parser.add_argument("--algorithm", choices=ALGORITHMS,
                        help="training algorithm (default auto: ml for af/pie, sequential for mflow/emflow)")
    parser.add_argument("--epochs", type=int, help="epochs of every training phase (finer: --epochs-m, --epochs-d)")
    parser.add_argument("--epochs-m", type=int, help="epochs of phase M (manifold) of sequential training")
    parser.add_argument("--epochs-d", type=int, help="epochs of phase D (density) of sequential training")
    parser.add_argument("--learning-rate", type=float, help="Adam learning rate (default: the config's, else 0.001)")
    parser.add_argument("--batch-size", type=int, help="events per batch (default: the config's, else 256)")
    parser.add_argument("--patience", type=int, help="early-stopping patience in epochs")
    parser.add_argument("--reconstruction", choices=RECONSTRUCTION_KINDS, help="reconstruction error (default mse)")
    parser.add_argument("--latent-l2", type=float, metavar="WEIGHT", help="L2 penalty on the latents in phase M")
    parser.add_argument("--scandal", type=float, metavar="WEIGHT",
                        help="SCANDAL score-loss weight (needs t_xz in the data; 0 = off; default 10 when the data carry t_xz)")
    parser.add_argument("--ensemble", type=int, metavar="K",
                        help="train K models with seeds seed, seed+1000, ... into OUT/member_00, ...; inference uses "
                             "the mean of their log-likelihoods (default: the config's, else 1)")
    parser.add_argument("--threads", type=int, help="torch threads (default 1; 0: torch's choice)")
    parser.add_argument("--seed", type=int, help="seed of the initial weights, the split and the batches "
                                                  "(default: the config's, else 0)")
    parser.add_argument("--prior", action="append", metavar="SPEC",
                        help="prior per parameter, uniform(LOW,HIGH) or normal(LOC,SCALE); once per parameter")
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out (with the same "
                                                              "or another number of --workers)")
    parser.add_argument("--workers", type=int, default=1, metavar="K",
                        help="train data-parallel in K local processes (DistributedDataParallel; the same as "
                             "torchrun --nproc-per-node K -m mflow_sbi train ...; default 1)")
    parser.add_argument("--stream", action="store_true", default=None,
                        help="ROOT input: train chunk by chunk (--step-size) without loading the files into memory")
    add_device_argument(parser, "[training] device")
    add_format_arguments(parser)
    parser.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """The config file (or defaults) with command-line flags applied on top."""
    config = load_config(args.config) if args.config else RunConfig()
    if args.model:
        config.model.type = args.model
    if args.latent_dim is not None:
        config.model.latent_dim = args.latent_dim
    overrides = {}
    if args.epochs is not None:
        overrides |= dict.fromkeys(EPOCH_FIELDS, args.epochs)
    flags = {field: getattr(args, flag) for flag, field in TRAINING_FLAGS.items()}
    overrides |= {field: value for field, value in flags.items() if value is not None}
    config.training = dataclasses.replace(config.training, **overrides)
    return config


def run(args: argparse.Namespace) -> int | None:
    from mflow_sbi.training.streaming import StreamedData

    config = config_from_args(args)
    if args.workers < 1:
        raise InputError(f"--workers must be >= 1, got {args.workers}")
    if args.workers > 1:
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise InputError("--workers starts its own processes: leave it out under torchrun (--nproc-per-node)")
        from mflow_sbi.cli.workers import launch
        from mflow_sbi.data.loading import expand_paths

        missing = [str(path) for path in expand_paths(args.data) if not path.is_file()]
        if missing:  # checked before starting the processes, which would each report it
            raise InputError(f"--data: no such file(s): {', '.join(missing)}")
        return launch(args.workers, args.argv)
    if config.training.stream and config.model.preprocessing == "asinh":
        raise InputError("[model] preprocessing = \"asinh\" needs the training data's medians, which streaming "
                         "(--stream, [training] stream) does not compute: train in memory or use \"affine\"")
    fmt = format_from_args(args)
    data = _load(args, config, fmt)
    head = data.head if isinstance(data, StreamedData) else data
    if args.prior:
        head.prior = IndependentPrior.from_specs(args.prior)
    if head.prior is None:
        raise InputError(
            f"{' '.join(args.data)} stores no prior: give one --prior uniform(LOW,HIGH) or normal(LOC,SCALE) "
            "per parameter"
        )
    if config.training.score_weight > 0 and head.t_xz is None:
        raise InputError(f"--scandal needs the joint score: {' '.join(args.data)} has no field 't_xz' (shape (N, p))")
    out = train_from_data(data, config, Path(args.out), resume=args.resume, progress=show_progress(args),
                          event_format=_root_format(args, fmt))
    if os.environ.get("RANK", "0") == "0":
        print(f"model written to {out}")
    return None


def _root_format(args: argparse.Namespace, fmt):
    """The event format ``fmt`` given for ROOT training data (recorded in the model directory), else None."""
    from mflow_sbi.data.event_format import load_format
    from mflow_sbi.data.loading import ROOT_SUFFIX, expand_paths

    is_root = any(path.suffix.lower() == ROOT_SUFFIX for path in expand_paths(args.data))
    return load_format(fmt) if fmt is not None and is_root else None


def _load(args: argparse.Namespace, config: RunConfig, fmt) -> EventData | StreamedData:
    """The training events (ROOT files read with ``fmt``): in memory, or (``--stream`` / ``[training] stream``)
    prepared for streaming."""
    from mflow_sbi.data.loading import ROOT_SUFFIX, expand_paths, load_any
    from mflow_sbi.training.streaming import open_streamed

    if not config.training.stream:
        return load_any(args.data, fmt, require_theta=True, step_size=args.step_size)
    not_root = [str(path) for path in expand_paths(args.data) if path.suffix.lower() != ROOT_SUFFIX]
    if not_root:
        raise InputError(f"streaming (--stream, [training] stream) reads ROOT files only, got {', '.join(not_root)}; "
                         "train on .npz files in memory")
    if config.training.score_weight > 0:
        raise InputError("SCANDAL (--scandal) is not available when streaming: the joint score is not streamed")
    return open_streamed(args.data, fmt, args.step_size, config.training.validation_fraction)
