"""Summed iid log-likelihoods: cached vs re-encoding, chunking, validation, exact simulator likelihood."""

import numpy as np
import pytest
import torch

from mflow_sbi.errors import InputError
from mflow_sbi.inference.likelihood import ModelLikelihood, SimulatorLikelihood, observed_fingerprint
from mflow_sbi.simulators import get_simulator


def per_event_sum(model, x, theta):
    """Reference: one model call per parameter point, summed in float64."""
    xt = torch.as_tensor(x, dtype=torch.float32)
    out = []
    for point in theta:
        rows = torch.as_tensor(np.tile(point, (len(x), 1)), dtype=torch.float32)
        out.append(model.log_prob(xt, rows).double().sum().item())
    return np.array(out)


def test_cached_and_reencoded_agree_to_float_precision(conjugate_problem):
    problem = conjugate_problem(p=2, n=2, d=4, n_events=30)
    theta = problem.prior.sample(17, np.random.default_rng(3))
    cached = ModelLikelihood(problem.model, problem.x, cache=True)
    plain = ModelLikelihood(problem.model, problem.x, cache=False)
    assert cached.cached and not plain.cached
    a, b = cached(theta), plain(theta)
    assert a.dtype == np.float64 and a.shape == (17,)
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-4)
    np.testing.assert_allclose(a, per_event_sum(problem.model, problem.x, theta), rtol=1e-6, atol=1e-4)


def test_cache_auto_follows_model_and_skips_encoding(conjugate_problem):
    problem = conjugate_problem(cached=True)
    likelihood = ModelLikelihood(problem.model, problem.x)
    assert likelihood.cached
    calls_before = dict(problem.model.calls)
    likelihood(problem.prior.sample(8, np.random.default_rng(0)))
    assert problem.model.calls["log_prob"] == calls_before["log_prob"]  # no re-encoding per evaluation
    assert problem.model.calls["latent_log_prob"] > calls_before["latent_log_prob"]
    assert problem.model.calls["cache_observed"] == 1

    uncachable = conjugate_problem(cached=False)
    assert not ModelLikelihood(uncachable.model, uncachable.x).cached
    with pytest.raises(InputError, match="cannot cache"):
        ModelLikelihood(uncachable.model, uncachable.x, cache=True)


@pytest.mark.parametrize("chunk_size", [1, 7, 20, 10_000])
def test_chunking_does_not_change_the_result(conjugate_problem, chunk_size):
    problem = conjugate_problem(n_events=20)
    theta = problem.prior.sample(5, np.random.default_rng(1))
    reference = ModelLikelihood(problem.model, problem.x, cache=False)(theta)
    for cache in (True, False):
        chunked = ModelLikelihood(problem.model, problem.x, cache=cache, chunk_size=chunk_size)
        np.testing.assert_allclose(chunked(theta), reference, rtol=1e-6, atol=1e-4)


def test_rows_per_call_bounded_by_chunk_size(conjugate_problem):
    problem = conjugate_problem(n_events=20)
    seen = []
    original = problem.model.latent_log_prob

    def spy(u, theta):
        seen.append(len(u))
        return original(u, theta)

    problem.model.latent_log_prob = spy
    ModelLikelihood(problem.model, problem.x, chunk_size=50)(problem.prior.sample(16, np.random.default_rng(0)))
    assert max(seen) <= 50 and sum(seen) == 16 * 20


@pytest.mark.parametrize(
    ("x", "message"),
    [
        (np.zeros((5, 4)), "dimension 4, the model expects 3"),
        (np.zeros((0, 3)), "zero events"),
        (np.zeros(3), r"shape \(N, 3\)"),
        (np.array([[0.0, np.nan, 1.0], [0.0, 0.0, 0.0]]), "NaN"),
        (np.array([[0.0, 0.0, 0.0], [np.inf, 0.0, 0.0]]), r"rows \[1\]"),
    ],
)
def test_bad_observed_data(conjugate_problem, x, message):
    problem = conjugate_problem(d=3)
    with pytest.raises(InputError, match=message):
        ModelLikelihood(problem.model, x)


def test_bad_theta_shape_and_options(conjugate_problem):
    problem = conjugate_problem(p=2)
    likelihood = ModelLikelihood(problem.model, problem.x)
    with pytest.raises(InputError, match=r"shape \(K, 2\)"):
        likelihood(np.zeros((4, 3)))
    with pytest.raises(InputError, match="cache"):
        ModelLikelihood(problem.model, problem.x, cache="sometimes")
    with pytest.raises(InputError, match="chunk_size"):
        ModelLikelihood(problem.model, problem.x, chunk_size=0)


def test_nan_from_model_becomes_minus_inf(conjugate_problem):
    problem = conjugate_problem()
    likelihood = ModelLikelihood(problem.model, problem.x, cache=False)
    theta = np.array([[0.0, 0.0], [np.nan, 0.0]])
    values = likelihood(theta)
    assert np.isfinite(values[0]) and values[1] == -np.inf and likelihood.n_nonfinite == 1


def test_fingerprint_identifies_the_data(conjugate_problem):
    problem = conjugate_problem()
    fingerprint = ModelLikelihood(problem.model, problem.x).fingerprint
    assert fingerprint == observed_fingerprint(problem.x.copy())
    changed = problem.x.copy()
    changed[0, 0] += 1e-12
    assert fingerprint != observed_fingerprint(changed)
    assert fingerprint != observed_fingerprint(problem.x[:-1])


def test_simulator_likelihood_sums_exact_log_likelihood():
    simulator = get_simulator("polynomial_surface")
    rng = np.random.default_rng(4)
    x = simulator.sample(np.array([0.2]), 15, rng)
    theta = np.array([[-0.5], [0.0], [0.7]])
    expected = np.array([simulator.log_likelihood(x, point).sum() for point in theta])
    for chunk_size in (4, 1000):
        np.testing.assert_allclose(SimulatorLikelihood(simulator, x, chunk_size=chunk_size)(theta), expected,
                                   rtol=1e-12)
    with pytest.raises(InputError, match="dimension 2"):
        SimulatorLikelihood(simulator, x[:, :2])


@pytest.fixture(scope="module")
def random_mflows():
    """Untrained M-flows (3-D data, 2-D manifold, 1 parameter) with perturbed weights, so no layer is the identity."""
    from mflow_sbi.flows import create_model

    torch.manual_seed(0)
    small = {"n_layers": 2, "hidden_features": 16}
    models = {}
    for conditional_outer in (False, True):
        model = create_model("mflow", data_dim=3, parameter_dim=1, latent_dim=2, outer=small, inner=small,
                             conditional_outer=conditional_outer)
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.add_(0.1 * torch.randn_like(parameter))
        models[conditional_outer] = model.eval()
    return models


@pytest.mark.parametrize("mode", ["manifold", "fixed_manifold"])
def test_mflow_cached_and_reencoded_agree(random_mflows, mode):
    model = random_mflows[False]
    x = np.random.default_rng(5).normal(size=(20, 3))
    theta = np.linspace(-1, 1, 5)[:, None]
    cached = ModelLikelihood(model, x, cache="auto", mode=mode)
    assert cached.cached
    plain = ModelLikelihood(model, x, cache=False, mode=mode)
    values = cached(theta)
    np.testing.assert_allclose(values, plain(theta), rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(values, [model.log_prob(torch.as_tensor(x, dtype=torch.float32),
                                                       torch.full((20, 1), t), mode=mode).double().sum().item()
                                        for t in theta[:, 0]], rtol=1e-5, atol=1e-3)
    assert np.ptp(values) > 1e-3  # the likelihood does depend on theta


def test_conditional_outer_mflow_reencodes(random_mflows):
    model = random_mflows[True]
    x = np.random.default_rng(6).normal(size=(10, 3))
    likelihood = ModelLikelihood(model, x)
    assert not likelihood.cached
    assert likelihood(np.array([[0.0], [0.5]])).shape == (2,)
    with pytest.raises(InputError, match="cannot cache"):
        ModelLikelihood(model, x, cache=True)


@pytest.mark.parametrize("conditional_outer", [False, True])
def test_fused_kernels_give_the_nflows_likelihood_and_leave_the_model_as_it_was(random_mflows, conditional_outer,
                                                                               monkeypatch):
    from mflow_sbi.flows import base
    from mflow_sbi.flows.ensemble import ModelEnsemble
    from mflow_sbi.inference.likelihood import CPU_CHUNK_SIZE

    fused_calls = []
    stack_forward = base.stack_forward
    monkeypatch.setattr(base, "stack_forward", lambda *a, **k: fused_calls.append(1) or stack_forward(*a, **k))

    model = random_mflows[conditional_outer]
    x = np.random.default_rng(7).normal(size=(30, 3))
    theta = np.linspace(-1.5, 1.5, 7)[:, None]
    for target in (model, ModelEnsemble([model, model])):
        fused = ModelLikelihood(target, x, chunk_size=50)  # several chunks per call
        assert fused.kernels == "fused" and fused.cached != conditional_outer
        reference = ModelLikelihood(target, x, chunk_size=50, kernels="nflows")
        fused_calls.clear()
        expected = reference(theta)
        assert not fused_calls
        np.testing.assert_allclose(fused(theta), expected, rtol=1e-5, atol=1e-3)
        assert fused_calls
        assert np.ptp(fused(theta)) > 1e-3
        assert all(m.flow_kernels == "nflows" for m in target.modules() if hasattr(m, "flow_kernels"))
    assert ModelLikelihood(model, x).chunk_size == CPU_CHUNK_SIZE
    with pytest.raises(InputError, match="kernels must be one of"):
        ModelLikelihood(model, x, kernels="fast")
