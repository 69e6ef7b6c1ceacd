"""The differential GPU suite: every primitive, random graphs and a whole
training step run on the cuda backend and are compared with the numpy
reference interpreter; plus index errors, in-place aliases, out-of-memory
and the compile cache. Each test runs on the GPU (needs an NVIDIA GPU and
pycuda, skipped elsewhere with the reason; `pytest -m cuda tests/cuda`
selects these) and on the host emulator (tests/cuda/cuda_emu.py), which
runs the same generated CUDA C and the same runtime without a GPU."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from cuda_cases import all_cases, mlp_training_step

from graphc.ir import dtypes
from graphc.ir.graph import Graph, const, input_node, node
from graphc.ir.ops import Op
from graphc.runtime import backends, interpreter
from graphc.runtime import cuda as rt

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ir"))
from graphgen import random_graph  # noqa: E402

pytestmark = pytest.mark.usefixtures("cuda_device")

# Per-dtype tolerances: GPU transcendentals differ from numpy's by a few
# ulps and sums run in another order; integers, bools and RANDOM are exact.
_TOL = {
    dtypes.float16: (2e-2, 2e-2),
    dtypes.float32: (2e-5, 1e-5),
    dtypes.float64: (1e-12, 1e-12),
}
_SUM_TOL = {
    dtypes.float16: (5e-2, 5e-2),
    dtypes.float32: (1e-4, 1e-4),
    dtypes.float64: (1e-10, 1e-10),
}


def assert_same_as_interpreter(graph: Graph, inputs, aliases=None) -> list[np.ndarray]:
    want = interpreter.run(graph, [a.copy() for a in inputs])
    exe = backends.compile_graph(graph, "cuda", aliases)
    got = exe([a.copy() for a in inputs])
    reduces = any(n.op in (Op.SUM, Op.PROD, Op.DOT, Op.FOLD, Op.SCATTER_ADD) for n in graph.nodes)
    for i, (g, w, out) in enumerate(zip(got, want, graph.outputs)):
        assert g.dtype == w.dtype and g.shape == w.shape, f"output {i}: {g.dtype}{g.shape} vs {w.dtype}{w.shape}"
        if w.dtype.kind == "f":
            rtol, atol = (_SUM_TOL if reduces else _TOL)[out.dtype]
            np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, err_msg=f"{graph.name} output {i}")
        else:
            np.testing.assert_array_equal(g, w, err_msg=f"{graph.name} output {i}")
    return got


CASES = all_cases()


@pytest.mark.parametrize("name,graph,inputs", CASES, ids=[c[0] for c in CASES])
def test_primitive_matches_interpreter(name, graph, inputs):
    assert_same_as_interpreter(graph, inputs)


def test_random_is_bit_identical():
    key = input_node("key", (), dtypes.int64)
    graph = Graph([key], [node(Op.RANDOM, key, shape=(257, 33))])
    for k in (0, 7, -3, 2**62):
        got = backends.compile_graph(graph, "cuda")([np.array(k, np.int64)])[0]
        want = interpreter.run(graph, [np.array(k, np.int64)])[0]
        assert got.view(np.uint32).tolist() == want.view(np.uint32).tolist()


def test_training_step_matches_interpreter():
    _, graph, inputs = mlp_training_step(batch=64, n_in=100, hidden=96, classes=10)
    assert_same_as_interpreter(graph, inputs)


def _random_graph(rng: np.random.Generator, index: int) -> tuple[Graph, list[np.ndarray]]:
    """A random chain of elementwise, movement, reduction and dot ops."""
    shape = (int(rng.integers(1, 40)), int(rng.integers(1, 300)))
    a, b = (
        input_node("a", shape, dtypes.float32),
        input_node("b", shape, dtypes.float32),
    )
    w = input_node("w", (shape[1], int(rng.integers(1, 70))), dtypes.float32)
    values, cur = [a, b], a
    for _ in range(int(rng.integers(2, 8))):
        choice = int(rng.integers(0, 7))
        other = values[int(rng.integers(0, len(values)))]
        if other.shape != cur.shape:
            other = cur
        if choice == 0:
            cur = node(Op.TANH, cur)
        elif choice == 1:
            cur = node([Op.ADD, Op.MUL, Op.MAX, Op.SUB][int(rng.integers(0, 4))], cur, other)
        elif choice == 2 and cur.ndim == 2:
            row = node(Op.RESHAPE, node(Op.REDUCE_MAX, cur, axes=(1,)), shape=(cur.shape[0], 1))
            cur = node(Op.SUB, cur, node(Op.EXPAND, row, shape=cur.shape))
        elif choice == 3 and cur.ndim == 2:
            cur = node(Op.PERMUTE, node(Op.PERMUTE, cur, perm=(1, 0)), perm=(1, 0))
        elif choice == 4:
            cur = node(
                Op.WHERE,
                node(Op.CMPLT, cur, other),
                cur,
                node(Op.EXP, node(Op.NEG, node(Op.MUL, other, other))),
            )
        elif choice == 5 and cur.shape == a.shape:
            cur = node(Op.DOT, cur, w)
        values.append(cur)
    total = node(Op.SUM, cur, axes=tuple(range(cur.ndim)))
    inputs = [rng.standard_normal(n.shape).astype(np.float32) for n in (a, b, w)]
    return Graph([a, b, w], [cur, total], name=f"random{index}"), inputs


@pytest.mark.parametrize("seed", range(20))
def test_random_graph_matches_interpreter(seed):
    graph, inputs = _random_graph(np.random.default_rng(seed), seed)
    assert_same_as_interpreter(graph, inputs)


@pytest.mark.parametrize("seed", range(40))
def test_generated_graph_matches_interpreter(seed):
    """The IR tests' random well-typed graphs (every dtype and primitive
    family; tests/ir/graphgen.py), as the CPU backend runs them."""
    case = random_graph(np.random.default_rng(1000 + seed), max_steps=12, max_numel=4096)
    try:
        interpreter.run(case.graph, [a.copy() for a in case.arrays])
    except Exception as e:  # noqa: BLE001 - e.g. a generated index out of range
        pytest.skip(f"reference raises {type(e).__name__}")
    assert_same_as_interpreter(case.graph, case.arrays)


def test_out_of_range_gather_raises_index_error_and_program_recovers():
    x, idx = (
        input_node("x", (5, 2), dtypes.float32),
        input_node("i", (3, 2), dtypes.int64),
    )
    graph = Graph([x, idx], [node(Op.GATHER, x, idx, axis=0)])
    exe = backends.compile_graph(graph, "cuda")
    data = np.arange(10, dtype=np.float32).reshape(5, 2)
    with pytest.raises(IndexError, match="index 7 is out of bounds for a dimension of size 5"):
        exe([data, np.array([[0, 1], [7, 2], [3, 4]], np.int64)])
    good = np.array([[0, 1], [4, 2], [3, 4]], np.int64)
    np.testing.assert_array_equal(exe([data, good])[0], interpreter.run(graph, [data, good])[0])


def test_aliased_outputs_are_written_into_their_inputs():
    p, g = (
        input_node("p", (1000,), dtypes.float32),
        input_node("g", (1000,), dtypes.float32),
    )
    lr = node(Op.EXPAND, const(0.5, dtypes.float32), shape=(1000,))
    graph = Graph([p, g], [node(Op.SUB, p, node(Op.MUL, g, lr))])
    exe = backends.compile_graph(graph, "cuda", {0: 0})
    param, grad = np.ones(1000, np.float32), np.full(1000, 2.0, np.float32)
    out = exe([param, grad])
    assert out[0] is param
    np.testing.assert_array_equal(param, np.zeros(1000, np.float32))


def test_out_of_memory_is_a_clear_error_and_the_process_survives():
    with pytest.raises(rt.CudaOutOfMemoryError, match="out of GPU memory"):
        rt.memory_pool().allocate(1 << 50)
    small = rt.memory_pool().allocate(1024)
    rt.memory_pool().free(small)


def test_second_compile_hits_the_disk_cache():
    x = input_node("x", (33,), dtypes.float64)
    graph = Graph([x], [node(Op.SQRT, node(Op.MUL, x, x))])
    backends.compile_graph(graph, "cuda")
    hits = rt.STATS["disk_hits"]
    backends.compile_graph(graph, "cuda")
    assert rt.STATS["disk_hits"] == hits + 1
