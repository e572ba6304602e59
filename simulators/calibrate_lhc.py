"""Recompute the LHC acceptances behind sigma(theta) and store them in the constants file ``lhc.json``.

``python -m mflow_sbi.simulators.calibrate_lhc [--events-per-tilt N] [--seed S] [--out FILE]``; see
``simulators/lhc_cross_section.py``. Without ``--out`` it rewrites ``lhc.json`` where the package reads it
(``data/simulators/lhc.json`` in an editable install of the repository).
Kept out of the package imports so ``python -m`` runs it cleanly.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from mflow_sbi.io import save_json

from . import base
from .lhc import load_lhc_constants, make_latent_model
from .lhc_cross_section import estimate_acceptances, fingerprint


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events-per-tilt", type=int, default=70_000_000)
    parser.add_argument("--seed", type=int, default=20200613)
    parser.add_argument("--out", type=Path, help="file to write (default: the package's lhc.json)")
    args = parser.parse_args(argv)
    path = args.out or Path(str(base.CONSTANTS / "lhc.json"))
    constants = load_lhc_constants(check=False)
    eps, err = estimate_acceptances(make_latent_model(constants), args.events_per_tilt,
                                    np.random.default_rng(args.seed))
    constants["cross_section"] = {
        "fingerprint": fingerprint(constants),
        "method": "Monte Carlo acceptance of the pT-tilted SM density (simulators/lhc_cross_section.py)",
        "events_per_tilt": args.events_per_tilt,
        "seed": args.seed,
        "acceptance": eps.tolist(),
        "acceptance_std": err.tolist(),
    }
    save_json(path, constants)
    print(f"acceptances {eps} +- {err} written to {path}")


if __name__ == "__main__":
    main()
