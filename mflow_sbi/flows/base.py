"""What every conditional density model shares: input checks, standardization, modes, save/load.

A model estimates p(x|theta) for x in R^d and theta in R^p. Inputs are standardized inside the model
(x_std = (x - mean)/scale, likewise theta; with ``preprocessing = "asinh"`` x is first warped by a signed log,
see ``standardize``); densities are always reported in the user's raw units:

    log p(x|theta) = log p_std(x_std|theta) + log|det d x_std / d x|   (= - sum_j log scale_j when affine)

Subclasses set ``model_type``, ``modes`` and ``default_mode`` and implement ``_log_prob_std`` and
``_sample_std``. Training works on standardized tensors through the public ``log_prob_std`` (and, for
models with a manifold, the methods listed in ``manifold.py``). Models whose theta enters only an inner flow
on latent coordinates also implement the cached-likelihood pair ``cache_observed`` / ``latent_log_prob``;
the others raise NoCachedLikelihood.

Transform stacks run through :meth:`ConditionalDensityModel.run_stack`: nflows' own ``forward``/``inverse``
(``flow_kernels = "nflows"``, the default) or the fused evaluation of ``mflow_sbi.flows.fused`` (``"fused"``,
the same function with fewer tensor operations; training switches it on with ``[training] flow_kernels``).

Networks run in float32 by default; ``model.double()`` switches a model (weights, scalers and the dtype
its inputs are converted to) to float64, e.g. for precise reference computations. ``model.to(device)`` moves
it to a GPU: inputs (numpy arrays or tensors anywhere) are then moved to the model's ``device``, and results
stay there (tensors) until the caller moves them. Sampling draws its noise from the given CPU generator and
moves it to the device, so a seed gives the same noise on every device. Saved weights load onto the CPU
whatever device they were saved from (``load(directory, device)`` then moves them).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import platform
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from mflow_sbi import __version__
from mflow_sbi.devices import resolve_device
from mflow_sbi.errors import DataFileError, InputError
from mflow_sbi.flows.fused import stack_forward, stack_inverse
from mflow_sbi.flows.standardize import Standardizer
from mflow_sbi.io import atomic_path, read_json, save_json
from mflow_sbi.layout import CONFIG_FILE, MANIFEST_FILE, VERSIONS_FILE, WEIGHTS_FILE
from mflow_sbi.priors import IndependentPrior
from mflow_sbi.tomlio import read_toml, write_toml

ArrayLike = torch.Tensor | np.ndarray


class UnsupportedMode(InputError):
    """A density mode that this model does not provide."""


class NoCachedLikelihood(InputError):
    """The model cannot split log p(x|theta) into a theta-free encoding and a latent density."""


def as_tensor(values: ArrayLike, dtype: torch.dtype = torch.float32, device: torch.device | None = None) -> torch.Tensor:
    """A tensor view/copy of an array or tensor in ``dtype`` (networks run in float32 by default), on ``device``
    (None: where it is)."""
    return torch.as_tensor(values).to(device=device, dtype=dtype)


def standard_noise(shape: tuple[int, ...], generator: torch.Generator | None, like: torch.Tensor) -> torch.Tensor:
    """N(0, 1) noise of ``shape`` with the dtype and device of ``like``, drawn on the CPU from ``generator`` (a
    CPU generator, or torch's global one when None) so that the same seed gives the same noise on any device."""
    return torch.randn(shape, generator=generator, dtype=like.dtype).to(like.device)


def _density_models(module: nn.Module) -> list[ConditionalDensityModel]:
    """``module`` itself when it is a density model, else the density models among its descendants (the members
    of an ensemble); the walk stops at each density model, so it costs a few checks, not one per layer."""
    if isinstance(module, ConditionalDensityModel):
        return [module]
    return [model for child in module.children() for model in _density_models(child)]


@contextlib.contextmanager
def flow_kernels(model: nn.Module, kernels: str) -> Iterator[None]:
    """Evaluate the stacks of ``model`` and of every model inside it (the members of an ensemble) with
    ``kernels`` ("nflows" or "fused") inside the block, then restore each one's setting. Modules without the
    setting (a user's own model) are left alone. Cheap enough for every likelihood call."""
    models = _density_models(model) if isinstance(model, nn.Module) else []
    previous = [m.flow_kernels for m in models]
    for m in models:
        m.flow_kernels = kernels
    try:
        yield
    finally:
        for m, setting in zip(models, previous, strict=True):
            m.flow_kernels = setting


class ConditionalDensityModel(nn.Module):
    """Base class of AF, PIE, M-flow and Me-flow."""

    model_type: ClassVar[str]  # the registry key (``MODEL_TYPES``), written to config.toml
    display_name: ClassVar[str]  # for legends and reports
    modes: ClassVar[tuple[str, ...]]
    default_mode: ClassVar[str]
    needs_latent_dim: ClassVar[bool] = False  # True for models with a learned manifold (of dimension latent_dim)
    latent_dim: int | None = None
    conditional_outer: bool = False
    flow_kernels: str = "nflows"  # how run_stack evaluates the stacks (architecture.FLOW_KERNELS); not saved

    def __init__(
        self,
        data_dim: int,
        parameter_dim: int,
        parameter_names: tuple[str, ...] | list[str] | None = None,
        prior: IndependentPrior | None = None,
        preprocessing: str = "affine",
    ) -> None:
        super().__init__()
        if data_dim < 1 or parameter_dim < 1:
            raise InputError(f"data_dim and parameter_dim must be >= 1, got {data_dim} and {parameter_dim}")
        self.data_dim = int(data_dim)
        self.parameter_dim = int(parameter_dim)
        names = tuple(parameter_names) if parameter_names is not None else tuple(f"theta_{i}" for i in range(parameter_dim))
        if len(names) != parameter_dim:
            raise InputError(f"{len(names)} parameter names given for {parameter_dim} parameters")
        self.parameter_names = names
        self.prior = prior
        if prior is not None and prior.dim != parameter_dim:
            raise InputError(f"prior has {prior.dim} parameters but the model has parameter_dim={parameter_dim}")
        self.x_scaler = Standardizer(data_dim, preprocessing)
        self.theta_scaler = Standardizer(parameter_dim)

    # --- configuration -----------------------------------------------------------------------------
    def architecture(self) -> dict[str, Any]:
        """Constructor keywords (besides names and prior) that rebuild this architecture (``preprocessing``
        only when it is not the default "affine", so that directories of earlier versions read the same)."""
        extra = {"preprocessing": self.x_scaler.kind} if self.x_scaler.warped else {}
        return {"data_dim": self.data_dim, "parameter_dim": self.parameter_dim, **extra}

    def fit_scalers(self, x: ArrayLike, theta: ArrayLike, weights: ArrayLike | None = None) -> None:
        """Fit the x and theta standardizations on training data (weighted moments with per-event ``weights``)."""
        x, theta = self.check_inputs(x, theta)
        weights = None if weights is None else torch.as_tensor(weights)
        self.x_scaler.fit(x, weights)
        self.theta_scaler.fit(theta, weights)

    def run_stack(self, stack: nn.Module, inputs: torch.Tensor, context: torch.Tensor | None = None, *,
                  inverse: bool = False, log_det: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(outputs, log|det d outputs / d inputs|) of an nflows stack in its forward (data -> latent) or
        inverse direction, with ``flow_kernels``; the fused kernels return None for the log-det when
        ``log_det`` is False (nflows always computes it)."""
        if self.flow_kernels == "fused":
            return (stack_inverse if inverse else stack_forward)(stack, inputs, context, log_det=log_det)
        return stack.inverse(inputs, context=context) if inverse else stack(inputs, context=context)

    # --- input validation ------------------------------------------------------------------------------
    @property
    def float_dtype(self) -> torch.dtype:
        """The floating dtype of the model (float32 unless ``.double()`` was called)."""
        return self.x_scaler.mean.dtype

    @property
    def device(self) -> torch.device:
        """The device the model's weights and scalers are on (``model.to(device)`` moves them)."""
        return self.x_scaler.mean.device

    def check_x(self, x: ArrayLike, what: str = "x") -> torch.Tensor:
        x = as_tensor(x, self.float_dtype, self.device)
        if x.ndim != 2 or x.shape[1] != self.data_dim:
            raise InputError(f"{what} must have shape (N, {self.data_dim}), got {tuple(x.shape)}")
        if not bool(torch.isfinite(x).all()):
            raise InputError(f"{what} contains NaN or inf values")
        return x

    def check_theta(self, theta: ArrayLike, rows: int) -> torch.Tensor:
        theta = as_tensor(theta, self.float_dtype, self.device)
        if theta.ndim == 1 and theta.shape[0] == self.parameter_dim:
            theta = theta.expand(rows, -1)
        if theta.ndim != 2 or theta.shape != (rows, self.parameter_dim):
            expected = f"({self.parameter_dim},) or ({rows}, {self.parameter_dim})"
            raise InputError(f"theta must have shape {expected}, got {tuple(theta.shape)}")
        if not bool(torch.isfinite(theta).all()):
            raise InputError("theta contains NaN or inf values")
        return theta

    def check_inputs(self, x: ArrayLike, theta: ArrayLike) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.check_x(x)
        return x, self.check_theta(theta, x.shape[0])

    def check_mode(self, mode: str | None) -> str:
        mode = self.default_mode if mode is None else mode
        if mode not in self.modes:
            raise UnsupportedMode(f"{type(self).__name__} has no density mode {mode!r}; available: {', '.join(self.modes)}")
        return mode

    # --- densities and sampling --------------------------------------------------------------------
    def log_prob(self, x: ArrayLike, theta: ArrayLike, mode: str | None = None) -> torch.Tensor:
        """log p(x|theta) per event in raw units, shape (N,); ``mode`` defaults to ``default_mode``."""
        mode = self.check_mode(mode)
        x, theta = self.check_inputs(x, theta)
        return self._log_prob_std(self.x_scaler(x), self.theta_scaler(theta), mode)

    def log_prob_std(self, x_std: torch.Tensor, theta_std: torch.Tensor, mode: str | None = None) -> torch.Tensor:
        """log p(x|theta) per event in raw units for standardized inputs (x_std, theta_std) of shape (N, d) and
        (N, p), differentiable w.r.t. the parameters and theta_std: the density that training maximizes."""
        return self._log_prob_std(x_std, theta_std, self.check_mode(mode))

    def sample(self, theta: ArrayLike, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw n events x ~ p(x|theta) for one parameter point theta (p,), shape (n, d), raw units."""
        if n < 1:
            raise InputError(f"number of samples must be >= 1, got {n}")
        theta = self.check_theta(theta, n)
        return self.x_scaler.inverse(self._sample_std(self.theta_scaler(theta), generator))

    # --- cached likelihood for inference ---------------------------------------------------------------
    @property
    def supports_cached_likelihood(self) -> bool:
        """True when theta enters only an inner flow on latent coordinates (see ``cache_observed``)."""
        return False

    def cache_observed(self, x: ArrayLike, mode: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(u, c) with log_prob(x, theta, mode) == latent_log_prob(u, theta) + c for every theta."""
        raise NoCachedLikelihood(self._no_cache_reason())

    def latent_log_prob(self, u: ArrayLike, theta: ArrayLike) -> torch.Tensor:
        """log p(u|theta) of the latent density used with ``cache_observed``."""
        raise NoCachedLikelihood(self._no_cache_reason())

    def _no_cache_reason(self) -> str:
        return (
            f"{type(self).__name__} has no cached likelihood: theta conditions the map from x to latent space, "
            "so every event must be re-encoded for every theta (use log_prob)"
        )

    def _log_prob_std(self, x_std: torch.Tensor, theta_std: torch.Tensor, mode: str) -> torch.Tensor:
        raise NotImplementedError

    def _sample_std(self, theta_std: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        raise NotImplementedError

    # --- persistence -------------------------------------------------------------------------------
    def save(self, directory: str | os.PathLike) -> Path:
        """Write config.toml (type, architecture, parameter names, prior), weights.pt and versions.json."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        config = {
            "model": {"type": self.model_type, "parameter_names": list(self.parameter_names), **self.architecture()},
        }
        if self.prior is not None:
            config["prior"] = {"specs": self.prior.specs}
        write_toml(directory / CONFIG_FILE, config)
        with atomic_path(directory / WEIGHTS_FILE) as tmp:
            torch.save(self.state_dict(), tmp)
        save_json(directory / VERSIONS_FILE, software_versions())
        save_json(directory / MANIFEST_FILE, {name: file_sha256(directory / name) for name in (CONFIG_FILE, WEIGHTS_FILE)})
        return directory

    @classmethod
    def from_config(cls, config: dict) -> ConditionalDensityModel:
        model_section = dict(config["model"])
        model_section.pop("type")
        prior = IndependentPrior.from_specs(config["prior"]["specs"]) if "prior" in config else None
        return cls(prior=prior, **model_section)

    @classmethod
    def load(cls, directory: str | os.PathLike, device: str | torch.device | None = None) -> ConditionalDensityModel:
        """The model saved in ``directory`` (weights saved on any device are read onto the CPU), moved to
        ``device`` (a torch device, or a name of :mod:`mflow_sbi.devices`; None: the CPU)."""
        directory = Path(directory)
        config = read_toml(directory / CONFIG_FILE)
        found = config.get("model", {}).get("type")
        if found != cls.model_type:
            raise DataFileError(f"{directory / CONFIG_FILE}: model type {found!r}, expected {cls.model_type!r}")
        try:
            model = cls.from_config(config)
        except (TypeError, KeyError, InputError) as err:  # keys of another version, or values out of range
            raise DataFileError(f"{directory / CONFIG_FILE}: cannot build the {cls.model_type} model it describes "
                                f"({' '.join(str(err).split())}){_written_by(directory)}") from None
        weights = directory / WEIGHTS_FILE
        if not weights.is_file():
            raise DataFileError(f"{weights}: no such file (incomplete model directory)")
        verify_manifest(directory)
        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)  # tensors only, never pickled code
            model.load_state_dict(state)
        except Exception as err:  # noqa: BLE001 - a truncated, foreign or mismatched file is reported the same way
            raise DataFileError(f"{weights}: cannot load the weights ({str(err).splitlines()[0]})") from None
        if device is not None:
            model.to(device if isinstance(device, torch.device) else resolve_device(device))
        return model.eval()


def _written_by(directory: Path) -> str:
    """", written by mflow-sbi X (this is Y)" when versions.json records another version, else ""."""
    try:
        written = read_json(directory / VERSIONS_FILE).get("mflow_sbi")
    except (InputError, AttributeError):
        return ""
    return f"; written by mflow-sbi {written}, this is {__version__}" if written and written != __version__ else ""


def file_sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_manifest(directory: Path) -> None:
    """The files listed in ``manifest.json`` still have the SHA-256 recorded when the model was saved (model
    directories written before the manifest existed are accepted as they are)."""
    path = directory / MANIFEST_FILE
    if not path.is_file():
        return
    recorded = read_json(path)
    for name, expected in recorded.items():
        target = directory / name
        if not target.is_file() or file_sha256(target) != expected:
            raise DataFileError(f"{target}: does not match the SHA-256 recorded in {MANIFEST_FILE} when the model was "
                                "saved (truncated, modified or replaced); retrain or restore the file")


def _distribution_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def software_versions() -> dict[str, str]:
    """Versions of the packages a saved model depends on (written to versions.json)."""
    return {
        "mflow_sbi": __version__,
        "torch": torch.__version__,
        "nflows": _distribution_version("nflows"),
        "numpy": np.__version__,
        "python": platform.python_version(),
    }
