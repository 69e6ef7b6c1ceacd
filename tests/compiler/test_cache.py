"""The compile cache: memory hits, disk hits, new shapes recompile, corrupt
entries recover, concurrent writers of one entry are safe."""

import multiprocessing as mp
import os
from pathlib import Path

import numpy as np

import runtime.cache as cache
import runtime.cpu as cpu
from graphc.ir import dtypes as dt
from graphc.ir.graph import Graph, input_node, node
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
    assert [f.suffix for f in files] == [".json", ".o"]  # no temp files left
    old = os.environ["GRAPHC_CACHE_DIR"]
    os.environ["GRAPHC_CACHE_DIR"] = str(tmp_path)
    try:
        key = files[0].stem
        assert cache.load(key) is not None
    finally:
        os.environ["GRAPHC_CACHE_DIR"] = old
