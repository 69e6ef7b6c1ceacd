"""Adam and AdamW (PyTorch's `torch.optim.Adam` / `torch.optim.AdamW` updates).

Bias corrections are computed from the float32 `state['step']` tensor in
float64, so they match PyTorch's Python-double arithmetic closely (in
float32, `1 - 0.999 ** step` loses most of its digits to cancellation)."""

from __future__ import annotations

import graphc
from graphc.optim.optimizer import Optimizer, cast_like, pow_scalar, scalar_tensor


def _check_adam_args(lr, betas, eps, weight_decay) -> None:
    if not 0.0 <= lr:
        raise ValueError(f"Invalid learning rate: {lr}")
    if not 0.0 <= eps:
        raise ValueError(f"Invalid epsilon value: {eps}")
    if not 0.0 <= betas[0] < 1.0:
        raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
    if not 0.0 <= betas[1] < 1.0:
        raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
    if not 0.0 <= weight_decay:
        raise ValueError(f"Invalid weight_decay value: {weight_decay}")


def lerp_(tensor, end, weight: float):
    """In-place `tensor += weight * (end - tensor)` (PyTorch's lerp_ for
    weight < 0.5, the form it uses for moment averages)."""
    if weight < 0.5:
        return tensor.add_((end - tensor) * weight)
    return tensor.copy_(end - (end - tensor) * (1.0 - weight))


class Adam(Optimizer):
    """Adam (Kingma & Ba), with optional AMSGrad, L2 weight decay and
    maximization; `decoupled_weight_decay=True` gives AdamW.

    Update per parameter (t = step, counted from 1)::

        g = g + weight_decay * p            (or p *= 1 - lr * weight_decay when decoupled)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        v_hat = max(v_hat, v) if amsgrad else v
        p = p - lr / (1 - beta1**t) * m / (sqrt(v_hat) / sqrt(1 - beta2**t) + eps)

    >>> w = graphc.zeros(2, requires_grad=True)
    >>> opt = Adam([w], lr=0.001)
    """

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas=(0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        decoupled_weight_decay: bool = False,
        foreach=None,
        capturable: bool = False,
        differentiable: bool = False,
        fused=None,
    ):
        _check_adam_args(lr, betas, eps, weight_decay)
        # foreach / capturable / differentiable / fused: accepted for source
        # compatibility; graphc's update is always the tensor-only form.
        defaults = dict(
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            maximize=maximize,
            decoupled_weight_decay=decoupled_weight_decay,
        )
        super().__init__(params, defaults)

    def _init_state(self, p, group) -> dict:
        state = {"step": scalar_tensor(0.0), "exp_avg": graphc.zeros_like(p), "exp_avg_sq": graphc.zeros_like(p)}
        if group["amsgrad"]:
            state["max_exp_avg_sq"] = graphc.zeros_like(p)
        return state

    def _update(self, p, grad, state, group, lr) -> None:
        beta1, beta2 = group["betas"]
        weight_decay = group["weight_decay"]
        step = state["step"]
        step.add_(1)
        if weight_decay != 0:
            if group["decoupled_weight_decay"]:
                p.mul_(1 - lr * weight_decay)
            else:
                grad = grad.add(p, alpha=weight_decay)
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        lerp_(exp_avg, grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).add_(grad * grad * (1 - beta2))

        step64 = step.to(graphc.float64)
        bias_correction1 = 1 - pow_scalar(beta1, step64)
        bias_correction2_sqrt = (1 - pow_scalar(beta2, step64)).sqrt()
        step_size = cast_like(lr.to(graphc.float64) / bias_correction1, p)

        second_moment = exp_avg_sq
        if group["amsgrad"]:
            max_sq = state["max_exp_avg_sq"]
            max_sq.copy_(graphc.maximum(max_sq, exp_avg_sq))
            second_moment = max_sq
        denom = (second_moment.sqrt() / cast_like(bias_correction2_sqrt, p)).add_(group["eps"])
        p.sub_(exp_avg / denom * step_size)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): the decay
    `p *= 1 - lr * weight_decay` is applied to the weights directly rather
    than added to the gradient. Default weight_decay is 1e-2."""

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas=(0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        foreach=None,
        capturable: bool = False,
        differentiable: bool = False,
        fused=None,
    ):
        super().__init__(
            params,
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            maximize=maximize,
            decoupled_weight_decay=True,
        )
