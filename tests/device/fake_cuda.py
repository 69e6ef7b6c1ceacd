"""A simulated CUDA runtime for testing the frontend without a GPU.

It implements the runtime interface CUDA tensors use (graphc/_device_storage.py;
runtime/cuda.py implements it for real GPUs): `device_count`,
`synchronize`, `allocate`/`free`, `copy_to_device`/`copy_to_host`/
`copy_on_device`, and `compile_graph` returning an executable with
`run_device(buffers)`. "Device memory" is one host byte array per
allocation, and programs run on the reference interpreter (or the llvm
backend). Every allocation, transfer, compilation and run is counted so
tests can check what the frontend asks of the device.
"""

from __future__ import annotations

import itertools

import numpy as np

from graphc.runtime import backends, interpreter
from graphc.runtime.cuda import CudaOutOfMemoryError


class FakeBuffer:
    """One simulated allocation; `int(buf)` is a fake device address."""

    _addresses = itertools.count(0x7F0000000000, 0x1000)

    def __init__(self, nbytes: int):
        self.size = nbytes
        self.mem = np.zeros(max(nbytes, 1), dtype=np.uint8)
        self.address = next(self._addresses)
        self.freed = False

    def __int__(self) -> int:
        return self.address

    def view(self, shape, dtype) -> np.ndarray:
        dtype = np.dtype(dtype)
        n = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        return self.mem[:n].view(dtype).reshape(shape)


class FakeCudaRuntime:
    """Counts: `allocs`, `frees`, `live_bytes`, `htod`/`dtoh` (number of
    host<->device copies) and `htod_bytes`/`dtoh_bytes`, `dtod`, `compiled`
    (the graphs compiled), `runs`, `syncs`. `memory_limit` (bytes) makes an
    allocation beyond it fail like a full GPU."""

    def __init__(self, memory_limit: int | None = None, executor: str = "interp"):
        self.memory_limit = memory_limit
        self.executor = executor
        self.allocs = self.frees = self.live_bytes = 0
        self.htod = self.dtoh = self.htod_bytes = self.dtoh_bytes = self.dtod = 0
        self.compiled: list = []
        self.runs = self.syncs = 0
        self.live: dict[int, FakeBuffer] = {}

    # -- availability ----------------------------------------------------
    def device_count(self) -> int:
        return 1

    def unavailable_reason(self):
        return None

    def synchronize(self) -> None:
        self.syncs += 1

    # -- memory ----------------------------------------------------------
    def allocate(self, nbytes: int) -> FakeBuffer:
        nbytes = int(nbytes)
        if self.memory_limit is not None and self.live_bytes + nbytes > self.memory_limit:
            raise CudaOutOfMemoryError(
                f"out of GPU memory: requested {nbytes} bytes, "
                f"{self.memory_limit - self.live_bytes} bytes free of {self.memory_limit}"
            )
        buf = FakeBuffer(nbytes)
        self.allocs += 1
        self.live_bytes += nbytes
        self.live[buf.address] = buf
        return buf

    def free(self, buf: FakeBuffer) -> None:
        assert not buf.freed, "double free of a device buffer"
        buf.freed = True
        self.frees += 1
        self.live_bytes -= buf.size
        del self.live[buf.address]

    def _check(self, buf: FakeBuffer, nbytes: int) -> None:
        assert isinstance(buf, FakeBuffer), f"not a device buffer: {type(buf).__name__}"
        assert not buf.freed, "use of a freed device buffer"
        assert nbytes <= buf.size, f"{nbytes} bytes do not fit a {buf.size}-byte buffer"

    def copy_to_device(self, buf: FakeBuffer, array: np.ndarray) -> None:
        array = np.ascontiguousarray(array)
        self._check(buf, array.nbytes)
        self.htod += 1
        self.htod_bytes += array.nbytes
        buf.mem[: array.nbytes] = array.reshape(-1).view(np.uint8)

    def copy_to_host(self, out: np.ndarray, buf: FakeBuffer) -> np.ndarray:
        self._check(buf, out.nbytes)
        self.dtoh += 1
        self.dtoh_bytes += out.nbytes
        out[...] = buf.view(out.shape, out.dtype)
        return out

    def copy_on_device(self, dst: FakeBuffer, src: FakeBuffer, nbytes: int) -> None:
        self._check(dst, nbytes)
        self._check(src, nbytes)
        self.dtod += 1
        dst.mem[:nbytes] = src.mem[:nbytes]

    # -- programs --------------------------------------------------------
    def compile_graph(self, graph, aliases=None) -> FakeExecutable:
        self.compiled.append(graph)
        return FakeExecutable(self, graph, aliases or {})

    def counts(self) -> dict:
        """A snapshot of the transfer and run counters."""
        return {k: getattr(self, k) for k in ("allocs", "htod", "dtoh", "htod_bytes", "dtoh_bytes", "dtod", "runs")}


class FakeExecutable:
    """A compiled program on the fake device: reads its inputs from device
    buffers, runs on the host executor, writes each output into a new
    device buffer (or, aliased, into its input's buffer)."""

    def __init__(self, rt: FakeCudaRuntime, graph, aliases):
        self.rt = rt
        self.graph = graph
        self.aliases = dict(aliases)
        self._llvm = backends.compile_graph(graph, "llvm") if rt.executor == "llvm" else None

    def run_device(self, buffers) -> list:
        rt, graph = self.rt, self.graph
        assert len(buffers) == len(graph.inputs), "wrong number of inputs"
        arrays = []
        for node, buf in zip(graph.inputs, buffers):
            rt._check(buf, node.type.nbytes)
            arrays.append(buf.view(node.shape, node.dtype.np).copy())  # device-side read
        rt.runs += 1
        outs = self._llvm(arrays) if self._llvm is not None else interpreter.run(graph, arrays)
        result = []
        for i, (node, value) in enumerate(zip(graph.outputs, outs)):
            value = np.ascontiguousarray(np.asarray(value, dtype=node.dtype.np).reshape(node.shape))
            buf = buffers[self.aliases[i]] if i in self.aliases else rt.allocate(value.nbytes)
            buf.mem[: value.nbytes] = value.reshape(-1).view(np.uint8)  # device-side write
            result.append(buf)
        return result
