"""`graphc.autograd.gradcheck`: analytical gradients against central
finite differences (torch.autograd.gradcheck), for float64 inputs."""

from __future__ import annotations

import numpy as np

from graphc import autograd
from graphc._tensor_core import Tensor


class GradcheckError(RuntimeError):
    """gradcheck found a Jacobian that disagrees with finite differences."""


def _outputs(out) -> list:
    return [out] if isinstance(out, Tensor) else [o for o in out if isinstance(o, Tensor)]


def _numerical(func, inputs: list, j: int, outs: list, eps: float) -> list:
    """d(every output element)/d(input j), one central difference per input element."""
    x = inputs[j]
    base = x.detach().numpy().astype(np.float64)
    jac = [np.zeros((o.numel(), x.numel())) for o in outs]
    flat = base.reshape(-1)
    for k in range(flat.size):
        vals = []
        for step in (eps, -eps):
            moved = flat.copy()
            moved[k] += step
            args = list(inputs)
            args[j] = Tensor._wrap(moved.reshape(base.shape).astype(x.dtype.np))
            with autograd.no_grad():
                vals.append([o.numpy().astype(np.float64).reshape(-1) for o in _outputs(func(*args))])
        for i in range(len(outs)):
            jac[i][:, k] = (vals[0][i] - vals[1][i]) / (2 * eps)
    return jac


def _analytical(outs: list, x) -> list:
    jac = []
    for o in outs:
        rows = np.zeros((o.numel(), x.numel()))
        if o.requires_grad:
            flat = o.reshape(-1)
            for r in range(o.numel()):
                (g,) = autograd.grad(flat[r], [x], retain_graph=True, allow_unused=True, materialize_grads=True)
                rows[r] = g.detach().numpy().astype(np.float64).reshape(-1)
        jac.append(rows)
    return jac


def gradcheck(
    func,
    inputs,
    *,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
    **unused,
) -> bool:
    """Check the gradients of `func(*inputs)` with respect to the inputs
    that require grad against central finite differences of step `eps`.
    Returns True when every Jacobian matches within `atol + rtol * |numerical|`;
    otherwise raises GradcheckError (or returns False with
    `raise_exception=False`). Use float64 inputs: float32 differences are
    too coarse for the default tolerances.

    >>> import graphc
    >>> x = graphc.tensor([0.5, 1.5], dtype=graphc.float64, requires_grad=True)
    >>> graphc.autograd.gradcheck(lambda t: (t * t).sin(), (x,))
    True
    """
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    wrt = [j for j, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not wrt:
        raise ValueError("gradcheck expects at least one input tensor to require gradient, but none of the them have")
    with autograd.enable_grad():
        outs = _outputs(func(*inputs))
    for j in wrt:
        numerical = _numerical(func, inputs, j, outs, eps)
        analytical = _analytical(outs, inputs[j])
        for i, (n, a) in enumerate(zip(numerical, analytical)):
            if not np.allclose(a, n, rtol=rtol, atol=atol):
                if not raise_exception:
                    return False
                raise GradcheckError(
                    f"Jacobian mismatch for output {i} with respect to input {j},\nnumerical:{n}\nanalytical:{a}\n"
                )
    return True


__all__ = ["GradcheckError", "gradcheck"]
