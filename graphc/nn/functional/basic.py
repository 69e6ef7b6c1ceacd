"""Linear maps, dropout, embeddings, pixel shuffles and normalization layers'
functional forms."""

from __future__ import annotations

import graphc
from graphc._checks import tensor_params
from graphc.errors import InputShapeError, ValueRangeError, at_user_line


@tensor_params("input", "weight")
def linear(input, weight, bias=None):
    """y = x W^T + b, with W of shape [out_features, in_features]."""
    out = input.matmul(weight.t())
    return out + bias if bias is not None else out


@tensor_params("input1", "input2", "weight")
def bilinear(input1, input2, weight, bias=None):
    """y_k = x1^T W_k x2 + b_k, with W of shape [out, in1, in2]."""
    out_features, in1, in2 = weight.shape
    lead = input1.shape[:-1]
    x1 = input1.reshape(-1, in1)
    x2 = input2.reshape(-1, in2)
    # [B, in1] x [in1, out*in2] -> [B, out, in2], then contract in2 with x2.
    mixed = x1.matmul(weight.permute(1, 0, 2).reshape(in1, out_features * in2))
    out = (mixed.reshape(-1, out_features, in2) * x2.unsqueeze(1)).sum(2)
    if bias is not None:
        out = out + bias
    return out.reshape(*lead, out_features)


@tensor_params("input")
def dropout(input, p: float = 0.5, training: bool = True, inplace: bool = False):
    """Zero each element with probability p and scale the rest by 1/(1-p);
    the identity when not training. Uses the global random generator."""
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        out = input * 0.0
    else:
        keep = (graphc.rand_like(input) >= p).to(input.dtype)
        out = input * keep * (1.0 / (1.0 - p))
    if inplace:
        input.copy_(out)
        return input
    return out


def embedding(
    input,
    weight,
    padding_idx=None,
    max_norm=None,
    norm_type=2.0,
    scale_grad_by_freq=False,
    sparse=False,
):
    """Rows of `weight` at the integer indices `input` (any shape). Rows at
    padding_idx receive no gradient, as in PyTorch."""
    if max_norm is not None or scale_grad_by_freq or sparse:
        raise NotImplementedError("embedding: max_norm, scale_grad_by_freq and sparse are not supported")
    num, dim = weight.shape
    flat = input.reshape(-1, 1).expand(-1, dim)
    rows = weight.gather(0, flat)
    if padding_idx is not None:
        if padding_idx < 0:
            padding_idx += num
        keep = (input.reshape(-1, 1) != padding_idx).expand(-1, dim)
        rows = graphc.where(keep, rows, rows.detach())
    return rows.reshape(*input.shape, dim)


def one_hot(tensor, num_classes: int = -1):
    """int64 one-hot encoding along a new last dim. num_classes=-1 reads the
    largest class from the data, which (as in PyTorch) is eager-only.
    A class < 0 or >= num_classes raises a RuntimeError: ValueRangeError
    naming it eagerly, IndexOutOfRangeError from compiled code."""
    if num_classes == -1:
        if tensor.numel() == 0:
            raise ValueRangeError(at_user_line("one_hot: Can not infer total number of classes from empty tensor."))
        num_classes = int(tensor.max().item()) + 1
    classes = graphc.arange(num_classes, device=tensor.device)
    if tensor.is_symbolic:
        # Compiled code cannot raise from a comparison, but it checks every
        # gather index: rows of the identity picked by class make a bad
        # class an IndexOutOfRangeError after the call, not a zero row.
        identity = (classes.unsqueeze(1) == classes).to(graphc.int64)
        rows = identity.gather(0, tensor.reshape(-1, 1).expand(-1, num_classes))
        return rows.reshape(*tensor.shape, num_classes)
    if tensor.numel():
        _check_classes(tensor, num_classes)
    return (tensor.unsqueeze(-1) == classes).to(graphc.int64)


def _check_classes(tensor, num_classes: int) -> None:
    low, high = int(tensor.min().item()), int(tensor.max().item())
    if low < 0:
        raise ValueRangeError(
            at_user_line(f"one_hot: class value {low} is negative: Class values must be non-negative.")
        )
    if high >= num_classes:
        raise ValueRangeError(
            at_user_line(
                f"one_hot: class value {high} is out of range for num_classes={num_classes}: "
                "Class values must be smaller than num_classes."
            )
        )


def _stat_dims(input, first: int) -> tuple[int, ...]:
    return (0,) + tuple(range(first, input.dim()))


def _channel_view(t, ndim: int):
    """Reshape a per-channel vector [C] to broadcast against [N, C, ...]."""
    return t.reshape((1, -1) + (1,) * (ndim - 2))


@tensor_params("input")
def batch_norm(
    input,
    running_mean,
    running_var,
    weight=None,
    bias=None,
    training: bool = False,
    momentum=0.1,
    eps: float = 1e-5,
):
    """Normalize over the batch (and spatial) dims per channel.

    In training, batch statistics are used and the running statistics (if
    given) are updated in place with the unbiased variance:
    running = (1 - momentum) * running + momentum * batch. `momentum` may
    be a scalar tensor (the cumulative average BatchNorm uses for None).
    Otherwise the running statistics are used.
    """
    if input.dim() < 2:
        raise InputShapeError(f"batch_norm: expected at least 2-D input, got shape {tuple(input.shape)}")
    ndim = input.dim()
    if training:
        dims = _stat_dims(input, 2)
        count = input.numel() // input.shape[1]
        if count <= 1:
            raise ValueError(
                f"Expected more than 1 value per channel when training, got input size {tuple(input.shape)}"
            )
        mean = input.mean(dims)
        centered = input - _channel_view(mean, ndim)
        var = (centered * centered).mean(dims)
        if running_mean is not None:
            with graphc.no_grad():
                new_mean = running_mean * (1.0 - momentum) + mean.detach() * momentum
                running_mean.copy_(new_mean)
                unbiased = var.detach() * (count / (count - 1))
                running_var.copy_(running_var * (1.0 - momentum) + unbiased * momentum)
        out = centered / graphc.sqrt(_channel_view(var, ndim) + eps)
    else:
        if running_mean is None or running_var is None:
            raise ValueError("batch_norm: running_mean and running_var are needed when not training")
        out = _normalize_by_running_stats(input, running_mean, running_var, eps)
    return _channel_affine(out, weight, bias)


@tensor_params("input")
def instance_norm(
    input,
    running_mean=None,
    running_var=None,
    weight=None,
    bias=None,
    use_input_stats: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-5,
):
    """Normalize each channel of every sample over its spatial dims.

    With use_input_stats, each instance's own statistics are used and the
    running statistics (if given) are updated in place with their batch
    averages (the unbiased variance), as in PyTorch; otherwise the running
    statistics are used.
    """
    if input.dim() < 3:
        raise InputShapeError(f"instance_norm: expected at least 3-D input, got shape {tuple(input.shape)}")
    ndim = input.dim()
    if use_input_stats:
        dims = tuple(range(2, ndim))
        count = input.numel() // (input.shape[0] * input.shape[1]) if input.numel() else 0
        if count <= 1:
            raise ValueError(f"Expected more than 1 spatial element when training, got input size {tuple(input.shape)}")
        mean = input.mean(dims, keepdim=True)
        centered = input - mean
        var = (centered * centered).mean(dims, keepdim=True)
        if running_mean is not None:
            with graphc.no_grad():
                batch_mean = mean.detach().reshape(input.shape[0], input.shape[1]).mean(0)
                running_mean.copy_(running_mean * (1.0 - momentum) + batch_mean * momentum)
                unbiased = var.detach().reshape(input.shape[0], input.shape[1]).mean(0) * (count / (count - 1))
                running_var.copy_(running_var * (1.0 - momentum) + unbiased * momentum)
        out = centered / graphc.sqrt(var + eps)
    else:
        if running_mean is None or running_var is None:
            raise ValueError("Expected running_mean and running_var to be defined when use_input_stats is false")
        out = _normalize_by_running_stats(input, running_mean, running_var, eps)
    return _channel_affine(out, weight, bias)


def _normalize_by_running_stats(input, running_mean, running_var, eps: float):
    """(input - mean) / sqrt(var + eps) per channel (dim 1): eval-mode batch
    and instance norm."""
    ndim = input.dim()
    scale = 1.0 / graphc.sqrt(running_var + eps)
    return (input - _channel_view(running_mean, ndim)) * _channel_view(scale, ndim)


def _channel_affine(out, weight, bias):
    """out * weight + bias, both per channel (dim 1) and optional."""
    if weight is not None:
        out = out * _channel_view(weight, out.dim())
    if bias is not None:
        out = out + _channel_view(bias, out.dim())
    return out


@tensor_params("input")
def layer_norm(input, normalized_shape, weight=None, bias=None, eps: float = 1e-5):
    """Normalize over the trailing `normalized_shape` dims (biased variance)."""
    normalized_shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if tuple(input.shape[-len(normalized_shape) :]) != normalized_shape:
        raise InputShapeError(
            f"layer_norm: input of shape {tuple(input.shape)} does not end with normalized_shape {normalized_shape}"
        )
    dims = tuple(range(input.dim() - len(normalized_shape), input.dim()))
    mean = input.mean(dims, keepdim=True)
    centered = input - mean
    var = (centered * centered).mean(dims, keepdim=True)
    out = centered / graphc.sqrt(var + eps)
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return out


@tensor_params("input")
def group_norm(input, num_groups: int, weight=None, bias=None, eps: float = 1e-5):
    """Normalize each group of channels of every sample (biased variance)."""
    n, c = input.shape[0], input.shape[1]
    if c % num_groups:
        raise ValueError(f"group_norm: {c} channels are not divisible into {num_groups} groups")
    grouped = input.reshape(n, num_groups, -1)
    mean = grouped.mean(2, keepdim=True)
    centered = grouped - mean
    var = (centered * centered).mean(2, keepdim=True)
    out = (centered / graphc.sqrt(var + eps)).reshape(input.shape)
    if weight is not None:
        out = out * _channel_view(weight, input.dim())
    if bias is not None:
        out = out + _channel_view(bias, input.dim())
    return out


@tensor_params("input")
def normalize(input, p: float = 2.0, dim: int = 1, eps: float = 1e-12):
    """x / max(||x||_p, eps) along `dim`."""
    if p == 2.0:
        norm = graphc.sqrt((input * input).sum(dim, keepdim=True))
    else:
        norm = (input.abs() ** p).sum(dim, keepdim=True) ** (1.0 / p)
    return input / graphc.where(norm > eps, norm, graphc.full_like(norm, eps))


def _feature_dropout(name: str, input, p: float, training: bool, inplace: bool, batched_dim: int):
    """Zero whole channels (all of dim 1 of a batched input, dim 0 of an
    unbatched one) with probability p, scaling the kept ones by 1/(1-p)."""
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if input.dim() not in (batched_dim - 1, batched_dim):
        raise RuntimeError(
            f"{name}: Expected {batched_dim - 1}D or {batched_dim}D input, but received a "
            f"{input.dim()}D input of shape {tuple(input.shape)}"
        )
    if not training or p == 0.0:
        return input
    lead = 2 if input.dim() == batched_dim else 1
    mask_shape = tuple(input.shape[:lead]) + (1,) * (input.dim() - lead)
    if p == 1.0:
        out = input * 0.0
    else:
        keep = (graphc.rand(*mask_shape, dtype=input.dtype, device=input.device) >= p).to(input.dtype)
        out = input * keep * (1.0 / (1.0 - p))
    if inplace:
        input.copy_(out)
        return input
    return out


@tensor_params("input")
def dropout1d(input, p: float = 0.5, training: bool = True, inplace: bool = False):
    """Zero whole channels of [N, C, L] (or [C, L]) with probability p and
    scale the rest by 1/(1-p); the identity when not training."""
    return _feature_dropout("dropout1d", input, p, training, inplace, 3)


@tensor_params("input")
def dropout2d(input, p: float = 0.5, training: bool = True, inplace: bool = False):
    """Zero whole channels of [N, C, H, W] (or [C, H, W]) with probability p
    and scale the rest by 1/(1-p); the identity when not training."""
    return _feature_dropout("dropout2d", input, p, training, inplace, 4)


_EPS = {"float16": 0.0009765625, "float32": 1.1920928955078125e-07, "float64": 2.220446049250313e-16}


@tensor_params("input")
def rms_norm(input, normalized_shape, weight=None, eps=None):
    """x / sqrt(mean(x^2) + eps) over the trailing `normalized_shape` dims,
    times `weight`; eps=None is the machine epsilon of the input's dtype."""
    normalized_shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if input.dim() < len(normalized_shape) or tuple(input.shape[-len(normalized_shape) :]) != normalized_shape:
        raise InputShapeError(
            f"rms_norm: input of shape {tuple(input.shape)} does not end with normalized_shape {normalized_shape}"
        )
    if eps is None:
        eps = _EPS[input.dtype.name]
    dims = tuple(range(input.dim() - len(normalized_shape), input.dim()))
    out = input / graphc.sqrt((input * input).mean(dims, keepdim=True) + eps)
    if weight is not None:
        out = out * weight
    return out


@tensor_params("input")
def pixel_shuffle(input, upscale_factor: int):
    """[*, C r^2, H, W] -> [*, C, H r, W r]."""
    r = upscale_factor
    if input.dim() < 3:
        raise RuntimeError(
            f"pixel_shuffle expects input to have at least 3 dimensions, but got input with {input.dim()} dimension(s)"
        )
    if r <= 0:
        raise RuntimeError(f"pixel_shuffle expects a positive upscale_factor, but got {r}")
    *lead, c, h, w = input.shape
    if c % (r * r):
        raise RuntimeError(
            f"pixel_shuffle expects its input's 'channel' dimension to be divisible by the square of "
            f"upscale_factor, but input.size(-3)={c} is not divisible by {r * r}"
        )
    n = len(lead)
    x = input.reshape(*lead, c // (r * r), r, r, h, w)
    x = x.permute(*range(n), n, n + 3, n + 1, n + 4, n + 2)
    return x.reshape(*lead, c // (r * r), h * r, w * r)


@tensor_params("input")
def pixel_unshuffle(input, downscale_factor: int):
    """[*, C, H r, W r] -> [*, C r^2, H, W]; the inverse of pixel_shuffle."""
    r = downscale_factor
    if input.dim() < 3:
        raise RuntimeError(
            "pixel_unshuffle expects input to have at least 3 dimensions, "
            f"but got input with {input.dim()} dimension(s)"
        )
    if r <= 0:
        raise RuntimeError(f"pixel_unshuffle expects a positive downscale_factor, but got {r}")
    *lead, c, h, w = input.shape
    if h % r or w % r:
        raise RuntimeError(
            f"pixel_unshuffle expects height and width to be divisible by downscale_factor, "
            f"but input.size(-2)={h} and input.size(-1)={w} are not divisible by {r}"
        )
    n = len(lead)
    x = input.reshape(*lead, c, h // r, r, w // r, r)
    x = x.permute(*range(n), n, n + 2, n + 4, n + 1, n + 3)
    return x.reshape(*lead, c * r * r, h // r, w // r)


# SELU's negative saturation value, -scale * alpha (PyTorch's constant).
_ALPHA_PRIME = 1.7580993408473766


def _alpha_dropout(name: str, input, p: float, training: bool, inplace: bool, feature: bool):
    """Dropout that keeps SELU's zero mean and unit variance: dropped
    elements take the saturation value, then an affine map restores the
    statistics (PyTorch's constants: a = ((1 - p)(1 + p alpha'^2))^-1/2)."""
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        out = input * 0.0
    else:
        if feature:
            if input.dim() < 2:
                raise RuntimeError(f"{name}: Feature dropout requires at least 2 dimensions in the input")
            shape = tuple(input.shape[:2]) + (1,) * (input.dim() - 2)
            keep = (graphc.rand(*shape, dtype=input.dtype, device=input.device) >= p).to(input.dtype)
        else:
            keep = (graphc.rand_like(input) >= p).to(input.dtype)
        a = 1.0 / ((_ALPHA_PRIME**2 * p + 1.0) * (1.0 - p)) ** 0.5
        b = (keep - 1.0) * (_ALPHA_PRIME * a) + _ALPHA_PRIME * a * p
        out = input * (keep * a) + b
    if inplace:
        input.copy_(out)
        return input
    return out


@tensor_params("input")
def alpha_dropout(input, p: float = 0.5, training: bool = False, inplace: bool = False):
    """Alpha dropout for self-normalizing (SELU) networks; the identity when
    not training."""
    return _alpha_dropout("alpha_dropout", input, p, training, inplace, feature=False)


@tensor_params("input")
def feature_alpha_dropout(input, p: float = 0.5, training: bool = False, inplace: bool = False):
    """Alpha dropout of whole channels (dim 1); the identity when not
    training."""
    return _alpha_dropout("feature_alpha_dropout", input, p, training, inplace, feature=True)


@tensor_params("input")
def local_response_norm(input, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0):
    """x / (k + alpha * mean of x^2 over `size` neighbouring channels)^beta,
    the window centred on each channel and zero-padded (PyTorch's LRN)."""
    if input.dim() < 3:
        raise ValueError(
            f"Expected 3D or higher dimensionality input (got {input.dim()} dimensions): local_response_norm"
        )
    if input.numel() == 0:
        return input
    channels = input.shape[1]
    squares = (input * input).transpose(1, -1)
    # Zero-pad the channel dim (now last): size // 2 before, (size - 1) // 2 after.
    padded = graphc.nn.functional.pad(squares, (size // 2, (size - 1) // 2))
    total = padded.narrow(-1, 0, channels)
    for offset in range(1, size):
        total = total + padded.narrow(-1, offset, channels)
    div = (total.transpose(1, -1) * (alpha / size) + k) ** beta
    return input / div


@tensor_params("input")
def channel_shuffle(input, groups: int):
    """Interleave the channels of `groups` groups: [N, g*c, ...] viewed as
    [N, g, c, ...], transposed to [N, c, g, ...] (ShuffleNet)."""
    if groups <= 0:
        raise ValueError(f"Number of groups to divide channels in must be positive. Value of groups:{groups}")
    if input.dim() < 3:
        raise ValueError(
            "channel_shuffle expects input to have at least 3 dimensions, "
            f"but got input with sizes {tuple(input.shape)}"
        )
    n, c, rest = input.shape[0], input.shape[1], tuple(input.shape[2:])
    if c % groups:
        raise ValueError(f"Number of channels must be divisible by groups. Got {c} channels and {groups} groups.")
    return input.reshape(n, groups, c // groups, *rest).transpose(1, 2).reshape(n, c, *rest)


native_channel_shuffle = channel_shuffle


@tensor_params("input")
def dropout3d(input, p: float = 0.5, training: bool = True, inplace: bool = False):
    """Zero whole channels of [N, C, D, H, W] (or [C, D, H, W]) with
    probability p and scale the rest by 1/(1-p); the identity when not
    training."""
    return _feature_dropout("dropout3d", input, p, training, inplace, 5)
