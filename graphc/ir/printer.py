"""The text form of a Graph: one node per line, typed binders, stable names.

```
graph @mlp(%x: f32[32,784], %fc1.weight: f32[784,128]) -> (f32[32,128]) {
  %0: f32[32,128] = dot %x, %fc1.weight
  %1: f32[32,128] = expand 0.0:f32 {shape=[32,128]}
  %2: f32[32,128] = maximum %0, %1
  return %2 as hidden
}
```

Grammar (graphc/ir/parser.py reads exactly this back):
- inputs are `%<name>`; other nodes are numbered `%0, %1, ...` in the
  graph's topological order; a name that is not `[A-Za-z_][A-Za-z0-9_.]*`
  (or is a reserved word) is written as a JSON string: `%"my input"`;
- a scalar constant is written inline where it is used, `<literal>:<dtype>`;
  an array constant gets its own line, `const [v0, v1, ...]` (row-major,
  shaped by the line's type);
- attributes follow the operands as `{key=value, ...}`: ints, floats
  (Python repr, plus `inf`, `-inf`, `nan`), `true`/`false`, `none`, JSON
  strings, dtypes by short name (`f32`), tuples as `[...]`;
- `return` lists the outputs; `as <name>` follows each output whose name is
  not the default `out<i>`.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import numpy as np

from graphc.ir.dtypes import DType
from graphc.ir.graph import ConstArray, Graph, Node
from graphc.ir.ops import Op

BARE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*\Z")
RESERVED = frozenset({"inf", "nan", "true", "false", "none", "as", "return", "graph"})


def format_name(name: str) -> str:
    """A name as the text IR writes it (bare when it can be, else quoted)."""
    if BARE_NAME.match(name) and name not in RESERVED:
        return name
    return json.dumps(name)


def format_scalar(value: Any) -> str:
    """One scalar literal: bool, int or float (exact, round-trippable)."""
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    raise TypeError(f"not a scalar literal: {value!r}")


def format_attr(value: Any) -> str:
    """An attribute value in text-IR syntax."""
    if value is None:
        return "none"
    if isinstance(value, DType):
        return value.short
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (tuple, list)):
        return "[" + ",".join(format_attr(v) for v in value) + "]"
    if isinstance(value, ConstArray):
        return "[" + ", ".join(format_scalar(v) for v in value.array.reshape(-1).tolist()) + "]"
    return format_scalar(value)


def is_inline_const(n: Node) -> bool:
    """Scalar constants are printed where they are used, not on a line."""
    return n.op is Op.CONST and not isinstance(n.attrs["value"], ConstArray) and n.shape == ()


class _Namer:
    """Stable names: inputs by their name, everything else numbered in order."""

    def __init__(self, graph: Graph):
        self.names: dict[Node, str] = {}
        for i in graph.inputs:
            self.names.setdefault(i, "%" + format_name(i.attrs["name"]))
        counter = 0
        for n in graph.nodes:
            if n not in self.names and not is_inline_const(n):
                self.names[n] = f"%{counter}"
                counter += 1

    def ref(self, n: Node) -> str:
        if is_inline_const(n):
            return f"{format_scalar(n.attrs['value'])}:{n.dtype.short}"
        return self.names[n]


def format_node(n: Node, namer: _Namer) -> str:
    """The right-hand side of one node's line: `op operands {attrs}`."""
    if n.op is Op.CONST:
        return f"const {format_attr(n.attrs['value'])}"
    parts = [n.op.value]
    if n.srcs:
        parts.append(", ".join(namer.ref(s) for s in n.srcs))
    if n.attrs:
        parts.append("{" + ", ".join(f"{k}={format_attr(v)}" for k, v in n.attrs.items()) + "}")
    return " ".join(parts)


def _output_list(graph: Graph, namer: _Namer) -> str:
    items = []
    for i, (out, name) in enumerate(zip(graph.outputs, graph.output_names)):
        ref = namer.ref(out)
        items.append(ref if name == f"out{i}" else f"{ref} as {format_name(name)}")
    return ", ".join(items)


def format_graph(graph: Graph, highlight: Node | None = None) -> str:
    """The whole graph as text; `highlight` marks one node's line with `<--`."""
    namer = _Namer(graph)
    params = ", ".join(f"{namer.ref(i)}: {i.type}" for i in graph.inputs)
    results = ", ".join(str(o.type) for o in graph.outputs)
    lines = [f"graph @{format_name(graph.name)}({params}) -> ({results}) {{"]
    header_inputs = set(graph.inputs)
    for n in graph.nodes:
        if n in header_inputs or is_inline_const(n):
            continue
        line = f"  {namer.ref(n)}: {n.type} = {format_node(n, namer)}"
        lines.append(line + ("   <--" if n is highlight else ""))
    lines.append(f"  return {_output_list(graph, namer)}")
    lines.append("}")
    return "\n".join(lines)


def node_names(graph: Graph) -> dict[Node, str]:
    """The printed name of every node of `graph` (inline constants included)."""
    namer = _Namer(graph)
    return {n: namer.ref(n) for n in graph.nodes}


__all__ = [
    "format_attr",
    "format_graph",
    "format_name",
    "format_scalar",
    "is_inline_const",
    "node_names",
]
