"""The numpy reference interpreter: runs any Graph, node by node.

It is the oracle: every backend is tested against it. It frees each
intermediate after its last use so large graphs run in bounded memory.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from graphc.errors import GraphcError
from graphc.ir.graph import Graph, Node
from graphc.ir.ops import Op
from graphc.ir.rules import evaluate


class InterpreterError(RuntimeError):
    """A node failed while the interpreter executed it."""


def run(graph: Graph, inputs: Sequence[np.ndarray] | Mapping[str, np.ndarray]) -> list[np.ndarray]:
    """Execute `graph` on numpy `inputs` (in graph-input order, or by name)."""
    if isinstance(inputs, Mapping):
        inputs = [inputs[i.attrs["name"]] for i in graph.inputs]
    if len(inputs) != len(graph.inputs):
        raise ValueError(f"graph @{graph.name} takes {len(graph.inputs)} inputs, got {len(inputs)}")
    env: dict[Node, np.ndarray] = {}
    for node, value in zip(graph.inputs, inputs):
        arr = np.asarray(value)
        if arr.shape != node.shape or arr.dtype != node.dtype.np:
            raise ValueError(f"input %{node.attrs['name']} expects {node.type}, got {arr.dtype}{list(arr.shape)}")
        env[node] = arr

    last_use = _last_uses(graph)
    keep = set(graph.outputs)
    for i, node in enumerate(graph.nodes):
        if node.op is Op.INPUT:
            if node not in env:
                raise InterpreterError(f"%{node.attrs['name']} is used but is not an input of @{graph.name}")
            continue
        try:
            value = evaluate(node.op, [env[s] for s in node.srcs], node.attrs)
        except GraphcError as e:
            # A user-facing error (a bad index, an integer division by zero)
            # keeps its class, so callers catch it as from compiled code.
            raise type(e)(f"while executing {node.op.value} -> {node.type}: {e}") from e
        except Exception as e:
            raise InterpreterError(f"while executing {node.op.value} -> {node.type}: {e}") from e
        env[node] = np.asarray(value, dtype=node.dtype.np).reshape(node.shape)
        for s in node.srcs:
            if last_use.get(s) == i and s not in keep:
                env.pop(s, None)
    return [env[o] for o in graph.outputs]


def _last_uses(graph: Graph) -> dict[Node, int]:
    last: dict[Node, int] = {}
    for i, node in enumerate(graph.nodes):
        for s in node.srcs:
            last[s] = i
    return last
