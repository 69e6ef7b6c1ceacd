"""Graphviz DOT and networkx views of a graph."""

from __future__ import annotations

import re

import networkx as nx

from graphc.ir import dtypes
from graphc.ir.dot import to_dot, to_networkx
from graphc.ir.graph import Graph, const, input_node, node
from graphc.ir.ops import Op


def _graph() -> Graph:
    x = input_node("fc1.weight", (2, 3), dtypes.float32)
    y = node(Op.ADD, x, node(Op.EXPAND, const(1.0, dtypes.float32), shape=(2, 3)))
    loss = node(Op.SUM, node(Op.MUL, y, y), axes=(0, 1))
    return Graph([x], [loss, y], name="g", output_names=["loss", "y"])


def test_dot_has_one_vertex_per_node_and_one_edge_per_use():
    text = to_dot(_graph())
    assert text.startswith('digraph "g" {') and text.endswith("}")
    vertices = [line for line in text.splitlines() if re.match(r"\s+n\d+ \[label=", line)]
    edges = [line for line in text.splitlines() if re.match(r"\s+n\d+ -> n\d+", line)]
    assert len(vertices) == len(_graph().nodes) == 6
    assert len(edges) == 6  # expand<-const, add<-x, add<-expand, mul<-add twice, sum<-mul
    assert '"%fc1.weight\\nf32[2,3]"' in text and "shape=ellipse" in text
    assert "peripheries=2" in text and "-> loss" in text and "-> y" in text


def test_networkx_view_matches_graph():
    g = _graph()
    nxg = to_networkx(g)
    assert nxg.number_of_nodes() == len(g.nodes)
    assert nxg.number_of_edges() == sum(len(n.srcs) for n in g.nodes)
    assert nx.is_directed_acyclic_graph(nxg)
    assert nx.dag_longest_path_length(nxg) == 4  # const -> expand -> add -> mul -> sum
    assert nxg.nodes[g.outputs[0]]["op"] == "sum"
