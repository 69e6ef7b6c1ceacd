"""The ARGSORT primitive: reference semantics (stable, NaN largest), its
expansion for the compiled backends (passes/lower.py), and the LLVM backend
against the interpreter."""

from __future__ import annotations

import numpy as np
import pytest

from graphc.ir import dtypes
from graphc.ir.graph import Graph, IRTypeError, input_node, node
from graphc.ir.ops import Op
from graphc.ir.rules import evaluate
from graphc.passes import lower as lower_pass
from graphc.passes.lower import lower
from graphc.runtime import interpreter


def _graph(shape, dtype, axis, descending):
    x = input_node("x", shape, dtype)
    return Graph([x], [node(Op.ARGSORT, x, axis=axis, descending=descending)], "argsort")


def _data(shape, dtype, rng):
    if dtype.is_float:
        a = rng.integers(-3, 4, size=shape).astype(dtype.np)  # many ties
        a[rng.random(shape) < 0.15] = np.nan
        return a
    if dtype.is_bool:
        return rng.random(shape) < 0.5
    return rng.integers(-3, 4, size=shape).astype(dtype.np)


def _torch_argsort(a, axis, descending):
    torch = pytest.importorskip("torch")
    return torch.sort(torch.from_numpy(a), dim=axis, descending=descending, stable=True).indices.numpy()


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("dtype", [dtypes.float32, dtypes.int64, dtypes.bool_, dtypes.float64])
def test_reference_is_torch_stable_sort(dtype, descending):
    rng = np.random.default_rng(0)
    a = _data((4, 9), dtype, rng)
    for axis in (0, 1):
        got = evaluate(Op.ARGSORT, [a], {"axis": axis, "descending": descending})
        np.testing.assert_array_equal(got, _torch_argsort(a, axis, descending))


@pytest.mark.parametrize("network", [False, True], ids=["ranks", "bitonic"])
@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("dtype", [dtypes.float32, dtypes.int32, dtypes.bool_])
def test_expansion_matches_reference(dtype, descending, network, monkeypatch):
    if network:
        monkeypatch.setattr(lower_pass, "RANK_SORT_MAX", 0)
    rng = np.random.default_rng(1)
    for shape, axis in (((3, 7), 1), ((6, 2, 3), 0), ((5,), 0), ((2, 16), 1), ((2, 33), 1), ((1,), 0)):
        g = _graph(shape, dtype, axis, descending)
        lowered = lower(g)
        assert not any(n.op is Op.ARGSORT for n in lowered.nodes)
        a = _data(shape, dtype, rng)
        want = interpreter.run(g, [a])[0]
        np.testing.assert_array_equal(interpreter.run(lowered, [a])[0], want)


@pytest.mark.parametrize("network", [False, True], ids=["ranks", "bitonic"])
@pytest.mark.parametrize("descending", [False, True])
def test_llvm_backend_matches_interpreter(descending, network, monkeypatch):
    import graphc.runtime.cpu as cpu

    if network:
        monkeypatch.setattr(lower_pass, "RANK_SORT_MAX", 4)  # the 11-long rows; not the 4-long columns
    rng = np.random.default_rng(2)
    a = _data((4, 11), dtypes.float32, rng)
    for axis in (0, 1):
        g = _graph((4, 11), dtypes.float32, axis, descending)
        got = cpu.compile_cpu(g)([a.copy()])[0]
        np.testing.assert_array_equal(got, interpreter.run(g, [a])[0])


def test_sort_threshold_is_part_of_the_cpu_cache_key(monkeypatch):
    # Otherwise the bitonic test above could run the rank-count program
    # cached for the same graph.
    import graphc.runtime.cpu as cpu

    g = _graph((4, 11), dtypes.float32, 1, False)
    before = cpu.graph_key(g, {})
    monkeypatch.setattr(lower_pass, "RANK_SORT_MAX", 4)
    assert cpu.graph_key(g, {}) != before


def test_shape_rule_checks_axis_and_flag():
    x = input_node("x", (3, 4), dtypes.float32)
    assert node(Op.ARGSORT, x, axis=1, descending=False).type.dtype is dtypes.int64
    with pytest.raises(IRTypeError, match="argsort"):
        node(Op.ARGSORT, x, axis=2, descending=False)
    with pytest.raises(IRTypeError, match="descending"):
        node(Op.ARGSORT, x, axis=0, descending=1)


def test_text_ir_round_trip():
    from graphc.ir.parser import parse_graph

    g = _graph((3, 4), dtypes.float32, 1, True)
    text = str(g)
    assert "argsort %x {axis=1, descending=true}" in text
    assert parse_graph(text).outputs == g.outputs
