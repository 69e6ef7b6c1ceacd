"""Distances and similarities between tensors: cosine_similarity and
pairwise_distance, PyTorch's formulas and eps rules."""

from __future__ import annotations

import math

import numpy as np

import graphc
from graphc._checks import tensor_params


def _vector_norm(x, p: float, dim: int, keepdim: bool = False):
    """||x||_p along `dim` for p > 0 or inf."""
    if p == math.inf:
        return x.abs().amax(dim, keepdim=keepdim)
    if p == 2.0:
        return graphc.sqrt((x * x).sum(dim, keepdim=keepdim))
    if p == 1.0:
        return x.abs().sum(dim, keepdim=keepdim)
    return (x.abs() ** p).sum(dim, keepdim=keepdim) ** (1.0 / p)


@tensor_params("x1", "x2")
def cosine_similarity(x1, x2, dim: int = 1, eps: float = 1e-8):
    """sum(x1/max(||x1||, eps) * x2/max(||x2||, eps)) along `dim`, with the
    inputs broadcast against each other; each norm is clamped at eps
    separately, as in PyTorch."""
    return ((x1 / _clamped_norm(x1, dim, eps)) * (x2 / _clamped_norm(x2, dim, eps))).sum(dim)


def _clamped_norm(x, dim: int, eps: float):
    """The 2-norm along `dim` (kept), raised to at least eps without
    touching its gradient, as PyTorch's in-place clamp under no_grad does;
    the gradient of a zero norm is 0, not NaN."""
    squared = (x * x).sum(dim, keepdim=True)
    positive = squared > 0
    root = graphc.sqrt(graphc.where(positive, squared, graphc.ones_like(squared)))
    norm = graphc.where(positive, root, squared * 0.0)
    return norm + (norm.clamp_min(eps) - norm).detach()


@tensor_params("x1", "x2")
def pairwise_distance(x1, x2, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False):
    """||x1 - x2 + eps||_p along the last dim (of the broadcast inputs)."""
    if p < 0:
        raise RuntimeError("pairwise_distance only supports non-negative p")
    diff = x1 - x2 + eps
    dim = max(x1.dim(), x2.dim()) - 1
    if dim < 0:
        # PyTorch treats 0-D inputs as scalars: the distance is |diff|.
        return _vector_norm(diff.reshape(1), p, 0, keepdim=False).reshape(())
    if p == 0:
        return (diff != 0).to(diff.dtype).sum(dim, keepdim=keepdim)
    return _vector_norm(diff, p, dim, keepdim)


@tensor_params("input")
def pdist(input, p: float = 2.0):
    """The p-norm distance between every pair of rows of an [N, M] input:
    the upper triangle of cdist(input, input), row-major, N(N-1)/2 values."""
    if input.dim() != 2:
        raise RuntimeError(f"pdist only supports 2D tensors, got: {input.dim()}D")
    if p < 0:
        raise RuntimeError("pdist only supports non-negative p values")
    n = input.shape[0]
    first, second = np.triu_indices(n, 1)
    diff = input[graphc.tensor(first, device=input.device)] - input[graphc.tensor(second, device=input.device)]
    if p == 0:
        return (diff != 0).to(input.dtype).sum(1)
    return _vector_norm(diff, float(p), 1)
