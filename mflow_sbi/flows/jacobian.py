"""Batched decoder Jacobians J = dg/du' (d x n) and log det(J^T J).

The manifold density of an M-flow needs, per event, the volume factor of the decoder g: R^n -> R^d,

    log p(x) = log p(u') - 1/2 log det(J^T J),    J = dg/du' in R^{d x n}.

Samples are independent, so all Jacobians of a batch of B points come from one pass over an expanded
batch of B*n rows: row (b, k) holds u'_b and the tangent e_k, and the Jacobian-vector product J(u'_b) e_k
is column k of J(u'_b). Two ways to get the products:

- ``"forward"``: forward-mode AD (``torch.func.jvp``), one pass; not differentiable w.r.t. the network
  parameters -- use it for evaluation.
- ``"double_backward"``: the double-vjp trick. With a dummy w, a = dg^T w = J^T w is linear in w, so
  d(a . t)/dw = J t. Two reverse passes; with ``create_graph=True`` the result is differentiable w.r.t. the
  parameters (for training on the exact density).
- ``"loop"``: the naive reference, d reverse passes (one per output coordinate); kept for benchmarks and
  tests.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from mflow_sbi.errors import InputError

Decoder = Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor]
METHODS = ("forward", "double_backward", "loop")


class RankDeficientJacobian(InputError):
    """J^T J is not positive definite: the decoder is not injective (or numerically degenerate) there."""


def _expand(
    u: torch.Tensor, context: torch.Tensor | None, keep_graph: bool
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """Rows (b, k) = u_b repeated n times, the contexts alike, and the one-hot tangents e_k.

    With ``keep_graph`` the rows stay attached to u's graph (so J is differentiable through u as well).
    """
    batch, n = u.shape
    rows = (u if keep_graph else u.detach()).repeat_interleave(n, dim=0)
    tangents = torch.eye(n, dtype=u.dtype, device=u.device).repeat(batch, 1)
    rows_context = None if context is None else context.repeat_interleave(n, dim=0)
    return rows, rows_context, tangents


def decoder_jacobian(
    decode: Decoder,
    u: torch.Tensor,
    context: torch.Tensor | None = None,
    method: str = "forward",
    create_graph: bool = False,
) -> torch.Tensor:
    """Jacobians of ``decode(u, context)`` w.r.t. u for a batch: u (B, n) -> (B, d, n).

    ``create_graph=True`` (only with "double_backward" or "loop") keeps the graph so the result can be
    differentiated w.r.t. the decoder's parameters and, when u carries a graph, through u as well.
    """
    if method not in METHODS:
        raise InputError(f"unknown Jacobian method {method!r}; choose one of {METHODS}")
    if create_graph and method == "forward":
        raise InputError("method='forward' is not differentiable w.r.t. parameters; use 'double_backward'")
    batch, n = u.shape
    if method == "loop":
        return _loop_jacobian(decode, u, context, create_graph)
    rows, rows_context, tangents = _expand(u, context, keep_graph=create_graph)
    if method == "forward":
        _, products = torch.func.jvp(lambda z: decode(z, rows_context), (rows,), (tangents,))
    else:
        with torch.enable_grad():
            if not rows.requires_grad:
                rows = rows.detach().requires_grad_(True)
            outputs = decode(rows, rows_context)
            dummy = torch.zeros_like(outputs, requires_grad=True)
            (transposed,) = torch.autograd.grad(outputs, rows, grad_outputs=dummy, create_graph=True)
            (products,) = torch.autograd.grad(transposed, dummy, grad_outputs=tangents, create_graph=create_graph)
    return products.reshape(batch, n, -1).transpose(1, 2)


def _loop_jacobian(
    decode: Decoder, u: torch.Tensor, context: torch.Tensor | None, create_graph: bool
) -> torch.Tensor:
    with torch.enable_grad():
        rows = u if create_graph and u.requires_grad else u.detach().requires_grad_(True)
        outputs = decode(rows, context)
        columns = [
            torch.autograd.grad(outputs[:, i].sum(), rows, retain_graph=True, create_graph=create_graph)[0]
            for i in range(outputs.shape[1])
        ]
    return torch.stack(columns, dim=1)


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
