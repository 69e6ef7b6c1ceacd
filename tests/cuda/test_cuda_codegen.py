"""CUDA code generation without a GPU: every primitive (several dtypes) and
a whole training step are rendered to CUDA C and compiled with
`nvcc --ptx` in one batched call; the templates are checked for the
structure they promise (shared-memory tiles, warp shuffles, atomics, index
checks, the splitmix64 RANDOM)."""

from __future__ import annotations

import re

import pytest
from cuda_cases import all_cases, mlp_training_step, ops_covered

from graphc.codegen.cuda.prelude import PRELUDE
from graphc.ir.ops import Op
from graphc.runtime import cuda as rt

PTX_ARCH = "sm_80"


@pytest.fixture(scope="module")
def cases():
    return all_cases()


@pytest.fixture(scope="module")
def rendered(cases):
    """case name -> (kernel-form Program, CudaModule)."""
    return {name: rt.render(graph) for name, graph, _ in cases}


def test_cases_cover_every_primitive(cases):
    assert ops_covered(cases) == set(Op)


def _batch(rendered) -> tuple[str, list[str]]:
    """One translation unit holding every case's kernels (renamed apart)."""
    parts, entries = [PRELUDE], []
    for i, (name, (_, module)) in enumerate(sorted(rendered.items())):
        body = module.source.split(PRELUDE, 1)[1]
        for k in module.launches:
            new = f"c{i}_{k.name}"
            body = re.sub(rf"\b{k.name}\(", f"{new}(", body)
            entries.append(new)
        parts.append(f"// ---- case {name}\n{body}")
    return "\n".join(parts), entries


@pytest.mark.skipif(rt.find_nvcc() is None, reason="nvcc (CUDA toolkit) not found")
def test_every_case_compiles_with_nvcc_ptx(rendered, tmp_path):
    source, entries = _batch(rendered)
    (tmp_path / "all.cu").write_text(source)
    ptx = rt.nvcc_compile(source, PTX_ARCH, output="ptx").decode()
    declared = set(re.findall(r"\.entry\s+(\w+)\(", ptx))
    assert set(entries) <= declared
    assert len(entries) > 150


@pytest.mark.skipif(rt.find_nvcc() is None, reason="nvcc (CUDA toolkit) not found")
def test_nvcc_errors_raise_compile_error_with_saved_source():
    with pytest.raises(rt.CudaCompileError, match=r"saved at .*\.cu"):
        rt.nvcc_compile(
            'extern "C" __global__ void broken() { undefined_name = 1; }',
            PTX_ARCH,
            output="ptx",
        )


def _source(rendered, name: str) -> str:
    return rendered[name][1].source


def test_dot_is_tiled_with_register_blocks_and_fused_epilogue(rendered):
    src = _source(rendered, "dot_bias_relu")
    assert "__shared__ float gc_as[16][64 + 1];" in src
    assert "gc_c4[gc_i][gc_j] += gc_a[gc_i] * gc_b[gc_j];" in src
    program = rendered["dot_bias_relu"][0]
    assert [k.kind for k in program.kernels] == ["dot"]  # bias and relu ride in the epilogue
    assert "gc_max<float>" in src


def test_reductions_use_warp_shuffles_and_one_block_per_row(rendered):
    src = _source(rendered, "sum_wide_f32")
    assert "__shfl_xor_sync" in src and "gc_row += gridDim.x" in src
    small = _source(rendered, "max_small_f32")
    assert "__shfl_xor_sync" not in small  # a short row is reduced by one thread
    assert "gc_argmax_better" in _source(rendered, "argmax_wide_f32")


def test_indexing_is_bounds_checked_and_scatter_uses_atomics(rendered):
    gather = rendered["gather"][1]
    assert "gc_check(" in gather.source and gather.check_kernels
    for dt in ("f32", "f64", "i64", "i8"):
        module = rendered[f"scatter_add_{dt}"][1]
        assert "gc_atomic_add(&" in module.source
        assert [k.name.endswith("_zero") for k in module.launches] == [True, False]


def test_random_int_div_and_movement_are_inline_index_math(rendered):
    assert "gc_random(" in _source(rendered, "random_f32")
    assert "gc_idiv<int, unsigned int>" in _source(rendered, "div_i32_signs")
    assert "gc_check_div<int>" in _source(rendered, "div_i32_signs")
    for name in ("reshape_permute", "expand", "slice", "pad", "concat", "unfold"):
        program = rendered[name][0]
        assert [k.kind for k in program.kernels] == ["elementwise"], name


def test_rendering_is_deterministic():
    _, graph, _ = mlp_training_step()
    first = rt.render_source(graph)
    assert first == rt.render_source(graph)
    assert rt.explain(graph) == {"cuda": first}
    assert first.count("__global__") >= 5


def test_training_step_kernels_are_named_after_their_ops(rendered):
    _, module = rendered["mlp_step"]
    names = [k.name for k in module.launches]
    assert any("dot" in n for n in names)
    assert len(set(names)) == len(names)
    assert all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", n) for n in names)
