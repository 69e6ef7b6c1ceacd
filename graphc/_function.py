"""Custom differentiable functions: `graphc.autograd.Function`.

A subclass defines a static `forward` and a static `backward`; calling
`MyFn.apply(*args)` runs `forward` with grad mode off and, when an input
requires grad, attaches a `BackwardFunction` node (graphc.autograd's
FunctionNode with several outputs) to the results. That node is also the
`ctx` the user's forward and backward see, as in PyTorch: it saves tensors,
says which inputs need a gradient and which outputs are not differentiable.

Under graphc.compile the forward is traced as ordinary ops, and so is the
user's backward: a training step traced whole runs the backward on symbolic
tensors through the normal backward walk; a compiled forward differentiated
later (graphc/_compiled_autograd.py) calls `symbolic_apply`, which re-enters
the finished trace so the backward's ops become nodes of the backward
program. A backward that reads a tensor the forward's trace never saw (a
global captured only there) cannot become part of the program and raises.
"""

from __future__ import annotations

import functools
import inspect

from graphc import _creation, autograd
from graphc._tensor_core import Tensor
from graphc._trace import active
from graphc.errors import at_user_line


def _edge(t):
    """Where the cotangent of input tensor `t` goes (as Record.edges)."""
    return t.grad_fn if t.grad_fn is not None else (t if t.requires_grad else None)


class BackwardFunction(autograd.FunctionNode):
    """The backward node of one `Function.apply` call; also its `ctx`."""

    def __init__(self, fn_cls, args: tuple):
        self._cls = fn_cls
        self.needs_input_grad = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        self.edges = tuple(_edge(a) if need else None for a, need in zip(args, self.needs_input_grad))
        # (shape, dtype, device) of each tensor input, to check gradients.
        self._input_meta = [(tuple(a.shape), a.dtype, a.device) if isinstance(a, Tensor) else None for a in args]
        self._tracer = active()
        self.traced = self._tracer is not None
        # The inputs' values: where the compiled backward walk sends
        # gradients. While tracing, a concrete input (a parameter the trace
        # has not touched yet) is lifted to a graph input now.
        self.input_values = [self._value_of(a) if isinstance(a, Tensor) else None for a in args]
        self._saved: list | None = []
        self._freed = False
        self._non_differentiable: set[int] = set()
        self._materialize = True
        self._output_meta: list = []

    def _value_of(self, t):
        return t._value if self._tracer is None else self._tracer.value_of(t)

    # -- the ctx API (PyTorch's FunctionCtx) --------------------------------

    def save_for_backward(self, *tensors) -> None:
        """Keep tensors (or None) for `backward`, read back as `saved_tensors`."""
        saved = []
        for i, t in enumerate(tensors):
            if t is None:
                saved.append(None)
            elif not isinstance(t, Tensor):
                raise TypeError(
                    f"save_for_backward can only save variables, but argument {i} is of type {type(t).__name__}"
                )
            else:
                counter = t._counter()
                saved.append((t, self._value_of(t), counter, counter.version))
        self._saved = saved

    @property
    def saved_tensors(self) -> tuple:
        """The tensors given to `save_for_backward`, as they were then."""
        if self._freed:
            raise RuntimeError(autograd._FREED)
        out = []
        for i, entry in enumerate(self._saved or ()):
            if entry is None:
                out.append(None)
                continue
            t, value, counter, version = entry
            if counter.version != version:
                raise RuntimeError(
                    at_user_line(
                        f"one of the variables needed for gradient computation has been modified by an inplace "
                        f"operation: saved tensor {i} of {self.name()} is at version {counter.version}; expected "
                        f"version {version} instead. It was last modified by {counter.last_op}."
                    )
                )
            out.append(t if t._value is value else Tensor._wrap(value))
        return tuple(out)

    saved_variables = saved_tensors

    def mark_non_differentiable(self, *tensors) -> None:
        """Outputs that get no gradient: they do not require grad, and their
        gradient in `backward` is zeros (or None without materialization)."""
        self._non_differentiable.update(id(t) for t in tensors)

    def set_materialize_grads(self, value: bool) -> None:
        """With False, `backward` gets None (not zeros) for outputs that
        received no gradient."""
        self._materialize = bool(value)

    def mark_dirty(self, *tensors) -> None:
        raise NotImplementedError(
            "graphc.autograd.Function: ctx.mark_dirty (a forward that modifies its inputs in place) is not "
            "supported; return a new tensor instead"
        )

    # -- the node -------------------------------------------------------------

    def name(self) -> str:
        return f"{self._cls.__name__}Backward"

    def apply(self, grads: dict, retain_graph: bool, create_graph: bool) -> tuple:
        if self._freed:
            raise RuntimeError(autograd._FREED)
        gs = []
        for k, (shape, dtype, device) in enumerate(self._output_meta):
            g = grads.get(k)
            if g is None and self._materialize and shape is not None:
                g = _creation.zeros(shape, dtype=dtype, device=device)
            gs.append(g)
        result = self._cls.backward(self, *gs)
        if not retain_graph:
            self._freed = True
        return self._check_grads(result)

    def _check_grads(self, result) -> tuple:
        result = tuple(result) if isinstance(result, (tuple, list)) else (result,)
        n = len(self.edges)
        if len(result) > n and all(g is None for g in result[n:]):
            result = result[:n]  # PyTorch allows trailing Nones
        if len(result) != n:
            raise RuntimeError(
                at_user_line(
                    f"function {self.name()} returned an incorrect number of gradients "
                    f"(expected {n}, got {len(result)})"
                )
            )
        cots = []
        for i, (g, edge, meta) in enumerate(zip(result, self.edges, self._input_meta)):
            if g is None or edge is None:
                cots.append(None)
                continue
            if not isinstance(g, Tensor):
                raise TypeError(
                    f"function {self.name()} returned a gradient of type {type(g).__name__} at index {i}; "
                    "expected a Tensor or None"
                )
            shape, dtype, _ = meta
            if tuple(g.shape) != shape:
                g = _sum_to(g, shape, self.name(), i)
            if g.dtype is not dtype:
                g = g.to(dtype)
            cots.append(g)
        return tuple(cots)

    def symbolic_apply(self, grads: dict) -> list:
        """The gradient nodes of the inputs from output gradient nodes, with
        the user's backward traced into the finished trace (see module doc)."""
        tracer = self._tracer
        with tracer.reentered(f"the backward of custom Function {self._cls.__name__}"):
            with autograd.no_grad():
                cots = self.apply({k: Tensor._wrap(g) for k, g in grads.items()}, True, False)
            return [None if c is None else tracer.value_of(c) for c in cots]


def _sum_to(g, shape: tuple, name: str, index: int):
    """`g` summed down to `shape` (PyTorch accepts a gradient that `shape`
    expands to), else PyTorch's error."""
    gshape = tuple(g.shape)
    lead = len(gshape) - len(shape)
    ok = lead >= 0 and all(s in (1, d) for s, d in zip(shape, gshape[lead:]))
    if not ok:
        raise RuntimeError(
            at_user_line(
                f"Function {name} returned an invalid gradient at index {index} - got {list(gshape)} but expected "
                f"shape compatible with {list(shape)}"
            )
        )
    dims = list(range(lead)) + [lead + k for k, s in enumerate(shape) if s == 1 and gshape[lead + k] != 1]
    return (g.sum(dim=dims) if dims else g).reshape(shape)


class Function:
    """Base class of custom differentiable operations (torch.autograd.Function).

    Define `forward(ctx, *args)` (or `forward(*args)` plus
    `setup_context(ctx, inputs, output)`) and `backward(ctx, *grad_outputs)`
    as static methods, then call `MyFn.apply(*args)`. `backward` returns one
    gradient (or None) per forward argument.

    >>> import graphc
    >>> class Exp(graphc.autograd.Function):
    ...     @staticmethod
    ...     def forward(ctx, x):
    ...         y = x.exp()
    ...         ctx.save_for_backward(y)
    ...         return y
    ...     @staticmethod
    ...     def backward(ctx, g):
    ...         (y,) = ctx.saved_tensors
    ...         return g * y
    >>> x = graphc.zeros(2, requires_grad=True)
    >>> Exp.apply(x).sum().backward()
    >>> x.grad
    tensor([1., 1.])
    """

    def __init__(self, *args, **kwargs):
        raise RuntimeError(
            "graphc.autograd.Function is used through its static methods: call MyFunction.apply(...), "
            "not MyFunction()(...)"
        )

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("You must implement the forward function for custom autograd.Function.")

    @staticmethod
    def setup_context(ctx, inputs: tuple, output):
        raise NotImplementedError("setup_context is not implemented.")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError(
            "You must implement either the backward or vjp method for your custom autograd.Function to use it "
            "with backward mode AD."
        )

    @staticmethod
    def vjp(ctx, *grad_outputs):
        raise NotImplementedError

    @classmethod
    def apply(cls, *args, **kwargs):
        """Run `forward` and connect its results to `backward` for autograd."""
        separate = cls.setup_context is not Function.setup_context
        args = _bind(cls.forward, args, kwargs, skip_ctx=not separate)
        if cls.backward is Function.backward and cls.vjp is not Function.vjp:
            cls.backward = cls.vjp
        node = BackwardFunction(cls, args)
        with autograd.no_grad():
            if separate:
                output = cls.forward(*args)
                cls.setup_context(node, args, output)
            else:
                output = cls.forward(node, *args)
        recording = autograd.is_grad_enabled() and any(node.needs_input_grad)
        single = not isinstance(output, tuple)
        outs = [output] if single else list(output)
        inputs = {id(a) for a in args if isinstance(a, Tensor)}
        for k, o in enumerate(outs):
            if not isinstance(o, Tensor):
                node._output_meta.append((None, None, None))
                continue
            node._output_meta.append((tuple(o.shape), o.dtype, o.device))
            if id(o) in inputs or o.grad_fn is not None:
                # An input returned as is: the result is a new tensor on the same data.
                o = outs[k] = o.detach()
            if recording and id(output if single else output[k]) not in node._non_differentiable and o.dtype.is_float:
                o.grad_fn = autograd.OutputSlot(node, k)
                o._requires_grad = True
        return outs[0] if single else tuple(outs)


def _bind(fn, args: tuple, kwargs: dict, skip_ctx: bool) -> tuple:
    """The arguments of `apply` as positional ones, defaults filled in
    (PyTorch binds them the same way, so `backward` returns one gradient
    per parameter of `forward`)."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return args
    if skip_ctx:
        params = params[1:]
    bound = inspect.Signature(params).bind(*args, **kwargs)
    bound.apply_defaults()
    out: list = []
    for p in params:
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            out.append(bound.arguments[p.name])
        elif p.kind is p.VAR_POSITIONAL:
            out.extend(bound.arguments.get(p.name, ()))
    return tuple(out)


def once_differentiable(fn):
    """Decorate a `backward` that is not itself differentiable: it runs
    with grad mode off, so its results carry no autograd history."""

    @functools.wraps(fn)
    def wrapped(ctx, *grads):
        with autograd.no_grad():
            return fn(ctx, *grads)

    return wrapped


FunctionCtx = BackwardFunction

__all__ = ["BackwardFunction", "Function", "FunctionCtx", "once_differentiable"]
