"""`graphc.device`: where a tensor lives ("cpu" or "cuda[:n]").

CPU tensors hold numpy arrays; CUDA tensors hold device storage
(graphc/_device_storage.py) managed by the CUDA runtime in `graphc.cuda`."""

from __future__ import annotations

from graphc.errors import DeviceError

_TYPES = ("cpu", "cuda", "mps", "meta")


class device:
    """A device: `device('cpu')`, `device('cuda')`, `device('cuda:0')`,
    `device('cuda', 1)`. Compares equal to its string form.

    >>> device('cuda:0').index
    0
    """

    __slots__ = ("index", "type")

    def __init__(self, type, index: int | None = None):
        if isinstance(type, device):
            self.type, self.index = type.type, type.index
            return
        if not isinstance(type, str):
            raise TypeError(f"device(): expected a string like 'cpu' or 'cuda:0', got {type!r}")
        name, _, idx = type.partition(":")
        if name not in _TYPES:
            raise RuntimeError(f"Expected one of {', '.join(_TYPES)} device type at start of device string: {type}")
        if idx:
            if index is not None or not idx.isdigit():
                raise RuntimeError(f"Invalid device string: {type!r}")
            index = int(idx)
        self.type = name
        self.index = index

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self) -> str:
        if self.index is None:
            return f"device(type='{self.type}')"
        return f"device(type='{self.type}', index={self.index})"

    def __eq__(self, other) -> bool:
        if isinstance(other, str):
            try:
                other = device(other)
            except RuntimeError:
                return False
        if not isinstance(other, device):
            return NotImplemented
        return self.type == other.type and self.index == other.index

    def __hash__(self) -> int:
        return hash((self.type, self.index))


CPU = device("cpu")


# Where creation functions put a tensor made without `device=`.
_default_device = CPU


def set_default_device(device) -> None:
    """Set the device that creation functions (zeros, tensor, rand, ...) use
    when `device=` is not given; None restores the CPU. The *_like functions
    and from_numpy keep their own device, as in PyTorch."""
    global _default_device
    _default_device = CPU if device is None else as_device(device)


def get_default_device() -> device:
    """The device creation functions use when `device=` is not given."""
    d = _default_device
    return device("cuda", 0) if d.type == "cuda" and d.index is None else d


def as_device(d) -> device:
    """Normalize a device argument (str, int for a CUDA index, or device)."""
    if isinstance(d, device):
        return d
    if isinstance(d, int):
        return device("cuda", d)
    return device(d)


def placement(d) -> device:
    """The device a tensor created with `device=d` reports: 'cuda' means the
    current GPU (cuda:0), as in torch; the device must be available."""
    d = as_device(d)
    check_available(d)
    if d.type == "cuda" and d.index is None:
        return device("cuda", 0)
    return d


def check_available(d: device) -> None:
    """Raise DeviceError when tensors cannot be placed on `d`."""
    if d.type == "cpu":
        return
    if d.type == "cuda":
        from graphc import cuda

        if not cuda.is_available():
            raise DeviceError(
                "CUDA is not available: no CUDA runtime is registered (needs an NVIDIA GPU, its driver "
                "and pycuda: pip install graphc[cuda]); use device('cpu')"
            )
        return
    raise DeviceError(f"device {d} is not available in graphc; use device('cpu')")
