"""The Tensor method table: every functional op bound as a method, the
Python operators, and the in-place `op_` forms. Kept in one place so what a
Tensor can do is visible at a glance.

`TensorMethods` is the mixin these tables make; graphc/_tensor.py derives the
public `Tensor` from it and the core (graphc/_tensor_core.py). This module
sits above every op module and below graphc/_tensor.py, so nothing here
imports the public class."""

from __future__ import annotations

from graphc import _creation, _indexing, _linalg, _reductions, _scans, _scatter, _shape, _sorting
from graphc import _elementwise as ew
from graphc import random as _random
from graphc._checks import int_sizes
from graphc._more_methods import more_methods
from graphc._out import assign_shape
from graphc._tensor_core import Tensor


def _random_method(name: str):
    return getattr(_random, name)


def _functional_method(name: str):
    # Looked up at call time: graphc.nn is a layer above the tensor (it
    # builds on graphc.Tensor), so the tensor cannot import it.
    def method(self, *args, **kwargs):
        from graphc.nn import functional

        return getattr(functional, name)(self, *args, **kwargs)

    method.__name__ = name
    return method


def _reflect(fn):
    def reflected(self, other):
        return fn(other, self)

    return reflected


def _same_or_not_implemented(fn):
    # Let Python try the other operand's reflected method for foreign types.
    def op(self, other):
        if not isinstance(other, Tensor) and not ew._is_scalar(other):
            return NotImplemented
        return fn(self, other)

    op.__name__ = fn.__name__
    return op


def _inplace(fn, name: str):
    def method(self, *args, **kwargs):
        return self._assign(fn(self, *args, **kwargs), name)

    method.__name__ = name
    method.__doc__ = f"In-place form of `{fn.__name__}`."
    return method


def _fill_(self, value):
    if isinstance(value, Tensor):
        filled = ew.expand_to(ew.cast(value, self.dtype), tuple(self.shape))
    else:
        filled = _creation.full_like(self, value)
    return self._assign(filled, "fill_")


def _zero_(self):
    return self._assign(_creation.zeros_like(self), "zero_")


def _copy_(self, src, non_blocking: bool = False):
    if isinstance(src, Tensor) and src.device != self.device:
        src = src.to(self.device)  # copy_ crosses devices, as in torch
    return self._assign(_shape.expand(ew.cast(src, self.dtype), tuple(self.shape)), "copy_")


def _clamp_min(self, min):
    return ew.clamp(self, min=min)


def _clamp_max(self, max):
    return ew.clamp(self, max=max)


def _new_tensor(self, data, dtype=None, device=None, requires_grad=False):
    return _creation.tensor(data, dtype=dtype or self.dtype, requires_grad=requires_grad)


def _new_zeros(self, *size, dtype=None, device=None, requires_grad=False):
    # new_* keep this tensor's dtype and device unless told otherwise, as in torch.
    return _creation.zeros(*size, dtype=dtype or self.dtype, device=device or self.device, requires_grad=requires_grad)


def _new_ones(self, *size, dtype=None, device=None, requires_grad=False):
    return _creation.ones(*size, dtype=dtype or self.dtype, device=device or self.device, requires_grad=requires_grad)


def _new_full(self, size, fill_value, dtype=None, device=None, requires_grad=False):
    return _creation.full(
        size, fill_value, dtype=dtype or self.dtype, device=device or self.device, requires_grad=requires_grad
    )


def _T(self):
    return _shape.permute(self, tuple(reversed(range(self.ndim))))


def _mT(self):
    return _shape.transpose(self, -2, -1)


def _matmul_op(self, other):
    if not isinstance(other, Tensor):
        return NotImplemented
    return _reductions.matmul(self, other)


def _rmatmul_op(self, other):
    if not isinstance(other, Tensor):
        return NotImplemented
    return _reductions.matmul(other, self)


def _neg_op(self):
    return ew.neg(self)


def _invert(self):
    return ew.bitwise_not(self)


def _max_method(self, dim=None, keepdim=False):
    return _reductions.max(self, dim, keepdim)


def _min_method(self, dim=None, keepdim=False):
    return _reductions.min(self, dim, keepdim)


METHODS = {
    # elementwise
    "add": ew.add,
    "sub": ew.sub,
    "subtract": ew.sub,
    "mul": ew.mul,
    "multiply": ew.mul,
    "div": ew.div,
    "divide": ew.div,
    "true_divide": ew.div,
    "floor_divide": ew.floor_divide,
    "remainder": ew.remainder,
    "fmod": ew.fmod,
    "pow": ew.pow,
    "float_power": ew.float_power,
    "maximum": ew.maximum,
    "minimum": ew.minimum,
    "lerp": ew.lerp,
    "addcmul": ew.addcmul,
    "addcdiv": ew.addcdiv,
    "neg": ew.neg,
    "negative": ew.neg,
    "abs": ew.abs,
    "absolute": ew.abs,
    "exp": ew.exp,
    "exp2": ew.exp2,
    "expm1": ew.expm1,
    "log": ew.log,
    "log2": ew.log2,
    "log10": ew.log10,
    "log1p": ew.log1p,
    "sqrt": ew.sqrt,
    "rsqrt": ew.rsqrt,
    "sin": ew.sin,
    "cos": ew.cos,
    "tan": ew.tan,
    "tanh": ew.tanh,
    "sigmoid": ew.sigmoid,
    "relu": ew.relu,
    "hardshrink": _functional_method("hardshrink"),
    "prelu": _functional_method("prelu"),
    "sign": ew.sign,
    "sgn": ew.sgn,
    "floor": ew.floor,
    "ceil": ew.ceil,
    "trunc": ew.trunc,
    "fix": ew.trunc,
    "frac": ew.frac,
    "round": ew.round,
    "reciprocal": ew.reciprocal,
    "square": ew.square,
    "erf": ew.erf,
    "clamp": ew.clamp,
    "clip": ew.clamp,
    "clamp_min": _clamp_min,
    "clamp_max": _clamp_max,
    "where": lambda self, cond, other: ew.where(cond, self, other),
    "eq": ew.eq,
    "ne": ew.ne,
    "lt": ew.lt,
    "le": ew.le,
    "gt": ew.gt,
    "ge": ew.ge,
    "greater": ew.gt,
    "less": ew.lt,
    "greater_equal": ew.ge,
    "less_equal": ew.le,
    "not_equal": ew.ne,
    "equal": ew.equal,
    "logical_and": ew.logical_and,
    "logical_or": ew.logical_or,
    "logical_not": ew.logical_not,
    "logical_xor": ew.logical_xor,
    "bitwise_and": ew.bitwise_and,
    "bitwise_or": ew.bitwise_or,
    "bitwise_not": ew.bitwise_not,
    "bitwise_xor": ew.bitwise_xor,
    "isnan": ew.isnan,
    "isinf": ew.isinf,
    "isfinite": ew.isfinite,
    "nan_to_num": ew.nan_to_num,
    "isclose": ew.isclose,
    "allclose": ew.allclose,
    "sinh": ew.sinh,
    "cosh": ew.cosh,
    "logaddexp": ew.logaddexp,
    "hypot": ew.hypot,
    "heaviside": ew.heaviside,
    # reductions and products
    "sum": _reductions.sum,
    "nansum": _reductions.nansum,
    "mean": _reductions.mean,
    "prod": _reductions.prod,
    "max": _max_method,
    "min": _min_method,
    "amax": _reductions.amax,
    "amin": _reductions.amin,
    "argmax": _reductions.argmax,
    "argmin": _reductions.argmin,
    "all": _reductions.all,
    "any": _reductions.any,
    "var": _reductions.var,
    "std": _reductions.std,
    "logsumexp": _reductions.logsumexp,
    "softmax": _reductions.softmax,
    "log_softmax": _reductions.log_softmax,
    "cumsum": _reductions.cumsum,
    "count_nonzero": _reductions.count_nonzero,
    "matmul": _reductions.matmul,
    "mm": _reductions.mm,
    "bmm": _reductions.bmm,
    "mv": _reductions.mv,
    "dot": _reductions.dot,
    "outer": _reductions.outer,
    "vdot": _reductions.vdot,
    "nanmean": _reductions.nanmean,
    "trace": _reductions.trace,
    "norm": _linalg.norm,
    "dist": _linalg.dist,
    # shape
    "reshape": _shape.reshape,
    "view": _shape.view,
    "view_as": _shape.view_as,
    "reshape_as": _shape.reshape_as,
    "flatten": _shape.flatten,
    "unflatten": _shape.unflatten,
    "squeeze": _shape.squeeze,
    "unsqueeze": _shape.unsqueeze,
    "permute": _shape.permute,
    "transpose": _shape.transpose,
    "swapaxes": _shape.transpose,
    "swapdims": _shape.transpose,
    "t": _shape.t,
    "movedim": _shape.movedim,
    "moveaxis": _shape.movedim,
    "expand": _shape.expand,
    "expand_as": _shape.expand_as,
    "broadcast_to": _shape.broadcast_to,
    "repeat": _shape.repeat,
    "tile": _shape.tile,
    "repeat_interleave": _shape.repeat_interleave,
    "contiguous": _shape.contiguous,
    "clone": _shape.clone,
    "split": _shape.split,
    "chunk": _shape.chunk,
    "unbind": _shape.unbind,
    "narrow": _shape.narrow,
    "select": _shape.select,
    "flip": _shape.flip,
    "fliplr": _shape.fliplr,
    "flipud": _shape.flipud,
    "roll": _shape.roll,
    "tril": _shape.tril,
    "triu": _shape.triu,
    "diag": _shape.diag,
    "diagonal": _shape.diagonal,
    "kron": _shape.kron,
    "diff": _shape.diff,
    "rot90": _shape.rot90,
    # indexing
    "__getitem__": _indexing.getitem,
    "__setitem__": _indexing.setitem,
    "gather": _indexing.gather,
    "index_select": _indexing.index_select,
    "scatter_add": _indexing.scatter_add,
    "scatter": _indexing.scatter,
    "masked_fill": _indexing.masked_fill,
    "masked_select": _indexing.masked_select,
    "nonzero": _indexing.nonzero,
    "take_along_dim": _indexing.take_along_dim,
    # construction from an existing tensor
    "new_tensor": _new_tensor,
    "new_zeros": _new_zeros,
    "new_ones": _new_ones,
    "new_full": _new_full,
    # operators
    "__add__": _same_or_not_implemented(ew.add),
    "__radd__": _same_or_not_implemented(_reflect(ew.add)),
    "__sub__": _same_or_not_implemented(ew.sub),
    "__rsub__": _same_or_not_implemented(_reflect(ew.sub)),
    "__mul__": _same_or_not_implemented(ew.mul),
    "__rmul__": _same_or_not_implemented(_reflect(ew.mul)),
    "__truediv__": _same_or_not_implemented(ew.div),
    "__rtruediv__": _same_or_not_implemented(_reflect(ew.div)),
    "__floordiv__": _same_or_not_implemented(ew.floor_divide),
    "__rfloordiv__": _same_or_not_implemented(_reflect(ew.floor_divide)),
    "__mod__": _same_or_not_implemented(ew.remainder),
    "__rmod__": _same_or_not_implemented(_reflect(ew.remainder)),
    "__pow__": _same_or_not_implemented(ew.pow),
    "__rpow__": _same_or_not_implemented(_reflect(ew.pow)),
    "__matmul__": _matmul_op,
    "__rmatmul__": _rmatmul_op,
    "__and__": _same_or_not_implemented(ew.bitwise_and),
    "__rand__": _same_or_not_implemented(_reflect(ew.bitwise_and)),
    "__or__": _same_or_not_implemented(ew.bitwise_or),
    "__ror__": _same_or_not_implemented(_reflect(ew.bitwise_or)),
    "__xor__": _same_or_not_implemented(ew.bitwise_xor),
    "__rxor__": _same_or_not_implemented(_reflect(ew.bitwise_xor)),
    "__eq__": _same_or_not_implemented(ew.eq),
    "__ne__": _same_or_not_implemented(ew.ne),
    "__lt__": _same_or_not_implemented(ew.lt),
    "__le__": _same_or_not_implemented(ew.le),
    "__gt__": _same_or_not_implemented(ew.gt),
    "__ge__": _same_or_not_implemented(ew.ge),
    "__neg__": _neg_op,
    "__pos__": lambda self: self,
    "__abs__": ew.abs,
    "__invert__": _invert,
    # in-place
    "fill_": _fill_,
    "zero_": _zero_,
    "copy_": _copy_,
    "uniform_": _random_method("uniform_"),
    "normal_": _random_method("normal_"),
    "bernoulli_": _random_method("bernoulli_"),
    "random_": _random_method("random_"),
    "exponential_": _random_method("exponential_"),
}


def _sorting_methods() -> dict:
    names = ["argsort", "sort", "msort", "topk", "kthvalue", "median", "nanmedian", "mode", "unique"]
    table = {name: getattr(_sorting, name) for name in names}
    table.update({name: getattr(_scans, name) for name in ("cumprod", "cummax", "cummin", "logcumsumexp")})
    for name in ("index_add", "index_copy", "index_fill", "scatter_reduce"):
        table[name] = getattr(_scatter, name)
        table[name + "_"] = _inplace(table[name], name + "_")
    return table


def _shape_inplace(fn, name: str):
    """`x.op_(...)`: `x` takes the shape and value of `op(x, ...)`."""

    def method(self, *args, **kwargs):
        return assign_shape(self, fn(self, *args, **kwargs), name)

    method.__name__ = name
    method.__doc__ = f"In-place form of `{name[:-1]}`: changes this tensor's shape."
    return method


def _resize_(self, *size, memory_format=None):
    """Reshape in place to `size`, keeping the leading elements (new ones,
    when growing, are zeros: torch leaves them uninitialized)."""
    shape = int_sizes("resize_", "size", size)
    n = 1
    for d in shape:
        n *= d
    flat = _shape.reshape(self, (-1,))
    if n <= flat.numel():
        kept = flat[:n]
    else:
        kept = _shape.cat([flat, _creation.zeros(n - flat.numel(), dtype=self.dtype)])
    return _shape.reshape(kept, shape)


_SHAPE_INPLACE = {
    "unsqueeze_": _shape.unsqueeze,
    "squeeze_": _shape.squeeze,
    "t_": _shape.t,
    "transpose_": _shape.transpose,
    "swapdims_": _shape.swapdims,
    "swapaxes_": _shape.swapaxes,
    "resize_": _resize_,
}

# `x.op_(...)` is `x` assigned `op(x, ...)`; `x += y` likewise.
_INPLACE = [
    "add",
    "sub",
    "mul",
    "div",
    "floor_divide",
    "remainder",
    "fmod",
    "pow",
    "neg",
    "abs",
    "exp",
    "log",
    "sqrt",
    "rsqrt",
    "sin",
    "cos",
    "tanh",
    "sigmoid",
    "relu",
    "sign",
    "floor",
    "ceil",
    "trunc",
    "round",
    "reciprocal",
    "square",
    "clamp",
    "clip",
    "clamp_min",
    "clamp_max",
    "maximum",
    "minimum",
    "lerp",
    "addcmul",
    "addcdiv",
    "masked_fill",
    "scatter_add",
    "scatter",
    "logical_and",
    "logical_or",
    "logical_not",
    "erf",
    "log1p",
    "expm1",
    "tan",
    "frac",
    "nan_to_num",
]
_OPERATORS_INPLACE = {
    "__iadd__": "add",
    "__isub__": "sub",
    "__imul__": "mul",
    "__itruediv__": "div",
    "__ifloordiv__": "floor_divide",
    "__imod__": "remainder",
    "__ipow__": "pow",
    "__iand__": "logical_and",
    "__ior__": "logical_or",
}


def _namespace() -> dict:
    """Every method and property of the mixin, by name; later tables win,
    as each adds to or refines the ones before it."""
    ns = {name: getattr(fn, "method", fn) for name, fn in METHODS.items()}
    # Ops that check their Tensor arguments have a method form (graphc/_checks.py).
    ns.update({name + "_": _inplace(METHODS[name], name + "_") for name in _INPLACE})
    ns.update({name: getattr(fn, "method", fn) for name, fn in _sorting_methods().items()})
    ns.update({name: _shape_inplace(fn, name) for name, fn in _SHAPE_INPLACE.items()})
    ns.update({dunder: _inplace(METHODS[name], dunder) for dunder, name in _OPERATORS_INPLACE.items()})
    ns.update(T=property(_T), mT=property(_mT), H=property(_T))
    ns.update(more_methods(METHODS, _inplace))
    return ns


# The mixin defines __eq__, so Python would make it unhashable: graphc/_tensor.py
# keeps the core's identity hash.
TensorMethods = type(
    "TensorMethods",
    (),
    {"__module__": __name__, "__doc__": "The op methods of graphc.Tensor (see the tables above).", **_namespace()},
)
