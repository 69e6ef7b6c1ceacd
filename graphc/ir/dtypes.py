"""Element types of the IR, shared by every layer.

A `DType` is a plain immutable value: its name, the short name the text IR
prints (`f32`), and the numpy dtype the reference interpreter computes in.
The frontend re-exports these as `graphc.float32` and friends.
"""

from __future__ import annotations

import numpy as np


class DType:
    """One element type. Instances are singletons; compare with `is` or `==`."""

    __slots__ = ("name", "short", "np", "itemsize", "is_float", "is_int", "is_bool", "rank")

    def __init__(self, name: str, short: str, np_dtype, rank: int):
        self.name = name
        self.short = short
        self.np = np.dtype(np_dtype)
        self.itemsize = self.np.itemsize
        self.is_float = self.np.kind == "f"
        self.is_int = self.np.kind in "iu"
        self.is_bool = self.np.kind == "b"
        # Position in the promotion lattice within its category (bool < int < float).
        self.rank = rank

    def __repr__(self) -> str:
        return f"graphc.{self.name}"

    def __reduce__(self):
        return (from_name, (self.name,))

    @property
    def is_floating_point(self) -> bool:
        return self.is_float


bool_ = DType("bool", "i1", np.bool_, 0)
uint8 = DType("uint8", "u8", np.uint8, 1)
int8 = DType("int8", "i8", np.int8, 2)
int16 = DType("int16", "i16", np.int16, 3)
int32 = DType("int32", "i32", np.int32, 4)
int64 = DType("int64", "i64", np.int64, 5)
float16 = DType("float16", "f16", np.float16, 6)
float32 = DType("float32", "f32", np.float32, 7)
float64 = DType("float64", "f64", np.float64, 8)

ALL = (bool_, uint8, int8, int16, int32, int64, float16, float32, float64)
_BY_NAME = {d.name: d for d in ALL}
_BY_SHORT = {d.short: d for d in ALL}
_BY_NP = {d.np: d for d in ALL}


def from_name(name: str) -> DType:
    return _BY_NAME[name]


def from_short(short: str) -> DType:
    """The dtype a text-IR type prefix names (`f32` -> float32)."""
    return _BY_SHORT[short]


def from_numpy(np_dtype) -> DType:
    """The DType of a numpy dtype; raises TypeError for unsupported ones."""
    key = np.dtype(np_dtype)
    try:
        return _BY_NP[key]
    except KeyError:
        raise TypeError(f"graphc has no dtype for numpy {key}") from None


def promote(a: DType, b: DType) -> DType:
    """PyTorch's promotion of two tensor dtypes: the higher category wins,
    within a category the wider type; uint8 with a signed int gives int16."""
    if a is b:
        return a
    if {a, b} == {uint8, int8}:
        return int16
    return a if a.rank >= b.rank else b
