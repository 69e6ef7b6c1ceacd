"""Module hooks: forward pre/post hooks, full backward hooks, global hooks.

`Module.__call__` hands every call to `call_module` here. Forward hooks are
plain Python around `forward`, so under graphc.compile they run while
tracing (on symbolic tensors) like the rest of the forward.

Full backward hooks work as PyTorch's do: the tensor arguments and the
tensor results of the call pass through identity custom Functions
(graphc.autograd.Function). The results' identity sees the gradients of the
outputs (`grad_output`), runs the backward pre-hooks, which may replace
them, and remembers them; the arguments' identity sees the gradients of the
inputs (`grad_input`) and runs the backward hooks with both, which may
replace `grad_input`. When no argument requires grad, the hooks run at the
results' identity with `grad_input` all None.
"""

from __future__ import annotations

from collections import OrderedDict

from graphc import autograd
from graphc.utils.hooks import RemovableHandle

# Global hooks (torch.nn.modules.module.register_module_*): they run for
# every module, before the module's own hooks.
_global_forward_pre_hooks: dict = OrderedDict()
_global_forward_hooks: dict = OrderedDict()
_global_backward_pre_hooks: dict = OrderedDict()
_global_backward_hooks: dict = OrderedDict()


def _register(hooks: dict, hook) -> RemovableHandle:
    handle = RemovableHandle(hooks)
    hooks[handle.id] = hook
    return handle


def register_module_forward_pre_hook(hook) -> RemovableHandle:
    """Run `hook(module, args)` before the forward of every module."""
    return _register(_global_forward_pre_hooks, hook)


def register_module_forward_hook(hook) -> RemovableHandle:
    """Run `hook(module, args, output)` after the forward of every module."""
    return _register(_global_forward_hooks, hook)


def register_module_full_backward_pre_hook(hook) -> RemovableHandle:
    """Run `hook(module, grad_output)` in the backward of every module."""
    return _register(_global_backward_pre_hooks, hook)


def register_module_full_backward_hook(hook) -> RemovableHandle:
    """Run `hook(module, grad_input, grad_output)` in the backward of every module."""
    return _register(_global_backward_hooks, hook)


def _hooks(module, name: str) -> dict:
    return module.__dict__.get(name) or {}


def call_module(module, args: tuple, kwargs: dict):
    """`module(*args, **kwargs)` with its hooks (see the module doc)."""
    pre = _hooks(module, "_forward_pre_hooks")
    post = _hooks(module, "_forward_hooks")
    bw = _hooks(module, "_backward_hooks")
    bw_pre = _hooks(module, "_backward_pre_hooks")
    glob = _global_forward_pre_hooks or _global_forward_hooks or _global_backward_hooks or _global_backward_pre_hooks
    if not (pre or post or bw or bw_pre or glob):
        return module.forward(*args, **kwargs)
    with_kwargs = _hooks(module, "_forward_hooks_with_kwargs")
    for hid, hook in [*_global_forward_pre_hooks.items(), *pre.items()]:
        if hid in with_kwargs:
            result = hook(module, args, kwargs)
            if result is not None:
                if not (isinstance(result, tuple) and len(result) == 2):
                    raise RuntimeError(
                        f"forward pre-hook must return None or a tuple of (new_args, new_kwargs), but got {result}."
                    )
                args, kwargs = result
                args = args if isinstance(args, tuple) else (args,)
        else:
            result = hook(module, args)
            if result is not None:
                args = result if isinstance(result, tuple) else (result,)
    state = None
    if (bw or bw_pre or _global_backward_hooks or _global_backward_pre_hooks) and autograd.is_grad_enabled():
        state = _BackwardState(module)
        args = state.wrap_inputs(args)
    output = module.forward(*args, **kwargs)
    for hid, hook in [*_global_forward_hooks.items(), *post.items()]:
        result = hook(module, args, kwargs, output) if hid in with_kwargs else hook(module, args, output)
        if result is not None:
            output = result
    if state is not None:
        output = state.wrap_outputs(output)
    return output


class _BackwardState:
    """One call's backward hooks: what the two identity Functions share."""

    def __init__(self, module):
        self.module = module
        self.grad_output = None
        self.n_inputs = 0
        self.inputs_wrapped = False

    def _backward_hooks(self) -> list:
        return [*_global_backward_hooks.values(), *_hooks(self.module, "_backward_hooks").values()]

    def wrap_inputs(self, args: tuple) -> tuple:
        from graphc._tensor import Tensor

        where = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
        self.n_inputs = len(where)
        if not any(args[i].requires_grad for i in where):
            return args
        self.inputs_wrapped = True
        outs = _Identity.apply(self, "input", *[args[i] for i in where])
        args = list(args)
        for i, t in zip(where, outs):
            args[i] = t
        return tuple(args)

    def wrap_outputs(self, output):
        from graphc._tensor import Tensor

        if isinstance(output, Tensor):
            return _Identity.apply(self, "output", output)[0] if output.requires_grad else output
        if isinstance(output, tuple) and any(isinstance(o, Tensor) and o.requires_grad for o in output):
            where = [i for i, o in enumerate(output) if isinstance(o, Tensor)]
            new = _Identity.apply(self, "output", *[output[i] for i in where])
            output = list(output)
            for i, t in zip(where, new):
                output[i] = t
            return tuple(output)
        return output

    def on_outputs(self, grads: tuple) -> tuple:
        for hook in [*_global_backward_pre_hooks.values(), *_hooks(self.module, "_backward_pre_hooks").values()]:
            result = hook(self.module, grads)
            if result is not None:
                grads = _checked(result, grads, "backward pre hook")
        self.grad_output = grads
        if not self.inputs_wrapped:
            for hook in self._backward_hooks():
                result = hook(self.module, (None,) * max(self.n_inputs, 1), grads)
                if result is not None and any(r is not None for r in result):
                    raise RuntimeError("backward hook can't return a gradient for inputs that don't require grad")
        return grads

    def on_inputs(self, grads: tuple) -> tuple:
        for hook in self._backward_hooks():
            result = hook(self.module, grads, self.grad_output)
            if result is not None:
                grads = _checked(result, grads, "backward hook")
        return grads


def _checked(result, grads: tuple, what: str) -> tuple:
    result = tuple(result) if isinstance(result, (tuple, list)) else (result,)
    if len(result) != len(grads):
        raise RuntimeError(
            f"{what} returned an invalid number of grad_output, got {len(result)}, but expected {len(grads)}"
        )
    return result


class _Identity(autograd.Function):
    """Passes tensors through; its backward calls the hooks of one side."""

    @staticmethod
    def forward(ctx, state, side, *tensors):
        ctx.state, ctx.side = state, side
        ctx.set_materialize_grads(False)
        return tensors

    @staticmethod
    def backward(ctx, *grads):
        grads = ctx.state.on_outputs(grads) if ctx.side == "output" else ctx.state.on_inputs(grads)
        return (None, None, *grads)


__all__ = [
    "call_module",
    "register_module_forward_hook",
    "register_module_forward_pre_hook",
    "register_module_full_backward_hook",
    "register_module_full_backward_pre_hook",
]
