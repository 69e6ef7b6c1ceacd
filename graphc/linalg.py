"""graphc.linalg: PyTorch's torch.linalg norms (no decompositions)."""

from graphc._linalg import matrix_norm, vector_norm

__all__ = ["matrix_norm", "vector_norm"]
