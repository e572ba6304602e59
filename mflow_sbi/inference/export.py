"""Posterior samples for other tools: CSV, and netCDF laid out like ArviZ's ``posterior`` group.

The kept draws (after burn-in and thinning) are stored as ``samples`` (M, p) step by step with the walkers
inside a step: sample i is draw i // W of walker i % W for W walkers. When the sampler recorded
``n_walkers`` in the posterior's metadata they are reshaped to (chain, draw, p) with one chain per walker,
as ArviZ expects (an ensemble's walkers are its chains); otherwise they form a single chain.

- CSV: a header ``chain,draw,<parameter names...>,log_prob`` and one row per kept draw.
- netCDF (classic format, written with scipy, so no netCDF4/HDF5 dependency): dimensions ``chain`` and
  ``draw``, one variable per parameter (with its LaTeX label as the ``label`` attribute) and ``log_prob``;
  global attributes carry the observed-data fingerprint, the sampler settings and the diagnostics as JSON.
  Read it with ``xarray.open_dataset(path)`` and hand the dataset to ``arviz.convert_to_inference_data``.

:meth:`Posterior.to_arviz` (``mflow_sbi.inference.arviz_tree``) builds the same draws, names, labels and
attributes in memory as an ArviZ data tree.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np

from mflow_sbi.errors import InputError
from mflow_sbi.inference.posterior import Posterior
from mflow_sbi.io import atomic_path

FORMATS = ("netcdf", "csv")


def kept_draws(posterior: Posterior) -> tuple[np.ndarray, np.ndarray]:
    """(draws (chains, n, p), log_prob (chains, n)) of the kept samples; see the module docstring. Samples
    re-weighted across modes (``diagnostics["modes"]["corrected"]``) no longer form per-walker chains and
    are exported as a single chain."""
    walkers = int(posterior.metadata.get("sampler", {}).get("n_walkers") or 1)
    if posterior.n_samples % walkers or posterior.diagnostics.get("modes", {}).get("corrected"):
        walkers = 1
    n = posterior.n_samples // walkers
    draws = posterior.samples.reshape(n, walkers, posterior.dim).transpose(1, 0, 2)
    return draws, posterior.log_prob.reshape(n, walkers).T


def variable_names(posterior: Posterior) -> list[str]:
    """Parameter names made safe for netCDF and CSV headers (letters, digits, underscores), kept unique."""
    names = []
    for name in posterior.parameter_names:
        safe = re.sub(r"\W", "_", name) or "theta"
        if safe[0].isdigit():
            safe = f"p_{safe}"
        while safe in names or safe == "log_prob":
            safe += "_"
        names.append(safe)
    return names


def attributes(posterior: Posterior) -> dict[str, str]:
    """The global attributes of an export: provenance, the observed-data fingerprint, and the sampler settings
    and diagnostics as JSON strings (plain strings, so every netCDF writer stores them)."""
    return {
        "created_by": "mflow-sbi",
        "inference_library": "emcee",
        "observed_fingerprint": str(posterior.metadata.get("observed_fingerprint", "")),
        "sampler": json.dumps(posterior.metadata.get("sampler", {})),
        "diagnostics": json.dumps(posterior.diagnostics),
    }


def to_csv(posterior: Posterior, path: str | os.PathLike) -> Path:
    draws, log_prob = kept_draws(posterior)
    chains, n, _ = draws.shape
    index = np.stack(np.meshgrid(np.arange(chains), np.arange(n), indexing="ij"), axis=-1).reshape(-1, 2)
    table = np.column_stack([index, draws.reshape(-1, posterior.dim), log_prob.reshape(-1)])
    header = ",".join(["chain", "draw", *variable_names(posterior), "log_prob"])
    with atomic_path(path) as tmp:
        np.savetxt(tmp, table, delimiter=",", header=header, comments="", fmt=["%d", "%d"] + ["%.17g"] * (table.shape[1] - 2))
    return Path(path)


def to_netcdf(posterior: Posterior, path: str | os.PathLike) -> Path:
    from scipy.io import netcdf_file

    draws, log_prob = kept_draws(posterior)
    with atomic_path(path) as tmp:
        handle = netcdf_file(tmp, "w", version=2)
        try:
            handle.createDimension("chain", draws.shape[0])
            handle.createDimension("draw", draws.shape[1])
            for k, (name, label) in enumerate(zip(variable_names(posterior), posterior.labels, strict=True)):
                variable = handle.createVariable(name, "d", ("chain", "draw"))
                variable[:] = draws[:, :, k]
                variable.label = label
                variable.parameter_name = posterior.parameter_names[k]
            handle.createVariable("log_prob", "d", ("chain", "draw"))[:] = log_prob
            for key, value in attributes(posterior).items():
                setattr(handle, key, value)
        finally:
            handle.close()
    return Path(path)


def export_posterior(posterior: Posterior, path: str | os.PathLike, fmt: str) -> Path:
    """Write ``posterior`` to ``path`` as ``fmt`` (one of :data:`FORMATS`)."""
    if fmt not in FORMATS:
        raise InputError(f"unknown export format {fmt!r}; available: {', '.join(FORMATS)}")
    return (to_netcdf if fmt == "netcdf" else to_csv)(posterior, path)
