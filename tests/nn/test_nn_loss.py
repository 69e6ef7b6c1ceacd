"""Losses against torch: every reduction, weights, ignore_index, smoothing."""

import numpy as np
import pytest
import torch
import torch.nn as tnn
import torch.nn.functional as TF
from nn_testutil import compare, randn

import graphc
import graphc.nn.functional as F
from graphc import nn

REDUCTIONS = ["mean", "sum", "none"]
LOGITS = randn(6, 5, seed=1, scale=2.0)
TARGET = np.array([0, 4, 2, 2, 1, 3], dtype=np.int64)
TARGET_IGNORED = np.array([0, -100, 2, 2, 1, -100], dtype=np.int64)
WEIGHT = np.array([0.5, 1.0, 2.0, 0.3, 1.5], dtype=np.float32)


def _with(fn, *args, **kwargs):
    return lambda *xs: fn(*xs, *args, **kwargs)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("target", [TARGET, TARGET_IGNORED], ids=["plain", "ignored"])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_class_indices(reduction, target, smoothing, weighted):
    def run(lib_fn, lib):
        def fn(x, t):
            weight = lib.tensor(WEIGHT) if weighted else None
            return lib_fn(x, t, weight=weight, reduction=reduction, label_smoothing=smoothing)

        return fn

    compare(run(F.cross_entropy, graphc), run(TF.cross_entropy, torch), LOGITS, target)


def test_cross_entropy_custom_ignore_index_and_spatial():
    x = randn(2, 4, 3, 3, seed=2)
    t = np.random.default_rng(3).integers(0, 4, size=(2, 3, 3)).astype(np.int64)
    t[0, 1, 1] = 3
    for reduction in REDUCTIONS:
        compare(
            _with(F.cross_entropy, ignore_index=3, reduction=reduction),
            _with(TF.cross_entropy, ignore_index=3, reduction=reduction),
            x,
            t,
        )


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_cross_entropy_class_probabilities(reduction, smoothing):
    probs = TF.softmax(torch.tensor(randn(6, 5, seed=4)), 1).numpy()
    for weight in (None, WEIGHT):

        def run(lib_fn, lib, weight=weight):
            w = lib.tensor(weight) if weight is not None else None
            return lambda x, t: lib_fn(x, t, weight=w, reduction=reduction, label_smoothing=smoothing)

        compare(run(F.cross_entropy, graphc), run(TF.cross_entropy, torch), LOGITS, probs)


def test_cross_entropy_unbatched():
    compare(F.cross_entropy, TF.cross_entropy, randn(5, seed=5), np.array(3, dtype=np.int64))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_nll_loss(reduction):
    logp = TF.log_softmax(torch.tensor(LOGITS), 1).numpy()
    compare(
        _with(F.nll_loss, reduction=reduction),
        _with(TF.nll_loss, reduction=reduction),
        logp,
        TARGET_IGNORED,
    )
    compare(
        lambda x, t: F.nll_loss(x, t, graphc.tensor(WEIGHT), reduction=reduction),
        lambda x, t: TF.nll_loss(x, t, torch.tensor(WEIGHT), reduction=reduction),
        logp,
        TARGET,
    )


def test_nll_loss_target_shape_error():
    with pytest.raises(ValueError, match=r"expected target of shape \(6,\)"):
        F.nll_loss(graphc.tensor(LOGITS), graphc.tensor(TARGET[:4]))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_regression_losses(reduction):
    a, b = randn(4, 3, seed=6, scale=2.0), randn(4, 3, seed=7, scale=2.0)
    compare(
        _with(F.mse_loss, reduction=reduction),
        _with(TF.mse_loss, reduction=reduction),
        a,
        b,
    )
    compare(
        _with(F.l1_loss, reduction=reduction),
        _with(TF.l1_loss, reduction=reduction),
        a,
        b,
    )
    for beta in (1.0, 0.5, 0.0):
        compare(
            _with(F.smooth_l1_loss, reduction=reduction, beta=beta),
            _with(TF.smooth_l1_loss, reduction=reduction, beta=beta),
            a,
            b,
        )
    for delta in (1.0, 0.7):
        compare(
            _with(F.huber_loss, reduction=reduction, delta=delta),
            _with(TF.huber_loss, reduction=reduction, delta=delta),
            a,
            b,
        )


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_cross_entropy(reduction):
    p = torch.sigmoid(torch.tensor(randn(5, 3, seed=8))).numpy()
    t = (randn(5, 3, seed=9) > 0).astype(np.float32)
    w = np.abs(randn(5, 3, seed=10))
    compare(
        _with(F.binary_cross_entropy, reduction=reduction),
        _with(TF.binary_cross_entropy, reduction=reduction),
        p,
        t,
    )
    compare(
        lambda p, t: F.binary_cross_entropy(p, t, graphc.tensor(w), reduction=reduction),
        lambda p, t: TF.binary_cross_entropy(p, t, torch.tensor(w), reduction=reduction),
        p,
        t,
    )


def test_binary_cross_entropy_clamps_log_at_minus_100():
    p = np.array([0.0, 1.0, 0.5], dtype=np.float32)
    t = np.array([1.0, 0.0, 1.0], dtype=np.float32)
    compare(F.binary_cross_entropy, TF.binary_cross_entropy, p, t, grad=False)


def test_binary_cross_entropy_gradient_is_finite_at_saturation():
    # Confident and right: PyTorch's loss, and a finite gradient (not NaN).
    p = np.array([0.0, 1.0, 1e-30, 0.3], dtype=np.float32)
    t = np.array([0.0, 1.0, 0.0, 1.0], dtype=np.float32)
    compare(F.binary_cross_entropy, TF.binary_cross_entropy, p, t, grad=False)
    x = graphc.tensor(p, requires_grad=True)
    F.binary_cross_entropy(x, graphc.tensor(t)).backward()
    assert np.isfinite(x.grad.numpy()).all()


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_cross_entropy_with_logits(reduction):
    x = randn(5, 3, seed=11, scale=10.0)
    t = np.random.default_rng(12).random((5, 3)).astype(np.float32)
    pw = np.array([0.5, 2.0, 3.0], dtype=np.float32)
    compare(
        _with(F.binary_cross_entropy_with_logits, reduction=reduction),
        _with(TF.binary_cross_entropy_with_logits, reduction=reduction),
        x,
        t,
    )
    compare(
        lambda x, t: F.binary_cross_entropy_with_logits(x, t, pos_weight=graphc.tensor(pw), reduction=reduction),
        lambda x, t: TF.binary_cross_entropy_with_logits(x, t, pos_weight=torch.tensor(pw), reduction=reduction),
        x,
        t,
    )


@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides")
@pytest.mark.parametrize("reduction", ["mean", "sum", "none", "batchmean"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div(reduction, log_target):
    x = TF.log_softmax(torch.tensor(randn(4, 5, seed=13)), 1).numpy()
    t = TF.softmax(torch.tensor(randn(4, 5, seed=14)), 1).numpy()
    if log_target:
        t = np.log(t).astype(np.float32)
    compare(
        _with(F.kl_div, reduction=reduction, log_target=log_target),
        _with(TF.kl_div, reduction=reduction, log_target=log_target),
        x,
        t,
    )


def test_kl_div_zero_target_contributes_zero():
    x = np.log(np.full((2, 3), 1 / 3, dtype=np.float32))
    t = np.array([[0.0, 0.5, 0.5], [1.0, 0.0, 0.0]], dtype=np.float32)
    compare(
        _with(F.kl_div, reduction="sum"),
        _with(TF.kl_div, reduction="sum"),
        x,
        t,
        grad=False,
    )


MODULES = [
    (nn.MSELoss, tnn.MSELoss, {}, "regression"),
    (nn.L1Loss, tnn.L1Loss, {}, "regression"),
    (nn.SmoothL1Loss, tnn.SmoothL1Loss, {"beta": 0.5}, "regression"),
    (nn.HuberLoss, tnn.HuberLoss, {"delta": 0.5}, "regression"),
    (nn.CrossEntropyLoss, tnn.CrossEntropyLoss, {"label_smoothing": 0.1}, "classes"),
    (nn.NLLLoss, tnn.NLLLoss, {}, "classes"),
    (nn.BCEWithLogitsLoss, tnn.BCEWithLogitsLoss, {}, "binary"),
    (nn.KLDivLoss, tnn.KLDivLoss, {}, "distribution"),
]


@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides")
@pytest.mark.parametrize("g_cls,t_cls,kwargs,kind", MODULES, ids=[m[0].__name__ for m in MODULES])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_loss_modules(g_cls, t_cls, kwargs, kind, reduction):
    inputs = {
        "regression": (randn(4, 5, seed=15), randn(4, 5, seed=16)),
        "classes": (LOGITS, TARGET_IGNORED),
        "distribution": (
            randn(4, 5, seed=21),
            TF.softmax(torch.tensor(randn(4, 5, seed=22)), 1).numpy(),
        ),
        "binary": (randn(4, 5, seed=17), (randn(4, 5, seed=18) > 0).astype(np.float32)),
    }[kind]
    compare(
        g_cls(reduction=reduction, **kwargs),
        t_cls(reduction=reduction, **kwargs),
        *inputs,
    )


def test_bce_loss_module_and_weighted_cross_entropy_module():
    p = torch.sigmoid(torch.tensor(randn(4, 2, seed=19))).numpy()
    t = (randn(4, 2, seed=20) > 0).astype(np.float32)
    compare(nn.BCELoss(), tnn.BCELoss(), p, t)
    g_loss = nn.CrossEntropyLoss(weight=graphc.tensor(WEIGHT), ignore_index=1)
    t_loss = tnn.CrossEntropyLoss(weight=torch.tensor(WEIGHT), ignore_index=1)
    compare(g_loss, t_loss, LOGITS, TARGET)
    assert list(g_loss.state_dict()) == list(t_loss.state_dict()) == ["weight"]


def test_legacy_reduce_flags():
    assert nn.MSELoss(size_average=False).reduction == "sum"
    assert nn.MSELoss(reduce=False).reduction == "none"


def test_invalid_reduction():
    with pytest.raises(ValueError, match="not a valid value for reduction"):
        F.mse_loss(graphc.zeros(2), graphc.zeros(2), reduction="avg")
