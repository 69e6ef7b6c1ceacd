"""Tensor creation: tensor, as_tensor, from_numpy, zeros, ones, full,
arange, linspace, eye and the *_like forms.

Eager creation makes a numpy array. While a trace is active, creation makes
a constant node instead (a scalar CONST expanded to the shape for fills), so
tensors made inside a compiled function are part of its graph, not captured
state."""

from __future__ import annotations

import functools
import math
import numbers

import numpy as np

from graphc import _device_storage
from graphc import _tensor_core as _t
from graphc._checks import int_sizes
from graphc._device import as_device, check_available, get_default_device, placement
from graphc._trace import active as _active_trace
from graphc.errors import at_user_line
from graphc.ir import dtypes
from graphc.ir.dtypes import DType
from graphc.ir.graph import const

Tensor = _t.Tensor


def _check_device(device) -> None:
    if device is not None:
        check_available(as_device(device))


def placed(fn):
    """Label the tensor `fn` creates with its device (`device=`, or the
    template tensor's for the *_like functions; the default device otherwise)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        out = fn(*args, **kwargs)
        dev = kwargs.get("device")
        if dev is None and args and isinstance(args[0], Tensor) and fn.__name__.endswith("_like"):
            out._device = args[0]._device
        else:
            out._device = placement(get_default_device() if dev is None else dev)
        if out._device is not None and out._device.type == "cuda" and isinstance(out._value, np.ndarray):
            # Made on the host, then stored on the GPU (one upload).
            out._value = _device_storage.to_device(out._value, out._device)
        return out

    return wrapper


def _size(size, opname: str) -> tuple:
    """A creation op's `*size` arguments as a tuple of non-negative ints."""
    shape = int_sizes(opname, "size", size)
    if any(d < 0 for d in shape):
        raise RuntimeError(at_user_line(f"Trying to create tensor with negative dimension: {list(shape)}"))
    return shape


def from_array(arr: np.ndarray, requires_grad: bool = False) -> Tensor:
    """A tensor of `arr` (as a constant node under an active trace)."""
    if _active_trace() is not None:
        dtype = dtypes.from_numpy(arr.dtype)
        return Tensor._wrap(const(np.ascontiguousarray(arr), dtype, arr.shape), requires_grad)
    return Tensor._wrap(arr, requires_grad)


def _infer_dtype(data) -> DType:
    """torch.tensor's dtype inference: bool, else int64, else the default
    float dtype; numpy arrays and tensors keep theirs."""
    if isinstance(data, np.ndarray):
        return dtypes.from_numpy(data.dtype)
    if isinstance(data, Tensor):
        return data.dtype
    kinds = set(_leaf_kinds(data))
    if not kinds:
        return _t.get_default_dtype()
    if kinds == {"b"}:
        return dtypes.bool_
    if kinds <= {"b", "i"}:
        return dtypes.int64
    return _t.get_default_dtype()


def _leaf_kinds(data):
    """One of 'b', 'i', 'f' per leaf of nested lists (a tensor counts once)."""
    if isinstance(data, Tensor):
        yield "f" if data.dtype.is_float else ("b" if data.dtype.is_bool else "i")
    elif isinstance(data, (list, tuple)):
        for d in data:
            yield from _leaf_kinds(d)
    elif isinstance(data, (bool, np.bool_)):
        yield "b"
    elif isinstance(data, (numbers.Integral, np.integer)):
        yield "i"
    else:
        yield "f"


def _to_array(data) -> np.ndarray:
    if isinstance(data, Tensor):
        return np.array(data.numpy(force=True))
    if isinstance(data, (list, tuple)):
        return np.array([_to_array(d) for d in data]) if data else np.zeros((0,), np.float32)
    return np.array(data)


@placed
def tensor(
    data,
    *,
    dtype: DType | None = None,
    device=None,
    requires_grad: bool = False,
    pin_memory: bool = False,
) -> Tensor:
    """A new tensor copying `data` (number, nested lists, numpy array, tensor).

    >>> tensor([[1, 2], [3, 4]])
    tensor([[1, 2],
            [3, 4]])
    """
    _check_device(device)
    if isinstance(data, Tensor) and data.is_symbolic:
        out = data.to(dtype) if dtype is not None else data
        return out.clone().detach().requires_grad_(requires_grad)
    dtype = dtype or (data.dtype if isinstance(data, Tensor) else _infer_dtype(data))
    try:
        arr = np.array(_to_array(data), dtype=dtype.np)
    except (ValueError, TypeError) as e:
        raise ValueError(at_user_line(f"tensor(): could not convert data to a {dtype!r} tensor: {e}")) from None
    return from_array(arr, requires_grad)


def as_tensor(data, dtype: DType | None = None, device=None) -> Tensor:
    """Like `tensor`, but shares memory with a numpy array or tensor when
    no conversion is needed."""
    _check_device(device)
    if isinstance(data, Tensor):
        return data if dtype is None else data.to(dtype)
    if isinstance(data, np.ndarray) and (dtype is None or data.dtype == dtype.np) and _active_trace() is None:
        return from_numpy(data)
    return tensor(data, dtype=dtype)


def from_numpy(arr: np.ndarray) -> Tensor:
    """A tensor sharing memory with numpy array `arr`."""
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"expected np.ndarray (got {type(arr).__name__})")
    dtypes.from_numpy(arr.dtype)
    return from_array(arr)


@placed
def full(
    size,
    fill_value,
    *,
    dtype: DType | None = None,
    device=None,
    requires_grad: bool = False,
) -> Tensor:
    """A tensor of `size` filled with `fill_value` (dtype from the value by default)."""
    _check_device(device)
    if isinstance(fill_value, Tensor):
        fill_value = fill_value.item()
    dtype = dtype or _infer_dtype(fill_value)
    return _t.filled(_size((size,), "full"), fill_value, dtype, requires_grad)


@placed
def zeros(
    *size,
    dtype: DType | None = None,
    device=None,
    requires_grad: bool = False,
    out=None,
) -> Tensor:
    """A tensor of zeros (default dtype float32)."""
    _check_device(device)
    return _t.filled(_size(size, "zeros"), 0, dtype or _t.get_default_dtype(), requires_grad)


@placed
def ones(
    *size,
    dtype: DType | None = None,
    device=None,
    requires_grad: bool = False,
    out=None,
) -> Tensor:
    """A tensor of ones (default dtype float32)."""
    _check_device(device)
    return _t.filled(_size(size, "ones"), 1, dtype or _t.get_default_dtype(), requires_grad)


empty = zeros


@placed
def full_like(
    x: Tensor,
    fill_value,
    *,
    dtype: DType | None = None,
    device=None,
    requires_grad: bool = False,
    memory_format=None,
) -> Tensor:
    _check_device(device)
    return _t.filled(tuple(x.shape), fill_value, dtype or x.dtype, requires_grad)


@placed
def zeros_like(
    x: Tensor,
    *,
    dtype: DType | None = None,
    device=None,
    requires_grad: bool = False,
    memory_format=None,
) -> Tensor:
    return full_like(x, 0, dtype=dtype, device=device, requires_grad=requires_grad)


@placed
def ones_like(
    x: Tensor,
    *,
    dtype: DType | None = None,
    device=None,
    requires_grad: bool = False,
    memory_format=None,
) -> Tensor:
    return full_like(x, 1, dtype=dtype, device=device, requires_grad=requires_grad)


empty_like = zeros_like


@placed
def arange(
    start,
    end=None,
    step=1,
    *,
    dtype: DType | None = None,
    device=None,
    requires_grad: bool = False,
) -> Tensor:
    """Values from `start` (default 0) up to `end` (exclusive) by `step`."""
    _check_device(device)
    if end is None:
        start, end = 0, start
    vals = [v.item() if isinstance(v, Tensor) else v for v in (start, end, step)]
    start, end, step = vals
    if step == 0:
        raise RuntimeError(at_user_line("arange: step must be nonzero"))
    if (end - start) * step < 0:
        raise RuntimeError(
            at_user_line(
                f"arange: upper bound and lower bound inconsistent with step sign "
                f"(start={start}, end={end}, step={step})"
            )
        )
    if dtype is None:
        dtype = dtypes.int64 if all(isinstance(v, numbers.Integral) for v in vals) else _t.get_default_dtype()
    count = max(0, math.ceil((end - start) / step))
    arr = (start + np.arange(count, dtype=np.float64) * step) if dtype.is_float else np.arange(start, end, step)
    return from_array(np.asarray(arr).astype(dtype.np), requires_grad)


@placed
def linspace(
    start,
    end,
    steps: int,
    *,
    dtype: DType | None = None,
    device=None,
    requires_grad: bool = False,
) -> Tensor:
    _check_device(device)
    dtype = dtype or _t.get_default_dtype()
    return from_array(
        np.linspace(float(start), float(end), int(steps)).astype(dtype.np),
        requires_grad,
    )


@placed
def logspace(
    start,
    end,
    steps: int,
    base: float = 10.0,
    *,
    dtype: DType | None = None,
    device=None,
) -> Tensor:
    dtype = dtype or _t.get_default_dtype()
    return from_array(np.logspace(float(start), float(end), int(steps), base=base).astype(dtype.np))


@placed
def eye(
    n: int,
    m: int | None = None,
    *,
    dtype: DType | None = None,
    device=None,
    requires_grad: bool = False,
) -> Tensor:
    """The identity matrix (n x m)."""
    _check_device(device)
    dtype = dtype or _t.get_default_dtype()
    return from_array(np.eye(n, n if m is None else m, dtype=dtype.np), requires_grad)


@placed
def scalar_tensor(value, *, dtype: DType | None = None, device=None) -> Tensor:
    return full((), value, dtype=dtype or _t.get_default_dtype())
