"""Compile one of the program-independent LLVM libraries in a separate
process: `python -m codegen.llvm.compile_child gemm-f32` writes the object
code of the GEMM routine (gemm.library_ir("f32"), at GEMM_OPT_LEVEL) to
stdout.

llvmlite runs one LLVM call at a time per process, so a thread cannot
compile the GEMM library while the main thread compiles the program; a
child process can, on another core (runtime/native.py starts it when a cold
compile needs the library). The object is the one the parent would have
built itself: same Python, llvmlite, host target and source files.
"""

from __future__ import annotations

import sys

from graphc.codegen.llvm import gemm, target


def library_object(name: str) -> bytes:
    """Object code of library `name` ("gemm-f32" or "gemm-f64")."""
    kind, _, suffix = name.partition("-")
    if kind != "gemm" or suffix not in ("f32", "f64"):
        raise ValueError(f"unknown library {name!r}: expected 'gemm-f32' or 'gemm-f64'")
    return target.emit_object(target.optimize(gemm.library_ir(suffix), target.GEMM_OPT_LEVEL))


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m codegen.llvm.compile_child gemm-f32|gemm-f64", file=sys.stderr)
        return 2
    sys.stdout.buffer.write(library_object(argv[0]))
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
