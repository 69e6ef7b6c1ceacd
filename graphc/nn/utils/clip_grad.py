"""Gradient clipping, as torch.nn.utils.clip_grad_norm_ / clip_grad_value_."""

from __future__ import annotations

import math

import graphc


def _grads(parameters):
    if isinstance(parameters, graphc.Tensor):
        parameters = [parameters]
    return [p.grad for p in parameters if p.grad is not None]


def _abs(x):
    return graphc.where(x < 0, -x, x)


def clip_grad_norm_(
    parameters,
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
    foreach=None,
):
    """Scale all gradients in place so that their joint `norm_type` norm is
    at most `max_norm`; return the total norm (before clipping) as a tensor.

    The scale is computed as a tensor (min(max_norm / (norm + 1e-6), 1)), so
    this traces without reading the norm eagerly.
    """
    grads = _grads(parameters)
    if not grads:
        return graphc.tensor(0.0)
    norm_type = float(norm_type)
    if math.isinf(norm_type):
        total = graphc.stack([_abs(g).amax() for g in grads]).amax()
    else:
        per_grad = [(_abs(g) ** norm_type).sum() for g in grads]
        total = graphc.stack(per_grad).sum() ** (1.0 / norm_type)
    if error_if_nonfinite:
        value = float(total)
        if math.isnan(value) or math.isinf(value):
            raise RuntimeError(
                f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, "
                "so it cannot be clipped. To disable this error and scale the gradients by the "
                "non-finite norm anyway, set `error_if_nonfinite=False`"
            )
    coefficient = max_norm / (total + 1e-6)
    coefficient = graphc.where(coefficient < 1.0, coefficient, graphc.ones_like(coefficient))
    with graphc.no_grad():
        for g in grads:
            g.copy_(g * coefficient)
    return total


def clip_grad_value_(parameters, clip_value: float, foreach=None) -> None:
    """Clamp every gradient element to [-clip_value, clip_value] in place."""
    clip_value = float(clip_value)
    with graphc.no_grad():
        for g in _grads(parameters):
            low = graphc.full_like(g, -clip_value)
            high = graphc.full_like(g, clip_value)
            g.copy_(graphc.where(g < -clip_value, low, graphc.where(g > clip_value, high, g)))
