"""Transformer layers with PyTorch's constructor arguments, submodule names
(so PyTorch state_dicts load by key) and forward semantics:
TransformerEncoderLayer, TransformerDecoderLayer, TransformerEncoder,
TransformerDecoder and Transformer.

Each layer is the post-norm block of "Attention Is All You Need"
(`x = norm(x + sublayer(x))`) or, with norm_first, the pre-norm block
(`x = x + sublayer(norm(x))`), built from MultiheadAttention, Linear,
Dropout and LayerNorm, so eager mode, autograd and graphc.compile all work
through the ops those modules use.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np

import graphc
import graphc.nn.functional as F
from graphc._trace import active as _active_trace
from graphc.nn import init
from graphc.nn.activation import GELU, ReLU
from graphc.nn.attention import MultiheadAttention, generate_square_subsequent_mask
from graphc.nn.containers import ModuleList
from graphc.nn.dropout import Dropout
from graphc.nn.linear import Linear
from graphc.nn.module import Module
from graphc.nn.normalization import LayerNorm

__all__ = [
    "Transformer",
    "TransformerDecoder",
    "TransformerDecoderLayer",
    "TransformerEncoder",
    "TransformerEncoderLayer",
]


def _activation_fn(activation):
    """The callable for `activation`: 'relu' and 'gelu' name the functional
    forms; a Module or any other callable is used as is."""
    if isinstance(activation, str):
        if activation == "relu":
            return F.relu
        if activation == "gelu":
            return F.gelu
        raise RuntimeError(f"activation should be relu/gelu, not {activation}")
    if not callable(activation):
        raise TypeError(f"activation should be a string or a callable, got {type(activation).__name__}")
    return activation


def _relu_or_gelu(activation) -> int:
    """PyTorch's `activation_relu_or_gelu` flag: 1 for relu, 2 for gelu, else 0."""
    if activation is F.relu or isinstance(activation, ReLU):
        return 1
    if activation is F.gelu or isinstance(activation, GELU):
        return 2
    return 0


def _check_mask(mask, name: str):
    """Masks are bool (True = may not attend) or floating (added to the
    scores); anything else is an error, as in PyTorch."""
    if mask is not None and mask.dtype != graphc.bool and not mask.is_floating_point():
        raise AssertionError(f"only bool and floating types of {name} are supported")
    return mask


def _to(module: Module, device, dtype) -> None:
    """Apply the factory kwargs after construction (a dtype casts only
    floating-point parameters, as PyTorch's factory kwargs do)."""
    if dtype is not None:
        module.to(dtype)
    if device is not None:
        module.to(device)


def _clones(module: Module, n: int) -> ModuleList:
    """`n` independent deep copies of `module` (PyTorch's _get_clones)."""
    return ModuleList([copy.deepcopy(module) for _ in range(n)])


class TransformerEncoderLayer(Module):
    """Self-attention and a feed-forward network, each in a residual block
    with LayerNorm (after the residual add, or before the sublayer when
    `norm_first`).

    Submodules, as in PyTorch: self_attn, linear1, dropout, linear2, norm1,
    norm2, dropout1, dropout2 (and activation when it is a Module).

    >>> layer = TransformerEncoderLayer(d_model=8, nhead=2, dim_feedforward=16)
    >>> layer(graphc.randn(5, 3, 8)).shape
    graphc.Size([5, 3, 8])
    """

    __constants__ = ["norm_first"]

    def __init__(
        self,
        d_model: int,
        nhead: int,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation="relu",
        layer_norm_eps: float = 1e-5,
        batch_first: bool = False,
        norm_first: bool = False,
        bias: bool = True,
        device=None,
        dtype=None,
    ):
        super().__init__()
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        activation = _activation_fn(activation)
        self.activation_relu_or_gelu = _relu_or_gelu(activation)
        self.activation = activation
        _to(self, device, dtype)

    def forward(self, src, src_mask=None, src_key_padding_mask=None, is_causal: bool = False):
        """src: (S, N, E), (N, S, E) with batch_first, or unbatched (S, E).
        src_mask: (S, S) or (N*nhead, S, S); src_key_padding_mask: (N, S) or
        (S,). Bool masks mark with True the positions that may not attend;
        float masks are added to the attention scores. `is_causal` is a hint
        that src_mask is the causal mask (which must then be given)."""
        _check_mask(src_key_padding_mask, "src_key_padding_mask")
        _check_mask(src_mask, "src_mask")
        x = src
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            x = x + self._ff_block(self.norm2(x))
        else:
            x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
            x = self.norm2(x + self._ff_block(x))
        return x

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal):
        x = self.self_attn(
            x,
            x,
            x,
            attn_mask=attn_mask,
            key_padding_mask=key_padding_mask,
            need_weights=False,
            is_causal=is_causal,
        )[0]
        return self.dropout1(x)

    def _ff_block(self, x):
        x = self.linear2(self.dropout(self.activation(self.linear1(x))))
        return self.dropout2(x)


class TransformerDecoderLayer(Module):
    """Self-attention over the target, attention over the encoder output
    (`memory`) and a feed-forward network, each in a residual block with
    LayerNorm (post-norm, or pre-norm when `norm_first`).

    Submodules, as in PyTorch: self_attn, multihead_attn, linear1, dropout,
    linear2, norm1, norm2, norm3, dropout1, dropout2, dropout3.

    >>> layer = TransformerDecoderLayer(d_model=8, nhead=2, dim_feedforward=16)
    >>> layer(graphc.randn(4, 3, 8), graphc.randn(6, 3, 8)).shape
    graphc.Size([4, 3, 8])
    """

    __constants__ = ["norm_first"]

    def __init__(
        self,
        d_model: int,
        nhead: int,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation="relu",
        layer_norm_eps: float = 1e-5,
        batch_first: bool = False,
        norm_first: bool = False,
        bias: bool = True,
        device=None,
        dtype=None,
    ):
        super().__init__()
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, batch_first=batch_first, bias=bias)
        self.multihead_attn = MultiheadAttention(d_model, nhead, dropout=dropout, batch_first=batch_first, bias=bias)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.norm3 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.dropout3 = Dropout(dropout)
        self.activation = _activation_fn(activation)
        _to(self, device, dtype)

    def forward(
        self,
        tgt,
        memory,
        tgt_mask=None,
        memory_mask=None,
        tgt_key_padding_mask=None,
        memory_key_padding_mask=None,
        tgt_is_causal: bool = False,
        memory_is_causal: bool = False,
    ):
        """tgt: (T, N, E), memory: (S, N, E) ((N, T, E) and (N, S, E) with
        batch_first; unbatched (T, E) and (S, E)). tgt_mask: (T, T),
        memory_mask: (T, S); the key padding masks: (N, T) and (N, S)."""
        for name, mask in (
            ("tgt_mask", tgt_mask),
            ("memory_mask", memory_mask),
            ("tgt_key_padding_mask", tgt_key_padding_mask),
            ("memory_key_padding_mask", memory_key_padding_mask),
        ):
            _check_mask(mask, name)
        x = tgt
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), tgt_mask, tgt_key_padding_mask, tgt_is_causal)
            x = x + self._mha_block(self.norm2(x), memory, memory_mask, memory_key_padding_mask, memory_is_causal)
            x = x + self._ff_block(self.norm3(x))
        else:
            x = self.norm1(x + self._sa_block(x, tgt_mask, tgt_key_padding_mask, tgt_is_causal))
            x = self.norm2(x + self._mha_block(x, memory, memory_mask, memory_key_padding_mask, memory_is_causal))
            x = self.norm3(x + self._ff_block(x))
        return x

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal):
        x = self.self_attn(
            x,
            x,
            x,
            attn_mask=attn_mask,
            key_padding_mask=key_padding_mask,
            is_causal=is_causal,
            need_weights=False,
        )[0]
        return self.dropout1(x)

    def _mha_block(self, x, mem, attn_mask, key_padding_mask, is_causal):
        x = self.multihead_attn(
            x,
            mem,
            mem,
            attn_mask=attn_mask,
            key_padding_mask=key_padding_mask,
            is_causal=is_causal,
            need_weights=False,
        )[0]
        return self.dropout2(x)

    def _ff_block(self, x):
        x = self.linear2(self.dropout(self.activation(self.linear1(x))))
        return self.dropout3(x)


def _why_no_nested_tensor(layer) -> str:
    """Why PyTorch's TransformerEncoder would not use its nested-tensor
    path with this layer ('' when it would)."""
    name = "encoder_layer"
    if not isinstance(layer, TransformerEncoderLayer):
        return f"{name} was not TransformerEncoderLayer"
    if layer.norm_first:
        return f"{name}.norm_first was True"
    if not layer.self_attn.batch_first:
        return f"{name}.self_attn.batch_first was not True(use batch_first for better inference performance)"
    if not layer.self_attn._qkv_same_embed_dim:
        return f"{name}.self_attn._qkv_same_embed_dim was not True"
    if layer.self_attn.in_proj_bias is None:
        return f"{name}.self_attn was passed bias=False"
    if not layer.activation_relu_or_gelu:
        return f"{name}.activation_relu_or_gelu was not True"
    if layer.norm1.eps != layer.norm2.eps:
        return f"{name}.norm1.eps was not equal to {name}.norm2.eps"
    if layer.self_attn.num_heads % 2 == 1:
        return f"{name}.self_attn.num_heads is odd"
    return ""


def _keep_mask(key_padding_mask):
    """True where a key padding mask lets a position through (bool False,
    or a float 0.0 as PyTorch's logical_not reads it)."""
    if key_padding_mask.dtype == graphc.bool:
        return key_padding_mask.logical_not()
    return key_padding_mask == 0


def _left_aligned(keep) -> bool:
    """Every row's kept positions form a prefix (padding only at the end)."""
    rows = np.asarray(keep.numpy(), dtype=bool)
    return bool(np.all(rows[:, :-1] | ~rows[:, 1:])) if rows.shape[1] > 1 else True


class TransformerEncoder(Module):
    """A stack of `num_layers` deep copies of `encoder_layer`, then `norm`
    when given.

    Like PyTorch's, in inference (eval mode, no gradient required) with a
    key padding mask and a layer that qualifies (enable_nested_tensor), the
    output at padded positions is zero before the final norm: PyTorch runs
    that case on nested tensors and pads the result back with zeros.

    >>> layer = TransformerEncoderLayer(d_model=8, nhead=2, dim_feedforward=16)
    >>> encoder = TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
    >>> encoder(graphc.randn(5, 3, 8)).shape
    graphc.Size([5, 3, 8])
    """

    __constants__ = ["norm"]

    def __init__(
        self,
        encoder_layer,
        num_layers: int,
        norm=None,
        enable_nested_tensor: bool = True,
        mask_check: bool = True,
    ):
        super().__init__()
        self.layers = _clones(encoder_layer, num_layers)
        self.num_layers = num_layers
        self.norm = norm
        self.enable_nested_tensor = enable_nested_tensor
        self.use_nested_tensor = enable_nested_tensor
        self.mask_check = mask_check
        why_not = _why_no_nested_tensor(encoder_layer)
        if enable_nested_tensor and why_not:
            warnings.warn(
                f"enable_nested_tensor is True, but self.use_nested_tensor is False because {why_not}",
                stacklevel=2,
            )
            self.use_nested_tensor = False

    def forward(self, src, mask=None, src_key_padding_mask=None, is_causal=None):
        """src: as for TransformerEncoderLayer; `mask` is each layer's
        src_mask. `is_causal` (a hint that `mask` is causal) is passed to
        the layers; None means no hint (the given mask is applied either
        way, so a causal mask needs no detection)."""
        _check_mask(src_key_padding_mask, "src_key_padding_mask")
        _check_mask(mask, "mask")
        zero_padding = self._pads_with_zeros(src, mask, src_key_padding_mask)
        output = src
        for layer in self.layers:
            output = layer(
                output,
                src_mask=mask,
                is_causal=bool(is_causal),
                src_key_padding_mask=src_key_padding_mask,
            )
        if zero_padding:
            padded = _keep_mask(src_key_padding_mask).logical_not()
            if not self.layers[0].self_attn.batch_first:
                padded = padded.transpose(0, 1)
            output = output.masked_fill(padded.unsqueeze(-1), 0.0)
        if self.norm is not None:
            output = self.norm(output)
        return output

    def _pads_with_zeros(self, src, mask, key_padding_mask) -> bool:
        """Whether PyTorch would take its nested-tensor path for this call."""
        if not getattr(self, "use_nested_tensor", False) or key_padding_mask is None or mask is not None:
            return False
        first = self.layers[0]
        if first.training or src.dim() != 3:
            return False
        tensors = [src] + [p for p in first.parameters()]
        if graphc.is_grad_enabled() and any(t.requires_grad for t in tensors):
            return False
        if self.mask_check:
            # As under torch.compile, the data-dependent alignment check is
            # not made while tracing: such a call keeps the masked path.
            if _active_trace() is not None or key_padding_mask.is_symbolic:
                return False
            return _left_aligned(_keep_mask(key_padding_mask))
        return True


class TransformerDecoder(Module):
    """A stack of `num_layers` deep copies of `decoder_layer`, then `norm`
    when given.

    >>> layer = TransformerDecoderLayer(d_model=8, nhead=2, dim_feedforward=16)
    >>> decoder = TransformerDecoder(layer, num_layers=2)
    >>> decoder(graphc.randn(4, 3, 8), graphc.randn(6, 3, 8)).shape
    graphc.Size([4, 3, 8])
    """

    __constants__ = ["norm"]

    def __init__(self, decoder_layer, num_layers: int, norm=None):
        super().__init__()
        self.layers = _clones(decoder_layer, num_layers)
        self.num_layers = num_layers
        self.norm = norm

    def forward(
        self,
        tgt,
        memory,
        tgt_mask=None,
        memory_mask=None,
        tgt_key_padding_mask=None,
        memory_key_padding_mask=None,
        tgt_is_causal=None,
        memory_is_causal: bool = False,
    ):
        """Arguments as for TransformerDecoderLayer, passed to every layer."""
        output = tgt
        for layer in self.layers:
            output = layer(
                output,
                memory,
                tgt_mask=tgt_mask,
                memory_mask=memory_mask,
                tgt_key_padding_mask=tgt_key_padding_mask,
                memory_key_padding_mask=memory_key_padding_mask,
                tgt_is_causal=bool(tgt_is_causal),
                memory_is_causal=memory_is_causal,
            )
        if self.norm is not None:
            output = self.norm(output)
        return output


class Transformer(Module):
    """The encoder-decoder transformer: TransformerEncoder (num_encoder_layers,
    final LayerNorm) over `src`, TransformerDecoder (num_decoder_layers,
    final LayerNorm) over `tgt` attending to the encoder output. Every
    parameter with more than one dimension is initialized xavier_uniform_.

    >>> model = Transformer(d_model=8, nhead=2, num_encoder_layers=1, num_decoder_layers=1, dim_feedforward=16)
    >>> model(graphc.randn(6, 2, 8), graphc.randn(4, 2, 8)).shape
    graphc.Size([4, 2, 8])
    """

    def __init__(
        self,
        d_model: int = 512,
        nhead: int = 8,
        num_encoder_layers: int = 6,
        num_decoder_layers: int = 6,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation="relu",
        custom_encoder=None,
        custom_decoder=None,
        layer_norm_eps: float = 1e-5,
        batch_first: bool = False,
        norm_first: bool = False,
        bias: bool = True,
        device=None,
        dtype=None,
    ):
        super().__init__()
        layer_kwargs = dict(
            dropout=dropout,
            activation=activation,
            layer_norm_eps=layer_norm_eps,
            batch_first=batch_first,
            norm_first=norm_first,
            bias=bias,
        )
        if custom_encoder is not None:
            self.encoder = custom_encoder
        else:
            encoder_layer = TransformerEncoderLayer(d_model, nhead, dim_feedforward, **layer_kwargs)
            encoder_norm = LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
            self.encoder = TransformerEncoder(encoder_layer, num_encoder_layers, encoder_norm)
        if custom_decoder is not None:
            self.decoder = custom_decoder
        else:
            decoder_layer = TransformerDecoderLayer(d_model, nhead, dim_feedforward, **layer_kwargs)
            decoder_norm = LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
            self.decoder = TransformerDecoder(decoder_layer, num_decoder_layers, decoder_norm)
        self._reset_parameters()
        self.d_model = d_model
        self.nhead = nhead
        self.batch_first = batch_first
        _to(self, device, dtype)

    def forward(
        self,
        src,
        tgt,
        src_mask=None,
        tgt_mask=None,
        memory_mask=None,
        src_key_padding_mask=None,
        tgt_key_padding_mask=None,
        memory_key_padding_mask=None,
        src_is_causal=None,
        tgt_is_causal=None,
        memory_is_causal: bool = False,
    ):
        """src: (S, N, E), tgt: (T, N, E) ((N, S, E), (N, T, E) with
        batch_first; unbatched (S, E), (T, E)); returns (T, N, E)."""
        batched = src.dim() == 3
        batch_dim = 0 if self.batch_first else 1
        if batched and src.shape[batch_dim] != tgt.shape[batch_dim]:
            raise RuntimeError("the batch number of src and tgt must be equal")
        if src.shape[-1] != self.d_model or tgt.shape[-1] != self.d_model:
            raise RuntimeError("the feature number of src and tgt must be equal to d_model")
        memory = self.encoder(src, mask=src_mask, src_key_padding_mask=src_key_padding_mask, is_causal=src_is_causal)
        return self.decoder(
            tgt,
            memory,
            tgt_mask=tgt_mask,
            memory_mask=memory_mask,
            tgt_key_padding_mask=tgt_key_padding_mask,
            memory_key_padding_mask=memory_key_padding_mask,
            tgt_is_causal=tgt_is_causal,
            memory_is_causal=memory_is_causal,
        )

    @staticmethod
    def generate_square_subsequent_mask(sz: int, device=None, dtype=None):
        """The [sz, sz] causal mask: 0.0 on and below the diagonal, -inf above."""
        return generate_square_subsequent_mask(sz, device=device, dtype=dtype)

    def _reset_parameters(self) -> None:
        for p in self.parameters():
            if p.dim() > 1:
                init.xavier_uniform_(p)
