"""`graphc.accelerator`: the generic accelerator query (torch.accelerator)."""

from __future__ import annotations

from graphc import cuda
from graphc._device import device


def is_available() -> bool:
    """True when an accelerator (CUDA) can be used."""
    return cuda.is_available()


def current_accelerator():
    """The accelerator device, or None when there is none."""
    return device("cuda", 0) if cuda.is_available() else None


def device_count() -> int:
    return cuda.device_count()
