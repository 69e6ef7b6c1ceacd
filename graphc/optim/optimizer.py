"""The optimizer base class shared by every `graphc.optim` optimizer.

Optimizers follow PyTorch's layout: `param_groups` (a list of dicts holding
`params` and the group's hyperparameters), `state` (a dict keyed by the
parameter tensor), and `state_dict()` / `load_state_dict()` with PyTorch's
index-based layout.

Written to be traced. Under `graphc.compile` a whole training step
(forward, `loss.backward()`, `optimizer.step()`) becomes one graph whose
inputs include the parameters, their gradients and the optimizer state, all
updated in place. So `step()` uses tensor ops only: no `.item()`, no Python
branch on a tensor value, no numpy. Per-parameter counters (`state['step']`)
are float32 scalar tensors incremented in place, as in PyTorch.

The learning rate is the one hyperparameter a scheduler changes between
steps, so it must not be frozen into a compiled program as a constant. Each
param group therefore has a scalar tensor mirror of `group['lr']` (float32,
or float64 for groups holding float64 parameters);
`step()` reads the mirror, and `_sync_hyper()` refreshes it from the Python
value (eagerly, never while tracing). Compiled-call machinery must call
`run_pre_call_hooks()` before each call of a compiled program: every live
optimizer registers its `_sync_hyper` in `_pre_call_hooks`, so an lr changed
by a scheduler or by hand reaches the compiled step.

Other hyperparameters (momentum, betas, eps, weight decay) are read as
Python numbers and become constants of a traced step; changing them after
compiling requires a re-trace.
"""

from __future__ import annotations

import math
import weakref
from collections import defaultdict

import graphc
from graphc._compile import PRE_CALL_HOOKS
from graphc._trace import active as _active_trace

# Callables the compiled-call machinery runs before every call of a compiled
# program (see the module docstring). Entries are removed when their
# optimizer is garbage collected.
# The compiled-call hook list itself (graphc/_compile.py runs it before each call).
_pre_call_hooks: list = PRE_CALL_HOOKS


def run_pre_call_hooks() -> None:
    """Run every registered pre-call hook (refreshes optimizers' lr tensors)."""
    for hook in list(_pre_call_hooks):
        hook()


def _remove_hook(hook) -> None:
    try:
        _pre_call_hooks.remove(hook)
    except ValueError:
        pass


def _register_sync_hook(optimizer) -> None:
    # The hook holds only a weak reference, so registering does not keep the
    # optimizer alive; the finalizer drops the hook when the optimizer dies.
    ref = weakref.ref(optimizer)

    def sync_hook():
        opt = ref()
        if opt is not None:
            opt._sync_hyper()

    _pre_call_hooks.append(sync_hook)
    weakref.finalize(optimizer, _remove_hook, sync_hook)


# Hooks every optimizer's step() runs first (torch's
# register_optimizer_step_pre_hook): id -> hook(optimizer, args, kwargs).
_step_pre_hooks: dict = {}
_next_hook_id = 0


class _StepHookHandle:
    def __init__(self, hook_id: int):
        self.id = hook_id

    def remove(self) -> None:
        _step_pre_hooks.pop(self.id, None)


def register_optimizer_step_pre_hook(hook):
    """Call `hook(optimizer, args, kwargs)` at the start of every optimizer's
    step(); returns a handle whose `remove()` unregisters it."""
    global _next_hook_id
    _next_hook_id += 1
    _step_pre_hooks[_next_hook_id] = hook
    return _StepHookHandle(_next_hook_id)


def is_tracing() -> bool:
    """True while a graphc trace is recording ops."""
    return _active_trace() is not None


class _RequiredParameter:
    """Marker for a hyperparameter without a default (e.g. SGD's lr in old PyTorch)."""

    def __repr__(self) -> str:
        return "<required parameter>"


required = _RequiredParameter()


def scalar_tensor(value: float, dtype=None):
    """A 0-d tensor holding `value` (float32 unless `dtype` is given)."""
    return graphc.tensor(float(value), dtype=dtype or graphc.float32)


def _lr_dtype(params):
    # float32 normally; float64 when the group holds float64 parameters, so
    # their updates are not limited by a float32-rounded learning rate.
    if any(p.dtype == graphc.float64 for p in params):
        return graphc.float64
    return graphc.float32


def cast_like(scalar, tensor):
    """`scalar` (a tensor) converted to `tensor`'s dtype when they differ, so
    that in-place updates never mix float widths."""
    return scalar if scalar.dtype == tensor.dtype else scalar.to(tensor.dtype)


def pow_scalar(base: float, exponent):
    """`base ** exponent` for a Python float base and a tensor exponent,
    computed as exp(exponent * log(base)) with basic tensor ops."""
    if base == 0.0:
        return exponent * 0.0
    return (exponent * math.log(base)).exp()


class Optimizer:
    """Base class of all optimizers.

    Subclasses pass their hyperparameter `defaults` and implement
    `_init_state(p, group)` (returns the new state dict of a parameter) and
    `_update(p, grad, state, group, lr)` (the in-place update, tensor ops
    only; `lr` is the group's lr tensor in the parameter's dtype).

    >>> w = graphc.zeros(3, requires_grad=True)
    >>> opt = graphc.optim.SGD([w], lr=0.1)
    >>> opt.param_groups[0]['lr']
    0.1
    """

    def __init__(self, params, defaults: dict):
        self.defaults = dict(defaults)
        self.state: defaultdict = defaultdict(dict)
        self.param_groups: list[dict] = []
        self._lr_tensors: list = []
        self._synced_lrs: list = []
        if isinstance(params, graphc.Tensor):
            raise TypeError(
                "params argument given to the optimizer should be an iterable of Tensors or dicts, "
                f"but got {type(params).__name__}"
            )
        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for group in param_groups:
            self.add_param_group(group)
        _register_sync_hook(self)

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(k for k in group if k != "params"):
                lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)

    def add_param_group(self, param_group: dict) -> None:
        """Add a group of parameters (a dict with 'params' and optional
        hyperparameters; missing ones come from the optimizer's defaults)."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, got {type(param_group).__name__}")
        group = dict(param_group)
        params = group["params"]
        if isinstance(params, graphc.Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError(
                "optimizer parameters need to be organized in ordered collections, but the ordering "
                "of tensors in sets will change between runs. Please use a list instead."
            )
        group["params"] = list(params)
        for p in group["params"]:
            if not isinstance(p, graphc.Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, but one of the params is {type(p).__name__}")
            if not getattr(p, "is_leaf", True):
                raise ValueError("can't optimize a non-leaf Tensor")
        for name, default in self.defaults.items():
            if default is required and name not in group:
                raise ValueError(f"parameter group didn't specify a value of required optimization parameter {name}")
            group.setdefault(name, default)
        existing = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in existing for p in group["params"]):
            raise ValueError("some parameters appear in more than one parameter group")
        if len({id(p) for p in group["params"]}) != len(group["params"]):
            raise ValueError("a parameter group contains the same parameter more than once")
        self.param_groups.append(group)
        self._lr_tensors.append(scalar_tensor(group["lr"], _lr_dtype(group["params"])))
        self._synced_lrs.append(float(group["lr"]))

    # -- hyperparameter tensors -------------------------------------------

    def _tracing(self) -> bool:
        return _active_trace() is not None

    def _sync_hyper(self) -> None:
        """Copy each group's Python `lr` into its lr tensor (in place).

        A no-op while tracing: writing a constant into the tensor would bake
        the current lr into the compiled program."""
        if self._tracing():
            return
        while len(self._lr_tensors) < len(self.param_groups):
            params = self.param_groups[len(self._lr_tensors)]["params"]
            self._lr_tensors.append(scalar_tensor(0.0, _lr_dtype(params)))
            self._synced_lrs.append(None)
        with graphc.no_grad():
            for i, group in enumerate(self.param_groups):
                lr = float(group["lr"])
                if self._synced_lrs[i] != lr:
                    self._lr_tensors[i].fill_(lr)
                    self._synced_lrs[i] = lr

    def lr_tensor(self, group_index: int):
        """The scalar tensor mirroring `param_groups[i]['lr']`."""
        return self._lr_tensors[group_index]

    # -- the step -----------------------------------------------------------

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of all optimized tensors (to None by default,
        else to zeros in place)."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    with graphc.no_grad():
                        p.grad = p.grad.detach()
                        p.grad.zero_()

    def step(self, closure=None):
        """Perform one optimization step; `closure` re-evaluates the model
        and returns the loss (called with grad enabled)."""
        for hook in list(_step_pre_hooks.values()):
            hook(self, (), {"closure": closure} if closure is not None else {})
        loss = None
        if closure is not None:
            enable_grad = getattr(graphc, "enable_grad", None)
            if enable_grad is None:
                loss = closure()
            else:
                with enable_grad():
                    loss = closure()
        self._sync_hyper()
        with graphc.no_grad():
            for index, group in enumerate(self.param_groups):
                lr_tensor = self._lr_tensors[index]
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    state = self.state[p]
                    if not state:
                        state.update(self._init_state(p, group))
                    grad = -p.grad if group.get("maximize", False) else p.grad
                    self._update(p, grad, state, group, cast_like(lr_tensor, p))
        return loss

    def _init_state(self, p, group) -> dict:
        return {}

    def _update(self, p, grad, state, group, lr) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not implement its update")

    # -- state dicts ----------------------------------------------------------

    def state_dict(self) -> dict:
        """The optimizer state in PyTorch's layout: `{'state': {index: {...}},
        'param_groups': [{..., 'params': [indices]}]}`. Tensors are
        references to the live state, as in PyTorch."""
        index_of: dict = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            for p in group["params"]:
                index_of.setdefault(id(p), len(index_of))
            packed["params"] = [index_of[id(p)] for p in group["params"]]
            groups.append(packed)
        state = {index_of[id(p)]: dict(s) for p, s in self.state.items() if id(p) in index_of and s}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Load a state dict made by `state_dict()` (or PyTorch's layout).
        State tensors are copied; floating state other than `step` takes the
        parameter's dtype."""
        if not isinstance(state_dict, dict) or "param_groups" not in state_dict or "state" not in state_dict:
            raise ValueError("optimizer state dict must be a dict with 'state' and 'param_groups'")
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"loaded state dict has {len(saved_groups)} parameter groups, "
                f"the optimizer has {len(self.param_groups)}"
            )
        for i, (group, saved) in enumerate(zip(self.param_groups, saved_groups)):
            if len(group["params"]) != len(saved["params"]):
                raise ValueError(
                    f"loaded state dict contains a parameter group {i} of size {len(saved['params'])} "
                    f"that doesn't match the size of optimizer's group ({len(group['params'])})"
                )
        param_of = {}
        for group, saved in zip(self.param_groups, saved_groups):
            param_of.update(zip(saved["params"], group["params"]))
        old_state, self.state = self.state, defaultdict(dict)
        for key, saved_state in state_dict["state"].items():
            index = int(key)
            if index not in param_of:
                raise ValueError(f"optimizer state refers to parameter index {index}, which no group holds")
            param = param_of[index]
            old = old_state.get(param, {})
            self.state[param] = {
                name: _load_into(old.get(name), _copy_state_value(name, value, param))
                for name, value in saved_state.items()
            }
        for group, saved in zip(self.param_groups, saved_groups):
            group.update({k: v for k, v in saved.items() if k != "params"})
        self._synced_lrs = [None] * len(self.param_groups)
        self._sync_hyper()


def _load_into(old, new):
    """Write `new` into the existing state tensor `old` when it fits, so that
    compiled training steps, which hold the state tensors they traced, see
    the loaded values; otherwise `new` replaces it."""
    if (
        isinstance(old, graphc.Tensor)
        and isinstance(new, graphc.Tensor)
        and old.shape == new.shape
        and old.dtype == new.dtype
        and old.device == new.device
    ):
        with graphc.no_grad():
            old.copy_(new)
        return old
    return new


def _copy_state_value(name: str, value, param):
    # Moments follow the parameter's dtype; 'step' keeps its own (float32).
    if not isinstance(value, graphc.Tensor):
        return value
    copy = value.detach().clone()
    if name != "step" and copy.dtype.is_floating_point and param.dtype.is_floating_point:
        copy = cast_like(copy, param)
    return copy
