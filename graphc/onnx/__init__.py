"""Export to ONNX: `graphc.onnx.export(model, args, f, ...)`, as torch.onnx.export.

The model's forward is traced on `args` into graphc's IR (graphc/_trace.py,
as graphc.compile traces it), in eval mode, and each IR primitive becomes
ONNX ops (graphc/onnx/convert.py). Parameters and buffers become
initializers named by their module path ("fc1.weight"); the tensors in
`args` become the graph inputs. With `dynamic_axes`, the model is traced at
a few other sizes of those axes to learn how every shape depends on them
(graphc/onnx/symbolic.py).

Needs the `onnx` package (`pip install graphc[onnx]`); checking the result
with onnxruntime is up to the caller.
"""

from __future__ import annotations

import contextlib
import itertools
import os

import numpy as np

from graphc.onnx.symbolic import ExportError, Poly, SymbolicShapes, TraceMismatch, fit_traces

__all__ = ["export", "ExportError"]

MIN_OPSET = 13


def _require_onnx():
    try:
        import onnx
    except ImportError as err:
        raise ImportError(
            "graphc.onnx.export needs the onnx package: pip install 'onnx>=1.15' (or graphc[onnx])"
        ) from err
    return onnx


def export(
    model,
    args,
    f,
    input_names=None,
    output_names=None,
    dynamic_axes=None,
    opset_version: int = 17,
    do_constant_folding: bool = True,
    export_params: bool = True,
):
    """Export `model` (an nn.Module, or a function) called on `args` to ONNX,
    as torch.onnx.export.

    - `args`: a tensor, or a tuple of positional arguments whose last item
      may be a dict of keyword arguments. Tensors in them become the graph
      inputs; other values are baked into the graph.
    - `f`: a file path or a binary file-like object.
    - `input_names` / `output_names`: names for the graph inputs and outputs
      in order (defaults: the forward's parameter names, "out" / "out0"...).
    - `dynamic_axes`: {name: [axis, ...]} or {name: {axis: "dim_name"}} for
      inputs and outputs whose sizes may change; axes sharing a dim name are
      the same size. Reshapes and other size-dependent ops then read the
      sizes from the inputs at run time.
    - `do_constant_folding`: compute the parts of the graph that depend on
      no input or parameter at export time.
    - `export_params`: store the parameters as initializers; if False they
      become graph inputs after the model's inputs.

    The model runs in eval mode during export (dropout is off, batch norm
    uses its running statistics) and its mode is restored afterwards.
    Returns the onnx.ModelProto, checked with onnx.checker.check_model.
    """
    onnx = _require_onnx()
    if not isinstance(opset_version, int) or not MIN_OPSET <= opset_version <= onnx.defs.onnx_opset_version():
        raise ValueError(
            f"graphc.onnx.export: opset_version must be an int from {MIN_OPSET} to "
            f"{onnx.defs.onnx_opset_version()}, got {opset_version!r}"
        )
    args, kwargs = _split_args(args)
    with _eval_mode(model), _no_grad():
        program = _trace(model, args, kwargs)
        arg_inputs = [i for i, src in enumerate(program.input_sources) if src[0] == "arg"]
        graph = program.graph
        in_names = _names(input_names, [graph.inputs[i].attrs["name"] for i in arg_inputs], "input_names")
        out_names = _names(output_names, list(graph.output_names[: program.n_results]), "output_names")
        if set(in_names) & set(out_names):
            raise ValueError(
                f"graphc.onnx.export: {sorted(set(in_names) & set(out_names))} name both an input and an output"
            )
        dims = _parse_dynamic_axes(dynamic_axes, in_names, out_names, graph, arg_inputs)
        in_dims = {key: dim for key, dim in dims.items() if key[0] == "in"}
        if in_dims:
            program, sym = _trace_dynamic(model, args, kwargs, program, arg_inputs, in_dims)
        else:
            sym = SymbolicShapes(program.graph)
    return _build(
        onnx, program, sym, arg_inputs, in_names, out_names, dims, opset_version, do_constant_folding, export_params, f
    )


# ---------------------------------------------------------------------------
# arguments


def _split_args(args) -> tuple:
    from graphc._tensor import Tensor

    if isinstance(args, Tensor):
        return (args,), {}
    if not isinstance(args, tuple):
        args = (args,) if not isinstance(args, list) else tuple(args)
    if args and isinstance(args[-1], dict):
        return args[:-1], dict(args[-1])
    return args, {}


@contextlib.contextmanager
def _eval_mode(model):
    modes = [(m, m.training) for m in model.modules()] if hasattr(model, "modules") else []
    if modes:
        model.eval()
    try:
        yield
    finally:
        for m, training in modes:
            m.training = training


def _no_grad():
    from graphc.autograd import no_grad

    return no_grad()


def _trace(model, args: tuple, kwargs: dict):
    from graphc._trace import trace_program
    from graphc.ir.ops import Op

    program = trace_program(model, args, kwargs)
    if program.n_results == 0:
        raise ExportError("graphc.onnx.export: the model returned no tensor computed from its inputs or parameters")
    if any(n.op is Op.RANDOM for n in program.graph.nodes):
        raise ExportError(
            "graphc.onnx.export: the model draws random numbers even in eval mode (a random op, e.g. "
            "F.dropout(training=True) or graphc.rand in forward); ONNX export supports no random ops"
        )
    if program.state_writes:
        names = ", ".join(w.name for w in program.state_writes)
        raise ExportError(f"graphc.onnx.export: the model updates its state ({names}) in eval mode; cannot export")
    if any(n.op is Op.ATTENTION for n in program.graph.nodes):
        # Exported as its unfused formula (MatMul, Softmax-like ops), which
        # every opset has.
        from graphc.passes.lower import lower

        program.graph = lower(program.graph)
    return program


def _names(given, default: list, what: str) -> list:
    if given is None:
        return list(default)
    given = list(given)
    if len(set(given)) != len(given):
        raise ValueError(f"graphc.onnx.export: duplicate names in {what}: {given}")
    if len(given) > len(default):
        kind = "inputs" if what == "input_names" else "outputs"
        raise ValueError(f"graphc.onnx.export: {len(given)} {what} for {len(default)} graph {kind}: {given}")
    return given + default[len(given) :]


def _parse_dynamic_axes(dynamic_axes, in_names, out_names, graph, arg_inputs) -> dict:
    """{("in"|"out", position, axis): dim name} from torch's dynamic_axes."""
    dims: dict = {}
    if not dynamic_axes:
        return dims
    for name, axes in dynamic_axes.items():
        if name in in_names:
            kind, pos = "in", in_names.index(name)
            ndim = graph.inputs[arg_inputs[pos]].ndim
        elif name in out_names:
            kind, pos = "out", out_names.index(name)
            ndim = graph.outputs[pos].ndim
        else:
            raise ValueError(
                f"graphc.onnx.export: dynamic_axes names {name!r}, which is no input ({in_names}) or output "
                f"({out_names})"
            )
        if isinstance(axes, dict):
            items = list(axes.items())
        else:
            items = [(a, f"{name}_dynamic_axes_{i + 1}") for i, a in enumerate(axes)]
        for axis, dim_name in items:
            if not isinstance(axis, int) or not -ndim <= axis < ndim:
                raise ValueError(
                    f"graphc.onnx.export: dynamic axis {axis!r} of {name!r} is out of range for {ndim} dims"
                )
            dims[(kind, pos, axis % ndim)] = str(dim_name)
    return dims


# ---------------------------------------------------------------------------
# dynamic sizes


# Sizes the dynamic dims are traced at: dim k of row r starts at s = r[k]
# (plus 20 per three dims); s and s + 1 fit the polynomials, s + 3 checks
# them. A model whose graph changes when a dynamic size happens to equal a
# static one (hash-consing merges equal nodes) is retried with the next row.
_TRIAL_SIZES = ((5, 11, 17), (7, 13, 19), (3, 9, 15), (2, 4, 6))


def _resized(t, axis: int, size: int):
    """`t` with `axis` resized to `size`, repeating its values (indices stay valid)."""
    import graphc

    arr = np.asarray(t.detach().numpy())
    return graphc.from_numpy(np.ascontiguousarray(np.take(arr, np.arange(size) % max(arr.shape[axis], 1), axis=axis)))


def _replace(args: tuple, kwargs: dict, path: tuple, new):
    def put(obj, keys):
        if not keys:
            return new
        k, rest = keys[0], keys[1:]
        if isinstance(obj, dict):
            return {**obj, k: put(obj[k], rest)}
        items = list(obj)
        items[k] = put(items[k], rest)
        return type(obj)(items) if not hasattr(obj, "_fields") else type(obj)(*items)

    if path[0] == 0:
        return put(args, path[1:]), kwargs
    return args, put(kwargs, path[1:])


def _trace_dynamic(model, args, kwargs, program, arg_inputs, in_dims: dict):
    names = sorted(set(in_dims.values()))
    where: dict = {name: [] for name in names}
    for (_, pos, axis), name in in_dims.items():
        where[name].append((arg_inputs[pos], axis))
    for name, places in where.items():
        sizes = {program.graph.inputs[i].shape[a] for i, a in places}
        if len(sizes) > 1:
            raise ValueError(
                f"graphc.onnx.export: the dynamic dims named {name!r} have different sizes {sorted(sizes)}"
            )

    def trace_at(sizes: dict):
        a, kw = args, kwargs
        for name, places in where.items():
            for i, axis in places:
                path = program.input_sources[i][1]
                current = _at(a, kw, path)
                a, kw = _replace(a, kw, path, _resized(current, axis, sizes[name]))
        return _trace(model, a, kw)

    error = None
    for row in _TRIAL_SIZES:
        lo = {name: row[k % 3] + 20 * (k // 3) for k, name in enumerate(names)}
        try:
            programs = {}
            for corner in itertools.product((0, 1), repeat=len(names)):
                programs[corner] = trace_at({name: lo[name] + c for name, c in zip(names, corner)})
            check_sizes = {name: lo[name] + 3 for name in names}
            check = trace_at(check_sizes)
            sym = fit_traces({c: p.graph for c, p in programs.items()}, names, lo, check.graph, check_sizes)
            return programs[(0,) * len(names)], sym
        except TraceMismatch as err:
            error = err
        except ExportError:
            raise
        except Exception as err:  # the model rejected a size: try others
            error = ExportError(f"graphc.onnx.export: tracing with dynamic sizes failed: {type(err).__name__}: {err}")
    raise error


def _at(args, kwargs, path):
    obj = args if path[0] == 0 else kwargs
    for k in path[1:]:
        obj = obj[k]
    return obj


# ---------------------------------------------------------------------------
# the model proto


def _dims_of(shape, sym_shape, named: dict) -> list:
    out = []
    for axis, (d, s) in enumerate(zip(shape, sym_shape)):
        if axis in named:
            out.append(named[axis])
        elif isinstance(s, Poly):
            out.append(repr(s).replace(" ", ""))
        else:
            out.append(int(d))
    return out


def _build(onnx, program, sym, arg_inputs, in_names, out_names, dims, opset, fold, export_params, f):
    from graphc.onnx.convert import Converter, onnx_dtype

    graph = sym.graph
    helper = onnx.helper
    names, graph_inputs, initializers, dim_sources = {}, [], [], {}
    for pos, i in enumerate(arg_inputs):
        node = graph.inputs[i]
        names[node] = in_names[pos]
        named = {axis: d for (kind, p, axis), d in dims.items() if kind == "in" and p == pos}
        for axis, d in named.items():
            dim_sources.setdefault(d, (in_names[pos], axis))
        shape = _dims_of(node.shape, sym.shape(node), named)
        graph_inputs.append(helper.make_tensor_value_info(in_names[pos], onnx_dtype(onnx, node.dtype), shape))
    taken = set(in_names) | set(out_names)
    state = [(i, n) for i, n in enumerate(graph.inputs) if i not in arg_inputs]
    params = []
    for i, node in state:
        name = node.attrs["name"]
        if name in taken:
            raise ValueError(f"graphc.onnx.export: the name {name!r} is both a parameter and an input/output name")
        names[node] = name
        params.append((name, program.input_sources[i][1], node))
    cv = Converter(onnx, graph, sym, opset, names, dim_sources, fold)
    cv.used |= taken
    outputs = cv.run()
    for name, tensor, node in params:
        if export_params:
            initializers.append(onnx.numpy_helper.from_array(np.ascontiguousarray(tensor.detach().numpy()), name))
        else:
            graph_inputs.append(helper.make_tensor_value_info(name, onnx_dtype(onnx, node.dtype), list(node.shape)))
    nodes = _name_outputs(onnx, cv.nodes, outputs[: len(out_names)], out_names, set(names.values()))
    graph_outputs = []
    for pos, (name, node) in enumerate(zip(out_names, graph.outputs)):
        named = {axis: d for (kind, p, axis), d in dims.items() if kind == "out" and p == pos}
        shape = _dims_of(node.shape, sym.shape(node), named)
        graph_outputs.append(helper.make_tensor_value_info(name, onnx_dtype(onnx, node.dtype), shape))
    onnx_graph = helper.make_graph(nodes, graph.name, graph_inputs, graph_outputs, initializers + cv.initializers)
    model = helper.make_model(
        onnx_graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="graphc", producer_version="0.1.0"
    )
    onnx.checker.check_model(model, full_check=True)
    if isinstance(f, (str, os.PathLike)):
        onnx.save(model, os.fspath(f))
    else:
        f.write(model.SerializeToString())
    return model


def _name_outputs(onnx, nodes: list, values: list, out_names: list, fixed: set) -> list:
    """Rename the values the graph returns to the output names; an output
    that is an input, an initializer or another output gets an Identity."""
    renamed: dict = {}
    produced = {o for n in nodes for o in n.output}
    extra = []
    for value, name in zip(values, out_names):
        if value in produced and value not in fixed and value not in renamed:
            renamed[value] = name
        else:
            source = renamed.get(value, value)
            extra.append(onnx.helper.make_node("Identity", [source], [name], name=f"/Identity_{name}"))
    for n in nodes:
        for seq in (n.input, n.output):
            for k, v in enumerate(seq):
                if v in renamed:
                    seq[k] = renamed[v]
    return nodes + extra
