"""L-BFGS with PyTorch's closure API, defaults and iteration rules.

Unlike the other optimizers, a step branches on loss values and calls the
closure a data-dependent number of times, so `step()` runs eagerly (it
refuses to be traced). The closure may itself call a compiled function, so
the model's forward and backward still run as compiled code.

The search direction comes from the two-loop recursion over the last
`history_size` (s, y) pairs; the step length is `lr` (the first iteration
scales it by 1 / |g|_1), or a strong-Wolfe line search (cubic interpolation
and zoom, Nocedal & Wright, algorithms 3.5 and 3.6).
"""

from __future__ import annotations

import math

import graphc
from graphc.errors import TraceError
from graphc.optim.optimizer import Optimizer, is_tracing


def _cubic_minimum(x1, f1, g1, x2, f2, g2, bounds=None) -> float:
    """Minimizer of the cubic through (x1, f1, g1) and (x2, f2, g2), clamped
    to `bounds` (default: the interval between x1 and x2); the midpoint when
    the cubic has no minimum."""
    low, high = bounds if bounds is not None else (min(x1, x2), max(x1, x2))
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1 * d1 - g1 * g2
    if d2_square < 0:
        return (low + high) / 2.0
    d2 = math.sqrt(d2_square)
    if x1 <= x2:
        position = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
    else:
        position = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
    return min(max(position, low), high)


def _scalar(t):
    """A 0-d tensor's value as a numpy scalar of its dtype: the scalar
    arithmetic of a step then rounds as PyTorch's 0-d tensors do."""
    return t.detach().numpy()[()]


def _dot(a, b):
    return _scalar((a * b).sum())


class _Point:
    """A trial step length with its loss, flat gradient and directional derivative."""

    def __init__(self, t, f, g, gtd):
        self.t, self.f, self.g, self.gtd = t, f, g, gtd


def _strong_wolfe(evaluate, t, d, f, g, gtd, c1=1e-4, c2=0.9, tolerance_change=1e-9, max_ls=25):
    """Step length t along d meeting the strong Wolfe conditions.
    `evaluate(t)` returns (loss, flat gradient) at x + t d. Returns (loss,
    gradient, t, number of evaluations)."""
    d_norm = float(d.abs().max().item())
    start = _Point(0.0, f, g, gtd)
    new_f, new_g = evaluate(t)
    evals, ls_iter = 1, 0
    new = _Point(t, new_f, new_g, _dot(new_g, d))
    prev = start
    bracket = None
    done = False
    # Bracketing phase: grow t until an interval contains a Wolfe point.
    while ls_iter < max_ls:
        if new.f > f + c1 * new.t * gtd or (ls_iter > 1 and new.f >= prev.f):
            bracket = [prev, new]
            break
        if abs(new.gtd) <= -c2 * gtd:
            bracket, done = [new], True
            break
        if new.gtd >= 0:
            bracket = [prev, new]
            break
        bounds = (new.t + 0.01 * (new.t - prev.t), new.t * 10)
        next_t = _cubic_minimum(prev.t, prev.f, prev.gtd, new.t, new.f, new.gtd, bounds)
        prev = new
        new_f, new_g = evaluate(next_t)
        evals += 1
        ls_iter += 1
        new = _Point(next_t, new_f, new_g, _dot(new_g, d))
    if ls_iter == max_ls:
        bracket = [start, new]
    # Zoom phase: shrink the bracket [low, high] around a Wolfe point.
    insufficient = False
    low, high = (0, 1) if bracket[0].f <= bracket[-1].f else (1, 0)
    while not done and ls_iter < max_ls:
        a, b = bracket
        if abs(b.t - a.t) * d_norm < tolerance_change:
            break
        t = _cubic_minimum(a.t, a.f, a.gtd, b.t, b.f, b.gtd)
        top, bottom = max(a.t, b.t), min(a.t, b.t)
        eps = 0.1 * (top - bottom)
        if min(top - t, t - bottom) < eps:
            # Too close to an end: move away from it unless the last
            # interpolation was already close and t is still inside.
            if insufficient or t >= top or t <= bottom:
                t = top - eps if abs(t - top) < abs(t - bottom) else bottom + eps
                insufficient = False
            else:
                insufficient = True
        else:
            insufficient = False
        new_f, new_g = evaluate(t)
        evals += 1
        ls_iter += 1
        new = _Point(t, new_f, new_g, _dot(new_g, d))
        if new.f > f + c1 * t * gtd or new.f >= bracket[low].f:
            bracket[high] = new
            low, high = (0, 1) if bracket[0].f <= bracket[1].f else (1, 0)
        else:
            if abs(new.gtd) <= -c2 * gtd:
                done = True
            elif new.gtd * (bracket[high].t - bracket[low].t) >= 0:
                bracket[high] = bracket[low]
            bracket[low] = new
    best = bracket[low]
    return best.f, best.g, best.t, evals


class LBFGS(Optimizer):
    """Limited-memory BFGS (torch.optim.LBFGS): `step(closure)` runs up to
    `max_iter` iterations, calling `closure` (which zeroes the gradients,
    computes the loss, calls backward and returns the loss) as needed.

    >>> w = graphc.tensor([3.0, -2.0], requires_grad=True)
    >>> opt = LBFGS([w], line_search_fn="strong_wolfe")
    >>> def closure():
    ...     opt.zero_grad()
    ...     loss = ((w - 1.0) ** 2).sum()
    ...     loss.backward()
    ...     return loss
    >>> _ = opt.step(closure)
    >>> [round(v, 4) for v in w.tolist()]
    [1.0, 1.0]
    """

    def __init__(
        self,
        params,
        lr: float = 1,
        max_iter: int = 20,
        max_eval=None,
        tolerance_grad: float = 1e-7,
        tolerance_change: float = 1e-9,
        history_size: int = 100,
        line_search_fn=None,
    ):
        if isinstance(lr, graphc.Tensor) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        if line_search_fn not in (None, "strong_wolfe"):
            raise RuntimeError("only 'strong_wolfe' is supported")
        defaults = dict(
            lr=lr,
            max_iter=max_iter,
            max_eval=max_eval,
            tolerance_grad=tolerance_grad,
            tolerance_change=tolerance_change,
            history_size=history_size,
            line_search_fn=line_search_fn,
        )
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")
        self._params = self.param_groups[0]["params"]

    # -- the parameters as one flat vector -------------------------------------

    def _flat_grad(self):
        parts = []
        for p in self._params:
            grad = p.grad if p.grad is not None else graphc.zeros_like(p)
            parts.append(grad.detach().reshape(-1))
        return graphc.cat(parts, 0)

    def _add_to_params(self, step: float, direction) -> None:
        offset = 0
        with graphc.no_grad():
            for p in self._params:
                n = p.numel()
                p.add_(direction[offset : offset + n].reshape(p.shape), alpha=step)
                offset += n

    def _evaluate(self, closure) -> float:
        with graphc.enable_grad():
            return float(closure())

    def _directional_evaluate(self, closure, saved, t, d):
        """Loss and flat gradient at x + t d, leaving the parameters at x."""
        self._add_to_params(t, d)
        loss = self._evaluate(closure)
        flat_grad = self._flat_grad()
        with graphc.no_grad():
            for p, value in zip(self._params, saved):
                p.copy_(value)
        return loss, flat_grad

    # -- the step ------------------------------------------------------------------

    def _direction(self, state, flat_grad, history_size: int):
        """The quasi-Newton direction -H g from the stored (s, y) pairs,
        after adding the newest pair when its curvature y.s is positive."""
        if state["n_iter"] == 1:
            state.update(d=-flat_grad, old_dirs=[], old_stps=[], ro=[], H_diag=1.0)
            return state["d"]
        y = flat_grad - state["prev_flat_grad"]
        s = state["d"] * state["t"]
        ys = _dot(y, s)
        if ys > 1e-10:
            if len(state["old_dirs"]) == history_size:
                for key in ("old_dirs", "old_stps", "ro"):
                    state[key].pop(0)
            state["old_dirs"].append(y)
            state["old_stps"].append(s)
            state["ro"].append(1.0 / ys)
            state["H_diag"] = ys / _dot(y, y)
        old_dirs, old_stps, ro = state["old_dirs"], state["old_stps"], state["ro"]
        alphas = [0.0] * len(old_dirs)
        q = -flat_grad
        for i in range(len(old_dirs) - 1, -1, -1):
            alphas[i] = _dot(old_stps[i], q) * ro[i]
            q = q - old_dirs[i] * alphas[i]
        r = q * state["H_diag"]
        for i in range(len(old_dirs)):
            beta = _dot(old_dirs[i], r) * ro[i]
            r = r + old_stps[i] * (alphas[i] - beta)
        state["d"] = r
        return r

    def step(self, closure):
        """Run up to max_iter L-BFGS iterations; returns the closure's
        first loss."""
        if closure is None:
            raise RuntimeError("LBFGS requires a closure that re-evaluates the model and returns the loss")
        if is_tracing():
            raise TraceError(
                "LBFGS.step calls its closure a data-dependent number of times; call it outside graphc.compile "
                "(the closure may call a compiled function)"
            )
        group = self.param_groups[0]
        lr, max_iter, max_eval = float(group["lr"]), group["max_iter"], group["max_eval"]
        tolerance_grad, tolerance_change = group["tolerance_grad"], group["tolerance_change"]
        state = self.state[self._params[0]]
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)

        with graphc.enable_grad():
            first_loss = closure()
        loss = float(first_loss)
        evals = 1
        state["func_evals"] += 1
        flat_grad = self._flat_grad()
        if float(flat_grad.abs().max().item()) <= tolerance_grad:
            return first_loss

        iteration = 0
        with graphc.no_grad():
            while iteration < max_iter:
                iteration += 1
                state["n_iter"] += 1
                d = self._direction(state, flat_grad, group["history_size"])
                state["prev_flat_grad"] = flat_grad.clone()
                state["prev_loss"] = prev_loss = loss
                if state["n_iter"] == 1:
                    t = min(1.0, 1.0 / _scalar(flat_grad.abs().sum())) * lr
                else:
                    t = lr
                state["t"] = t
                gtd = _dot(flat_grad, d)
                if gtd > -tolerance_change:  # not a descent direction
                    break
                steps_evals = 0
                if group["line_search_fn"] is not None:
                    saved = [p.detach().clone() for p in self._params]

                    def evaluate(trial, saved=saved, d=d):
                        return self._directional_evaluate(closure, saved, trial, d)

                    loss, flat_grad, t, steps_evals = _strong_wolfe(evaluate, t, d, loss, flat_grad, gtd)
                    self._add_to_params(t, d)
                    converged = float(flat_grad.abs().max().item()) <= tolerance_grad
                else:
                    self._add_to_params(t, d)
                    converged = False
                    if iteration != max_iter:
                        # The loss is only needed here to decide whether to go on.
                        loss = self._evaluate(closure)
                        flat_grad = self._flat_grad()
                        converged = float(flat_grad.abs().max().item()) <= tolerance_grad
                        steps_evals = 1
                state["t"] = t
                evals += steps_evals
                state["func_evals"] += steps_evals
                if iteration == max_iter or evals >= max_eval or converged:
                    break
                if float((d * t).abs().max().item()) <= tolerance_change:
                    break
                if abs(loss - prev_loss) < tolerance_change:
                    break
        return first_loss
