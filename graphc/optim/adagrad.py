"""Adagrad (PyTorch's `torch.optim.Adagrad` update, dense gradients)."""

from __future__ import annotations

import graphc
from graphc.optim.optimizer import Optimizer, cast_like, scalar_tensor


class Adagrad(Optimizer):
    """Adagrad: per-coordinate step sizes from the sum of squared gradients.

    Update per parameter (t = step, counted from 1)::

        g = g + weight_decay * p
        clr = lr / (1 + (t - 1) * lr_decay)
        sum = sum + g * g
        p = p - clr * g / (sqrt(sum) + eps)

    The state is created when the optimizer is built, as in PyTorch.
    """

    def __init__(
        self,
        params,
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
        foreach=None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        fused=None,
    ):
        for name, value in (
            ("learning rate", lr),
            ("lr_decay", lr_decay),
            ("weight_decay", weight_decay),
            ("initial_accumulator_value", initial_accumulator_value),
            ("epsilon", eps),
        ):
            if value < 0.0:
                raise ValueError(f"Invalid {name} value: {value}")
        defaults = dict(
            lr=lr,
            lr_decay=lr_decay,
            eps=eps,
            weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value,
            maximize=maximize,
        )
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                self.state[p].update(self._init_state(p, group))

    def _init_state(self, p, group) -> dict:
        accumulator = graphc.zeros_like(p)
        if group["initial_accumulator_value"] != 0:
            accumulator.add_(group["initial_accumulator_value"])
        return {"step": scalar_tensor(0.0), "sum": accumulator}

    def _update(self, p, grad, state, group, lr) -> None:
        step = state["step"]
        step.add_(1)
        if group["weight_decay"] != 0:
            grad = grad.add(p, alpha=group["weight_decay"])
        # Computed in float64, as PyTorch does with Python floats.
        decay = 1 + (step.to(graphc.float64) - 1) * group["lr_decay"]
        clr = cast_like(lr.to(graphc.float64) / decay, p)
        state_sum = state["sum"]
        state_sum.add_(grad * grad)
        std = state_sum.sqrt().add_(group["eps"])
        p.sub_(grad / std * clr)
