"""The core of `graphc.Tensor`: storage, the one dispatch point, autograd
and device bookkeeping. The op modules import this module; graphc/_tensor.py
builds the public class from it and the method mixins.

A tensor holds `_value`: a numpy array when eager, or an IR `Node` while a
function is being traced. Every op decomposes into IR primitives and passes
through one function, `Tensor._emit(op, srcs, attrs)`:

- under an active trace it builds a node (concrete operands are lifted to
  graph inputs by the trace);
- otherwise it runs the primitive's numpy reference rule;
- when grad mode is on and an operand requires grad it records a backward
  record on the output (`grad_fn`).

The ops themselves live in graphc/_elementwise.py, _reductions.py,
_shape.py, _indexing.py, _creation.py and their neighbours, each importing
this module and never the public class; graphc/_methods.py turns them into
methods. `register_tensor_class` (called once by graphc/_tensor.py) makes the
tensors built here instances of the public class.
"""

from __future__ import annotations

import copy
import math
import weakref
from time import perf_counter

import numpy as np

from graphc import _device_storage, _layout, _trace, autograd
from graphc._device import CPU, placement
from graphc._device_storage import DeviceArray
from graphc._trace import active as _active_trace
from graphc.errors import (
    DeviceError,
    DivisionByZeroError,
    DTypeError,
    GraphcError,
    OutOfMemoryError,
    ShapeError,
    TraceError,
    at_user_line,
    user_frame,
)
from graphc.ir import dtypes
from graphc.ir.dtypes import DType
from graphc.ir.graph import IRTypeError, Node, TensorType, const, node
from graphc.ir.ops import NON_DIFFERENTIABLE, Op
from graphc.ir.rules import evaluate, infer_type
from graphc.runtime import host_memory
from graphc.runtime import profiling as _profiling

_new_object = object.__new__

_default_dtype = dtypes.float32


def get_default_dtype() -> DType:
    """The dtype of tensors made from Python floats (float32 unless set)."""
    return _default_dtype


def set_default_dtype(d: DType) -> None:
    """Set the default floating-point dtype (float32 or float64)."""
    global _default_dtype
    if not isinstance(d, DType) or not d.is_float:
        raise TypeError(f"only floating-point types are supported as the default type, got {d!r}")
    _default_dtype = d


def _escaped(what: str) -> GraphcError:
    return GraphcError(
        at_user_line(
            f"{what}: this tensor is symbolic (it was created while tracing a function) and escaped the trace; "
            "return it from the traced function instead of keeping it elsewhere"
        )
    )


def _data_dependent(what: str, instead: str) -> TraceError:
    return TraceError(
        f"{what} on a traced tensor at {user_frame()}: the value is not known while tracing, so Python code "
        f"cannot depend on it. {instead}"
    )


class Tensor:
    """A multi-dimensional array that can record operations for autograd.

    Build tensors with `graphc.tensor(data)`, `graphc.zeros(...)` and
    friends. `Tensor(data)` makes a float tensor from data and
    `Tensor(2, 3)` a 2x3 float tensor of zeros.

    >>> import graphc
    >>> x = graphc.tensor([1.0, 2.0], requires_grad=True)
    >>> (x * x).sum().backward()
    >>> x.grad
    tensor([2., 4.])
    """

    # Make numpy defer to Tensor's reflected operators (np.float32(2) * t).
    __array_ufunc__ = None
    __array_priority__ = 1000

    def __init__(self, *args, requires_grad: bool = False):
        if len(args) == 1 and not isinstance(args[0], int):
            arr = np.array(
                args[0].numpy() if isinstance(args[0], Tensor) else args[0],
                dtype=_default_dtype.np,
            )
        else:
            shape = args[0] if len(args) == 1 and isinstance(args[0], (tuple, list)) else args
            arr = np.zeros(tuple(int(d) for d in shape), dtype=_default_dtype.np)
        self._init(arr, requires_grad)

    def _init(self, value, requires_grad: bool = False) -> None:
        self._value = value
        self.grad_fn = None
        self._grad = None
        self._requires_grad = False
        self._vc = None  # the version counter, made on first need
        self._alias_of = None
        # None: placed nowhere in particular (constants made by ops, values
        # inside autograd); reported as the CPU. Device data knows its device.
        self._device = value.device if isinstance(value, DeviceArray) else None
        if requires_grad:
            self.requires_grad = True

    @classmethod
    def _wrap(cls, value, requires_grad: bool = False) -> Tensor:
        """A tensor holding `value` (numpy array or Node) without copying."""
        t = object.__new__(Tensor)
        t._init(value, requires_grad)
        return t

    @staticmethod
    def _from_numpy(value) -> Tensor:
        """`Tensor._wrap(value)` for a numpy array (a compiled program's
        result): the same fields, set without _init's checks."""
        t = _new_object(Tensor)
        t._value = value
        t.grad_fn = None
        t._grad = None
        t._requires_grad = False
        t._vc = None
        t._alias_of = None
        t._device = None
        return t

    @staticmethod
    def _make_subclass(cls, data: Tensor, require_grad: bool = False) -> Tensor:  # noqa: PLW0211 (torch's signature)
        """An instance of subclass `cls` sharing `data`'s value (how
        nn.Parameter wraps a tensor)."""
        t = object.__new__(cls)
        t._init(data._value if isinstance(data, Tensor) else np.asarray(data), False)
        t.requires_grad = require_grad
        return t

    # -- the one dispatch point --------------------------------------------

    @staticmethod
    def _emit(op: Op, srcs, attrs: dict) -> Tensor:
        """Apply primitive `op` to tensors `srcs` (the value protocol)."""
        tracer = _active_trace()
        if tracer is not None:
            vals = [tracer.value_of(s) for s in srcs]
            try:
                value = node(op, *vals, **attrs)
            except IRTypeError as e:
                raise ShapeError(at_user_line(str(e))) from None
            dev = _common_device(op, srcs)
        else:
            dev = _common_device(op, srcs)
            session = _profiling.ACTIVE  # the one check when no profiler runs
            if session is not None:
                start = perf_counter()
            if dev is not None and dev.type == "cuda":
                value = _device_storage.run(op, [s._value for s in srcs], attrs, dev)
            else:
                value = _eval(op, [s._value for s in srcs], attrs)
            if session is not None:
                _profiling.record_eager(session, op, [s._value for s in srcs], value, start)
        out = Tensor._wrap(value)
        out._device = dev
        if op in _layout.VIEW_OPS and _layout.shares_data(srcs[0]._value, value):
            out._vc = srcs[0]._counter()
        differentiable = op not in NON_DIFFERENTIABLE and out.dtype.is_float
        if autograd._grad_enabled and differentiable and any(s._requires_grad for s in srcs):
            autograd.record(op, attrs, srcs, out)
        return out

    # -- basic properties -------------------------------------------------

    @property
    def shape(self) -> Size:
        return Size(self._value.shape)

    @property
    def dtype(self) -> DType:
        v = self._value
        return v.dtype if isinstance(v, Node) else dtypes.from_numpy(v.dtype)

    @property
    def device(self):
        return self._device or CPU

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"

    @property
    def is_cpu(self) -> bool:
        return self.device.type == "cpu"

    # graphc has no such devices or layouts: these are always False.
    is_meta = is_mps = is_xpu = is_sparse = is_quantized = property(lambda self: False)

    @property
    def ndim(self) -> int:
        return len(self._value.shape)

    def dim(self) -> int:
        return len(self._value.shape)

    ndimension = dim

    def size(self, dim: int | None = None):
        if dim is None:
            return self.shape
        return self._value.shape[_norm_dim(dim, self.ndim, "size")]

    def numel(self) -> int:
        n = 1
        for d in self._value.shape:
            n *= d
        return n

    nelement = numel

    def element_size(self) -> int:
        return self.dtype.itemsize

    def is_floating_point(self) -> bool:
        return self.dtype.is_float

    def is_contiguous(self, memory_format=None) -> bool:
        """True when the data is laid out row-major (see graphc/_layout.py)."""
        return _layout.is_contiguous(self._value)

    def __getattr__(self, name: str):
        # Runs only when normal lookup fails: a PyTorch Tensor attribute
        # graphc lacks gets a message that says so (still an AttributeError).
        from graphc._missing import missing

        raise missing("Tensor", name, dir(type(self)))

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._value.shape[0]

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self._value.shape[0]))

    def __hash__(self) -> int:
        return id(self)

    def __getstate__(self) -> dict:
        # Pickle the data and leaf attributes only: records and aliases are
        # process-local bookkeeping.
        self._concrete("pickle", "Pickle tensors outside the compiled function.")
        state = dict(self.__dict__)
        state.update(grad_fn=None, _alias_of=None, _vc=None)
        state["_requires_grad"] = self._requires_grad and self.grad_fn is None
        return state

    def __deepcopy__(self, memo) -> Tensor:
        if self.grad_fn is not None:
            raise RuntimeError(
                "Only Tensors created explicitly by the user (graph leaves) support the deepcopy protocol "
                "at the moment. "
                "If you were attempting to deepcopy a module, this may be because of a torch.nn.utils.weight_norm usage"
            )
        value = self._value
        if not isinstance(value, DeviceArray):
            value = self._concrete("deepcopy", "Copy tensors outside the compiled function.")
        t = object.__new__(type(self))
        memo[id(self)] = t
        t.__dict__.update(
            {k: copy.deepcopy(v, memo) for k, v in self.__dict__.items() if k not in ("_value", "_alias_of", "_vc")}
        )
        t._value = value.copy()
        t._alias_of = None
        t._vc = None
        return t

    # -- version counter ------------------------------------------------------

    def _counter(self) -> autograd.VersionCounter:
        """This tensor's version counter (shared with the tensors viewing its data)."""
        counter = self._vc
        if counter is None:
            counter = self._vc = autograd.VersionCounter()
        return counter

    @property
    def _version(self) -> int:
        """How many in-place modifications this tensor's data has had (torch's `_version`)."""
        return 0 if self._vc is None else self._vc.version

    def _bump_version(self, opname: str) -> None:
        self._counter().bump(opname)

    @property
    def is_symbolic(self) -> bool:
        """True while this tensor stands for a value in a trace."""
        return isinstance(self._value, Node)

    # -- autograd attributes ----------------------------------------------

    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, flag: bool) -> None:
        if self.grad_fn is not None and not flag:
            raise RuntimeError(
                "you can only change requires_grad flags of leaf variables. If you want to use a computed "
                "variable in a subgraph that doesn't require differentiation use var_no_grad = var.detach()."
            )
        if flag and not self.dtype.is_float:
            raise RuntimeError(f"only Tensors of floating point dtype can require gradients (got {self.dtype!r})")
        self._requires_grad = bool(flag)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        self.requires_grad = requires_grad
        return self

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    @property
    def grad(self):
        return self._grad

    @grad.setter
    def grad(self, value) -> None:
        if value is not None:
            if not isinstance(value, Tensor):
                raise TypeError(f"assigned grad expected to be a Tensor or None but got {type(value).__name__}")
            if value.dtype is not self.dtype:
                raise RuntimeError(
                    at_user_line(
                        f"assigned grad has data of a different type: grad {value.dtype.name}, tensor {self.dtype.name}"
                    )
                )
            if tuple(value.shape) != tuple(self.shape):
                raise RuntimeError(
                    at_user_line(
                        f"assigned grad has data of a different size: grad {list(value.shape)}, "
                        f"tensor {list(self.shape)}"
                    )
                )
        self._grad = value

    def retain_grad(self) -> None:
        """Keep this non-leaf tensor's gradient in `.grad` after backward."""
        if self.grad_fn is None:
            if not self._requires_grad:
                raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
            return
        self.grad_fn.retain = weakref.ref(self)

    def register_hook(self, hook):
        """Call `hook(grad)` each time this tensor's gradient is computed; a
        non-None return value replaces the gradient. Returns a handle whose
        `remove()` unregisters the hook."""
        return autograd.register_hook(self, hook)

    def register_post_accumulate_grad_hook(self, hook):
        """Call `hook(self)` after backward accumulates into this leaf's `.grad`."""
        return autograd.register_post_accumulate_grad_hook(self, hook)

    @property
    def retains_grad(self) -> bool:
        return self.grad_fn is not None and self.grad_fn.retain is not None and self.grad_fn.retain() is self

    def backward(self, gradient=None, retain_graph=None, create_graph: bool = False, inputs=None) -> None:
        """Accumulate d(self)/d(leaf) into each leaf's `.grad`."""
        autograd.backward(self, gradient, retain_graph, create_graph, inputs)

    def detach(self) -> Tensor:
        """A tensor sharing this one's data (and version counter), cut from
        the autograd graph."""
        t = self._alias()
        t._vc = self._counter()
        return t

    def _alias(self) -> Tensor:
        t = Tensor._wrap(self._value)
        t._alias_of = self._alias_of if self._alias_of is not None else self
        return t

    def detach_(self) -> Tensor:
        if self.grad_fn is not None and self.grad_fn.retain is not None:
            self.grad_fn.retain = None
        self.grad_fn = None
        self._requires_grad = False
        return self

    @property
    def data(self) -> Tensor:
        """The data as a tensor outside autograd. Unlike `detach()`, its
        in-place changes are not counted in this tensor's version, as in
        torch: autograd cannot see them."""
        return self._alias()

    @data.setter
    def data(self, other: Tensor) -> None:
        if isinstance(other, Tensor):
            self._value, self._device = other._value, other._device
        else:
            self._value = np.asarray(other)

    # -- leaving the tensor world -----------------------------------------

    def _concrete(self, what: str, instead: str) -> np.ndarray:
        """The data as a host array (a CUDA tensor's is copied to the host)."""
        v = self._value
        tracer = _active_trace()
        if isinstance(v, Node):
            if tracer is not None:
                raise _data_dependent(what, instead)
            raise _escaped(what)
        if tracer is not None:
            tracer.read_concrete(self)  # the value becomes a constant of the trace
        if isinstance(v, DeviceArray):
            return _device_storage.to_host(v)
        return v

    def numpy(self, force: bool = False) -> np.ndarray:
        """The data as a numpy array, sharing memory with this tensor."""
        if self._requires_grad and not force:
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead.")
        if isinstance(self._value, DeviceArray) and not force:
            raise TypeError(
                f"can't convert {self.device.type} device type tensor to numpy. Use Tensor.cpu() to copy the "
                "tensor to host memory first."
            )
        return self._concrete(
            "numpy()",
            "Return the tensor from the compiled function and convert it outside.",
        )

    def __array__(self, dtype=None, copy=None):
        if isinstance(self._value, DeviceArray):
            raise TypeError(
                f"can't convert {self.device.type} device type tensor to numpy. Use Tensor.cpu() to copy the "
                "tensor to host memory first."
            )
        arr = self._concrete("np.asarray()", "Convert the result outside the compiled function.")
        return arr if dtype is None else arr.astype(dtype)

    def item(self):
        """The value of a one-element tensor as a Python number."""
        arr = self._concrete(
            "item()",
            "Return the tensor and call .item() outside the compiled function.",
        )
        if arr.size != 1:
            raise RuntimeError(f"a Tensor with {arr.size} elements cannot be converted to Scalar")
        return arr.reshape(()).item()

    def tolist(self):
        return self._concrete("tolist()", "Call .tolist() outside the compiled function.").tolist()

    def __bool__(self) -> bool:
        arr = self._concrete(
            "bool() (a Python `if`/`while`/`and`/`or` on a tensor)",
            "Use graphc.where(cond, a, b) to choose values elementwise, "
            "or move the branch out of the compiled function.",
        )
        if arr.size != 1:
            raise RuntimeError(
                f"Boolean value of Tensor with more than one value is ambiguous (shape {list(arr.shape)})"
            )
        return bool(arr.reshape(()))

    def __int__(self) -> int:
        return int(self._item_for("int()"))

    def __float__(self) -> float:
        return float(self._item_for("float()"))

    def __index__(self) -> int:
        if not (self.dtype.is_int or self.dtype.is_bool):
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self._item_for("index"))

    def _item_for(self, what: str):
        arr = self._concrete(what, "Return the tensor and convert it outside the compiled function.")
        if arr.size != 1:
            raise RuntimeError(f"only one element tensors can be converted to Python scalars (shape {list(arr.shape)})")
        return arr.reshape(()).item()

    def __repr__(self) -> str:
        from graphc._repr import format_tensor

        return format_tensor(self)

    def __format__(self, spec: str) -> str:
        if self.ndim == 0 and not isinstance(self._value, Node):
            return format(self.item(), spec)
        return format(repr(self), spec)

    # -- dtype and device -------------------------------------------------

    def to(self, *args, **kwargs) -> Tensor:
        """Convert dtype and/or device: `.to(dtype)`, `.to(device)`,
        `.to(other_tensor)`, `.to(device, dtype)`; `non_blocking` and `copy`
        are accepted."""
        dtype, dev = kwargs.get("dtype"), kwargs.get("device")
        for a in args:
            if isinstance(a, DType):
                dtype = a
            elif isinstance(a, Tensor):
                dtype, dev = a.dtype, a.device
            elif a is not None:
                dev = a
        dev = None if dev is None else placement(dev)
        out = self if dtype is None or dtype is self.dtype else _cast(self, dtype)
        moved = dev is not None and dev != self.device
        if moved and not out.is_symbolic:
            return _move(out, dev)
        if moved or (kwargs.get("copy") and out is self):
            out = out.clone()
        if moved:
            out._device = dev
        return out

    def cpu(self) -> Tensor:
        return self.to("cpu")

    def cuda(self, device=None, non_blocking: bool = False) -> Tensor:
        return self.to("cuda" if device is None else device)

    def type(self, dtype=None):
        if dtype is None:
            return f"graphc.{_TYPE_NAMES.get(self.dtype.name, self.dtype.name)}"
        return self.to(dtype)

    def type_as(self, other: Tensor) -> Tensor:
        return self.to(other.dtype)

    def float(self) -> Tensor:
        return self.to(dtypes.float32)

    def double(self) -> Tensor:
        return self.to(dtypes.float64)

    def half(self) -> Tensor:
        return self.to(dtypes.float16)

    def long(self) -> Tensor:
        return self.to(dtypes.int64)

    def int(self) -> Tensor:
        return self.to(dtypes.int32)

    def short(self) -> Tensor:
        return self.to(dtypes.int16)

    def byte(self) -> Tensor:
        return self.to(dtypes.uint8)

    def bool(self) -> Tensor:
        return self.to(dtypes.bool_)

    # -- in-place machinery -------------------------------------------------

    def _assign(self, result: Tensor, opname: str) -> Tensor:
        """Make `self` hold `result` (an in-place op): write into the array
        when eager and nothing is recorded, else rebind the value and
        take over the record. Under a trace the rebinding is reported as a
        state write."""
        if tuple(result.shape) != tuple(self.shape):
            raise ShapeError(
                at_user_line(
                    f"{opname}: output with shape {list(self.shape)} "
                    f"doesn't match the broadcast shape {list(result.shape)}"
                )
            )
        recording = autograd._grad_enabled and (self._requires_grad or result._requires_grad)
        if recording and self.grad_fn is None and self._requires_grad:
            raise RuntimeError(
                at_user_line(f"{opname}: a leaf Variable that requires grad is being used in an in-place operation.")
            )
        if result.dtype is not self.dtype:
            if self.dtype.is_int and result.dtype.is_float or self.dtype.is_bool and not result.dtype.is_bool:
                raise DTypeError(
                    at_user_line(
                        f"{opname}: result type {result.dtype!r} "
                        f"can't be cast to the desired output type {self.dtype!r}"
                    )
                )
            with autograd.set_grad_enabled(recording):
                result = _cast(result, self.dtype)
        self._bump_version(opname)
        tracer = _active_trace()
        if tracer is not None:
            tracer.write(self, result._value)
        elif recording or not _write_into(self._value, result._value):
            self._value = result._value
            if self._alias_of is not None and not recording:
                self._alias_of._value = result._value
        if recording:
            self.grad_fn = result.grad_fn
            self._requires_grad = True
            # A Record points at its output (an OutputSlot's node keeps no
            # output: nothing to repoint).
            if isinstance(self.grad_fn, autograd.Record):
                self.grad_fn.adopt_output(self)
        return self

    @staticmethod
    def _ones_like(t: Tensor) -> Tensor:
        return filled_like(t, 1)

    @staticmethod
    def _zeros_like(t: Tensor) -> Tensor:
        return filled_like(t, 0)


def _common_device(op: Op, srcs):
    """The device of an op's output; operands on two devices are an error
    (CPU 0-d tensors mix with anything, as in torch)."""
    found = None
    for s in srcs:
        d = s._device
        if d is None or (d.type == "cpu" and s.ndim == 0):
            continue
        if found is None:
            found = d
        elif d != found:
            raise DeviceError(
                at_user_line(
                    f"{op.value}: Expected all tensors to be on the same device, but found at least two devices, "
                    f"{found} and {d}!"
                )
            )
    return found


def _write_into(target, value) -> bool:
    """Copy `value` into numpy array (or device array) `target` in place;
    False when it cannot be (read-only, e.g. a constant), so the caller
    rebinds instead."""
    if isinstance(target, DeviceArray):
        _device_storage.write(target, value)
        return True
    if isinstance(value, DeviceArray):
        value = _device_storage.to_host(value)
    if not isinstance(target, np.ndarray) or not target.flags.writeable:
        if isinstance(target, np.ndarray) and 0 in target.strides and target.size > 1:
            raise RuntimeError(
                "unsupported operation: more than one element of the written-to tensor refers to a single "
                "memory location. Please clone() the tensor before performing the operation."
            )
        return False
    np.copyto(target, value)
    return True


def _eval(op: Op, vals, attrs: dict):
    """Eager execution of one primitive with its shape rule as the check."""
    for v in vals:
        if isinstance(v, Node):
            raise _escaped(op.value)
        if isinstance(v, DeviceArray):
            raise DeviceError(
                at_user_line(f"{op.value}: a {v.device} tensor reached the CPU evaluator (device bookkeeping bug)")
            )
    try:
        out_type = infer_type(op, [TensorType(v.shape, dtypes.from_numpy(v.dtype)) for v in vals], attrs)
    except IRTypeError as e:
        raise ShapeError(at_user_line(str(e))) from None
    if op is not Op.EXPAND:  # EXPAND is a view; everything else allocates its result
        check_host_allocation(out_type.nbytes, f"{op.value} of shape {list(out_type.shape)}")
    try:
        result = np.asarray(evaluate(op, vals, attrs), dtype=out_type.dtype.np)
    except DivisionByZeroError as e:
        raise DivisionByZeroError(at_user_line(str(e))) from None
    if result.shape != out_type.shape:
        result = result.reshape(out_type.shape)
    return result


def check_host_allocation(nbytes: int, what: str) -> None:
    """OutOfMemoryError, naming the user's line, if an eager result of
    `nbytes` cannot fit in the memory available (runtime/host_memory.py)."""
    try:
        host_memory.check_allocation(nbytes, what)
    except OutOfMemoryError as e:
        raise OutOfMemoryError(at_user_line(str(e))) from None


def _norm_dim(dim: int, ndim: int, opname: str = "dim") -> int:
    """Wrap a negative dim; raise IndexError like torch when out of range."""
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(
            at_user_line(
                f"{opname}: Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {dim})"
            )
        )
    return dim % n if ndim else 0


class Size(tuple):
    """A tensor's shape: a tuple of ints printed as `graphc.Size([2, 3])`."""

    def __repr__(self) -> str:
        return f"graphc.Size([{', '.join(str(d) for d in self)}])"

    def numel(self) -> int:
        n = 1
        for d in self:
            n *= d
        return n


_TYPE_NAMES = {
    "float32": "FloatTensor",
    "float64": "DoubleTensor",
    "float16": "HalfTensor",
    "int64": "LongTensor",
    "int32": "IntTensor",
    "int16": "ShortTensor",
    "int8": "CharTensor",
    "uint8": "ByteTensor",
    "bool": "BoolTensor",
}


def _move(t: Tensor, dev) -> Tensor:
    """`t` copied to device `dev` (Tensor.to): a differentiable copy whose
    gradient returns to `t`'s device (the autograd engine moves cotangents
    to the device of the value they belong to)."""
    v = t._value
    if dev.type == "cuda":
        value = _device_storage.to_device(_device_storage.to_host(v) if isinstance(v, DeviceArray) else v, dev)
    else:
        value = _device_storage.to_host(v) if isinstance(v, DeviceArray) else np.array(v)
    out = Tensor._wrap(value)
    out._device = dev
    if autograd._grad_enabled and t._requires_grad:
        autograd.record(Op.CAST, {"dtype": t.dtype}, [t], out)
    return out


def _cast(x: Tensor, dtype: DType) -> Tensor:
    """`x` converted to `dtype` (itself when it already is)."""
    return x if x.dtype is dtype else Tensor._emit(Op.CAST, [x], {"dtype": dtype})


def filled(shape: tuple, value, dtype: DType, requires_grad: bool = False) -> Tensor:
    """A tensor of `shape` holding `value` everywhere: under a trace a CONST
    expanded to the shape (part of the graph, not captured state), else a
    numpy array."""
    if _active_trace() is not None:
        c = const(value, dtype)
        return Tensor._wrap(c if shape == () else node(Op.EXPAND, c, shape=shape), requires_grad)
    check_host_allocation(math.prod(shape) * dtype.itemsize, f"a {dtype.name} tensor of shape {list(shape)}")
    return Tensor._wrap(np.full(shape, value, dtype=dtype.np), requires_grad)


def filled_like(t: Tensor, value) -> Tensor:
    """`value` in `t`'s shape, dtype and device (autodiff's ones and zeros)."""
    out = filled(tuple(t.shape), value, t.dtype)
    out._device = t._device
    if out._device is not None and out._device.type == "cuda" and isinstance(out._value, np.ndarray):
        out._value = _device_storage.to_device(out._value, out._device)
    return out


TensorCore = Tensor
# The modules the core builds on learn its class here rather than import it.
autograd.bind_tensor_class(Tensor)
_trace.bind_tensor_class(Tensor)


def register_tensor_class(cls: type) -> None:
    """Make `cls` (graphc.Tensor: this core plus the op methods) the class of
    every tensor built from now on. Called once, by graphc/_tensor.py."""
    global Tensor
    if not issubclass(cls, TensorCore):
        raise TypeError(f"{cls!r} does not derive from the tensor core")
    Tensor = cls
