"""The CUDA runtime without a GPU: availability and its reason, clear
errors when CUDA or nvcc is missing, and cubins in the disk cache (keying,
atomic writes, damaged-entry recovery) with the compile step faked."""

from __future__ import annotations

import pytest

from graphc.ir import dtypes
from graphc.ir.graph import Graph, input_node, node
from graphc.ir.ops import Op
from graphc.runtime import backends, cache
from graphc.runtime import cuda as rt


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
    base = rt.cubin_key("src", "sm_80", "release 13.0", ["-O3"])
    assert base == rt.cubin_key("src", "sm_80", "release 13.0", ["-O3"])
    variants = [
        rt.cubin_key("src ", "sm_80", "release 13.0", ["-O3"]),
        rt.cubin_key("src", "sm_90", "release 13.0", ["-O3"]),
        rt.cubin_key("src", "sm_80", "release 12.4", ["-O3"]),
        rt.cubin_key("src", "sm_80", "release 13.0", ["-O2"]),
        rt.cubin_key("src", "sm_80", "release 13.0", ["-O3", "-g"]),
        rt.cubin_key("srcsm_80", "", "release 13.0", ["-O3"]),  # no collision by concatenation
    ]
    assert len({base, *variants}) == 7


def _fake_nvcc(monkeypatch, tmp_path) -> list:
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(rt, "nvcc_version", lambda: "release fake")
    compiled = []

    def fake_nvcc(source, arch, output="cubin", flags=rt.NVCC_FLAGS):
        compiled.append((arch, output))
        return f"cubin for {arch} of {source}".encode()

    monkeypatch.setattr(rt, "nvcc_compile", fake_nvcc)
    return compiled


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage", "other entry"])
def test_damaged_entry_is_recompiled_and_rewritten(monkeypatch, tmp_path, damage):
    compiled = _fake_nvcc(monkeypatch, tmp_path)
    assert rt.compile_cubin("a", "sm_80") == b"cubin for sm_80 of a"
    rt.compile_cubin("b", "sm_80")
    path = cache.entry_path(rt.cubin_key("a", "sm_80", "release fake", rt.NVCC_FLAGS))
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[:-7])
    elif damage == "flip":
        path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    elif damage == "garbage":
        path.write_bytes(b"not a cache entry")
    else:  # b's entry under a's name: valid content, wrong key
        path.write_bytes(cache.entry_path(rt.cubin_key("b", "sm_80", "release fake", rt.NVCC_FLAGS)).read_bytes())
    assert rt.compile_cubin("a", "sm_80") == b"cubin for sm_80 of a"
    assert len(compiled) == 3
    assert path.read_bytes() == data  # rewritten
    assert rt.compile_cubin("a", "sm_80") == b"cubin for sm_80 of a"
    assert len(compiled) == 3


def test_unwritable_cache_still_compiles(monkeypatch, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")  # a file where the cache folder should be
    compiled = _fake_nvcc(monkeypatch, blocker / "cache")
    assert rt.compile_cubin("src", "sm_80") == b"cubin for sm_80 of src"
    assert rt.compile_cubin("src", "sm_80") == b"cubin for sm_80 of src"
    assert len(compiled) == 2


def test_compile_cubin_uses_the_cache(monkeypatch, tmp_path):
    compiled = _fake_nvcc(monkeypatch, tmp_path)
    assert rt.compile_cubin("src", "sm_80") == b"cubin for sm_80 of src"
    assert rt.compile_cubin("src", "sm_80") == b"cubin for sm_80 of src"
    assert rt.compile_cubin("src", "sm_90") == b"cubin for sm_90 of src"
    assert compiled == [("sm_80", "cubin"), ("sm_90", "cubin")]
    assert len(list(tmp_path.glob("*.entry"))) == 2
    assert not list(tmp_path.glob(".*"))  # no temp files left
