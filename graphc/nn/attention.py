"""MultiheadAttention and generate_square_subsequent_mask, composed from
Tensor ops with PyTorch's parameters, state_dict keys and semantics."""

from __future__ import annotations

import math

import graphc
import graphc.nn.functional as F
from graphc._checks import require_tensor
from graphc.errors import InputShapeError
from graphc.nn import init
from graphc.nn.functional.attention import _safe_softmax
from graphc.nn.linear import Linear
from graphc.nn.module import Module
from graphc.nn.parameter import Parameter


def generate_square_subsequent_mask(sz: int, device=None, dtype=None):
    """The [sz, sz] causal mask of PyTorch's static method
    nn.Transformer.generate_square_subsequent_mask: 0.0 on and below the
    diagonal, -inf above it (float32 unless `dtype`)."""
    dtype = dtype or graphc.float32
    allowed = graphc.ones(sz, sz, dtype=dtype).tril() > 0
    mask = graphc.where(allowed, graphc.zeros(sz, sz, dtype=dtype), float("-inf"))
    if device is not None:
        mask = mask.to(device)
    return mask


class NonDynamicallyQuantizableLinear(Linear):
    """Linear under the name PyTorch gives MultiheadAttention's out_proj."""


def _additive(mask, dtype):
    """A float mask as is; a bool mask (True = may not attend) as -inf/0."""
    if mask is None:
        return None
    if mask.dtype == graphc.bool:
        return graphc.where(mask, float("-inf"), graphc.zeros(tuple(mask.shape), dtype=dtype))
    return mask.to(dtype)


class MultiheadAttention(Module):
    """Multi-head attention: out_proj(concat_h softmax(Q_h K_h^T / sqrt(d) + mask) V_h).

    in_proj_weight: [3*embed_dim, embed_dim] (or q/k/v_proj_weight when
    kdim or vdim differ from embed_dim) ~ xavier_uniform_; in_proj_bias
    and out_proj.bias: zeros; bias_k/bias_v (add_bias_kv) ~ xavier_normal_.
    Inputs are (L, N, E) ((N, L, E) with batch_first) or unbatched (L, E).
    Bool masks mark with True the positions that may NOT attend; float
    masks are added to the scores.
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        add_bias_kv: bool = False,
        add_zero_attn: bool = False,
        kdim=None,
        vdim=None,
        batch_first: bool = False,
        device=None,
        dtype=None,
    ):
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(
                f"embed_dim and num_heads must be greater than 0, got embed_dim={embed_dim} "
                f"and num_heads={num_heads} instead"
            )
        super().__init__()
        self.embed_dim = embed_dim
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.num_heads = num_heads
        self.dropout = dropout
        self.batch_first = batch_first
        self.head_dim = embed_dim // num_heads
        if self.head_dim * num_heads != embed_dim:
            raise AssertionError("embed_dim must be divisible by num_heads")
        dtype = dtype or graphc.float32
        if not self._qkv_same_embed_dim:
            self.q_proj_weight = Parameter(graphc.empty(embed_dim, embed_dim, dtype=dtype))
            self.k_proj_weight = Parameter(graphc.empty(embed_dim, self.kdim, dtype=dtype))
            self.v_proj_weight = Parameter(graphc.empty(embed_dim, self.vdim, dtype=dtype))
            self.register_parameter("in_proj_weight", None)
        else:
            self.in_proj_weight = Parameter(graphc.empty(3 * embed_dim, embed_dim, dtype=dtype))
            self.register_parameter("q_proj_weight", None)
            self.register_parameter("k_proj_weight", None)
            self.register_parameter("v_proj_weight", None)
        if bias:
            self.in_proj_bias = Parameter(graphc.empty(3 * embed_dim, dtype=dtype))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = NonDynamicallyQuantizableLinear(embed_dim, embed_dim, bias=bias, dtype=dtype)
        if add_bias_kv:
            self.bias_k = Parameter(graphc.empty(1, 1, embed_dim, dtype=dtype))
            self.bias_v = Parameter(graphc.empty(1, 1, embed_dim, dtype=dtype))
        else:
            self.register_parameter("bias_k", None)
            self.register_parameter("bias_v", None)
        self.add_zero_attn = add_zero_attn
        self._reset_parameters()
        if device is not None:
            self.to(device)

    def _reset_parameters(self) -> None:
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            init.xavier_uniform_(self.q_proj_weight)
            init.xavier_uniform_(self.k_proj_weight)
            init.xavier_uniform_(self.v_proj_weight)
        if self.in_proj_bias is not None:
            init.constant_(self.in_proj_bias, 0.0)
            init.constant_(self.out_proj.bias, 0.0)
        if self.bias_k is not None:
            init.xavier_normal_(self.bias_k)
        if self.bias_v is not None:
            init.xavier_normal_(self.bias_v)

    def _projections(self, query, key, value):
        E = self.embed_dim
        b = self.in_proj_bias
        bq, bk, bv = (None, None, None) if b is None else (b[:E], b[E : 2 * E], b[2 * E :])
        if self._qkv_same_embed_dim:
            w = self.in_proj_weight
            wq, wk, wv = w[:E], w[E : 2 * E], w[2 * E :]
        else:
            wq, wk, wv = self.q_proj_weight, self.k_proj_weight, self.v_proj_weight
        return F.linear(query, wq, bq), F.linear(key, wk, bk), F.linear(value, wv, bv)

    def forward(
        self,
        query,
        key,
        value,
        key_padding_mask=None,
        need_weights: bool = True,
        attn_mask=None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ):
        name = self._get_name()
        for i, (arg, t) in enumerate((("query", query), ("key", key), ("value", value)), start=1):
            require_tensor(name, arg, i, t)
        if is_causal and attn_mask is None:
            raise RuntimeError(
                "Need attn_mask if specifying the is_causal hint. You may use the Transformer module method "
                "`generate_square_subsequent_mask` to create this mask."
            )
        batched = query.dim() == 3
        if query.dim() not in (2, 3) or key.dim() != query.dim() or value.dim() != query.dim():
            raise InputShapeError(
                f"{name}: query, key and value should be all 2-D (unbatched) or all 3-D (batched), got "
                f"query of shape {tuple(query.shape)}, key of shape {tuple(key.shape)} and value of shape "
                f"{tuple(value.shape)}"
            )
        if self.batch_first and batched:
            query, key, value = (x.transpose(0, 1) for x in (query, key, value))
        if not batched:
            query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        tgt_len, bsz, embed_dim = query.shape
        if embed_dim != self.embed_dim:
            raise InputShapeError(f"{name}: was expecting embedding dimension of {self.embed_dim}, but got {embed_dim}")
        H, hd = self.num_heads, self.head_dim
        if self._qkv_same_embed_dim and tuple(key.shape) != tuple(value.shape):
            raise AssertionError(f"key shape {tuple(key.shape)} does not match value shape {tuple(value.shape)}")
        if tuple(key.shape[:2]) != tuple(value.shape[:2]):
            raise AssertionError(
                f"key's sequence and batch dims {tuple(key.shape[:2])} do not match value's {tuple(value.shape[:2])}"
            )
        if attn_mask is not None:
            expected = {2: (tgt_len, key.shape[0]), 3: (bsz * H, tgt_len, key.shape[0])}.get(attn_mask.dim())
            if expected is None:
                kind = "batched (3-D)" if batched else "unbatched (2-D)"
                raise AssertionError(
                    f"For {kind} `query`, expected `attn_mask` to be `None`, 2-D or 3-D but found "
                    f"{attn_mask.dim()}-D tensor instead"
                )
            if tuple(attn_mask.shape) != expected:
                raise RuntimeError(
                    f"The shape of the {attn_mask.dim()}D attn_mask is {tuple(attn_mask.shape)}, "
                    f"but should be {expected}."
                )
        dtype = query.dtype
        attn_mask = _additive(attn_mask, dtype)
        key_padding_mask = _additive(key_padding_mask, dtype)
        if attn_mask is not None and attn_mask.dim() == 2:
            attn_mask = attn_mask.unsqueeze(0)

        q, k, v = self._projections(query, key, value)
        if self.bias_k is not None:
            k = graphc.cat([k, self.bias_k.expand(1, bsz, embed_dim)])
            v = graphc.cat([v, self.bias_v.expand(1, bsz, embed_dim)])
            if attn_mask is not None:
                attn_mask = F.pad(attn_mask, (0, 1))
            if key_padding_mask is not None:
                key_padding_mask = F.pad(key_padding_mask, (0, 1))
        q = q.reshape(tgt_len, bsz * H, hd).transpose(0, 1)
        k = k.reshape(k.shape[0], bsz * H, hd).transpose(0, 1)
        v = v.reshape(v.shape[0], bsz * H, hd).transpose(0, 1)
        if self.add_zero_attn:
            k = graphc.cat([k, graphc.zeros(bsz * H, 1, hd, dtype=k.dtype)], dim=1)
            v = graphc.cat([v, graphc.zeros(bsz * H, 1, hd, dtype=v.dtype)], dim=1)
            if attn_mask is not None:
                attn_mask = F.pad(attn_mask, (0, 1))
            if key_padding_mask is not None:
                key_padding_mask = F.pad(key_padding_mask, (0, 1))
        src_len = k.shape[1]
        if key_padding_mask is not None:
            kpm = key_padding_mask.reshape(bsz, 1, 1, src_len).expand(bsz, H, 1, src_len)
            kpm = kpm.reshape(bsz * H, 1, src_len)
            attn_mask = kpm if attn_mask is None else attn_mask + kpm

        dropout = self.training and self.dropout > 0.0
        if not need_weights and not dropout:
            # As in PyTorch: need_weights=False goes through SDPA (the fused
            # attention kernel when compiled), whose safe softmax gives fully
            # masked rows zero weights instead of NaN.
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, scale=math.sqrt(1.0 / hd))
        else:
            scores = graphc.bmm(q * math.sqrt(1.0 / hd), k.transpose(1, 2))
            if attn_mask is not None:
                scores = scores + attn_mask
            weights = F.softmax(scores, dim=-1) if need_weights else _safe_softmax(scores)
            if dropout:
                weights = F.dropout(weights, p=self.dropout)
            out = graphc.bmm(weights, v)
        out = out.transpose(0, 1).reshape(tgt_len * bsz, embed_dim)
        out = F.linear(out, self.out_proj.weight, self.out_proj.bias).reshape(tgt_len, bsz, embed_dim)
        if self.batch_first and batched:
            out = out.transpose(0, 1)
        if not batched:
            out = out.squeeze(1)
        if not need_weights:
            return out, None
        weights = weights.reshape(bsz, H, tgt_len, src_len)
        if average_attn_weights:
            weights = weights.mean(dim=1)
        if not batched:
            weights = weights.squeeze(0)
        return out, weights
