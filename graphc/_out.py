"""`out=` arguments and the in-place shape methods (unsqueeze_, t_, ...).

`accepts_out(fn)` gives a function PyTorch's keyword `out=`: the result is
computed as usual and written into the given tensor (or tuple of tensors
for (values, indices) results) with the rules of an in-place op: the shape
must match (an empty tensor is resized, as torch does), the result dtype
must be castable to the tensor's, and no gradient may be recorded (PyTorch
refuses out= arguments under autograd too). graphc/__init__.py wraps the
common functions with it.

`assign_shape(t, result, opname)` makes `t` hold `result`, which may have
another shape: the in-place shape methods use it.
"""

from __future__ import annotations

import functools

import numpy as np

from graphc import autograd
from graphc._tensor_core import Tensor
from graphc._trace import active as _active_trace
from graphc.errors import at_user_line


def write_out(result, out, opname: str):
    """Write `result` (a Tensor, or a tuple of them) into `out`; returns `out`
    (a tuple result keeps its named-tuple type)."""
    if isinstance(result, tuple):
        if not isinstance(out, (tuple, list)) or len(out) != len(result):
            raise TypeError(at_user_line(f"{opname}(): out must be a tuple of {len(result)} tensors"))
        written = [write_out(r, o, opname) for r, o in zip(result, out)]
        return type(result)(*written) if hasattr(result, "_fields") else tuple(written)
    if not isinstance(out, Tensor):
        raise TypeError(at_user_line(f"{opname}(): argument 'out' must be Tensor, not {type(out).__name__}"))
    if autograd.is_grad_enabled() and (result.requires_grad or out.requires_grad):
        raise RuntimeError(
            at_user_line(
                f"{opname}(): functions with out=... arguments don't support automatic differentiation, "
                "but one of the arguments requires grad."
            )
        )
    if tuple(out.shape) != tuple(result.shape) and out.numel() == 0 and not out.is_symbolic:
        # torch resizes an empty out tensor to the result's shape.
        out._value = np.empty(tuple(result.shape), dtype=out.dtype.np)
    return out._assign(result, opname)


def accepts_out(fn):
    """`fn` with a keyword `out=` (see the module docstring)."""

    @functools.wraps(fn)
    def wrapped(*args, out=None, **kwargs):
        result = fn(*args, **kwargs)
        if out is None:
            return result
        return write_out(result, out, fn.__name__)

    return wrapped


def assign_shape(t: Tensor, result: Tensor, opname: str) -> Tensor:
    """Make `t` hold `result` (any shape): an in-place shape change."""
    recording = autograd.is_grad_enabled() and t.requires_grad
    if recording and t.grad_fn is None:
        raise RuntimeError(
            at_user_line(f"{opname}: a leaf Variable that requires grad is being used in an in-place operation.")
        )
    if tuple(result.shape) == tuple(t.shape):
        return t._assign(result, opname)
    if _active_trace() is not None and not t.is_symbolic:
        raise RuntimeError(
            at_user_line(
                f"{opname}: cannot change the shape of a tensor captured from outside a traced or compiled "
                "function in place; use the out-of-place form and return the result"
            )
        )
    t._bump_version(opname)
    t._value = result._value
    if recording:
        t.grad_fn = result.grad_fn
        if isinstance(t.grad_fn, autograd.Record):
            t.grad_fn.adopt_output(t)
    return t


__all__ = ["accepts_out", "assign_shape", "write_out"]
