"""A whole kernel-form Program -> one CUDA C module and its launch list.

`render_program(program)` returns a `CudaModule`: the source text (the
prelude, then one `extern "C" __global__` function per kernel, in program
order, each headed by a comment naming the primitives it fuses) and the
ordered launches the runtime performs. Rendering needs no GPU and no CUDA
toolkit; the text is deterministic for a given program.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from graphc.codegen import kernel as kf
from graphc.codegen.cuda import cdefs
from graphc.codegen.cuda.expr import CudaRenderError
from graphc.codegen.cuda.kernels import (
    CudaKernel,
    KernelEnv,
    render_elementwise,
    render_reduce,
    render_scatter,
)
from graphc.codegen.cuda.matmul import render_dot
from graphc.codegen.cuda.prelude import PRELUDE

RENDERERS = {
    "elementwise": render_elementwise,
    "reduce": render_reduce,
    "dot": render_dot,
    "scatter": render_scatter,
}


@dataclass
class CudaModule:
    """The rendered program: source, launches in order, and what the
    runtime needs to report a failed index check."""

    name: str
    source: str
    launches: list[CudaKernel]
    check_kernels: dict[int, str] = field(default_factory=dict)  # error code -> kernel name


def _shared_buffers(program: kf.Program) -> set[str]:
    """Buffers the memory plan puts in the same memory as another buffer."""
    plan = program.plan
    if plan is None:
        return set()
    shared = {name for pair in plan.in_place for name in pair}
    for out_i, in_i in plan.direct_aliases.items():
        shared |= {program.outputs[out_i], program.inputs[in_i]}
    return shared


_QUIET = {
    "reshape",
    "permute",
    "expand",
    "slice",
    "pad",
    "concat",
    "const",
    "iota",
    "cast",
}


def _kernel_names(kernels: list[kf.Kernel]) -> list[str]:
    """Readable, unique kernel names: fusion's `kN` prefix and the last
    few computing primitives it fused (movement ops are index math)."""
    taken: set[str] = set()
    names = []
    for k in kernels:
        ops = list(dict.fromkeys(p for p in k.primitives if p not in _QUIET)) or [k.kind]
        prefix = k.name.split("_")[0]
        names.append(cdefs.identifier(f"{prefix}_{'_'.join(ops[-3:])}", taken))
    return names


def render_program(program: kf.Program) -> CudaModule:
    """Render every kernel of `program` (see the module docstring)."""
    taken: set[str] = set()
    idents = {name: cdefs.identifier(name, taken) for name in program.buffers}
    env = KernelEnv(
        idents=idents,
        buffer_dtypes={n: b.dtype for n, b in program.buffers.items()},
        buffer_shapes={n: tuple(b.shape) for n, b in program.buffers.items()},
        shared=_shared_buffers(program),
    )
    launches: list[CudaKernel] = []
    texts: list[str] = []
    for kernel, name in zip(program.kernels, _kernel_names(program.kernels)):
        render = RENDERERS.get(kernel.kind)
        if render is None:
            raise CudaRenderError(f"kernel {kernel.name}: no CUDA template for kind {kernel.kind!r}")
        env.current = name
        rendered = render(_renamed(kernel, name), env)
        fused = ", ".join(kernel.primitives) or kernel.kind
        for k in rendered:
            texts.append(f"// {k.name}: {kernel.kind} kernel over {list(kernel.shape)}; fuses {fused}\n{k.text}")
        launches += rendered
    head = f"// graphc CUDA module for program @{program.name}: {len(launches)} kernels\n"
    source = head + PRELUDE + "\n" + "\n\n".join(texts) + "\n"
    return CudaModule(program.name, source, launches, dict(env.check_kernels))


def _renamed(kernel: kf.Kernel, name: str) -> kf.Kernel:
    if kernel.name == name:
        return kernel
    from dataclasses import replace

    return replace(kernel, name=name)
