"""`graphc.backends.cuda`: PyTorch's CUDA matmul flags.

`matmul.allow_tf32` can be set (as code ported from PyTorch does) but has no
effect: graphc's kernels do not switch to TF32.
"""


class _MatmulFlags:
    """`graphc.backends.cuda.matmul`: settable flags, no effect."""

    def __init__(self) -> None:
        self.allow_tf32 = False
        self.allow_fp16_reduced_precision_reduction = True
        self.allow_bf16_reduced_precision_reduction = True


matmul = _MatmulFlags()


def is_built() -> bool:
    from graphc import cuda

    return cuda.is_available()
