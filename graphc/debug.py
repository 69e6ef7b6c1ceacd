"""Leveled debug output: one variable, GRAPHC_DEBUG=0..5.

1: compile-cache misses and why a function recompiled; 2: traced graphs;
higher levels are used by the passes and code generators.
"""

from __future__ import annotations

import os
import sys


def level() -> int:
    """The current GRAPHC_DEBUG level (0 when unset or not a number)."""
    try:
        return int(os.environ.get("GRAPHC_DEBUG", "0"))
    except ValueError:
        return 0


def dump(lvl: int, text: str) -> None:
    """Print `text` to stderr when GRAPHC_DEBUG >= `lvl`."""
    if level() >= lvl:
        print(f"[graphc] {text}", file=sys.stderr)
