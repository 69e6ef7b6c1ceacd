"""The graphc IR: one shared language for every layer (see README.md).

Importing this package loads only the core (ops, dtypes, nodes, graphs);
the printer, parser, verifier, reference rules and DOT output load on first
use of their names.
"""

from graphc.ir import dtypes
from graphc.ir.dtypes import DType
from graphc.ir.graph import (
    ConstArray,
    Graph,
    IRTypeError,
    Node,
    TensorType,
    const,
    input_node,
    node,
)
from graphc.ir.ops import (
    BINARY,
    COMMUTATIVE,
    COMPARISON,
    CONTRACTION,
    ELEMENTWISE,
    INDEXING,
    LEAF,
    LOGICAL,
    MOVEMENT,
    NON_DIFFERENTIABLE,
    RANDOM_OPS,
    REDUCE,
    TERNARY,
    UNARY,
    Op,
)

# name -> module that defines it, imported on first access
_LAZY = {
    "format_graph": "graphc.ir.printer",
    "parse_graph": "graphc.ir.parser",
    "IRParseError": "graphc.ir.parser",
    "verify": "graphc.ir.verifier",
    "IRVerifyError": "graphc.ir.verifier",
    "to_dot": "graphc.ir.dot",
    "to_networkx": "graphc.ir.dot",
    "evaluate": "graphc.ir.rules",
    "infer_type": "graphc.ir.rules",
    "RULES": "graphc.ir.rules",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'graphc.ir' has no attribute {name!r}")


__all__ = [
    "BINARY",
    "COMMUTATIVE",
    "COMPARISON",
    "CONTRACTION",
    "ELEMENTWISE",
    "INDEXING",
    "LEAF",
    "LOGICAL",
    "MOVEMENT",
    "NON_DIFFERENTIABLE",
    "RANDOM_OPS",
    "REDUCE",
    "RULES",
    "TERNARY",
    "UNARY",
    "ConstArray",
    "DType",
    "Graph",
    "IRParseError",
    "IRTypeError",
    "IRVerifyError",
    "Node",
    "Op",
    "TensorType",
    "const",
    "dtypes",
    "evaluate",
    "format_graph",
    "infer_type",
    "input_node",
    "node",
    "parse_graph",
    "to_dot",
    "to_networkx",
    "verify",
]
