"""Per-call time of small compiled functions, to measure what checking
guards on globals and closure variables costs (graphc/_guards.py).

Run: .venv/bin/python bench/bench_guards.py [repeat]

Three functions on a 4-element tensor: one that reads no global, one that
reads a global float, and one that reads eight globals (a module, a
function, floats, a tuple, a string, a bool) plus a closure variable.
Prints the median time per call (median of `repeat` timings, each over
at least 0.1 s of back-to-back calls), and, with guards, the same with the
entry's guards taken out (timings alternate, so load on the machine hits
both alike) and the time of one `Guards.check()`.
"""

from __future__ import annotations

import math
import sys

import numpy as np
from bench_sgemm import median_time

import graphc

SCALE = 2.0
SHIFT = 0.5
POWERS = (1.0, 2.0)
MODE = "mul"
ENABLED = True
LIMIT = 3


def helper(x):
    return x * SHIFT


def no_globals(x):
    return x * 2.0 + 1.0


def one_global(x):
    return x * SCALE + 1.0


def make_many_globals():
    offset = 0.25

    def many_globals(x):
        y = x * SCALE + helper(x) * POWERS[1] + math.pi + offset
        if ENABLED and MODE == "mul" and LIMIT > 2:
            y = y * SCALE
        return graphc.relu(y)

    return many_globals


def _entry(compiled):
    (entries,) = compiled._cache.values()
    return entries[0]


def _set_guards(entry, guards) -> None:
    """Put back or take out an entry's guards (an A/B switch for timing)."""
    entry.guards = guards
    entry.static = guards is None and entry._guards_only


def main(repeat: int) -> None:
    x = graphc.from_numpy(np.arange(4, dtype=np.float32))
    for fn in (no_globals, one_global, make_many_globals()):
        compiled = graphc.compile(fn)
        expected = fn(x).numpy()
        compiled(x)  # eager
        np.testing.assert_allclose(compiled(x).numpy(), expected, rtol=1e-6)  # traced and compiled
        entry = _entry(compiled)
        guards = getattr(entry, "guards", None)
        n_guards = len(guards) if guards is not None else 0
        on, off = [], []
        for _ in range(repeat):  # alternate, so that load changes hit both alike
            on.append(median_time(lambda c=compiled: c(x), repeat=1, min_time=0.1))
            if guards is not None:
                _set_guards(entry, None)
                off.append(median_time(lambda c=compiled: c(x), repeat=1, min_time=0.1))
                _set_guards(entry, guards)
        line = f"{fn.__name__:14s} {n_guards:2d} guards  {np.median(on) * 1e6:6.2f} us per call"
        if off:
            line += f"  (without guards {np.median(off) * 1e6:6.2f} us)"
        if guards is not None:
            check = median_time(guards.check, repeat=repeat, min_time=0.05)
            line += f"  check() {check * 1e9:5.0f} ns"
        print(line)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 15)
