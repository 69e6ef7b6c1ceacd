"""RMSprop (PyTorch's `torch.optim.RMSprop` update)."""

from __future__ import annotations

import graphc
from graphc.optim.adam import lerp_
from graphc.optim.optimizer import Optimizer, scalar_tensor


class RMSprop(Optimizer):
    """RMSprop, optionally centered and with momentum.

    Update per parameter::

        g = g + weight_decay * p
        v = alpha * v + (1 - alpha) * g * g
        avg = sqrt(v - g_avg**2) if centered (g_avg = running mean of g) else sqrt(v)
        avg = avg + eps
        buf = momentum * buf + g / avg;  p = p - lr * buf     (momentum > 0)
        p = p - lr * g / avg                                  (otherwise)
    """

    def __init__(
        self,
        params,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
        capturable: bool = False,
        foreach=None,
        maximize: bool = False,
        differentiable: bool = False,
    ):
        for name, value in (
            ("learning rate", lr),
            ("epsilon", eps),
            ("momentum", momentum),
            ("weight_decay", weight_decay),
            ("alpha", alpha),
        ):
            if value < 0.0:
                raise ValueError(f"Invalid {name} value: {value}")
        defaults = dict(
            lr=lr,
            alpha=alpha,
            eps=eps,
            weight_decay=weight_decay,
            momentum=momentum,
            centered=centered,
            maximize=maximize,
        )
        super().__init__(params, defaults)

    def _init_state(self, p, group) -> dict:
        state = {"step": scalar_tensor(0.0), "square_avg": graphc.zeros_like(p)}
        if group["momentum"] > 0:
            state["momentum_buffer"] = graphc.zeros_like(p)
        if group["centered"]:
            state["grad_avg"] = graphc.zeros_like(p)
        return state

    def _update(self, p, grad, state, group, lr) -> None:
        alpha = group["alpha"]
        state["step"].add_(1)
        if group["weight_decay"] != 0:
            grad = grad.add(p, alpha=group["weight_decay"])
        square_avg = state["square_avg"]
        square_avg.mul_(alpha).add_(grad * grad * (1 - alpha))
        if group["centered"]:
            grad_avg = state["grad_avg"]
            lerp_(grad_avg, grad, 1 - alpha)
            avg = (square_avg - grad_avg * grad_avg).sqrt()
        else:
            avg = square_avg.sqrt()
        avg = avg + group["eps"]
        if group["momentum"] > 0:
            buf = state["momentum_buffer"]
            buf.mul_(group["momentum"]).add_(grad / avg)
            p.sub_(buf * lr)
        else:
            p.sub_(grad / avg * lr)
