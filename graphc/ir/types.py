"""The IR's value types: `TensorType` (shape and dtype), `ConstArray` (a
constant's data) and `IRTypeError`. graphc/ir/graph.py builds nodes of these
types, checked by the shape rules (graphc/ir/rules.py), which need the types
but not the nodes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from graphc.ir.dtypes import DType


@dataclass(frozen=True)
class TensorType:
    """Static shape and element type of a value."""

    shape: tuple[int, ...]
    dtype: DType

    def __post_init__(self):
        # Normalize numpy ints and lists so structurally equal types hash equal.
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.numel * self.dtype.itemsize

    def __str__(self) -> str:
        return f"{self.dtype.short}[{','.join(str(d) for d in self.shape)}]"


class ConstArray:
    """A hashable, read-only array used as the `value` of a CONST node."""

    __slots__ = ("array", "_hash")

    def __init__(self, array):
        arr = np.array(array, copy=True)
        arr.setflags(write=False)
        self.array = arr
        self._hash = hash((arr.shape, arr.dtype.str, arr.tobytes()))

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other) -> bool:
        return (
            isinstance(other, ConstArray)
            and self._hash == other._hash
            and self.array.shape == other.array.shape
            and self.array.dtype == other.array.dtype
            and self.array.tobytes() == other.array.tobytes()
        )

    def __repr__(self) -> str:
        return f"ConstArray({self.array.tolist()!r})"


class IRTypeError(TypeError):
    """An op was given operands its shape/dtype rule rejects."""
