"""A posterior as an ArviZ data tree (``xarray.DataTree``, built with arviz-base, the ``arviz`` extra).

Groups, following ArviZ's conventions (an ensemble's walkers are its chains):

- ``posterior``: one variable per parameter with dimensions (chain, draw): chain k is walker k, draw i its
  i-th kept step (after burn-in and thinning), exactly the draws ``mflow-sbi export --format netcdf`` writes
  (:func:`mflow_sbi.inference.export.kept_draws`, same variable names). Each variable carries its
  ``parameter_name`` and LaTeX ``label`` as attributes.
- ``sample_stats``: ``log_prob`` (chain, draw), the unnormalized log posterior of each draw.
- with ``burn_in=True`` and a stored burn-in, ``warmup_posterior`` and ``warmup_sample_stats``: the same for
  the burn-in steps (not thinned).

The root and the two sample groups carry the export's attributes: the observed-data fingerprint, the sampler
settings and the diagnostics (JSON strings), ``created_by`` and ``inference_library``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mflow_sbi.errors import MissingDependency
from mflow_sbi.inference.export import attributes, kept_draws, variable_names

if TYPE_CHECKING:
    import xarray

    from mflow_sbi.inference.posterior import Posterior

EXTRA_HINT = "Posterior.to_arviz needs arviz-base, the 'arviz' extra: pip install 'mflow-sbi[arviz]'"


def _groups(names: list[str], draws: np.ndarray, log_prob: np.ndarray) -> tuple[dict, dict]:
    """(parameter variables, sample stats) of draws (chains, n, p) and log_prob (chains, n)."""
    return {name: draws[:, :, k] for k, name in enumerate(names)}, {"log_prob": log_prob}


def to_arviz(posterior: Posterior, burn_in: bool = False) -> xarray.DataTree:
    """``posterior`` as an ArviZ data tree; see the module docstring."""
    try:
        import arviz_base
    except ImportError:
        raise MissingDependency(EXTRA_HINT) from None
    names = variable_names(posterior)
    draws, log_prob = kept_draws(posterior)
    data = dict(zip(("posterior", "sample_stats"), _groups(names, draws, log_prob), strict=True))
    with_warmup = burn_in and posterior.burn_in > 0
    if with_warmup:
        warm_log_prob = posterior.burn_in_log_prob
        if warm_log_prob is None:
            warm_log_prob = np.full(posterior.burn_in_chain.shape[:2], np.nan)
        warm = _groups(names, posterior.burn_in_chain.transpose(1, 0, 2), warm_log_prob.T)
        data.update(zip(("warmup_posterior", "warmup_sample_stats"), warm, strict=True))
    attrs = attributes(posterior)
    tree = arviz_base.from_dict(data, save_warmup=with_warmup, attrs={"/": attrs, "posterior": attrs, "sample_stats": attrs})
    for group in ("posterior", "warmup_posterior") if with_warmup else ("posterior",):
        for name, parameter, label in zip(names, posterior.parameter_names, posterior.labels, strict=True):
            tree[group][name].attrs.update(parameter_name=parameter, label=label)
    return tree
