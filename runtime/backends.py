"""Backends: turn a Graph into an Executable.

An Executable is called with numpy arrays in graph-input order and returns
the outputs as numpy arrays. `aliases` maps an output index to an input
index: that output is written into the input's array in place (how a
compiled training step updates parameters and optimizer state without
copies), and the returned list holds that same array.

Backends register themselves in `BACKENDS` by name; "interp" (the numpy
reference interpreter) is always there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

import numpy as np

from graphc.ir.graph import Graph
from graphc.runtime import interpreter


class Executable(Protocol):
    graph: Graph

    def __call__(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]: ...


class InterpExecutable:
    """Runs the graph on the reference interpreter."""

    def __init__(self, graph: Graph, aliases: Mapping[int, int] | None = None):
        self.graph = graph
        self.aliases = dict(aliases or {})

    def __call__(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        outs = interpreter.run(self.graph, inputs)
        return write_aliases(outs, inputs, self.aliases)


def write_aliases(outs: list[np.ndarray], inputs: Sequence[np.ndarray], aliases: Mapping[int, int]) -> list[np.ndarray]:
    """Copy each aliased output into its input array and return that array."""
    for out_i, in_i in aliases.items():
        target = inputs[in_i]
        np.copyto(target, outs[out_i])
        outs[out_i] = target
    return outs


BackendFn = Callable[[Graph, Mapping[int, int]], Executable]
BACKENDS: dict[str, BackendFn] = {"interp": InterpExecutable}


# The module that registers each backend; imported on first use because
# llvmlite (and pycuda, which runtime.cuda imports only when a GPU is asked
# for) are heavy. An import error here is a real bug and is not hidden.
_PROVIDERS = {"llvm": "graphc.runtime.cpu", "cuda": "graphc.runtime.cuda"}


def load_backend(name: str) -> None:
    """Import the module that registers backend `name`, if it is not loaded."""
    module = _PROVIDERS.get(name)
    if module is not None:
        __import__(module)


def compile_graph(graph: Graph, backend: str = "llvm", aliases: Mapping[int, int] | None = None) -> Executable:
    """Compile `graph` with the named backend ("interp", "llvm", "cuda")."""
    if backend not in BACKENDS:
        load_backend(backend)
    try:
        factory = BACKENDS[backend]
    except KeyError:
        raise ValueError(f"unknown backend {backend!r}; available: {sorted(BACKENDS)}") from None
    return factory(graph, dict(aliases or {}))
