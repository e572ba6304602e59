"""The result of an MCMC run: posterior samples with their provenance, summaries and credible regions.

File layout (``.npz``, written atomically): ``samples`` (M, p), ``log_prob`` (M,) (unnormalized log
posterior of each sample), ``parameter_names`` (p,) (the name data files use; also written as ``param_names``,
the 0.1 name, which is read when ``parameter_names`` is absent), ``labels`` (p,), ``diagnostics`` and ``metadata``
(JSON strings), and optionally the ensemble's kept steps ``chain`` (steps after burn-in, walkers, p, not
thinned) with ``chain_log_prob`` (steps, walkers), and the burn-in stored beside them as ``burn_in_chain``
(burn-in steps, walkers, p) and ``burn_in_log_prob`` (burn-in steps, walkers), for trace plots.

Files written before the burn-in was stored separately have a ``chain`` (and ``chain_log_prob``) that
starts with the burn-in and no ``burn_in_chain``; reading one splits it at the recorded burn-in
(``metadata["sampler"]["burn_in"]``, 0 when absent).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mflow_sbi.errors import DataFileError, InputError
from mflow_sbi.inference.credible import DEFAULT_LEVELS, HPDRegion2D, central_interval, hpd_interval, hpd_region_2d
from mflow_sbi.io import read_npz, save_json, save_npz

if TYPE_CHECKING:
    import xarray

LEGACY_NAMES_KEY = "param_names"  # the key of the parameter names in posterior files of 0.1


def _plain(value):
    """``value`` with numpy scalars and arrays turned into Python numbers and lists (JSON-serializable)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    return value


def _level_key(kind: str, level: float) -> str:
    return f"{kind}_{round(100 * level)}"


def _steps(name: str, chain, log_prob, p: int, walkers: int | None) -> tuple[np.ndarray | None, np.ndarray | None]:
    """``chain`` (steps, walkers, p) and its ``log_prob`` (steps, walkers) as float arrays, shapes checked."""
    if chain is None:
        if log_prob is not None:
            raise InputError(f"the log posterior of {name} given without {name}")
        return None, None
    chain = np.asarray(chain, dtype=np.float64)
    if chain.ndim != 3 or chain.shape[2] != p or (walkers is not None and chain.shape[1] != walkers):
        expected = f"(steps, {'walkers' if walkers is None else walkers}, {p})"
        raise InputError(f"{name} must have shape {expected}, got {chain.shape}")
    if log_prob is not None:
        log_prob = np.asarray(log_prob, dtype=np.float64)
        if log_prob.shape != chain.shape[:2]:
            raise InputError(f"the log posterior of {name} must have shape {chain.shape[:2]}, got {log_prob.shape}")
    return chain, log_prob


def _split_legacy_chain(path: Path, fields: dict, metadata: dict) -> None:
    """Split an old file's ``chain``/``chain_log_prob`` (burn-in included) at the recorded burn-in, in place."""
    burn_in = int(metadata.get("sampler", {}).get("burn_in") or 0)
    if fields["chain"].ndim != 3:
        return  # the constructor names the wrong shape
    steps = fields["chain"].shape[0]
    if burn_in >= steps:
        raise DataFileError(f"{path}: the chain has {steps} steps, not more than its recorded burn-in {burn_in}")
    for key, burn_key in (("chain", "burn_in_chain"), ("chain_log_prob", "burn_in_log_prob")):
        if key in fields:
            fields[burn_key], fields[key] = fields[key][:burn_in], fields[key][burn_in:]


class Posterior:
    """Posterior samples over parameters named ``parameter_names``."""

    def __init__(
        self,
        samples: np.ndarray,
        log_prob: np.ndarray,
        parameter_names: Sequence[str] | None = None,
        labels: Sequence[str] | None = None,
        diagnostics: dict | None = None,
        metadata: dict | None = None,
        chain: np.ndarray | None = None,
        chain_log_prob: np.ndarray | None = None,
        burn_in_chain: np.ndarray | None = None,
        burn_in_log_prob: np.ndarray | None = None,
    ):
        """``chain``/``chain_log_prob``: the kept (post-burn-in) steps of the ensemble; ``burn_in_chain``/
        ``burn_in_log_prob``: the burn-in steps before them (see the module docstring for the shapes)."""
        samples = np.asarray(samples, dtype=np.float64)
        if samples.ndim != 2 or samples.shape[0] < 2:
            raise InputError(f"posterior samples must have shape (M >= 2, p), got {samples.shape}")
        log_prob = np.asarray(log_prob, dtype=np.float64)
        if log_prob.shape != (samples.shape[0],):
            raise InputError(f"log_prob must have shape ({samples.shape[0]},), got {log_prob.shape}")
        p = samples.shape[1]
        names = tuple(parameter_names) if parameter_names is not None else tuple(f"theta_{k}" for k in range(p))
        labels = tuple(labels) if labels is not None else names
        if len(names) != p or len(labels) != p:
            raise InputError(f"need {p} parameter names and labels, got {len(names)} names and {len(labels)} labels")
        chain, chain_log_prob = _steps("chain", chain, chain_log_prob, p, None)
        walkers = None if chain is None else chain.shape[1]
        burn_in_chain, burn_in_log_prob = _steps("burn_in_chain", burn_in_chain, burn_in_log_prob, p, walkers)
        if burn_in_chain is not None and chain is None:
            raise InputError("burn_in_chain given without the kept chain")
        self.samples = samples
        self.log_prob = log_prob
        self.parameter_names = names
        self.labels = labels
        self.diagnostics = _plain(dict(diagnostics or {}))
        self.metadata = _plain(dict(metadata or {}))
        self.chain = chain
        self.chain_log_prob = chain_log_prob
        self.burn_in_chain = burn_in_chain
        self.burn_in_log_prob = burn_in_log_prob

    @property
    def n_samples(self) -> int:
        return self.samples.shape[0]

    @property
    def dim(self) -> int:
        return self.samples.shape[1]

    @property
    def nuisance_names(self) -> tuple[str, ...]:
        """The nuisance parameters among ``parameter_names`` (``metadata["nuisance_parameters"]``, set by ``infer``
        and ``run`` from the simulator that made the training data)."""
        return tuple(name for name in self.metadata.get("nuisance_parameters", ()) if name in self.parameter_names)

    def select(self, names: Sequence[str]) -> Posterior:
        """The marginal posterior of the parameters ``names`` (their columns of the samples, the kept chain and the
        burn-in; the log_prob stays that of the full posterior at each sample)."""
        missing = [name for name in names if name not in self.parameter_names]
        if missing or not names:
            raise InputError(f"no parameter(s) {missing} in this posterior (parameters: {', '.join(self.parameter_names)})")
        index = [self.parameter_names.index(name) for name in names]
        per_parameter = ("autocorrelation_time", "effective_sample_size", "split_rhat")
        diagnostics = {key: ([value[k] for k in index] if key in per_parameter and isinstance(value, list) else value)
                       for key, value in self.diagnostics.items()}
        return Posterior(self.samples[:, index], self.log_prob, [self.parameter_names[k] for k in index],
                         [self.labels[k] for k in index], diagnostics, self.metadata,
                         None if self.chain is None else self.chain[:, :, index], self.chain_log_prob,
                         None if self.burn_in_chain is None else self.burn_in_chain[:, :, index], self.burn_in_log_prob)

    def of_interest(self) -> Posterior:
        """The marginal posterior of the parameters of interest (all but :attr:`nuisance_names`): nuisance
        parameters marginalized by dropping their columns."""
        if not self.nuisance_names:
            return self
        return self.select([name for name in self.parameter_names if name not in self.nuisance_names])

    @property
    def map_estimate(self) -> np.ndarray:
        """The sample with the highest log posterior."""
        return self.samples[int(np.argmax(self.log_prob))]

    @property
    def burn_in(self) -> int:
        """Number of stored burn-in steps (0 without a stored burn-in)."""
        return 0 if self.burn_in_chain is None else self.burn_in_chain.shape[0]

    def full_chain(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        """(burn-in then kept steps (steps, walkers, p), their log posterior (steps, walkers) or None)."""
        if self.chain is None or self.burn_in_chain is None:
            return self.chain, self.chain_log_prob
        log_prob = None
        if self.chain_log_prob is not None and self.burn_in_log_prob is not None:
            log_prob = np.concatenate([self.burn_in_log_prob, self.chain_log_prob])
        return np.concatenate([self.burn_in_chain, self.chain]), log_prob

    # --- persistence ------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        arrays = {
            "samples": self.samples,
            "log_prob": self.log_prob,
            "parameter_names": np.array(self.parameter_names),
            LEGACY_NAMES_KEY: np.array(self.parameter_names),
            "labels": np.array(self.labels),
            "diagnostics": np.array(json.dumps(self.diagnostics)),
            "metadata": np.array(json.dumps(self.metadata)),
        }
        if self.chain is not None:  # a burn_in_chain key, empty without a burn-in, marks the kept-steps layout
            arrays["chain"] = self.chain
            arrays["burn_in_chain"] = self.burn_in_chain if self.burn_in_chain is not None else self.chain[:0]
        optional = {"chain_log_prob": self.chain_log_prob, "burn_in_log_prob": self.burn_in_log_prob}
        arrays.update({key: value for key, value in optional.items() if value is not None})
        return save_npz(path, **arrays)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Posterior:
        path = Path(path)
        fields = read_npz(path)
        missing = [key for key in ("samples", "log_prob") if key not in fields]
        if missing:
            raise DataFileError(f"{path}: not a posterior file, missing {missing}; found {sorted(fields)}")

        def strings(key: str) -> tuple[str, ...] | None:
            return tuple(str(s) for s in fields[key]) if key in fields else None

        def mapping(key: str) -> dict:
            return json.loads(str(fields[key])) if key in fields else {}

        metadata = mapping("metadata")
        if "chain" in fields and "burn_in_chain" not in fields:
            _split_legacy_chain(path, fields, metadata)
        try:
            return cls(
                fields["samples"], fields["log_prob"], strings("parameter_names") or strings(LEGACY_NAMES_KEY), strings("labels"),
                mapping("diagnostics"), metadata, fields.get("chain"), fields.get("chain_log_prob"),
                fields.get("burn_in_chain"), fields.get("burn_in_log_prob"),
            )
        except InputError as err:
            raise DataFileError(f"{path}: {err}") from None

    # --- other tools --------------------------------------------------------------------------------
    def to_arviz(self, burn_in: bool = False) -> xarray.DataTree:
        """The posterior as an ArviZ data tree (groups ``posterior`` with chain = walker and draw dimensions after
        burn-in, ``sample_stats`` with ``log_prob``; with ``burn_in`` also the burn-in as ArviZ's warm-up groups),
        the observed-data fingerprint and sampler settings as attributes: see
        :mod:`mflow_sbi.inference.arviz_tree`. Needs the ``arviz`` extra (arviz-base); without it raises
        :class:`~mflow_sbi.errors.MissingDependency` naming the extra."""
        from mflow_sbi.inference.arviz_tree import to_arviz

        return to_arviz(self, burn_in)

    # --- summaries --------------------------------------------------------------------------------
    def parameter_summary(self, k: int, levels: Sequence[float] = DEFAULT_LEVELS) -> dict:
        column = self.samples[:, k]
        entry = {
            "mean": float(column.mean()),
            "median": float(np.median(column)),
            "std": float(column.std(ddof=1)),
            "map": float(self.map_estimate[k]),
        }
        for level in levels:
            entry[_level_key("central", level)] = list(central_interval(column, level))
        for level in levels:
            entry[_level_key("hpd", level)] = list(hpd_interval(column, level))
        return entry

    def summary(self, levels: Sequence[float] = DEFAULT_LEVELS, show_nuisance: bool = False) -> dict:
        """JSON-serializable summary: per-parameter statistics and intervals, sampler diagnostics. Nuisance
        parameters are listed under ``nuisance_parameters`` (and, with ``show_nuisance``, under ``parameters`` too);
        ``parameters`` holds the parameters of interest."""
        shown = [name for name in self.parameter_names if show_nuisance or name not in self.nuisance_names]
        result: dict = {
            "n_samples": self.n_samples,
            "parameters": {name: self.parameter_summary(self.parameter_names.index(name), levels) for name in shown},
        }
        if self.nuisance_names:
            result["nuisance_parameters"] = {name: self.parameter_summary(self.parameter_names.index(name), levels)
                                             for name in self.nuisance_names}
        per_parameter = ("autocorrelation_time", "effective_sample_size", "split_rhat")
        for key in ("acceptance_fraction", *per_parameter, "stuck_walkers", "warnings"):
            if key in self.diagnostics:
                value = self.diagnostics[key]
                result[key] = dict(zip(self.parameter_names, value, strict=True)) if key in per_parameter else value
        if self.metadata:
            result["metadata"] = self.metadata
        return result

    def save_summary(self, path: str | os.PathLike, levels: Sequence[float] = DEFAULT_LEVELS) -> Path:
        return save_json(path, self.summary(levels))

    def format_summary(self, levels: Sequence[float] = DEFAULT_LEVELS, show_nuisance: bool = False) -> str:
        """A human-readable table of the summary (the parameters of interest; all with ``show_nuisance``)."""
        summary = self.summary(levels, show_nuisance)
        interval_keys = [_level_key(kind, lv) for kind in ("central", "hpd") for lv in levels]
        header = f"{'parameter':<14}{'mean':>11}{'std':>11}{'MAP':>11}" + "".join(f"{k:>24}" for k in interval_keys)
        lines = [f"posterior: {summary['n_samples']} samples", header]
        for name, entry in summary["parameters"].items():
            row = f"{name:<14}{entry['mean']:>11.4g}{entry['std']:>11.4g}{entry['map']:>11.4g}"
            row += "".join(f"{'[' + f'{lo:.4g}, {hi:.4g}' + ']':>24}" for lo, hi in (entry[k] for k in interval_keys))
            lines.append(row)
        hidden = [name for name in self.nuisance_names if name not in summary["parameters"]]
        if hidden:
            lines.append(f"nuisance parameters (marginalized, not shown): {', '.join(hidden)}")
        burn_in = format_burn_in(summary.get("metadata", {}).get("sampler"))
        if burn_in:
            lines.append(burn_in)
        if "acceptance_fraction" in summary:
            lines.append(f"acceptance fraction: {summary['acceptance_fraction']:.3f}")
        for key, title in (("autocorrelation_time", "autocorrelation time"), ("effective_sample_size", "ESS"),
                           ("split_rhat", "split-R-hat")):
            if key in summary:
                lines.append(f"{title}: " + ", ".join(f"{n}={v:.4g}" for n, v in summary[key].items()))
        rate = summary.get("metadata", {}).get("rate")
        if isinstance(rate, dict):
            lines.append(format_rate(rate))
        check = summary.get("metadata", {}).get("misspecification")
        if isinstance(check, dict):
            line = format_misspecification(check)
            lines.append(f"WARNING: {line}" if check.get("flagged") else line)
        spread = summary.get("metadata", {}).get("ensemble")
        if isinstance(spread, dict):
            lines.append(format_ensemble_spread(spread))
        lines.extend(f"WARNING: {w}" for w in summary.get("warnings", []))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format_summary()

    # --- regions ----------------------------------------------------------------------------------
    def hpd_region(self, i: int, j: int, level: float, rng: np.random.Generator | None = None) -> HPDRegion2D:
        """2-D HPD region of parameters (i, j) at credibility ``level`` (KDE based, see credible.py)."""
        return hpd_region_2d(self.samples, level, (i, j), rng=rng)


def format_burn_in(sampler: dict | None) -> str | None:
    """One line on the burn-in an emcee run used (``metadata["sampler"]``), or None when it is not recorded."""
    if not isinstance(sampler, dict) or "burn_in_used" not in sampler:
        return None
    used, longest = sampler["burn_in_used"], sampler.get("burn_in")
    if sampler.get("adaptive_burn_in") and longest is not None and used < longest:
        return f"burn-in: {used} steps (the chain had settled; at most {longest})"
    return f"burn-in: {used} steps"


def format_rate(rate: dict) -> str:
    """One line naming the rate term of an extended likelihood (``metadata["rate"]``), or that none was used."""
    if rate.get("source", "none") == "none":
        return "rate: none (shape-only likelihood)"
    return (f"rate: {rate['source']} (extended likelihood, luminosity {rate.get('luminosity')}, "
            f"n_observed {rate.get('n_observed')})")


def format_ensemble_spread(record: dict) -> str:
    """One line naming how much an ensemble's members disagree (``metadata["ensemble"]``, see
    :mod:`mflow_sbi.inference.ensemble_spread`): the sd of their posterior means per parameter."""
    errors = record.get("standard_error_of_mean", {})
    spreads = ", ".join(f"{name} {value:.3g}" + (f" (of their average: {errors[name]:.3g})" if name in errors else "")
                        for name, value in record["spread_of_means"].items())
    line = f"ensemble of {record['size']} models: sd of the members' posterior means: {spreads}"
    return line + (f" (WARNING: {record['warning']})" if "warning" in record else "")


def format_misspecification(record: dict) -> str:
    """One line naming the result of the misspecification check (``metadata["misspecification"]``, see
    :mod:`mflow_sbi.inference.misspecification`)."""
    verdict = "FLAGGED, the data do not look like the simulation" if record.get("flagged") else "passed"
    return (f"misspecification check: {verdict} (p = {record['p_value']:.3g}; "
            f"{100 * record['fraction_beyond']:.2f}% of events beyond the 99.9% validation quantiles, "
            f"{100 * record['expected_fraction']:.2f}% expected)")
