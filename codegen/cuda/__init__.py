"""The CUDA backend's code generator: kernel form -> CUDA C source.

`render_program(program)` (codegen/cuda/render.py) is the entry point; it
needs neither a GPU nor the CUDA toolkit. The runtime (runtime/cuda.py)
compiles the source and launches the kernels.
"""

from graphc.codegen.cuda.render import CudaModule, render_program

__all__ = ["CudaModule", "render_program"]
