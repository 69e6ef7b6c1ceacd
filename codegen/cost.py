"""What a kernel costs: floating-point work and bytes moved, from the kernel
form alone (codegen/kernel.py), for the profiler's GFLOP/s and GB/s.

FLOPs
    dot          2 * batch * M * N * K (a multiply and an add per step),
                 plus the fused epilogue's ops per output element;
    reduce       per reduced element: the ops of the reduced value plus one
                 for the combine; per output element: the ops of the stores;
    elementwise  per element: the ops of its store values;
    scatter      per source element: the ops of the added value plus the add.
    "Ops" are the floating-point operations of a value expression (a
    result or an operand is a float), each shared sub-expression counted
    once; integer and index arithmetic (a load's index, the guards of
    padded or unfolded reads), loads, constants and loop variables are
    free.

Bytes
    The sizes of the buffers a kernel reads plus those it writes: the
    compulsory traffic if every byte crossed the memory bus once. A
    broadcast operand counts once, a buffer read and written counts twice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from graphc.codegen.kernel import Buffer, Expr, Kernel, KOp

# Leaves and index helpers: no arithmetic of their own.
_FREE = frozenset({KOp.VAR, KOp.CONST, KOp.ACC, KOp.LOAD, KOp.CHECK, KOp.RANDOM})


@dataclass(frozen=True)
class KernelCost:
    flops: int
    bytes_read: int
    bytes_written: int

    @property
    def bytes(self) -> int:
        return self.bytes_read + self.bytes_written


def value_ops(*roots: Expr | None) -> int:
    """Floating-point operations in the value expressions `roots` (shared
    sub-expressions once; nothing below a load, which is index math)."""
    seen: set[Expr] = set()
    count = 0
    stack = [r for r in roots if r is not None]
    while stack:
        e = stack.pop()
        if e in seen:
            continue
        seen.add(e)
        if e.op is KOp.LOAD:
            continue
        if e.op not in _FREE and (e.dtype.is_float or any(a.dtype.is_float for a in e.args)):
            count += 1
        stack.extend(e.args)
    return count


def kernel_flops(k: Kernel) -> int:
    """Floating-point operations of one run of `k`."""
    outer = math.prod(k.shape)
    store_ops = value_ops(*(s.value for s in k.stores))
    if k.kind == "dot":
        return 2 * outer * k.k + outer * store_ops
    if k.kind == "reduce":
        inner = math.prod(k.red_shape)
        row_ops = value_ops(*(s.value for s in k.row_stores))
        return outer * inner * (value_ops(k.value) + 1 + row_ops) + outer * store_ops
    if k.kind == "scatter":
        return outer * (value_ops(k.value) + 1)
    return outer * store_ops


def kernel_cost(k: Kernel, buffers: dict[str, Buffer]) -> KernelCost:
    """FLOPs and bytes of one run of `k` over the program's `buffers`."""
    read = sum(buffers[n].nbytes for n in k.inputs if n in buffers)
    written = sum(buffers[n].nbytes for n in k.outputs if n in buffers)
    return KernelCost(kernel_flops(k), read, written)


# Primitives that fuse into index arithmetic or constants: left out of
# kernel labels, which name the computation.
_UNLABELLED = frozenset({"const", "expand", "reshape", "permute", "copy", "slice", "iota"})


def kernel_label(k: Kernel, width: int = 48) -> str:
    """A readable name: `k3_dot(dot+add+cmplt+where)`, the fused primitives
    in order without repeats (movement ops and constants left out),
    shortened to `width` characters."""
    named = [p for p in dict.fromkeys(k.primitives) if p not in _UNLABELLED]
    prims = "+".join(named or dict.fromkeys(k.primitives)) or k.kind
    label = f"{k.name}({prims})"
    if len(label) > width:
        label = label[: width - 4] + "...)"
    return label
