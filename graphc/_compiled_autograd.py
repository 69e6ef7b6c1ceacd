"""Compiled forward and backward for calls whose results require grad.

When a function compiled with `graphc.compile` returns tensors that require
grad (a forward pass under grad mode, differentiated later), graphc.compile
hands the traced program to `build_entry`, which:

1. Differentiates the trace symbolically: it walks the autograd records
   the trace made (the same records eager `backward()` walks, so `detach`
   and `no_grad` regions inside the function cut gradients exactly as in
   eager mode) and applies the VJP rules (passes/autodiff.py) to IR nodes,
   from one cotangent input per result that requires grad down to the
   graph inputs whose tensors require grad (arguments, parameters).
2. Partitions (passes/partition.py): the forward program also returns the
   residuals, the intermediates the backward reads (a dropout mask is one,
   so the backward sees the forward's random numbers); the backward
   program takes the residuals and the output gradients and returns one
   gradient per differentiated input.
3. Compiles both programs with the call's backend.

Each call runs the forward program, applies its state writes once (BatchNorm
running statistics, the RNG state) and returns results whose `grad_fn` is a
`CompiledBackward` node (graphc.autograd.FunctionNode). `backward()` runs
the backward program once per node with all of its output gradients and
sends the results on to the inputs' own `grad_fn` or `.grad`, as eager
autograd does. The residuals are freed by a backward without
`retain_graph=True`; a second backward then raises as in torch.
`create_graph=True` (double backward) through a compiled node raises:
the backward program's results have no autograd history.

On a GPU both programs run on device storage (as graphc.compile's other
programs do): residuals stay on the device, and output gradients are
uploaded when they come from the host.
"""

from __future__ import annotations

import dataclasses

import numpy as np

import graphc.passes.autodiff as autodiff
import graphc.runtime.backends as backends
from graphc import autograd
from graphc._program_entry import _at_path, _Entry
from graphc.errors import GraphcError, at_user_line
from graphc.ir.graph import Graph, Node, input_node
from graphc.ir.ops import Op
from graphc.passes.partition import partition

_CREATE_GRAPH = (
    "graphc.compile: create_graph=True (double backward) is not supported through a compiled forward; "
    "its backward is a compiled program whose results carry no autograd history. Call the model "
    "without graphc.compile for higher-order gradients."
)


class CompiledBackward(autograd.FunctionNode):
    """The backward node of one compiled forward call (see the module doc).

    `saved` holds the residual arrays until a backward without
    retain_graph frees them."""

    def __init__(self, entry: AutogradEntry, edges: tuple, saved: list):
        self.entry = entry
        self.edges = edges
        self.saved = saved
        # (what, counter, version) for each residual that is a tensor the
        # user holds (an input or a result): an in-place change to it before
        # backward would change the gradient, so backward raises, as
        # PyTorch's version counter does.
        self.checks: list = []

    def watch(self, what: str, t) -> None:
        counter = t._counter()
        self.checks.append((what, counter, counter.version))

    def _check_versions(self) -> None:
        for what, counter, version in self.checks:
            if counter.version != version:
                raise RuntimeError(
                    at_user_line(
                        f"one of the variables needed for gradient computation has been modified by an inplace "
                        f"operation: {what} of {self.name()} is at version {counter.version}; expected version "
                        f"{version} instead. It was last modified by {counter.last_op}. Clone it before the "
                        "in-place op (x = x.clone()), or do the in-place op after backward()"
                    )
                )

    def name(self) -> str:
        return "CompiledFunctionBackward"

    def apply(self, grads: dict, retain_graph: bool, create_graph: bool) -> tuple:
        if create_graph:
            raise RuntimeError(_CREATE_GRAPH)
        if self.saved is None:
            raise RuntimeError(autograd._FREED)
        self._check_versions()
        entry = self.entry
        cotangents = [entry.cotangent_value(grads.get(i), i) for i in range(len(entry.cotangent_types))]
        outs = entry.run_backward(self.saved + cotangents)
        if not retain_graph:
            self.saved = None
        return outs


def _tensor_class():
    from graphc._tensor_core import Tensor

    return Tensor


# ---------------------------------------------------------------------------
# building: the symbolic backward walk


def _symbolic_backward(program) -> tuple[list[Node], list[int], dict[Node, Node]]:
    """Cotangent inputs (one per result that requires grad), the result
    output indices they belong to, and the gradient node of each graph
    input that a gradient reaches."""
    graph = program.graph
    inputs = set(graph.inputs)
    cot: dict[int, tuple] = {}  # id(Record) -> (record, cotangent node)
    at_input: dict[Node, Node] = {}

    def send(edge, value: Node, g: Node) -> None:
        if isinstance(edge, autograd.Record) and isinstance(edge.out_value, Node):
            prev = cot.get(id(edge), (edge, None))[1]
            cot[id(edge)] = (edge, g if prev is None else autodiff.emit(Op.ADD, prev, g))
            return
        if isinstance(edge, autograd.OutputSlot) and edge.node.traced:
            # A custom Function applied in the trace: gather per output.
            slots = cot.setdefault(id(edge.node), (edge.node, {}))[1]
            prev = slots.get(edge.index)
            slots[edge.index] = g if prev is None else autodiff.emit(Op.ADD, prev, g)
            return
        # A leaf, a record made before the call or another compiled output:
        # the gradient leaves the program through the graph input.
        if value not in inputs:
            raise GraphcError(f"graphc.compile: a gradient reaches {value!r}, which is not an input of the trace")
        prev = at_input.get(value)
        at_input[value] = g if prev is None else autodiff.emit(Op.ADD, prev, g)

    cotangents, result_outputs = [], []
    # Input nodes are hash-consed by name: a cotangent's must be new.
    taken = {n.attrs["name"] for n in graph.inputs}
    for i, edge in enumerate(program.result_edges):
        if edge is None:
            continue
        out = graph.outputs[i]
        name = f"grad_{graph.output_names[i]}"
        while name in taken:
            name += "_"
        taken.add(name)
        c = input_node(name, out.shape, out.dtype)
        cotangents.append(c)
        result_outputs.append(i)
        send(edge, out, c)
    roots = [
        autograd._function_of(e)
        for e in program.result_edges
        if isinstance(e, autograd.Record) or isinstance(e, autograd.OutputSlot) and e.node.traced
    ]
    for rec in autograd._topo_records(roots):
        entry = cot.pop(id(rec), None)
        if entry is None:
            continue
        g = entry[1]
        if not isinstance(rec, autograd.Record):
            # Its backward is the user's code, traced into the program.
            for edge, src, c in zip(rec.edges, rec.input_values, rec.symbolic_apply(g)):
                if edge is not None and c is not None:
                    send(edge, src, c)
            continue
        if rec.saved is None:
            raise GraphcError("graphc.compile: the trace's autograd records were freed by a backward inside it")
        if rec.hooks:
            raise GraphcError(
                "graphc.compile: a gradient hook (Tensor.register_hook) on a tensor made inside a compiled "
                "function runs only when backward() is called inside that function too; register it outside "
                "or compile the whole training step"
            )
        srcs = [v for _, v in rec.saved]
        cots = autodiff.apply_vjp(rec.op, srcs, rec.out_value, rec.attrs, g)
        for edge, src, c in zip(rec.edges, srcs, cots):
            if edge is not None and c is not None:
                send(edge, src, c)
    return cotangents, result_outputs, at_input


# ---------------------------------------------------------------------------
# the cache entry


def _compile(graph: Graph, backend: str, device, aliases=None):
    if device is None:
        return backends.compile_graph(graph, backend, aliases)
    from graphc._device_storage import runtime

    return runtime().compile_graph(graph, aliases or {})


def build_entry(program, backend: str, device=None, guards=None):
    """A compiled forward+backward entry for `program` (run on `device`, a
    GPU, or on the host when None), or None when no gradient reaches an
    input of the trace."""
    cotangents, result_outputs, at_input = _symbolic_backward(program)
    graph = program.graph
    wrt = [i for i, n in enumerate(graph.inputs) if n in at_input]
    if not wrt:
        return None
    grads = [at_input[graph.inputs[i]] for i in wrt]
    split = partition(graph, grads, cotangents, name=f"{graph.name}_backward")
    input_index = {n: i for i, n in enumerate(graph.inputs)}
    extra = [r for r in split.residuals if r not in input_index]
    forward = Graph(
        graph.inputs,
        graph.outputs + tuple(extra),
        graph.name,
        graph.output_names + tuple(f"saved{i}" for i in range(len(extra))),
    )
    program = dataclasses.replace(program, graph=forward, result_edges=[])
    executable = _compile(forward, backend, device, program.aliases)
    backward = _compile(split.backward, backend, device)
    n_outputs = len(graph.outputs)
    extra_at = {r: n_outputs + k for k, r in enumerate(extra)}
    saved = [("input", input_index[r]) if r in input_index else ("output", extra_at[r]) for r in split.residuals]
    return AutogradEntry(program, executable, backward, saved, wrt, result_outputs, cotangents, device, guards)


class AutogradEntry:
    """A compiled forward whose results carry a CompiledBackward node; the
    rest (inputs, state writes, staleness) is graphc.compile's `_Entry`."""

    def __init__(self, program, executable, backward, saved, wrt, result_outputs, cotangents, device=None, guards=None):
        self.base = _Entry(program, executable, device, guards)
        self.program = program
        self.backward = backward
        # The GPU both programs run on (None: the host).
        self.device = device
        # Where each residual comes from: ("input", i) or ("output", j). An
        # input the forward updates in place is saved as a copy.
        aliased = set(program.aliases.values())
        self.saved = [(kind, i, kind == "input" and i in aliased) for kind, i in saved]
        self.wrt = wrt
        # Forward outputs that are (or repeat) a result the user gets: a
        # residual saved there is that result's array.
        outputs = program.graph.outputs
        first = {}
        for o in range(program.n_results):
            first.setdefault(outputs[o], o)
        self.result_of_output = {j: first[n] for j, n in enumerate(outputs) if n in first}
        self.slot_of = {o: k for k, o in enumerate(result_outputs)}
        self.cotangent_types = [(tuple(c.shape), np.dtype(c.dtype.np)) for c in cotangents]
        state = [ref for kind, ref in program.input_sources if kind == "state"]
        self.requires_grad = [(t, t.requires_grad) for t in state]
        self.static = False

    def cotangent_value(self, g, index: int):
        """The array for output `index`'s gradient `g` (zeros when None) where
        the backward program reads it: the host, or the program's device."""
        shape, dtype = self.cotangent_types[index]
        value = np.zeros(shape, dtype) if g is None else g._value
        if isinstance(value, np.generic):
            value = np.asarray(value)
        if self.device is not None:
            from graphc import _device_storage as ds

            if isinstance(value, np.ndarray):
                return ds.to_device(value.astype(dtype, copy=False), self.device)
            if isinstance(value, ds.DeviceArray) and value.device == self.device and value.dtype == dtype:
                return value
        elif isinstance(value, np.ndarray):
            return value if value.dtype == dtype else value.astype(dtype)
        raise GraphcError(
            f"graphc.compile: the gradient of a compiled output must be a concrete {dtype} tensor on "
            f"{self.device or 'cpu'}, got {type(value).__name__}"
        )

    def run_backward(self, inputs: list) -> tuple:
        """The backward program's gradients (Tensors) for residuals + cotangents."""
        Tensor = _tensor_class()
        if self.device is None:
            return tuple(Tensor._from_numpy(o) for o in self.backward(inputs))
        from graphc import _device_storage as ds

        buffers = self.backward.run_device([v.buffer for v in inputs])
        rt = ds.runtime()
        nodes = self.backward.graph.outputs
        return tuple(
            Tensor._wrap(ds.DeviceArray(b, n.shape, n.dtype.np, self.device, rt)) for b, n in zip(buffers, nodes)
        )

    def stale_reason(self) -> str | None:
        for t, flag in self.requires_grad:
            if t.requires_grad != flag:
                return f"a captured tensor's requires_grad changed to {t.requires_grad}"
        return self.base.stale_reason()

    def run(self, args: tuple, kwargs: dict):
        base = self.base
        if self.device is None:
            inputs = base._inputs(args, kwargs)
        else:
            inputs = base._device_inputs(args, kwargs)
        copies = {i: inputs[i].copy() for kind, i, copy in self.saved if copy}
        sources = self.program.input_sources
        # Where each input's gradient goes, read while the inputs are as
        # the trace saw them (before any state write).
        edges = []
        for i in self.wrt:
            kind, ref = sources[i]
            t = _at_path(args, kwargs, ref) if kind == "arg" else ref
            edges.append(t.grad_fn if t.grad_fn is not None else t)
        if self.device is None:
            outs, wrap = base._execute(args, kwargs, inputs), base._wrap
        else:
            outs, wrap = base._execute_on_device(inputs), _tensor_class()._wrap
        saved = [copies[i] if copy else inputs[i] if kind == "input" else outs[i] for kind, i, copy in self.saved]
        node = CompiledBackward(self, tuple(edges), saved)
        results = []
        for o in range(self.program.n_results):
            t = wrap(outs[o])
            k = self.slot_of.get(o)
            if k is not None:
                t.grad_fn = autograd.OutputSlot(node, k)
                t._requires_grad = True
            results.append(t)
        for kind, i, copy in self.saved:
            if kind == "output" and i in self.result_of_output:
                o = self.result_of_output[i]
                node.watch(f"output {o}", results[o])
            elif kind == "input" and not copy:
                kind_i, ref = sources[i]
                t = _at_path(args, kwargs, ref) if kind_i == "arg" else ref
                node.watch(f"input {self.program.graph.inputs[i].attrs['name']!r}", t)
        return _build(self.program.out_spec, results)


def _build(spec, results: list):
    from graphc._trace import build_result

    return build_result(spec, results, lambda t: t)


__all__ = ["AutogradEntry", "CompiledBackward", "build_entry"]
