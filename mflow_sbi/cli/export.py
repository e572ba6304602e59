"""``mflow-sbi export``: posterior samples as netCDF (ArviZ layout) or CSV."""

from __future__ import annotations

import argparse

from mflow_sbi.cli.options import examples


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export", help="write posterior samples as netCDF (for ArviZ/xarray) or CSV",
        description="Kept draws (after burn-in), one chain per walker; see mflow_sbi.inference.export.",
        **examples("mflow-sbi export posterior.npz --format netcdf --out posterior.nc",
                   "mflow-sbi export posterior.npz --format csv --out posterior.csv"))
    parser.add_argument("posterior", metavar="POSTERIOR.npz", help="posterior file written by infer or run")
    parser.add_argument("--format", required=True, choices=("netcdf", "csv"), help="output format")
    parser.add_argument("--out", required=True, help="file to write")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from mflow_sbi.inference.export import export_posterior
    from mflow_sbi.inference.posterior import Posterior

    path = export_posterior(Posterior.load(args.posterior), args.out, args.format)
    print(f"{args.format} written to {path}")
