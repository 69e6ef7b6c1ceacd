"""Run the differential fuzzer: `python -m tests.fuzz.run --programs 10000`.

Prints each mismatch (seed, dtype, mode, what differs, the program) as it is
found and a summary at the end; exits 1 if any program mismatched. Compiled
programs go to a private cache folder unless GRAPHC_CACHE_DIR is set.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=int, default=1000, help="how many seeds to run")
    parser.add_argument("--start", type=int, default=0, help="first seed")
    parser.add_argument("--dtypes", default="float32,float64", help="comma-separated dtypes")
    parser.add_argument("--modes", default="eager,compiled", help="comma-separated: eager, compiled")
    parser.add_argument("--max-steps", type=int, default=10, help="most steps per program")
    parser.add_argument("--show", action="store_true", help="print every program, not only mismatches")
    parser.add_argument(
        "--small-thresholds",
        action="store_true",
        help="compile with the GEMM and threading thresholds at 1 (small programs take those paths)",
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("GRAPHC_CACHE_DIR", tempfile.mkdtemp(prefix="graphc-fuzz-"))
    warnings.simplefilter("ignore")  # PyTorch's warnings on degenerate reductions

    from .check import check, small_thresholds
    from .programs import generate

    dtypes = tuple(args.dtypes.split(","))
    modes = tuple(args.modes.split(","))
    start, failed, mismatches = time.perf_counter(), set(), 0
    for n, seed in enumerate(range(args.start, args.start + args.programs), 1):
        program = generate(seed, args.max_steps)
        if args.show:
            print(program.listing(), flush=True)
        if args.small_thresholds:
            with small_thresholds():
                found = check(program, dtypes, modes)
        else:
            found = check(program, dtypes, modes)
        for m in found:
            print(m.report(), "\n", flush=True)
        if found:
            failed.add(seed)
            mismatches += len(found)
        if n % 100 == 0:
            print(f"... {n} programs, {len(failed)} mismatching, {time.perf_counter() - start:.0f} s", flush=True)
    elapsed = time.perf_counter() - start
    print(
        f"fuzz: {args.programs} programs (seeds {args.start}..{args.start + args.programs - 1}), "
        f"dtypes {','.join(dtypes)}, modes {','.join(modes)}"
        f"{', small thresholds' if args.small_thresholds else ''}: "
        f"{len(failed)} mismatching programs, {mismatches} mismatches, {elapsed:.0f} s"
    )
    if failed:
        print("mismatching seeds:", " ".join(str(s) for s in sorted(failed)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
