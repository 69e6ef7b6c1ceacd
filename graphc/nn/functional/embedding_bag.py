"""embedding_bag: sums, means or maxima of bags of embedding rows.

Bag membership is computed with tensor ops from `offsets` (a [bags, n]
mask), so offsets may be a value of a compiled program; the reduction is a
matmul with that mask (sum, mean) or a masked amax (max).
"""

from __future__ import annotations

import math

import graphc
from graphc._trace import active as _tracing
from graphc.errors import InputShapeError

_MODES = ("sum", "mean", "max")


def _flatten_bags(input, offsets, include_last_offset: bool):
    """(1-D indices, offsets tensor, number of bags) from a 2-D batch of
    fixed-size bags or 1-D indices with offsets."""
    if input.dim() == 2:
        if offsets is not None:
            raise ValueError(
                "if input is 2D, then offsets has to be None, as input is treated is a mini-batch of fixed length "
                f"sequences. However, found offsets of type {type(offsets).__name__}"
            )
        bags, size = input.shape
        offsets = graphc.arange(0, bags * size, max(size, 1), device=input.device)
        return input.reshape(-1), offsets, bags
    if input.dim() != 1:
        raise ValueError(f"input has to be 1D or 2D Tensor, but got Tensor of dimension {input.dim()}")
    if offsets is None:
        raise ValueError("offsets has to be a 1D Tensor but got None")
    if not isinstance(offsets, graphc.Tensor):
        offsets = graphc.tensor(list(offsets), dtype=graphc.int64, device=input.device)
    if offsets.dim() != 1:
        raise ValueError(f"offsets has to be a 1D Tensor, but got Tensor of dimension {offsets.dim()}")
    if _tracing() is None and offsets.shape[0] and offsets[0].item() != 0:
        raise ValueError(
            "offsets[0] has to be 0, i.e., the first sequence in the mini-batch has to start from position 0. "
            f"However, got {offsets[0].item()}"
        )
    bags = offsets.shape[0] - (1 if include_last_offset else 0)
    return input, offsets, bags


def embedding_bag(
    input,
    weight,
    offsets=None,
    max_norm=None,
    norm_type: float = 2,
    scale_grad_by_freq: bool = False,
    mode: str = "mean",
    sparse: bool = False,
    per_sample_weights=None,
    include_last_offset: bool = False,
    padding_idx=None,
):
    """Reduce bags of rows of `weight` [num, dim] with `mode`, as
    torch.nn.functional.embedding_bag. Bags are the rows of a 2-D `input`,
    or the runs input[offsets[i]:offsets[i+1]] of a 1-D one. Entries equal
    to padding_idx are left out (a mean counts only the others); an empty
    bag gives zeros."""
    if mode not in _MODES:
        raise ValueError(f"mode has to be one of sum, mean or max, got {mode!r}")
    if max_norm is not None or scale_grad_by_freq or sparse:
        raise NotImplementedError("embedding_bag: max_norm, scale_grad_by_freq and sparse are not supported")
    if input.is_floating_point():
        raise TypeError(f"embedding_bag: expected integer indices, got dtype {input.dtype}")
    if weight.dim() != 2:
        raise InputShapeError(f"embedding_bag: weight must be 2-D [num, dim], got shape {tuple(weight.shape)}")
    if per_sample_weights is not None:
        if mode != "sum":
            raise NotImplementedError(
                "embedding_bag: per_sample_weights was not None. per_sample_weights is only supported for "
                f"mode='sum' (got mode='{mode}'). Please open a feature request on the Pytorch GitHub."
            )
        if tuple(per_sample_weights.shape) != tuple(input.shape):
            raise ValueError(
                f"embedding_bag: per_sample_weights of shape {tuple(per_sample_weights.shape)} must match "
                f"input of shape {tuple(input.shape)}"
            )
        per_sample_weights = per_sample_weights.reshape(-1)
    indices, offsets, bags = _flatten_bags(input, offsets, include_last_offset)
    num, dim = weight.shape
    if padding_idx is not None:
        if not -num <= padding_idx < num:
            raise ValueError("padding_idx must be within num_embeddings")
        padding_idx %= num
    rows = graphc.nn.functional.embedding(indices, weight)  # [n, dim]
    count = indices.shape[0]
    positions = graphc.arange(count, device=input.device)
    # Element j belongs to the last bag whose offset is <= j.
    bag_of = (offsets.reshape(1, -1) <= positions.reshape(-1, 1)).sum(1) - 1
    member = bag_of.reshape(1, -1) == graphc.arange(bags, device=input.device).reshape(-1, 1)
    if padding_idx is not None:
        member = member & (indices != padding_idx).reshape(1, -1)
    sizes = member.sum(1, keepdim=True)  # [bags, 1]
    if mode == "max":
        masked = graphc.where(member.unsqueeze(2), rows.unsqueeze(0), -math.inf)
        return graphc.where(sizes > 0, masked.amax(1), 0.0)
    if per_sample_weights is not None:
        rows = rows * per_sample_weights.reshape(-1, 1)
    sums = member.to(rows.dtype).matmul(rows)
    if mode == "sum":
        return sums
    return sums / sizes.clamp(min=1).to(rows.dtype)
