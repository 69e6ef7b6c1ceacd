"""The CUDA runtime: device discovery, memory, compilation and the "cuda"
backend.

Nothing here imports pycuda until a GPU is actually needed, so this module
(and `render_source` / `explain`, which only generate code) works on any
machine. Pieces, in the order a compiled program uses them:

- availability: `is_available()`, `unavailable_reason()`, `device_count()`,
  `synchronize()`; pycuda is imported and the driver initialised on first
  use, once, and a failure is remembered with its reason.
- compilation: CUDA C -> cubin with nvcc for the device's architecture,
  cached on disk by runtime/cache.py (the CPU backend's cache), loaded with
  `module_from_buffer`.
- memory: `DevicePool` hands out device allocations, reusing freed ones of
  the same size, and turns an allocation failure into `CudaOutOfMemoryError`.
- the backend: `CudaExecutable` compiles a Graph (optimize -> fusion ->
  memory plan -> codegen/cuda), allocates its device buffers once, and per
  call copies inputs in, launches the kernels in order on one stream,
  checks the index-error flag and copies outputs out.

Errors are graphc exceptions (below) with the cause and the fix; a failed
launch names its kernel.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence

import numpy as np

from graphc import config, debug
from graphc.errors import DivisionByZeroError, IndexOutOfRangeError
from graphc.ir.graph import Graph
from graphc.ir.rules import ZERO_DIVISION_MESSAGE
from graphc.runtime import backends, cache, profiling

# err[2] of a division by zero (gc_check_div in codegen/cuda/prelude.py).
_DIVISION_MARK = (1 << 64) - 1

# ---------------------------------------------------------------------------
# errors


class CudaError(RuntimeError):
    """Base class of the CUDA backend's errors."""


class CudaUnavailableError(CudaError):
    """CUDA cannot be used here: pycuda is not installed, the NVIDIA driver
    is missing or fails to initialise, no GPU is visible, or nvcc (the CUDA
    toolkit) is not found. The message says which. Fix: install the driver
    and toolkit, then `pip install graphc[cuda]`; set GRAPHC_NVCC if nvcc is
    not on PATH. `graphc.cuda.is_available()` tells beforehand."""


class CudaCompileError(CudaError):
    """nvcc rejected generated CUDA C. This is a bug in graphc's CUDA code
    generator; the message holds nvcc's diagnostics and the path of the
    saved source. Please report it with that file."""


class CudaOutOfMemoryError(CudaError, MemoryError):
    """The GPU has not enough free memory for a program's buffers. The
    message gives the request and the device's free/total memory. Fix: use
    a smaller batch, free other GPU tensors or processes, or run on the CPU."""


class CudaLaunchError(CudaError):
    """A kernel failed to launch or failed while running (for example an
    illegal memory access). The message names the kernel when known; set
    GRAPHC_CUDA_SYNC=1 to synchronize after every launch so the failing
    kernel is named exactly. After such an error the CUDA context may be
    unusable: restart the process to use the GPU again."""


# ---------------------------------------------------------------------------
# toolkit (nvcc): needed to compile, not to render


def find_nvcc() -> str | None:
    """Path of nvcc: $GRAPHC_NVCC, else PATH, else $CUDA_HOME/bin, else
    /usr/local/cuda/bin."""
    env = config.get("GRAPHC_NVCC")
    if env:
        return env if os.path.exists(env) else None
    found = shutil.which("nvcc")
    if found:
        return found
    for home in (
        os.environ.get("CUDA_HOME"),
        os.environ.get("CUDA_PATH"),
        "/usr/local/cuda",
    ):
        if home and os.path.exists(os.path.join(home, "bin", "nvcc")):
            return os.path.join(home, "bin", "nvcc")
    return None


def _require_nvcc() -> str:
    nvcc = find_nvcc()
    if nvcc is None:
        raise CudaUnavailableError(
            "nvcc (the CUDA toolkit compiler) was not found: "
            "install the CUDA toolkit, put nvcc on PATH or set GRAPHC_NVCC"
        )
    return nvcc


@functools.cache
def nvcc_version(nvcc: str | None = None) -> str:
    """nvcc's release line, e.g. 'release 13.0, V13.0.88' (part of cache keys)."""
    nvcc = nvcc or _require_nvcc()
    out = subprocess.run([nvcc, "--version"], capture_output=True, text=True, check=False).stdout
    match = re.search(r"release [^\n]*", out)
    return match.group(0) if match else out.strip()


# Flags that change generated code are part of the cache key. No fast-math:
# graphc's semantics (NaN propagation, exact division) must hold.
NVCC_FLAGS = ("-O3", "-std=c++17")


def nvcc_compile(source: str, arch: str, output: str = "cubin", flags: Sequence[str] = NVCC_FLAGS) -> bytes:
    """Compile CUDA C `source` for `arch` (e.g. 'sm_80') to a cubin or PTX
    (`output` 'cubin' | 'ptx'); raises CudaCompileError with nvcc's output."""
    nvcc = _require_nvcc()
    with tempfile.TemporaryDirectory(prefix="graphc-nvcc-") as tmp:
        src = os.path.join(tmp, "module.cu")
        dst = os.path.join(tmp, f"module.{output}")
        with open(src, "w") as f:
            f.write(source)
        cmd = [nvcc, f"--{output}", f"-arch={arch}", *flags, "-o", dst, src]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            saved = _save_failed_source(source)
            raise CudaCompileError(
                f"nvcc failed ({' '.join(cmd[:4])} ...) on generated CUDA C saved at {saved}:\n"
                f"{proc.stderr.strip()[-4000:]}"
            )
        with open(dst, "rb") as f:
            return f.read()


def _save_failed_source(source: str) -> str:
    fd, path = tempfile.mkstemp(prefix="graphc-failed-", suffix=".cu")
    with os.fdopen(fd, "w") as f:
        f.write(source)
    return path


# ---------------------------------------------------------------------------
# driver state (lazy pycuda)


class _Driver:
    """pycuda's driver module and the primary context of device 0, set up
    on first use. A failure is kept as `reason` and never retried."""

    def __init__(self):
        self.tried = False
        self.drv = None
        self.context = None
        self.device = None
        self.count = 0
        self.reason: str | None = None

    def init(self) -> None:
        if self.tried:
            return
        self.tried = True
        try:
            import pycuda.driver as drv
        except ImportError as e:
            self.reason = f"pycuda is not installed ({e}); install it with `pip install graphc[cuda]`"
            return
        try:
            drv.init()
            self.count = drv.Device.count()
        except Exception as e:  # noqa: BLE001 - any driver failure means 'unavailable', with its text
            self.reason = f"the CUDA driver could not be initialised: {e}"
            return
        if self.count == 0:
            self.reason = "the CUDA driver sees no GPU"
            return
        self.drv = drv
        self.device = drv.Device(0)
        self.context = self.device.retain_primary_context()
        self.context.push()

    def require(self):
        self.init()
        if self.drv is None:
            raise CudaUnavailableError(f"CUDA is not available: {self.reason}")
        return self.drv


_DRIVER = _Driver()


def is_available() -> bool:
    """True when pycuda imports, the driver initialises and sees a GPU."""
    _DRIVER.init()
    return _DRIVER.drv is not None


def unavailable_reason() -> str | None:
    """Why CUDA is unavailable (None when it is available)."""
    _DRIVER.init()
    return _DRIVER.reason


def device_count() -> int:
    """Number of visible GPUs (0 when CUDA is unavailable)."""
    _DRIVER.init()
    return _DRIVER.count if _DRIVER.drv is not None else 0


def synchronize() -> None:
    """Wait for all queued GPU work; a no-op when CUDA is unavailable."""
    if is_available():
        try:
            _DRIVER.context.synchronize()
        except _DRIVER.drv.Error as e:
            raise CudaLaunchError(f"a GPU kernel failed: {e}") from e


def driver():
    """pycuda's driver module with graphc's context current (for tools such
    as the GPU benchmark); raises CudaUnavailableError without CUDA."""
    return _DRIVER.require()


def device_arch() -> str:
    """The current GPU's architecture for nvcc, e.g. 'sm_90'."""
    _DRIVER.require()
    major, minor = _DRIVER.device.compute_capability()
    return f"sm_{major}{minor}"


def device_name() -> str:
    _DRIVER.require()
    return _DRIVER.device.name()


# ---------------------------------------------------------------------------
# compilation with the disk cache


STATS = {"disk_hits": 0, "compiles": 0}


def cubin_key(source: str, arch: str, nvcc: str, flags: Sequence[str]) -> str:
    """The disk-cache key of a cubin: everything that changes it."""
    return cache.cache_key("cuda-cubin", source, arch, nvcc, "\0".join(flags))


def compile_cubin(source: str, arch: str, flags: Sequence[str] = NVCC_FLAGS) -> bytes:
    """`source` compiled for `arch`, from the disk cache when present."""
    key = cubin_key(source, arch, nvcc_version(), flags)
    entry = cache.load(key)
    if entry is not None:
        STATS["disk_hits"] += 1
        return entry[0]
    cubin = nvcc_compile(source, arch, "cubin", flags)
    STATS["compiles"] += 1
    cache.store(key, cubin, {"kind": "cubin", "arch": arch})
    return cubin


def load_module(source: str):
    """Compile (or fetch) `source` for the current GPU and load it."""
    drv = _DRIVER.require()
    cubin = compile_cubin(source, device_arch())
    try:
        return drv.module_from_buffer(cubin)
    except drv.Error as e:
        raise CudaCompileError(f"the CUDA driver could not load the compiled module: {e}") from e


# ---------------------------------------------------------------------------
# device memory


class DeviceBuffer:
    """One device allocation and its size; `int(buf)` is its address."""

    __slots__ = ("allocation", "size")

    def __init__(self, allocation, size: int):
        self.allocation = allocation
        self.size = size

    def __int__(self) -> int:
        return int(self.allocation)


class DevicePool:
    """Device allocations, recycled by size. `allocate` raises
    CudaOutOfMemoryError (after releasing cached blocks and retrying once)."""

    def __init__(self):
        self._free: dict[int, list[DeviceBuffer]] = {}

    @staticmethod
    def rounded(nbytes: int) -> int:
        # Multiples of 256 bytes (at least 256): narrow atomic adds work on
        # the aligned 32-bit word around an element, which must lie inside.
        return max(256, (int(nbytes) + 255) // 256 * 256)

    def allocate(self, nbytes: int) -> DeviceBuffer:
        drv = _DRIVER.require()
        size = self.rounded(nbytes)
        bucket = self._free.get(size)
        if bucket:
            return bucket.pop()
        try:
            return DeviceBuffer(drv.mem_alloc(size), size)
        except drv.MemoryError:
            self.release_cached()
            try:
                return DeviceBuffer(drv.mem_alloc(size), size)
            except drv.MemoryError as e:
                free, total = drv.mem_get_info()
                raise CudaOutOfMemoryError(
                    f"out of GPU memory: requested {size / 2**20:.1f} MiB, "
                    f"{free / 2**20:.1f} MiB free of {total / 2**20:.1f} MiB ({e})"
                ) from None

    def free(self, buffer: DeviceBuffer) -> None:
        """Return a buffer for reuse by a later request of its size."""
        self._free.setdefault(buffer.size, []).append(buffer)

    def release_cached(self) -> None:
        for bucket in self._free.values():
            for buf in bucket:
                buf.allocation.free()
        self._free.clear()


_POOL = DevicePool()


def memory_pool() -> DevicePool:
    return _POOL


# -- the device-storage interface used by CUDA tensors (graphc/_device_storage.py)


def allocate(nbytes: int) -> DeviceBuffer:
    """A device buffer of at least `nbytes` bytes (from the pool); raises
    CudaUnavailableError without a GPU, CudaOutOfMemoryError when full."""
    return _POOL.allocate(nbytes)


def free(buffer: DeviceBuffer) -> None:
    """Give a buffer from `allocate` back (to the pool, for reuse)."""
    _POOL.free(buffer)


def copy_to_device(buffer: DeviceBuffer, array: np.ndarray) -> None:
    """Host -> device: `array` into the start of `buffer` (blocking)."""
    to_device(array, int(buffer))


def copy_to_host(out: np.ndarray, buffer: DeviceBuffer) -> np.ndarray:
    """Device -> host: the start of `buffer` into `out` (blocking)."""
    return from_device(int(buffer), out)


def copy_on_device(dst, src, nbytes: int) -> None:
    """Device -> device copy of `nbytes` bytes (buffers or addresses)."""
    drv = _DRIVER.require()
    if nbytes:
        try:
            drv.memcpy_dtod(int(dst), int(src), int(nbytes))
        except drv.Error as e:
            raise CudaLaunchError(f"device-to-device copy of {nbytes} bytes failed: {e}") from e


def compile_graph(graph: Graph, aliases: Mapping[int, int] | None = None) -> CudaExecutable:
    """`graph` compiled for the GPU (the "cuda" backend); its `run_device`
    runs on device buffers."""
    return backends.compile_graph(graph, "cuda", aliases)


def to_device(array: np.ndarray, pointer: int) -> None:
    """Copy a host array into device memory at `pointer` (blocking)."""
    drv = _DRIVER.require()
    array = np.ascontiguousarray(array)
    if array.nbytes:
        drv.memcpy_htod(pointer, array)


def from_device(pointer: int, out: np.ndarray) -> np.ndarray:
    """Copy device memory at `pointer` into the host array `out` (blocking)."""
    drv = _DRIVER.require()
    if out.nbytes == 0:
        return out
    if out.flags.c_contiguous and out.flags.writeable:
        drv.memcpy_dtoh(out, pointer)
        return out
    tmp = np.empty(out.shape, out.dtype)
    drv.memcpy_dtoh(tmp, pointer)
    np.copyto(out, tmp)
    return out


# ---------------------------------------------------------------------------
# lowering (no GPU needed)


def lower(graph: Graph, aliases: Mapping[int, int] | None = None):
    """Graph -> kernel-form Program with a memory plan: `codegen.lower.lower`
    with no primitive kept beyond the common kernel kinds (the CUDA code
    generator has no attention kernel, so attention is expanded)."""
    from graphc.codegen import lower as codegen_lower

    return codegen_lower.lower(graph, aliases)


def render(graph: Graph, aliases: Mapping[int, int] | None = None):
    """(kernel-form Program, CudaModule) for `graph`; needs no GPU."""
    from graphc.codegen.cuda import render_program

    program = lower(graph, aliases)
    return program, render_program(program)


def render_source(graph: Graph) -> str:
    """The CUDA C module the cuda backend would compile for `graph`."""
    return render(graph)[1].source


def explain(graph: Graph) -> dict[str, str]:
    """Stage printouts for `graphc ir --device cuda --stage cuda`."""
    return {"cuda": render_source(graph)}


# ---------------------------------------------------------------------------
# the backend


def _dump(level: int, text: str) -> None:
    """GRAPHC_DEBUG output (graphc/debug.py); level 4 prints the generated CUDA C."""
    debug.dump(level, text)


def _sync_each_launch() -> bool:
    return config.get("GRAPHC_CUDA_SYNC")


class CudaExecutable:
    """A Graph compiled for the GPU, with two entry points:

    - `__call__(arrays)`: numpy arrays in (graph-input order), numpy arrays
      out; aliased outputs are written into their input arrays (see
      runtime/backends.py). Each call uploads the inputs, launches every
      kernel in order on one stream, waits, checks the index-error flag and
      downloads the outputs.
    - `run_device(buffers)`: device buffers in, device buffers out, no host
      transfer of data (CUDA tensors use this). The inputs are read where
      they are; each output gets a new buffer (owned by the caller, returned
      to the pool with `free`), except an aliased output, which is written
      into its input's buffer and returned as that buffer.

    Constants and the arena for temporaries (buffers with disjoint
    lifetimes share it) are allocated once per program; the numpy entry's
    input and output buffers are allocated on its first call."""

    def __init__(self, graph: Graph, aliases: Mapping[int, int] | None = None):
        drv = _DRIVER.require()
        self.graph = graph
        self.aliases = dict(aliases or {})
        self.program, self.module = render(graph, self.aliases)
        _dump(4, f"CUDA C for @{graph.name}:\n{self.module.source}")
        self._cu_module = load_module(self.module.source)
        self._allocations: list = []
        # The pool these come from: freed to it even if the global pool has
        # been replaced since (the test emulator installs a fresh one).
        self._pool = _POOL
        self._pointers = self._place_buffers()
        self._host_pointers: dict[str, int] | None = None
        self._err = self._allocate(24)
        self._kernels = []
        for k in self.module.launches:
            fn = self._cu_module.get_function(k.name)
            fn.prepare("P" * (len(k.params) + (1 if k.err_param else 0)))
            self._kernels.append((k, fn))
        self.stream = drv.Stream()

    # -- setup ---------------------------------------------------------------

    def _allocate(self, nbytes: int):
        alloc = self._pool.allocate(nbytes)
        self._allocations.append(alloc)
        return alloc

    def _slot_kind(self, name: str) -> str | None:
        slot = self.program.plan.slots.get(name)
        return None if slot is None else slot.kind

    def _place_buffers(self) -> dict[str, int]:
        """Device address of every buffer the program owns for its lifetime
        (constants, the arena, unplanned buffers); inputs and outputs are
        placed per entry point."""
        prog, plan = self.program, self.program.plan
        arena = self._allocate(plan.peak_bytes) if plan.peak_bytes else None
        pointers: dict[str, int] = {}
        for name, buf in prog.buffers.items():
            slot = plan.slots.get(name)
            if slot is not None and slot.kind in ("input", "output"):
                continue
            if slot is not None and slot.kind == "arena":
                pointers[name] = int(arena) + slot.offset
            else:  # const or unplanned: a buffer of its own
                pointers[name] = int(self._allocate(buf.nbytes))
                if name in prog.constants:
                    to_device(
                        np.asarray(prog.constants[name], dtype=buf.dtype.np),
                        pointers[name],
                    )
        return pointers

    def _numpy_pointers(self) -> dict[str, int]:
        """Addresses for the numpy entry point: program-owned input and
        output buffers, allocated on first use."""
        if self._host_pointers is None:
            prog, plan = self.program, self.program.plan
            inputs = [self._allocate(prog.buffers[name].nbytes) for name in prog.inputs]
            self._input_ptrs = [int(a) for a in inputs]
            pointers = dict(self._pointers)
            for name, buf in prog.buffers.items():
                slot = plan.slots.get(name)
                if slot is not None and slot.kind == "input":
                    pointers[name] = self._input_ptrs[slot.index]
                elif slot is not None and slot.kind == "output":
                    pointers[name] = int(self._allocate(buf.nbytes))
            self._host_pointers = pointers
        return self._host_pointers

    def _args(self, k, pointers: Mapping[str, int]) -> list[int]:
        return [pointers[b] for b in k.params] + ([int(self._err)] if k.err_param else [])

    def __del__(self):
        for alloc in getattr(self, "_allocations", ()):
            self._pool.free(alloc)

    # -- running -------------------------------------------------------------

    def __call__(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        self.upload(inputs)
        self.launch()
        self._raise_kernel_error()
        return self._outputs(inputs)

    def upload(self, inputs: Sequence[np.ndarray]) -> None:
        """Copy the inputs into their device buffers."""
        self._numpy_pointers()
        for array, pointer in zip(self._check_inputs(inputs), self._input_ptrs):
            to_device(array, pointer)

    def launch(self, wait: bool = True, pointers: Mapping[str, int] | None = None) -> None:
        """Run every kernel once on the uploaded inputs (benchmarks time
        this alone), or on the buffers at `pointers`; waits for the GPU
        unless `wait` is False."""
        drv = _DRIVER.require()
        pointers = self._numpy_pointers() if pointers is None else pointers
        drv.memset_d8(int(self._err), 0, 24)
        if profiling.ACTIVE is not None:
            self._launch_profiled(drv, pointers, profiling.ACTIVE)
            return
        for k, fn in self._kernels:
            self._launch(drv, k, fn, self._args(k, pointers))
        if wait:
            self._wait(drv, "after the last kernel")

    def _launch_profiled(self, drv, pointers: Mapping[str, int], session: profiling.Session) -> None:
        """`launch` under graphc.profiler: a CUDA event after each launch
        times it on the GPU; the call waits for the GPU (so its wall time
        is the program's). Kernel rows are placed from the call's start."""
        import threading
        import time

        from graphc.codegen import cost

        costs = {k.name.split("_")[0]: cost.kernel_cost(k, self.program.buffers) for k in self.program.kernels}
        start = time.perf_counter()
        first = drv.Event()
        first.record(self.stream)
        marks = []
        for k, fn in self._kernels:
            self._launch(drv, k, fn, self._args(k, pointers))
            done = drv.Event()
            done.record(self.stream)
            marks.append((k, done))
        self._wait(drv, "after the last kernel")
        end = time.perf_counter()
        tid = threading.get_ident()
        session.add(profiling.Event(f"call @{self.graph.name} (cuda)", "program", start, end, thread=tid))
        previous, charged = start, set()
        for k, done in marks:
            at = min(max(start + done.time_since(first) / 1e3, previous), end)
            # A kernel rendered as several launches is charged once.
            prefix = k.name.split("_")[0]
            c = costs.get(prefix) if prefix not in charged else None
            charged.add(prefix)
            flops, nbytes = (c.flops, c.bytes) if c is not None else (0, 0)
            name = f"{k.name} @{self.graph.name} (cuda)"
            session.add(profiling.Event(name, "cuda kernel", previous, at, flops, nbytes, tid))
            previous = at

    def run_device(self, buffers: Sequence[DeviceBuffer]) -> list[DeviceBuffer]:
        """Run on device buffers (graph-input order; each at least its
        input's size) and return one device buffer per output; see the
        class doc for ownership and aliases."""
        _DRIVER.require()
        prog, plan = self.program, self.program.plan
        if len(buffers) != len(self.graph.inputs):
            raise ValueError(f"graph @{self.graph.name} takes {len(self.graph.inputs)} inputs, got {len(buffers)}")
        for node, buf in zip(self.graph.inputs, buffers):
            need = node.type.nbytes
            if buf.size < need:
                raise ValueError(f"input %{node.attrs['name']} needs {need} bytes, its buffer has {buf.size}")
        pointers = dict(self._pointers)
        for name in prog.buffers:
            slot = plan.slots.get(name)
            if slot is not None and slot.kind == "input":
                pointers[name] = int(buffers[slot.index])
        fresh: dict[str, DeviceBuffer] = {}
        try:
            for name in prog.outputs:
                if self._slot_kind(name) == "output" and name not in fresh:
                    fresh[name] = _POOL.allocate(prog.buffers[name].nbytes)
                    pointers[name] = int(fresh[name])
            self.launch(pointers=pointers)
            self._raise_kernel_error()
        except BaseException:
            for buf in fresh.values():
                _POOL.free(buf)
            raise
        outs: list[DeviceBuffer] = []
        claimed: set[str] = set()
        for out_i, name in enumerate(prog.outputs):
            if out_i in plan.direct_aliases:
                outs.append(buffers[plan.direct_aliases[out_i]])
            elif name in fresh and name not in claimed:
                claimed.add(name)
                outs.append(fresh[name])
            else:  # an input, a constant, or an output listed twice: copy it
                nbytes = prog.buffers[name].nbytes
                buf = _POOL.allocate(nbytes)
                copy_on_device(buf, pointers[name], nbytes)
                outs.append(buf)
        for out_i, in_i in self.aliases.items():
            if out_i in plan.direct_aliases:
                continue
            target = buffers[in_i]
            copy_on_device(target, outs[out_i], prog.buffers[prog.outputs[out_i]].nbytes)
            _POOL.free(outs[out_i])
            outs[out_i] = target
        return outs

    def _check_inputs(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        if len(inputs) != len(self.graph.inputs):
            raise ValueError(f"graph @{self.graph.name} takes {len(self.graph.inputs)} inputs, got {len(inputs)}")
        arrays = []
        for node, value in zip(self.graph.inputs, inputs):
            arr = np.asarray(value)
            if arr.shape != node.shape or arr.dtype != node.dtype.np:
                raise ValueError(f"input %{node.attrs['name']} expects {node.type}, got {arr.dtype}{list(arr.shape)}")
            arrays.append(arr)
        return arrays

    def _launch(self, drv, k, fn, args) -> None:
        if 0 in k.grid:
            return  # empty iteration space
        try:
            fn.prepared_async_call(k.grid, k.block, self.stream, *args)
        except drv.Error as e:
            raise CudaLaunchError(f"launching kernel {k.name} (grid {k.grid}, block {k.block}) failed: {e}") from e
        if _sync_each_launch():
            self._wait(drv, f"in kernel {k.name}")

    def _wait(self, drv, where: str) -> None:
        try:
            self.stream.synchronize()
        except drv.Error as e:
            hint = "" if _sync_each_launch() else " (set GRAPHC_CUDA_SYNC=1 to name the failing kernel)"
            raise CudaLaunchError(f"program @{self.program.name} failed on the GPU {where}: {e}{hint}") from e

    def _raise_kernel_error(self) -> None:
        """Raise what a kernel recorded in the error words (prelude.py:
        gc_check, gc_check_div): an index out of bounds or a division by zero."""
        err = np.zeros(3, dtype=np.uint64)
        from_device(int(self._err), err)
        if err[0]:
            kernel = self.module.check_kernels.get(int(err[0]), "?")
            if int(err[2]) == _DIVISION_MARK:
                raise DivisionByZeroError(f"kernel {kernel}: {ZERO_DIVISION_MESSAGE}")
            bad = int(err[1].astype(np.int64))
            raise IndexOutOfRangeError(
                f"gather/scatter_add in kernel {kernel}: index {bad} "
                f"is out of bounds for a dimension of size {int(err[2])}"
            )

    def _outputs(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        prog, plan = self.program, self.program.plan
        pointers = self._numpy_pointers()
        outs = []
        for out_i, name in enumerate(prog.outputs):
            buf = prog.buffers[name]
            if out_i in plan.direct_aliases:
                target = inputs[plan.direct_aliases[out_i]]
                outs.append(from_device(pointers[name], target))
            else:
                outs.append(from_device(pointers[name], np.empty(buf.shape, buf.dtype.np)))
        rest = {o: i for o, i in self.aliases.items() if o not in plan.direct_aliases}
        return backends.write_aliases(outs, inputs, rest)


backends.BACKENDS["cuda"] = CudaExecutable
