"""The lowering driver: Graph -> planned kernel-form Program, for every backend.

`lower(graph, aliases, keep=...)` runs the three stages every compiled
graph goes through, in order:

1. optimize: the graph pass pipeline (`graphc.passes.pipeline.optimize`);
2. fuse: graph -> kernels (`codegen/fusion.py`), keeping the primitives the
   backend has a kernel kind of its own for (`keep`);
3. plan: the memory plan (`codegen/memory.py`), with the backend's aliases.

Backends differ only in the options they pass (runtime/cpu.py keeps
`codegen.llvm.module.NATIVE_OPS`, runtime/cuda.py keeps nothing).

Debugging, with the pass pipeline's hooks: GRAPHC_DEBUG>=1 prints one
timeline line per stage (time, and what went in and came out) after the
pipeline's own per-pass timeline; >=2 also prints the graph after every
pass and the fused program; >=3 also the memory plan. `verify=True` (the
default under GRAPHC_VERIFY=1) runs the IR verifier after every pass and
the kernel-form verifier (codegen/verify.py) on the planned program.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass

from graphc import config, debug
from graphc.codegen import fusion, memory
from graphc.codegen.kernel import Program, format_program
from graphc.codegen.verify import verify_program
from graphc.ir.graph import Graph
from graphc.passes import pipeline


@dataclass(frozen=True)
class Stage:
    """One lowering stage run: its name, time taken and a short summary of
    its result (node, kernel or byte counts)."""

    name: str
    seconds: float
    summary: str

    def __str__(self) -> str:
        return f"{self.name:<9}{self.seconds * 1e3:>10.2f} ms  {self.summary}"


def _print(text: str) -> None:
    print(f"[graphc] {text}", file=sys.stderr)


def lower(
    graph: Graph,
    aliases: Mapping[int, int] | None = None,
    *,
    keep: frozenset = frozenset(),
    verify: bool | None = None,
    dump: pipeline.DumpFn | None = None,
    timeline: pipeline.Timeline | None = None,
    stages: list[Stage] | None = None,
) -> Program:
    """Optimize, fuse and plan memory: the Program a code generator renders.

    `aliases`: output index -> input index of outputs that update an input
    (the memory plan writes them in place when safe). `keep`: primitives the
    backend renders itself (see `fusion.fuse`). `verify`: run the IR
    verifier after every pass and the kernel-form verifier on the result
    (None: when GRAPHC_VERIFY=1). `dump` and `timeline` go to
    `pipeline.optimize` (called with each pass's graph; filled with each
    pass's record). `stages`: if given, each stage's `Stage` is appended to
    it (the GRAPHC_DEBUG=1 timeline lines)."""
    level = debug.level()
    if verify is None:
        verify = config.get("GRAPHC_VERIFY")
    record: list[Stage] = []
    start = time.perf_counter()
    nodes_in = len(graph.nodes)
    graph = pipeline.optimize(graph, verify=verify, dump=dump, timeline=timeline)
    record.append(Stage("optimize", time.perf_counter() - start, f"{nodes_in} -> {len(graph.nodes)} nodes"))

    start = time.perf_counter()
    prog = fusion.fuse(graph, keep=keep)
    prog.aliases = dict(aliases or {})
    record.append(
        Stage("fuse", time.perf_counter() - start, f"{len(graph.nodes)} nodes -> {len(prog.kernels)} kernels")
    )
    if level >= 2:
        _print(f"after fuse:\n{format_program(prog)}")

    start = time.perf_counter()
    plan = memory.plan_memory(prog)
    summary = f"{len(prog.buffers)} buffers, {plan.peak_bytes} arena bytes"
    record.append(Stage("plan", time.perf_counter() - start, summary))
    if level >= 3:
        _print(f"memory plan of @{prog.name}:\n{memory.format_plan(prog)}")
    if verify:
        start = time.perf_counter()
        verify_program(prog)
        record.append(Stage("verify", time.perf_counter() - start, f"{len(prog.kernels)} kernels checked"))
    if level >= 1:
        _print(f"lowering timeline for @{prog.name}:\n" + "\n".join(str(s) for s in record))
    if stages is not None:
        stages.extend(record)
    return prog


__all__ = ["Stage", "lower"]
