"""Plots: the corner figure's content (intervals, truth, legend) and that every plot writes an image."""

import numpy as np
import pytest
from matplotlib.patches import Rectangle

from mflow_sbi import plotting
from mflow_sbi.errors import InputError
from mflow_sbi.inference.calibration import CalibrationResult
from mflow_sbi.inference.credible import hpd_interval
from mflow_sbi.inference.posterior import Posterior

PNG = b"\x89PNG"


def gaussian(p=2, shift=0.0, seed=0, chain=False):
    rng = np.random.default_rng(seed)
    steps = rng.normal(shift, 1.0, size=(300, 10, p))
    log_prob = -0.5 * np.sum((steps - shift) ** 2, axis=2)
    return Posterior(steps[30:].reshape(-1, p), log_prob[30:].ravel(), metadata={"sampler": {"burn_in": 30}},
                     chain=steps[30:] if chain else None, chain_log_prob=log_prob[30:] if chain else None,
                     burn_in_chain=steps[:30] if chain else None, burn_in_log_prob=log_prob[:30] if chain else None)


def spans(ax):
    """x-extents of the axvspan rectangles on an axis."""
    return sorted((round(r.get_x(), 9), round(r.get_x() + r.get_width(), 9))
                  for r in ax.patches if isinstance(r, Rectangle))


def test_corner_figure_shades_hpd_intervals_and_marks_truth():
    posterior = gaussian()
    fig = plotting.corner_figure(posterior, truth=[0.3, -0.4], levels=(0.68, 0.95))
    grid = np.array(fig.axes).reshape(2, 2)
    for j in range(2):
        expected = sorted(tuple(round(v, 9) for v in hpd_interval(posterior.samples[:, j], lv)) for lv in (0.68, 0.95))
        assert spans(grid[j, j]) == expected
    vertical = [line.get_xdata()[0] for line in grid[1, 0].lines if len(set(line.get_xdata())) == 1]
    assert 0.3 in vertical
    horizontal = [line.get_ydata()[0] for line in grid[1, 0].lines if len(set(line.get_ydata())) == 1]
    assert -0.4 in horizontal


def test_overlay_has_legend_and_common_range():
    a, b = gaussian(), gaussian(shift=3.0, seed=1)
    fig = plotting.corner_figure([a, b], names=["first", "second"], truth=[0.0, 0.0])
    texts = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
    assert texts == ["first", "second", "truth"]
    low, high = fig.axes[0].get_xlim()  # both sample sets inside the shared range, whatever the draw
    assert low < np.quantile(a.samples[:, 0], 0.01) and high > np.quantile(b.samples[:, 0], 0.99)


def test_corner_plot_files_including_one_parameter(tmp_path):
    assert plotting.corner_plot(gaussian(), tmp_path / "c2.png").read_bytes()[:4] == PNG
    assert plotting.corner_plot(gaussian(p=1), tmp_path / "c1.png", truth=[0.1]).read_bytes()[:4] == PNG
    assert plotting.corner_plot(gaussian().samples, tmp_path / "arr.pdf").read_bytes()[:4] == b"%PDF"


def test_corner_plot_errors(tmp_path):
    with pytest.raises(InputError, match="same number of parameters"):
        plotting.corner_plot([gaussian(p=1), gaussian(p=2)], tmp_path / "x.png")
    with pytest.raises(InputError, match="one name per posterior"):
        plotting.corner_plot([gaussian(), gaussian()], tmp_path / "x.png", names=["only"])
    with pytest.raises(InputError, match="need 2 labels"):
        plotting.corner_plot(gaussian(), tmp_path / "x.png", labels=["a"])
    assert not (tmp_path / "x.png").exists()


def test_trace_and_autocorrelation_plots(tmp_path):
    posterior = gaussian(chain=True)
    assert plotting.trace_plot(posterior, tmp_path / "t.png").read_bytes()[:4] == PNG
    assert plotting.autocorrelation_plot(posterior, tmp_path / "a.png").read_bytes()[:4] == PNG
    with pytest.raises(InputError, match="no stored chain"):
        plotting.trace_plot(gaussian(), tmp_path / "t2.png")


def test_calibration_plots(tmp_path):
    rng = np.random.default_rng(0)
    result = CalibrationResult(rng.normal(size=(50, 2)), rng.integers(0, 100, size=(50, 2)), rng.random(50), 99,
                               ("a", "b"))
    assert plotting.sbc_plot(result, tmp_path / "sbc.png").read_bytes()[:4] == PNG
    assert plotting.coverage_plot(result, tmp_path / "cov.png").read_bytes()[:4] == PNG


def test_a_lone_posterior_has_a_legend_and_the_figure_says_what_shading_and_contours_are():
    fig = plotting.corner_figure(gaussian(), truth=[0.0, 0.0], levels=(0.68, 0.95))
    assert [t.get_text() for legend in fig.legends for t in legend.get_texts()] == ["posterior", "truth"]
    assert [t.get_text() for t in fig.texts] == ["shading: 68%/95% HPD intervals; contours: 68%/95% credible regions"]


def test_titles_give_median_and_the_16_84_quantiles():
    posterior = gaussian(p=1)
    fig = plotting.corner_figure(posterior, titles=True)
    low, median, high = np.quantile(posterior.samples[:, 0], [0.16, 0.5, 0.84])
    assert fig.axes[0].get_title() == f"theta_0 = ${median:.3g}^{{+{high - median:.2g}}}_{{-{median - low:.2g}}}$"
    assert plotting.corner_figure(posterior).axes[0].get_title() == ""
