"""Quick lever measurements for issue 11 (docs/benchmarks.md, "Levers"): one shared phase M, then K phase-D
runs (seeds 100 seed + k) per variant of TrainingConfig options. Posteriors of 20 events observed at each theta
(seeds 1000 + i) on an 801-point theta grid (a 1-D parameter: exact up to the grid, no MCMC noise), 2,000
draws each, MMD^2 to the exact (simulator-likelihood) grid posterior. "ensemble" is the posterior of the mean
of the K members' log-likelihoods (EnsembleLikelihood).

Usage: python -m benchmarks.accuracy_levers N_TRAIN SEED THETAS VARIANTS_JSON [EPOCHS_M] [MANIFOLD_EVENTS] [K]
e.g. python -m benchmarks.accuracy_levers 10000 0 -0.5,0,0.5 '{"base": {}, "ema": {"ema_decay": 0.999}}' 20 0 4
(each variant's options go to TrainingConfig, except ``"inner"``: StackConfig keys of a fresh inner flow that
replaces the trained manifold's default one before phase D; ``"separate_manifolds": true``: member k > 0 trains
its own phase M, seeded seed + 1000 k, instead of sharing the first; ``"chart": "exact"``: the oracle, members are
conditional flows (the AF's defaults) on the simulator's exact latent z, no learned manifold; epochs_d defaults to
40 and patience to 6; the oracle's epochs default to 300, with the AF's early stopping). Besides the K-member
ensemble, ``ensemble_by_size`` has the ensemble of the first 3. One JSON line per variant on stdout. Not run
by ``python -m benchmarks`` (no ``bench_`` prefix).
"""

from __future__ import annotations

import copy
import json
import sys
import time
from dataclasses import replace

import numpy as np
import torch

from benchmarks.bench_accuracy import phase_m
from mflow_sbi.flows import AmbientFlow
from mflow_sbi.flows.architecture import StackConfig
from mflow_sbi.flows.builders import build_stack
from mflow_sbi.inference.likelihood import EnsembleLikelihood, ModelLikelihood, SimulatorLikelihood
from mflow_sbi.inference.metrics import mmd2
from mflow_sbi.simulators import get_simulator
from mflow_sbi.training.algorithms import TrainingConfig, train_model
from mflow_sbi.workflow.train import ENSEMBLE_SEED_STRIDE

GRID = np.linspace(-1, 1, 801)[:, None]


def grid_samples(log_likelihood, n: int = 2000, seed: int = 0) -> np.ndarray:
    """n draws from the grid posterior (flat prior), jittered uniformly within a grid cell."""
    values = log_likelihood(GRID)
    weights = np.exp(values - values.max())
    weights /= weights.sum()
    rng = np.random.default_rng(seed)
    index = rng.choice(len(GRID), n, p=weights)
    return GRID[index] + rng.uniform(-0.5, 0.5, (n, 1)) * (GRID[1, 0] - GRID[0, 0])


def exact_chart_member(simulator, x, theta, seed: int, epochs: int) -> AmbientFlow:
    """The oracle: a conditional flow (the AF's default, trained until validation stops improving) on the exact
    latent z of the training events, i.e. phase D on the true chart instead of a learned one."""
    torch.manual_seed(seed)
    model = AmbientFlow(2, 1, prior=simulator.prior)
    train_model(model, simulator.latent(x), theta, TrainingConfig(algorithm="ml", epochs=epochs, patience=6, threads=1,
                                                                  seed=seed), progress=False)
    return model


def ensemble_cells(members, inputs: list[np.ndarray], exact: list[np.ndarray]) -> list[float]:
    """MMD^2 to the exact grid posterior of the members' mean log-likelihood, per observed set."""
    return [round(mmd2(grid_samples(EnsembleLikelihood([ModelLikelihood(m, o) for m in members]), seed=2), e), 5)
            for o, e in zip(inputs, exact, strict=True)]


def main(argv: list[str]) -> None:
    torch.set_num_threads(1)
    n_train, seed = int(argv[0]), int(argv[1])
    thetas = [float(t) for t in argv[2].split(",")]
    variants = json.loads(argv[3])
    epochs_m = int(argv[4]) if len(argv) > 4 else 20
    manifold_events = int(argv[5]) if len(argv) > 5 else 0
    k_members = int(argv[6]) if len(argv) > 6 else 4
    simulator = get_simulator("polynomial_surface")
    rng = np.random.default_rng(seed)
    theta = simulator.prior.sample(n_train, rng)
    x = simulator.sample(theta, n_train, rng)
    t_xz = simulator.joint_score(x, theta)
    observed = [simulator.sample(np.array([t]), 20, np.random.default_rng(1000 + i)) for i, t in enumerate(thetas)]
    exact = [grid_samples(SimulatorLikelihood(simulator, o), seed=1) for o in observed]
    config_m = TrainingConfig(algorithm="sequential", epochs_m=epochs_m, epochs_d=0, patience=6, threads=1, seed=seed,
                              manifold_events=manifold_events)
    base, _, wall_m = phase_m(simulator, theta, x, config_m)
    print(json.dumps({"phase_m_wall_s": round(wall_m)}), flush=True)
    manifolds = {0: base}
    for name, options in variants.items():
        chart = options.pop("chart", "learned")
        options = {"epochs": 300, "patience": 6, **options} if chart == "exact" else {"epochs_d": 40, "patience": 6,
                                                                                      **options}
        inner = options.pop("inner", None)
        separate = options.pop("separate_manifolds", False)
        members, walls, epochs = [], [], []
        for k in range(k_members):
            began = time.perf_counter()
            if chart == "exact":
                members.append(exact_chart_member(simulator, x, theta, seed * 100 + k, options["epochs"]))
                walls.append(round(time.perf_counter() - began))
                continue
            if separate and k not in manifolds:
                manifolds[k] = phase_m(simulator, theta, x, replace(config_m, seed=seed + ENSEMBLE_SEED_STRIDE * k))[0]
            model = copy.deepcopy(manifolds[k if separate else 0])
            if inner is not None:
                torch.manual_seed(seed * 100 + k)
                model.inner_config = StackConfig(**inner)
                model.inner = build_stack(model.latent_dim, model.parameter_dim, model.inner_config)
            config = TrainingConfig(algorithm="sequential", epochs_m=0, threads=1, seed=seed * 100 + k, **options)
            history = train_model(model, x, theta, config, progress=False, t_xz=t_xz if config.scandal else None)
            walls.append(round(time.perf_counter() - began))
            epochs.append(len(history.records))
            members.append(model)
        inputs = [simulator.latent(o) for o in observed] if chart == "exact" else observed
        single = [ensemble_cells([m], inputs, exact) for m in members]
        by_size = {size: ensemble_cells(members[:size], inputs, exact) for size in sorted({3, k_members})
                   if size <= k_members}
        ensemble = by_size[k_members]
        flat = np.array(single).ravel()
        recorded = options | ({"inner": inner} if inner else {}) | {"separate_manifolds": separate, "chart": chart}
        print(json.dumps({"variant": name, "options": recorded, "n": n_train, "seed": seed, "epochs": epochs,
                          "wall_s": walls, "single_median": round(float(np.median(flat)), 5),
                          "single_max": round(float(flat.max()), 5), "ensemble": ensemble,
                          "ensemble_median": round(float(np.median(ensemble)), 5),
                          "ensemble_by_size": {size: {"median": round(float(np.median(cells)), 5),
                                                      "max": max(cells), "cells": cells}
                                               for size, cells in by_size.items()},
                          "single": single}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
