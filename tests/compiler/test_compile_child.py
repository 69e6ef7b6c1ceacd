"""The GEMM library compiled in a child process during a cold compile
(codegen/llvm/compile_child.py, runtime/native.py): the child's object code is
the one this process builds, a program using it computes the same numbers
as with the in-process build, and a failing child falls back to compiling
here."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import graphc.runtime.native as native
from graphc.codegen.llvm import compile_child

ROOT = Path(__file__).resolve().parents[2]

# A cold compile of a program with a GEMM-sized dot, in a fresh process (the
# GEMM engines live as long as the process), with the child path on or off.
SCRIPT = """
import sys
import numpy as np
import graphc.runtime.cpu as cpu
import graphc.runtime.native as native
from graphc.ir import dtypes as dt
from graphc.ir.graph import Graph, input_node, node
from graphc.ir.ops import Op

native.GEMM_IN_CHILD = sys.argv[1] == "1"
native._core_idle = lambda: True  # whatever the machine's load
a = input_node("a", (96, 80), dt.float32)
b = input_node("b", (80, 72), dt.float32)
g = Graph([a, b], [node(Op.TANH, node(Op.DOT, a, b))])
rng = np.random.default_rng(0)
x = rng.standard_normal((96, 80)).astype(np.float32)
y = rng.standard_normal((80, 72)).astype(np.float32)
(out,) = cpu.compile_cpu(g)([x, y])
np.save(sys.argv[2], out)
print(cpu.STATS["gemm_compiles"], cpu.STATS["gemm_child_compiles"])
"""


def _cold(tmp_path, in_child: bool):
    path = tmp_path / f"out{int(in_child)}.npy"
    env = dict(os.environ, GRAPHC_CACHE_DIR=str(tmp_path / f"cache{int(in_child)}"), GRAPHC_DEBUG="0")
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(int(in_child)), str(path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    return np.load(path), tuple(int(v) for v in done.stdout.split())


def test_child_object_equals_in_process_object():
    obj = native._gemm_object_in_child("f32")
    assert obj is not None
    assert obj == compile_child.library_object("gemm-f32")


def test_cold_compile_with_child_gemm_gives_identical_results(tmp_path):
    with_child, stats_child = _cold(tmp_path, True)
    in_process, stats_here = _cold(tmp_path, False)
    assert stats_child == (1, 1)  # the library was compiled, by the child
    assert stats_here == (1, 0)
    np.testing.assert_array_equal(with_child, in_process)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((96, 80)).astype(np.float32)
    y = rng.standard_normal((80, 72)).astype(np.float32)
    np.testing.assert_allclose(with_child, np.tanh(x.astype(np.float64) @ y), rtol=1e-5, atol=1e-5)


def test_failing_child_returns_none(monkeypatch):
    monkeypatch.setattr(sys, "executable", str(ROOT / "no-such-python"))
    assert native._gemm_object_in_child("f32") is None


def test_unknown_library_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown library 'gemm-f16'"):
        compile_child.library_object("gemm-f16")
    assert compile_child.main([]) == 2
