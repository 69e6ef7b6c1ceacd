"""Pictures of graphs: Graphviz DOT text and networkx views.

`to_dot(graph)` returns DOT source (render with `dot -Tsvg`); node labels
use the text IR's names (`%3`, `%x`), op and type, so a picture and a
printout can be read side by side. Inputs are ellipses, constants are grey,
outputs have a double border labelled with their output names.
`to_networkx(graph)` gives a `networkx.DiGraph` (edges operand -> user,
with the operand position as `index`) for analyses such as depth or fan-out.
"""

from __future__ import annotations

import json

from graphc.ir.graph import Graph
from graphc.ir.ops import Op
from graphc.ir.printer import format_attr, node_names

MAX_ATTR_CHARS = 40


def _quote(text: str) -> str:
    # DOT strings use C-like escapes; JSON's are a compatible subset here.
    return json.dumps(text)


def _label(n, name: str) -> str:
    if n.op is Op.INPUT:
        return f"{name}\n{n.type}"
    if n.op is Op.CONST:
        value = format_attr(n.attrs["value"])
        if len(value) > MAX_ATTR_CHARS:
            value = value[: MAX_ATTR_CHARS - 3] + "..."
        return f"{value}\n{n.type}"
    attrs = ", ".join(f"{k}={format_attr(v)}" for k, v in n.attrs.items())
    if len(attrs) > MAX_ATTR_CHARS:
        attrs = attrs[: MAX_ATTR_CHARS - 3] + "..."
    return f"{name} = {n.op.value}\n{n.type}" + (f"\n{{{attrs}}}" if attrs else "")


def to_dot(graph: Graph) -> str:
    """The graph as Graphviz DOT source."""
    names = node_names(graph)
    ids = {n: f"n{i}" for i, n in enumerate(graph.nodes)}
    outputs: dict = {}
    for n, out_name in zip(graph.outputs, graph.output_names):
        outputs.setdefault(n, []).append(out_name)
    lines = [
        f"digraph {_quote(graph.name)} {{",
        "  rankdir=TB;",
        "  node [shape=box, fontname=monospace];",
    ]
    for n in graph.nodes:
        style = []
        if n.op is Op.INPUT:
            style.append("shape=ellipse")
        elif n.op is Op.CONST:
            style.append('style=filled, fillcolor="#e8e8e8"')
        label = _label(n, names[n])
        if n in outputs:
            style.append("peripheries=2")
            label += "\n-> " + ", ".join(outputs[n])
        lines.append(f"  {ids[n]} [label={_quote(label)}{', ' + ', '.join(style) if style else ''}];")
    for n in graph.nodes:
        for i, s in enumerate(n.srcs):
            edge_label = f" [label={i}]" if len(n.srcs) > 1 else ""
            lines.append(f"  {ids[s]} -> {ids[n]}{edge_label};")
    lines.append("}")
    return "\n".join(lines)


def to_networkx(graph: Graph):
    """A networkx.DiGraph of the graph: one vertex per node (attributes op,
    type, name), one edge per operand use (attribute index)."""
    import networkx as nx  # heavy import, only for those who ask

    names = node_names(graph)
    g = nx.MultiDiGraph(name=graph.name)
    for n in graph.nodes:
        g.add_node(n, op=n.op.value, type=str(n.type), name=names[n])
    for n in graph.nodes:
        for i, s in enumerate(n.srcs):
            g.add_edge(s, n, index=i)
    return g


__all__ = ["to_dot", "to_networkx"]
