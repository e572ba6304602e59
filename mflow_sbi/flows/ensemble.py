"""An ensemble of K trained models of p(x|theta) used as one likelihood model.

The ensemble's density is the (unnormalized) geometric mean of its members' densities, i.e. the mean of
their log-densities:

    log p_ens(x|theta) = (1/K) sum_k log p_k(x|theta),

so the summed log-likelihood of N iid events is the mean of the members' summed log-likelihoods (what
:class:`mflow_sbi.inference.likelihood.EnsembleLikelihood` computes from K separate likelihoods). The geometric
mean is not normalized in x; that does not matter for inference, where only its theta dependence enters, and
its normalizer is 1 wherever the members agree. Members trained on their own manifolds (M-flows with
different seeds) average away the distortion that one learned manifold imposes on every inner flow trained on
it (docs/benchmarks.md, "Levers at 10k events").

With every member supporting the cached likelihood, the ensemble caches too: its encoding of an event is the
concatenation of the members' encodings u = (u_1, ..., u_K), its constant the mean of theirs, and
``latent_log_prob(u, theta) = (1/K) sum_k latent_log_prob_k(u_k, theta)``.

``sample`` draws from the *mixture* of the members (each event from a member chosen uniformly at random), not
from the geometric mean, which has no direct sampler: generated events are for closure checks of the members'
manifolds. Where a sample stands in for the model's own prediction (``limits``' Asimov and toy data sets), it
is the mixture's, slightly wider than the geometric mean the likelihood uses where the members disagree.

On disk (:mod:`mflow_sbi.layout`) an ensemble is a model directory whose config.toml has ``type =
"ensemble"`` and the member directories' names (``member_00``, ``member_01``, ...), each a complete model
directory.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

import torch
from torch import nn

from mflow_sbi.errors import DataFileError, InputError
from mflow_sbi.flows import ENSEMBLE_TYPE
from mflow_sbi.flows.base import ArrayLike, ConditionalDensityModel, file_sha256, software_versions, verify_manifest
from mflow_sbi.io import save_json
from mflow_sbi.layout import CONFIG_FILE, MANIFEST_FILE, VERSIONS_FILE, member_dir_name
from mflow_sbi.priors import IndependentPrior
from mflow_sbi.tomlio import read_toml, write_toml


class ModelEnsemble(nn.Module):
    """K trained models of the same data, parameters and prior, whose log-densities are averaged."""

    model_type: ClassVar[str] = ENSEMBLE_TYPE
    needs_latent_dim: ClassVar[bool] = False  # the manifold checks use one member (see ``representative``)

    def __init__(self, members: list[ConditionalDensityModel]) -> None:
        super().__init__()
        if not members:
            raise InputError("an ensemble needs at least one member model")
        first = members[0]
        for k, member in enumerate(members[1:], start=1):
            if member.model_type != first.model_type:
                raise InputError(f"ensemble member {k} is a {member.model_type!r} model, member 0 a "
                                 f"{first.model_type!r} one: an ensemble averages models of one type")
            if (member.data_dim, member.parameter_dim) != (first.data_dim, first.parameter_dim):
                raise InputError(f"ensemble member {k} models data of dimension {member.data_dim} with "
                                 f"{member.parameter_dim} parameter(s), member 0 {first.data_dim} with "
                                 f"{first.parameter_dim}")
            if tuple(member.parameter_names) != tuple(first.parameter_names):
                raise InputError(f"ensemble member {k} has the parameters {list(member.parameter_names)}, member 0 "
                                 f"{list(first.parameter_names)}")
            if _prior_specs(member) != _prior_specs(first):
                raise InputError(f"ensemble member {k} has the prior {_prior_specs(member)}, member 0 "
                                 f"{_prior_specs(first)}")
        self.members = nn.ModuleList(members)
        self.data_dim = first.data_dim
        self.parameter_dim = first.parameter_dim
        self.parameter_names = tuple(first.parameter_names)
        self.prior = first.prior
        self.modes = tuple(mode for mode in first.modes if all(mode in m.modes for m in members))
        self.default_mode = first.default_mode

    def __len__(self) -> int:
        return len(self.members)

    @property
    def latent_dim(self) -> int | None:
        """The members' manifold dimension (None when they have none or it differs between them)."""
        dims = {member.latent_dim for member in self.members}
        return dims.pop() if len(dims) == 1 else None

    @property
    def display_name(self) -> str:
        """For legends: "ensemble of K <member 0's name>"."""
        return f"ensemble of {len(self.members)} {self.members[0].display_name}"

    @property
    def representative(self) -> ConditionalDensityModel:
        """Member 0: the model whose manifold the misspecification check and ``evaluate`` examine."""
        return self.members[0]

    # --- densities -------------------------------------------------------------------------------------
    def member_log_probs(self, x: ArrayLike, theta: ArrayLike, mode: str | None = None) -> torch.Tensor:
        """log p_k(x|theta) of every member, shape (K, N)."""
        return torch.stack([member.log_prob(x, theta, mode) for member in self.members])

    def log_prob(self, x: ArrayLike, theta: ArrayLike, mode: str | None = None) -> torch.Tensor:
        """(1/K) sum_k log p_k(x|theta) per event, shape (N,)."""
        return self.member_log_probs(x, theta, mode).mean(dim=0)

    def sample(self, theta: ArrayLike, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n events from the mixture of the members at theta ((p,) or one row per event (n, p)), shape (n, d):
        event i comes from member k_i ~ Uniform{0..K-1}, drawn from ``generator`` (see the module docstring)."""
        if n < 1:
            raise InputError(f"number of samples must be >= 1, got {n}")
        first = self.members[0]
        theta = first.check_theta(theta, n)
        owner = torch.randint(len(self.members), (n,), generator=generator)
        out = torch.empty(n, self.data_dim, dtype=first.float_dtype, device=first.device)
        for k, member in enumerate(self.members):
            rows = torch.nonzero(owner == k).flatten()
            if len(rows):
                out[rows.to(out.device)] = member.sample(theta[rows.to(theta.device)], len(rows), generator)
        return out

    # --- cached likelihood -----------------------------------------------------------------------------
    @property
    def supports_cached_likelihood(self) -> bool:
        return all(member.supports_cached_likelihood for member in self.members)

    def _widths(self) -> list[int]:
        return [int(member.latent_dim) for member in self.members]

    def cache_observed(self, x: ArrayLike, mode: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(u, c): u the members' encodings side by side (N, sum_k n_k), c the mean of their constants (N,)."""
        if not self.supports_cached_likelihood:
            return self.members[0].cache_observed(x, mode)  # raises NoCachedLikelihood, naming why
        parts = [member.cache_observed(x, mode) for member in self.members]
        for (u, _), width in zip(parts, self._widths(), strict=True):
            if u.shape[1] != width:
                raise InputError(f"a member's cached encoding has {u.shape[1]} columns, its latent_dim is {width}")
        return torch.cat([u for u, _ in parts], dim=1), torch.stack([c for _, c in parts]).mean(dim=0)

    def latent_log_prob(self, u: ArrayLike, theta: ArrayLike) -> torch.Tensor:
        """(1/K) sum_k latent_log_prob_k(u_k, theta) for u from :meth:`cache_observed`, shape (N,)."""
        if not self.supports_cached_likelihood:
            return self.members[0].latent_log_prob(u, theta)  # raises NoCachedLikelihood, naming why
        return self._mean_over_blocks(u, self._widths(), "encodings",
                                      lambda member, block: member.latent_log_prob(block, theta))

    def _mean_over_blocks(self, values: ArrayLike, widths: list[int], what: str, evaluate) -> torch.Tensor:
        """(1/K) sum_k evaluate(member_k, block_k) over the members' column blocks (``widths``) of ``values``."""
        values = torch.as_tensor(values)
        if values.ndim != 2 or values.shape[1] != sum(widths):
            raise InputError(f"ensemble {what} must have shape (N, {sum(widths)}), got {tuple(values.shape)}")
        blocks = torch.split(values, widths, dim=1)
        return torch.stack([evaluate(member, block) for member, block in zip(self.members, blocks, strict=True)]).mean(0)

    @property
    def summary_dim(self) -> int:
        """Columns of :meth:`latent_summary`: the members' summaries side by side."""
        return sum(self._summary_widths())

    def _summary_widths(self) -> list[int]:
        return [int(member.summary_dim) for member in self.members]

    def latent_summary(self, u: ArrayLike) -> tuple[torch.Tensor, torch.Tensor]:
        """(s, c): the members' latent summaries of their blocks of u side by side, and the mean of their c, so
        that latent_log_prob(u, theta) == summary_log_prob(s, theta) + c."""
        blocks = torch.split(torch.as_tensor(u), self._widths(), dim=1)
        parts = [member.latent_summary(block) for member, block in zip(self.members, blocks, strict=True)]
        return torch.cat([s for s, _ in parts], dim=1), torch.stack([c for _, c in parts]).mean(dim=0)

    def summary_log_prob(self, summary: ArrayLike, theta: ArrayLike) -> torch.Tensor:
        """(1/K) sum_k summary_log_prob_k(s_k, theta) for s from :meth:`latent_summary`, shape (N,)."""
        return self._mean_over_blocks(summary, self._summary_widths(), "latent summaries",
                                      lambda member, block: member.summary_log_prob(block, theta))

    # --- persistence -----------------------------------------------------------------------------------
    def save(self, directory: str | os.PathLike) -> Path:
        """Write every member to ``directory/member_KK`` (:func:`mflow_sbi.layout.member_dir_name`), then the
        ensemble's own files (:meth:`write_config`)."""
        directory = Path(directory)
        for k, member in enumerate(self.members):
            member.save(directory / member_dir_name(k))
        return self.write_config(directory)

    def write_config(self, directory: str | os.PathLike) -> Path:
        """Write the ensemble's config.toml (type, member directories, parameter names, prior), versions.json
        and manifest.json, for members already saved in ``directory/member_KK``."""
        directory = Path(directory)
        names = [member_dir_name(k) for k in range(len(self.members))]
        config = {"model": {"type": ENSEMBLE_TYPE, "members": names, "parameter_names": list(self.parameter_names)}}
        if self.prior is not None:
            config["prior"] = {"specs": self.prior.specs}
        write_toml(directory / CONFIG_FILE, config)
        save_json(directory / VERSIONS_FILE, software_versions())
        save_json(directory / MANIFEST_FILE, {CONFIG_FILE: file_sha256(directory / CONFIG_FILE)})
        return directory

    @classmethod
    def load(cls, directory: str | os.PathLike, device: str | torch.device | None = None) -> ModelEnsemble:
        """The ensemble saved in ``directory``, every member loaded with :func:`mflow_sbi.flows.load_model`."""
        from mflow_sbi.flows import load_model

        directory = Path(directory)
        verify_manifest(directory)
        names = read_toml(directory / CONFIG_FILE).get("model", {}).get("members")
        if not isinstance(names, list) or not names or not all(isinstance(name, str) for name in names):
            raise DataFileError(f"{directory / CONFIG_FILE}: an ensemble needs 'members', a non-empty list of "
                                f"member directory names, got {names!r}")
        members = []
        for name in names:
            if not (directory / name / CONFIG_FILE).is_file():
                raise DataFileError(f"{directory / name}: ensemble member listed in {directory / CONFIG_FILE} is "
                                    "missing or incomplete")
            member = load_model(directory / name, device)
            if isinstance(member, ModelEnsemble):
                raise DataFileError(f"{directory / name}: an ensemble member cannot itself be an ensemble")
            members.append(member)
        try:
            return cls(members).eval()
        except InputError as err:
            raise DataFileError(f"{directory}: {err}") from None


def _prior_specs(model: ConditionalDensityModel) -> list | None:
    prior: IndependentPrior | None = model.prior
    return None if prior is None else list(prior.specs)


def representative(model, model_dir: str | os.PathLike) -> tuple[ConditionalDensityModel, Path]:
    """(model, directory) whose learned manifold stands for ``model`` in manifold checks: an ensemble's member 0
    and its directory, any other model itself."""
    if isinstance(model, ModelEnsemble):
        return model.representative, Path(model_dir) / member_dir_name(0)
    return model, Path(model_dir)
