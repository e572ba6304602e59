"""``mflow-sbi limits``: profile-likelihood ratio q(theta) on a grid and Wilks' confidence intervals/contours."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from mflow_sbi import layout
from mflow_sbi.cli.options import add_device_argument, examples, parse_vector
from mflow_sbi.data.datasets import load_events
from mflow_sbi.errors import InputError
from mflow_sbi.workflow.train import read_training_data_record

log = logging.getLogger(__name__)

DEFAULT_OUT = "limits"
DEFAULT_LEVELS = "0.68,0.95"
DEFAULT_ASIMOV_EVENTS = 10_000


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "limits", help="frequentist limits: q(theta) = -2 dlog L on a grid, 68%%/95%% CL intervals and contours",
        **examples("mflow-sbi limits model --observed observed.npz --grid theta=-1:1:201",
                   "mflow-sbi limits model --observed observed.npz --grid theta_0=-2:2:41 --grid theta_1=-2:2:41",
                   "mflow-sbi limits model --observed observed.npz --grid theta_0=-2:2:41 --grid theta_1=-2:2:41 "
                   "--rate simulator --luminosity 10",
                   "mflow-sbi limits model --observed observed.npz --grid theta_0=-2:2:41 --grid theta_1=-2:2:41 "
                   "--expected 0,0"))
    parser.add_argument("model", metavar="MODEL_DIR", help="trained model directory")
    parser.add_argument("--observed", required=True, help="observed events (.npz with field x (N, d))")
    parser.add_argument("--grid", action="append", required=True, metavar="NAME=LOW:HIGH:N",
                        help="N evenly spaced values of parameter NAME from LOW to HIGH, once per parameter of "
                             "interest; nuisance parameters (declared by the training data's simulator) without a grid "
                             "are profiled")
    parser.add_argument("--out", default=DEFAULT_OUT,
                        help=f"output directory for limits.json, limits.npz and limits.png (default {DEFAULT_OUT})")
    parser.add_argument("--cl", default=DEFAULT_LEVELS, metavar="LEVELS",
                        help=f"comma-separated confidence levels (default {DEFAULT_LEVELS})")
    parser.add_argument("--rate", choices=("none", "simulator", "fit"), default="none",
                        help="add log Pois(N | nu(theta)): nu from the training data's simulator (expected_events) "
                             "or from MODEL_DIR/rate_fit.json (default none)")
    parser.add_argument("--luminosity", type=float, default=None,
                        help="luminosity for --rate, in the simulator's units (lhc: fb^-1) (default: none; required "
                             "with --rate)")
    parser.add_argument("--no-cache", action="store_true", help="re-encode the observed events at every grid point")
    parser.add_argument("--expected", metavar="THETA_0", default=None,
                        help="also compute the expected (Asimov) limits at the hypothesis THETA_0 (comma-separated, "
                             "one value per parameter in the model's order, e.g. 0,0): q on M events sampled from the "
                             "model at THETA_0, scaled to the observed number of events (or nu(THETA_0) with --rate)")
    parser.add_argument("--asimov-events", type=int, default=DEFAULT_ASIMOV_EVENTS, metavar="M",
                        help=f"events sampled for the Asimov data (default {DEFAULT_ASIMOV_EVENTS}); the expected "
                             "limits' centre has a Monte-Carlo error of about one event's resolution / sqrt(M)")
    parser.add_argument("--toys", type=int, default=0, metavar="T",
                        help="with --expected: also T toy data sets drawn from the model at THETA_0 (the observed "
                             "number of events each, or Pois(nu(THETA_0)) with --rate), giving the median expected q "
                             "with its 68%%/95%% bands, the spread of the interval end points and the coverage of "
                             "THETA_0 (default 0: none)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the Asimov sample and of the toys (default 0)")
    add_device_argument(parser, "[inference] device")
    parser.set_defaults(func=run)


def training_simulator(model_dir: str, record: dict):
    """The simulator (with its options) that made the model's training data, from its ``record``
    (training_data.json)."""
    from mflow_sbi.simulators import get_simulator

    if not record.get("simulator"):
        raise InputError(f"{model_dir} records no simulator for its training data: --rate simulator needs one "
                         "(use --rate fit with a rate_fit.json)")
    return get_simulator(record["simulator"], **(record.get("simulator_options") or {}))


def run(args: argparse.Namespace) -> None:
    from mflow_sbi.cli.infer import check_observed_source, load_model, observed_theta
    from mflow_sbi.inference.likelihood import ModelLikelihood
    from mflow_sbi.inference.limits import ProfiledLikelihood, order_axes, parse_grid_spec, profile_likelihood_limits
    from mflow_sbi.inference.rates import ExtendedLikelihood, rate_term_from_settings
    from mflow_sbi.plotting import limits_plot

    axes = [parse_grid_spec(spec) for spec in args.grid]
    if args.toys < 0 or (args.toys and args.expected is None) or args.toys == 1:
        raise InputError(f"--toys {args.toys}: needs --expected THETA_0 and T >= 2 toys (or 0 for none)")
    levels = parse_vector(args.cl, "--cl")
    if not all(0 < lv < 1 for lv in levels):
        raise InputError(f"--cl {args.cl!r}: confidence levels must lie in (0, 1)")
    if args.rate != "none" and (args.luminosity is None or not args.luminosity > 0):
        raise InputError(f"--rate {args.rate} needs --luminosity > 0, got {args.luminosity}")
    record = read_training_data_record(args.model)
    observed = load_events(args.observed)
    check_observed_source(args.model, record, observed, args.observed)
    model = load_model(args.model, args.device)
    nuisances = tuple(record.get("nuisance_names") or ())
    axes = order_axes(axes, model.parameter_names, nuisances)
    likelihood = ModelLikelihood(model, observed.x, cache=False if args.no_cache else "auto")
    simulator = training_simulator(args.model, record) if args.rate == "simulator" else None
    rate = rate_term_from_settings(args.rate, len(observed.x), luminosity=args.luminosity, simulator=simulator,
                                   fit_path=Path(args.model) / layout.RATE_FIT_FILE)
    metadata = {"model_path": str(args.model), "observed_path": str(args.observed), "n_events": len(observed.x),
                "observed_fingerprint": likelihood.fingerprint,
                "rate": {"source": "none"} if rate is None else rate.metadata,
                "profiled_nuisances": [name for name in model.parameter_names if name not in {a.name for a in axes}]}
    truth = observed_theta(observed.theta)
    if truth is not None:
        metadata["observed_theta"] = truth
    profiled = profile(likelihood if rate is None else ExtendedLikelihood(likelihood, rate), model, axes)
    result = profile_likelihood_limits(profiled, axes, levels=[float(lv) for lv in levels], metadata=metadata)
    if isinstance(profiled, ProfiledLikelihood):
        result.metadata["nuisance_hat"] = profiled.maximize(result.theta_hat[None])[1][0].tolist()
    if args.expected is not None:
        result.expected = expected_limits(args, model, axes, [float(lv) for lv in levels], len(observed.x), rate)
    if args.toys:
        result.expected_toys = toy_expected_limits(args, model, axes, [float(lv) for lv in levels],
                                                   len(observed.x), rate)
    if truth is not None:
        truth = [truth[model.parameter_names.index(a.name)] for a in axes]
    out = Path(args.out)
    json_path, npz_path = result.save(out / layout.LIMITS_FILE, out / layout.LIMITS_GRID_FILE)
    plot_path = limits_plot(result, out / layout.LIMITS_PLOT_FILE, truth=None if truth is None else truth)
    print(format_limits(result))
    print(f"wrote {json_path}, {npz_path} and {plot_path}")


def profile(log_likelihood, model, axes):
    """``log_likelihood`` of all the model's parameters as a function of the gridded ones: itself when every
    parameter has an axis, else maximized over the others (nuisances) with their prior components as constraints
    (:class:`~mflow_sbi.inference.limits.ProfiledLikelihood`)."""
    from mflow_sbi.inference.limits import ProfiledLikelihood

    names = list(model.parameter_names)
    interest = [names.index(a.name) for a in axes]
    if len(interest) == len(names):
        return log_likelihood
    if model.prior is None:
        raise InputError("profiling the nuisance parameters needs their constraints: the model stores no prior")
    nuisance = [k for k in range(len(names)) if k not in interest]
    return ProfiledLikelihood(log_likelihood, len(names), interest, nuisance,
                              [model.prior.components[k] for k in nuisance])


def expected_limits(args: argparse.Namespace, model, axes, levels: list[float], n_observed: int, rate):
    """The Asimov result at ``--expected`` (see :mod:`mflow_sbi.inference.limits`): M = ``--asimov-events`` events
    sampled from the model, N = the observed number of events, or nu(theta_0) with a rate term."""
    from mflow_sbi.inference.likelihood import ModelLikelihood
    from mflow_sbi.inference.limits import AsimovLikelihood, AsimovRate, asimov_sample, profile_likelihood_limits

    theta_0 = hypothesis(args, model, axes)
    if args.asimov_events < 1:
        raise InputError(f"--asimov-events must be >= 1, got {args.asimov_events}")
    sample = asimov_sample(model, theta_0, args.asimov_events, args.seed)
    asimov_rate = None if rate is None else AsimovRate(rate.expected_events, theta_0)
    n_expected = n_observed if asimov_rate is None else asimov_rate.nu_0
    likelihood = AsimovLikelihood(ModelLikelihood(model, sample, cache=False if args.no_cache else "auto"),
                                  args.asimov_events, n_expected, asimov_rate)
    return profile_likelihood_limits(profile(likelihood, model, axes), axes, levels=levels, metadata={
        "theta_0": theta_0.tolist(), "n_expected": float(n_expected), "asimov_events": args.asimov_events,
        "seed": args.seed})


def hypothesis(args: argparse.Namespace, model, axes) -> np.ndarray:
    """``--expected`` as values of all the model's parameters: given for the gridded ones only, the nuisances sit at
    their constraints' centres."""
    theta_0 = np.asarray(parse_vector(args.expected, "--expected"), dtype=np.float64)
    gridded = [model.parameter_names.index(a.name) for a in axes]
    if len(theta_0) == len(gridded) < model.parameter_dim:
        full = np.array([getattr(c, "loc", 0.5 * sum(c.support)) for c in model.prior.components], dtype=np.float64)
        full[gridded] = theta_0
        theta_0 = full
    return theta_0


def toy_expected_limits(args: argparse.Namespace, model, axes, levels: list[float], n_observed: int, rate):
    """``--toys`` T toy data sets at ``--expected`` (see :mod:`mflow_sbi.inference.toys`): events sampled from the
    model, n = the observed number, or n ~ Pois(nu(theta_0)) with a rate term (whose Poisson term then uses n)."""
    import torch

    from mflow_sbi.inference.likelihood import ModelLikelihood
    from mflow_sbi.inference.rates import ExtendedLikelihood, RateTerm
    from mflow_sbi.inference.toys import toy_limits

    theta_0 = hypothesis(args, model, axes)
    if theta_0.shape != (int(model.parameter_dim),):
        raise InputError(f"theta_0 needs {model.parameter_dim} value(s), got {theta_0.tolist()}")
    nu_0 = None if rate is None else float(np.asarray(rate.expected_events(theta_0[None]), dtype=np.float64)[0])
    if nu_0 is not None and not nu_0 > 0:
        raise InputError(f"the expected number of events at theta_0 must be positive, got {nu_0}")
    cache = False if args.no_cache else "auto"

    def draw(n: int, rng: np.random.Generator) -> np.ndarray:
        generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
        with torch.no_grad():
            return model.sample(torch.as_tensor(theta_0, dtype=torch.float32), n, generator).double().numpy()

    def likelihood_of(events: np.ndarray, n: int):
        shape = ModelLikelihood(model, events, cache=cache)
        if rate is None:
            return profile(shape, model, axes)
        term = RateTerm(rate.expected_events, n, source=rate.source, luminosity=rate.luminosity, details=rate.details)
        return profile(ExtendedLikelihood(shape, term), model, axes)

    def progress(done: int, total: int) -> None:
        if done == total or done % max(1, total // 10) == 0:
            log.info("toys: %d of %d", done, total)

    gridded = [model.parameter_names.index(a.name) for a in axes]
    return toy_limits(likelihood_of, draw, axes, theta_0[gridded], n_toys=args.toys,
                      n_events=(lambda rng: n_observed) if nu_0 is None else (lambda rng: int(rng.poisson(nu_0))),
                      levels=levels, seed=args.seed, progress=progress,
                      metadata={"theta_0": theta_0.tolist(), "n_expected": float(n_observed if nu_0 is None else nu_0),
                                "seed": args.seed})


def format_limits(result) -> str:
    """The MLE and each parameter's profile intervals, one line per parameter and level (and the expected ones)."""
    lines = ["MLE: " + ", ".join(f"{n}={v:.4g}" for n, v in zip(result.names, result.theta_hat, strict=True))]
    for kind, shown in (("", result), ("expected ", result.expected)):
        if shown is None:
            continue
        for name in shown.names:
            for level, segments in shown.intervals[name].items():
                text = " U ".join(f"[{lo:.4g}, {hi:.4g}]" for lo, hi in segments) or "(empty on the grid)"
                note = "  (reaches the grid edge)" if shown.open[name][level] else ""
                lines.append(f"{kind}{name} {level:.0%} CL: {text}{note}")
    toys = result.expected_toys
    if toys is not None:
        for name in toys.names:
            for level in toys.levels:
                ends = toys.endpoints[name][level]
                if not ends["lower"]:
                    lines.append(f"toys ({toys.n_toys}) {name} {level:.0%} CL: empty on the grid in every toy")
                    continue
                lines.append(f"toys ({toys.n_toys}) {name} {level:.0%} CL: median [{ends['lower'][2]:.4g}, "
                             f"{ends['upper'][2]:.4g}], 68% of toys: lower {ends['lower'][1]:.4g}..{ends['lower'][3]:.4g}, "
                             f"upper {ends['upper'][1]:.4g}..{ends['upper'][3]:.4g}")
        lines += [f"toys: coverage of THETA_0 by the {level:.0%} CL region {c['fraction']:.3f} +- {c['stderr']:.3f}"
                  for level, c in toys.coverage.items()]
    return "\n".join(lines)
