"""CUDA tensors: device storage and eager dispatch on the GPU.

A CUDA tensor's `_value` is a `DeviceArray`: one device allocation owned
by the registered CUDA runtime (`graphc.cuda._runtime`), plus the shape,
dtype and device. Nothing here touches host memory except the explicit
transfers (`to_device`, `to_host`).

Eager ops on CUDA tensors run as compiled single-op programs: `run_op`
builds a graph of INPUT nodes and the one op, compiles it once per
(op, attrs, operand types) with the runtime's `compile_graph` and runs it
on the operands' device buffers (`Executable.run_device`), so a chain of
eager ops never copies data to the host.

The runtime interface this module uses (runtime/cuda.py implements it;
tests/device/fake_cuda.py simulates it with host memory):

- `device_count()`, `synchronize()`
- `allocate(nbytes) -> buffer` (raises CudaOutOfMemoryError), `free(buffer)`
- `copy_to_device(buffer, array)`, `copy_to_host(array, buffer)`,
  `copy_on_device(dst, src, nbytes)`
- `compile_graph(graph, aliases) -> executable` whose
  `run_device(buffers) -> buffers` takes the inputs' buffers (graph-input
  order) and returns one new buffer per output, or the input's own buffer
  for an aliased output (written in place).
"""

from __future__ import annotations

import math

import numpy as np

from graphc.errors import ShapeError, at_user_line
from graphc.ir import dtypes
from graphc.ir.graph import Graph, IRTypeError, input_node, node
from graphc.ir.ops import Op


def runtime():
    """The registered CUDA runtime (graphc's own unless one was installed)."""
    from graphc import cuda

    return cuda._rt()


class DeviceArray:
    """The data of a CUDA tensor: a device allocation, its shape and numpy
    dtype, and the device. The allocation returns to the runtime when the
    last reference goes."""

    __slots__ = ("__weakref__", "buffer", "device", "dtype", "runtime", "shape")

    def __init__(self, buffer, shape, dtype, device, rt=None):
        self.buffer = buffer
        self.shape = tuple(int(d) for d in shape)
        self.dtype = np.dtype(dtype)
        self.device = device
        self.runtime = rt if rt is not None else runtime()

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    def copy(self) -> DeviceArray:
        """A new allocation holding the same data (copied on the device)."""
        out = empty(self.shape, self.dtype, self.device, self.runtime)
        if self.nbytes:
            self.runtime.copy_on_device(out.buffer, self.buffer, self.nbytes)
        return out

    def __reduce__(self):
        # Pickling (graphc.save, deepcopy through pickle) goes via the host.
        return (_unpickle, (to_host(self), str(self.device)))

    def __repr__(self) -> str:
        return f"DeviceArray(shape={self.shape}, dtype={self.dtype}, device='{self.device}')"

    def __del__(self):
        try:
            self.runtime.free(self.buffer)
        except Exception:  # noqa: BLE001, S110 - interpreter shutdown or a dead context
            pass


def _unpickle(array: np.ndarray, device: str) -> DeviceArray:
    from graphc._device import placement

    return to_device(array, placement(device))


def empty(shape, dtype, device, rt=None) -> DeviceArray:
    """An uninitialised device array."""
    rt = rt if rt is not None else runtime()
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    return DeviceArray(rt.allocate(nbytes), shape, dtype, device, rt)


def to_device(array, device) -> DeviceArray:
    """Copy a host array to `device` (one host-to-device transfer)."""
    rt = runtime()
    array = _c_order(array)
    out = empty(array.shape, array.dtype, device, rt)
    if array.nbytes:
        rt.copy_to_device(out.buffer, array)
    return out


def to_host(value: DeviceArray) -> np.ndarray:
    """Copy a device array to a new host array (one device-to-host transfer)."""
    out = np.empty(value.shape, value.dtype)
    if out.nbytes:
        value.runtime.copy_to_host(out, value.buffer)
    return out


def write(target: DeviceArray, value) -> None:
    """Overwrite `target`'s data with `value` (a device array or host array
    of the same shape and dtype) without reallocating."""
    if isinstance(value, DeviceArray):
        if value.buffer is not target.buffer and target.nbytes:
            target.runtime.copy_on_device(target.buffer, value.buffer, target.nbytes)
        return
    arr = _c_order(np.broadcast_to(np.asarray(value, dtype=target.dtype), target.shape))
    if arr.nbytes:
        target.runtime.copy_to_device(target.buffer, arr)


def _c_order(array) -> np.ndarray:
    # np.ascontiguousarray would turn a 0-d array into a 1-d one.
    array = np.asarray(array)
    return array if array.flags.c_contiguous else array.copy(order="C")


def is_device(value) -> bool:
    return isinstance(value, DeviceArray)


# ---------------------------------------------------------------------------
# eager dispatch


class _ProgramCache:
    """Compiled single-op programs, keyed by the op's node (hash-consed, so
    equal op, attrs and operand types give the same key). Tied to one
    runtime: installing another empties it."""

    def __init__(self):
        self.runtime = None
        self.programs: dict = {}

    def get(self, rt, out_node, inputs):
        if rt is not self.runtime:
            self.runtime, self.programs = rt, {}
        exe = self.programs.get(out_node)
        if exe is None:
            graph = Graph(inputs, [out_node], name=f"eager_{out_node.op.value}")
            exe = self.programs[out_node] = rt.compile_graph(graph, {})
        return exe


PROGRAMS = _ProgramCache()


def device_operand(value, device) -> DeviceArray:
    """An op operand as a device array on `device`: host values (CPU
    0-d tensors, constants made by ops) are uploaded; a broadcast host view
    (a Python number expanded to a shape) uploads only its distinct
    elements and expands on the device."""
    if isinstance(value, DeviceArray):
        return value
    arr = np.asarray(value)
    if arr.size > 1 and 0 in arr.strides:
        compact = arr[tuple(slice(0, 1) if s == 0 else slice(None) for s in arr.strides)]
        return run(Op.EXPAND, [to_device(compact, device)], {"shape": arr.shape}, device)
    return to_device(arr, device)


def run(op: Op, values, attrs: dict, device) -> DeviceArray:
    """Run primitive `op` on device arrays `values` (eagerly, on `device`)."""
    rt = runtime()
    values = [device_operand(v, device) for v in values]
    inputs = [input_node(f"x{i}", v.shape, dtypes.from_numpy(v.dtype)) for i, v in enumerate(values)]
    try:
        out = node(op, *inputs, **attrs)
    except IRTypeError as e:
        raise ShapeError(at_user_line(str(e))) from None
    exe = PROGRAMS.get(rt, out, inputs)
    (buffer,) = exe.run_device([v.buffer for v in values])
    return DeviceArray(buffer, out.shape, out.dtype.np, device, rt)


def value_device(value):
    """The device of a value (a device array's, else the CPU)."""
    from graphc._device import CPU

    return value.device if isinstance(value, DeviceArray) else CPU
