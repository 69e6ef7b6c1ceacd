"""User-facing exceptions of the graphc frontend, and the helper that names
the user's source line in messages.

Every class says what causes it and how to fix it. They derive from the
builtin exception PyTorch raises in the same situation (mostly
RuntimeError), so code written against PyTorch that catches those keeps
working.
"""

from __future__ import annotations

import os
import sys

# Frames from these folders belong to the framework; the first frame outside
# them is the user's line.
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_INTERNAL = tuple(os.path.join(_ROOT, pkg) + os.sep for pkg in ("graphc", "passes", "runtime", "codegen"))


class GraphcError(RuntimeError):
    """Base class of graphc's own errors."""


class ShapeError(GraphcError):
    """Operand shapes do not fit the op (broadcasting, matmul, reshape ...).

    Fix: check the shapes named in the message; add `unsqueeze`/`view` to
    line up dimensions, or transpose a matmul operand."""


class InputShapeError(ShapeError, ValueError):
    """A layer or functional op got an input of the wrong rank or size
    (`nn.Linear` in_features, conv channels, normalized_shape ...).

    PyTorch raises RuntimeError for most of these and ValueError for some
    (BatchNorm's rank); this class is both, so either `except` clause
    catches it. Fix: check the layer's constructor arguments against the
    input shape named in the message."""


class DTypeError(GraphcError, TypeError):
    """An op does not accept the operand dtypes given (e.g. `mean` of an
    integer tensor, `~` of a float tensor). Fix: cast with `.float()`,
    `.long()` or `.bool()` first."""


class TraceError(GraphcError):
    """A traced or compiled function did something that depends on tensor
    *values* (Python `if` on a tensor, `.item()`, `bool(t)`, boolean-mask
    indexing). A trace records one static graph for all values, so such
    code cannot be traced. Fix: use `graphc.where(cond, a, b)` for
    elementwise choices, or move the data-dependent code out of the
    compiled function."""


class DeviceError(GraphcError):
    """Tensors on different devices were mixed, or a device is unavailable."""


def user_frame() -> str:
    """`file:line` of the innermost stack frame outside graphc's own
    packages: the user's source line an error should point at."""
    frame = sys._getframe(1)
    while frame is not None:
        filename = os.path.abspath(frame.f_code.co_filename)
        if not filename.startswith(_INTERNAL) and not filename.startswith("<frozen"):
            return f"{os.path.basename(filename)}:{frame.f_lineno}"
        frame = frame.f_back
    return "<unknown>"


def at_user_line(message: str) -> str:
    """`message` with the user's source line appended."""
    return f"{message} (at {user_frame()})"


class DivisionByZeroError(GraphcError, ZeroDivisionError):
    """An integer division by zero: `//`, `%`, `torch.div(...,
    rounding_mode=...)`, `fmod` or `remainder` of integer tensors with a
    zero divisor (PyTorch raises "RuntimeError: ZeroDivisionError").
    Compiled programs check every integer divisor and raise this after the
    call instead of crashing. Float division by zero is not an error (it
    gives inf or NaN). Fix: make the divisors nonzero, or divide floats."""


class IndexOutOfRangeError(GraphcError, IndexError):
    """An index is out of range: advanced indexing, `gather`,
    `scatter_add`, `Embedding`, or (in compiled code) a class value of
    `F.one_hot`. PyTorch raises IndexError for indexing and embeddings and
    RuntimeError for gather and one_hot; this class is both. Compiled
    programs check every such index and raise this after the call instead
    of reading out of bounds. Fix: check the indices or labels against the
    size named in the message."""


class ValueRangeError(GraphcError):
    """A tensor holds a value the op cannot take, e.g. a class index that
    is negative or not smaller than `num_classes` in `F.one_hot`. Fix:
    check the data (its labels or indices) named in the message."""


class OutOfMemoryError(GraphcError, MemoryError):
    """An allocation (a tensor, or a compiled program's buffers) needs more
    memory than the machine has available; raised before allocating, so
    the process is neither slowed down by swapping nor killed. Fix: use a
    smaller batch or model, or free other tensors (like
    torch.OutOfMemoryError)."""


class DistributedError(GraphcError):
    """A collective of `graphc.distributed` failed or timed out, or the
    process group is missing or misconfigured. The message names the op and
    this process's rank. Like torch.distributed's DistBackendError (a
    RuntimeError). Fix: check that every rank calls the same collectives in
    the same order with tensors of the same shape and dtype, and that the
    script runs under `graphc run -n N` (mpiexec)."""


class CheckpointError(GraphcError, ValueError):
    """A file is not a valid checkpoint (truncated, corrupt, an unknown
    format), a PyTorch checkpoint names a global graphc does not load, or an
    object cannot be stored in one. Fix: re-save the checkpoint; allow
    trusted plain-data classes with `add_safe_globals`; store only tensors,
    numbers, strings, None and lists/tuples/dicts of them."""
