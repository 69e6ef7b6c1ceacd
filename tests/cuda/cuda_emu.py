"""An emulated GPU for running graphc's CUDA backend without one.

`install(monkeypatch)` swaps two things under runtime/cuda.py and leaves
the rest of it (lowering, rendering, buffer placement, the disk cache,
launch order, index-error flags, aliases, `run_device`) running as on a GPU:

- the driver: `EmulatedDriver` stands in for `pycuda.driver`, with the
  calls the runtime makes. "Device memory" is host memory; every
  allocation has guard bytes on both sides, checked after each launch, so
  a kernel writing out of bounds fails the launch with the address range,
  and copies and memsets must lie inside one live allocation. Memory is
  capped (`capacity`), so out-of-memory paths run too.
- the compiler: `host_compile` builds the generated CUDA C with g++ against
  emu/cuda_host_emu.h into a shared library, which the driver's
  `module_from_buffer` loads; kernels run block by block with each thread
  a fiber (see the header for the execution model).

Numbers differ from a real GPU only where the host's libm and the GPU's
math library differ (a few ulps) and in float summation order, which the
differential tests' tolerances cover.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

EMU_DIR = Path(__file__).parent / "emu"
GUARD = 4096  # guard bytes on each side of an allocation
_GUARD_BYTE = 0xA5
_KERNEL = re.compile(r'extern "C" __global__ void (?:__launch_bounds__\(\d+\) )?(\w+)\(([^)]*)\)')


def compiler() -> str | None:
    """The host C++ compiler the emulator uses (None: emulation unavailable)."""
    return shutil.which(os.environ.get("CXX", "g++"))


def host_compile(source: str, arch: str, output: str = "cubin", flags: Sequence[str] = ()) -> bytes:
    """Stand-in for runtime.cuda.nvcc_compile: `source` built for the host
    emulator; returns the shared library's bytes (what the disk cache stores)."""
    from graphc.runtime.cuda import CudaCompileError

    entries = "\n".join(_entry(name, params) for name, params in _KERNEL.findall(source))
    with tempfile.TemporaryDirectory(prefix="graphc-emu-") as tmp:
        src, lib = os.path.join(tmp, "module.cu"), os.path.join(tmp, "module.so")
        with open(src, "w") as f:
            f.write(source + "\n" + entries + "\n")
        cmd = [
            compiler() or "g++",
            "-x",
            "c++",
            "-std=gnu++17",
            "-O0",
            "-fPIC",
            "-shared",
            "-fvisibility=hidden",
            "-Wno-unknown-pragmas",
            f"-I{EMU_DIR / 'include'}",
            "-include",
            str(EMU_DIR / "cuda_host_emu.h"),
            src,
            "-o",
            lib,
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise CudaCompileError(f"host build of generated CUDA C failed:\n{proc.stderr[-4000:]}")
        return Path(lib).read_bytes()


def _entry(name: str, params: str) -> str:
    """`gc_emu_entry_NAME(void** args)`: calls kernel NAME with its pointer
    parameters taken from `args` (the emulator's launch calls this)."""
    types = [p.rsplit(" ", 1)[0] for p in params.split(", ")] if params.strip() else []
    args = ", ".join(f"({t})args[{i}]" for i, t in enumerate(types))
    visible = '__attribute__((visibility("default")))'
    return f'extern "C" {visible} void gc_emu_entry_{name}(void** args) {{ {name}({args}); }}'


class Error(Exception):
    """pycuda.driver.Error's stand-in."""


class LaunchError(Error):
    """pycuda.driver.LaunchError's stand-in: a kernel or a copy failed."""


class MemoryError_(Error, MemoryError):  # noqa: N801 - mirrors pycuda.driver.MemoryError
    """pycuda.driver.MemoryError's stand-in: the capped memory is full."""


class Allocation:
    """One emulated device allocation, with guard bytes around it."""

    def __init__(self, driver: EmulatedDriver, size: int):
        self.driver = driver
        self.size = size
        self.raw = np.full(size + 2 * GUARD, _GUARD_BYTE, dtype=np.uint8)
        self.raw[GUARD : GUARD + size] = 0x5A  # device memory starts as garbage, not zeros
        self.address = self.raw.ctypes.data + GUARD
        self.freed = False

    def __int__(self) -> int:
        return self.address

    def guards_intact(self) -> bool:
        return bool((self.raw[:GUARD] == _GUARD_BYTE).all() and (self.raw[GUARD + self.size :] == _GUARD_BYTE).all())

    def free(self) -> None:
        if not self.freed:
            self.freed = True
            self.driver._release(self)


class Function:
    def __init__(self, module: Module, name: str):
        self.module, self.name = module, name
        try:
            self.entry = getattr(module.lib, f"gc_emu_entry_{name}")
        except AttributeError:
            raise Error(f"named symbol not found: {name}") from None

    def prepare(self, arg_types: str) -> None:
        if set(arg_types) - {"P"}:
            raise Error(f"the emulator passes pointers only, got {arg_types!r}")
        self.arg_types = arg_types

    def prepared_async_call(self, grid, block, stream, *args) -> None:
        if len(args) != len(self.arg_types):
            raise LaunchError(f"{self.name}: {len(self.arg_types)} parameters prepared, {len(args)} given")
        self.module.driver.launch(self, tuple(grid), tuple(block), [int(a) for a in args])


class Module:
    def __init__(self, driver: EmulatedDriver, image: bytes):
        self.driver = driver
        fd, self.path = tempfile.mkstemp(prefix="graphc-emu-", suffix=".so")
        with os.fdopen(fd, "wb") as f:
            f.write(image)
        self.lib = ctypes.CDLL(self.path)
        os.unlink(self.path)  # the mapping stays valid
        self.lib.gc_emu_launch.restype = ctypes.c_int
        self.lib.gc_emu_launch.argtypes = [ctypes.c_void_p, ctypes.c_void_p] + [ctypes.c_uint] * 6
        self.lib.gc_emu_launch_error.restype = ctypes.c_char_p

    def get_function(self, name: str) -> Function:
        return Function(self, name)


class Stream:
    def synchronize(self) -> None:
        """Nothing to wait for: emulated launches finish before they return."""


class Context:
    def __init__(self, driver: EmulatedDriver):
        self.driver = driver

    def push(self) -> None:
        """The emulator has one context, always current."""

    @staticmethod
    def synchronize() -> None:
        """Nothing to wait for: emulated launches are synchronous."""


class Event:
    """Wall-clock stand-in for a CUDA event (launches run synchronously)."""

    def record(self, stream=None) -> None:
        self.at = time.perf_counter()

    def synchronize(self) -> None:
        """Recorded when `record` ran: nothing is pending."""

    def time_since(self, earlier: Event) -> float:
        return (self.at - earlier.at) * 1e3  # milliseconds, as pycuda


class device_attribute:  # noqa: N801 - pycuda's name
    MEMORY_CLOCK_RATE = "memory_clock_khz"
    GLOBAL_MEMORY_BUS_WIDTH = "bus_bits"


class Device:
    def __init__(self, driver: EmulatedDriver, ordinal: int = 0):
        self.driver = driver

    def name(self) -> str:
        return "graphc host emulator"

    def compute_capability(self) -> tuple[int, int]:
        return (0, 0)

    def get_attribute(self, attribute: str) -> int:
        return {"memory_clock_khz": 1_000_000, "bus_bits": 64}[attribute]

    def retain_primary_context(self) -> Context:
        return Context(self.driver)


class EmulatedDriver:
    """The part of `pycuda.driver` graphc's runtime uses, on host memory."""

    Error = Error
    LaunchError = LaunchError
    MemoryError = MemoryError_
    Context = Context
    Event = Event
    device_attribute = device_attribute

    def __init__(self, capacity: int = 1 << 30):
        self.capacity = capacity
        self.live: dict[int, Allocation] = {}
        self.used = 0
        driver = self

        class _Device(Device):
            def __init__(self, ordinal: int = 0):
                super().__init__(driver, ordinal)

            @staticmethod
            def count() -> int:
                return 1

        self.Device = _Device

    # -- setup
    def init(self) -> None:
        """The emulated device needs no initialisation."""

    def get_version(self) -> tuple[int, int, int]:
        return (0, 0, 0)

    def Stream(self) -> Stream:  # noqa: N802 - pycuda's name
        return Stream()

    def module_from_buffer(self, image: bytes) -> Module:
        return Module(self, image)

    # -- memory
    def mem_alloc(self, size: int) -> Allocation:
        if self.used + size > self.capacity:
            raise MemoryError_("cuMemAlloc failed: out of memory")
        alloc = Allocation(self, int(size))
        self.live[alloc.address] = alloc
        self.used += alloc.size
        return alloc

    def _release(self, alloc: Allocation) -> None:
        self.live.pop(alloc.address, None)
        self.used -= alloc.size

    def mem_get_info(self) -> tuple[int, int]:
        return self.capacity - self.used, self.capacity

    def _check_range(self, pointer: int, nbytes: int, what: str) -> None:
        for alloc in self.live.values():
            if alloc.address <= pointer and pointer + nbytes <= alloc.address + alloc.size:
                return
        raise LaunchError(f"{what} of {nbytes} bytes at {pointer:#x} is outside every live allocation")

    def memcpy_htod(self, dst: int, src: np.ndarray) -> None:
        src = np.ascontiguousarray(src)
        self._check_range(int(dst), src.nbytes, "host-to-device copy")
        ctypes.memmove(int(dst), src.ctypes.data, src.nbytes)

    def memcpy_dtoh(self, dst: np.ndarray, src: int) -> None:
        if not dst.flags.c_contiguous:
            raise Error("memcpy_dtoh needs a contiguous destination")
        self._check_range(int(src), dst.nbytes, "device-to-host copy")
        ctypes.memmove(dst.ctypes.data, int(src), dst.nbytes)

    def memcpy_dtod(self, dst: int, src: int, nbytes: int) -> None:
        self._check_range(int(src), nbytes, "device-to-device copy (source)")
        self._check_range(int(dst), nbytes, "device-to-device copy (destination)")
        ctypes.memmove(int(dst), int(src), nbytes)

    def memset_d8(self, dst: int, value: int, count: int) -> None:
        self._check_range(int(dst), count, "memset")
        ctypes.memset(int(dst), value, count)

    # -- kernels
    def launch(self, fn: Function, grid: tuple, block: tuple, args: list[int]) -> None:
        argv = (ctypes.c_void_p * max(1, len(args)))(*args)
        entry = ctypes.cast(fn.entry, ctypes.c_void_p)
        if fn.module.lib.gc_emu_launch(entry, argv, *grid, *block):
            raise LaunchError(f"kernel {fn.name}: {fn.module.lib.gc_emu_launch_error().decode()}")
        for alloc in self.live.values():
            if not alloc.guards_intact():
                raise LaunchError(
                    f"kernel {fn.name} wrote outside the allocation of {alloc.size} bytes at {alloc.address:#x}"
                )


def install(monkeypatch, capacity: int = 1 << 30) -> EmulatedDriver:
    """Point runtime/cuda.py (and so graphc.cuda) at a fresh emulated GPU
    for one test; monkeypatch restores the real driver afterwards."""
    from graphc import _device_storage
    from graphc.runtime import cuda as rt

    driver = EmulatedDriver(capacity)
    state = rt._Driver()
    state.tried, state.drv, state.count = True, driver, 1
    state.device = driver.Device(0)
    state.context = state.device.retain_primary_context()
    monkeypatch.setattr(rt, "_DRIVER", state)
    monkeypatch.setattr(rt, "_POOL", rt.DevicePool())
    monkeypatch.setattr(rt, "nvcc_compile", host_compile)
    monkeypatch.setattr(rt, "nvcc_version", lambda nvcc=None: "host emulator")
    # Eager CUDA ops keep compiled programs per runtime; none may outlive
    # this emulated device (their buffers live in its memory).
    monkeypatch.setattr(_device_storage, "PROGRAMS", _device_storage._ProgramCache())
    return driver
