"""The kernel-form verifier (codegen/verify.py): the programs real models
lower to pass it on both backends, and hand-broken programs fail it with a
message naming the kernel and the buffer."""

import dataclasses

import numpy as np
import pytest
from compiler_util import assert_matches

import graphc
import graphc.nn as nn
import graphc.nn.functional as F
import graphc.passes.autodiff as autodiff
import graphc.runtime.cpu as cpu
from graphc.codegen import kernel as kf
from graphc.codegen.lower import Stage, lower
from graphc.codegen.memory import Slot
from graphc.codegen.verify import KernelVerifyError, verify_program
from graphc.ir import dtypes as dt
from graphc.ir.graph import Graph, input_node, node
from graphc.ir.ops import Op
from graphc.passes.pipeline import PIPELINE, Timeline
from graphc.runtime import cuda as rt

RNG = np.random.default_rng(3)


class _Cnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4 * 4 * 4, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn(self.conv(x))), 2)
        return self.fc(x.flatten(1))


def _models():
    return {
        "cnn": (_Cnn(), graphc.randn(2, 1, 8, 8)),
        "mlp": (
            nn.Sequential(nn.Linear(8, 16), nn.GELU(), nn.LayerNorm(16), nn.Linear(16, 3), nn.LogSoftmax(-1)),
            graphc.randn(5, 8),
        ),
        "encoder": (nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True), graphc.randn(2, 5, 16)),
        "lstm": (nn.LSTM(4, 6, batch_first=True), graphc.randn(2, 3, 4)),
        "embedding": (nn.Sequential(nn.Embedding(11, 4), nn.Flatten(), nn.Linear(12, 2)), graphc.tensor([[1, 5, 10]])),
    }


@pytest.mark.parametrize("name", sorted(_models()))
@pytest.mark.parametrize("backend", ["llvm", "cuda"])
def test_real_model_programs_verify(name, backend):
    model, x = _models()[name]
    graph = graphc.trace(model, x)
    prog = (cpu.lower if backend == "llvm" else rt.lower)(graph)
    assert verify_program(prog) is prog
    if name == "encoder":  # the LLVM backend keeps its attention kernel, CUDA expands it
        assert ("attention" in [k.kind for k in prog.kernels]) == (backend == "llvm")


def test_training_step_program_with_aliases_verifies():
    """A joint forward+backward graph whose updated weight aliases its
    input: the plan writes it in place, and the verifier accepts that."""
    model, x = _models()["mlp"]
    graph = graphc.trace(lambda x: model(x).sum(), x)
    joint = autodiff.grad(graph, wrt=[n.attrs["name"] for n in graph.inputs if n.attrs["name"] != "x"])
    prog = lower(joint, {1: 1}, verify=True)
    assert prog.plan is not None and prog.plan.direct_aliases == {1: 1}
    # The compiled program runs and matches the interpreter (tests' helper).
    arrays = [np.asarray(RNG.standard_normal(n.shape), dtype=n.dtype.np) for n in joint.inputs]
    exe = assert_matches(joint, arrays, rtol=1e-4, atol=1e-5)
    verify_program(exe.program)


def test_driver_records_its_stages_and_passes_the_pipeline_hooks():
    x = input_node("x", (4, 8), dt.float32)
    stages: list[Stage] = []
    dumped: list[str] = []
    timeline = Timeline()
    graph = Graph([x], [node(Op.EXP, node(Op.NEG, node(Op.NEG, x)))], name="one")
    lower(graph, verify=True, stages=stages, dump=lambda name, g: dumped.append(name), timeline=timeline)
    assert [s.name for s in stages] == ["optimize", "fuse", "plan", "verify"]
    assert dumped[:4] == [name for name, _ in PIPELINE]
    assert [r.name for r in timeline.records] == dumped


def test_driver_debug_output(monkeypatch, capsys):
    x = input_node("x", (4, 8), dt.float32)
    graph = Graph([x], [node(Op.EXP, x)], name="dbg")
    monkeypatch.setenv("GRAPHC_DEBUG", "1")
    lower(graph)
    err = capsys.readouterr().err
    assert "pass timeline for @dbg" in err and "lowering timeline for @dbg" in err
    assert "after fuse" not in err and "memory plan of @dbg" not in err
    monkeypatch.setenv("GRAPHC_DEBUG", "3")
    lower(graph)
    err = capsys.readouterr().err
    assert "after fuse:\nprogram @dbg" in err and "memory plan of @dbg:\nbuffer" in err


def test_graphc_verify_runs_the_verifier_in_the_driver(monkeypatch):
    calls = []
    import graphc.codegen.lower as driver

    monkeypatch.setattr(driver, "verify_program", calls.append)
    x = input_node("x", (3,), dt.float32)
    graph = Graph([x], [node(Op.NEG, x)], name="neg")
    monkeypatch.setenv("GRAPHC_VERIFY", "0")
    lower(graph)
    assert calls == []
    monkeypatch.setenv("GRAPHC_VERIFY", "1")
    prog = lower(graph)
    assert calls == [prog]


# ---------------------------------------------------------------------------
# broken programs


def _elementwise_program():
    """One elementwise kernel: tanh(exp(x)) over x: f32[6, 5]."""
    x = input_node("x", (6, 5), dt.float32)
    return lower(Graph([x], [node(Op.TANH, node(Op.EXP, x))], name="ew"))


def _reduce_program():
    """Two reduce kernels and a temp (the row sums, 24 bytes) in the arena."""
    x = input_node("x", (6, 5), dt.float32)
    s = node(Op.SUM, node(Op.EXP, x), axes=(1,))
    y = node(Op.TANH, node(Op.ADD, x, node(Op.EXPAND, node(Op.RESHAPE, s, shape=(6, 1)), shape=(6, 5))))
    z = node(Op.SUM, y, axes=(0,))
    return lower(
        Graph([x], [node(Op.MUL, node(Op.EXPAND, node(Op.RESHAPE, z, shape=(1, 5)), shape=(6, 5)), y)], name="red")
    )


def _dot_program():
    a, b = input_node("a", (4, 8), dt.float32), input_node("b", (8, 3), dt.float32)
    return lower(Graph([a, b], [node(Op.DOT, a, b)], name="mm"))


def _kernel_of(prog, kind):
    return next(i for i, k in enumerate(prog.kernels) if k.kind == kind)


def _replace_kernel(prog, i, **changes):
    prog.kernels[i] = dataclasses.replace(prog.kernels[i], **changes)
    return prog.kernels[i].name


def _broken(prog, pattern):
    with pytest.raises(KernelVerifyError, match=pattern):
        verify_program(prog)


def test_the_unbroken_programs_verify():
    verify_program(_elementwise_program())
    verify_program(_reduce_program())
    verify_program(_dot_program())


def test_load_of_an_undeclared_buffer():
    prog = _elementwise_program()
    i = len(prog.kernels) - 1
    store = prog.kernels[i].stores[0]
    ghost = kf.load("ghost", store.index, store.value.dtype)
    name = _replace_kernel(prog, i, stores=(dataclasses.replace(store, value=ghost),))
    _broken(prog, f"program @ew, kernel {name}: reads buffer ghost, which is not declared")


def test_store_to_an_undeclared_buffer():
    prog = _elementwise_program()
    i = len(prog.kernels) - 1
    store = prog.kernels[i].stores[0]
    name = _replace_kernel(prog, i, stores=(dataclasses.replace(store, buffer="nowhere"),))
    _broken(prog, f"kernel {name}: writes buffer nowhere, which is not declared")


def test_constant_store_index_out_of_bounds():
    prog = _elementwise_program()
    i = len(prog.kernels) - 1
    store = prog.kernels[i].stores[0]
    buf = store.buffer
    name = _replace_kernel(prog, i, stores=(dataclasses.replace(store, index=store.index + 30),))
    _broken(prog, rf"kernel {name}: a store buffer {buf}: index range \[30, 59\] is outside its 30 elements")


def test_load_index_beyond_the_loop_extent():
    prog = _elementwise_program()
    i = len(prog.kernels) - 1
    store = prog.kernels[i].stores[0]
    value = kf.load("in0", kf.var("i0") * 5 + kf.var("i1") + 1, dt.float32)
    name = _replace_kernel(prog, i, stores=(dataclasses.replace(store, value=value),))
    _broken(prog, rf"kernel {name}: the store to .* loading buffer in0: index range \[1, 30\]")


def test_loop_variable_of_another_kernel():
    prog = _elementwise_program()
    i = len(prog.kernels) - 1
    store = prog.kernels[i].stores[0]
    name = _replace_kernel(prog, i, stores=(dataclasses.replace(store, index=kf.var("r0")),))
    _broken(prog, f"kernel {name}: the store to {store.buffer} reads loop variable r0")


def test_dot_without_an_operand():
    prog = _dot_program()
    name = _replace_kernel(prog, _kernel_of(prog, "dot"), b=None)
    _broken(prog, f"program @mm, kernel {name}: dot kernel lacks an operand")


def test_dot_operand_view_out_of_bounds():
    prog = _dot_program()
    i = _kernel_of(prog, "dot")
    a = prog.kernels[i].a
    name = _replace_kernel(prog, i, a=dataclasses.replace(a, offset=a.offset + 1))
    _broken(prog, rf"kernel {name}: operand a reads buffer {a.buffer} at \[1, 32\], outside its 32 elements")


def test_reduce_without_a_reducer():
    prog = _reduce_program()
    name = _replace_kernel(prog, _kernel_of(prog, "reduce"), reducer="")
    _broken(prog, f"kernel {name}: reduce kernel has reducer ''")


def test_reduce_without_a_value():
    prog = _reduce_program()
    name = _replace_kernel(prog, _kernel_of(prog, "reduce"), value=None)
    _broken(prog, f"kernel {name}: reduce kernel has no value to reduce")


def test_plan_missing_a_buffer():
    prog = _reduce_program()
    temp = next(n for n, b in prog.buffers.items() if b.kind == "temp")
    slots = {n: s for n, s in prog.plan.slots.items() if n != temp}
    prog.plan = dataclasses.replace(prog.plan, slots=slots)
    _broken(prog, f"program @red, memory plan: buffer {temp} has no slot")


def test_plan_with_overlapping_live_buffers():
    x = input_node("x", (16,), dt.float32)
    e = node(Op.SUM, node(Op.EXP, x), axes=(0,))
    m = node(Op.REDUCE_MAX, node(Op.SIN, x), axes=(0,))
    p = node(Op.PROD, node(Op.COS, x), axes=(0,))
    prog = lower(Graph([x], [node(Op.ADD, node(Op.ADD, e, m), p)], name="two"))
    temps = [n for n, b in prog.buffers.items() if b.kind == "temp"]
    assert len(temps) == 2  # the sum and the max live until the last kernel
    slots = dict(prog.plan.slots)
    slots[temps[1]] = Slot("arena", offset=slots[temps[0]].offset, nbytes=slots[temps[0]].nbytes)
    prog.plan = dataclasses.replace(prog.plan, slots=slots)
    _broken(prog, f"memory plan: buffers ({temps[0]} and {temps[1]}|{temps[1]} and {temps[0]}) are live at the same")


def test_plan_slot_smaller_than_its_buffer():
    prog = _reduce_program()
    temp = next(n for n, b in prog.buffers.items() if b.kind == "temp")
    slots = dict(prog.plan.slots)
    slots[temp] = dataclasses.replace(slots[temp], nbytes=4)
    prog.plan = dataclasses.replace(prog.plan, slots=slots)
    _broken(prog, f"memory plan: buffer {temp} \\(24 bytes\\) has arena slot")
