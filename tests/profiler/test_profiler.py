"""graphc.profiler: kernel times of compiled programs, their FLOPs and
bytes, eager op rows, record_function ranges, the table, the Chrome trace,
and the promise that nothing changes when no profiler runs."""

import json
import time

import numpy as np
import pytest

import graphc
import graphc.nn as nn
import graphc.nn.functional as F
import graphc.optim as optim
import graphc.runtime.cpu as cpu
import graphc.runtime.native as native
from graphc.codegen import cost
from graphc.codegen.llvm import module as llvm_module
from graphc.ir import dtypes
from graphc.ir.graph import Graph, const, input_node, node
from graphc.ir.ops import Op
from graphc.profiler import profile, record_function
from graphc.runtime import profiling

RNG = np.random.default_rng(0)


def _matmul_exe(m, k, n, name="mm"):
    a, b = input_node("a", (m, k), dtypes.float32), input_node("b", (k, n), dtypes.float32)
    exe = cpu.compile_cpu(Graph([a, b], [node(Op.DOT, a, b)], name=name))
    arrays = [RNG.standard_normal((m, k)).astype(np.float32), RNG.standard_normal((k, n)).astype(np.float32)]
    return exe, arrays


def _mlp_step(seed):
    graphc.manual_seed(seed)
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    opt = optim.Adam(model.parameters(), lr=1e-2)

    @graphc.compile
    def step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    return model, step


def _batch():
    gen = np.random.default_rng(1)
    x = graphc.tensor(gen.standard_normal((16, 64)).astype(np.float32))
    y = graphc.tensor(gen.integers(0, 10, 16))
    return x, y


def test_mlp_training_step_lists_its_kernels():
    model, step = _mlp_step(0)
    x, y = _batch()
    step(x, y)
    step(x, y)  # compiled from the second call on
    with profile() as prof:
        step(x, y)  # builds the timed program
        t0 = time.perf_counter()
        step(x, y)
        wall = time.perf_counter() - t0
    events = prof.events()
    calls = [e for e in events if e.cat == "program"]
    assert len(calls) == 2 and all(e.name.startswith("call @") for e in calls)
    kernels = [e for e in events if e.cat == "kernel" and e.start >= calls[1].start]
    assert len(kernels) >= 3
    assert any("_dot(" in e.name for e in kernels)
    total = sum(e.duration for e in kernels)
    assert 0 < total <= wall * 1.5
    # Every kernel lies inside its call.
    assert all(calls[1].start <= e.start <= e.end <= calls[1].end for e in kernels)
    assert [e.cat for e in events].count("compile") == 1  # the timed build, once
    rows = {r.key: r for r in prof.key_averages()}
    assert all(rows[e.name].count == 2 for e in kernels)
    assert sum(r.flops for r in rows.values() if r.cat == "kernel") > 0


def test_profiled_and_plain_programs_give_identical_results():
    x, y = _batch()
    plain_model, plain_step = _mlp_step(3)
    timed_model, timed_step = _mlp_step(3)
    plain_losses = [plain_step(x, y).item() for _ in range(4)]
    timed_losses = [timed_step(x, y).item() for _ in range(2)]
    with profile():
        timed_losses += [timed_step(x, y).item() for _ in range(2)]
    assert plain_losses == timed_losses
    for p, q in zip(plain_model.parameters(), timed_model.parameters()):
        np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy())


def test_training_step_matches_torch_under_the_profiler():
    torch = pytest.importorskip("torch")
    model, step = _mlp_step(5)
    x, y = _batch()
    ref = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    with torch.no_grad():
        for p, q in zip(ref.parameters(), model.parameters()):
            p.copy_(torch.from_numpy(q.detach().numpy().copy()))
    ref_opt = torch.optim.Adam(ref.parameters(), lr=1e-2)
    tx, ty = torch.from_numpy(x.numpy()), torch.from_numpy(y.numpy())
    with profile() as prof:
        for _ in range(3):
            got = step(x, y).item()
            ref_opt.zero_grad()
            want = torch.nn.functional.cross_entropy(ref(tx), ty)
            want.backward()
            ref_opt.step()
            assert got == pytest.approx(want.item(), rel=1e-4, abs=1e-5)
    assert any(e.cat == "kernel" for e in prof.events())


def test_matmul_kernel_flops_and_bytes():
    m, k, n = 48, 40, 24
    exe, arrays = _matmul_exe(m, k, n)
    (kern,) = [kk for kk in exe.program.kernels if kk.kind == "dot"]
    assert cost.kernel_flops(kern) == 2 * m * n * k
    assert cost.kernel_cost(kern, exe.program.buffers).bytes == 4 * (m * k + k * n + m * n)
    with profile() as prof:
        out = exe(arrays)[0]
    np.testing.assert_allclose(out, arrays[0] @ arrays[1], rtol=1e-4, atol=1e-4)
    (ev,) = [e for e in prof.events() if e.cat == "kernel"]
    assert ev.flops == 2 * m * n * k
    assert ev.bytes == 4 * (m * k + k * n + m * n)
    assert ev.name == "k0_dot(dot) @mm"


def test_elementwise_and_reduce_flops():
    x = input_node("x", (8, 16), dtypes.float32)
    y = node(Op.SUM, node(Op.MUL, node(Op.EXP, x), x), axes=(1,))
    exe = cpu.compile_cpu(Graph([x], [y], name="er"))
    (kern,) = exe.program.kernels
    # exp and mul per element, plus the sum's add.
    assert cost.kernel_flops(kern) == 8 * 16 * 3
    got = exe([np.ones((8, 16), np.float32)])[0]
    np.testing.assert_allclose(got, np.full(8, 16 * np.e, np.float32), rtol=1e-6)


def test_eager_ops_get_rows():
    a, b = graphc.randn(12, 7), graphc.randn(7, 5)
    with profile(record_shapes=True) as prof:
        c = a @ b
        d = c + c
    torch = pytest.importorskip("torch")
    want = torch.from_numpy(a.numpy()) @ torch.from_numpy(b.numpy())
    np.testing.assert_allclose(d.numpy(), (want + want).numpy(), rtol=1e-5, atol=1e-5)
    rows = {r.key: r for r in prof.key_averages()}
    assert rows["eager dot"].count == 1 and rows["eager dot"].flops == 2 * 12 * 5 * 7
    assert rows["eager add"].flops == 12 * 5
    assert rows["eager add"].bytes == 3 * 12 * 5 * 4
    shaped = {r.key for r in prof.key_averages(group_by_input_shape=True)}
    assert any(k.startswith("eager add [[12, 5], [12, 5]]") for k in shaped)
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20)
    assert "eager dot" in table and "GFLOP/s" in table and "% peak" in table


def test_record_function_ranges_nest_and_self_time():
    x = graphc.randn(64, 64)

    @record_function("decorated")
    def work():
        return x @ x

    with profile() as prof:
        with record_function("outer"):
            work()
            with record_function("inner"):
                x + x
    rows = {r.key: r for r in prof.key_averages()}
    assert {"outer", "inner", "decorated", "eager dot", "eager add"} <= set(rows)
    outer = rows["outer"]
    assert 0 <= outer.self_cpu_time_total < outer.cpu_time_total
    inside = rows["inner"].cpu_time_total + rows["decorated"].cpu_time_total
    assert outer.self_cpu_time_total == pytest.approx(outer.cpu_time_total - inside, rel=1e-6, abs=1e-3)
    # Outside a profiler a range records nothing and costs nothing visible.
    with record_function("nobody listens"):
        pass
    assert "nobody listens" not in {e.name for e in prof.events()}


def test_chrome_trace_loads_and_nests(tmp_path):
    exe, arrays = _matmul_exe(32, 32, 32, name="trace_mm")
    with profile() as prof:
        with record_function("my range"):
            exe(arrays)
            exe(arrays)
    path = tmp_path / "trace.json"
    prof.export_chrome_trace(path)
    doc = json.loads(path.read_text())
    events = doc["traceEvents"]
    assert events and all(e["ph"] == "X" and e["dur"] >= 0 for e in events)
    names = [e["name"] for e in events]
    assert "my range" in names and names.count("k0_dot(dot) @trace_mm") == 2
    kernel = next(e for e in events if e["name"] == "k0_dot(dot) @trace_mm")
    assert kernel["args"]["flops"] == 2 * 32**3
    call = next(e for e in events if e["name"] == "call @trace_mm")
    assert call["ts"] <= kernel["ts"] and kernel["ts"] + kernel["dur"] <= call["ts"] + call["dur"] + 1e-3
    assert not list(tmp_path.glob(".*.tmp"))  # the atomic write left no temp file


def test_plain_ir_has_no_timing_code():
    exe, _ = _matmul_exe(16, 16, 16)
    prog = exe.program
    plain = llvm_module.build_module(prog).ir
    timed = llvm_module.build_module(prog, profile=True).ir
    for marker in ("readcyclecounter", "clock_gettime"):
        assert marker not in plain
    assert "readcyclecounter" in timed or "clock_gettime" in timed
    assert native._key(prog) != native._key(prog, profile=True)
    assert native._key(prog) == native._key(prog, profile=False)


def test_profiling_off_leaves_the_plain_program_in_use():
    exe, arrays = _matmul_exe(20, 30, 40, name="off")
    exe(arrays)
    assert exe._profiled is None and profiling.ACTIVE is None  # no timed build made
    with profile() as prof:
        exe(arrays)
    n = len(prof.events())
    assert profiling.ACTIVE is None
    plain_calls = []
    exe.native.entry_ctx, original = (lambda ctx: plain_calls.append(ctx) or original(ctx)), exe.native.entry_ctx
    try:
        out = exe(arrays)[0]
    finally:
        exe.native.entry_ctx = original
    assert len(plain_calls) == 1  # the plain entry point ran
    assert len(prof.events()) == n  # and nothing was recorded
    np.testing.assert_allclose(out, arrays[0] @ arrays[1], rtol=1e-4, atol=1e-4)


def test_threaded_program_is_timed_per_kernel():
    old = cpu.get_num_threads()
    cpu.set_num_threads(2)
    try:
        x = input_node("x", (256, 256), dtypes.float32)
        w = input_node("w", (256, 256), dtypes.float32)
        h = node(Op.DOT, x, w)
        scale = node(Op.EXPAND, const(0.01, dtypes.float32), shape=(256, 256))
        y = node(Op.DOT, node(Op.EXP, node(Op.MUL, h, scale)), w)
        exe = cpu.compile_cpu(Graph([x, w], [y], name="threaded"))
        assert exe._threaded
        arrays = [RNG.standard_normal((256, 256)).astype(np.float32) for _ in range(2)]
        plain = exe(arrays)[0].copy()
        with profile() as prof:
            timed = exe(arrays)[0]
        np.testing.assert_array_equal(plain, timed)
        kernels = [e for e in prof.events() if e.cat == "kernel"]
        assert len(kernels) == len(exe.program.kernels) >= 2
        assert sum(e.duration for e in kernels) > 0
    finally:
        cpu.set_num_threads(old)


def test_debug_level_2_prints_a_table_per_call(monkeypatch, capsys):
    monkeypatch.setenv("GRAPHC_DEBUG", "2")
    exe, arrays = _matmul_exe(8, 9, 10, name="debug_mm")
    capsys.readouterr()
    exe(arrays)
    exe(arrays)
    err = capsys.readouterr().err
    assert err.count("profile of @debug_mm") == 2
    assert "k0_dot(dot) @debug_mm" in err and "Self CPU time total" in err
    assert profiling.ACTIVE is None


def test_table_arguments():
    a = graphc.randn(4, 4)
    with profile() as prof:
        for _ in range(3):
            a + a
        a * a
    averages = prof.key_averages()
    by_count = averages.table(sort_by="count", row_limit=1)
    assert "eager add" in by_count and "eager mul" not in by_count
    assert [r.count for r in averages if r.key == "eager add"] == [3]
    with pytest.raises(ValueError, match="unknown sort_by 'bogus'"):
        averages.table(sort_by="bogus")
    with pytest.raises(RuntimeError, match="not running"):
        prof.stop()
    with pytest.raises(TypeError, match="ProfilerActivity"):
        profile(activities=["cpu"])


def test_peak_is_measured_once():
    first = profiling.peak()
    assert first.gflops > 0 and first.gbps > 0
    assert profiling.peak() is first


def test_clock_ticks_advance_with_perf_counter():
    clock = profiling.clock()
    t0, c0 = time.perf_counter(), clock.read_ticks()
    time.sleep(0.01)
    t1, c1 = time.perf_counter(), clock.read_ticks()
    assert clock.seconds(c1 - c0) > 0
    # A loose bound: only that the tick length is the right order.
    assert 0.2 * (t1 - t0) < clock.seconds(c1 - c0) < 5 * (t1 - t0)


def test_graph_cache_hit_is_profiled_too():
    exe1, arrays = _matmul_exe(24, 16, 8, name="cached")
    exe2, _ = _matmul_exe(24, 16, 8, name="cached")  # the graph-level cache: no Program kept
    assert exe2._program is None
    with profile() as prof:
        out = exe2(arrays)[0]
    np.testing.assert_array_equal(out, exe1(arrays)[0])
    names = [e.name for e in prof.events() if e.cat == "kernel"]
    assert names == ["k0_dot(dot) @cached"]


def test_clock_gettime_build_is_valid_ir():
    # The timestamp non-x86 hosts use: the module must parse and verify.
    import llvmlite.binding as llvm
    from llvmlite import ir

    from graphc.codegen.llvm import timing

    module = ir.Module(name="t")
    module.triple = "aarch64-unknown-linux-gnu"
    fn = ir.Function(module, ir.FunctionType(ir.IntType(64), []), "stamp")
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    b.ret(timing.emit_timestamp(module, b))
    text = str(module)
    assert "clock_gettime" in text and "readcyclecounter" not in text
    llvm.parse_assembly(text).verify()
