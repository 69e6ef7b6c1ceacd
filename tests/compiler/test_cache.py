"""The compile cache: memory hits, disk hits, new shapes recompile, corrupt
entries recover, concurrent writers of one entry are safe, an entry copied
from another key is a miss (the process survives, the results are right),
keys cover code, target and settings, files honour the umask."""

import multiprocessing as mp
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

import graphc.runtime.cache as cache
import graphc.runtime.cpu as cpu
import graphc.runtime.native as native
from graphc.ir import dtypes as dt
from graphc.ir.graph import ConstArray, Graph, input_node, node
from graphc.ir.ops import Op


def graph(n, op=Op.TANH):
    x = input_node("x", (n, 3), dt.float32)
    return Graph([x], [node(Op.ADD, node(op, x), x)])


def _run_script(tmp_path, script, *args):
    """Run `script` in a fresh Python process using the cache folder
    tmp_path/cache."""
    env = dict(os.environ, GRAPHC_CACHE_DIR=str(tmp_path / "cache"), GRAPHC_DEBUG="0")
    root = Path(__file__).resolve().parents[2]
    return subprocess.run([sys.executable, "-c", script, *args], cwd=root, env=env, capture_output=True, text=True)


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


def test_corrupt_entry_is_recompiled():
    g = graph(104)
    first = run(g)
    key = native._key(cpu.lower(g))
    path = cache.entry_path(key)
    data = path.read_bytes()
    path.write_bytes(data[:-7] + b"garbage")
    cpu._MEMORY_CACHE.clear()
    before = dict(cpu.STATS)
    np.testing.assert_array_equal(run(g), first)
    assert cpu.STATS["compiles"] == before["compiles"] + 1
    assert cache.load(key) is not None  # rewritten, valid again
    path.write_bytes(data.replace(b'"buffer_order"', b'"buffer_ordeR"'))
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
    assert all(f.suffix == ".entry" for f in files)  # no temp files left
    old = os.environ["GRAPHC_CACHE_DIR"]
    os.environ["GRAPHC_CACHE_DIR"] = str(tmp_path)
    try:
        entries = {f.stem: cache.load(f.stem) for f in files}
    finally:
        os.environ["GRAPHC_CACHE_DIR"] = old
    programs = [k for k, e in entries.items() if e[0]]
    graphs = [e[1] for e in entries.values() if not e[0]]
    assert len(programs) == 1 and len(graphs) == 1  # one program entry, one graph entry
    assert graphs[0]["object_key"] == programs[0]


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
    path = cache.entry_path(gkey)
    path.write_bytes(path.read_bytes().replace(b'"peak_bytes": ', b'"peak_bytes": 1'))
    assert cache.load(gkey) is None
    cpu._MEMORY_CACHE.clear()
    np.testing.assert_array_equal(run(g), first)
    assert cache.load(gkey) is not None  # rewritten


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


_GEMM_SCRIPT = """
import numpy as np
import graphc.runtime.cache as cache
import graphc.runtime.cpu as cpu
import graphc.runtime.native as native
from graphc.ir import dtypes as dt
from graphc.ir.graph import Graph, input_node, node
from graphc.ir.ops import Op

a = input_node("a", (64, 96), dt.float32)
b = input_node("b", (96, 80), dt.float32)
g = Graph([a, b], [node(Op.DOT, a, b)])
rng = np.random.default_rng(0)
x, y = rng.standard_normal((64, 96), np.float32), rng.standard_normal((96, 80), np.float32)
exe = cpu.compile_cpu(g)
assert exe.native.gemm_libs == ("f32",)
np.testing.assert_allclose(exe([x, y])[0], x @ y, rtol=1e-4, atol=1e-4)
assert cache.load(native._gemm_key("f32")) is not None
# The program's object code does not contain the routine.
assert cache.load(exe.native.key)[1]["gemm_libs"] == ["f32"]
print("ok")
"""


def test_gemm_routine_is_its_own_entry(tmp_path):
    # In a fresh process: this one may have loaded the routine already
    # (from another cache folder), and then never stores it here.
    child = _run_script(tmp_path, _GEMM_SCRIPT)
    assert child.returncode == 0 and child.stdout.strip() == "ok", child.stderr


# -- entries are bound to their key -------------------------------------------

_SWAP_SCRIPT = """
import sys
import numpy as np
import graphc

def f(x):
    return x * 2.0 + 1.0

def g(x):
    return (x - 3.0).tanh() * 5.0

fn = {"f": f, "g": g}[sys.argv[1]]
n = int(sys.argv[2])
x = graphc.from_numpy(np.linspace(-1, 1, n, dtype=np.float32))
compiled = graphc.compile(fn)
compiled(x)  # eager
out = compiled(x).numpy()  # traced, compiled (or loaded from the disk cache)
np.testing.assert_allclose(out, fn(x).numpy(), rtol=1e-6)
print("ok")
"""


def _run_child(tmp_path, name, n):
    return _run_script(tmp_path, _SWAP_SCRIPT, name, str(n))


def _new_entries(folder, before):
    """{"program"|"graph": path} of the entries written since `before`
    (graph entries have no payload)."""
    made = sorted(set(folder.glob("*.entry")) - before)
    kinds = {"graph" if cache.load(path.stem)[0] == b"" else "program": path for path in made}
    assert len(made) == len(kinds) == 2, made
    return kinds


def test_entry_copied_from_another_function_is_a_miss(tmp_path, monkeypatch):
    """g's entries copied over f's (with another shape, so running g's code
    on f's buffers would write out of bounds): f still computes f, in a
    fresh process that survives, and the entries are rewritten."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(folder))
    assert _run_child(tmp_path, "f", 7).returncode == 0
    f_entries = _new_entries(folder, set())
    assert _run_child(tmp_path, "g", 4096).returncode == 0
    g_entries = _new_entries(folder, set(f_entries.values()))
    originals = {kind: path.read_bytes() for kind, path in f_entries.items()}
    for kind, path in f_entries.items():
        path.write_bytes(g_entries[kind].read_bytes())
    child = _run_child(tmp_path, "f", 7)
    assert child.returncode == 0 and child.stdout.strip() == "ok", child.stderr
    for kind, path in f_entries.items():
        assert path.read_bytes() == originals[kind]  # f's own entry again


def test_key_mismatch_reason_at_debug_level_1(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("GRAPHC_DEBUG", "1")  # also skips graph entries: the program entry is read
    g_f, g_g = graph(108), graph(108, Op.EXP)
    first = run(g_f)
    cpu.compile_cpu(g_g)
    f_key, g_key = native._key(cpu.lower(g_f)), native._key(cpu.lower(g_g))
    cache.entry_path(f_key).write_bytes(cache.entry_path(g_key).read_bytes())
    cpu._MEMORY_CACHE.clear()
    capsys.readouterr()
    before = cpu.STATS["compiles"]
    np.testing.assert_array_equal(run(g_f), first)
    assert cpu.STATS["compiles"] == before + 1
    err = capsys.readouterr().err
    assert f"ignoring {f_key}.entry: it holds the entry of another key ({g_key[:16]}" in err
    assert cache.load(f_key) is not None  # rewritten under its own key


def test_key_covers_code_target_and_settings(monkeypatch):
    from graphc.codegen.llvm import gemm

    prog = cpu.lower(graph(109))
    base = native._key(prog)
    assert native._key(cpu.lower(graph(109))) == base
    monkeypatch.setattr(gemm, "GEMM_MIN_WORK", gemm.GEMM_MIN_WORK + 1)
    assert native._key(prog) != base
    monkeypatch.undo()
    monkeypatch.setattr(cpu.target, "host", lambda: ("some-cpu", "+sse2,-avx2"))
    assert native._key(prog) != base
    monkeypatch.undo()
    monkeypatch.setattr(cache, "code_version", lambda: "edited")
    assert native._key(prog) != base
    # Every code generator source file is hashed.
    hashed = {p.name for d in cache._CODE_DIRS for p in (cache._ROOT / d).rglob("*.py")}
    assert {"gemm.py", "render.py", "kernel.py", "fusion.py", "graph.py"} <= hashed


# -- file permissions -----------------------------------------------------------


def test_files_honour_the_umask(tmp_path, monkeypatch):
    import graphc

    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path))
    for umask, mode in ((0o022, 0o644), (0o077, 0o600), (0o002, 0o664)):
        old = os.umask(umask)
        try:
            key = cache.cache_key("test", str(umask))
            cache.store(key, b"payload", {})
            graphc.save({"w": graphc.ones(2)}, tmp_path / f"ckpt{umask}.pt")
        finally:
            os.umask(old)
        assert cache.entry_path(key).stat().st_mode & 0o777 == mode
        assert (tmp_path / f"ckpt{umask}.pt").stat().st_mode & 0o777 == mode
        assert cache.load(key) == (b"payload", {})
