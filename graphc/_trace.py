"""Tracing: run a Python function on symbolic tensors and record one IR graph.

While a `Tracer` is active every op builds a node (Tensor._emit asks
`active()`), and tensors created inside the function are constant nodes.
Any concrete tensor an op touches existed before the trace: it is lifted to
a graph input, *captured state*, named by its module path ("fc1.weight")
when the caller knows one, else "c0", "c1", ... . In-place updates of
captured tensors and `.grad` assignments are recorded as *state writes*; at
the end they become extra graph outputs, and every captured tensor gets its
concrete value back. The caller (graphc.compile) applies the writes after
running the compiled program.

What a traced function may not do: read tensor values in Python (`if`,
`.item()`, `bool()`, boolean-mask indexing) -- that raises
`graphc.errors.TraceError` naming the line -- or keep symbolic tensors after
the trace (using one eagerly later raises a clear error).
"""

from __future__ import annotations

import contextlib
import inspect
import re
from dataclasses import dataclass, field
from typing import Any

from graphc.debug import dump
from graphc.errors import TraceError
from graphc.ir.graph import Graph, Node, input_node

# The tensor class, bound by graphc/_tensor_core.py as it loads: the tensor
# records into traces, so this module cannot import it.
Tensor: type | None = None


def bind_tensor_class(cls: type) -> None:
    """Called once by the tensor core with its class."""
    global Tensor
    Tensor = cls


# Global state tensors a trace may capture, with the input name each gets:
# (getter, name) pairs registered by the modules that own them (graphc.random
# registers its generator state as "rng_state").
_NAMED_STATE: list = []


def name_state(getter, name: str) -> None:
    """Name the tensor `getter()` returns `name` when a trace captures it."""
    _NAMED_STATE.append((getter, name))


_ACTIVE: list = []


def active():
    """The innermost active Tracer, or None when running eagerly."""
    return _ACTIVE[-1] if _ACTIVE else None


@dataclass
class _Captured:
    """A tensor that entered the trace from outside (argument or state)."""

    tensor: Any
    name: str
    input_index: int
    value: Any  # its concrete value before the trace
    grad: Any  # its .grad before the trace


@dataclass
class StateWrite:
    """One effect of a traced call on a captured tensor.

    kind "value": the tensor was updated in place; graph output `output`
    holds the new value (aliased to graph input `input_index`).
    kind "grad": its `.grad` was assigned; `output` holds the new gradient,
    or is None when `.grad` was set to None."""

    kind: str
    tensor: Any
    name: str
    output: int | None
    input_index: int


@dataclass
class TracedProgram:
    """A traced function: the graph plus how to feed and read it.

    - `graph.inputs[i]` comes from `input_sources[i]`: ("arg", path) with
      path a tuple of keys into (args, kwargs), or ("state", tensor);
    - `out_spec` rebuilds the Python result from the graph's first
      `n_results` outputs (see `build_result`);
    - `state_writes` lists the captured tensors to update after each call;
    - `aliases` maps each in-place state output to its input index."""

    graph: Graph
    input_sources: list
    out_spec: Any
    n_results: int
    state_writes: list = field(default_factory=list)
    needs_autograd: bool = False
    # Modules called during the trace: their train/eval flags were baked in.
    modules: list = field(default_factory=list)
    # (tensor, version) of concrete tensors whose values the trace read as
    # Python data (.item(), .tolist()): those values were baked in.
    concrete_reads: list = field(default_factory=list)
    # Per result output: the traced tensor's autograd edge (its grad_fn, the
    # tensor itself when it is a leaf that requires grad, or None); what
    # graphc/_compiled_autograd.py differentiates.
    result_edges: list = field(default_factory=list)

    @property
    def aliases(self) -> dict:
        return {w.output: w.input_index for w in self.state_writes if w.kind == "value"}

    def captured(self) -> list:
        """The captured state tensors, in graph-input order."""
        return [src[1] for src in self.input_sources if src[0] == "state"]


class Tracer:
    """Records ops on symbolic tensors into graph nodes (see module doc)."""

    def __init__(self, names: dict | None = None):
        self.names = dict(names or {})
        self.inputs: list[Node] = []
        self.sources: list = []
        self.captured: dict[int, _Captured] = {}
        self.mutated: dict[int, Any] = {}
        self.rebound: list = []
        self.used_names: set[str] = set()
        self._counter = 0
        self.results_need_grad = False
        self.modules: dict = {}  # id -> Module called while tracing
        self.concrete_reads: dict = {}  # id -> (tensor, version when read)
        self.result_edges: list = []

    # -- inputs ----------------------------------------------------------

    def _unique(self, name: str) -> str:
        base, k = name, 1
        while name in self.used_names:
            name = f"{base}_{k}"
            k += 1
        self.used_names.add(name)
        return name

    def _add_input(self, t, name: str, source) -> Node:
        name = self._unique(name)
        n = input_node(name, t.shape, t.dtype)
        self.captured[id(t)] = _Captured(t, name, len(self.inputs), t._value, t._grad)
        self.inputs.append(n)
        self.sources.append(source)
        self.rebound.append((t, t._value))
        t._value = n
        return n

    def add_arg(self, t, name: str, path: tuple) -> None:
        if id(t) in self.captured:
            return
        self._add_input(t, name, ("arg", path))

    def _lift(self, t) -> Node:
        name = self.names.get(id(t))
        if name is None:
            name = f"c{self._counter}"
            self._counter += 1
        return self._add_input(t, name, ("state", t))

    def value_of(self, t) -> Node:
        """The node standing for tensor `t` (lifting it if it is concrete)."""
        v = t._value
        if isinstance(v, Node):
            return v
        root = t._alias_of if t._alias_of is not None else t
        if isinstance(root._value, Node):
            return root._value
        return self._lift(root)

    def write(self, t, value: Node) -> None:
        """An in-place update of `t` to `value` (recorded when `t` is captured)."""
        if not isinstance(t._value, Node) or t._alias_of is not None and id(t._alias_of) in self.captured:
            root = t._alias_of if t._alias_of is not None else t
            if not isinstance(root._value, Node):
                self._lift(root)
            if root is not t:
                self.rebound.append((t, t._value))
                t._value = value
            t = root
        t._value = value
        if id(t) in self.captured:
            self.mutated[id(t)] = t

    def read_concrete(self, t) -> None:
        """The function read concrete tensor `t`'s value as Python data."""
        self.concrete_reads.setdefault(id(t), (t, t._version))

    # -- the end of a trace ------------------------------------------------

    def finish(self, result, name: str) -> TracedProgram:
        outputs, names = [], []
        out_spec = self._flatten(result, outputs, names)
        n_results = len(outputs)
        writes = []
        for key, t in self.mutated.items():
            cap = self.captured[key]
            writes.append(StateWrite("value", t, cap.name, len(outputs), cap.input_index))
            outputs.append(t._value)
            names.append(cap.name)
        for cap in list(self.captured.values()):
            t = cap.tensor
            if t._grad is cap.grad:
                continue
            if t._grad is None:
                writes.append(StateWrite("grad", t, cap.name + ".grad", None, cap.input_index))
                continue
            node = self.value_of(t._grad)
            writes.append(StateWrite("grad", t, cap.name + ".grad", len(outputs), cap.input_index))
            outputs.append(node)
            names.append(cap.name + ".grad")
        graph = Graph(self.inputs, outputs, name, names)
        return TracedProgram(
            graph,
            self.sources,
            out_spec,
            n_results,
            writes,
            self.results_need_grad,
            list(self.modules.values()),
            list(self.concrete_reads.values()),
            self.result_edges,
        )

    def _flatten(self, obj, outputs: list, names: list, prefix: str = "out"):
        if isinstance(obj, Tensor):
            self.results_need_grad = self.results_need_grad or obj.requires_grad
            if not isinstance(obj._value, Node):
                return ("tensor", obj)
            outputs.append(obj._value)
            names.append(prefix)
            self.result_edges.append(obj.grad_fn if obj.grad_fn is not None else (obj if obj.requires_grad else None))
            return ("out", len(outputs) - 1)
        if isinstance(obj, tuple) and hasattr(obj, "_fields"):
            items = [self._flatten(v, outputs, names, f"{prefix}.{k}") for k, v in zip(obj._fields, obj)]
            return ("namedtuple", type(obj), items)
        if isinstance(obj, (tuple, list)):
            items = [self._flatten(v, outputs, names, f"{prefix}{i}") for i, v in enumerate(obj)]
            return (type(obj).__name__, items)
        if isinstance(obj, dict):
            return (
                "dict",
                [(k, self._flatten(v, outputs, names, f"{prefix}.{k}")) for k, v in obj.items()],
            )
        return ("const", obj)

    @contextlib.contextmanager
    def reentered(self, what: str):
        """Make this finished trace active again, with the captured tensors
        standing for their graph inputs, so that `what` (code that runs
        after the trace, such as a custom Function's backward) adds nodes
        to it. It may not capture new tensors or update captured ones: the
        program's inputs and outputs are fixed."""
        n_inputs, n_mutated, n_rebound = len(self.inputs), len(self.mutated), len(self.rebound)
        back = [(cap.tensor, cap.tensor._value) for cap in self.captured.values()]
        for cap in self.captured.values():
            cap.tensor._value = self.inputs[cap.input_index]
        _ACTIVE.append(self)
        try:
            yield self
            if len(self.inputs) != n_inputs:
                raise TraceError(
                    f"graphc.compile: {what} reads a tensor ({self.inputs[n_inputs].attrs['name']!r}) that the "
                    "traced forward never used; save it with ctx.save_for_backward or pass it to apply()"
                )
            if len(self.mutated) != n_mutated:
                raise TraceError(f"graphc.compile: {what} modifies a tensor in place; this cannot be compiled")
        finally:
            _ACTIVE.pop()
            for t, value in reversed(self.rebound[n_rebound:]):
                t._value = value
            del self.rebound[n_rebound:]
            for t, value in back:
                t._value = value

    def restore(self) -> None:
        """Give every captured tensor its concrete value and `.grad` back."""
        for t, value in reversed(self.rebound):
            t._value = value
        for cap in self.captured.values():
            cap.tensor._grad = cap.grad


def build_result(spec, outputs: list, wrap):
    """Rebuild a traced function's Python result from its output arrays;
    `wrap` turns an array into a Tensor."""
    kind = spec[0]
    if kind == "out":
        return wrap(outputs[spec[1]])
    if kind in ("tensor", "const"):
        return spec[1]
    if kind == "namedtuple":
        return spec[1](*[build_result(s, outputs, wrap) for s in spec[2]])
    if kind in ("tuple", "list"):
        items = [build_result(s, outputs, wrap) for s in spec[1]]
        return tuple(items) if kind == "tuple" else items
    if kind == "dict":
        return {k: build_result(s, outputs, wrap) for k, s in spec[1]}
    raise ValueError(f"bad output spec {spec!r}")


def _param_names(fn) -> list[str]:
    target = fn.forward if hasattr(fn, "forward") and hasattr(fn, "named_parameters") else fn
    try:
        return list(inspect.signature(target).parameters)
    except (TypeError, ValueError):
        return []


def _name_module(names: dict, module, prefix: str) -> None:
    for name, p in module.named_parameters():
        names.setdefault(id(p), prefix + name)
        if p.grad is not None:
            names.setdefault(id(p.grad), prefix + name + ".grad")
    if hasattr(module, "named_buffers"):
        for name, b in module.named_buffers():
            if b is not None:
                names.setdefault(id(b), prefix + name)


def _referenced_modules(fn) -> list:
    """(variable name, Module) for modules a plain function uses through
    its closure or globals: their parameters get readable names."""
    code = getattr(fn, "__code__", None)
    if code is None:
        return []
    found = []
    cells = zip(code.co_freevars, fn.__closure__ or ())
    for name, cell in cells:
        try:
            found.append((name, cell.cell_contents))
        except ValueError:
            continue
    globs = getattr(fn, "__globals__", {})
    found += [(name, globs[name]) for name in code.co_names if name in globs]
    return [(n, m) for n, m in found if not isinstance(m, type)]


def _name_optimizer(names: dict, opt, prefix: str) -> None:
    """Optimizer state tensors: "<var>.state.<param name>.<key>", and the
    learning-rate tensors: "<var>.param_groups.<i>.lr"."""
    for i, (param, state) in enumerate(getattr(opt, "state", {}).items()):
        pname = names.get(id(param), f"p{i}")
        for key, value in state.items() if isinstance(state, dict) else ():
            if isinstance(value, Tensor):
                names.setdefault(id(value), f"{prefix}state.{pname}.{key}")
    # The learning rates schedulers change between calls live in tensors.
    for i, lr in enumerate(getattr(opt, "_lr_tensors", ())):
        names.setdefault(id(lr), f"{prefix}param_groups.{i}.lr")


def state_names(fn) -> dict:
    """Names of the state a function or Module may capture: module paths
    for parameters, buffers and their gradients ("fc1.weight",
    "fc1.weight.grad"; "model.fc1.weight" for a module a plain function
    uses), and "rng_state" for the default generator."""
    names = {id(get()): name for get, name in _NAMED_STATE}
    module = fn if hasattr(fn, "named_parameters") else getattr(fn, "__self__", None)
    if module is not None and hasattr(module, "named_parameters"):
        _name_module(names, module, "")
    referenced = _referenced_modules(fn)
    for var, obj in referenced:
        if hasattr(obj, "named_parameters"):
            _name_module(names, obj, var + ".")
    for var, obj in referenced:
        if hasattr(obj, "param_groups") and hasattr(obj, "state"):
            _name_optimizer(names, obj, var + ".")
    return names


def _arg_leaves(obj, path: tuple, name: str, out: list) -> None:
    if isinstance(obj, Tensor):
        out.append((obj, name, path))
    elif isinstance(obj, (tuple, list)):
        # A tuple type may name fields that are static data of the call (a
        # PackedSequence's batch sizes): they stay concrete, and the compile
        # cache key holds their values (compile._value_key).
        static = getattr(type(obj), "_graphc_static_fields", ())
        for i, v in enumerate(obj):
            if static and obj._fields[i] in static:
                continue
            _arg_leaves(v, path + (i,), f"{name}_{i}", out)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            _arg_leaves(v, path + (k,), f"{name}_{k}", out)


def arg_tensors(fn, args: tuple, kwargs: dict) -> list:
    """(tensor, input name, path) for every tensor in the arguments."""
    params = _param_names(fn)
    leaves: list = []
    for i, a in enumerate(args):
        name = params[i] if i < len(params) and params[i] not in ("args", "kwargs") else f"arg{i}"
        _arg_leaves(a, (0, i), name, leaves)
    for k, v in kwargs.items():
        _arg_leaves(v, (1, k), k, leaves)
    return leaves


def trace_program(fn, args: tuple = (), kwargs: dict | None = None, names: dict | None = None) -> TracedProgram:
    """Trace `fn(*args, **kwargs)` into a TracedProgram (see its doc).

    `names` maps id(tensor) to a state name; by default parameters and
    buffers of a Module (`fn` itself or the object of a bound method) are
    named by their path."""
    kwargs = dict(kwargs or {})
    tracer = Tracer(state_names(fn) if names is None else names)
    graph_name = re.sub(r"\W", "_", getattr(fn, "__name__", type(fn).__name__)) or "main"
    for t, name, path in arg_tensors(fn, args, kwargs):
        tracer.add_arg(t, name, path)
    _ACTIVE.append(tracer)
    try:
        result = fn(*args, **kwargs)
        program = tracer.finish(result, graph_name)
    finally:
        _ACTIVE.pop()
        tracer.restore()
    dump(2, f"traced {graph_name}:\n{program.graph}")
    return program


def trace(fn, *example_inputs, **example_kwargs) -> Graph:
    """The IR graph of `fn` (a function or Module) on the example inputs.

    Inputs: the example inputs (named after `fn`'s parameters), then the
    captured state; outputs: the results, then the state writes.

    >>> import graphc
    >>> g = graphc.trace(lambda x: (x * 2).sum(), graphc.ones(3))
    >>> [i.attrs["name"] for i in g.inputs]
    ['x']
    """
    return trace_program(fn, example_inputs, example_kwargs).graph
