"""Parallel compiles: a program's module split at kernel boundaries
(codegen/llvm/split.py), compile workers (codegen/llvm/compile_worker.py,
runtime/compile_pool.py) and the multi-object programs runtime/native.py
loads and caches. A split program computes what the unsplit one does, a
worker's object is the one this process builds, and a failing worker never
fails a compile."""

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import llvmlite.binding as llvm
import numpy as np
import pytest

import graphc.runtime.cpu as cpu
import graphc.runtime.native as native
from graphc import config
from graphc.codegen.llvm import compile_worker, split, target
from graphc.codegen.llvm import module as llvm_module
from graphc.ir import dtypes as dt
from graphc.ir.graph import Graph, input_node, node
from graphc.ir.ops import Op
from graphc.runtime import cache, compile_pool

ROOT = Path(__file__).resolve().parents[2]


def _graph():
    """A few kernels: a GEMM with a tanh epilogue, a row sum, a softmax-like
    reduction and elementwise work."""
    a = input_node("a", (96, 80), dt.float32)
    b = input_node("b", (80, 72), dt.float32)
    h = node(Op.TANH, node(Op.DOT, a, b))
    s = node(Op.SUM, node(Op.EXP, h), axes=(1,))
    out = node(Op.DIV, node(Op.EXP, h), node(Op.EXPAND, node(Op.RESHAPE, s, shape=(96, 1)), shape=(96, 72)))
    return Graph([a, b], [out, node(Op.SUM, node(Op.MUL, a, a), axes=(0,))])


def _inputs():
    rng = np.random.default_rng(0)
    return [rng.standard_normal((96, 80)).astype(np.float32), rng.standard_normal((80, 72)).astype(np.float32)]


def _expected(x, y):
    h = np.tanh(x.astype(np.float64) @ y)
    e = np.exp(h)
    return [e / e.sum(axis=1, keepdims=True), (x.astype(np.float64) ** 2).sum(axis=0)]


@pytest.fixture
def pool(monkeypatch):
    """A fresh pool with one worker allowed, used whatever the machine's
    load, and parts however small; workers closed afterwards."""
    compile_pool._shutdown()
    monkeypatch.delenv("GRAPHC_CACHE", raising=False)
    monkeypatch.setenv("GRAPHC_COMPILE_WORKERS", "1")
    monkeypatch.setattr(compile_pool, "idle_cores", lambda: 4)
    monkeypatch.setattr(split, "MIN_PART_COST", 0)
    native._MEMORY_CACHE.clear()  # compile for real, not from an earlier test
    yield compile_pool
    compile_pool._shutdown()


def _defined(text):
    return re.findall(r'^define (internal )?[^@]*@"?([\w.$-]+)"?\(', text, re.M)


def test_split_parts_define_each_kernel_once_and_verify(monkeypatch):
    monkeypatch.setattr(split, "MIN_PART_COST", 0)
    prog = cpu.lower(_graph())
    whole = llvm_module.build_module(prog)
    info = llvm_module.build_module(prog, parts=3)
    texts = (info.ir,) + info.part_irs
    assert len(texts) == 3
    kernels = {k.name for k in prog.kernels}
    seen: dict[str, int] = {}
    for t in texts:
        mod = llvm.parse_assembly(t)
        mod.verify()
        for internal, name in _defined(t):
            if name in kernels or name in split.ROOTS:
                seen[name] = seen.get(name, 0) + 1
                # Kernels called from another part must be visible to the linker.
                assert not internal or "entry" in {n for _, n in _defined(t)}
    assert seen == {name: 1 for name in kernels | set(split.ROOTS)}
    # Every function of the unsplit module is defined somewhere.
    assert {n for _, n in _defined(whole.ir)} == {n for t in texts for _, n in _defined(t)}


def _shared_helper_module():
    """entry(out) calls kernels k1..k3 and a barrier; k1 also calls the
    barrier (as a K-split GEMM does); k2 calls its own epilogue helper.
    Each writes out[i]; the barrier counts its calls in out[0]."""
    from llvmlite import ir

    i64 = ir.IntType(64)
    p64 = i64.as_pointer()
    m = ir.Module(name="shared")
    m.triple, m.data_layout = target.triple_and_layout()

    def fn(name, internal=True):
        f = ir.Function(m, ir.FunctionType(ir.VoidType(), [p64]), name)
        if internal:
            f.linkage = "internal"
            f.attributes.add("noinline")
        return f, ir.IRBuilder(f.append_basic_block())

    def bump(b, out, slot, by):
        at = b.gep(out, [ir.Constant(i64, slot)])
        b.store(b.add(b.load(at), ir.Constant(i64, by)), at)

    barrier, b = fn("barrier")
    bump(b, barrier.args[0], 0, 1)
    b.ret_void()
    epi, b = fn("k2_epi")
    bump(b, epi.args[0], 2, 20)
    b.ret_void()
    kernels = []
    for i in (1, 2, 3):
        k, b = fn(f"k{i}")
        bump(b, k.args[0], i, i)
        if i == 1:
            b.call(barrier, [k.args[0]])
        if i == 2:
            b.call(epi, [k.args[0]])
        b.ret_void()
        kernels.append(k)
    entry, b = fn("entry", internal=False)
    for k in kernels:
        b.call(k, [entry.args[0]])
        b.call(barrier, [entry.args[0]])
    b.ret_void()
    ctx, b = fn("entry_ctx", internal=False)
    b.call(entry, [ctx.args[0]])
    b.ret_void()
    return m


def test_split_copies_shared_helpers_and_exports_only_kernels(monkeypatch):
    import ctypes

    monkeypatch.setattr(split, "MIN_PART_COST", 0)
    texts = split.split_module(_shared_helper_module(), 3)
    assert len(texts) == 3
    defs = [dict((n, bool(i)) for i, n in _defined(t)) for t in texts]
    for name in ("k1", "k2", "k3", "entry"):
        assert sum(name in d for d in defs) == 1
    # The barrier is copied wherever it is called, always internal; the
    # epilogue goes with its kernel.
    assert all(d.get("barrier", True) for d in defs)
    assert all(("k2_epi" in d) == ("k2" in d) for d in defs)
    for t, d in zip(texts, defs):
        called = set(re.findall(r'call void @"?(\w+)"?\(', t))
        for c in called - set(d):
            assert any(c in other and not other[c] for other in defs), f"{c} is not visible to the linker"
    objs = [target.emit_object(target.optimize(t)) for t in texts]
    engine, addr = native._engine(objs, "entry_ctx")
    out = (ctypes.c_int64 * 4)()
    ctypes.CFUNCTYPE(None, ctypes.c_void_p)(addr)(ctypes.addressof(out))
    assert list(out) == [4, 1, 22, 3]  # 3 barriers from entry, 1 from k1


def test_too_little_work_is_not_split():
    prog = cpu.lower(_graph())
    info = llvm_module.build_module(prog, parts=4)  # the real MIN_PART_COST
    assert info.part_irs == ()
    assert split.cost(info.ir) < 2 * split.MIN_PART_COST


def test_split_program_computes_what_the_unsplit_one_does(pool, monkeypatch, tmp_path):
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path))
    x, y = _inputs()
    before = dict(native.STATS)
    monkeypatch.setattr(compile_pool, "max_workers", lambda: 0)
    plain = cpu.compile_cpu(_graph())([x, y])
    monkeypatch.setattr(compile_pool, "max_workers", lambda: 1)
    native._MEMORY_CACHE.clear()
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path / "split"))
    exe = cpu.compile_cpu(_graph())
    split_out = exe([x, y])
    assert native.STATS["compiles"] == before["compiles"] + 2
    assert len(cache.load(exe.native.key)[1]["object_sizes"]) > 1
    for got, want, ref in zip(split_out, plain, _expected(x, y)):
        np.testing.assert_array_equal(got, want)
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)


def test_split_program_round_trips_through_the_disk_cache(pool, monkeypatch, tmp_path):
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path))
    x, y = _inputs()
    exe = cpu.compile_cpu(_graph())
    first = exe([x, y])
    key = exe.native.key
    blob, manifest = cache.load(key)
    assert len(manifest["object_sizes"]) > 1 and sum(manifest["object_sizes"]) == len(blob)
    native._MEMORY_CACHE.clear()
    hits = native.STATS["disk_hits"]
    again = cpu.compile_cpu(_graph())([x, y])
    assert native.STATS["disk_hits"] > hits
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    # Sizes that do not add up: the entry is ignored, not misread.
    cache.store(key, blob, dict(manifest, object_sizes=[1]))
    assert native._load_native(key) is None


def test_worker_object_is_the_one_built_here(pool):
    text = llvm_module.build_module(cpu.lower(_graph())).ir
    obj = pool.compile_elsewhere(text, target.OPT_LEVEL)
    assert obj is not None
    assert obj == target.emit_object(target.optimize(text))
    assert pool.STATS["jobs"] >= 1


def test_compile_objects_returns_each_text_s_object(pool):
    prog = cpu.lower(_graph())
    info = llvm_module.build_module(prog, parts=3)
    texts = (info.ir,) + info.part_irs
    objs = pool.compile_objects(texts)
    assert objs == [target.emit_object(target.optimize(t)) for t in texts]


def test_failing_worker_falls_back_to_compiling_here(pool, monkeypatch, tmp_path):
    monkeypatch.setattr(compile_pool, "_SCRIPT", str(tmp_path / "no-such-worker.py"))
    text = llvm_module.build_module(cpu.lower(_graph())).ir
    assert pool.compile_elsewhere(text, target.OPT_LEVEL) is None
    failures = pool.STATS["failures"]
    assert pool.compile_objects([text, text]) == [target.emit_object(target.optimize(text))] * 2
    assert pool.STATS["failures"] >= failures


def test_stuck_worker_times_out_and_is_dropped(pool, monkeypatch, tmp_path):
    stuck = tmp_path / "stuck_worker.py"
    stuck.write_text("import sys, time\nprint('ready', flush=True)\nsys.stdin.readline()\ntime.sleep(60)\n")
    monkeypatch.setattr(compile_pool, "_SCRIPT", str(stuck))
    monkeypatch.setattr(compile_pool, "REQUEST_TIMEOUT_S", 0.5)
    text = llvm_module.build_module(cpu.lower(_graph())).ir
    failures = pool.STATS["failures"]
    assert pool.compile_elsewhere(text, target.OPT_LEVEL) is None
    assert pool.STATS["failures"] == failures + 1
    assert not pool._LIVE  # killed, not kept
    assert pool.compile_objects([text, text]) == [target.emit_object(target.optimize(text))] * 2


def test_worker_reports_bad_ir_and_the_error_comes_from_here(pool):
    assert pool.compile_elsewhere("this is not LLVM IR", 2) is None
    with pytest.raises(RuntimeError, match="expected top-level entity"):
        pool.compile_objects(["this is not LLVM IR"])


def test_worker_protocol():
    text = b"define i64 @f(i64 %x) {\n  %y = add i64 %x, 1\n  ret i64 %y\n}\n"
    out = io.BytesIO()
    assert compile_worker.serve(io.BytesIO(b"2 %d\n" % len(text) + text + b"1 5\nnope!"), out) == 0
    reply = io.BytesIO(out.getvalue())
    assert reply.readline() == b"ready\n"
    status, size = reply.readline().split()
    assert status == b"ok" and reply.read(int(size)) == compile_worker.compile_text(text.decode(), 2)
    status, size = reply.readline().split()
    assert status == b"error" and b"expected top-level entity" in reply.read(int(size))
    out = io.BytesIO()
    assert compile_worker.serve(io.BytesIO(b"garbage\n"), out) == 2
    assert b"bad request header" in out.getvalue()


def test_workers_knob(monkeypatch):
    monkeypatch.setenv("GRAPHC_COMPILE_WORKERS", "0")
    assert compile_pool.max_workers() == 0 and compile_pool.available() == 0
    monkeypatch.setenv("GRAPHC_COMPILE_WORKERS", "3")
    assert compile_pool.max_workers() == 3
    monkeypatch.delenv("GRAPHC_COMPILE_WORKERS")
    assert compile_pool.max_workers() == min((os.cpu_count() or 1) - 1, 8)
    assert config.knob("GRAPHC_COMPILE_WORKERS").changes_code is False


def test_forked_child_starts_without_the_parent_s_workers(pool):
    pool.warm()
    assert pool._IDLE
    pid = os.fork()
    if pid == 0:  # the child: report through the exit status only
        os._exit(0 if not compile_pool._IDLE and not compile_pool._LIVE else 1)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    assert pool._IDLE  # the parent keeps its own


# A cold compile in a fresh process (the GEMM library is built once per
# process), with the workers on or off.
SCRIPT = """
import sys
import numpy as np
import graphc.runtime.cpu as cpu
import graphc.runtime.native as native
from graphc.runtime import compile_pool
from graphc.ir import dtypes as dt
from graphc.ir.graph import Graph, input_node, node
from graphc.ir.ops import Op

compile_pool.idle_cores = lambda: 4  # whatever the machine's load
a = input_node("a", (96, 80), dt.float32)
b = input_node("b", (80, 72), dt.float32)
g = Graph([a, b], [node(Op.TANH, node(Op.DOT, a, b))])
rng = np.random.default_rng(0)
x = rng.standard_normal((96, 80)).astype(np.float32)
y = rng.standard_normal((80, 72)).astype(np.float32)
(out,) = cpu.compile_cpu(g)([x, y])
np.save(sys.argv[1], out)
print(cpu.STATS["gemm_compiles"], cpu.STATS["gemm_worker_compiles"])
"""


def _cold(tmp_path, workers: int):
    path = tmp_path / f"out{workers}.npy"
    env = dict(
        os.environ,
        GRAPHC_CACHE_DIR=str(tmp_path / f"cache{workers}"),
        GRAPHC_DEBUG="0",
        GRAPHC_COMPILE_WORKERS=str(workers),
    )
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(path)], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return np.load(path), tuple(int(v) for v in done.stdout.split())


def test_gemm_library_built_by_a_worker_gives_identical_results(tmp_path):
    by_worker, stats_worker = _cold(tmp_path, 1)
    here, stats_here = _cold(tmp_path, 0)
    assert stats_worker == (1, 1)  # the library was compiled, by the worker
    assert stats_here == (1, 0)
    np.testing.assert_array_equal(by_worker, here)
    x, y = _inputs()
    np.testing.assert_allclose(by_worker, np.tanh(x.astype(np.float64) @ y), rtol=1e-5, atol=1e-5)
