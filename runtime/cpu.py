"""The CPU backend: Graph -> native code via LLVM, one native call per run.

`compile_cpu(graph, aliases)` (registered as `BACKENDS["llvm"]`) lowers the
graph (codegen/lower.py: the pass pipeline, fusion, memory planning) and
generates LLVM code, then loads the object code (from the compile cache
when possible). The returned `CpuExecutable` owns its arena and constant
buffers; a call fills a prebuilt pointer table with the input and output
arrays (zero copy) and calls the entry point once, on `get_num_threads()`
threads when the program is large enough.

The pieces: runtime/native.py loads or builds native code (programs, the
GEMM libraries, the thread pool's routines; in-process and disk caches),
runtime/executable.py is the `CpuExecutable` a compile returns, and
runtime/threads.py the thread count and worker pool. This module is the
backend's entry: `lower`, `compile_cpu` with its graph-level cache, and
`explain` for the CLI.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import numpy as np

import graphc.runtime.cache as cache
from graphc import config, debug
from graphc.codegen import lower as codegen_lower
from graphc.codegen import memory
from graphc.codegen.kernel import Program, format_kernel
from graphc.codegen.llvm import module as llvm_module
from graphc.codegen.llvm import target
from graphc.ir.graph import ConstArray, Graph
from graphc.runtime import backends, compile_pool, profiling
from graphc.runtime.executable import CpuExecutable, _Meta
from graphc.runtime.native import (
    _MEMORY_CACHE,
    STATS,
    _load_native,
    _Native,
    _native,
    _prefetch_gemm_libs,
    _settings,
)
from graphc.runtime.threads import THREADED_MIN_WORK, get_num_threads, set_num_threads

# ---------------------------------------------------------------------------
# compile


def lower(graph: Graph, aliases: Mapping[int, int] | None = None) -> Program:
    """The Program this backend renders: `codegen.lower.lower` keeping the
    primitives the LLVM code generator has kernels for (attention)."""
    return codegen_lower.lower(graph, aliases, keep=llvm_module.NATIVE_OPS)


# ---------------------------------------------------------------------------
# the graph-level cache: a hit skips optimize, fusion and memory planning


class _GraphEntry:
    def __init__(self, native: _Native, meta: _Meta):
        self.native, self.meta = native, meta


def _attr_text(v) -> str:
    if isinstance(v, ConstArray):
        a = np.ascontiguousarray(v.array)
        return f"array({a.dtype.str},{a.shape},{hashlib.sha256(a.tobytes()).hexdigest()})"
    if isinstance(v, float):
        return v.hex()
    if isinstance(v, tuple):
        return "(" + ",".join(_attr_text(x) for x in v) + ")"
    return f"{type(v).__name__}:{v!r}"


def graph_key(graph: Graph, aliases: Mapping[int, int]) -> str:
    """A cheap fingerprint of the traced graph (before any pass) plus every
    setting that changes how it is lowered and compiled."""
    ids: dict = {}
    lines = [graph.name, repr(tuple(graph.output_names)), repr(sorted(dict(aliases).items()))]
    for i, n in enumerate(graph.nodes):
        ids[n] = i
        attrs = ",".join(f"{k}={_attr_text(v)}" for k, v in n.attrs.items())
        lines.append(f"{n.op.value} {[ids[s] for s in n.srcs]} {{{attrs}}} {n.type}")
    lines.append(repr([ids[o] for o in graph.outputs]))
    return cache.cache_key("cpu-graph", target.fingerprint(), _settings(), "\n".join(lines))


def _load_graph_entry(gkey: str) -> _GraphEntry | None:
    entry = cache.load(gkey)
    if entry is None:
        return None
    manifest = entry[1]
    try:
        meta = _Meta.from_json(manifest["meta"])
        pkey, sha = manifest["object_key"], manifest["object_sha256"]
    except (KeyError, TypeError, ValueError):
        return None
    native = _MEMORY_CACHE.get(pkey)
    if not (isinstance(native, _Native) and native.sha256 == sha):
        native = _load_native(pkey, sha)
        if native is None:
            return None
        _MEMORY_CACHE[pkey] = native
    return _GraphEntry(native, meta)


def _store_graph_entry(gkey: str, entry: _GraphEntry) -> None:
    meta = entry.meta.to_json()
    if meta is None:
        return
    manifest = {"kind": "graph", "object_key": entry.native.key, "object_sha256": entry.native.sha256, "meta": meta}
    cache.store(gkey, b"", manifest)


# A graph this big will likely be split for the compile workers
# (runtime/compile_pool.py): start one at the first cache miss, so that it
# is ready when lowering ends (the MLP Adam step's graph has ~200 nodes).
WARM_WORKERS_MIN_NODES = 64


def compile_cpu(graph: Graph, aliases: Mapping[int, int] | None = None) -> CpuExecutable:
    aliases = dict(aliases or {})
    # Debug output (pass timeline, dumps) and verification come from
    # lowering: do it then.
    gkey = graph_key(graph, aliases) if debug.level() < 1 and not config.get("GRAPHC_VERIFY") else None
    if gkey is not None:
        hit = _MEMORY_CACHE.get(gkey)
        if isinstance(hit, _GraphEntry):
            STATS["memory_hits"] += 1
            return CpuExecutable(graph, hit.meta, hit.native, aliases=aliases, lowering=lower)
        hit = _load_graph_entry(gkey)
        if hit is not None:
            STATS["disk_hits"] += 1
            _MEMORY_CACHE[gkey] = hit
            return CpuExecutable(graph, hit.meta, hit.native, aliases=aliases, lowering=lower)
    if len(graph.nodes) >= WARM_WORKERS_MIN_NODES:
        compile_pool.warm()  # starts while this process lowers
    prefetch = _prefetch_gemm_libs(graph)
    try:
        prog = lower(graph, aliases)
        native = _native(prog)
    finally:
        if prefetch is not None:
            # Never leave LLVM work running behind the caller (a fork would
            # inherit its locks), also when the program needed no GEMM.
            prefetch.join()
    meta = _Meta.of(prog)
    if gkey is not None:
        entry = _MEMORY_CACHE[gkey] = _GraphEntry(native, meta)
        _store_graph_entry(gkey, entry)
    return CpuExecutable(graph, meta, native, prog, aliases, lowering=lower)


# ---------------------------------------------------------------------------
# inspection (for the CLI)


def explain(graph: Graph, aliases: Mapping[int, int] | None = None) -> dict:
    """The fused kernels, the memory plan, the LLVM IR and the assembly."""
    prog = lower(graph, aliases)
    info = llvm_module.build_module(prog)
    mod = target.optimize(info.ir)
    return {
        "fused": "\n".join(format_kernel(k) for k in prog.kernels),
        "plan": memory.format_plan(prog),
        "llvm": info.ir,
        "asm": target.emit_assembly(mod),
    }


backends.BACKENDS["llvm"] = compile_cpu


# The profiler's peak measurement compiles its GEMM with this backend.
profiling.compile_cpu_graph = compile_cpu

__all__ = [
    "STATS",
    "THREADED_MIN_WORK",
    "CpuExecutable",
    "compile_cpu",
    "explain",
    "get_num_threads",
    "graph_key",
    "lower",
    "set_num_threads",
]
