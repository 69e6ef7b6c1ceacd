"""The IR verifier: checks the invariants every pass must preserve.

`verify(graph, pass_name=None)` checks that
1. the graph has at least one output, one name per output, and output
   names are unique;
2. graph inputs are INPUT nodes with unique names, and every INPUT node the
   outputs reach is one of the graph's inputs;
3. every node's type is what its op's shape rule infers from its operands
   and attributes (so a node built by hand or mutated is caught);
4. attributes are plain data (numbers, strings, dtypes, tuples, ConstArray,
   None), never lists, arrays or callables, so nodes hash and cache;
5. an array constant's array has the node's shape and dtype.

On failure it raises `IRVerifyError` whose message names the pass that
produced the graph, says what is wrong, and prints the graph around the bad
node (marked `<--`). Tests run it after every pass; `passes.pipeline`
runs it under its `verify` flag.
"""

from __future__ import annotations

from typing import Any

from graphc.ir.dtypes import DType
from graphc.ir.graph import ConstArray, Graph, IRTypeError, Node
from graphc.ir.ops import Op
from graphc.ir.rules import RULES, infer_type

CONTEXT_LINES = 6


class IRVerifyError(ValueError):
    """A graph breaks an IR invariant; the message shows where."""


def _plain(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, float, str, DType, ConstArray)):
        return True
    if isinstance(value, tuple):
        return all(_plain(v) for v in value)
    return False


def _excerpt(graph: Graph, bad: Node | None) -> str:
    from graphc.ir.printer import (
        format_graph,  # printer imports verifier-free modules only
    )

    try:
        lines = format_graph(graph, highlight=bad).splitlines()
    except Exception as e:  # noqa: BLE001 - a graph broken enough that it cannot print
        return f"    (graph could not be printed: {e})"
    marked = [i for i, line in enumerate(lines) if line.endswith("<--")]
    if marked:
        lo, hi = max(0, marked[0] - CONTEXT_LINES), marked[0] + CONTEXT_LINES + 1
        shown = (["  ..."] if lo > 1 else []) + lines[lo:hi] + (["  ..."] if hi < len(lines) - 1 else [])
        if lo > 0:
            shown = [lines[0]] + shown
        if hi < len(lines):
            shown = shown + lines[-2:]
        lines = shown
    return "\n".join("    " + line for line in lines)


def _fail(graph: Graph, pass_name: str | None, msg: str, bad: Node | None = None) -> IRVerifyError:
    where = f"after pass '{pass_name}'" if pass_name else f"in graph @{graph.name}"
    return IRVerifyError(f"IR verification failed {where}: {msg}\n{_excerpt(graph, bad)}")


def _check_signature(graph: Graph, pass_name: str | None) -> None:
    if not graph.outputs:
        raise _fail(graph, pass_name, "the graph has no outputs")
    if len(graph.output_names) != len(graph.outputs):
        raise _fail(
            graph,
            pass_name,
            f"{len(graph.outputs)} outputs but {len(graph.output_names)} output names",
        )
    seen_out: set[str] = set()
    for name in graph.output_names:
        if name in seen_out:
            raise _fail(graph, pass_name, f"output name {name!r} is used twice")
        seen_out.add(name)
    for out in graph.outputs:
        if not isinstance(out, Node):
            raise _fail(graph, pass_name, f"output {out!r} is not an IR node")
    seen_in: dict[str, Node] = {}
    for i in graph.inputs:
        if not isinstance(i, Node) or i.op is not Op.INPUT:
            raise _fail(graph, pass_name, f"graph input {i!r} is not an INPUT node")
        name = i.attrs["name"]
        if name in seen_in:
            raise _fail(
                graph,
                pass_name,
                f"two inputs are named %{name}: {seen_in[name].type} and {i.type}",
                i,
            )
        seen_in[name] = i


def _check_node(n: Node, inputs: set[Node]) -> str | None:
    """What is wrong with one node, or None."""
    if n.op is Op.INPUT and n not in inputs:
        return f"%{n.attrs.get('name')} ({n.type}) is used but is not an input of the graph"
    for key, value in n.attrs.items():
        if not _plain(value):
            return f"{n.op.value}: attribute {key}={value!r} is not plain data (use tuples, not lists)"
    try:
        expected = infer_type(n.op, [s.type for s in n.srcs], n.attrs)
    except IRTypeError as e:
        return f"the operands do not type-check: {e}"
    except Exception as e:  # noqa: BLE001 - a malformed attribute can break a shape rule
        return f"{n.op.value}: shape rule failed: {type(e).__name__}: {e}"
    if expected != n.type:
        return f"{n.op.value}: node type is {n.type} but its rule infers {expected}"
    if n.op is Op.CONST and isinstance(n.attrs["value"], ConstArray):
        arr = n.attrs["value"].array
        if arr.shape != n.shape or arr.dtype != n.dtype.np:
            return f"const: array is {arr.dtype}{list(arr.shape)} but the node is {n.type}"
    if n.op not in RULES:
        return f"{n.op} has no shape rule"
    return None


def verify(graph: Graph, pass_name: str | None = None) -> Graph:
    """Check `graph`'s invariants (see module doc); returns it unchanged."""
    _check_signature(graph, pass_name)
    inputs = set(graph.inputs)
    for n in graph.nodes:
        problem = _check_node(n, inputs)
        if problem is not None:
            raise _fail(graph, pass_name, problem, n)
    return graph


__all__ = ["IRVerifyError", "verify"]
