"""``mflow-sbi simulate --joint-score`` stores the exact joint score as ``t_xz``."""

from __future__ import annotations

import numpy as np
import pytest

from mflow_sbi.cli import main
from mflow_sbi.data.datasets import load_events
from mflow_sbi.simulators import get_simulator


@pytest.mark.parametrize(("name", "source"), [("lhc", ["--theta", "0.5,-0.5"]),
                                              ("spherical_gaussian", ["--from-prior"]),
                                              ("polynomial_surface", ["--from-prior"])])
def test_joint_score_written(tmp_path, name, source):
    out = tmp_path / "events.npz"
    assert main(["--quiet", "simulate", name, "--n", "40", *source, "--seed", "3", "--joint-score",
                 "--out", str(out)]) == 0
    data = load_events(out, require_theta=True)
    sim = get_simulator(name)
    assert data.t_xz.shape == (40, len(sim.parameter_names))
    np.testing.assert_allclose(data.t_xz, sim.joint_score(data.x, data.theta), rtol=1e-12)
    assert np.all(np.isfinite(data.t_xz)) and np.any(data.t_xz != 0)


def test_no_joint_score_by_default(tmp_path):
    out = tmp_path / "events.npz"
    assert main(["--quiet", "simulate", "lhc", "--n", "10", "--theta", "0,0", "--out", str(out)]) == 0
    assert load_events(out).t_xz is None


@pytest.mark.parametrize("name", ["lhc", "spherical_gaussian"])
def test_joint_score_in_root_output(tmp_path, name):
    """ROOT output (Delphes layout for lhc, flat tree otherwise) carries the same joint score as the .npz."""
    from mflow_sbi.data.loading import load_any

    args = ["--quiet", "simulate", name, "--n", "30", "--from-prior", "--seed", "4", "--joint-score"]
    assert main([*args, "--out", str(tmp_path / "events.root")]) == 0
    assert main([*args, "--out", str(tmp_path / "events.npz")]) == 0
    from_root, from_npz = load_any(tmp_path / "events.root"), load_events(tmp_path / "events.npz")
    np.testing.assert_array_equal(from_root.theta, from_npz.theta)
    np.testing.assert_allclose(from_root.t_xz, from_npz.t_xz, rtol=1e-12)
