"""Autograd: grad mode, backward records, and the reverse-mode engine.

Every differentiable op on tensors that require grad records a `Record` (the
tensor's `grad_fn`): the primitive op, its attrs, its operand tensors and
its output. `backward()` walks the records reachable from the root in
reverse topological order and applies the VJP rule of each primitive from
`passes.autodiff.VJP` to Tensors: the same rules the compile-time autodiff
pass applies to IR nodes. Under tracing the tensors are symbolic, so the
same walk builds the backward graph.

A `FunctionNode` is a backward node with several outputs whose backward is
not one VJP rule (graphc.compile's compiled forward: its backward is a
compiled program). Each of its output tensors has an `OutputSlot` as
`grad_fn`; the engine gathers the cotangents of all slots of a node, then
calls the node's `apply` once.
"""

from __future__ import annotations

import functools
import importlib
import weakref

import numpy as np

import graphc.passes.autodiff as autodiff
from graphc._device_storage import DeviceArray, value_device
from graphc.errors import at_user_line
from graphc.ir.ops import Op

# The tensor class, bound by graphc/_tensor_core.py as it loads: the tensor
# builds on this engine, so the engine cannot import it.
Tensor: type | None = None


def bind_tensor_class(cls: type) -> None:
    """Called once by the tensor core with its class."""
    global Tensor
    Tensor = cls


_grad_enabled = True


def is_grad_enabled() -> bool:
    """True when ops on tensors that require grad are recorded."""
    return _grad_enabled


class _GradMode:
    """Base of no_grad / enable_grad / set_grad_enabled: a context manager
    that is also usable as a decorator."""

    _mode = True

    def __new__(cls, *args, **kwargs):
        # `@no_grad` without parentheses decorates the function directly.
        if cls is not set_grad_enabled and len(args) == 1 and callable(args[0]) and not kwargs:
            return cls()(args[0])
        return super().__new__(cls)

    def __enter__(self):
        global _grad_enabled
        self._prev = _grad_enabled
        _grad_enabled = self._mode
        return self

    def __exit__(self, *exc):
        global _grad_enabled
        _grad_enabled = self._prev
        return False

    def __call__(self, fn):
        mode = self._mode

        @functools.wraps(fn)
        def wrapped(*args, **kwargs):
            with set_grad_enabled(mode):
                return fn(*args, **kwargs)

        return wrapped


class no_grad(_GradMode):
    """Disable gradient recording (context manager or decorator).

    >>> import graphc
    >>> x = graphc.ones(2, requires_grad=True)
    >>> with graphc.no_grad():
    ...     y = x * 2
    >>> y.requires_grad
    False
    """

    _mode = False


class enable_grad(_GradMode):
    """Enable gradient recording inside a `no_grad` region."""

    _mode = True


class set_grad_enabled(_GradMode):
    """Set grad mode to `mode`: a call, a context manager or a decorator."""

    def __init__(self, mode: bool):
        global _grad_enabled
        self._mode = bool(mode)
        # Called as a plain function it takes effect at once, as in torch.
        self._prev = _grad_enabled
        _grad_enabled = self._mode

    def __enter__(self):
        return self

    def __call__(self, fn):
        global _grad_enabled
        _grad_enabled = self._prev
        return super().__call__(fn)


inference_mode = no_grad


def _camel(op: Op) -> str:
    return "".join(part.capitalize() for part in op.value.split("_"))


_FREED = (
    "Trying to backward through the graph a second time (or directly access saved tensors after they "
    "have already been freed). Saved intermediate values of the graph are freed when you call .backward() "
    "or autograd.grad(). Specify retain_graph=True if you need to backward through the graph a second "
    "time or if you need to access saved tensors after calling backward."
)


class VersionCounter:
    """How many times a tensor's data was modified in place; shared by the
    tensors that view the same data (PyTorch's version counter). Records
    note the versions of the values their VJP reads and backward checks
    them. `last_op` names the latest in-place op, for the error message."""

    __slots__ = ("last_op", "version")

    def __init__(self):
        self.version = 0
        self.last_op = None

    def bump(self, opname: str) -> None:
        self.version += 1
        self.last_op = opname


def _saved_versions(op: Op, srcs, out, edges) -> tuple:
    """(value, counter, version) for each forward value `op`'s VJP reads
    (autodiff.SAVED), skipping those only the gradient of an operand that
    gets none would read."""
    checks = []
    for value, needed_for in autodiff.SAVED[op]:
        if needed_for is not None and edges[needed_for] is None:
            continue
        if value != autodiff.OUT and value >= len(srcs):
            continue  # an optional operand the op was called without
        counter = (out if value == autodiff.OUT else srcs[value])._counter()
        checks.append((value, counter, counter.version))
    return tuple(checks)


class Record:
    """One recorded op: what `Tensor.grad_fn` holds.

    `edges[i]` says where the cotangent of operand i goes: the operand's own
    Record, the operand itself when it is a leaf that requires grad, or None.
    The operand tensors and their values are kept (`saved`) until a backward
    pass without retain_graph frees them."""

    __slots__ = (
        "__weakref__",
        "attrs",
        "checks",
        "edges",
        "op",
        "out_ref",
        "hooks",
        "out_value",
        "retain",
        "saved",
    )

    def __init__(self, op: Op, attrs: dict, srcs, out):
        self.op = op
        self.attrs = attrs
        self.edges = tuple(s.grad_fn if s.grad_fn is not None else (s if s.requires_grad else None) for s in srcs)
        self.saved = [(s, s._value) for s in srcs]
        self.checks = _saved_versions(op, srcs, out, self.edges) if op in autodiff.SAVED else ()
        # A weak reference avoids a tensor -> record -> tensor cycle; the raw
        # value is kept so the output survives its tensor.
        self.out_ref = weakref.ref(out)
        self.out_value = out._value
        self.retain = None
        self.hooks = None  # Tensor.register_hook on the output: id -> fn

    def name(self) -> str:
        return f"{_camel(self.op)}Backward0"

    def __repr__(self) -> str:
        return f"<{self.name()} object at {id(self):#x}>"

    @property
    def next_functions(self) -> tuple:
        return tuple((e, 0) for e in self.edges)

    def adopt_output(self, t) -> None:
        """Make tensor `t` this record's output: an in-place op's result is
        taken over by the tensor it modified. The op rebinds `t` to a new
        value rather than writing into the old one, so an operand value
        saved from `t` is now private to this record and needs no check;
        the output's check moves to `t`'s counter at its current version."""
        self.out_ref = weakref.ref(t)
        counter = t._counter()
        checks = []
        for value, c, version in self.checks:
            if value == autodiff.OUT:
                checks.append((value, counter, counter.version))
            elif c is not counter:
                checks.append((value, c, version))
        self.checks = tuple(checks)

    def check_versions(self) -> None:
        """Raise PyTorch's error when a value this record's VJP reads was
        modified in place after the forward op."""
        for value, counter, version in self.checks:
            if counter.version != version:
                if value == autodiff.OUT:
                    what, saved = "output 0", self.out_value
                else:
                    what, saved = f"operand {value}", self.saved[value][1]
                raise RuntimeError(
                    at_user_line(
                        f"one of the variables needed for gradient computation has been modified by an inplace "
                        f"operation: {what} of {self.name()} (a {saved.dtype.name}{list(saved.shape)} tensor) "
                        f"is at version {counter.version}; expected version {version} instead. It was last "
                        f"modified by {counter.last_op}. Clone it before the in-place op (x = x.clone()), or "
                        "do the in-place op after backward()"
                    )
                )

    def context(self):
        """The VJP context (operand values, output value, attrs) as Tensors."""
        if self.saved is None:
            raise RuntimeError(_FREED)
        if self.checks:
            self.check_versions()
        srcs = [s if s._value is v else Tensor._wrap(v) for s, v in self.saved]
        out = self.out_ref()
        if out is None or out._value is not self.out_value:
            out = Tensor._wrap(self.out_value)
        return autodiff.VJPContext(srcs, out, self.attrs)


class FunctionNode:
    """A backward node with several outputs (see the module doc).

    Subclasses set `edges` (where the cotangent of each differentiable
    input goes, as in `Record.edges`) and implement `apply`."""

    edges: tuple = ()
    # True for a node made while tracing whose backward can be traced too
    # (it then has `input_values` and `symbolic_apply`).
    traced = False

    def apply(self, grads: dict, retain_graph: bool, create_graph: bool) -> tuple:
        """Cotangents, one (or None) per edge, from `grads`: output index ->
        cotangent Tensor, for the outputs that received one."""
        raise NotImplementedError

    def name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        return f"<{self.name()} object at {id(self):#x}>"

    @property
    def next_functions(self) -> tuple:
        return tuple((e, 0) for e in self.edges)


class OutputSlot:
    """The `grad_fn` of output `index` of a FunctionNode `node`."""

    __slots__ = ("__weakref__", "hooks", "index", "node", "retain")

    def __init__(self, node: FunctionNode, index: int):
        self.node = node
        self.index = index
        self.retain = None
        self.hooks = None

    def name(self) -> str:
        return self.node.name()

    def __repr__(self) -> str:
        return repr(self.node)

    @property
    def next_functions(self) -> tuple:
        return self.node.next_functions


def _function_of(edge):
    """The node that runs for `edge`: a slot's FunctionNode, else the edge."""
    return edge.node if isinstance(edge, OutputSlot) else edge


def record(op: Op, attrs: dict, srcs, out) -> None:
    """Attach a backward record for `out = op(srcs)` (called by Tensor._emit)."""
    out.grad_fn = Record(op, attrs, srcs, out)
    out._requires_grad = True


def _topo_records(roots) -> list:
    """Records reachable from `roots`, each before the records it feeds from."""
    order, seen = [], set()
    for root in roots:
        stack = [(root, False)]
        while stack:
            rec, done = stack.pop()
            if done:
                order.append(rec)
                continue
            if id(rec) in seen:
                continue
            seen.add(id(rec))
            stack.append((rec, True))
            for e in rec.edges:
                e = _function_of(e)
                if isinstance(e, (Record, FunctionNode)) and id(e) not in seen:
                    stack.append((e, False))
    order.reverse()
    return order


def _add(a, b):
    return b if a is None else a + b


def _run(roots, grads, retain_graph: bool, create_graph: bool, capture=None):
    """Propagate `grads` from `roots`. Without `capture`, accumulate into the
    leaves' `.grad`; with it (a dict keyed by id of Record, OutputSlot or
    leaf tensor), fill in the captured cotangents instead and touch no `.grad`."""
    cot: dict[int, object] = {}
    leaf_cot: dict[int, tuple] = {}

    def send(edge, g):
        g = _on_device_of(edge, g)
        if isinstance(edge, Record):
            cot[id(edge)] = _add(cot.get(id(edge)), g)
        elif isinstance(edge, OutputSlot):
            # A FunctionNode gathers its cotangents per output: index -> (slot, sum).
            slots = cot.setdefault(id(edge.node), {})
            prev = slots.get(edge.index, (edge, None))[1]
            slots[edge.index] = (edge, _add(prev, g))
        else:
            prev = leaf_cot.get(id(edge), (edge, None))[1]
            leaf_cot[id(edge)] = (edge, _add(prev, g))

    records = [_function_of(r.grad_fn) for r in roots if r.grad_fn is not None]
    for root, g in zip(roots, grads):
        send(root.grad_fn if root.grad_fn is not None else root, g)
    with set_grad_enabled(create_graph):
        # With post-accumulate hooks registered, a leaf's .grad is written
        # (and its hooks run) as soon as no later record can add to it, so
        # a hook can start work (a gradient all-reduce) while the rest of
        # the backward pass runs; records then run in an order that reaches
        # leaves early (_ready_order).
        early = _post_hooks_registered and capture is None
        order = _ready_order(records) if early else _topo_records(records)
        pending = _leaf_uses(order) if early else None
        for rec in order:
            g = cot.pop(id(rec), None)
            if g is not None:
                if isinstance(rec, Record):
                    g = _run_hooks(rec.hooks, g)
                    cots = _record_step(rec, g, retain_graph, create_graph, capture)
                else:
                    cots = _node_step(rec, g, retain_graph, create_graph, capture)
                for edge, c in zip(rec.edges, cots):
                    if edge is not None and c is not None:
                        send(edge, c)
            if pending is not None:
                _release_leaves(rec, pending, leaf_cot, create_graph)
        for key, (leaf, g) in leaf_cot.items():
            g = _run_hooks(getattr(leaf, "_backward_hooks", None), g)
            if capture is not None:
                if key in capture:
                    capture[key] = g
            else:
                _accumulate(leaf, g, create_graph)
                _post_accumulate(leaf)


def _ready_order(roots) -> list:
    """The records reachable from `roots` in a topological order that runs
    a record as soon as all its consumers have run, most recently readied
    first: the short branches to parameters (a weight's transpose, a bias's
    broadcast) run right after the op that uses them, so each layer's
    parameter gradients are final before backward moves on to the layer
    below (the order torch's engine follows)."""
    records = _topo_records(roots)
    waiting: dict[int, int] = {}
    for rec in records:
        for e in rec.edges:
            e = _function_of(e)
            if isinstance(e, (Record, FunctionNode)):
                waiting[id(e)] = waiting.get(id(e), 0) + 1
    ready = [rec for rec in reversed(records) if waiting.get(id(rec), 0) == 0]
    order = []
    while ready:
        rec = ready.pop()
        order.append(rec)
        for e in rec.edges:
            e = _function_of(e)
            if isinstance(e, (Record, FunctionNode)):
                waiting[id(e)] -= 1
                if waiting[id(e)] == 0:
                    ready.append(e)
    return order


def _leaf_uses(order) -> dict:
    """id(leaf) -> how many records in `order` send cotangents to it."""
    uses: dict[int, int] = {}
    for rec in order:
        for e in rec.edges:
            if e is not None and not isinstance(e, (Record, OutputSlot, FunctionNode)):
                uses[id(e)] = uses.get(id(e), 0) + 1
    return uses


def _release_leaves(rec, pending: dict, leaf_cot: dict, create_graph: bool) -> None:
    """Write the .grad of the leaves `rec` was the last record to feed."""
    for e in rec.edges:
        if e is None or isinstance(e, (Record, OutputSlot, FunctionNode)):
            continue
        key = id(e)
        pending[key] -= 1
        if pending[key] == 0 and key in leaf_cot:
            leaf, g = leaf_cot.pop(key)
            g = _run_hooks(getattr(leaf, "_backward_hooks", None), g)
            _accumulate(leaf, g, create_graph)
            _post_accumulate(leaf)


# -- post-accumulate-grad hooks and end-of-backward callbacks ----------------

# How many post-accumulate hooks are registered on live tensors: while none
# are, backward takes the plain path (every .grad written at the end).
_post_hooks_registered = 0
_final_callbacks: list = []


class _HookHandle:
    """Returned by register_post_accumulate_grad_hook; `remove()` unregisters
    (and so does the tensor's death). Holds the tensor weakly, so a hook that
    refers to its tensor does not keep it alive."""

    _next_id = 0

    def __init__(self, t):
        self._tensor = weakref.ref(t)
        self.id = _HookHandle._next_id
        _HookHandle._next_id += 1
        self._live = [True]  # shared with the finalizer
        weakref.finalize(t, _forget_hook, self._live)

    def remove(self) -> None:
        t = self._tensor()
        if t is not None:
            t.__dict__.get("_post_accumulate_hooks", {}).pop(self.id, None)
        _forget_hook(self._live)


def _forget_hook(live: list) -> None:
    global _post_hooks_registered
    if live[0]:
        live[0] = False
        _post_hooks_registered -= 1


def register_post_accumulate_grad_hook(t, hook):
    """Call `hook(t)` each time backward() has accumulated a gradient into
    leaf `t`'s `.grad` (torch.Tensor.register_post_accumulate_grad_hook)."""
    global _post_hooks_registered
    if t.grad_fn is not None:
        raise RuntimeError(at_user_line("post accumulate grad hooks cannot be registered on non-leaf tensors"))
    if not t.requires_grad:
        raise RuntimeError(at_user_line("cannot register a hook on a tensor that doesn't require gradient"))
    hooks = t.__dict__.get("_post_accumulate_hooks")
    if hooks is None:
        hooks = t.__dict__["_post_accumulate_hooks"] = {}
    handle = _HookHandle(t)
    hooks[handle.id] = hook
    _post_hooks_registered += 1
    return handle


def _post_accumulate(leaf) -> None:
    hooks = leaf.__dict__.get("_post_accumulate_hooks") if _post_hooks_registered else None
    if hooks:
        for hook in list(hooks.values()):
            hook(leaf)


def queue_callback(callback) -> None:
    """Run `callback()` once the current backward() call has finished
    (torch's engine `queue_callback`); DistributedDataParallel waits for its
    gradient all-reduces there."""
    _final_callbacks.append(callback)


def _run_final_callbacks() -> None:
    while _final_callbacks:
        _final_callbacks.pop(0)()


def _record_step(rec: Record, g, retain_graph: bool, create_graph: bool, capture) -> tuple:
    """The cotangents of a Record's operands, given its output's `g`."""
    if capture is not None and id(rec) in capture:
        capture[id(rec)] = g
    if rec.retain is not None and capture is None:
        _retain(rec, g, create_graph)
    ctx = rec.context()
    cots = autodiff.apply_vjp(rec.op, ctx.srcs, ctx.out, ctx.attrs, g)
    if not retain_graph:
        rec.saved = None
    return cots


def _node_step(node: FunctionNode, slots: dict, retain_graph: bool, create_graph: bool, capture) -> tuple:
    """The cotangents of a FunctionNode's edges, given its outputs' (slot, g)."""
    slots = {i: (slot, _run_hooks(slot.hooks, g)) for i, (slot, g) in slots.items()}
    for slot, g in slots.values():
        if capture is not None and id(slot) in capture:
            capture[id(slot)] = g
        if slot.retain is not None and capture is None:
            _retain(slot, g, create_graph)
    return node.apply({i: g for i, (_, g) in slots.items()}, retain_graph, create_graph)


def _run_hooks(hooks, g):
    """Pass gradient `g` through Tensor.register_hook hooks (id -> fn):
    each sees the previous one's result and may return a replacement."""
    if not hooks:
        return g
    for hook in list(hooks.values()):
        new = hook(g)
        if new is not None:
            if tuple(new.shape) != tuple(g.shape):
                raise RuntimeError(
                    at_user_line(
                        f"hook returned a gradient of shape {list(new.shape)}; expected the gradient's shape "
                        f"{list(g.shape)}"
                    )
                )
            g = new
    return g


def register_hook(t, hook):
    """Tensor.register_hook: call `hook(grad)` whenever the gradient of `t`
    is computed; a non-None return value replaces the gradient."""
    from graphc.utils.hooks import RemovableHandle

    if not t.requires_grad:
        raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
    owner = t.grad_fn
    if owner is None:
        hooks = t.__dict__.setdefault("_backward_hooks", {})
    else:
        if owner.hooks is None:
            owner.hooks = {}
        hooks = owner.hooks
    handle = RemovableHandle(hooks)
    hooks[handle.id] = hook
    return handle


def _retain(rec: Record, g, create_graph: bool) -> None:
    t = rec.retain()
    if t is not None and t.grad_fn is rec:
        _accumulate(t, g, create_graph)


def _accumulate(t, g, create_graph: bool) -> None:
    """Add `g` into `t.grad` (in place when one exists, as torch does)."""
    g = g if create_graph else g.detach()
    if g.dtype is not t.dtype:
        g = g.to(t.dtype)
    if t.grad is None:
        t.grad = g if create_graph else _fresh(g)
    elif create_graph:
        t.grad = t.grad + g
    else:
        with no_grad():
            t.grad.add_(g)


def _on_device_of(edge, g):
    """`g` on the device of the value it is the cotangent of (a tensor moved
    between devices sends its gradient back to where it came from)."""
    if isinstance(edge, OutputSlot):
        return g  # FunctionNodes place their cotangents themselves
    value = edge.out_value if isinstance(edge, Record) else edge._value
    if g.is_symbolic or not isinstance(value, (np.ndarray, DeviceArray)):
        return g  # under a trace devices are labels only
    dev = value_device(value)
    return g if g.device == dev else g.to(dev)


def _fresh(g):
    """A new tensor owning its data: one cotangent may reach several leaves
    (a + b gives both the same one), and a later in-place accumulation into
    one `.grad` must not change another."""
    import numpy as np

    v = g._value
    if isinstance(v, DeviceArray):
        return Tensor._wrap(v.copy())
    return Tensor._wrap(np.array(v) if isinstance(v, np.ndarray) else v)


def _seed(t, gradient):
    if gradient is None:
        if t.numel() != 1:
            raise RuntimeError(
                at_user_line(f"grad can be implicitly created only for scalar outputs (got shape {list(t.shape)})")
            )
        return Tensor._ones_like(t)
    # A number or nested list: the output's dtype, as torch takes it.
    g = gradient if isinstance(gradient, Tensor) else Tensor._wrap(np.asarray(gradient, dtype=t.dtype.np))
    if tuple(g.shape) != tuple(t.shape):
        raise RuntimeError(
            at_user_line(
                f"Mismatch in shape: grad_output[0] has a shape of {list(g.shape)} "
                f"and output[0] has a shape of {list(t.shape)}"
            )
        )
    return g


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None) -> None:
    """Accumulate gradients of `tensors` into the `.grad` of the leaves."""
    tensors = [tensors] if isinstance(tensors, Tensor) else list(tensors)
    if grad_tensors is None or isinstance(grad_tensors, Tensor):
        grad_tensors = [grad_tensors] * len(tensors)
    for t in tensors:
        if not t.requires_grad:
            raise RuntimeError(at_user_line("element 0 of tensors does not require grad and does not have a grad_fn"))
    seeds = [_seed(t, g) for t, g in zip(tensors, grad_tensors)]
    retain = create_graph if retain_graph is None else retain_graph
    try:
        if inputs is None:
            _run(tensors, seeds, retain, create_graph)
            return
        # backward(inputs=...): accumulate into the given tensors' .grad only.
        inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
        keys = [id(t.grad_fn) if t.grad_fn is not None else id(t) for t in inputs]
        capture = dict.fromkeys(keys)
        _run(tensors, seeds, retain, create_graph, capture)
        for t, k in zip(inputs, keys):
            if capture[k] is not None:
                _accumulate(t, capture[k], create_graph)
                _post_accumulate(t)
    finally:
        _run_final_callbacks()


def grad(
    outputs,
    inputs,
    grad_outputs=None,
    retain_graph=None,
    create_graph=False,
    allow_unused=None,
    materialize_grads=False,
):
    """Gradients of `outputs` w.r.t. `inputs`, returned as a tuple (torch.autograd.grad).
    `.grad` attributes are not touched."""
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    single = isinstance(inputs, Tensor)
    inputs = [inputs] if single else list(inputs)
    if grad_outputs is None or isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs] * len(outputs)
    for t in inputs:
        if not t.requires_grad:
            raise RuntimeError(at_user_line("One of the differentiated Tensors does not require grad"))
    seeds = [_seed(t, g) for t, g in zip(outputs, grad_outputs)]
    keys = [id(t.grad_fn) if t.grad_fn is not None else id(t) for t in inputs]
    capture = {k: None for k in keys}
    retain = create_graph if retain_graph is None else retain_graph
    _run(outputs, seeds, retain, create_graph, capture)
    result = []
    for t, k in zip(inputs, keys):
        g = capture[k]
        if g is None:
            if materialize_grads:
                g = Tensor._zeros_like(t)
            elif not allow_unused:
                raise RuntimeError(
                    at_user_line(
                        "One of the differentiated Tensors appears to not have been used in the graph. "
                        "Set allow_unused=True if this is the desired behavior."
                    )
                )
        elif not create_graph:
            g = g.detach()
        result.append(g)
    return tuple(result)


# Custom Functions and gradcheck build on this engine and on graphc.Tensor,
# which builds on this engine: they live in graphc/_function.py and
# graphc/_gradcheck.py, and are served here on first use (torch.autograd.*).
_ABOVE = {
    "function": ("graphc._function", None),
    "Function": ("graphc._function", "Function"),
    "FunctionCtx": ("graphc._function", "FunctionCtx"),
    "once_differentiable": ("graphc._function", "once_differentiable"),
    "GradcheckError": ("graphc._gradcheck", "GradcheckError"),
    "gradcheck": ("graphc._gradcheck", "gradcheck"),
}


def __getattr__(name: str):
    if name not in _ABOVE:
        raise AttributeError(f"module 'graphc.autograd' has no attribute {name!r}")
    module_name, attr = _ABOVE[name]
    module = importlib.import_module(module_name)
    return module if attr is None else getattr(module, attr)


__all__ = [
    "FunctionNode",
    "OutputSlot",
    "Record",
    "backward",
    "enable_grad",
    "grad",
    "inference_mode",
    "is_grad_enabled",
    "no_grad",
    "queue_callback",
    "register_post_accumulate_grad_hook",
    "set_grad_enabled",
    "Function",  # noqa: F822 -- served by __getattr__, like the five below
    "FunctionCtx",  # noqa: F822
    "GradcheckError",  # noqa: F822
    "function",  # noqa: F822
    "gradcheck",  # noqa: F822
    "once_differentiable",  # noqa: F822
]
