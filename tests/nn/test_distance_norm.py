"""cosine_similarity, pairwise_distance, rms_norm, instance_norm,
dropout1d/2d and pixel_shuffle/unshuffle against torch: values in float32
and float64, float64 gradients, the compiled path, modules and errors."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from nn_testutil import compare_precise, copy_weights, randn

import graphc
import graphc.nn.functional as F
from graphc import nn


def _with(fn, *args, **kwargs):
    return lambda *xs: fn(*xs, *args, **kwargs)


# -- distances ---------------------------------------------------------------------


@pytest.mark.parametrize("dim", [1, 0, -1])
def test_cosine_similarity(dim):
    a, b = randn(4, 5, seed=1), randn(4, 5, seed=2)
    compare_precise(_with(F.cosine_similarity, dim=dim), _with(TF.cosine_similarity, dim=dim), a, b)


def test_cosine_similarity_broadcasts():
    compare_precise(F.cosine_similarity, TF.cosine_similarity, randn(3, 4, 2, seed=3), randn(1, 4, 1, seed=4))


def test_cosine_similarity_clamps_each_norm_like_torch():
    # A zero row and a row below eps: torch clamps each norm at eps without
    # changing its gradient, and a zero norm has gradient 0.
    a = np.zeros((3, 4))
    a[1, 0], a[1, 2] = 1e-10, -3e-10
    a[2] = randn(4, seed=5)
    b = randn(3, 4, seed=6).astype(np.float64)
    compare_precise(F.cosine_similarity, TF.cosine_similarity, a, b)
    compare_precise(_with(F.cosine_similarity, eps=0.5), _with(TF.cosine_similarity, eps=0.5), a, b)


@pytest.mark.parametrize("p", [2.0, 1.0, 3.0, math.inf])
@pytest.mark.parametrize("keepdim", [False, True])
def test_pairwise_distance(p, keepdim):
    a, b = randn(4, 5, seed=7), randn(4, 5, seed=8)
    kwargs = dict(p=p, keepdim=keepdim)
    compare_precise(_with(F.pairwise_distance, **kwargs), _with(TF.pairwise_distance, **kwargs), a, b)


def test_pairwise_distance_eps_broadcast_and_1d():
    compare_precise(
        _with(F.pairwise_distance, eps=0.1), _with(TF.pairwise_distance, eps=0.1), randn(2, 3, 4), randn(4, seed=1)
    )
    compare_precise(F.pairwise_distance, TF.pairwise_distance, randn(5, seed=2), randn(5, seed=3))


def test_distance_modules():
    a, b = randn(3, 6, seed=9), randn(3, 6, seed=10)
    compare_precise(nn.CosineSimilarity(dim=0, eps=1e-6), torch.nn.CosineSimilarity(dim=0, eps=1e-6), a, b)
    compare_precise(nn.PairwiseDistance(p=1.0, keepdim=True), torch.nn.PairwiseDistance(p=1.0, keepdim=True), a, b)
    assert repr(nn.CosineSimilarity()) == repr(torch.nn.CosineSimilarity()) == "CosineSimilarity()"
    assert repr(nn.PairwiseDistance()) == "PairwiseDistance()"
    assert nn.PairwiseDistance(p=3.0).norm == torch.nn.PairwiseDistance(p=3.0).norm == 3.0


def test_pairwise_distance_rejects_negative_p():
    with pytest.raises(RuntimeError, match="non-negative p"):
        F.pairwise_distance(graphc.ones(2, 3), graphc.zeros(2, 3), p=-1.0)


# -- RMSNorm -----------------------------------------------------------------------


@pytest.mark.parametrize("eps", [None, 1e-3])
@pytest.mark.parametrize("shape", [(5,), (3, 5)])
def test_rms_norm(eps, shape):
    x, w = randn(2, 3, 5, seed=11), randn(*shape, seed=12)
    compare_precise(lambda x, w: F.rms_norm(x, shape, w, eps), lambda x, w: TF.rms_norm(x, shape, w, eps), x, w)
    compare_precise(_with(F.rms_norm, shape, eps=eps), _with(TF.rms_norm, shape, eps=eps), x)


def test_rms_norm_module_and_repr():
    t = torch.nn.RMSNorm([3, 4], eps=1e-4).double()
    with torch.no_grad():
        t.weight.copy_(torch.tensor(randn(3, 4, seed=13)))
    g = nn.RMSNorm([3, 4], eps=1e-4).double()
    copy_weights(g, t)
    x = randn(2, 3, 4, seed=14).astype(np.float64)
    gx, tx = graphc.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    g(gx).sum().backward()
    t(tx).sum().backward()
    np.testing.assert_allclose(gx.grad.numpy(), tx.grad.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(g.weight.grad.numpy(), t.weight.grad.numpy(), rtol=1e-9, atol=1e-12)
    assert repr(nn.RMSNorm(4)) == repr(torch.nn.RMSNorm(4))
    assert repr(nn.RMSNorm([2, 3], 1e-5, False)) == repr(torch.nn.RMSNorm([2, 3], 1e-5, False))
    assert list(nn.RMSNorm(4).state_dict()) == list(torch.nn.RMSNorm(4).state_dict()) == ["weight"]
    assert nn.RMSNorm(4, elementwise_affine=False).weight is None


def test_rms_norm_shape_error():
    with pytest.raises(RuntimeError, match="normalized_shape"):
        F.rms_norm(graphc.ones(2, 3), (4,))


# -- InstanceNorm ------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(2, 3, 5), (2, 3, 4, 3)])
def test_instance_norm(shape):
    x, w, b = randn(*shape, seed=15), randn(3, seed=16), randn(3, seed=17)
    compare_precise(F.instance_norm, TF.instance_norm, x)
    compare_precise(
        lambda x, w, b: F.instance_norm(x, weight=w, bias=b, eps=1e-3),
        lambda x, w, b: TF.instance_norm(x, weight=w, bias=b, eps=1e-3),
        x,
        w,
        b,
    )


def test_instance_norm_running_stats_match_torch():
    x = randn(4, 3, 6, seed=18).astype(np.float64)
    rm, rv = randn(3, seed=19).astype(np.float64), np.abs(randn(3, seed=20)).astype(np.float64) + 0.5
    g_rm, g_rv, t_rm, t_rv = graphc.tensor(rm), graphc.tensor(rv), torch.tensor(rm), torch.tensor(rv)
    out_g = F.instance_norm(graphc.tensor(x), g_rm, g_rv, momentum=0.3)
    out_t = TF.instance_norm(torch.tensor(x), t_rm, t_rv, momentum=0.3)
    np.testing.assert_allclose(out_g.numpy(), out_t.numpy(), rtol=1e-10)
    np.testing.assert_allclose(g_rm.numpy(), t_rm.numpy(), rtol=1e-12)
    np.testing.assert_allclose(g_rv.numpy(), t_rv.numpy(), rtol=1e-12)
    # Evaluation with the running statistics.
    compare_precise(
        lambda x: F.instance_norm(x, graphc.tensor(rm), graphc.tensor(rv), use_input_stats=False),
        lambda x: TF.instance_norm(x, torch.tensor(rm), torch.tensor(rv), use_input_stats=False),
        x,
        compiled=False,
    )


@pytest.mark.parametrize("cls", ["InstanceNorm1d", "InstanceNorm2d"])
@pytest.mark.parametrize("kwargs", [{}, {"affine": True}, {"affine": True, "track_running_stats": True}])
def test_instance_norm_modules(cls, kwargs):
    t = getattr(torch.nn, cls)(3, momentum=0.2, **kwargs).double()
    g = getattr(nn, cls)(3, momentum=0.2, **kwargs).double()
    if kwargs.get("affine"):
        with torch.no_grad():
            t.weight.copy_(torch.tensor(randn(3, seed=21)))
            t.bias.copy_(torch.tensor(randn(3, seed=22)))
    copy_weights(g, t)
    assert repr(g) == repr(t)
    assert list(g.state_dict()) == list(t.state_dict())
    shape = (2, 3, 5) if cls == "InstanceNorm1d" else (2, 3, 4, 3)
    for unbatched in (False, True):
        x = randn(*shape, seed=23).astype(np.float64)
        x = x[0] if unbatched else x
        gx, tx = graphc.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        out_g, out_t = g(gx), t(tx)
        np.testing.assert_allclose(out_g.detach().numpy(), out_t.detach().numpy(), rtol=1e-10, atol=1e-12)
        out_g.sum().backward()
        out_t.sum().backward()
        np.testing.assert_allclose(gx.grad.numpy(), tx.grad.numpy(), rtol=1e-9, atol=1e-12)
    for name, buf in t.named_buffers():
        np.testing.assert_allclose(dict(g.named_buffers())[name].numpy(), buf.numpy(), rtol=1e-10)
    g.eval()
    t.eval()
    x = randn(*shape, seed=24).astype(np.float64)
    np.testing.assert_allclose(
        g(graphc.tensor(x)).detach().numpy(), t(torch.tensor(x)).detach().numpy(), rtol=1e-10, atol=1e-12
    )


def test_instance_norm_compiled_updates_running_stats():
    eager, twin = nn.InstanceNorm1d(3, track_running_stats=True), nn.InstanceNorm1d(3, track_running_stats=True)
    compiled = graphc.compile(twin, backend="interp")
    for step in range(3):
        x = graphc.tensor(randn(4, 3, 5, seed=30 + step))
        np.testing.assert_allclose(compiled(x).numpy(), eager(x).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(twin.running_mean.numpy(), eager.running_mean.numpy(), rtol=1e-5)
    np.testing.assert_allclose(twin.running_var.numpy(), eager.running_var.numpy(), rtol=1e-5)


def test_instance_norm_errors():
    with pytest.raises(ValueError, match="more than 1 spatial element"):
        F.instance_norm(graphc.ones(2, 3, 1))
    with pytest.raises(ValueError, match="expected 2D or 3D input"):
        nn.InstanceNorm1d(3)(graphc.ones(2, 3, 4, 5))
    with pytest.raises(ValueError, match="num_features"):
        nn.InstanceNorm2d(3, affine=True)(graphc.ones(2, 4, 3, 3))


# -- channel dropout ---------------------------------------------------------------


@pytest.mark.parametrize("fn,shape", [(F.dropout1d, (50, 40, 7)), (F.dropout2d, (50, 40, 3, 3))])
def test_feature_dropout_zeroes_whole_channels(fn, shape):
    graphc.manual_seed(0)
    out = fn(graphc.ones(*shape), 0.3).numpy().reshape(shape[0], shape[1], -1)
    per_channel = out[:, :, 0]
    # Every channel is all zero or all scaled by 1/(1-p).
    assert np.all(out == per_channel[:, :, None])
    assert set(np.unique(per_channel)) <= {0.0, np.float32(1 / 0.7)}
    dropped = np.mean(per_channel == 0.0)
    assert abs(dropped - 0.3) < 0.05  # 2000 channels: 5 sigma is about 0.05
    assert abs(out.mean() - 1.0) < 0.1


def test_feature_dropout_unbatched_gradient_and_modes():
    graphc.manual_seed(1)
    x = graphc.ones(30, 4, 4, requires_grad=True)
    out = F.dropout2d(x, 0.5)
    out.sum().backward()
    mask = out.detach().numpy()[:, 0, 0]
    assert set(np.unique(mask)) <= {0.0, 2.0}
    np.testing.assert_array_equal(x.grad.numpy(), np.broadcast_to(mask[:, None, None], (30, 4, 4)))
    y = graphc.tensor(randn(2, 3, 4))
    assert F.dropout1d(y, 0.5, training=False) is y
    assert np.all(F.dropout1d(y, 1.0).numpy() == 0)
    np.testing.assert_array_equal(F.dropout2d(graphc.tensor(randn(2, 3, 4, 4)), 0.0).numpy(), randn(2, 3, 4, 4))
    z = graphc.ones(8, 5, 3)
    assert F.dropout1d(z, 0.5, inplace=True) is z
    assert set(np.unique(z.numpy())) <= {0.0, 2.0}


def test_feature_dropout_modules_and_errors():
    for cls in ("Dropout1d", "Dropout2d"):
        g, t = getattr(nn, cls)(0.2), getattr(torch.nn, cls)(0.2)
        assert repr(g) == repr(t)
        g.eval()
        x = graphc.ones(2, 3, 4, 4) if cls == "Dropout2d" else graphc.ones(2, 3, 4)
        assert g(x) is x
        with pytest.raises(ValueError, match="between 0 and 1"):
            getattr(nn, cls)(1.5)
    with pytest.raises(RuntimeError, match="Expected 2D or 3D input"):
        F.dropout1d(graphc.ones(2, 3, 4, 5))
    with pytest.raises(RuntimeError, match="Expected 3D or 4D input"):
        F.dropout2d(graphc.ones(2, 3))


def test_compiled_feature_dropout_draws_new_channel_masks():
    drop = graphc.compile(lambda x: F.dropout2d(x, 0.5), backend="interp")
    x = graphc.ones(4, 64, 2, 2)
    outs = [drop(x).numpy() for _ in range(3)]
    assert not np.array_equal(outs[1], outs[2])
    for out in outs:
        assert np.all(out == out[:, :, :1, :1])
        assert set(np.unique(out)) <= {0.0, 2.0}


# -- pixel shuffle -----------------------------------------------------------------


@pytest.mark.parametrize("shape,r", [((2, 8, 3, 4), 2), ((9, 2, 3), 3), ((2, 1, 4, 2, 2), 2)])
def test_pixel_shuffle(shape, r):
    x = randn(*shape, seed=40)
    compare_precise(_with(F.pixel_shuffle, r), _with(TF.pixel_shuffle, r), x)
    y = TF.pixel_shuffle(torch.tensor(x), r).numpy()
    compare_precise(_with(F.pixel_unshuffle, r), _with(TF.pixel_unshuffle, r), y)


def test_pixel_shuffle_modules_and_errors():
    x = randn(1, 12, 2, 3, seed=41)
    compare_precise(nn.PixelShuffle(2), torch.nn.PixelShuffle(2), x)
    compare_precise(nn.PixelUnshuffle(2), torch.nn.PixelUnshuffle(2), randn(1, 3, 4, 6))
    assert repr(nn.PixelShuffle(2)) == repr(torch.nn.PixelShuffle(2))
    assert repr(nn.PixelUnshuffle(3)) == repr(torch.nn.PixelUnshuffle(3))
    with pytest.raises(RuntimeError, match="divisible by the square of upscale_factor"):
        F.pixel_shuffle(graphc.ones(1, 6, 2, 2), 2)
    with pytest.raises(RuntimeError, match="at least 3 dimensions"):
        F.pixel_shuffle(graphc.ones(4, 4), 2)
    with pytest.raises(RuntimeError, match="divisible by downscale_factor"):
        F.pixel_unshuffle(graphc.ones(1, 1, 3, 4), 2)


def test_pairwise_distance_p0_counts_differences():
    a = randn(3, 4, seed=50)
    b = a.copy()
    b[0, :2] += 1.0
    kwargs = dict(p=0.0, eps=0.0)
    compare_precise(_with(F.pairwise_distance, **kwargs), _with(TF.pairwise_distance, **kwargs), a, b, grad_inputs=())


def test_default_backend_compiles_distances_and_norms():
    def fn(a, b):
        return F.cosine_similarity(a, b).sum() + F.pairwise_distance(a, b).sum() + F.rms_norm(a, (4,)).sum()

    a, b = graphc.tensor(randn(3, 4, seed=51)), graphc.tensor(randn(3, 4, seed=52))
    compiled = graphc.compile(fn)
    for _ in range(3):
        np.testing.assert_allclose(compiled(a, b).numpy(), fn(a, b).numpy(), rtol=1e-5)


def test_top_level_aliases_like_torch():
    for name in ("cosine_similarity", "pairwise_distance", "pixel_shuffle", "pixel_unshuffle"):
        assert getattr(graphc, name) is getattr(F, name)
        assert callable(getattr(torch, name))
