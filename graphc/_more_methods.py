"""Tensor methods of the functions in graphc/_more_*.py, more in-place
`op_` forms of existing ops, and the Tensor attributes that describe the
data (itemsize, nbytes, layout, data_ptr, ...). graphc/_methods.py adds
them to the Tensor method mixin after its main table."""

from __future__ import annotations

import numpy as np

from graphc import _creation, _indexing, _layout, _more_linalg, _more_math, _more_shape, _reductions, _shape
from graphc import _elementwise as ew
from graphc import random as _random
from graphc._checks import int_sizes
from graphc._tensor_core import _norm_dim
from graphc.errors import at_user_line
from graphc.ir import dtypes


class layout:
    """How a tensor's elements are laid out in memory. graphc has one
    layout, `graphc.strided` (dense, row-major)."""

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return f"graphc.{self.name}"


strided = layout("strided")


def _random_method(name: str):
    return getattr(_random, name)


def _sum_to_size(self, *size):
    """The sum of `self` down to `size`, a shape `self` is broadcast from."""
    size = int_sizes("sum_to_size", "size", size)
    shape = tuple(self.shape)
    lead = len(shape) - len(size)
    if lead < 0 or any(s != 1 and s != n for s, n in zip(size, shape[lead:])):
        raise RuntimeError(at_user_line(f"size {list(size)} is not expandable to size {list(shape)}."))
    out = _reductions.sum(self, tuple(range(lead))) if lead else self
    dims = tuple(i for i, (s, n) in enumerate(zip(size, out.shape)) if s == 1 and n != 1)
    return _reductions.sum(out, dims, keepdim=True) if dims else out


def _float_power_(self, exponent):
    result = ew.float_power(self, exponent)
    if self.dtype is not dtypes.float64:
        raise RuntimeError(
            at_user_line(
                f"the base given to float_power_ has dtype {ew.torch_type_name(self.dtype)} but the operation's "
                "result requires dtype Double"
            )
        )
    return self._assign(result, "float_power_")


def _fill_diagonal_(self, fill_value, wrap: bool = False):
    return self._assign(_more_shape.fill_diagonal(self, fill_value, wrap), "fill_diagonal_")


def _host_array(self, what: str) -> np.ndarray:
    return self._concrete(what, f"Call {what} outside the compiled function.")


def _map_(self, tensor, callable):
    """Apply the Python `callable(a, b)` to each element of `self` and the
    broadcast `tensor`, in place (eager, CPU tensors only, as in torch)."""
    a = _host_array(self, "map_")
    b = np.broadcast_to(_host_array(tensor, "map_"), a.shape)
    out = np.array([callable(x, y) for x, y in zip(a.reshape(-1).tolist(), b.reshape(-1).tolist())], dtype=a.dtype)
    return self._assign(self._wrap(out.reshape(a.shape)), "map_")


def _map2_(self, x, y, callable):
    """Apply the Python `callable(a, b, c)` to each element of `self`, `x`
    and `y`, in place (eager, CPU tensors only)."""
    a = _host_array(self, "map2_")
    b = np.broadcast_to(_host_array(x, "map2_"), a.shape).reshape(-1).tolist()
    c = np.broadcast_to(_host_array(y, "map2_"), a.shape).reshape(-1).tolist()
    out = np.array([callable(p, q, r) for p, q, r in zip(a.reshape(-1).tolist(), b, c)], dtype=a.dtype)
    return self._assign(self._wrap(out.reshape(a.shape)), "map2_")


def _apply_(self, callable):
    """Apply the Python `callable` to each element, in place (eager, CPU only)."""
    a = _host_array(self, "apply_")
    out = np.array([callable(v) for v in a.reshape(-1).tolist()], dtype=a.dtype)
    return self._assign(self._wrap(out.reshape(a.shape)), "apply_")


def _data_ptr(self) -> int:
    """The address of the first element of the data."""
    value = _host_array(self, "data_ptr") if not self.is_cuda else None
    if value is None:
        return int(self._value.buffer)
    return int(value.__array_interface__["data"][0])


def _get_device(self) -> int:
    """The CUDA device index, or -1 for a CPU tensor."""
    return (self.device.index or 0) if self.is_cuda else -1


def _new_empty(self, *size, dtype=None, device=None, requires_grad=False):
    """A new tensor of `size` with this one's dtype (zero-filled)."""
    return _creation.zeros(*size, dtype=dtype or self.dtype, requires_grad=requires_grad)


def _is_same_size(self, other) -> bool:
    return tuple(self.shape) == tuple(other.shape)


def _pin_memory(self, device=None):
    """A copy of the data in host memory (graphc's host memory serves
    transfers directly, so pinning changes nothing else)."""
    if self.is_cuda:
        raise RuntimeError(at_user_line(f"cannot pin '{self.device}' only dense CPU tensors can be pinned"))
    return self.clone()


def _stride(self, dim=None):
    """The step in elements between neighbours along each dim (row-major
    for fresh tensors; views keep their base's steps)."""
    steps = _layout.strides(self._value)
    return steps if dim is None else steps[_norm_dim(dim, self.ndim, "stride")]


def _dim_order(self, *, ambiguity_check=False):
    """The dims from outermost to innermost in memory, by stride."""
    steps = _layout.strides(self._value)
    return tuple(sorted(range(self.ndim), key=lambda d: -steps[d]))


def _false(self, *args, **kwargs) -> bool:
    return False


def _imag(self):
    return _more_math.imag(self)


MORE_METHODS = {
    # elementwise math (graphc/_more_math.py)
    "atan": _more_math.atan,
    "arctan": _more_math.atan,
    "atan2": _more_math.atan2,
    "arctan2": _more_math.atan2,
    "asin": _more_math.asin,
    "arcsin": _more_math.asin,
    "acos": _more_math.acos,
    "arccos": _more_math.acos,
    "asinh": _more_math.asinh,
    "arcsinh": _more_math.asinh,
    "acosh": _more_math.acosh,
    "arccosh": _more_math.acosh,
    "atanh": _more_math.atanh,
    "arctanh": _more_math.atanh,
    "erfc": _more_math.erfc,
    "lgamma": _more_math.lgamma,
    "digamma": _more_math.digamma,
    "mvlgamma": _more_math.mvlgamma,
    "logit": _more_math.logit,
    "sinc": _more_math.sinc,
    "xlogy": _more_math.xlogy,
    "positive": _more_math.positive,
    "signbit": _more_math.signbit,
    "copysign": _more_math.copysign,
    "ldexp": _more_math.ldexp,
    "logaddexp2": _more_math.logaddexp2,
    "deg2rad": _more_math.deg2rad,
    "rad2deg": _more_math.rad2deg,
    "angle": _more_math.angle,
    "isposinf": _more_math.isposinf,
    "isneginf": _more_math.isneginf,
    "isreal": _more_math.isreal,
    "conj": _more_math.conj,
    "conj_physical": _more_math.conj_physical,
    "resolve_conj": _more_math.resolve_conj,
    "resolve_neg": _more_math.resolve_neg,
    "is_complex": _more_math.is_complex,
    "is_conj": _more_math.is_conj,
    "is_neg": _more_math.is_neg,
    "is_nonzero": _more_math.is_nonzero,
    "fmax": ew.fmax,
    "fmin": ew.fmin,
    # products and statistics (graphc/_more_linalg.py)
    "addmm": _reductions.addmm,
    "addbmm": _more_linalg.addbmm,
    "baddbmm": _more_linalg.baddbmm,
    "addmv": _more_linalg.addmv,
    "addr": _more_linalg.addr,
    "ger": _more_linalg.ger,
    "inner": _reductions.inner,
    "cross": _more_linalg.cross,
    "cov": _more_linalg.cov,
    "corrcoef": _more_linalg.corrcoef,
    "aminmax": _more_linalg.aminmax,
    "renorm": _more_linalg.renorm,
    "bincount": _more_linalg.bincount,
    "histc": _more_linalg.histc,
    "matrix_power": _more_linalg.matrix_power,
    # shape and indexing (graphc/_more_shape.py)
    "argwhere": _indexing.argwhere,
    "ravel": _more_shape.ravel,
    "tensor_split": _more_shape.tensor_split,
    "hsplit": _more_shape.hsplit,
    "vsplit": _more_shape.vsplit,
    "dsplit": _more_shape.dsplit,
    "split_with_sizes": _more_shape.split_with_sizes,
    "take": _more_shape.take,
    "unfold": _more_shape.unfold,
    "diag_embed": _more_shape.diag_embed,
    "diagflat": _more_shape.diagflat,
    "select_scatter": _more_shape.select_scatter,
    "slice_scatter": _more_shape.slice_scatter,
    "diagonal_scatter": _more_shape.diagonal_scatter,
    "index_put": _more_shape.index_put,
    "put": _more_shape.put,
    "masked_scatter": _more_shape.masked_scatter,
    "narrow_copy": _more_shape.narrow_copy,
    "sum_to_size": _sum_to_size,
    "adjoint": _more_shape.adjoint,
    # random sampling with this tensor as the probabilities
    "multinomial": _random_method("multinomial"),
    "bernoulli": _random_method("bernoulli"),
    # conversions and facts about the data
    "char": lambda self: self.to(dtypes.int8),
    "is_signed": lambda self: not (self.dtype.is_bool or self.dtype is dtypes.uint8),
    "is_same_size": _is_same_size,
    "new_empty": _new_empty,
    "get_device": _get_device,
    "data_ptr": _data_ptr,
    "is_pinned": lambda self, device=None: False,
    "pin_memory": _pin_memory,
    "const_data_ptr": _data_ptr,
    "stride": _stride,
    "dim_order": _dim_order,
    # graphc tensors are dense, unshared, never inference tensors (inference_mode is no_grad)
    # and live on no distributed or exotic device.
    "is_inference": _false,
    "is_shared": _false,
    "is_distributed": _false,
    "unsafe_chunk": _shape.chunk,
    "unsafe_split": _shape.split,
    "unsafe_split_with_sizes": _more_shape.split_with_sizes,
    "bitwise_left_shift": _more_math.bitwise_left_shift,
    "bitwise_right_shift": _more_math.bitwise_right_shift,
    "__lshift__": _more_math.bitwise_left_shift,
    "__rshift__": _more_math.bitwise_right_shift,
    "map_": _map_,
    "map2_": _map2_,
    "apply_": _apply_,
    "float_power_": _float_power_,
    "fill_diagonal_": _fill_diagonal_,
}

# More `x.op_(...)`: x assigned op(x, ...), under torch's rule that the
# result's dtype must cast to x's (graphc.Tensor._assign checks it).
MORE_INPLACE = [
    # new functions
    *["atan", "arctan", "atan2", "arctan2", "asin", "arcsin", "acos", "arccos"],
    *["asinh", "arcsinh", "acosh", "arccosh", "atanh", "arctanh"],
    *["erfc", "lgamma", "digamma", "mvlgamma", "logit", "sinc", "xlogy", "copysign", "ldexp"],
    *["deg2rad", "rad2deg", "conj_physical"],
    *["addmm", "addbmm", "baddbmm", "addmv", "addr", "renorm"],
    *["index_put", "put", "masked_scatter"],
    # existing ops that lacked an in-place form
    *["eq", "ne", "lt", "le", "gt", "ge", "greater", "greater_equal", "less", "less_equal", "not_equal"],
    *["cosh", "sinh", "exp2", "log2", "log10", "hypot", "heaviside", "sgn", "fix"],
    *["absolute", "negative", "multiply", "divide", "true_divide", "subtract"],
    *["logical_xor", "bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_not"],
    *["cumsum", "tril", "triu", "bitwise_left_shift", "bitwise_right_shift"],
]


def _property_table():
    return {
        "itemsize": lambda self: self.dtype.itemsize,
        "nbytes": lambda self: self.numel() * self.dtype.itemsize,
        "layout": lambda self: strided,
        "mH": _more_shape.adjoint,
        "real": lambda self: self,
        "imag": _imag,
        **{name: _false for name in ("is_xla", "is_vulkan", "is_ipu", "is_maia", "is_mtia", "is_mkldnn")},
        **{name: _false for name in ("is_nested", "is_sparse_csr")},
    }


def more_methods(methods: dict, inplace) -> dict:
    """MORE_METHODS, the MORE_INPLACE forms (made by `inplace(fn, name)`) and
    the data-describing properties, by name, for the Tensor method mixin."""
    ns = {name: getattr(fn, "method", fn) for name, fn in MORE_METHODS.items()}
    table = {**methods, **MORE_METHODS}
    ns.update({name + "_": inplace(table[name], name + "_") for name in MORE_INPLACE})
    ns.update({name: property(fget) for name, fget in _property_table().items()})
    return ns
