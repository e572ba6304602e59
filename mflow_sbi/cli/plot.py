"""``mflow-sbi plot``: corner plot of one or several posteriors, optionally trace and autocorrelation plots."""

from __future__ import annotations

import argparse
import logging

from mflow_sbi.cli.options import examples, parse_vector
from mflow_sbi.errors import InputError

log = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "plot", help="corner plot (and MCMC diagnostics) of posterior files",
        **examples("mflow-sbi plot posterior.npz --out corner.png --truth 0.3",
                   "mflow-sbi plot mflow.npz af.npz --names M-flow,AF --out compare.pdf",
                   "mflow-sbi plot posterior.npz --out corner.png --trace trace.png --autocorr autocorr.png"))
    parser.add_argument("posteriors", nargs="+", metavar="POSTERIOR.npz", help="one or several posteriors to overlay")
    parser.add_argument("--out", required=True, help="corner plot image (.png, .pdf, ...)")
    parser.add_argument("--truth", help="true parameter values V[,V...] to mark (default: the observed set's "
                                        "theta when it was simulated at one point)")
    parser.add_argument("--names", help="legend names N[,N...], one per posterior")
    parser.add_argument("--labels", help="axis labels L[,L...], one per parameter, LaTeX allowed (default: the "
                                         "posterior's, which come from the simulator)")
    parser.add_argument("--levels", default="0.68,0.95", help="credibility levels of the contours (default 0.68,0.95)")
    parser.add_argument("--titles", action="store_true",
                        help="median and 16%%/84%% quantiles above each marginal (of the first posterior)")
    parser.add_argument("--show-nuisance", action="store_true",
                        help="also show the nuisance parameters (by default the corner plot shows the parameters of "
                             "interest, the nuisances marginalized)")
    parser.add_argument("--trace", metavar="FILE", help="also write a trace plot of the first posterior")
    parser.add_argument("--autocorr", metavar="FILE", help="also write an autocorrelation plot of the first posterior")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from mflow_sbi import plotting
    from mflow_sbi.inference.posterior import Posterior

    full = [Posterior.load(path) for path in args.posteriors]
    posteriors = full if args.show_nuisance else [posterior.of_interest() for posterior in full]
    names = args.names.split(",") if args.names else None
    if names is None and len(posteriors) > 1:
        names = list(args.posteriors)
    if args.truth is not None:
        truth = parse_vector(args.truth, "--truth")
    else:
        metadata = posteriors[0].metadata
        truth = metadata.get("observed_theta", metadata.get("true_theta"))  # true_theta: `run` posteriors of 0.1
        if truth is not None and len(truth) == full[0].dim:
            truth = [truth[full[0].parameter_names.index(name)] for name in posteriors[0].parameter_names]
    levels = tuple(parse_vector(args.levels, "--levels"))
    if not all(0 < level < 1 for level in levels):
        raise InputError(f"--levels must lie strictly between 0 and 1, got {args.levels}")
    labels = args.labels.split(",") if args.labels else None
    written = [plotting.corner_plot(posteriors, args.out, truth=truth, names=names, levels=levels, labels=labels,
                                    titles=args.titles)]
    if args.trace:
        written.append(plotting.trace_plot(posteriors[0], args.trace))  # the parameters shown in the corner plot
    if args.autocorr:
        written.append(plotting.autocorrelation_plot(posteriors[0], args.autocorr))
    log.info("wrote %s", ", ".join(str(path) for path in written))
