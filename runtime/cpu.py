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

import base64
import ctypes
import hashlib
import os
import sys
import threading
import time
from collections.abc import Mapping, Sequence

import numpy as np

import graphc.runtime.cache as cache
from graphc import config, debug
from graphc.codegen import lower as codegen_lower
from graphc.codegen import memory
from graphc.codegen.kernel import ERROR_ZERO_DIVISION, Program, format_kernel, format_program
from graphc.codegen.llvm import module as llvm_module
from graphc.codegen.llvm import target
from graphc.errors import DivisionByZeroError, IndexOutOfRangeError
from graphc.ir.graph import ConstArray, Graph
from graphc.ir.ops import Op
from graphc.ir.rules import ZERO_DIVISION_MESSAGE
from graphc.runtime import backends, host_memory, profiling

_ENTRY_TYPE = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p)
_ENTRY_CTX_TYPE = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
_NUM_THREADS = max(1, os.cpu_count() or 1)
# Programs with less total work than this run on the calling thread only:
# waking workers costs tens of microseconds.
THREADED_MIN_WORK = 1 << 20
# key -> _Native (program entries) or _GraphEntry (graph entries)
_MEMORY_CACHE: dict[str, object] = {}
STATS = {"memory_hits": 0, "disk_hits": 0, "compiles": 0, "gemm_compiles": 0, "gemm_child_compiles": 0}


def set_num_threads(n: int) -> None:
    """Threads compiled programs use (like torch.set_num_threads)."""
    global _NUM_THREADS
    if int(n) < 1:
        raise ValueError(f"set_num_threads: need at least 1 thread, got {n}")
    _NUM_THREADS = int(n)


def get_num_threads() -> int:
    return _NUM_THREADS


# ---------------------------------------------------------------------------
# compile


def lower(graph: Graph, aliases: Mapping[int, int] | None = None) -> Program:
    """The Program this backend renders: `codegen.lower.lower` keeping the
    primitives the LLVM code generator has kernels for (attention)."""
    return codegen_lower.lower(graph, aliases, keep=llvm_module.NATIVE_OPS)


_GEMM_ENGINES: dict[str, object] = {}  # "f32"/"f64" -> engine holding the routine
_GEMM_LOCK = threading.Lock()


def _gemm_key(suffix: str) -> str:
    return cache.cache_key("cpu-gemm", target.fingerprint(), suffix)


def _load_gemm_libs(suffixes: Sequence[str], in_child: bool = False) -> None:
    """Make the GEMM routines in `suffixes` resolvable by programs that call
    them: each is its own LLVM module (codegen/llvm/gemm.py `library_ir`),
    compiled once per (element type, target, code version), cached like a
    program, loaded into an engine that lives as long as the process, and
    its address registered with LLVM's symbol resolver. `in_child`: compile
    a missing routine in a child process (see _gemm_object_in_child)."""
    import llvmlite.binding as llvm

    from graphc.codegen.llvm import gemm

    for suffix in suffixes:
        if suffix in _GEMM_ENGINES:
            continue
        with _GEMM_LOCK:
            if suffix in _GEMM_ENGINES:
                continue
            symbol = gemm.gemm_symbol(gemm.gemm_elem(suffix))
            key = _gemm_key(suffix)
            entry = cache.load(key)
            engine = addr = None
            if entry is not None and entry[1].get("symbol") == symbol:
                try:
                    engine, addr = _engine(entry[0], symbol)
                except Exception:  # unreadable object code: recompile below
                    engine = None
            if engine is None:
                obj = _gemm_object_in_child(suffix) if in_child else None
                if obj is None:
                    obj = target.emit_object(target.optimize(gemm.library_ir(suffix), target.GEMM_OPT_LEVEL))
                STATS["gemm_compiles"] += 1
                cache.store(key, obj, {"kind": "gemm", "symbol": symbol})
                engine, addr = _engine(obj, symbol)
            llvm.add_symbol(symbol, addr)
            _GEMM_ENGINES[suffix] = engine


# Compile a missing GEMM library in a child process while this process
# compiles the program (codegen/llvm/compile_child.py). Off on one core,
# where the two compiles could not overlap.
GEMM_IN_CHILD = (os.cpu_count() or 1) > 1


def _core_idle() -> bool:
    """Whether a core is likely free for the child: with every core busy
    (load average >= cores - 1) the child's start-up only adds work (measured
    on 2 loaded cores: no gain, sometimes a loss)."""
    try:
        return os.getloadavg()[0] < (os.cpu_count() or 1) - 1
    except OSError:
        return False


def _gemm_object_in_child(suffix: str) -> bytes | None:
    """The GEMM library's object code compiled by a child process, or None
    if the child failed (the caller then compiles it here). The waiting
    thread holds no LLVM lock, so the main thread compiles the program
    meanwhile."""
    import subprocess
    import sys

    # The folder holding the graphc package (graphc/runtime/cpu.py, links not resolved).
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "graphc.codegen.llvm.compile_child", f"gemm-{suffix}"],
            env=env,
            capture_output=True,
            timeout=120,  # a stuck child must not hang the compile: fall back
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0 or not done.stdout:
        return None
    STATS["gemm_child_compiles"] += 1
    return done.stdout


def _prefetch_gemm_libs(graph: Graph) -> threading.Thread | None:
    """Start loading (or compiling) the GEMM routines the graph's float dots
    will likely need, and the thread pool's routines, on a thread, so that
    it overlaps lowering and module building in Python (llvmlite runs one
    LLVM call at a time; ctypes releases the GIL during it). Returns the
    thread, or None."""
    from graphc.codegen.llvm import gemm

    want = set()
    dot_work = 0
    for n in graph.nodes:
        if n.op is Op.DOT and n.dtype.is_float and n.dtype.itemsize in (4, 8) and len(n.shape) >= 2:
            m, nn, k = n.shape[-2], n.shape[-1], n.srcs[0].shape[-1]
            if m >= gemm.GEMM_MIN_ROWS and nn >= gemm.GEMM_MIN_COLS and m * nn * k >= gemm.GEMM_MIN_WORK:
                want.add("f32" if n.dtype.itemsize == 4 else "f64")
                dot_work += m * nn * k
    want -= set(_GEMM_ENGINES)
    # The pool's routines only for a program sure to run threaded (a small
    # one never needs them).
    pool = _NUM_THREADS > 1 and _POOL_FNS is None and dot_work >= THREADED_MIN_WORK
    if not want and not pool:
        return None
    # Ask LLVM for everything module building needs now, before the thread
    # holds llvmlite's lock for seconds.
    target.triple_and_layout()
    in_child = GEMM_IN_CHILD and bool(want) and _core_idle()

    def work():
        try:
            # The pool's routines first: a small LLVM job, done while the
            # main thread is still lowering in Python.
            if pool:  # the thread pool's hand-off routines (first threaded call)
                _pool_fns()
            _load_gemm_libs(sorted(want), in_child=in_child)
        except Exception:  # the program's own load retries and reports
            pass

    t = threading.Thread(target=work, name="graphc-gemm", daemon=True)
    t.start()
    return t


def _engine(obj: bytes, symbol: str):
    """(MCJIT engine holding `obj`, address of `symbol` in it)."""
    import llvmlite.binding as llvm

    target.host()
    engine = llvm.create_mcjit_compiler(llvm.parse_assembly(""), target.new_target_machine())
    engine.add_object_file(llvm.ObjectFileRef.from_data(obj))
    engine.finalize_object()
    addr = engine.get_function_address(symbol)
    if not addr:
        raise RuntimeError(f"object code lacks {symbol}")
    return engine, addr


class _Native:
    """Loaded object code: an execution engine and the entry address."""

    def __init__(
        self,
        obj: bytes,
        buffer_order: Sequence[str],
        workspace_bytes: int = 0,
        gemm_libs: Sequence[str] = (),
        key: str = "",
    ):
        _load_gemm_libs(gemm_libs)
        self.engine, entry = _engine(obj, "entry")
        self.entry = _ENTRY_TYPE(entry)
        self.entry_ctx_addr = self.engine.get_function_address("entry_ctx")
        self.entry_ctx = _ENTRY_CTX_TYPE(self.entry_ctx_addr)
        self.buffer_order = tuple(buffer_order)
        self.workspace_bytes = int(workspace_bytes)
        self.gemm_libs = tuple(gemm_libs)
        self.key = key  # the program entry in the disk cache
        self.sha256 = hashlib.sha256(obj).hexdigest()


def _key(prog: Program, profile: bool = False) -> str:
    return cache.cache_key(
        "cpu-program",
        target.fingerprint(),
        format_program(prog),
        memory.format_plan(prog),
        _settings(),
        f"profile={int(profile)}",  # the timed build is its own entry
    )


def _settings() -> str:
    """Code generator settings that are not in the source hash
    (`cache.code_version`): module-level knobs a caller may change at run
    time."""
    from graphc.codegen.llvm import attention, gemm, kernels, sync
    from graphc.passes import lower

    return (
        f"parallel_min={llvm_module.PARALLEL_MIN_WORK};spin={sync.SPIN_LIMIT};"
        f"gemm_min={gemm.GEMM_MIN_WORK},{gemm.GEMM_MIN_ROWS},{gemm.GEMM_MIN_COLS};"
        f"k_split={gemm.K_SPLIT_MIN_BLOCKS};"
        f"row_dot_max={kernels.ROW_DOT_MAX_N};column_tile={kernels.COLUMN_TILE};"
        f"rank_sort_max={lower.RANK_SORT_MAX};"
        f"attention={attention.MAX_SCORE_VECTORS},{attention.ACC_CHUNK},{attention.MAX_BQ}"
    )


def _native(prog: Program, profile: bool = False) -> _Native:
    key = _key(prog, profile)
    hit = _MEMORY_CACHE.get(key)
    if isinstance(hit, _Native):
        STATS["memory_hits"] += 1
        return hit
    native = _load_native(key)
    if native is not None:
        STATS["disk_hits"] += 1
        _MEMORY_CACHE[key] = native
        return native
    info = llvm_module.build_module(prog, profile)
    debug.dump(4, info.ir)
    mod = target.optimize(info.ir)
    debug.dump(5, target.emit_assembly(mod) if debug.level() >= 5 else "")
    obj = target.emit_object(mod)
    STATS["compiles"] += 1
    cache.store(
        key,
        obj,
        {
            "buffer_order": list(info.buffer_order),
            "workspace_bytes": info.workspace_bytes,
            "gemm_libs": list(info.gemm_libs),
        },
    )
    native = _Native(obj, info.buffer_order, info.workspace_bytes, info.gemm_libs, key)
    _MEMORY_CACHE[key] = native
    return native


def _load_native(key: str, sha256: str | None = None) -> _Native | None:
    """The program entry `key` from disk (optionally: only if its object has
    this sha256), or None."""
    entry = cache.load(key)
    if entry is None:
        return None
    obj, manifest = entry
    try:
        native = _Native(
            obj, manifest["buffer_order"], manifest.get("workspace_bytes", 0), manifest.get("gemm_libs", ()), key
        )
    except Exception:  # unreadable object code or manifest: recompile
        return None
    if sha256 is not None and native.sha256 != sha256:
        return None
    return native


# ---------------------------------------------------------------------------
# the graph-level cache: a hit skips optimize, fusion and memory planning


class _Meta:
    """What an executable reads from the lowered Program: output buffer
    names, buffer placement, constants and total work. Built from a Program,
    or from a graph-level cache manifest."""

    def __init__(self, outputs, slots, peak_bytes, direct_aliases, constants, work):
        self.outputs = tuple(outputs)
        self.slots = dict(slots)  # buffer -> memory.Slot
        self.peak_bytes = int(peak_bytes)
        self.direct_aliases = {int(o): int(i) for o, i in dict(direct_aliases).items()}
        self.constants = dict(constants)  # buffer -> numpy array
        self.work = int(work)

    @classmethod
    def of(cls, prog: Program) -> _Meta:
        plan = prog.plan
        return cls(
            prog.outputs,
            plan.slots,
            plan.peak_bytes,
            plan.direct_aliases,
            {n: prog.constants[n] for n, s in plan.slots.items() if s.kind == "const"},
            sum(k.flops for k in prog.kernels),
        )

    def to_json(self) -> dict | None:
        consts, total = [], 0
        for name, arr in self.constants.items():
            arr = np.ascontiguousarray(arr)
            total += arr.nbytes
            if total > _MAX_MANIFEST_CONSTANT_BYTES or arr.dtype.hasobject:
                return None
            consts.append([name, arr.dtype.str, list(arr.shape), base64.b64encode(arr.tobytes()).decode()])
        return {
            "outputs": list(self.outputs),
            "slots": {n: [s.kind, s.index, s.offset, s.nbytes] for n, s in self.slots.items()},
            "peak_bytes": self.peak_bytes,
            "direct_aliases": [[o, i] for o, i in self.direct_aliases.items()],
            "constants": consts,
            "work": self.work,
        }

    @classmethod
    def from_json(cls, d: dict) -> _Meta:
        consts = {}
        for name, dtype, shape, data in d["constants"]:
            raw = bytearray(base64.b64decode(data))  # writable, owned
            consts[name] = np.frombuffer(raw, dtype=np.dtype(dtype)).reshape(tuple(shape))
        slots = {n: memory.Slot(k, int(i), int(o), int(b)) for n, (k, i, o, b) in d["slots"].items()}
        return cls(d["outputs"], slots, d["peak_bytes"], {o: i for o, i in d["direct_aliases"]}, consts, d["work"])


# Constants larger than this (in all) are not copied into a graph manifest;
# such graphs take the program-level cache path.
_MAX_MANIFEST_CONSTANT_BYTES = 1 << 22


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


def compile_cpu(graph: Graph, aliases: Mapping[int, int] | None = None) -> CpuExecutable:
    aliases = dict(aliases or {})
    # Debug output (pass timeline, dumps) and verification come from
    # lowering: do it then.
    gkey = graph_key(graph, aliases) if debug.level() < 1 and not config.get("GRAPHC_VERIFY") else None
    if gkey is not None:
        hit = _MEMORY_CACHE.get(gkey)
        if isinstance(hit, _GraphEntry):
            STATS["memory_hits"] += 1
            return CpuExecutable(graph, hit.meta, hit.native, aliases=aliases)
        hit = _load_graph_entry(gkey)
        if hit is not None:
            STATS["disk_hits"] += 1
            _MEMORY_CACHE[gkey] = hit
            return CpuExecutable(graph, hit.meta, hit.native, aliases=aliases)
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
    return CpuExecutable(graph, meta, native, prog, aliases)


# ---------------------------------------------------------------------------
# run


def _aligned_empty(nbytes: int) -> np.ndarray:
    raw = np.zeros(nbytes + 64, dtype=np.uint8)
    start = (-raw.ctypes.data) % 64
    return raw[start : start + nbytes]


def _address(arr: np.ndarray) -> int:
    """Data address of an array (c_char.from_buffer is ~3x cheaper than
    arr.ctypes.data but needs a writable buffer)."""
    if arr.flags.writeable:
        return ctypes.addressof(ctypes.c_char.from_buffer(arr))
    return arr.ctypes.data


# sys.getrefcount of an array held only by the executable's list, a local
# variable and getrefcount's own argument.
_UNSHARED_REFS = 3


class CpuExecutable:
    """A compiled graph: call it with numpy arrays in graph-input order.

    Calls are cheap because everything but the array addresses is prepared
    here: the pointer table, a context block for the one-argument entry
    point, and per-input/per-output table positions.

    Output arrays (the aliasing rules):
    - By default every call returns arrays the caller owns exclusively: an
      output array of the previous call is reused only when nothing but the
      executable refers to it any more (its reference count says so), so
      a result the caller kept (or a view of it) is never overwritten.
    - `exe(inputs, out=[...])` writes outputs into the given arrays (None
      entries: as by default) and returns them; they must be C-contiguous,
      writable, of the output's shape and dtype and not overlap any input.
    - Aliased outputs (`aliases`) are returned as the input arrays they were
      written into.
    The executable keeps a reference to the last input and output arrays so
    that their addresses need not be looked up again on the next call.
    """

    def __init__(
        self,
        graph: Graph,
        meta: _Meta,
        native: _Native,
        prog: Program | None = None,
        aliases: Mapping[int, int] | None = None,
    ):
        self.graph = graph
        self._program = prog
        self.native = native
        self.aliases = dict(aliases or {})
        plan = prog = meta  # placement, outputs and constants (see _Meta)
        order = native.buffer_order
        # Two more table entries: the GEMM workspace and, for the profiled
        # build, the timing array (see codegen/llvm/module.py).
        self._ptrs = (ctypes.c_void_p * (len(order) + 2))()
        self._ptrs_addr = ctypes.addressof(self._ptrs)
        self._error = ctypes.c_int32(0)
        self._barrier = (ctypes.c_int64 * 2)()
        out_bytes = sum(n.type.nbytes for n in graph.outputs)
        host_memory.check_allocation(
            plan.peak_bytes + out_bytes, f"compiled program @{graph.name} (temporaries and outputs)"
        )
        # Every buffer gets at least 64 bytes so a clamped index 0 is readable.
        self._arena = _aligned_empty(max(plan.peak_bytes, 64))
        self._empty = self._arena.ctypes.data  # the address given to empty arrays
        self._keep = []
        n_in, n_out = len(graph.inputs), len(graph.outputs)
        self._in_pos: list[list[int]] = [[] for _ in range(n_in)]  # table positions per input
        out_pos: dict[int, list[int]] = {}  # first output index -> table positions
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
                self._ptrs[pos] = arr.ctypes.data if arr.nbytes else self._empty
            elif slot.kind == "input":
                self._in_pos[slot.index].append(pos)
            else:
                out_pos.setdefault(slot.index, []).append(pos)
        self._in_types = [(tuple(n.shape), np.dtype(n.dtype.np)) for n in graph.inputs]
        self._out_specs = [(prog.outputs[i], tuple(n.shape), np.dtype(n.dtype.np)) for i, n in enumerate(graph.outputs)]
        # Where each graph output comes from: ("new", j) the j-th fresh array,
        # ("input", i) an input array, ("const", array).
        self._fresh = sorted(out_pos)  # first output index of each fresh buffer
        fresh_of = {o: j for j, o in enumerate(self._fresh)}
        self._fresh_pos = [out_pos[o] for o in self._fresh]
        self._fresh_specs = [self._out_specs[o][1:] for o in self._fresh]
        self._sources = []
        for name, _shape, _dtype in self._out_specs:
            slot = plan.slots[name]
            if slot.kind == "input":
                self._sources.append(("input", slot.index))
            elif slot.kind == "const":
                self._sources.append(("const", np.asarray(prog.constants[name])))
            else:
                self._sources.append(("new", fresh_of[slot.index]))
        self._direct = dict(plan.direct_aliases)
        self._copies = {o: i for o, i in self.aliases.items() if o not in plan.direct_aliases}
        self._last_in: list = [None] * n_in
        self._last_out: list = [None] * len(self._fresh)
        self._threaded = meta.work >= THREADED_MIN_WORK
        self._workspace = None
        self._workspace_threads = 0
        # ctx for thread 0 running alone: (table, thread, nthreads, error, barrier)
        self._ctx1 = self._ctx(0, 1)
        self._ctx1_addr = ctypes.addressof(self._ctx1)
        self._ensure_workspace(1)
        self._n_out = n_out
        self._profiled = None  # (native, timing array, kernel labels and costs), built when first profiled
        if debug.level() >= 2:
            # GRAPHC_DEBUG=2: every call profiled, its table printed. An
            # instance attribute, so plain calls never check the level.
            self._run = self._run_with_table

    @property
    def program(self) -> Program:
        """The lowered Program (lowered again on first use when the
        executable came from the graph-level cache)."""
        if self._program is None:
            self._program = lower(self.graph, self.aliases)
        return self._program

    def _ctx(self, tid: int, n: int):
        return (ctypes.c_int64 * 5)(
            self._ptrs_addr, tid, n, ctypes.addressof(self._error), ctypes.addressof(self._barrier)
        )

    def _ensure_workspace(self, n: int) -> None:
        per = self.native.workspace_bytes
        if per and n > self._workspace_threads:
            self._workspace = _aligned_empty(per * n)
            self._workspace_threads = n
            self._ptrs[len(self.native.buffer_order)] = self._workspace.ctypes.data

    def __call__(
        self, inputs: Sequence[np.ndarray], out: Sequence[np.ndarray | None] | None = None
    ) -> list[np.ndarray]:
        if len(inputs) != len(self._in_types):
            raise ValueError(f"graph @{self.graph.name} takes {len(self._in_types)} inputs, got {len(inputs)}")
        arrays = list(inputs)
        last = self._last_in
        ptrs = self._ptrs
        for i, (shape, dtype) in enumerate(self._in_types):
            x = arrays[i]
            if x is last[i] and x.shape == shape and x.dtype == dtype:
                continue  # checked on the previous call, address in the table
            if type(x) is not np.ndarray or not x.flags.c_contiguous:
                x = arrays[i] = np.ascontiguousarray(x)
            if x.shape != shape or x.dtype != dtype:
                name = self.graph.inputs[i].attrs["name"]
                raise ValueError(f"input %{name} expects {dtype}{list(shape)}, got {x.dtype}{list(x.shape)}")
            if x is not last[i]:
                # The address of an array object we hold never changes (numpy
                # refuses to resize an array that others refer to).
                addr = _address(x) if x.nbytes else self._empty
                for pos in self._in_pos[i]:
                    ptrs[pos] = addr
                last[i] = x
        fresh = self._fresh_arrays(arrays, out)
        self._run()
        outs = []
        for kind, v in self._sources:
            if kind == "new":
                outs.append(fresh[v])
            elif kind == "input":
                outs.append(arrays[v])
            else:
                outs.append(np.array(v))
        if self._direct:
            for o, i in self._direct.items():
                if arrays[i] is not inputs[i]:  # a contiguous copy of the caller's array
                    np.copyto(inputs[i], arrays[i])
                    outs[o] = inputs[i]
        if self._copies:
            return backends.write_aliases(outs, inputs, self._copies)
        return outs

    def _fresh_arrays(self, arrays, out) -> list[np.ndarray]:
        """The arrays the fresh outputs are written into (see the class doc)."""
        given = {}
        if out is not None:
            if len(out) != len(self._out_specs):
                raise ValueError(f"graph @{self.graph.name}: out= needs {len(self._out_specs)} entries, got {len(out)}")
            given = {i: o for i, o in enumerate(out) if o is not None}
            for i, o in given.items():
                _, shape, dtype = self._out_specs[i]
                if self._sources[i][0] != "new":
                    raise ValueError(
                        f"graph @{self.graph.name}: output {i} is an input or a constant; it cannot take out="
                    )
                if (
                    type(o) is not np.ndarray
                    or o.shape != shape
                    or o.dtype != dtype
                    or not o.flags.c_contiguous
                    or not o.flags.writeable
                ):
                    raise ValueError(
                        f"graph @{self.graph.name}: out[{i}] must be a writable C-contiguous {dtype}{list(shape)} array"
                    )
                if any(np.may_share_memory(o, x) for x in arrays):
                    raise ValueError(f"graph @{self.graph.name}: out[{i}] overlaps an input")
        result = []
        ptrs, last = self._ptrs, self._last_out
        for j, first in enumerate(self._fresh):
            arr = given.get(first)
            if arr is None:
                arr = last[j]
                if arr is not None and sys.getrefcount(arr) <= _UNSHARED_REFS:
                    result.append(arr)  # nobody else sees it: reuse, address unchanged
                    continue
                shape, dtype = self._fresh_specs[j]
                arr = np.empty(shape, dtype)
            elif arr is last[j]:
                result.append(arr)
                continue
            addr = _address(arr) if arr.nbytes else self._empty
            for pos in self._fresh_pos[j]:
                ptrs[pos] = addr
            last[j] = arr
            result.append(arr)
        if len(given) > 1 and len({id(a) for a in result}) < len(result):
            raise ValueError(f"graph @{self.graph.name}: out= arrays must be distinct")
        return result

    def _run(self) -> None:
        if profiling.ACTIVE is not None:
            self._run_profiled(profiling.ACTIVE)
            return
        self._call(self.native)

    def _call(self, native: _Native) -> None:
        err = self._error
        err.value = 0
        n = _NUM_THREADS if self._threaded else 1
        if n == 1:
            native.entry_ctx(self._ctx1_addr)
        else:
            if n > self._workspace_threads:
                self._ensure_workspace(n)
            _pool(n).run(self, native.entry_ctx, native.entry_ctx_addr)
        if err.value:
            _raise_program_error(self.graph.name, err.value)

    # -- profiling (runtime/profiling.py) -----------------------------------

    def _run_profiled(self, session: profiling.Session) -> None:
        """One call of the profiled build: a program event and one event per
        kernel, from the timestamps thread 0 wrote at kernel boundaries."""
        if self._profiled is None:
            # Its own event: the first profiled call compiles the timed build
            # (or loads it from the cache), which is not the program's time.
            t0 = time.perf_counter()
            self._profiled_build()
            profiling.clock()
            name = f"build profiled program @{self.graph.name}"
            session.add(profiling.Event(name, "compile", t0, time.perf_counter(), thread=threading.get_ident()))
        native, times, kernels = self._profiled_build()
        clock = profiling.clock()
        start = time.perf_counter()
        try:
            self._call(native)
        finally:
            end = time.perf_counter()
            tid = threading.get_ident()
            name = f"call @{self.graph.name}"
            session.add(profiling.Event(name, "program", start, end, thread=tid))
            # Stamp 0 is taken on entry, just after `start`: kernel times are
            # tick differences from it, placed at `start` (clamped into the
            # call, should the tick length be slightly off).
            stamps = [start + clock.seconds(int(t) - int(times[0])) for t in times]
            for i, (label, cost) in enumerate(kernels):
                k_start = min(max(stamps[i], start), end)
                k_end = min(max(stamps[i + 1], k_start), end)
                session.add(profiling.Event(label, "kernel", k_start, k_end, cost.flops, cost.bytes, tid))

    def _profiled_build(self):
        if self._profiled is None:
            from graphc.codegen import cost

            prog = self.program
            native = _native(prog, profile=True)
            if native.buffer_order != self.native.buffer_order:
                raise RuntimeError(f"graph @{self.graph.name}: the profiled build orders buffers differently")
            times = np.zeros(len(prog.kernels) + 1, dtype=np.int64)
            self._ptrs[len(native.buffer_order) + 1] = times.ctypes.data
            kernels = [
                (f"{cost.kernel_label(k)} @{self.graph.name}", cost.kernel_cost(k, prog.buffers)) for k in prog.kernels
            ]
            self._profiled = (native, times, kernels)
        return self._profiled

    def without_debug_tables(self) -> CpuExecutable:
        """Run plain calls even under GRAPHC_DEBUG=2 (for measurements that
        are not the user's work, such as the profiler's peak)."""
        self.__dict__.pop("_run", None)
        return self

    def _run_with_table(self) -> None:
        """GRAPHC_DEBUG=2: profile this call and print its table."""
        outer = profiling.ACTIVE
        session = profiling.Session()
        profiling.start(session)
        try:
            self._run_profiled(session)
        finally:
            profiling.stop(outer)
            if outer is not None:
                for e in session.events:
                    outer.add(e)
        rows = profiling.averages(session.events)
        debug.dump(2, f"profile of @{self.graph.name}:\n{profiling.table(rows)}")


def _raise_program_error(name: str, bits: int) -> None:
    """The exception for a nonzero error word (codegen/kernel.py)."""
    if bits & ERROR_ZERO_DIVISION:
        raise DivisionByZeroError(f"graph @{name}: {ZERO_DIVISION_MESSAGE}")
    raise IndexOutOfRangeError(
        f"graph @{name}: an index is out of bounds (a gather/scatter_add index, an embedding or indexing "
        "index, or a one_hot class value)"
    )


_POOL_FNS = None  # (worker, post, wait) ctypes functions (codegen/llvm/pool.py)
_POOL_ENGINE = None


def _pool_fns():
    """The native hand-off routines, compiled (or loaded from the cache) once
    per process."""
    global _POOL_FNS, _POOL_ENGINE
    if _POOL_FNS is not None:
        return _POOL_FNS
    from graphc.codegen.llvm import pool as llvm_pool

    with _GEMM_LOCK:
        if _POOL_FNS is not None:
            return _POOL_FNS
        key = cache.cache_key("cpu-pool", target.fingerprint(), f"spin={llvm_pool.YIELD_EVERY}")
        entry = cache.load(key)
        engine = None
        if entry is not None:
            try:
                engine, _ = _engine(entry[0], "graphc_pool_worker")
            except Exception:
                engine = None
        if engine is None:
            obj = target.emit_object(target.optimize(llvm_pool.module_ir()))
            cache.store(key, obj, {"kind": "pool"})
            engine, _ = _engine(obj, "graphc_pool_worker")
        addr = engine.get_function_address
        i64, vp = ctypes.c_int64, ctypes.c_void_p
        worker = ctypes.CFUNCTYPE(None, vp, i64, i64)(addr("graphc_pool_worker"))
        post = ctypes.CFUNCTYPE(i64, vp, i64, i64, i64)(addr("graphc_pool_post"))
        wait = ctypes.CFUNCTYPE(None, vp, i64)(addr("graphc_pool_wait"))
        _POOL_ENGINE = engine
        _POOL_FNS = (worker, post, wait)
    return _POOL_FNS


class _Pool:
    """Persistent worker threads that call the entry point with their
    thread index; ctypes releases the GIL, so they run in parallel.

    Hand-off is native (codegen/llvm/pool.py): after a job a worker spins
    (GIL released) on a job counter for ~1 ms, so back-to-back calls start
    and join workers in ~1 us instead of a lock wake-up and two GIL
    hand-overs (~100 us, as much as half of a 256x256 SGEMM). An idle
    worker then blocks on its lock; the caller releases only those."""

    def __init__(self, n: int):
        from graphc.codegen.llvm import pool as llvm_pool

        self.n = n
        self.fns = _pool_fns()
        self.state = (ctypes.c_int64 * llvm_pool.state_words(n))()
        self.state_addr = ctypes.addressof(self.state)
        self.spin = llvm_pool.SPIN_CYCLES
        for t in range(1, n):
            self.state[llvm_pool.LINE * (3 + 2 * t)] = 1  # asleep: blocked on its lock
        self.go = [threading.Lock() for _ in range(n)]
        for t in range(1, n):
            self.go[t].acquire()
            threading.Thread(target=self._work, args=(t,), daemon=True).start()

    def _work(self, tid: int) -> None:
        worker = self.fns[0]
        while True:
            self.go[tid].acquire()
            worker(self.state_addr, tid, self.spin)

    def run(self, exe: CpuExecutable, fn, entry_addr: int) -> None:
        ctxs = exe.__dict__.get("_ctxs")
        if ctxs is None or len(ctxs[1]) != self.n:
            arrays = [exe._ctx(t, self.n) for t in range(self.n)]
            addrs = (ctypes.c_int64 * self.n)(*[ctypes.addressof(a) for a in arrays])
            ctxs = exe._ctxs = (arrays, addrs, ctypes.addressof(addrs), arrays[0])
        _, post, wait = self.fns
        with _POOL_LOCK:
            wake = post(self.state_addr, self.n, entry_addr, ctxs[2])
            if wake:
                for t in range(1, self.n):
                    if wake >> t & 1:
                        self.go[t].release()
            fn(ctypes.addressof(ctxs[3]))
            wait(self.state_addr, self.n)


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
