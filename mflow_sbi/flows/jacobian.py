"""Batched decoder Jacobians J = dg/du' (d x n) and log det(J^T J).

The manifold density of an M-flow needs, per event, the volume factor of the decoder g: R^n -> R^d,

    log p(x) = log p(u') - 1/2 log det(J^T J),    J = dg/du' in R^{d x n}.

Samples are independent, so column k of every J(u'_b) in a batch is one Jacobian-vector product of the
batched decoder with the tangent e_k (the same one-hot vector for every event). The n columns come from
``torch.func.vmap`` over the n tangents while the primal batch stays unbatched, so g is evaluated once per
event and only the tangents are n-fold (nflows splines cannot run under a per-sample vmap, but they do
under this one). Methods:

- ``"forward"``: forward-mode AD, vmap over ``torch.func.jvp``. The fastest; with ``create_graph=True``
  the columns are recorded by autograd (reverse-over-forward), so they can be differentiated w.r.t. the
  decoder's parameters and u. Limitation: torch has no reverse-over-forward derivative of ``glu``, which
  nflows' residual nets use to gate by a context, so a context-conditioned nflows decoder needs
  "double_backward" for ``create_graph=True``.
- ``"double_backward"``: the double-vjp trick. With a dummy w, a = J^T w is linear in w, so
  d(a . t)/dw = J t; the n products are one batched reverse pass (``is_grads_batched``). Differentiable
  with ``create_graph=True``.
- ``"loop"``: the naive reference, d reverse passes (one per output coordinate); for benchmarks and tests.

log det(J^T J) is computed in float64 through a Cholesky factorization (``log_det_metric``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch

from mflow_sbi.errors import InputError
from mflow_sbi.flows.architecture import JACOBIAN_METHODS

Decoder = Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor]
METHODS = JACOBIAN_METHODS


class RankDeficientJacobian(InputError):
    """J^T J is not positive definite: the decoder is not injective (or numerically degenerate) there."""


def _one_hot_tangents(u: torch.Tensor) -> torch.Tensor:
    """(n, B, n): slice k holds the tangent e_k for every event of the batch."""
    batch, n = u.shape
    return torch.eye(n, dtype=u.dtype, device=u.device).unsqueeze(1).expand(n, batch, n)


def decoder_jacobian(
    decode: Decoder,
    u: torch.Tensor,
    context: torch.Tensor | None = None,
    method: str = "forward",
    create_graph: bool = False,
) -> torch.Tensor:
    """Jacobians of ``decode(u, context)`` w.r.t. u for a batch: u (B, n) -> (B, d, n).

    ``create_graph=True`` keeps the graph so the result can be differentiated w.r.t. the decoder's
    parameters and, when u carries a graph, through u as well. Random layers (dropout) use the same
    random draw for all n columns.
    """
    return decoder_value_and_jacobian(decode, u, context, method, create_graph)[1]


def decoder_value_and_jacobian(
    decode: Decoder,
    u: torch.Tensor,
    context: torch.Tensor | None = None,
    method: str = "forward",
    create_graph: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(decode(u, context) (B, d), its Jacobians (B, d, n)) from one decoder evaluation: every method evaluates
    the decoder at u anyway (the primal of the JVPs, the forward pass of the VJPs), so the value is free.
    With ``create_graph=True`` both carry the graph (see :func:`decoder_jacobian`)."""
    if method not in METHODS:
        raise InputError(f"unknown Jacobian method {method!r}; choose one of {METHODS}")
    if method == "loop":
        return _loop_jacobian(decode, u, context, create_graph)
    points = u if create_graph else u.detach()
    tangents = _one_hot_tangents(u)
    if method == "forward":
        def column(tangent: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return torch.func.jvp(lambda z: decode(z, context), (points,), (tangent,))

        with torch.set_grad_enabled(create_graph and torch.is_grad_enabled()), warnings.catch_warnings():
            # nflows' context gating (glu) has no vmap batching rule: torch loops over the n tangents there
            warnings.filterwarnings("ignore", message="There is a performance drop because we have not yet implemented")
            outputs, columns = torch.func.vmap(column, randomness="same", out_dims=(None, 0))(tangents)
    else:
        with torch.enable_grad():
            if not points.requires_grad:
                points = points.detach().requires_grad_(True)
            outputs = decode(points, context)
            dummy = torch.zeros_like(outputs, requires_grad=True)
            (transposed,) = torch.autograd.grad(outputs, points, grad_outputs=dummy, create_graph=True)
            (columns,) = torch.autograd.grad(
                transposed, dummy, grad_outputs=tangents, is_grads_batched=True, create_graph=create_graph
            )
        if not create_graph:
            outputs = outputs.detach()
    return outputs, columns.permute(1, 2, 0)


def _loop_jacobian(
    decode: Decoder, u: torch.Tensor, context: torch.Tensor | None, create_graph: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.enable_grad():
        rows = u if create_graph and u.requires_grad else u.detach().requires_grad_(True)
        outputs = decode(rows, context)
        columns = [
            torch.autograd.grad(outputs[:, i].sum(), rows, retain_graph=True, create_graph=create_graph)[0]
            for i in range(outputs.shape[1])
        ]
    return (outputs if create_graph else outputs.detach()), torch.stack(columns, dim=1)


def log_det_metric(jacobian: torch.Tensor) -> torch.Tensor:
    """log det(J^T J) per batch element, computed in float64 through a Cholesky factorization.

    Raises RankDeficientJacobian naming the offending batch indices when J^T J is not positive definite.
    """
    jac = jacobian.to(torch.float64)
    metric = jac.transpose(-1, -2) @ jac
    cholesky, info = torch.linalg.cholesky_ex(metric)
    if bool((info > 0).any()):
        bad = torch.nonzero(info > 0).flatten().tolist()
        raise RankDeficientJacobian(
            f"decoder Jacobian J^T J is singular (rank-deficient) at batch indices {bad[:10]}"
            + (" ..." if len(bad) > 10 else "")
        )
    return 2.0 * torch.log(torch.diagonal(cholesky, dim1=-2, dim2=-1)).sum(-1)


# Above this condition number of J^T J (cond(J) > 1e4) the float32 Jacobian's smallest singular value, and hence
# log det(J^T J), carries a relative error of order 1e-7 * cond(J) >~ 1e-3: reported as ill-conditioned.
ILL_CONDITIONED = 1e8


def metric_condition_number(jacobian: torch.Tensor) -> torch.Tensor:
    """cond(J^T J) = (s_max / s_min)^2 per batch element from the singular values of J (float64); inf where J
    is rank-deficient."""
    singular = torch.linalg.svdvals(jacobian.to(torch.float64))
    return (singular[..., 0] / singular[..., -1]) ** 2
