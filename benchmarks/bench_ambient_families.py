"""AF stack families by data dimension: held-out log-likelihood of ``ambient_transform = "coupling"`` vs ``"maf"``.

For each case, ``--n-train`` simulations (theta from the prior, seed ``--seed``) train both families with the
same training settings from the same initial seed, once per ``--budgets`` entry (``TrainingConfig`` defaults
with ``epochs`` = N, or unset, "default": for the AF up to ``AMBIENT_EPOCHS``; early stopping after 6 epochs
without improvement, best weights restored); ``--n-test`` more (seed + 1) give the
held-out mean log q(x|theta), next to the exact mean log p(x|theta) where the simulator has it. Cases: SLCP
with 1, 2, 4 and 8 draws (d = 2, 4, 8, 16; full-dimensional data) and the polynomial surface (d = 3, data on a
2-D surface). The ``"auto"`` rule of :mod:`mflow_sbi.flows.ambient` is read off these numbers and the SLCP
posterior benchmark (``bench_slcp``). Results: ``benchmarks/results/ambient_families.json``.
Usage: ``python -m benchmarks.bench_ambient_families [--n-train 5000] [--budgets 30 default] [--cases ...]``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.bench_posterior import machine
from mflow_sbi.flows import AmbientFlow
from mflow_sbi.io import save_json
from mflow_sbi.simulators import get_simulator
from mflow_sbi.training.algorithms import TrainingConfig, train_model

RESULTS = Path(__file__).resolve().parent / "results" / "ambient_families.json"
CASES = {"slcp_d2": ("slcp", {"n_draws": 1}), "polynomial_surface_d3": ("polynomial_surface", {}),
         "slcp_d4": ("slcp", {"n_draws": 2}), "slcp_d8": ("slcp", {}), "slcp_d16": ("slcp", {"n_draws": 8})}


def budget_name(epochs: int | None) -> str:
    """The results key of an epoch budget: "default" (``TrainingConfig``'s, for the AF up to AMBIENT_EPOCHS) or
    "epochs_N"."""
    return "default" if epochs is None else f"epochs_{epochs}"


def run_case(name: str, args) -> dict:
    simulator_name, options = CASES[name]
    simulator = get_simulator(simulator_name, **options)
    rng, test_rng = np.random.default_rng(args.seed), np.random.default_rng(args.seed + 1)
    theta, theta_test = simulator.prior.sample(args.n_train, rng), simulator.prior.sample(args.n_test, test_rng)
    x, x_test = simulator.sample(theta, args.n_train, rng), simulator.sample(theta_test, args.n_test, test_rng)
    entry = {"simulator": simulator_name, "options": options, "data_dim": simulator.data_dim,
             "exact": round(float(simulator.log_likelihood(x_test, theta_test).mean()), 4)}
    for epochs in args.budgets:
        budget = entry.setdefault(budget_name(epochs), {})
        for family in ("coupling", "maf"):
            torch.manual_seed(args.seed)
            model = AmbientFlow(simulator.data_dim, theta.shape[1], ambient_transform=family)
            began = time.perf_counter()
            history = train_model(model, x, theta, TrainingConfig(algorithm="ml", epochs=epochs, seed=args.seed),
                                  progress=False)
            with torch.no_grad():
                held_out = model.log_prob(torch.as_tensor(x_test, dtype=torch.float32),
                                          torch.as_tensor(theta_test, dtype=torch.float32)).double().mean()
            budget[family] = {"held_out_log_likelihood": round(float(held_out), 4), "epochs_run": len(history.records),
                              "training_wall_s": round(time.perf_counter() - began, 1)}
            print(name, budget_name(epochs), family, budget[family], flush=True)
        budget["maf_minus_coupling"] = round(budget["maf"]["held_out_log_likelihood"]
                                             - budget["coupling"]["held_out_log_likelihood"], 4)
    return entry


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, default=5000)
    parser.add_argument("--n-test", type=int, default=2000)
    parser.add_argument("--budgets", type=lambda v: None if v == "default" else int(v), nargs="+", default=[None],
                        help="epoch budgets, each trained for both families: N epochs, or 'default' (TrainingConfig's: "
                             "for the AF up to AMBIENT_EPOCHS, early stopping); e.g. --budgets 30 default")
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    results = {"setting": {"n_train": args.n_train, "n_test": args.n_test, "budgets": [budget_name(e) for e in args.budgets],
                           "default_epoch_cap": TrainingConfig().epochs_for(ambient=True), "seed": args.seed},
               "cases": {}}
    for name in args.cases:
        results["cases"][name] = run_case(name, args)
        results["machine"] = machine()
        save_json(args.out, results)
    for name, entry in results["cases"].items():
        for budget in map(budget_name, args.budgets):
            values = entry[budget]
            print(f"| {name} | {entry['data_dim']} | {budget} | {entry['exact']} "
                  f"| {values['coupling']['held_out_log_likelihood']} ({values['coupling']['epochs_run']}) "
                  f"| {values['maf']['held_out_log_likelihood']} ({values['maf']['epochs_run']}) "
                  f"| {values['maf_minus_coupling']} |")
    return results


if __name__ == "__main__":
    main()
