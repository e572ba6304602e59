"""Plots of posteriors, MCMC diagnostics and calibration, written atomically as image files.

Figures are built on ``matplotlib.figure.Figure`` objects directly (no pyplot state, no GUI backend), so
plotting works headless and leaves the caller's matplotlib configuration alone.

- ``corner_plot``: 1-D and 2-D marginals of one or several posteriors (overlaid, with a legend), 2-D HPD
  contours at the given credibility levels (corner's histogram-based HPD levels; the levels are passed
  explicitly because corner's defaults are 2-D sigmas), 1-D HPD intervals shaded, true values marked.
- ``trace_plot`` / ``autocorrelation_plot``: MCMC diagnostics from the stored ensemble chain.
- ``sbc_plot``: histograms of SBC ranks with the 99% band expected for uniform ranks (binomial counts).
- ``coverage_plot``: expected coverage of the HPD regions versus credibility level, with the diagonal.
- ``limits_plot``: the profile likelihood ratio q of ``mflow-sbi limits``: per parameter of interest the 1-D
  profile q_j with the Wilks (1 dof) lines, and for two parameters the q map with the joint (2 dof) contours.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import corner
import numpy as np
from emcee.autocorr import function_1d
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from scipy.stats import binom

from mflow_sbi.errors import InputError
from mflow_sbi.inference.calibration import RANK_BINS, CalibrationResult
from mflow_sbi.inference.credible import DEFAULT_LEVELS, hpd_interval
from mflow_sbi.inference.limits import LimitResult, wilks_threshold
from mflow_sbi.inference.posterior import Posterior
from mflow_sbi.io import atomic_path

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")
SHADE_ALPHA = {0: 0.25, 1: 0.12}


def _save(fig: Figure, path: str | os.PathLike) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
    return Path(path)


def _as_posteriors(posteriors) -> list[Posterior]:
    items = [posteriors] if isinstance(posteriors, Posterior | np.ndarray) else list(posteriors)
    if not items:
        raise InputError("corner_plot needs at least one posterior")
    result = [p if isinstance(p, Posterior) else Posterior(p, np.zeros(len(p))) for p in items]
    dims = {p.dim for p in result}
    if len(dims) != 1:
        raise InputError(f"posteriors to overlay must have the same number of parameters, got {sorted(dims)}")
    return result


def _common_range(posteriors: list[Posterior], truth: np.ndarray | None) -> list[tuple[float, float]]:
    stacked = np.concatenate([p.samples for p in posteriors])
    low, high = np.quantile(stacked, 0.0005, axis=0), np.quantile(stacked, 0.9995, axis=0)
    if truth is not None:
        low, high = np.minimum(low, truth), np.maximum(high, truth)
    pad = 0.05 * np.maximum(high - low, 1e-12)
    return [(float(a), float(b)) for a, b in zip(low - pad, high + pad, strict=True)]


def _mark_truth(grid: np.ndarray, truth: np.ndarray) -> None:
    """Lines at the true values on every panel of the lower triangle, and a marker on the 2-D panels."""
    for i in range(len(truth)):
        for j in range(i + 1):
            grid[i, j].axvline(truth[j], color="black", lw=1)
            if i != j:
                grid[i, j].axhline(truth[i], color="black", lw=1)
                grid[i, j].plot(truth[j], truth[i], "s", color="black", ms=4)


def corner_figure(
    posteriors,
    truth: Sequence[float] | None = None,
    labels: Sequence[str] | None = None,
    names: Sequence[str] | None = None,
    levels: Sequence[float] = DEFAULT_LEVELS,
    titles: bool = False,
) -> Figure:
    """The figure of :func:`corner_plot`; its axes are ``fig.axes`` in row-major p x p order. Every figure has
    a legend (the posteriors' ``names``, else "posterior", and the truth) and a note saying what the shading
    and the contours are; ``titles`` puts median and 16%/84% quantiles of the first posterior above each
    marginal."""
    items = _as_posteriors(posteriors)
    p = items[0].dim
    truth_arr = None if truth is None else np.asarray(truth, dtype=np.float64)
    if truth_arr is not None and truth_arr.shape != (p,):
        raise InputError(f"truth must have {p} value(s), got {truth_arr.size}")
    labels = list(labels) if labels is not None else list(items[0].labels)
    if len(labels) != p:
        raise InputError(f"need {p} labels, got {len(labels)}")
    if names is not None and len(names) != len(items):
        raise InputError(f"need one name per posterior ({len(items)}), got {len(names)}")
    side = 2.0 * p + 0.1 * (p - 1) + 1.4
    fig = Figure(figsize=(side, side))
    ranges = _common_range(items, truth_arr)
    grid = np.array(fig.subplots(p, p, squeeze=False))
    for k, posterior in enumerate(items):
        color = COLORS[k % len(COLORS)]
        corner.corner(
            posterior.samples, fig=fig, range=ranges, labels=labels, levels=tuple(levels), color=color,
            plot_datapoints=False, plot_density=False, fill_contours=False, smooth=1.0, bins=40,
            hist_kwargs={"density": True, "color": color},
        )
        for j in range(p):
            for rank, level in enumerate(sorted(levels)):
                low, high = hpd_interval(posterior.samples[:, j], level)
                grid[j, j].axvspan(low, high, color=color, alpha=SHADE_ALPHA.get(rank, 0.08), lw=0)
    if truth_arr is not None:
        _mark_truth(grid, truth_arr)
    if titles:
        for j in range(p):
            low, median, high = np.quantile(items[0].samples[:, j], [0.16, 0.5, 0.84])
            grid[j, j].set_title(f"{labels[j]} = ${median:.3g}^{{+{high - median:.2g}}}_{{-{median - low:.2g}}}$",
                                 fontsize=9)
    if names is None:
        names = ["posterior"] if len(items) == 1 else [f"posterior {k + 1}" for k in range(len(items))]
    handles = [Line2D([], [], color=COLORS[k % len(COLORS)], label=n) for k, n in enumerate(names)]
    if truth_arr is not None:
        handles.append(Line2D([], [], color="black", label="truth"))
    if p == 1:  # a single panel: the legend goes beside it (the saved figure is cropped to fit)
        fig.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    else:  # the empty upper triangle holds it
        fig.legend(handles=handles, loc="upper right", frameon=False)
    percent = "/".join(f"{100 * level:g}%" for level in sorted(levels))
    note = f"shading: {percent} HPD intervals" + ("" if p == 1 else f"; contours: {percent} credible regions")
    fig.text(0.5, -0.02 if p == 1 else 0.005, note, ha="center", va="top" if p == 1 else "bottom", fontsize=8)
    return fig


def corner_plot(
    posteriors,
    path: str | os.PathLike,
    truth: Sequence[float] | None = None,
    labels: Sequence[str] | None = None,
    names: Sequence[str] | None = None,
    levels: Sequence[float] = DEFAULT_LEVELS,
    titles: bool = False,
) -> Path:
    """Corner plot of one posterior or several overlaid (``names`` label them in a legend), saved to ``path``.

    ``posteriors``: a Posterior, an (M, p) array, or a sequence of them. ``truth``: p true values to mark.
    ``titles``: median and 16%/84% quantiles above each marginal (see :func:`corner_figure`).
    """
    return _save(corner_figure(posteriors, truth, labels, names, levels, titles), path)


def _require_chain(posterior: Posterior) -> None:
    if posterior.chain is None:
        raise InputError("this posterior has no stored chain (needed for trace/autocorrelation plots)")


def trace_plot(posterior: Posterior, path: str | os.PathLike) -> Path:
    """Every walker's trajectory per parameter (and log posterior), burn-in included and marked."""
    _require_chain(posterior)
    chain, chain_log_prob = posterior.full_chain()
    rows = chain.shape[2] + (chain_log_prob is not None)
    fig = Figure(figsize=(8, 1.8 * rows))
    axes = fig.subplots(rows, 1, sharex=True, squeeze=False)[:, 0]
    series = [chain[:, :, j] for j in range(chain.shape[2])]
    titles = list(posterior.labels)
    if chain_log_prob is not None:
        series.append(chain_log_prob)
        titles.append("log posterior")
    burn_in = posterior.burn_in
    alpha = float(np.clip(4.0 / chain.shape[1], 0.05, 0.6))
    for ax, values, title in zip(axes, series, titles, strict=True):
        ax.plot(values, color="k", alpha=alpha, lw=0.6)
        ax.set_ylabel(title)
        if burn_in:
            ax.axvline(burn_in, color="C3", ls="--", lw=1)
        settled = values[burn_in:]
        low, high = np.quantile(settled[np.isfinite(settled)], [0.001, 1.0])
        pad = 0.1 * max(high - low, 1e-12)
        ax.set_ylim(low - pad, high + pad)  # the post-burn-in range: early excursions would flatten the view
    axes[-1].set_xlabel("step")
    return _save(fig, path)


def autocorrelation_plot(posterior: Posterior, path: str | os.PathLike, max_lag: int | None = None) -> Path:
    """Walker-averaged normalized autocorrelation function per parameter, with the estimated tau marked."""
    _require_chain(posterior)
    chain = posterior.chain
    max_lag = min(chain.shape[0] - 1, max_lag or chain.shape[0] // 4)
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    taus = posterior.diagnostics.get("autocorrelation_time")
    for j, label in enumerate(posterior.labels):
        acf = np.mean([function_1d(chain[:, w, j]) for w in range(chain.shape[1])], axis=0)
        ax.plot(np.arange(max_lag + 1), acf[: max_lag + 1], color=COLORS[j % len(COLORS)], label=label)
        if taus is not None:
            ax.axvline(taus[j], color=COLORS[j % len(COLORS)], ls=":", lw=1)
    ax.axhline(0.0, color="grey", lw=0.8)
    ax.set_xlabel("lag (steps)")
    ax.set_ylabel("autocorrelation")
    ax.legend(frameon=False)
    return _save(fig, path)


def sbc_plot(result: CalibrationResult, path: str | os.PathLike, bins: int = RANK_BINS) -> Path:
    """Rank histograms (one panel per parameter) with the 99% band of uniform binomial bin counts."""
    p = len(result.parameter_names)
    bins = min(bins, result.n_rank_samples + 1)
    fig = Figure(figsize=(3.5 * p, 3.0))
    axes = np.atleast_1d(fig.subplots(1, p))
    edges = np.linspace(0, result.n_rank_samples + 1, bins + 1)
    band = binom.ppf([0.005, 0.995], result.n_datasets, 1.0 / bins)
    for j, ax in enumerate(axes):
        ax.axhspan(band[0], band[1], color="grey", alpha=0.3, lw=0, label="99% band (uniform)")
        ax.axhline(result.n_datasets / bins, color="grey", lw=1)
        ax.hist(result.ranks[:, j], bins=edges, histtype="step", color=COLORS[0], lw=1.5)
        ax.set_xlabel(f"rank of {result.parameter_names[j]}")
    axes[0].set_ylabel("data sets")
    axes[0].legend(frameon=False, fontsize="small")
    return _save(fig, path)


def coverage_plot(result: CalibrationResult, path: str | os.PathLike) -> Path:
    """Expected coverage of the HPD regions versus credibility level; calibrated posteriors follow the diagonal."""
    levels, coverage = result.coverage(np.linspace(0.0, 1.0, 51))
    low, high = binom.ppf([0.005, 0.995], result.n_datasets, levels[:, None]).T / result.n_datasets
    fig = Figure(figsize=(4.5, 4.5))
    ax = fig.subplots()
    ax.fill_between(levels, low, high, color="grey", alpha=0.3, lw=0, label="99% band (calibrated)")
    ax.plot([0, 1], [0, 1], color="grey", ls="--", lw=1)
    ax.plot(levels, coverage, color=COLORS[0], lw=1.5, label="expected coverage")
    ax.set_xlabel("credibility level")
    ax.set_ylabel("expected coverage")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(frameon=False, loc="upper left")
    return _save(fig, path)


def limits_plot(result: LimitResult, path: str | os.PathLike, labels: Sequence[str] | None = None,
                truth: np.ndarray | None = None) -> Path:
    """q of a :class:`~mflow_sbi.inference.limits.LimitResult`: one panel per parameter with its profile q_j and
    dashed lines at the 1-dof thresholds, and (two parameters) a panel with the q map, the joint 2-dof
    contours, the MLE and ``truth``. Expected (Asimov) results, when present, are drawn dashed beside the
    observed ones (profiles, and for two parameters their contours); toy-based expected limits as the median of
    the toys' profiles with its 68% (green) and 95% (yellow) bands."""
    names = list(labels or result.names)
    k = len(result.names)
    panels = k + (1 if k == 2 else 0)
    fig = Figure(figsize=(4.2 * panels, 3.8))
    axes = np.atleast_1d(fig.subplots(1, panels))
    styles = ("--", ":", "-.")
    for j in range(k):
        ax = axes[j]
        profile = result.profile(j)
        finite = np.isfinite(profile)
        ax.plot(result.axes[j][finite], profile[finite], color=COLORS[0], lw=1.5, label="observed")
        if result.expected is not None:
            expected = result.expected.profile(j)
            shown = np.isfinite(expected)
            ax.plot(result.axes[j][shown], expected[shown], color=COLORS[2], lw=1.5, ls="--", label="expected")
        if result.expected_toys is not None:
            bands = result.expected_toys.profile_quantiles[result.names[j]]  # 2.5, 16, 50, 84, 97.5%
            x = result.axes[j]
            ax.fill_between(x, bands[0], bands[4], color="#f5d000", alpha=0.5, lw=0, label="toys: 95% band")
            ax.fill_between(x, bands[1], bands[3], color="#2ca02c", alpha=0.4, lw=0, label="toys: 68% band")
            ax.plot(x, bands[2], color="k", lw=1, ls=":", label=f"toys: median ({result.expected_toys.n_toys})")
        for n, level in enumerate(result.levels):
            ax.axhline(wilks_threshold(level, 1), color="grey", ls=styles[n % 3], lw=1, label=f"{level:.0%} CL")
        ax.axvline(result.theta_hat[j], color=COLORS[1], lw=1, label="MLE")
        if truth is not None:
            ax.axvline(truth[j], color="k", lw=1, ls="-", alpha=0.5, label="truth")
        ax.set_xlabel(names[j])
        ax.set_ylabel(r"$q = -2\,\Delta\log L$ (profiled)" if k > 1 else r"$q = -2\,\Delta\log L$")
        top = max(wilks_threshold(max(result.levels), 1) * 2.0, 1.0)
        ax.set_ylim(0, top)
        ax.legend(frameon=False, fontsize="small")
    if k == 2:
        ax = axes[2]
        q = np.where(np.isfinite(result.q), result.q, np.nan)
        top = 3 * max(result.thresholds.values())
        mesh = ax.pcolormesh(result.axes[0], result.axes[1], np.minimum(q, top).T, shading="auto", cmap="viridis_r")
        fig.colorbar(mesh, ax=ax, label="q")
        levels = sorted(result.thresholds.values())
        ax.contour(result.axes[0], result.axes[1], q.T, levels=levels, colors="white",
                   linestyles=[styles[n % 3] for n in range(len(levels))])
        if result.expected is not None:
            q_expected = np.where(np.isfinite(result.expected.q), result.expected.q, np.nan)
            ax.contour(result.axes[0], result.axes[1], q_expected.T, levels=levels, colors=COLORS[2],
                       linestyles="dashed")
            ax.plot([], [], color=COLORS[2], ls="--", label="expected")
        ax.plot(*result.theta_hat, marker="x", color=COLORS[1], ls="", label="MLE")
        if truth is not None:
            ax.plot(*truth, marker="+", color="k", ls="", ms=10, label="truth")
        ax.set_xlabel(names[0])
        ax.set_ylabel(names[1])
        ax.set_title(" / ".join(f"{lv:.0%}" for lv in sorted(result.levels)) + " CL (2 dof)", fontsize="small")
        ax.legend(frameon=False, fontsize="small")
    fig.tight_layout()
    return _save(fig, path)
