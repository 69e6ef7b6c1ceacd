"""A compiled CPU program ready to call: `CpuExecutable`.

It owns a 64-byte aligned arena for temporaries and a prebuilt pointer
table; a call writes the input and output array addresses into the table
(zero copy; fresh outputs of 4 KiB or more start on a cache line) and
makes one native call, on `threads.get_num_threads()`
threads when the program is large enough. `_Meta` is what it needs from
the lowered Program (buffer placement, outputs, constants, work), built
from a Program or from a graph-level cache manifest (runtime/cpu.py).
A nonzero error word after the call raises (`_raise_program_error`).
"""

from __future__ import annotations

import base64
import ctypes
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from graphc import debug
from graphc.codegen import memory
from graphc.codegen.kernel import ERROR_ZERO_DIVISION, Program
from graphc.errors import DivisionByZeroError, IndexOutOfRangeError
from graphc.ir.graph import Graph
from graphc.ir.rules import ZERO_DIVISION_MESSAGE
from graphc.runtime import backends, host_memory, profiling, threads
from graphc.runtime.native import _Native, _native, _pool_fns


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


def _aligned_empty(nbytes: int, zeroed: bool = True) -> np.ndarray:
    """`nbytes` bytes starting on a 64-byte boundary (a view of a larger
    buffer), zeroed unless `zeroed` is False."""
    raw = (np.zeros if zeroed else np.empty)(nbytes + 64, dtype=np.uint8)
    start = (-raw.ctypes.data) % 64
    return raw[start : start + nbytes]


# Fresh output arrays at least this big start on a cache line: the GEMM
# stores whole vector rows of its tiles straight into an output, and a
# 64-byte row that starts 16 bytes into a line (numpy's usual alignment)
# touches two lines (ResNet-18's conv weight gradients, written in place:
# ~3 ms per step slower unaligned).
ALIGNED_OUTPUT_BYTES = 4096


def _new_output(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if nbytes < ALIGNED_OUTPUT_BYTES:
        return np.empty(shape, dtype)
    return _aligned_empty(nbytes, zeroed=False).view(dtype).reshape(shape)


def _address(arr: np.ndarray) -> int:
    """Data address of an array (c_char.from_buffer is ~3x cheaper than
    arr.ctypes.data but needs a writable buffer)."""
    if arr.flags.writeable:
        return ctypes.addressof(ctypes.c_char.from_buffer(arr))
    return arr.ctypes.data


# sys.getrefcount of an array held only by the executable's list, a local
# variable and getrefcount's own argument.
_UNSHARED_REFS = 3
# ... and of its raw buffer, held only by the array's `base` and
# getrefcount's argument.
_UNSHARED_BASE_REFS = 2


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
        lowering: Callable[[Graph, Mapping[int, int]], Program] | None = None,
    ):
        self.graph = graph
        self._program = prog
        self._lowering = lowering  # lowers the graph again when `prog` is None
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
        self._threaded = meta.work >= threads.THREADED_MIN_WORK
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
            if self._lowering is None:
                raise RuntimeError(f"graph @{self.graph.name}: executable has neither its Program nor a lowering")
            self._program = self._lowering(self.graph, self.aliases)
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
                # An aligned output is a view of a raw buffer, and a view
                # the caller took of it holds that buffer, not `arr`.
                if (
                    arr is not None
                    and sys.getrefcount(arr) <= _UNSHARED_REFS
                    and (arr.base is None or sys.getrefcount(arr.base) <= _UNSHARED_BASE_REFS)
                ):
                    result.append(arr)  # nobody else sees it: reuse, address unchanged
                    continue
                shape, dtype = self._fresh_specs[j]
                arr = _new_output(shape, dtype)
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
        n = threads.get_num_threads() if self._threaded else 1
        if n == 1:
            native.entry_ctx(self._ctx1_addr)
        else:
            if n > self._workspace_threads:
                self._ensure_workspace(n)
            threads.pool(n, _pool_fns()).run(self, native.entry_ctx, native.entry_ctx_addr)
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
