"""Loss functions with PyTorch's formulas, defaults and reduction rules."""

from __future__ import annotations

import math

import graphc
from graphc._checks import tensor_params
from graphc.errors import at_user_line
from graphc.nn.functional.activation import log_softmax, logsigmoid

_REDUCTIONS = ("mean", "sum", "none")


def _legacy_reduction(size_average, reduce, reduction: str) -> str:
    """Map the deprecated size_average/reduce flags to a reduction string."""
    if size_average is None and reduce is None:
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    if not reduce:
        return "none"
    return "mean" if size_average else "sum"


def _reduce(loss, reduction: str):
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"{reduction} is not a valid value for reduction (expected one of {_REDUCTIONS})")


def _weighted_reduce(loss, weight, reduction: str):
    """Scale the elementwise loss by `weight` (when given), then reduce."""
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def _reduce_by_sample_weight(loss, sample_weight, reduction: str, shape):
    """Reduce per-sample class losses: 'mean' divides by the summed sample
    weights (ignored targets weigh 0); 'none' gives the target's `shape`."""
    if reduction == "mean":
        return loss.sum() / sample_weight.sum()
    if reduction == "none":
        return loss.reshape(shape)
    return _reduce(loss, reduction)


def _abs(x):
    return graphc.where(x < 0, -x, x)


def _check_same_shape(name: str, input, target):
    if tuple(input.shape) != tuple(target.shape):
        raise ValueError(f"{name}: target shape {tuple(target.shape)} must equal input shape {tuple(input.shape)}")


# -- regression ------------------------------------------------------------------


@tensor_params("input", "target")
def mse_loss(input, target, size_average=None, reduce=None, reduction: str = "mean", weight=None):
    """Mean squared error."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    diff = input - target
    loss = diff * diff
    return _weighted_reduce(loss, weight, reduction)


@tensor_params("input", "target")
def l1_loss(input, target, size_average=None, reduce=None, reduction: str = "mean", weight=None):
    """Mean absolute error."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    loss = _abs(input - target)
    return _weighted_reduce(loss, weight, reduction)


@tensor_params("input", "target")
def smooth_l1_loss(
    input,
    target,
    size_average=None,
    reduce=None,
    reduction: str = "mean",
    beta: float = 1.0,
):
    """0.5 d^2 / beta where |d| < beta, |d| - beta/2 elsewhere (l1 at beta=0)."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    d = _abs(input - target)
    if beta == 0.0:
        return _reduce(d, reduction)
    loss = graphc.where(d < beta, 0.5 * d * d / beta, d - 0.5 * beta)
    return _reduce(loss, reduction)


@tensor_params("input", "target")
def huber_loss(input, target, reduction: str = "mean", delta: float = 1.0, weight=None):
    """0.5 d^2 where |d| < delta, delta * (|d| - delta/2) elsewhere."""
    d = _abs(input - target)
    loss = graphc.where(d < delta, 0.5 * d * d, delta * (d - 0.5 * delta))
    return _weighted_reduce(loss, weight, reduction)


# -- classification ----------------------------------------------------------------


def _class_last(x):
    """[N, C, d1, ...] -> [N*d1*..., C]; [C] -> [1, C]."""
    if x.dim() == 1:
        return x.reshape(1, -1)
    if x.dim() == 2:
        return x
    perm = (0,) + tuple(range(2, x.dim())) + (1,)
    return x.permute(*perm).reshape(-1, x.shape[1])


def _check_targets(name: str, input, target):
    if target.dtype not in (graphc.int64, graphc.uint8):
        # torch indexes with int64 (or uint8) only; an int32 or float target
        # is a mistake worth naming, not something to convert silently.
        raise RuntimeError(
            at_user_line(
                f"{name}: expected target dtype to be Long or Byte (class indices), but got {target.dtype.name}; "
                "convert it with target.long()"
            )
        )
    expected = (input.shape[0],) + tuple(input.shape[2:]) if input.dim() > 1 else ()
    if tuple(target.shape) != expected:
        raise ValueError(
            f"{name}: expected target of shape {expected} for input of shape {tuple(input.shape)}, "
            f"got {tuple(target.shape)}"
        )


def _picked_and_weights(log_probs, target, weight, ignore_index: int):
    """Per-sample -log_prob[target] and weight[target] (0 where ignored),
    with log_probs as [M, C] and target as [M]."""
    valid = target != ignore_index
    safe_target = graphc.where(valid, target, graphc.zeros_like(target))
    picked = log_probs.gather(1, safe_target.unsqueeze(1)).squeeze(1)
    if weight is not None:
        sample_weight = weight.gather(0, safe_target)
    else:
        sample_weight = graphc.ones_like(picked)
    sample_weight = graphc.where(valid, sample_weight, graphc.zeros_like(sample_weight))
    return -picked, sample_weight


@tensor_params("input", "target")
def nll_loss(
    input,
    target,
    weight=None,
    size_average=None,
    ignore_index: int = -100,
    reduce=None,
    reduction: str = "mean",
):
    """Negative log-likelihood of class indices given log-probabilities
    [N, C] (or [N, C, d1, ...], or [C]). 'mean' divides by the summed weights
    of the non-ignored targets."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_targets("nll_loss", input, target)
    nll, sample_weight = _picked_and_weights(_class_last(input), target.reshape(-1), weight, ignore_index)
    return _reduce_by_sample_weight(nll * sample_weight, sample_weight, reduction, target.shape)


@tensor_params("input", "target")
def cross_entropy(
    input,
    target,
    weight=None,
    size_average=None,
    ignore_index: int = -100,
    reduce=None,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
):
    """log_softmax + nll_loss for class-index targets, or the soft-label
    cross entropy for class-probability targets (same shape as input)."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    class_dim = 0 if input.dim() == 1 else 1
    log_probs = log_softmax(input, class_dim)
    if target.is_floating_point() and tuple(target.shape) == tuple(input.shape):
        return _soft_cross_entropy(log_probs, target, weight, reduction, label_smoothing, class_dim)
    loss = nll_loss(log_probs, target, weight, ignore_index=ignore_index, reduction=reduction)
    if label_smoothing == 0.0:
        return loss
    flat = _class_last(log_probs)
    flat_target = target.reshape(-1)
    _, sample_weight = _picked_and_weights(flat, flat_target, weight, ignore_index)
    weighted = flat * weight if weight is not None else flat
    smooth = -weighted.sum(1)
    smooth = graphc.where(flat_target != ignore_index, smooth, graphc.zeros_like(smooth))
    # nll_loss above has already rejected an unknown reduction.
    smooth = _reduce_by_sample_weight(smooth, sample_weight, reduction, target.shape)
    classes = input.shape[class_dim]
    return (1.0 - label_smoothing) * loss + smooth * (label_smoothing / classes)


def _soft_cross_entropy(log_probs, target, weight, reduction, label_smoothing, class_dim):
    classes = log_probs.shape[class_dim]
    if label_smoothing > 0.0:
        target = target * (1.0 - label_smoothing) + label_smoothing / classes
    terms = log_probs * target
    if weight is not None:
        shape = [1] * log_probs.dim()
        shape[class_dim] = classes
        terms = terms * weight.reshape(shape)
    loss = -terms.sum(class_dim)
    if reduction == "mean":
        return loss.sum() / (log_probs.numel() // classes)
    return _reduce(loss, reduction)


# Below the smallest normal float32, 1/x overflows; PyTorch's floor of -100
# for the log is used there instead.
_TINY = 1.1754944e-38


def _clamped_log(x):
    """max(log x, -100) whose gradient stays finite at x = 0: the log only
    ever sees positive normal numbers (a zero cotangent times 1/0 would be
    NaN even in the branch `where` discards)."""
    positive = x > _TINY
    safe = graphc.where(positive, x, graphc.ones_like(x))
    return graphc.where(positive, graphc.log(safe), graphc.full_like(x, -100.0))


@tensor_params("input", "target")
def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None, reduction: str = "mean"):
    """-(t log x + (1 - t) log(1 - x)), logs clamped at -100 as in PyTorch."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_same_shape("binary_cross_entropy", input, target)
    loss = -(target * _clamped_log(input) + (1.0 - target) * _clamped_log(1.0 - input))
    return _weighted_reduce(loss, weight, reduction)


@tensor_params("input", "target")
def binary_cross_entropy_with_logits(
    input,
    target,
    weight=None,
    size_average=None,
    reduce=None,
    reduction: str = "mean",
    pos_weight=None,
):
    """sigmoid + binary cross entropy in the stable form
    (1 - t) x - w_pos(t) log sigmoid(x), with w_pos = 1 + (pos_weight - 1) t."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_same_shape("binary_cross_entropy_with_logits", input, target)
    log_sig = logsigmoid(input)
    if pos_weight is not None:
        loss = (1.0 - target) * input - (1.0 + (pos_weight - 1.0) * target) * log_sig
    else:
        loss = (1.0 - target) * input - log_sig
    return _weighted_reduce(loss, weight, reduction)


@tensor_params("input", "target")
def kl_div(
    input,
    target,
    size_average=None,
    reduce=None,
    reduction: str = "mean",
    log_target: bool = False,
):
    """Pointwise KL divergence target * (log target - input) with `input` in
    log space; 'batchmean' divides the sum by the batch size."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if log_target:
        loss = graphc.exp(target) * (target - input)
    else:
        # xlogy(t, t) - t * input, with 0 log 0 = 0 (negative targets give NaN, as in PyTorch).
        zero = target == 0
        safe = graphc.where(zero, graphc.ones_like(target), target)
        loss = graphc.where(zero, graphc.zeros_like(target), target * graphc.log(safe)) - target * input
    if reduction == "batchmean":
        return loss.sum() / (input.shape[0] if input.dim() > 0 else 1)
    return _reduce(loss, reduction)


@tensor_params("input", "target")
def soft_margin_loss(input, target, reduction: str = "mean"):
    """log(1 + exp(-y x))."""
    return _reduce(-logsigmoid(target * input), reduction)


# -- margins, embeddings and likelihoods -----------------------------------------


@tensor_params("input1", "input2", "target")
def margin_ranking_loss(
    input1, input2, target, margin: float = 0.0, size_average=None, reduce=None, reduction: str = "mean"
):
    """max(0, -y (x1 - x2) + margin)."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if input1.dim() != input2.dim() or input1.dim() != target.dim():
        raise RuntimeError(
            f"margin_ranking_loss : All input tensors should have same dimension but got sizes: "
            f"input1: {tuple(input1.shape)}, input2: {tuple(input2.shape)}, target: {tuple(target.shape)} "
        )
    return _reduce((-target * (input1 - input2) + margin).clamp_min(0.0), reduction)


@tensor_params("input", "target")
def hinge_embedding_loss(input, target, margin: float = 1.0, size_average=None, reduce=None, reduction: str = "mean"):
    """x where y = 1, max(0, margin - x) where y = -1 (PyTorch's sum of the
    two masked terms for other targets)."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    zeros = graphc.zeros_like(input)
    margin_term = graphc.where(target != 1, (margin - input).clamp_min(0.0), zeros)
    self_term = graphc.where(target != -1, input, zeros)
    return _reduce(margin_term + self_term, reduction)


@tensor_params("input1", "input2", "target")
def cosine_embedding_loss(
    input1, input2, target, margin: float = 0.0, size_average=None, reduce=None, reduction: str = "mean"
):
    """1 - cos(x1, x2) where y = 1, max(0, cos(x1, x2) - margin) where y = -1,
    with cos over the last dim and 1e-12 added to each squared norm."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if target.dim() > 1:
        raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
    if input1.dim() != target.dim() + 1 or input2.dim() != target.dim() + 1:
        raise RuntimeError(
            f"{target.dim()}D target tensor expects {target.dim() + 1}D input tensors, "
            f"but found inputs with sizes {list(input1.shape)} and {list(input2.shape)}."
        )
    dim = input1.dim() - 1
    prod = (input1 * input2).sum(dim)
    mag1 = (input1 * input1).sum(dim) + 1e-12
    mag2 = (input2 * input2).sum(dim) + 1e-12
    cos = prod / graphc.sqrt(mag1 * mag2)
    zeros = graphc.zeros_like(cos)
    pos = graphc.where(target == 1, 1.0 - cos, zeros)
    neg = graphc.where(target == -1, (cos - margin).clamp_min(0.0), zeros)
    return _reduce(pos + neg, reduction)


@tensor_params("anchor", "positive", "negative")
def triplet_margin_loss(
    anchor,
    positive,
    negative,
    margin: float = 1.0,
    p: float = 2,
    eps: float = 1e-6,
    swap: bool = False,
    size_average=None,
    reduce=None,
    reduction: str = "mean",
):
    """max(0, margin + d(a, p) - d(a, n)) with d = pairwise_distance; `swap`
    uses min(d(a, n), d(p, n)) for the negative distance."""
    from graphc.nn.functional.distance import pairwise_distance

    reduction = _legacy_reduction(size_average, reduce, reduction)
    dims = (anchor.dim(), positive.dim(), negative.dim())
    if len(set(dims)) != 1:
        raise RuntimeError(
            f"The anchor, positive, and negative tensors are expected to have the same number of dimensions, "
            f"but got: anchor {dims[0]}D, positive {dims[1]}D, and negative {dims[2]}D inputs"
        )
    d_pos = pairwise_distance(anchor, positive, p, eps)
    d_neg = pairwise_distance(anchor, negative, p, eps)
    if swap:
        d_neg = graphc.minimum(d_neg, pairwise_distance(positive, negative, p, eps))
    return _reduce((margin + d_pos - d_neg).clamp_min(0.0), reduction)


@tensor_params("input", "target")
def poisson_nll_loss(
    input,
    target,
    log_input: bool = True,
    full: bool = False,
    size_average=None,
    eps: float = 1e-8,
    reduce=None,
    reduction: str = "mean",
):
    """exp(x) - t x (log_input) or x - t log(x + eps); `full` adds Stirling's
    t log t - t + log(2 pi t)/2 where t > 1."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{reduction} is not a valid value for reduction")
    if log_input:
        loss = graphc.exp(input) - target * input
    else:
        loss = input - target * graphc.log(input + eps)
    if full:
        big = target > 1
        safe = graphc.where(big, target, graphc.full_like(target, 2.0))
        stirling = safe * graphc.log(safe) - safe + 0.5 * graphc.log(2 * math.pi * safe)
        loss = loss + graphc.where(big, stirling, graphc.zeros_like(stirling))
    return _reduce(loss, reduction)


@tensor_params("input", "target", "var")
def gaussian_nll_loss(input, target, var, full: bool = False, eps: float = 1e-6, reduction: str = "mean"):
    """(log max(var, eps) + (x - t)^2 / max(var, eps)) / 2 (+ log(2 pi)/2 when
    `full`); var has input's shape, or one dim fewer, or a last dim of 1. The
    clamp at eps leaves var's gradient untouched, as in PyTorch."""
    if tuple(var.shape) != tuple(input.shape):
        if tuple(input.shape[:-1]) == tuple(var.shape):
            var = var.unsqueeze(-1)
        elif not (tuple(input.shape[:-1]) == tuple(var.shape[:-1]) and var.shape[-1] == 1):
            raise ValueError("var is of incorrect size")
    if reduction not in _REDUCTIONS:
        raise ValueError(reduction + " is not valid")
    if not var.is_symbolic and bool((var < 0).any().item()):
        raise ValueError("var has negative entry/entries")
    var = var + (var.clamp_min(eps) - var).detach()
    diff = input - target
    loss = 0.5 * (graphc.log(var) + diff * diff / var)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce(loss, reduction)


# -- multi-class margins -----------------------------------------------------------


def _check_class_scores(name: str, input, target):
    if input.dim() not in (1, 2):
        raise RuntimeError(
            f"{name}: Expected non-empty vector or matrix with optional 0-dim batch size, but got: {tuple(input.shape)}"
        )
    expected = tuple(input.shape[:-1])
    if tuple(target.shape) != expected and not (input.dim() == 1 and target.dim() == 0):
        raise RuntimeError(
            f"{name}: inconsistent target size: {tuple(target.shape)} for input of size: {tuple(input.shape)}"
        )


@tensor_params("input", "target")
def multi_margin_loss(
    input,
    target,
    p: int = 1,
    margin: float = 1.0,
    weight=None,
    size_average=None,
    reduce=None,
    reduction: str = "mean",
):
    """Multi-class hinge loss: sum over classes i != y of
    max(0, margin - x[y] + x[i])^p, divided by the number of classes;
    `weight[y]` scales each sample's terms."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if p not in (1, 2):
        raise ValueError("only p == 1 and p == 2 supported")
    _check_class_scores("multi_margin_loss", input, target)
    scores = input if input.dim() == 2 else input.unsqueeze(0)
    labels = target.reshape(-1, 1)
    classes = scores.shape[1]
    picked = scores.gather(1, labels)
    terms = (margin - picked + scores).clamp_min(0.0)
    if p == 2:
        terms = terms * terms
    if weight is not None:
        terms = terms * weight[labels.reshape(-1)].reshape(-1, 1)
    # The target class's own term is max(0, margin)^p: drop it.
    not_target = graphc.arange(classes, device=input.device).reshape(1, -1) != labels
    loss = (terms * not_target.to(terms.dtype)).sum(1) / classes
    if input.dim() == 1:
        loss = loss.reshape(())
    return _reduce(loss, reduction)


@tensor_params("input", "target")
def multilabel_margin_loss(input, target, size_average=None, reduce=None, reduction: str = "mean"):
    """Multi-label hinge loss: `target` lists each sample's classes, ended by
    the first -1; every (listed j, unlisted i) pair adds
    max(0, 1 - (x[j] - x[i])), divided by the number of classes."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if tuple(target.shape) != tuple(input.shape):
        raise RuntimeError(
            f"multilabel_margin_loss: inconsistent target size: {tuple(target.shape)} for input of "
            f"size: {tuple(input.shape)}"
        )
    if input.dim() not in (1, 2):
        raise RuntimeError(
            f"multilabel_margin_loss: Expected non-empty vector or matrix with optional 0-dim batch "
            f"size, but got: {tuple(input.shape)}"
        )
    scores = input if input.dim() == 2 else input.unsqueeze(0)
    labels = target.reshape(scores.shape)
    classes = scores.shape[1]
    # Listed targets: the entries before the first -1.
    listed = (labels == -1).to(graphc.int64).cumsum(1) == 0
    safe = graphc.where(listed, labels, graphc.zeros_like(labels))
    is_target = (graphc.nn.functional.one_hot(safe, classes) * listed.unsqueeze(2).to(graphc.int64)).sum(1) > 0
    picked = scores.gather(1, safe)  # [N, K]: x[j] for each listed slot
    hinge = (1.0 - picked.unsqueeze(2) + scores.unsqueeze(1)).clamp_min(0.0)  # [N, K(j), C(i)]
    pairs = listed.unsqueeze(2) & (~is_target).unsqueeze(1)
    loss = (hinge * pairs.to(hinge.dtype)).sum((1, 2)) / classes
    if input.dim() == 1:
        loss = loss.reshape(())
    return _reduce(loss, reduction)


@tensor_params("input", "target")
def multilabel_soft_margin_loss(input, target, weight=None, size_average=None, reduce=None, reduction: str = "mean"):
    """Per-class binary cross-entropy on logits, averaged over classes:
    -(y log sigmoid(x) + (1 - y) log sigmoid(-x))."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    loss = -(target * logsigmoid(input) + (1.0 - target) * logsigmoid(-input))
    if weight is not None:
        loss = loss * weight
    loss = loss.sum(input.dim() - 1) / input.shape[-1]
    return _reduce(loss, reduction)


@tensor_params("anchor", "positive", "negative")
def triplet_margin_with_distance_loss(
    anchor,
    positive,
    negative,
    *,
    distance_function=None,
    margin: float = 1.0,
    swap: bool = False,
    reduction: str = "mean",
):
    """max(0, margin + d(a, p) - d(a, n)) for any distance function d
    (pairwise_distance by default); `swap` uses min(d(a, n), d(p, n))."""
    from graphc.nn.functional.distance import pairwise_distance

    if margin <= 0:
        raise ValueError(f"TripletMarginWithDistanceLoss: expected margin to be greater than 0, got {margin} instead")
    distance = distance_function if distance_function is not None else pairwise_distance
    d_pos = distance(anchor, positive)
    d_neg = distance(anchor, negative)
    if swap:
        d_neg = graphc.minimum(d_neg, distance(positive, negative))
    return _reduce((margin + d_pos - d_neg).clamp_min(0.0), reduction)
