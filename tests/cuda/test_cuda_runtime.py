"""The CUDA runtime without a GPU: availability and its reason, clear
errors when CUDA or nvcc is missing, and the cubin disk cache (keying,
atomic writes, corrupt-entry recovery) with the compile step faked."""

from __future__ import annotations

import numpy as np
import pytest

from graphc.ir import dtypes
from graphc.ir.graph import Graph, input_node, node
from graphc.ir.ops import Op
from runtime import backends
from runtime import cuda as rt
from runtime.cuda_cache import CubinCache, cache_key


def _graph() -> Graph:
    x = input_node("x", (4,), dtypes.float32)
    return Graph([x], [node(Op.EXP, x)])


@pytest.mark.skipif(rt.is_available(), reason="a GPU is available here")
def test_unavailable_has_a_reason_and_backend_raises_it():
    assert rt.device_count() == 0
    reason = rt.unavailable_reason()
    assert reason and ("pycuda" in reason or "driver" in reason or "GPU" in reason)
    rt.synchronize()  # a no-op without CUDA, never an error
    with pytest.raises(rt.CudaUnavailableError, match="CUDA is not available") as info:
        backends.compile_graph(_graph(), "cuda")
    assert reason in str(info.value)
    assert "cuda" in backends.BACKENDS


def test_render_source_needs_no_gpu():
    src = rt.render_source(_graph())
    assert 'extern "C" __global__' in src and "expf(" in src


def test_missing_nvcc_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("GRAPHC_NVCC", "/nonexistent/nvcc")
    assert rt.find_nvcc() is None
    with pytest.raises(rt.CudaUnavailableError, match="nvcc"):
        rt.nvcc_compile("__global__ void k() {}", "sm_80", output="ptx")


def test_error_classes_say_cause_and_fix():
    for cls in (
        rt.CudaUnavailableError,
        rt.CudaCompileError,
        rt.CudaOutOfMemoryError,
        rt.CudaLaunchError,
    ):
        assert issubclass(cls, rt.CudaError) and len(cls.__doc__) > 80
    assert issubclass(rt.CudaOutOfMemoryError, MemoryError)


def test_cache_key_covers_source_arch_compiler_and_flags():
    base = cache_key("src", "sm_80", "release 13.0", ["-O3"])
    assert base == cache_key("src", "sm_80", "release 13.0", ["-O3"])
    variants = [
        cache_key("src ", "sm_80", "release 13.0", ["-O3"]),
        cache_key("src", "sm_90", "release 13.0", ["-O3"]),
        cache_key("src", "sm_80", "release 12.4", ["-O3"]),
        cache_key("src", "sm_80", "release 13.0", ["-O2"]),
        cache_key("srcsm_80", "", "release 13.0", ["-O3"]),  # no collision by concatenation
    ]
    assert len({base, *variants}) == 6


def test_cache_round_trip_is_atomic_and_verified(tmp_path):
    cache = CubinCache(tmp_path)
    key = cache_key("a", "sm_80", "v", [])
    assert cache.get(key) is None
    path = cache.put(key, b"\x7fELF cubin bytes")
    assert cache.get(key) == b"\x7fELF cubin bytes"
    leftovers = [p for p in path.parent.iterdir() if p.name.startswith(".tmp-")]
    assert leftovers == []


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage"])
def test_corrupt_entry_is_removed_and_recompiled(tmp_path, damage):
    cache = CubinCache(tmp_path)
    key = cache_key("b", "sm_90", "v", [])
    path = cache.put(key, b"good payload" * 10)
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[:-7])
    elif damage == "flip":
        path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    else:
        path.write_bytes(b"not a cache entry")
    calls = []

    def compile_fn():
        calls.append(1)
        return b"recompiled"

    assert cache.get_or_compile(key, compile_fn) == b"recompiled"
    assert calls == [1] and cache.misses == 1
    assert cache.get_or_compile(key, compile_fn) == b"recompiled"
    assert calls == [1] and cache.hits == 1


def test_unwritable_cache_still_compiles(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")  # a file where the cache folder should be
    cache = CubinCache(blocker / "cuda")
    assert cache.get_or_compile("ab" * 32, lambda: b"payload") == b"payload"


def test_cache_dir_follows_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path))
    assert rt.cubin_cache().root == tmp_path / "cuda"


def test_compile_cubin_uses_the_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(rt, "nvcc_version", lambda: "release fake")
    compiled = []

    def fake_nvcc(source, arch, output="cubin", flags=rt.NVCC_FLAGS):
        compiled.append((arch, output))
        return f"cubin for {arch}".encode()

    monkeypatch.setattr(rt, "nvcc_compile", fake_nvcc)
    assert rt.compile_cubin("src", "sm_80") == b"cubin for sm_80"
    assert rt.compile_cubin("src", "sm_80") == b"cubin for sm_80"
    assert rt.compile_cubin("src", "sm_90") == b"cubin for sm_90"
    assert compiled == [("sm_80", "cubin"), ("sm_90", "cubin")]
    entries = list((tmp_path / "cuda").rglob("*.cubin"))
    assert len(entries) == 2


def test_pool_rounds_sizes_for_narrow_atomics():
    assert rt.DevicePool.rounded(1) == 256
    assert rt.DevicePool.rounded(257) == 512
    assert np.all([rt.DevicePool.rounded(n) % 8 == 0 for n in range(0, 2000, 37)])


@pytest.mark.skipif(rt.is_available(), reason="a GPU is available here")
def test_graphc_cuda_namespace_reports_the_runtime():
    import graphc.cuda

    assert graphc.cuda.is_available() is False
    assert graphc.cuda.device_count() == 0
    assert graphc.cuda.unavailable_reason() == rt.unavailable_reason()
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        graphc.cuda.current_device()
