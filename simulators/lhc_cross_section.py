"""Total accepted rate sigma(theta) of the LHC generator, and the Monte Carlo that fixes its coefficients.

With a = c_even q, b = c_odd q, s = sin 2 dphi_jj and c = cos 2 dphi_jj, the weight expands as

    w = (1 + theta_0 a - theta_1 b s)^2 + (theta_1 b c)^2
      = 1 + 2 theta_0 a + theta_0^2 a^2 - 2 theta_1 b s - 2 theta_0 theta_1 a b s + theta_1^2 b^2.

The SM density and the cuts are invariant under the reflection phi -> -phi of every azimuth (which flips s)
and q is unchanged, so the s-odd terms integrate to zero exactly and

    sigma(theta) = E_p0[w 1_acc] = A_0 + 2 c_even theta_0 A_1 + (c_even^2 theta_0^2 + c_odd^2 theta_1^2) A_2,
    A_m = E_p0[q^m 1_acc] = E_p0[q^m] eps_m,

where E_p0[q^m] is analytic (Gamma moments) and eps_m is the acceptance under the pT-tilted density
p0 q^m / E[q^m]. Only the three acceptances eps_m are estimated by Monte Carlo (binomial standard error
sqrt(eps (1 - eps) / N)); they are stored in ``data/simulators/lhc.json`` with a fingerprint of the SM density
and cuts they belong to, and are independent of the coupling constants.

Regenerate with ``python -m simulators.calibrate_lhc --events-per-tilt N [--seed S]``.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

from .lhc_model import LatentModel

TILTS = (0, 1, 2)


def fingerprint(constants: dict) -> str:
    """Short hash of the SM density and cuts: stored acceptances are valid only for these."""
    relevant = {"sm_density": constants["sm_density"], "cuts": constants["cuts"]}
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]


def estimate_acceptances(model: LatentModel, n: int, rng: np.random.Generator,
                         chunk: int = 500_000) -> tuple[np.ndarray, np.ndarray]:
    """Monte Carlo acceptances eps_m (m = 0, 1, 2) with their binomial standard errors, n events per tilt."""
    estimates, errors = [], []
    for tilt in TILTS:
        passed = 0
        for start in range(0, n, chunk):
            size = min(chunk, n - start)
            z = model.sample_generated(size, rng, tilt)
            z = z[model.jets_may_pass(z)]  # cheap pre-selection; ``accepted`` re-applies every cut
            passed += int(np.count_nonzero(model.accepted(*model.momenta(z))))
        eps = passed / n
        estimates.append(eps)
        errors.append(np.sqrt(eps * (1 - eps) / n))
    return np.array(estimates), np.array(errors)
