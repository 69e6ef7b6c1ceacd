"""The compile cache: memory hits, disk hits, new shapes recompile, corrupt
entries recover, concurrent writers of one entry are safe."""

import multiprocessing as mp
import os
from pathlib import Path

import numpy as np

import runtime.cache as cache
import runtime.cpu as cpu
from graphc.ir import dtypes as dt
from graphc.ir.graph import ConstArray, Graph, input_node, node
from graphc.ir.ops import Op


def graph(n, op=Op.TANH):
    x = input_node("x", (n, 3), dt.float32)
    return Graph([x], [node(Op.ADD, node(op, x), x)])


def run(g):
    x = np.linspace(-1, 1, g.inputs[0].type.numel, dtype=np.float32).reshape(g.inputs[0].shape)
    (out,) = cpu.compile_cpu(g)([x])
    np.testing.assert_allclose(out, np.tanh(x) + x if "tanh" in str(g.outputs[0].srcs) else out, rtol=1e-6)
    return out


def test_memory_hit_and_new_shape_recompiles():
    before = dict(cpu.STATS)
    run(graph(101))
    run(graph(101))
    assert cpu.STATS["memory_hits"] == before["memory_hits"] + 1
    run(graph(102))
    assert cpu.STATS["compiles"] + cpu.STATS["disk_hits"] >= before["compiles"] + before["disk_hits"] + 2


def test_disk_hit_after_memory_cache_cleared():
    g = graph(103)
    first = run(g)
    cpu._MEMORY_CACHE.clear()
    before = cpu.STATS["disk_hits"]
    np.testing.assert_array_equal(run(g), first)
    assert cpu.STATS["disk_hits"] == before + 1


def _entry_files(key):
    d = cache.cache_dir()
    return d / f"{key}.o", d / f"{key}.json"


def test_corrupt_entry_is_recompiled():
    g = graph(104)
    first = run(g)
    key = cpu._key(cpu.lower(g))
    obj, manifest = _entry_files(key)
    assert obj.exists() and manifest.exists()
    obj.write_bytes(b"garbage" + obj.read_bytes()[7:])
    cpu._MEMORY_CACHE.clear()
    before = dict(cpu.STATS)
    np.testing.assert_array_equal(run(g), first)
    assert cpu.STATS["compiles"] == before["compiles"] + 1
    assert cache.load(key) is not None  # rewritten, valid again
    manifest.write_text("{not json")
    assert cache.load(key) is None


def _compile_in_child(cache_dir, n, barrier):
    os.environ["GRAPHC_CACHE_DIR"] = cache_dir
    barrier.wait()
    for _ in range(3):
        cpu._MEMORY_CACHE.clear()
        run(graph(n))


def test_two_processes_write_same_entry(tmp_path):
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_compile_in_child, args=(str(tmp_path), 105, barrier)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    files = sorted(Path(tmp_path).iterdir())
    assert all(f.suffix in (".json", ".o") for f in files)  # no temp files left
    objects = [f for f in files if f.suffix == ".o"]
    graphs = [f for f in files if f.suffix == ".json" and not f.with_suffix(".o").exists()]
    assert len(objects) == 1 and len(graphs) == 1  # one program entry, one graph entry
    old = os.environ["GRAPHC_CACHE_DIR"]
    os.environ["GRAPHC_CACHE_DIR"] = str(tmp_path)
    try:
        assert cache.load(objects[0].stem) is not None
        assert cache.load_manifest(graphs[0].stem)["object_key"] == objects[0].stem
    finally:
        os.environ["GRAPHC_CACHE_DIR"] = old


def test_graph_entry_hit_skips_lowering(monkeypatch):
    g = graph(106)
    first = run(g)
    cpu._MEMORY_CACHE.clear()
    monkeypatch.setattr(cpu, "lower", lambda *a, **k: (_ for _ in ()).throw(AssertionError("lowered")))
    before = cpu.STATS["disk_hits"]
    exe = cpu.compile_cpu(g)
    assert cpu.STATS["disk_hits"] == before + 1
    x = np.linspace(-1, 1, 106 * 3, dtype=np.float32).reshape(106, 3)
    np.testing.assert_array_equal(exe([x])[0], first)


def test_corrupt_graph_entry_is_recomputed():
    g = graph(107)
    first = run(g)
    gkey = cpu.graph_key(g, {})
    path = cache.cache_dir() / f"{gkey}.json"
    path.write_text(path.read_text().replace('"peak_bytes": ', '"peak_bytes": 1'))
    assert cache.load_manifest(gkey) is None
    cpu._MEMORY_CACHE.clear()
    np.testing.assert_array_equal(run(g), first)
    assert cache.load_manifest(gkey) is not None  # rewritten


def test_graph_key_sees_constants_names_and_aliases():
    x = input_node("x", (4,), dt.float32)
    c1 = node(Op.CONST, value=ConstArray(np.arange(4, dtype=np.float32)), dtype=dt.float32, shape=(4,))
    c2 = node(Op.CONST, value=ConstArray(np.arange(4, dtype=np.float32) + 1), dtype=dt.float32, shape=(4,))
    g1, g2 = Graph([x], [node(Op.ADD, x, c1)]), Graph([x], [node(Op.ADD, x, c2)])
    assert cpu.graph_key(g1, {}) != cpu.graph_key(g2, {})
    assert cpu.graph_key(g1, {}) != cpu.graph_key(g1, {0: 0})
    y = input_node("y", (4,), dt.float32)
    assert cpu.graph_key(Graph([y], [node(Op.ADD, y, c1)]), {}) != cpu.graph_key(g1, {})
    assert cpu.graph_key(g1, {}) == cpu.graph_key(Graph([x], [node(Op.ADD, x, c1)]), {})
    out = cpu.compile_cpu(g2)([np.ones(4, np.float32)])[0]
    np.testing.assert_array_equal(out, np.arange(4, dtype=np.float32) + 2)
    cpu._MEMORY_CACHE.clear()
    np.testing.assert_array_equal(cpu.compile_cpu(g2)([np.ones(4, np.float32)])[0], out)


def test_gemm_routine_is_its_own_entry():
    a = input_node("a", (64, 96), dt.float32)
    b = input_node("b", (96, 80), dt.float32)
    g = Graph([a, b], [node(Op.DOT, a, b)])
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((64, 96), np.float32), rng.standard_normal((96, 80), np.float32)
    exe = cpu.compile_cpu(g)
    assert exe.native.gemm_libs == ("f32",)
    np.testing.assert_allclose(exe([x, y])[0], x @ y, rtol=1e-4, atol=1e-4)
    assert cache.load(cpu._gemm_key("f32")) is not None
    # The program's object code does not contain the routine.
    assert cache.load(exe.native.key)[1]["gemm_libs"] == ["f32"]
