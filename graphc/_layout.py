"""Memory layout as PyTorch sees it, for the checks that depend on it:
`view` needs a layout the new shape can be read from without a copy
(`x.t().view(-1)` fails in torch, `x.t().reshape(-1)` copies), and
`is_contiguous` / `contiguous` report and fix it.

graphc's values carry no strides of their own, so a tensor's strides are
derived from how it was made. Eagerly they are the numpy array's: the
movement primitives (PERMUTE, EXPAND, SLICE, RESHAPE) evaluate to numpy
views, as torch's do, and every computed array (base None) counts as
contiguous. While tracing they are derived the same way from the chain of
movement nodes. Strides here count elements, not bytes.
"""

from __future__ import annotations

import numpy as np

from graphc.ir.graph import Node
from graphc.ir.ops import Op

# The primitives whose result is a view of their operand's data (when the
# layout allows; RESHAPE otherwise copies). A view shares its operand's
# version counter, so an in-place change through either is seen by both.
VIEW_OPS = frozenset({Op.RESHAPE, Op.PERMUTE, Op.EXPAND, Op.SLICE})


def shares_data(src, out) -> bool:
    """True when value `out`, made from `src` by a VIEW_OPS primitive, is a
    view of it: eagerly when the numpy arrays overlap, while tracing when
    the layout allows a view."""
    if isinstance(out, np.ndarray):
        return isinstance(src, np.ndarray) and np.may_share_memory(src, out)
    if isinstance(out, Node):
        return out.op is not Op.RESHAPE or view_strides(src.shape, strides(src), out.shape) is not None
    return False  # device arrays: a device op's result has its own buffer


def contiguous_strides(shape) -> tuple[int, ...]:
    """Row-major strides of `shape`."""
    strides, step = [], 1
    for d in reversed(shape):
        strides.append(step)
        step *= max(d, 1)
    return tuple(reversed(strides))


def strides(value) -> tuple[int, ...]:
    """The strides of a tensor value (numpy array, device array or Node)."""
    if isinstance(value, Node):
        return _node_strides(value)
    if isinstance(value, np.ndarray) and value.base is not None and value.itemsize:
        return tuple(s // value.itemsize for s in value.strides)
    return contiguous_strides(value.shape)


def _node_strides(n: Node) -> tuple[int, ...]:
    # Only the movement ops make views; any other node is a fresh buffer.
    if n.op is Op.PERMUTE:
        src = strides(n.srcs[0])
        return tuple(src[p] for p in n.attrs["perm"])
    if n.op is Op.EXPAND:
        src_shape, src = n.srcs[0].shape, strides(n.srcs[0])
        lead = len(n.shape) - len(src_shape)
        return (0,) * lead + tuple(0 if d == 1 and out != 1 else s for d, s, out in zip(src_shape, src, n.shape[lead:]))
    if n.op is Op.SLICE:
        return tuple(s * step for s, step in zip(strides(n.srcs[0]), n.attrs["steps"]))
    if n.op is Op.RESHAPE:
        src = n.srcs[0]
        found = view_strides(src.shape, strides(src), n.shape)
        return found if found is not None else contiguous_strides(n.shape)
    return contiguous_strides(n.shape)


def view_strides(shape, old_strides, new_shape) -> tuple[int, ...] | None:
    """Strides that read a tensor of `shape` and `old_strides` as
    `new_shape` without copying, or None when there are none (PyTorch's
    rule: each run of dims merged or split must be contiguous in memory)."""
    numel = 1
    for d in shape:
        numel *= d
    if numel == 0 or not shape:
        return contiguous_strides(new_shape)
    new_strides = [0] * len(new_shape)
    view_d = len(new_shape) - 1
    chunk_stride = old_strides[-1]
    tensor_numel = view_numel = 1
    for d in range(len(shape) - 1, -1, -1):
        tensor_numel *= shape[d]
        # A chunk of dims ends where the next dim out is not laid out right
        # after this one.
        if d == 0 or (shape[d - 1] != 1 and old_strides[d - 1] != tensor_numel * chunk_stride):
            while view_d >= 0 and (view_numel < tensor_numel or new_shape[view_d] == 1):
                new_strides[view_d] = view_numel * chunk_stride
                view_numel *= new_shape[view_d]
                view_d -= 1
            if view_numel != tensor_numel:
                return None
            if d > 0:
                chunk_stride = old_strides[d - 1]
                tensor_numel = view_numel = 1
    return tuple(new_strides) if view_d == -1 else None


def is_contiguous(value) -> bool:
    """True when the value's layout is row-major (size-1 dims are free)."""
    if 0 in value.shape:
        return True
    expected = 1
    for d, s in zip(reversed(value.shape), reversed(strides(value))):
        if d != 1 and s != expected:
            return False
        expected *= d
    return True
