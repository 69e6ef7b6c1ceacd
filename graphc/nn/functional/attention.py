"""scaled_dot_product_attention: the ATTENTION primitive (compiled on the
CPU as one fused kernel that never stores the [L, S] scores), or PyTorch's
formula composed from Tensor ops when it needs what the primitive lacks
(dropout, mixed dtypes)."""

from __future__ import annotations

import math

import graphc
from graphc import _elementwise as ew
from graphc._checks import tensor_params
from graphc.ir.ops import Op
from graphc.nn.functional.activation import softmax
from graphc.nn.functional.basic import dropout


def _safe_softmax(scores):
    """softmax over the last dim, PyTorch's safe softmax: a row whose
    scores are all -inf gets zero weights (not NaN) and no gradient."""
    fully_masked = (scores == float("-inf")).all(-1, keepdim=True)
    scores = graphc.where(fully_masked, 0.0, scores)
    return graphc.where(fully_masked, 0.0, softmax(scores, dim=-1))


@tensor_params("query", "key", "value")
def scaled_dot_product_attention(
    query,
    key,
    value,
    attn_mask=None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale=None,
    enable_gqa: bool = False,
):
    """softmax(Q K^T * scale + mask) V over the last two dims, batch dims
    broadcast. A bool attn_mask marks with True the positions that take
    part; a float one is added to the scores. is_causal applies the
    upper-left aligned lower-triangular mask. scale defaults to
    1/sqrt(E); dropout_p drops attention weights (PyTorch applies it
    whenever dropout_p > 0). enable_gqa repeats key/value heads. A query
    whose keys are all masked gets zero output, as in PyTorch.

    Without dropout (and with q, k, v and a float mask of one dtype) this
    is one ATTENTION primitive: under graphc.compile on the CPU a fused
    kernel with an online softmax that never stores the [..., L, S]
    scores (docs/nn.md)."""
    if is_causal and attn_mask is not None:
        raise RuntimeError("_scaled_dot_product_attention: Explicit attn_mask should not be set when is_causal=True")
    if query.dim() < 2 or key.dim() < 2 or value.dim() < 2:
        raise RuntimeError(
            "Expected query, key, and value to all be  at least 2 dimensional, but got "
            f"query.dim: {query.dim()} key.dim: {key.dim()} and value.dim: {value.dim()} instead."
        )
    E = query.shape[-1]
    scale_factor = 1.0 / math.sqrt(E) if scale is None else scale
    if enable_gqa and query.dim() >= 3 and key.shape[-3] != query.shape[-3]:
        groups = query.shape[-3] // key.shape[-3]
        key = key.repeat_interleave(groups, dim=-3)
        value = value.repeat_interleave(groups, dim=-3)
    if dropout_p == 0.0 and _fusable(query, key, value, attn_mask):
        return _primitive(query, key, value, attn_mask, is_causal, float(scale_factor))
    return _composed(query, key, value, attn_mask, dropout_p, is_causal, scale_factor)


def _fusable(query, key, value, attn_mask) -> bool:
    """Whether the ATTENTION primitive computes this call (else the composed
    formula runs, and reports bad input the way torch.matmul would)."""
    dt = query.dtype
    if not dt.is_float or key.dtype is not dt or value.dtype is not dt:
        return False
    if query.shape[-1] != key.shape[-1] or key.shape[-2] != value.shape[-2]:
        return False
    return attn_mask is None or attn_mask.dtype.is_bool or attn_mask.dtype is dt


def _primitive(query, key, value, attn_mask, is_causal, scale):
    L, S = query.shape[-2], key.shape[-2]
    shapes = [tuple(query.shape[:-2]), tuple(key.shape[:-2]), tuple(value.shape[:-2])]
    if attn_mask is not None:
        shapes.append(tuple(attn_mask.shape[:-2]))
    batch = ew.broadcast_shapes(*shapes, opname="scaled_dot_product_attention")
    srcs = [ew.expand_to(t, batch + tuple(t.shape[-2:])) for t in (query, key, value)]
    if attn_mask is not None:
        mask_shape = batch + (L, S)
        ew.broadcast_shapes(tuple(attn_mask.shape), mask_shape, opname="scaled_dot_product_attention")
        srcs.append(ew.expand_to(attn_mask, mask_shape))
    return graphc.Tensor._emit(Op.ATTENTION, srcs, {"scale": scale, "causal": bool(is_causal)})


def _composed(query, key, value, attn_mask, dropout_p, is_causal, scale_factor):
    """The unfused formula: the [..., L, S] weights are built."""
    L, S = query.shape[-2], key.shape[-2]
    scores = graphc.matmul(query, key.transpose(-2, -1)) * scale_factor
    if is_causal:
        causal = graphc.ones(L, S, dtype=query.dtype).tril() > 0
        scores = graphc.where(causal, scores, float("-inf"))
    if attn_mask is not None:
        if attn_mask.dtype == graphc.bool:
            scores = graphc.where(attn_mask, scores, float("-inf"))
        else:
            scores = scores + attn_mask
    if is_causal or attn_mask is not None:
        weights = _safe_softmax(scores)
    else:
        weights = softmax(scores, dim=-1)
    if dropout_p > 0.0:
        weights = dropout(weights, dropout_p, training=True)
    return graphc.matmul(weights, value)
