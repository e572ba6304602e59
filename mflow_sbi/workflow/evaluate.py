"""The evaluate step: figures of merit of a trained model on held-out events.

For events (x_i, theta_i), i = 1..N:

- ``nll``: -1/N sum_i log p(x_i | theta_i) in the model's default density mode (for M-flows the density
  on the learned manifold of the projection of x_i, so it is comparable between models on the same
  manifold only);
- for models with a learned manifold, ``reconstruction_error`` = 1/N sum_i |x_i - g(g^-1(x_i))|^2 and
  the distribution (mean, median, 99% quantile) of the distance |x_i - g(g^-1(x_i))| of each event to the
  learned manifold (large values flag events the model has not seen the like of; ``infer`` turns the same
  distance into its misspecification check, :mod:`mflow_sbi.inference.misspecification`), and the distribution of
  the condition number of the decoder's J^T J at those events (``metric_condition_number``; a warning when it
  exceeds ``ILL_CONDITIONED`` = 1e8, where the volume term -1/2 log det J^T J loses accuracy in float32);
- generated samples x ~ p(x | theta_i), one per event: their mean distance to the simulator's true
  manifold (``distance_to_manifold``, the paper's closure figure; for the LHC simulator a summary of the
  constraint violations) when the data record a simulator, and the same figure of the held-out events
  themselves as the floor it is compared with.

For an ensemble (:mod:`mflow_sbi.flows.ensemble`) the NLL is that of the mean log-density, the manifold figures
are member 0's and the generated samples come from the mixture of the members (``ensemble_size`` records K).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mflow_sbi.data.datasets import EventData
from mflow_sbi.devices import DEFAULT_DEVICE
from mflow_sbi.errors import InputError

SAMPLE_SEED = 0


def _distribution(values: np.ndarray) -> dict:
    return {"mean": float(values.mean()), "median": float(np.median(values)), "q99": float(np.quantile(values, 0.99))}


def evaluate_model(model_dir: str | Path, data: EventData, seed: int = SAMPLE_SEED, device: str = DEFAULT_DEVICE) -> dict:
    """The figures of the module docstring for the model in ``model_dir`` on ``data`` (which need theta), with the
    model on ``device`` (:mod:`mflow_sbi.devices`; the samples' noise is drawn on the CPU from ``seed``)."""
    import torch

    from mflow_sbi.flows import load_model
    from mflow_sbi.flows.ensemble import representative
    from mflow_sbi.flows.jacobian import ILL_CONDITIONED
    from mflow_sbi.inference.misspecification import distance_to_learned_manifold, has_learned_manifold

    if data.theta is None:
        raise InputError("evaluation needs the parameter point of every event (a 'theta' field)")
    model = load_model(model_dir, device)
    if data.x.shape[1] != model.data_dim or data.theta.shape[1] != model.parameter_dim:
        raise InputError(f"events have dimension {data.x.shape[1]} and {data.theta.shape[1]} parameter(s); the model "
                         f"in {model_dir} expects {model.data_dim} and {model.parameter_dim}")
    result: dict = {"model_dir": str(model_dir), "n_events": len(data.x), "model_type": model.model_type}
    manifold, _ = representative(model, model_dir)
    if manifold is not model:
        result["ensemble_size"] = len(model)
    with torch.no_grad():
        result["nll"] = -float(model.log_prob(data.x, data.theta).mean())
        if has_learned_manifold(manifold):
            distance = distance_to_learned_manifold(manifold, data.x, data.theta)
            result["reconstruction_error"] = float((distance**2).mean())
            result["distance_to_learned_manifold"] = _distribution(distance)
            condition = manifold.metric_condition(data.x).cpu().numpy()
            result["metric_condition_number"] = _distribution(condition)
            ill = int(np.sum(~(condition <= ILL_CONDITIONED)))
            if ill:
                result.setdefault("warnings", []).append(
                    f"J^T J of the decoder is ill-conditioned (condition number > {ILL_CONDITIONED:.0e}) at {ill} of "
                    f"{len(condition)} events (largest {np.max(condition):.3g}): the manifold density's volume term is "
                    "unreliable there")
        generated = model.sample(data.theta, len(data.x), torch.Generator().manual_seed(seed)).double().cpu().numpy()
    if data.simulator is not None:
        from mflow_sbi.simulators import get_simulator

        simulator = get_simulator(data.simulator, **(data.simulator_options or {}))
        result["simulator"] = data.simulator
        if simulator.data_dim != data.x.shape[1]:  # e.g. read with another event format than the simulator's
            result.setdefault("warnings", []).append(
                f"the events have {data.x.shape[1]} observables, simulator '{data.simulator}' (options "
                f"{data.simulator_options or {}}) has {simulator.data_dim}: no distances to its true manifold")
            return result
        result["generated_distance_to_true_manifold"] = _distribution(simulator.distance_to_manifold(generated))
        result["data_distance_to_true_manifold"] = _distribution(simulator.distance_to_manifold(data.x))
    return result


def format_evaluation(result: dict) -> str:
    lines = [f"{result['model_type']} in {result['model_dir']} on {result['n_events']} events"]
    if "ensemble_size" in result:
        lines.append(f"  ensemble of {result['ensemble_size']} models: NLL of the mean log-density; manifold rows "
                     "and generated samples: member 0 and the mixture of the members")
    lines.append(f"  held-out NLL                              {result['nll']:.5g}")
    if "reconstruction_error" in result:
        d = result["distance_to_learned_manifold"]
        lines.append(f"  reconstruction error (mean squared)       {result['reconstruction_error']:.5g}")
        lines.append(f"  distance to the learned manifold          mean {d['mean']:.4g}, median {d['median']:.4g}, "
                     f"99% {d['q99']:.4g}")
    if "metric_condition_number" in result:
        c = result["metric_condition_number"]
        lines.append(f"  condition number of J^T J                 median {c['median']:.3g}, 99% {c['q99']:.3g}")
    if "generated_distance_to_true_manifold" in result:
        g, f = result["generated_distance_to_true_manifold"], result["data_distance_to_true_manifold"]
        lines.append(f"  generated samples: distance to the true manifold ({result['simulator']}) mean {g['mean']:.4g}, "
                     f"median {g['median']:.4g} (the events themselves: {f['mean']:.4g})")
    lines += [f"  warning: {message}" for message in result.get("warnings", [])]
    return "\n".join(lines)
