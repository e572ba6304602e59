"""``mflow-sbi evaluate MODEL_DIR --data FILE``: figures of merit of a trained model on held-out events."""

from __future__ import annotations

import argparse

from mflow_sbi.cli.options import add_device_argument, examples


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate", help="held-out NLL, reconstruction error, distance of generated samples to the true manifold",
        description="Evaluate a trained model on held-out events; see mflow_sbi.workflow.evaluate for the figures.",
        **examples("mflow-sbi simulate polynomial_surface --n 2000 --from-prior --seed 9 --out test.npz",
                   "mflow-sbi evaluate model --data test.npz", "mflow-sbi evaluate model --data test.npz --out eval.json"))
    parser.add_argument("model_dir", metavar="MODEL_DIR", help="model directory written by `mflow-sbi train`")
    parser.add_argument("--data", required=True, help="held-out events (.npz with x and theta)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated samples (default 0)")
    parser.add_argument("--out", help="also write the figures as JSON to this file")
    add_device_argument(parser, "[inference] device")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from mflow_sbi.data.datasets import load_events
    from mflow_sbi.inference.settings import InferenceConfig
    from mflow_sbi.io import save_json
    from mflow_sbi.workflow.evaluate import evaluate_model, format_evaluation

    device = InferenceConfig.device if args.device is None else args.device
    result = evaluate_model(args.model_dir, load_events(args.data), seed=args.seed, device=device)
    print(format_evaluation(result))
    if args.out:
        print(f"written to {save_json(args.out, result)}")
