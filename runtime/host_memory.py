"""How much host memory an allocation may take: the one check eager tensor
creation, eager ops and compiled CPU programs make before allocating, so
an impossible request fails at once with OutOfMemoryError instead of
swapping for minutes or getting the process OOM-killed.

The limit is the kernel's estimate of memory available without swapping
(`MemAvailable` in /proc/meminfo; elsewhere the free physical pages from
`os.sysconf`). Requests below `CHECK_MIN_BYTES` are not checked: they are
never the problem, and reading /proc costs microseconds.
"""

from __future__ import annotations

import os

from graphc.errors import OutOfMemoryError

CHECK_MIN_BYTES = 64 << 20


def available_bytes() -> int | None:
    """Bytes of host memory available now (None when the OS does not say)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


def format_bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024
    return f"{n} B"


def check_allocation(nbytes: int, what: str) -> None:
    """Raise OutOfMemoryError if `nbytes` more bytes cannot fit in the
    memory available now; `what` names the allocation in the message."""
    if nbytes < CHECK_MIN_BYTES:
        return
    available = available_bytes()
    if available is not None and nbytes > available:
        raise OutOfMemoryError(
            f"{what} needs {format_bytes(nbytes)} but only {format_bytes(available)} of memory is available"
        )
