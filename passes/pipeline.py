"""The ordered list of graph passes, in one place, and the driver that runs them.

`PIPELINE` is the optimization sequence every compiled graph goes through;
`optimize(graph)` runs it repeatedly until a round changes nothing (at most
`max_rounds`). `run_passes(graph, passes, ...)` runs any other list of
graph passes once with the same timeline, verification and dumping. The
later stages (fusion, memory planning) are not graph -> graph: the lowering
driver, codegen/lower.py, runs them after `optimize` with the same hooks.

Debugging: `verify=True` runs the IR verifier after every pass (tests always
do); `dump(name, graph)` is called after every pass; GRAPHC_DEBUG>=1 prints
the timeline (per-pass time and node counts) to stderr and GRAPHC_DEBUG>=2
also prints the graph after every pass (levels: graphc/debug.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from graphc import debug
from graphc.ir.graph import Graph
from graphc.ir.verifier import verify as verify_graph
from graphc.passes.cse import cse
from graphc.passes.dce import dce
from graphc.passes.fold import fold
from graphc.passes.simplify import simplify

PassFn = Callable[[Graph], Graph]
DumpFn = Callable[[str, Graph], None]

PIPELINE: list[tuple[str, PassFn]] = [
    ("simplify", simplify),
    ("fold", fold),
    ("cse", cse),
    ("dce", dce),
]

DEFAULT_MAX_ROUNDS = 4


@dataclass
class PassRecord:
    """One pass run: its name, which round, time taken, node counts."""

    name: str
    round: int
    seconds: float
    nodes_before: int
    nodes_after: int


@dataclass
class Timeline:
    """What each pass did, in order; `str(timeline)` is a readable table."""

    records: list[PassRecord] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return sum(r.seconds for r in self.records)

    def __str__(self) -> str:
        lines = [f"{'pass':<14}{'round':>6}{'ms':>10}{'nodes':>16}"]
        for r in self.records:
            counts = f"{r.nodes_before} -> {r.nodes_after}"
            lines.append(f"{r.name:<14}{r.round:>6}{r.seconds * 1e3:>10.2f}{counts:>16}")
        lines.append(f"{'total':<14}{'':>6}{self.seconds * 1e3:>10.2f}")
        return "\n".join(lines)


def run_passes(
    graph: Graph,
    passes: Sequence[tuple[str, PassFn]],
    verify: bool = False,
    dump: DumpFn | None = None,
    timeline: Timeline | None = None,
    round: int = 0,
) -> Graph:
    """Run `passes` once, in order, recording each in `timeline`."""
    for name, fn in passes:
        before = len(graph.nodes)
        start = time.perf_counter()
        graph = fn(graph)
        elapsed = time.perf_counter() - start
        if timeline is not None:
            timeline.records.append(PassRecord(name, round, elapsed, before, len(graph.nodes)))
        if verify:
            verify_graph(graph, pass_name=name)
        if dump is not None:
            dump(name, graph)
    return graph


def _unchanged(a: Graph, b: Graph) -> bool:
    # Nodes are hash-consed, so identical outputs mean an identical graph.
    return a.inputs == b.inputs and a.outputs == b.outputs


def optimize(
    graph: Graph,
    verify: bool = False,
    dump: DumpFn | None = None,
    max_rounds: int = DEFAULT_MAX_ROUNDS,
    passes: Sequence[tuple[str, PassFn]] | None = None,
    timeline: Timeline | None = None,
) -> Graph:
    """Run `passes` (default `PIPELINE`) to a fixed point, at most
    `max_rounds` times. Semantics are preserved (see each pass's doc).

    >>> from graphc.ir.parser import parse_graph
    >>> g = parse_graph('''graph @f(%x: f32[2]) -> (f32[2]) {
    ...   %0: f32[2] = expand 1.0:f32 {shape=[2]}
    ...   %1: f32[2] = mul %x, %0
    ...   return %1
    ... }''')
    >>> optimize(g).outputs == g.inputs
    True
    """
    level = debug.level()
    if level >= 2 and dump is None:
        dump = _print_dump
    timeline = Timeline() if timeline is None else timeline
    if verify:
        verify_graph(graph, pass_name="(input to optimize)")
    for round_ in range(max_rounds):
        new = run_passes(
            graph,
            PIPELINE if passes is None else passes,
            verify,
            dump,
            timeline,
            round_,
        )
        done = _unchanged(graph, new)
        graph = new
        if done:
            break
    if level >= 1:
        import sys

        print(f"[graphc] pass timeline for @{graph.name}:\n{timeline}", file=sys.stderr)
    return graph


def _print_dump(name: str, graph: Graph) -> None:
    import sys

    print(f"[graphc] after {name}:\n{graph}", file=sys.stderr)


__all__ = ["PIPELINE", "PassRecord", "Timeline", "optimize", "run_passes"]
