"""Fused evaluation of nflows transform stacks: the same functions and parameters, fewer tensor operations.

nflows evaluates a rational-quadratic spline (Durkan et al. 2019, arXiv:1906.04032) on the elements inside
[-B, B] only: it selects them with boolean masks, computes the spline on the selected copies and scatters
the results back (``nonzero``, ``index``, ``index_put`` and a host synchronization per layer), and it
always computes the log-determinant. Here every element goes through the spline, with the outside elements
replaced by 0 (a point inside the interval, so every intermediate stays finite), and the result is chosen
elementwise:

    y = s(x) if |x| <= B else x,        log|dy/dx| = log s'(x) if |x| <= B else 0.

Inside the interval this is the same spline, bin search and formulas as nflows', so outputs and log-dets
agree to float rounding (``tests/flows/test_fused.py``); outside it is the linear tail. Gradients agree
too: ``torch.where`` sends zero gradient to the branch it does not choose, as nflows' masking does. The
log-determinant is skipped when the caller does not need it (``log_det=False``: the encoder and decoder of
phase M), and the mask-free code has no data-dependent shapes, so ``torch.compile`` traces it into one
graph.

Supported layers: nflows' ``PiecewiseRationalQuadraticCouplingTransform`` with linear tails (what
``builders.build_stack`` makes for "rq_coupling"). Every other layer (LU and permutation mixing, affine
coupling, autoregressive splines) runs through its own nflows ``forward``/``inverse``.

Spline on a bin [x_k, x_{k+1}] with heights y_k, slopes delta_k = (y_{k+1} - y_k)/(x_{k+1} - x_k) and knot
derivatives d_k, xi = (x - x_k)/(x_{k+1} - x_k):

    s(x) = y_k + (y_{k+1} - y_k) (delta_k xi^2 + d_k xi (1 - xi)) / (delta_k + (d_k + d_{k+1} - 2 delta_k) xi (1 - xi))

and its inverse is the root of the quadratic in xi that lies in [0, 1].
"""

from __future__ import annotations

import math

import torch
from nflows.transforms import CompositeTransform, PiecewiseRationalQuadraticCouplingTransform, Transform
from torch.nn import functional

Result = tuple[torch.Tensor, torch.Tensor | None]


def _softmax(values: torch.Tensor) -> torch.Tensor:
    """softmax over the last axis in four elementwise/reduction passes (ATen's softmax is slow for the few
    bins of a spline, about 50 ns per element here)."""
    exponentials = torch.exp(values - values.amax(-1, keepdim=True))
    return exponentials / exponentials.sum(-1, keepdim=True)


def _knots(unnormalized: torch.Tensor, minimum: float, bound: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(knot positions (..., K + 1) from -bound to bound, bin sizes (..., K)), each bin at least ``minimum`` of
    the interval: sizes = minimum + (1 - minimum K) softmax(unnormalized)."""
    bins = unnormalized.shape[-1]
    sizes = minimum + (1 - minimum * bins) * _softmax(unnormalized)
    inner = (2 * bound) * torch.cumsum(sizes, dim=-1)[..., :-1] - bound
    end = inner.new_full((*inner.shape[:-1], 1), bound)
    knots = torch.cat([-end, inner, end], dim=-1)
    return knots, knots[..., 1:] - knots[..., :-1]


def rq_spline(
    inputs: torch.Tensor,
    parameters: torch.Tensor,
    *,
    bound: float,
    inverse: bool,
    log_det: bool,
    min_bin_width: float,
    min_bin_height: float,
    min_derivative: float,
    scale: float,
) -> Result:
    """The elementwise spline with linear tails outside [-bound, bound]: inputs (N, F), parameters (N, F, 3K - 1)
    as nflows lays them out (K widths, K heights, K - 1 inner derivatives; widths and heights divided by
    ``scale``). Returns (outputs (N, F), log|det| (N,) or None)."""
    bins = (parameters.shape[-1] + 1) // 3
    inside = (inputs >= -bound) & (inputs <= bound)
    x = torch.where(inside, inputs, torch.zeros_like(inputs))
    raw_widths, raw_heights, raw_derivatives = parameters.split([bins, bins, bins - 1], dim=-1)
    cumwidths, widths = _knots(raw_widths / scale, min_bin_width, bound)
    cumheights, heights = _knots(raw_heights / scale, min_bin_height, bound)
    edge = math.log(math.exp(1 - min_derivative) - 1)  # softplus^-1(1 - min_derivative): slope 1 at the ends
    derivatives = min_derivative + functional.softplus(functional.pad(raw_derivatives, (1, 1), value=edge))
    locations = cumheights if inverse else cumwidths
    locations = torch.cat([locations[..., :-1], locations[..., -1:] + 1e-6], dim=-1)  # nflows' searchsorted eps
    index = torch.sum(x[..., None] >= locations, dim=-1) - 1
    # one gather of the seven per-bin quantities at each element's bin (instead of seven gathers)
    table = torch.stack([cumwidths[..., :-1], widths, cumheights[..., :-1], heights / widths, derivatives[..., :-1],
                         derivatives[..., 1:], heights], dim=-1)
    picked = table.gather(-2, index[..., None, None].expand(*index.shape, 1, 7))[..., 0, :]
    x_k, width, y_k, delta, d_k, d_k1, height = picked.unbind(-1)
    curvature = d_k + d_k1 - 2 * delta
    if inverse:
        shifted = x - y_k
        a = shifted * curvature + height * (delta - d_k)
        b = height * d_k - shifted * curvature
        c = -delta * shifted
        xi = (2 * c) / (-b - torch.sqrt(b.pow(2) - 4 * a * c))
        outputs = xi * width + x_k
    else:
        xi = (x - x_k) / width
        xi_1 = xi * (1 - xi)
        outputs = y_k + height * (delta * xi.pow(2) + d_k * xi_1) / (delta + curvature * xi_1)
    outputs = torch.where(inside, outputs, inputs)
    if not log_det:
        return outputs, None
    xi_1 = xi * (1 - xi)
    numerator = delta.pow(2) * (d_k1 * xi.pow(2) + 2 * delta * xi_1 + d_k * (1 - xi).pow(2))
    logabsdet = torch.log(numerator) - 2 * torch.log(delta + curvature * xi_1)
    logabsdet = torch.where(inside, -logabsdet if inverse else logabsdet, torch.zeros_like(logabsdet))
    return outputs, logabsdet.sum(-1)


def is_fusable(layer: Transform) -> bool:
    """True for the layers that :func:`stack_forward` / :func:`stack_inverse` evaluate fused."""
    return (isinstance(layer, PiecewiseRationalQuadraticCouplingTransform) and layer.tails == "linear"
            and layer.unconditional_transform is None and hasattr(layer.transform_net, "hidden_features"))


def _coupling(layer: PiecewiseRationalQuadraticCouplingTransform, inputs: torch.Tensor, context: torch.Tensor | None,
              inverse: bool, log_det: bool) -> Result:
    """A spline coupling layer: the identity features condition the spline of the transformed ones."""
    identity = inputs[:, layer.identity_features]
    transformed = inputs[:, layer.transform_features]
    parameters = layer.transform_net(identity, context).reshape(inputs.shape[0], transformed.shape[1], -1)
    transformed, logabsdet = rq_spline(
        transformed, parameters, bound=layer.tail_bound, inverse=inverse, log_det=log_det,
        min_bin_width=layer.min_bin_width, min_bin_height=layer.min_bin_height,
        min_derivative=layer.min_derivative, scale=math.sqrt(layer.transform_net.hidden_features),
    )
    order = torch.cat([layer.identity_features, layer.transform_features])
    outputs = torch.cat([identity, transformed], dim=1)[:, torch.argsort(order)]
    return outputs, logabsdet


def _cascade(layers, inputs: torch.Tensor, context: torch.Tensor | None, inverse: bool, log_det: bool) -> Result:
    total = inputs.new_zeros(inputs.shape[0]) if log_det else None
    for layer in layers:
        if is_fusable(layer):
            inputs, logabsdet = _coupling(layer, inputs, context, inverse, log_det)
        else:
            inputs, logabsdet = layer.inverse(inputs, context) if inverse else layer(inputs, context)
        if log_det:
            total = total + logabsdet
    return inputs, total


def stack_forward(stack: CompositeTransform, inputs: torch.Tensor, context: torch.Tensor | None = None,
                  log_det: bool = True) -> Result:
    """``stack(inputs, context)`` (nflows' direction data -> latent): (outputs, log|det d outputs/d inputs|),
    the log-det None when ``log_det`` is False."""
    return _cascade(stack._transforms, inputs, context, False, log_det)


def stack_inverse(stack: CompositeTransform, inputs: torch.Tensor, context: torch.Tensor | None = None,
                  log_det: bool = True) -> Result:
    """``stack.inverse(inputs, context)``: (outputs, log|det d outputs/d inputs|), None without ``log_det``."""
    return _cascade(list(stack._transforms)[::-1], inputs, context, True, log_det)
