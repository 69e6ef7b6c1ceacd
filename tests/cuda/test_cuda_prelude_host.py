"""The device helpers of every generated module (codegen/cuda/prelude.py)
compiled for the host with nvcc and checked bit for bit against the numpy
reference (graphc/ir/rules.py): RANDOM's splitmix64 counter function,
integer division, NaN-propagating max/min, argmax order, floor index math,
float16 rounding and exact float literals. Needs nvcc, not a GPU."""

from __future__ import annotations

import os
import subprocess

import numpy as np
import pytest

from graphc.codegen.cuda import cdefs
from graphc.codegen.cuda.prelude import PRELUDE
from graphc.ir import dtypes, rules
from graphc.runtime import cuda as rt

pytestmark = pytest.mark.skipif(rt.find_nvcc() is None, reason="nvcc (CUDA toolkit) not found")

KEYS = [0, 1, -1, 12345, 2**62 + 7, -(2**63)]
COUNTERS = 64
DIV_PAIRS = [
    (7, 2),
    (-7, 2),
    (7, -2),
    (-7, -2),
    (5, 0),
    (-5, 0),
    (0, 0),
    (-(2**31), -1),
    (2**31 - 1, -1),
    (-(2**31) + 1, 3),
]
F32_VALUES = [
    0.1,
    -0.0,
    1e-45,
    3.4028234663852886e38,
    float("inf"),
    float("-inf"),
    float("nan"),
    1.0 / 3.0,
    65504.0,
]
FLOOR_PAIRS = [(7, 3), (-7, 3), (-6, 3), (0, 5), (-1, 1000)]
MAX_PAIRS = [(1.0, 2.0), (float("nan"), 1.0), (1.0, float("nan")), (-3.0, -4.0)]
ARGMAX_ROWS = [
    [1.0, 3.0, 3.0, 2.0],
    [1.0, float("nan"), 5.0, float("nan")],
    [2.0, 2.0, 2.0, 2.0],
    [-1.0, -5.0, float("nan"), 9.0],
]


def _main() -> str:
    lines = [
        "#include <cstdio>",
        "#include <cstring>",
        "static unsigned int bits32(float f) { unsigned int u; memcpy(&u, &f, 4); return u; }",
        "int main() {",
    ]
    for key in KEYS:
        key_lit = cdefs.literal(key, dtypes.int64)
        lines.append(f'  for (long long i = 0; i < {COUNTERS}; ++i) printf("%u\\n", bits32(gc_random({key_lit}, i)));')
    for a, b in DIV_PAIRS:
        lines.append(
            f'  printf("%d\\n", gc_idiv<int, unsigned int>({cdefs.literal(a, dtypes.int32)}, '
            f"{cdefs.literal(b, dtypes.int32)}));"
        )
    for v in F32_VALUES:
        lines.append(f'  printf("%u\\n", bits32({cdefs.literal(v, dtypes.float32)}));')
        lines.append(f'  printf("%u\\n", bits32(gc_round_h({cdefs.literal(v, dtypes.float32)})));')
    for a, d in FLOOR_PAIRS:
        lines.append(f'  printf("%lld %lld\\n", gc_floordiv({a}LL, {d}LL), gc_mod({a}LL, {d}LL));')
    for a, b in MAX_PAIRS:
        fa, fb = cdefs.literal(a, dtypes.float32), cdefs.literal(b, dtypes.float32)
        lines.append(f'  printf("%u %u\\n", bits32(gc_max<float>({fa}, {fb})), bits32(gc_min<float>({fa}, {fb})));')
    for row in ARGMAX_ROWS:
        vals = ", ".join(cdefs.literal(v, dtypes.float32) for v in row)
        lines += [
            "  {",
            f"    const float r[] = {{{vals}}};",
            "    float bv = r[0]; long long bi = 0;",
            f"    for (long long i = 1; i < {len(row)}; ++i) "
            "if (gc_argmax_better(bv, bi, r[i], i)) { bv = r[i]; bi = i; }",
            '    printf("%lld\\n", bi);',
            "  }",
        ]
    return "\n".join(lines + ["  return 0;", "}"])


@pytest.fixture(scope="module")
def host_output(tmp_path_factory) -> list[str]:
    folder = tmp_path_factory.mktemp("prelude")
    src, exe = (
        os.path.join(folder, "prelude_host.cu"),
        os.path.join(folder, "prelude_host"),
    )
    with open(src, "w") as f:
        f.write(PRELUDE + "\n" + _main())
    proc = subprocess.run([rt.find_nvcc(), "-o", exe, src], check=False, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return subprocess.run([exe], capture_output=True, text=True, check=True).stdout.split("\n")


def test_random_is_bit_identical_to_the_reference(host_output):
    got = [int(x) for x in host_output[: len(KEYS) * COUNTERS]]
    expected = []
    for key in KEYS:
        ref = rules.evaluate(rules.Op.RANDOM, [np.int64(key)], {"shape": (COUNTERS,)})
        expected += [int(u) for u in ref.view(np.uint32)]
    assert got == expected


def test_integer_division_truncates_and_never_divides_by_0(host_output):
    # A zero divisor is an error (gc_check_div reports it before gc_idiv
    # runs); gc_idiv itself still gives 0 rather than trapping.
    start = len(KEYS) * COUNTERS
    got = np.array([int(x) for x in host_output[start : start + len(DIV_PAIRS)]])
    a = np.array([p[0] for p in DIV_PAIRS], np.int32)
    b = np.array([p[1] for p in DIV_PAIRS], np.int32)
    nonzero = b != 0
    assert got[nonzero].tolist() == rules.evaluate(rules.Op.DIV, [a[nonzero], b[nonzero]], {}).tolist()
    assert got[~nonzero].tolist() == [0] * int((~nonzero).sum())


def _section(out: list[str], start: int, n: int) -> list[str]:
    return out[start : start + n]


def test_float_literals_are_exact_and_half_rounding_matches_numpy(host_output):
    start = len(KEYS) * COUNTERS + len(DIV_PAIRS)
    got = _section(host_output, start, 2 * len(F32_VALUES))
    for i, v in enumerate(F32_VALUES):
        lit, half = int(got[2 * i]), int(got[2 * i + 1])
        f = np.array(v, np.float32)
        with np.errstate(over="ignore"):
            h = f.astype(np.float16).astype(np.float32)
        if np.isnan(f):
            assert np.isnan(np.uint32(lit).view(np.float32)) and np.isnan(np.uint32(half).view(np.float32))
            continue
        assert lit == int(f.view(np.uint32)), v
        assert half == int(h.view(np.uint32)), v


def test_index_floor_division_max_min_and_argmax(host_output):
    start = len(KEYS) * COUNTERS + len(DIV_PAIRS) + 2 * len(F32_VALUES)
    floor = _section(host_output, start, len(FLOOR_PAIRS))
    assert [tuple(map(int, x.split())) for x in floor] == [(a // d, a % d) for a, d in FLOOR_PAIRS]
    start += len(FLOOR_PAIRS)
    for line, (a, b) in zip(_section(host_output, start, len(MAX_PAIRS)), MAX_PAIRS):
        mx, mn = (np.uint32(int(t)).view(np.float32) for t in line.split())
        ref_max, ref_min = (
            np.maximum(np.float32(a), np.float32(b)),
            np.minimum(np.float32(a), np.float32(b)),
        )
        assert (np.isnan(mx) and np.isnan(ref_max)) or mx == ref_max
        assert (np.isnan(mn) and np.isnan(ref_min)) or mn == ref_min
    start += len(MAX_PAIRS)
    got = [int(x) for x in _section(host_output, start, len(ARGMAX_ROWS))]
    ref = rules.evaluate(rules.Op.ARGMAX, [np.array(ARGMAX_ROWS, np.float32)], {"axis": 1})
    assert got == ref.tolist()
