"""Module-level utilities of PyTorch's API: dtype rules (promote_types,
can_cast), creation from buffers and array-likes (asarray, frombuffer),
`range`, the window functions, print options, and the determinism and
inter-op thread settings."""

from __future__ import annotations

import builtins
import math

import numpy as np

from graphc import _creation, _repr
from graphc._tensor_core import Tensor, get_default_dtype
from graphc.errors import at_user_line
from graphc.ir import dtypes
from graphc.ir.dtypes import DType

# ---------------------------------------------------------------------------
# dtype rules


def promote_types(type1: DType, type2: DType) -> DType:
    """The smallest dtype both `type1` and `type2` convert to without loss."""
    return dtypes.promote(type1, type2)


def _category(d: DType) -> int:
    return 0 if d.is_bool else 2 if d.is_float else 1


def can_cast(from_: DType, to: DType) -> bool:
    """Whether PyTorch's casting rules let an op write `from_` results into a
    `to` tensor: never from a higher category (bool < integer < float) to a
    lower one."""
    return _category(from_) <= _category(to)


def is_storage(obj) -> bool:
    """False: graphc exposes no storage objects."""
    return False


# ---------------------------------------------------------------------------
# creation


def asarray(obj, *, dtype: DType | None = None, device=None, copy=None, requires_grad: bool = False) -> Tensor:
    """`obj` as a tensor, sharing memory with a tensor or numpy array when
    no conversion is needed and `copy` is not True."""
    if copy is False and dtype is not None and isinstance(obj, (Tensor, np.ndarray)):
        have = obj.dtype if isinstance(obj, Tensor) else dtypes.from_numpy(obj.dtype)
        if have is not dtype:
            raise ValueError(at_user_line("asarray: can't alias the input with copy=False and a different dtype"))
    if isinstance(obj, Tensor):
        out = obj.to(dtype) if dtype is not None else obj
        if device is not None:
            out = out.to(device)
        if copy and out is obj:
            out = obj.clone()
        return out.requires_grad_(True) if requires_grad and not out.requires_grad else out
    if isinstance(obj, np.ndarray) and not copy and (dtype is None or dtype.np == obj.dtype):
        try:
            out = _creation.from_numpy(obj)
        except (TypeError, ValueError):
            out = None
        if out is not None:
            return out.requires_grad_(True) if requires_grad else out
    return _creation.tensor(obj, dtype=dtype, device=device, requires_grad=requires_grad)


def frombuffer(buffer, *, dtype: DType, count: int = -1, offset: int = 0, requires_grad: bool = False) -> Tensor:
    """A 1-D tensor over the bytes of `buffer` (any object with the buffer
    protocol), sharing its memory; `count` elements from byte `offset`."""
    view = memoryview(buffer)
    nbytes = view.nbytes
    if offset < 0 or offset >= nbytes and nbytes:
        raise ValueError(
            at_user_line(f"both buffer length ({nbytes}) and offset ({offset}) must be non-negative, offset < length")
        )
    if nbytes == 0 or (count == -1 and (nbytes - offset) % dtype.itemsize):
        raise ValueError(
            at_user_line(
                f"buffer length ({nbytes - offset} bytes) after offset ({offset} bytes) must be a multiple of "
                f"element size ({dtype.itemsize})"
            )
        )
    if count == 0 or count < -1:
        raise ValueError(at_user_line(f"count must be positive or -1, got {count}"))
    arr = np.frombuffer(buffer, dtype=dtype.np, count=count, offset=offset)
    out = Tensor._wrap(arr)
    return out.requires_grad_(True) if requires_grad else out


def range(start=0, end=None, step=1, *, dtype: DType | None = None, device=None, requires_grad: bool = False):
    """start, start + step, ... up to and including `end` (the deprecated
    inclusive cousin of arange); float by default."""
    if end is None:
        start, end = 0, start
    if step == 0:
        raise RuntimeError(at_user_line("step must be nonzero"))
    if (end - start) * step < 0:
        raise RuntimeError(at_user_line("upper bound and larger bound inconsistent with step sign"))
    n = int(math.floor((end - start) / step)) + 1
    values = start + np.arange(n, dtype=np.float64) * step
    dtype = dtype or get_default_dtype()
    return _creation.tensor(values.astype(dtype.np), dtype=dtype, device=device, requires_grad=requires_grad)


# ---------------------------------------------------------------------------
# window functions (constants: computed in float64, then rounded)


def _window(name: str, length: int, periodic: bool, dtype, values_of) -> Tensor:
    dtype = dtype or get_default_dtype()
    if not dtype.is_float:
        raise RuntimeError(at_user_line(f"{name} expects floating point dtypes, got: {dtype.name}"))
    if length < 0:
        raise RuntimeError(at_user_line(f"{name} requires non-negative window_length, got window_length={length}"))
    if length <= 1:
        return _creation.ones(length, dtype=dtype)
    n = length + 1 if periodic else length
    values = values_of(np.arange(n, dtype=np.float64), n)[:length]
    return _creation.tensor(values.astype(dtype.np), dtype=dtype)


def hann_window(window_length: int, periodic: bool = True, *, dtype=None, device=None, requires_grad=False):
    """The Hann window: 0.5 - 0.5 cos(2 pi n / (N - 1))."""
    return hamming_window(window_length, periodic, 0.5, 0.5, dtype=dtype, _name="hann_window")


def hamming_window(
    window_length: int,
    periodic: bool = True,
    alpha: float = 0.54,
    beta: float = 0.46,
    *,
    dtype=None,
    device=None,
    requires_grad=False,
    _name: str = "hamming_window",
):
    """The Hamming window: alpha - beta cos(2 pi n / (N - 1))."""
    return _window(_name, window_length, periodic, dtype, lambda k, n: alpha - beta * np.cos(2 * np.pi * k / (n - 1)))


def bartlett_window(window_length: int, periodic: bool = True, *, dtype=None, device=None, requires_grad=False):
    """The triangular Bartlett window: 1 - |2n / (N - 1) - 1|."""
    return _window("bartlett_window", window_length, periodic, dtype, lambda k, n: 1 - np.abs(2 * k / (n - 1) - 1))


def blackman_window(window_length: int, periodic: bool = True, *, dtype=None, device=None, requires_grad=False):
    """The Blackman window: 0.42 - 0.5 cos(2 pi n / (N - 1)) + 0.08 cos(4 pi n / (N - 1))."""

    def values(k, n):
        return 0.42 - 0.5 * np.cos(2 * np.pi * k / (n - 1)) + 0.08 * np.cos(4 * np.pi * k / (n - 1))

    return _window("blackman_window", window_length, periodic, dtype, values)


def kaiser_window(
    window_length: int, periodic: bool = True, beta: float = 12.0, *, dtype=None, device=None, requires_grad=False
):
    """The Kaiser window: I0(beta sqrt(1 - (2n / (N - 1) - 1)^2)) / I0(beta)."""

    def values(k, n):
        return np.i0(beta * np.sqrt(np.clip(1 - (2 * k / (n - 1) - 1) ** 2, 0, None))) / np.i0(beta)

    return _window("kaiser_window", window_length, periodic, dtype, values)


# ---------------------------------------------------------------------------
# print options


_PRINT_PROFILES = {
    "default": {"precision": 4, "threshold": 1000, "edgeitems": 3, "linewidth": 80},
    "short": {"precision": 2, "threshold": 1000, "edgeitems": 2, "linewidth": 80},
    "full": {"precision": 4, "threshold": math.inf, "edgeitems": 3, "linewidth": 80},
}


def set_printoptions(
    precision=None, threshold=None, edgeitems=None, linewidth=None, profile=None, sci_mode=None
) -> None:
    """How tensors print, as torch.set_printoptions: digits after the point,
    the element count past which a tensor is summarized, the items kept at
    each edge of a summary, the line width, a named profile ('default',
    'short', 'full'), and sci_mode (True/False forces scientific notation
    on or off, None chooses per tensor)."""
    if profile is not None:
        if profile not in _PRINT_PROFILES:
            raise ValueError(at_user_line(f"profile must be one of {builtins.list(_PRINT_PROFILES)}, got {profile!r}"))
        for key, value in _PRINT_PROFILES[profile].items():
            setattr(_repr, key.upper(), value)
    if precision is not None:
        _repr.PRECISION = int(precision)
    if threshold is not None:
        _repr.THRESHOLD = threshold
    if edgeitems is not None:
        _repr.EDGEITEMS = int(edgeitems)
    if linewidth is not None:
        _repr.LINEWIDTH = int(linewidth)
    _repr.SCI_MODE = sci_mode


# ---------------------------------------------------------------------------
# determinism and threads

_deterministic = {"enabled": False, "warn_only": False}


def use_deterministic_algorithms(mode: bool, *, warn_only: bool = False) -> None:
    """Record whether deterministic algorithms are required. graphc's
    kernels are deterministic already (fixed reduction orders, no atomics
    on the CPU), so the setting changes no result."""
    if not isinstance(mode, bool):
        raise RuntimeError(at_user_line(f"use_deterministic_algorithms expects a bool, but got {type(mode).__name__}"))
    _deterministic["enabled"] = mode
    _deterministic["warn_only"] = bool(warn_only)


def are_deterministic_algorithms_enabled() -> bool:
    """Whether `use_deterministic_algorithms(True)` is in effect."""
    return _deterministic["enabled"]


def is_deterministic_algorithms_warn_only_enabled() -> bool:
    """Whether it was set with warn_only=True."""
    return _deterministic["warn_only"]


_interop = {"threads": 1}


def get_num_interop_threads() -> int:
    """The inter-op thread count last set (1 by default). graphc runs a
    program's kernels one after another, so it records the number only."""
    return _interop["threads"]


def set_num_interop_threads(n: int) -> None:
    """Set the inter-op thread count (must be positive)."""
    if not isinstance(n, int) or n <= 0:
        raise RuntimeError(at_user_line(f"Expected positive number of threads, got {n}"))
    _interop["threads"] = n
