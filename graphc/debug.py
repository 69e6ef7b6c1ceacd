"""Leveled debug output: one variable, GRAPHC_DEBUG=0..5.

The levels, each including those below it:

1. why a compiled function (re)compiles (a new signature, a changed global:
   "recompiling f: global 'scale' changed from 2.0 to 3.0"), why a disk
   cache entry was ignored, the pass timeline (time and node counts per
   pass) and the lowering timeline (codegen/lower.py: optimize, fuse, plan);
2. the IR after every pass, the fused program, and for every compiled CPU
   call the profiler's table for that call (graphc/profiler.py,
   docs/profiler.md): each executable built at this level runs its
   profiled build and prints the time, GFLOP/s and GB/s of each kernel;
3. the memory plan of each compiled program;
4. the generated code (LLVM IR, CUDA C);
5. the host assembly.

Every setting that changes generated code is part of the compile-cache key;
this variable only changes what is printed (level 2 runs the separately
cached profiled build of each program, whose results are identical). It is
declared, with every other GRAPHC_* variable, in graphc/config.py; like
that module this one is part of the base layer (standard library only), so
every layer may print through it.
"""

from __future__ import annotations

import sys

from graphc import config


def level() -> int:
    """The current GRAPHC_DEBUG level (0 when unset or not a number)."""
    return config.get("GRAPHC_DEBUG")


def dump(lvl: int, text: str) -> None:
    """Print `text` to stderr when GRAPHC_DEBUG >= `lvl`."""
    if level() >= lvl:
        print(f"[graphc] {text}", file=sys.stderr)
