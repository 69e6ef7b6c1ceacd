"""The CPU backend's native code: load it from the caches or build it.

- program entries: `_native(prog)` returns the loaded object code of a
  planned Program (`_Native`: an MCJIT engine and its entry points), from
  the in-process cache, else the disk cache (runtime/cache.py), else built
  by codegen/llvm and stored in both. Its key (`_key`) is the program's
  text, memory plan, target and the code generator's run-time settings.
- the GEMM libraries (codegen/llvm/gemm.py): one object per element type,
  loaded once per process into an engine that lives as long as the process
  and registered with LLVM's symbol resolver, so programs call them;
  a cold one may be compiled by a compile worker (runtime/compile_pool.py)
  while this process compiles the program, and `_prefetch_gemm_libs`
  starts that work on a thread before lowering.
- a big program's module is split at kernel boundaries and its parts
  compiled in parallel (codegen/llvm/split.py, runtime/compile_pool.py):
  one object per part, stored as one cache entry and loaded into one
  engine.
- the thread pool's native hand-off routines (codegen/llvm/pool.py),
  compiled or loaded once per process (`_pool_fns`).

`STATS` counts hits and compiles; `_MEMORY_CACHE` is the in-process cache
of program entries and of runtime/cpu.py's graph entries.
"""

from __future__ import annotations

import ctypes
import hashlib
import threading
from collections.abc import Sequence

import graphc.runtime.cache as cache
from graphc import debug
from graphc.codegen import memory
from graphc.codegen.kernel import Program, format_program
from graphc.codegen.llvm import module as llvm_module
from graphc.codegen.llvm import target
from graphc.ir.graph import Graph
from graphc.ir.ops import Op
from graphc.runtime import compile_pool, threads

_ENTRY_TYPE = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p)
_ENTRY_CTX_TYPE = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
# key -> _Native (program entries) or _GraphEntry (graph entries)
_MEMORY_CACHE: dict[str, object] = {}
STATS = {"memory_hits": 0, "disk_hits": 0, "compiles": 0, "gemm_compiles": 0, "gemm_worker_compiles": 0}


_GEMM_ENGINES: dict[str, object] = {}  # "f32"/"f64" -> engine holding the routine
_GEMM_LOCK = threading.Lock()


def _gemm_key(suffix: str) -> str:
    return cache.cache_key("cpu-gemm", target.fingerprint(), suffix)


def _load_gemm_libs(suffixes: Sequence[str], in_worker: bool = False) -> None:
    """Make the GEMM routines in `suffixes` resolvable by programs that call
    them: each is its own LLVM module (codegen/llvm/gemm.py `library_ir`),
    compiled once per (element type, target, code version), cached like a
    program, loaded into an engine that lives as long as the process, and
    its address registered with LLVM's symbol resolver. `in_worker`: compile
    a missing routine in a compile worker, if one is free."""
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
                ir_text = gemm.library_ir(suffix)
                obj = compile_pool.compile_elsewhere(ir_text, target.GEMM_OPT_LEVEL) if in_worker else None
                STATS["gemm_worker_compiles"] += obj is not None
                if obj is None:
                    obj = target.emit_object(target.optimize(ir_text, target.GEMM_OPT_LEVEL))
                STATS["gemm_compiles"] += 1
                cache.store(key, obj, {"kind": "gemm", "symbol": symbol})
                engine, addr = _engine(obj, symbol)
            llvm.add_symbol(symbol, addr)
            _GEMM_ENGINES[suffix] = engine


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
    pool = threads.get_num_threads() > 1 and _POOL_FNS is None and dot_work >= threads.THREADED_MIN_WORK
    if not want and not pool:
        return None
    # Ask LLVM for everything module building needs now, before the thread
    # holds llvmlite's lock for seconds.
    target.triple_and_layout()
    in_worker = bool(want) and compile_pool.available() > 0

    def work():
        try:
            # The pool's routines first: a small LLVM job, done while the
            # main thread is still lowering in Python.
            if pool:  # the thread pool's hand-off routines (first threaded call)
                _pool_fns()
            _load_gemm_libs(sorted(want), in_worker=in_worker)
        except Exception:  # the program's own load retries and reports
            pass

    t = threading.Thread(target=work, name="graphc-gemm", daemon=True)
    t.start()
    return t


def _engine(obj: bytes | Sequence[bytes], symbol: str):
    """(MCJIT engine holding object code `obj` (or several objects, whose
    references to each other it resolves), address of `symbol` in it)."""
    import llvmlite.binding as llvm

    target.host()
    engine = llvm.create_mcjit_compiler(llvm.parse_assembly(""), target.new_target_machine())
    for o in [obj] if isinstance(obj, bytes) else obj:
        engine.add_object_file(llvm.ObjectFileRef.from_data(o))
    engine.finalize_object()
    addr = engine.get_function_address(symbol)
    if not addr:
        raise RuntimeError(f"object code lacks {symbol}")
    return engine, addr


class _Native:
    """Loaded object code: an execution engine and the entry address."""

    def __init__(
        self,
        objs: Sequence[bytes],
        buffer_order: Sequence[str],
        workspace_bytes: int = 0,
        gemm_libs: Sequence[str] = (),
        key: str = "",
    ):
        _load_gemm_libs(gemm_libs)
        self.engine, entry = _engine(objs, "entry")
        self.entry = _ENTRY_TYPE(entry)
        self.entry_ctx_addr = self.engine.get_function_address("entry_ctx")
        self.entry_ctx = _ENTRY_CTX_TYPE(self.entry_ctx_addr)
        self.buffer_order = tuple(buffer_order)
        self.workspace_bytes = int(workspace_bytes)
        self.gemm_libs = tuple(gemm_libs)
        self.key = key  # the program entry in the disk cache
        self.sha256 = hashlib.sha256(b"".join(objs)).hexdigest()


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


# With compile workers free, a module is split into this many parts per
# process (this one and each worker): they take parts until none is left,
# so a worker that starts late, or a part that takes longer than its
# estimate, still balances (see compile_pool.compile_objects).
SPLIT_PER_PROCESS = 4


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
    if debug.level() >= 4:  # the dumps show the whole module, unsplit
        info = llvm_module.build_module(prog, profile)
        debug.dump(4, info.ir)
        mod = target.optimize(info.ir)
        debug.dump(5, target.emit_assembly(mod) if debug.level() >= 5 else "")
        objs = [target.emit_object(mod)]
    else:
        workers = compile_pool.available()
        info = llvm_module.build_module(prog, profile, parts=SPLIT_PER_PROCESS * (1 + workers) if workers else 1)
        objs = compile_pool.compile_objects((info.ir,) + info.part_irs)
    STATS["compiles"] += 1
    cache.store(
        key,
        b"".join(objs),
        {
            "buffer_order": list(info.buffer_order),
            "workspace_bytes": info.workspace_bytes,
            "gemm_libs": list(info.gemm_libs),
            "object_sizes": [len(o) for o in objs],
        },
    )
    native = _Native(objs, info.buffer_order, info.workspace_bytes, info.gemm_libs, key)
    _MEMORY_CACHE[key] = native
    return native


def _load_native(key: str, sha256: str | None = None) -> _Native | None:
    """The program entry `key` from disk (optionally: only if its object has
    this sha256), or None."""
    entry = cache.load(key)
    if entry is None:
        return None
    blob, manifest = entry
    try:
        objs, at = [], 0
        for size in manifest.get("object_sizes", [len(blob)]):
            objs.append(blob[at : at + size])
            at += size
        if at != len(blob):
            raise ValueError("object sizes do not add up to the entry")
        native = _Native(
            objs, manifest["buffer_order"], manifest.get("workspace_bytes", 0), manifest.get("gemm_libs", ()), key
        )
    except Exception:  # unreadable object code or manifest: recompile
        return None
    if sha256 is not None and native.sha256 != sha256:
        return None
    return native


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
