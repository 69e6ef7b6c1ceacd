"""How graphc dtypes and constants are spelled in CUDA C.

Every value lives in a register of its *register type*. float16 is the one
type whose register type differs from its storage type: values are held as
`float` that are always exactly representable in half precision (each f16
operation rounds its result back with `gc_round_h`), which reproduces
numpy's float16 arithmetic (compute in f32, round per op) without relying
on half-precision arithmetic instructions.
"""

from __future__ import annotations

import math
import re

import numpy as np

from graphc.ir import dtypes
from graphc.ir.dtypes import DType

# Storage type: what a buffer element is in device memory.
STORAGE = {
    dtypes.bool_: "bool",
    dtypes.uint8: "unsigned char",
    dtypes.int8: "signed char",
    dtypes.int16: "short",
    dtypes.int32: "int",
    dtypes.int64: "long long",
    dtypes.float16: "__half",
    dtypes.float32: "float",
    dtypes.float64: "double",
}

# Register type: what a value is while a kernel computes with it.
REGISTER = dict(STORAGE)
REGISTER[dtypes.float16] = "float"

# Unsigned twin of each wide signed type: +, -, * and negation are computed
# there because signed overflow is undefined in C++ while numpy wraps.
UNSIGNED = {dtypes.int32: "unsigned int", dtypes.int64: "unsigned long long"}


def storage(dtype: DType) -> str:
    return STORAGE[dtype]


def register(dtype: DType) -> str:
    return REGISTER[dtype]


def literal(value, dtype: DType) -> str:
    """A C expression of register type for the scalar `value` of `dtype`,
    exact to the bit (floats are written as the shortest decimal that
    round-trips through the dtype, specials through bit patterns)."""
    if dtype.is_bool:
        return "true" if value else "false"
    if dtype.is_int:
        return _int_literal(int(np.array(value).astype(dtype.np)), dtype)
    if dtype is dtypes.float64:
        x = float(value)
        if math.isfinite(x):
            return _decimal(np.float64(x))
        bits = int(np.array(x, dtype=np.float64).view(np.uint64))
        return f"gc_f64_bits(0x{bits:016x}ULL)"
    x = np.float32(value) if dtype is dtypes.float32 else np.float32(np.float16(value))
    if np.isfinite(x):
        return _decimal(x) + "f"
    bits = int(np.array(x, dtype=np.float32).view(np.uint32))
    return f"gc_f32_bits(0x{bits:08x}u)"


def _decimal(x) -> str:
    text = np.format_float_scientific(x, unique=True, trim="-")
    if "." not in text.split("e")[0]:
        mantissa, exp = text.split("e")
        text = f"{mantissa}.0e{exp}"
    return text


def _int_literal(v: int, dtype: DType) -> str:
    if dtype is dtypes.int64:
        if v == -(2**63):
            return "(-9223372036854775807LL - 1LL)"
        return f"{v}LL"
    if dtype is dtypes.int32 and v == -(2**31):
        return "(-2147483647 - 1)"
    return f"(({STORAGE[dtype]}){v})" if dtype.itemsize < 4 else str(v)


def identifier(name: str, taken: set[str]) -> str:
    """A C identifier for a buffer name, unique within `taken` (added)."""
    base = re.sub(r"[^0-9A-Za-z_]", "_", name)
    if not base or base[0].isdigit():
        base = "b_" + base
    ident, n = base, 1
    while ident in taken or ident in _RESERVED or _LOOP_VAR.fullmatch(ident):
        ident = f"{base}_{n}"
        n += 1
    taken.add(ident)
    return ident


# Loop variables of the kernel form (i0, o1, r0, b2, m, n), temporaries
# (v12, e3) and the generated code's own names (gc_*) are never buffer names.
_LOOP_VAR = re.compile(r"[iorbvewk]\d*|[mn]|gc_.*")

# Names the generated code uses itself; buffers never take them.
_RESERVED = {
    "gc_err",
    "acc",
    "row",
    "lane",
    "warp",
    "tid",
    "idx",
    "float",
    "double",
    "int",
    "char",
    "short",
    "long",
    "bool",
    "true",
    "false",
    "if",
    "for",
    "while",
    "do",
    "return",
    "const",
    "unsigned",
    "signed",
    "void",
    "auto",
    "default",
    "switch",
    "case",
    "break",
    "continue",
    "new",
    "delete",
    "this",
    "union",
    "struct",
    "class",
    "template",
    "typename",
    "register",
    "volatile",
    "static",
    "extern",
    "inline",
    "goto",
    "else",
}
