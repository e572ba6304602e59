"""Learning-curve plot: one panel per loss name, training (solid) and validation (dashed) per epoch.

The x axis counts epochs over the whole run; dotted vertical lines separate the phases (labelled at the top).
A panel uses a log scale when all its values are positive. Headless (matplotlib's object API, no pyplot).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from mflow_sbi.errors import InputError
from mflow_sbi.io import atomic_path
from mflow_sbi.training.history import SPLITS, History

STYLES = {"train": "-", "val": "--"}


def _value(record: dict, split: str, name: str) -> float:
    value = record.get(split, {}).get(name)
    return math.nan if value is None else float(value)


def plot_learning_curves(history_records: Sequence[dict], path: str | os.PathLike) -> Path:
    """Plot per-epoch losses of ``history_records`` (see ``training.history``) to an image at ``path``."""
    history = History(list(history_records))
    names = history.loss_names()
    if not history.records or not names:
        raise InputError("no learning-curve records to plot (the history is empty)")
    steps = range(1, len(history.records) + 1)
    fig = Figure(figsize=(5.0 * min(len(names), 3), 3.4 * math.ceil(len(names) / 3)), layout="constrained")
    axes = fig.subplots(math.ceil(len(names) / 3), min(len(names), 3), squeeze=False).flatten()
    phases = [record["phase"] for record in history.records]
    boundaries = [i for i in range(1, len(phases)) if phases[i] != phases[i - 1]]
    for ax, name in zip(axes, names, strict=False):
        values = []
        for split in SPLITS:
            series = [_value(record, split, name) for record in history.records]
            if any(math.isfinite(v) for v in series):
                ax.plot(steps, series, STYLES[split], marker=".", label=split)
                values += [v for v in series if math.isfinite(v)]
        if values and min(values) > 0:
            ax.set_yscale("log")
        for index in boundaries:
            ax.axvline(index + 0.5, color="0.6", linestyle=":")
        for start in [0, *boundaries]:
            ax.annotate(phases[start], xy=(start + 1, 0.98), xycoords=("data", "axes fraction"),
                        fontsize="x-small", color="0.4", va="top")
        ax.set_xlim(0.5, len(history.records) + 0.5)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(name)
        ax.set_xlabel("epoch (whole run)")
        ax.legend(fontsize="small")
    for ax in axes[len(names):]:
        ax.set_visible(False)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    return Path(path)
