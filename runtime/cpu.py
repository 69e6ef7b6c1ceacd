"""The CPU backend: Graph -> native code via LLVM, one native call per run.

`compile_cpu(graph, aliases)` (registered as `BACKENDS["llvm"]`) runs the
standard pass pipeline (passes.pipeline.optimize, when present), fusion,
memory planning and LLVM code generation, then loads the object code (from
the compile cache when possible). The returned `CpuExecutable` owns its
arena and constant buffers; a call fills a prebuilt pointer table with the
input and output arrays (zero copy) and calls the entry point once, on
`get_num_threads()` threads when the program is large enough.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
from typing import Mapping, Sequence

import numpy as np

import runtime.cache as cache
from codegen.kernel import Program, format_kernel, format_program
from codegen.llvm import module as llvm_module
from codegen.llvm import target
from graphc.ir.graph import Graph
from passes import fusion, memory
from runtime import backends

_ENTRY_TYPE = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p)
_NUM_THREADS = max(1, os.cpu_count() or 1)
# Programs with less total work than this run on the calling thread only:
# waking workers costs tens of microseconds.
THREADED_MIN_WORK = 1 << 20
_MEMORY_CACHE: dict[str, "_Native"] = {}
STATS = {"memory_hits": 0, "disk_hits": 0, "compiles": 0}


def set_num_threads(n: int) -> None:
    """Threads compiled programs use (like torch.set_num_threads)."""
    global _NUM_THREADS
    if int(n) < 1:
        raise ValueError(f"set_num_threads: need at least 1 thread, got {n}")
    _NUM_THREADS = int(n)


def get_num_threads() -> int:
    return _NUM_THREADS


def _debug_level() -> int:
    try:
        return int(os.environ.get("GRAPHC_DEBUG", "0"))
    except ValueError:
        return 0


def _dump(level: int, text: str) -> None:
    try:
        from graphc.debug import dump
    except ImportError:
        if _debug_level() >= level:
            print(text, file=sys.stderr)
        return
    dump(level, text)


# ---------------------------------------------------------------------------
# compile


def lower(graph: Graph, aliases: Mapping[int, int] | None = None) -> Program:
    """Optimize, fuse and plan memory: the Program codegen renders."""
    try:
        from passes.pipeline import optimize
    except ImportError:
        optimize = None
    if optimize is not None:
        graph = optimize(graph)
    prog = fusion.fuse(graph)
    prog.aliases = dict(aliases or {})
    memory.plan_memory(prog)
    return prog


class _Native:
    """Loaded object code: an execution engine and the entry address."""

    def __init__(self, obj: bytes, buffer_order: Sequence[str]):
        import llvmlite.binding as llvm

        target.host()
        tm = target.new_target_machine()
        empty = llvm.parse_assembly("")
        self.engine = llvm.create_mcjit_compiler(empty, tm)
        self.engine.add_object_file(llvm.ObjectFileRef.from_data(obj))
        self.engine.finalize_object()
        self.entry = _ENTRY_TYPE(self.engine.get_function_address("entry"))
        self.buffer_order = tuple(buffer_order)


def _key(prog: Program) -> str:
    return cache.cache_key(
        "graphc-cpu-1", target.fingerprint(), format_program(prog), memory.format_plan(prog),
        f"parallel_min={llvm_module.PARALLEL_MIN_WORK}",
    )


def _native(prog: Program) -> _Native:
    key = _key(prog)
    hit = _MEMORY_CACHE.get(key)
    if hit is not None:
        STATS["memory_hits"] += 1
        return hit
    entry = cache.load(key)
    if entry is not None:
        try:
            native = _Native(entry[0], entry[1]["buffer_order"])
            STATS["disk_hits"] += 1
            _MEMORY_CACHE[key] = native
            return native
        except Exception:  # unreadable object code: recompile below
            pass
    info = llvm_module.build_module(prog)
    _dump(4, info.ir)
    mod = target.optimize(info.ir)
    _dump(5, target.emit_assembly(mod) if _debug_level() >= 5 else "")
    obj = target.emit_object(mod)
    STATS["compiles"] += 1
    cache.store(key, obj, {"buffer_order": list(info.buffer_order)})
    native = _Native(obj, info.buffer_order)
    _MEMORY_CACHE[key] = native
    return native


def compile_cpu(graph: Graph, aliases: Mapping[int, int] | None = None) -> "CpuExecutable":
    prog = lower(graph, aliases)
    return CpuExecutable(graph, prog, _native(prog))


# ---------------------------------------------------------------------------
# run


def _aligned_empty(nbytes: int) -> np.ndarray:
    raw = np.zeros(nbytes + 64, dtype=np.uint8)
    start = (-raw.ctypes.data) % 64
    return raw[start : start + nbytes]


class CpuExecutable:
    """A compiled graph: call it with numpy arrays in graph-input order."""

    def __init__(self, graph: Graph, prog: Program, native: _Native):
        self.graph = graph
        self.program = prog
        self.native = native
        self.aliases = dict(prog.aliases)
        plan = prog.plan
        order = native.buffer_order
        self._ptrs = (ctypes.c_void_p * max(1, len(order)))()
        self._ptrs_addr = ctypes.addressof(self._ptrs)
        self._error = np.zeros(1, dtype=np.int32)
        self._barrier = np.zeros(2, dtype=np.int64)
        # Every buffer gets at least 64 bytes so a clamped index 0 is readable.
        self._arena = _aligned_empty(max(plan.peak_bytes, 64))
        self._keep = []
        self._input_slots: list[tuple[int, int]] = []  # (table position, input index)
        self._output_slots: list[tuple[int, int]] = []  # (table position, output index)
        base = self._arena.ctypes.data
        for pos, name in enumerate(order):
            slot = plan.slots.get(name)
            if slot is None:
                continue
            if slot.kind == "arena":
                self._ptrs[pos] = base + slot.offset
            elif slot.kind == "const":
                arr = np.ascontiguousarray(prog.constants[name])
                self._keep.append(arr)
                self._ptrs[pos] = arr.ctypes.data if arr.nbytes else self._arena.ctypes.data
            elif slot.kind == "input":
                self._input_slots.append((pos, slot.index))
            else:
                self._output_slots.append((pos, slot.index))
        self._in_types = [(n.shape, n.dtype.np) for n in graph.inputs]
        self._out_specs = [(prog.outputs[i], n.shape, n.dtype.np) for i, n in enumerate(graph.outputs)]
        work = sum(k.flops for k in prog.kernels)
        self._threaded = work >= THREADED_MIN_WORK

    def __call__(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        arrays = self._check_inputs(inputs)
        outs: list = [None] * len(self._out_specs)
        by_buffer: dict[str, np.ndarray] = {}
        for pos, out_i in self._output_slots:
            name, shape, dtype = self._out_specs[out_i]
            arr = np.empty(shape, dtype)
            by_buffer[name] = arr
            self._ptrs[pos] = arr.ctypes.data if arr.nbytes else self._arena.ctypes.data
        for pos, in_i in self._input_slots:
            arr = arrays[in_i]
            self._ptrs[pos] = arr.ctypes.data if arr.nbytes else self._arena.ctypes.data
        self._run()
        return self._collect(inputs, arrays, by_buffer, outs)

    def _check_inputs(self, inputs) -> list[np.ndarray]:
        if len(inputs) != len(self._in_types):
            raise ValueError(f"graph @{self.graph.name} takes {len(self._in_types)} inputs, got {len(inputs)}")
        arrays = []
        for i, (x, (shape, dtype)) in enumerate(zip(inputs, self._in_types)):
            arr = x if isinstance(x, np.ndarray) else np.asarray(x)
            if not arr.flags.c_contiguous:
                arr = np.ascontiguousarray(arr)
            if arr.shape != shape or arr.dtype != dtype:
                name = self.graph.inputs[i].attrs["name"]
                raise ValueError(f"input %{name} expects {dtype}{list(shape)}, got {arr.dtype}{list(arr.shape)}")
            arrays.append(arr)
        return arrays

    def _run(self) -> None:
        self._error[0] = 0
        n = get_num_threads() if self._threaded else 1
        err, bar = self._error.ctypes.data, self._barrier.ctypes.data
        if n == 1:
            self.native.entry(self._ptrs_addr, 0, 1, err, bar)
        else:
            _pool(n).run(self.native.entry, (self._ptrs_addr, err, bar))
        if self._error[0]:
            raise IndexError(f"graph @{self.graph.name}: a gather/scatter index is out of bounds")

    def _collect(self, inputs, arrays, by_buffer, outs) -> list[np.ndarray]:
        prog = self.program
        for i, (name, shape, dtype) in enumerate(self._out_specs):
            slot = prog.plan.slots[name]
            if slot.kind == "input":
                arr = arrays[slot.index]
                if i in prog.plan.direct_aliases and arr is not inputs[slot.index]:
                    np.copyto(inputs[slot.index], arr)  # non-contiguous target
                    arr = inputs[slot.index]
                outs[i] = arr
            elif slot.kind == "const":
                outs[i] = np.array(prog.constants[name]).reshape(shape)
            else:
                outs[i] = by_buffer[name]
        copies = {o: i for o, i in self.aliases.items() if o not in prog.plan.direct_aliases}
        return backends.write_aliases(outs, inputs, copies) if copies else outs


class _Pool:
    """Persistent worker threads that call the entry point with their
    thread index; ctypes releases the GIL, so they run in parallel."""

    def __init__(self, n: int):
        self.n = n
        self.start = threading.Barrier(n)
        self.done = threading.Barrier(n)
        self.job = None
        for t in range(1, n):
            threading.Thread(target=self._work, args=(t,), daemon=True).start()

    def _work(self, tid: int) -> None:
        while True:
            self.start.wait()
            fn, (ptrs, err, bar) = self.job
            fn(ptrs, tid, self.n, err, bar)
            self.done.wait()

    def run(self, fn, args) -> None:
        with _POOL_LOCK:
            self.job = (fn, args)
            self.start.wait()
            fn(args[0], 0, self.n, args[1], args[2])
            self.done.wait()


_POOLS: dict[int, _Pool] = {}
_POOL_LOCK = threading.Lock()


def _pool(n: int) -> _Pool:
    pool = _POOLS.get(n)
    if pool is None:
        pool = _POOLS[n] = _Pool(n)
    return pool


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
