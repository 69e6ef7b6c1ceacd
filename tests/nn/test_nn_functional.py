"""graphc.nn.functional against torch.nn.functional: values and gradients."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from nn_testutil import assert_close, compare, randn

import graphc
import graphc.nn.functional as F

X = randn(4, 7, seed=1, scale=3.0)

ACTIVATIONS = [
    ("relu", F.relu, TF.relu),
    ("relu6", F.relu6, TF.relu6),
    ("leaky_relu", lambda x: F.leaky_relu(x, 0.2), lambda x: TF.leaky_relu(x, 0.2)),
    ("elu", lambda x: F.elu(x, 0.7), lambda x: TF.elu(x, 0.7)),
    ("gelu", F.gelu, TF.gelu),
    (
        "gelu_tanh",
        lambda x: F.gelu(x, approximate="tanh"),
        lambda x: TF.gelu(x, approximate="tanh"),
    ),
    ("silu", F.silu, TF.silu),
    ("sigmoid", F.sigmoid, torch.sigmoid),
    ("tanh", F.tanh, torch.tanh),
    ("softplus", F.softplus, TF.softplus),
    (
        "softplus_beta",
        lambda x: F.softplus(x, 2.0, 5.0),
        lambda x: TF.softplus(x, 2.0, 5.0),
    ),
    (
        "hardtanh",
        lambda x: F.hardtanh(x, -2.0, 2.5),
        lambda x: TF.hardtanh(x, -2.0, 2.5),
    ),
    ("logsigmoid", F.logsigmoid, TF.logsigmoid),
    ("softmax0", lambda x: F.softmax(x, 0), lambda x: TF.softmax(x, 0)),
    ("softmax1", lambda x: F.softmax(x, dim=1), lambda x: TF.softmax(x, dim=1)),
    (
        "log_softmax",
        lambda x: F.log_softmax(x, dim=1),
        lambda x: TF.log_softmax(x, dim=1),
    ),
    (
        "log_softmax_neg",
        lambda x: F.log_softmax(x, -1),
        lambda x: TF.log_softmax(x, -1),
    ),
    ("softmin", lambda x: F.softmin(x, 1), lambda x: TF.softmin(x, 1)),
    ("normalize", lambda x: F.normalize(x, dim=1), lambda x: TF.normalize(x, dim=1)),
]


@pytest.mark.parametrize("name,g_fn,t_fn", ACTIVATIONS, ids=[a[0] for a in ACTIVATIONS])
def test_activation_matches_torch(name, g_fn, t_fn):
    compare(g_fn, t_fn, X)


def test_activations_at_zero_and_extremes():
    x = np.array([-100.0, -30.0, -1.0, 0.0, 1.0, 30.0, 100.0], dtype=np.float32)
    for g_fn, t_fn in [
        (F.relu, TF.relu),
        (F.elu, TF.elu),
        (F.leaky_relu, TF.leaky_relu),
        (F.sigmoid, torch.sigmoid),
        (F.softplus, TF.softplus),
        (F.silu, TF.silu),
        (F.logsigmoid, TF.logsigmoid),
        (F.gelu, TF.gelu),
    ]:
        compare(g_fn, t_fn, x, atol=1e-5)


def test_log_softmax_is_stable_for_large_logits():
    x = np.array([[1000.0, 0.0, -1000.0]], dtype=np.float32)
    compare(lambda t: F.log_softmax(t, 1), lambda t: TF.log_softmax(t, 1), x)
    compare(lambda t: F.softmax(t, 1), lambda t: TF.softmax(t, 1), x)


def test_erf_accuracy():
    x = np.linspace(-5, 5, 1001).astype(np.float32)
    assert_close(F.erf(graphc.tensor(x)), torch.erf(torch.tensor(x)), atol=3e-7, rtol=0)


def test_relu_inplace_modifies_input():
    x = graphc.tensor([-1.0, 2.0])
    out = F.relu_(x)
    assert out is x
    np.testing.assert_array_equal(x.numpy(), [0.0, 2.0])


def test_linear_and_bilinear():
    w, b = randn(5, 7, seed=2), randn(5, seed=3)
    compare(F.linear, TF.linear, X, w, b)
    compare(F.linear, TF.linear, randn(2, 3, 7, seed=4), w)
    x1, x2, wb, bb = (
        randn(4, 3, seed=5),
        randn(4, 2, seed=6),
        randn(5, 3, 2, seed=7),
        randn(5, seed=8),
    )
    compare(F.bilinear, TF.bilinear, x1, x2, wb, bb)


CONV_CASES = [
    {},
    {"stride": 2},
    {"padding": 1},
    {"padding": (2, 1), "stride": (1, 2)},
    {"dilation": 2, "padding": 2},
    {"padding": "same"},
    {"padding": "valid"},
    {"groups": 2},
    {"groups": 4, "padding": 1, "stride": 2},
]


@pytest.mark.parametrize("kwargs", CONV_CASES, ids=[str(k) for k in CONV_CASES])
def test_conv2d_matches_torch(kwargs):
    groups = kwargs.get("groups", 1)
    x = randn(2, 4, 9, 8, seed=10)
    w = randn(6 if groups != 4 else 8, 4 // groups, 3, 3, seed=11)
    b = randn(w.shape[0], seed=12)
    compare(
        lambda x, w, b: F.conv2d(x, w, b, **kwargs),
        lambda x, w, b: TF.conv2d(x, w, b, **kwargs),
        x,
        w,
        b,
    )


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
def test_conv2d_same_with_even_kernel_and_no_bias():
    x, w = randn(1, 2, 6, 7, seed=13), randn(3, 2, 4, 2, seed=14)
    compare(
        lambda x, w: F.conv2d(x, w, padding="same"),
        lambda x, w: TF.conv2d(x, w, padding="same"),
        x,
        w,
    )


def test_conv2d_unbatched():
    x, w = randn(2, 5, 5, seed=15), randn(3, 2, 3, 3, seed=16)
    compare(F.conv2d, TF.conv2d, x, w)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"stride": 2, "padding": 1},
        {"dilation": 2},
        {"groups": 2},
        {"padding": "same"},
    ],
)
def test_conv1d_matches_torch(kwargs):
    x, w, b = (
        randn(2, 4, 11, seed=17),
        randn(6, 4 // kwargs.get("groups", 1), 3, seed=18),
        randn(6, seed=19),
    )
    compare(
        lambda x, w, b: F.conv1d(x, w, b, **kwargs),
        lambda x, w, b: TF.conv1d(x, w, b, **kwargs),
        x,
        w,
        b,
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"stride": 2},
        {"stride": 2, "padding": 1, "output_padding": 1},
        {"dilation": 2},
        {"groups": 2, "stride": 3, "padding": 2},
    ],
)
def test_conv_transpose2d_matches_torch(kwargs):
    groups = kwargs.get("groups", 1)
    x, w, b = (
        randn(2, 4, 5, 4, seed=20),
        randn(4, 6 // groups, 3, 3, seed=21),
        randn(6, seed=22),
    )
    compare(
        lambda x, w, b: F.conv_transpose2d(x, w, b, **kwargs),
        lambda x, w, b: TF.conv_transpose2d(x, w, b, **kwargs),
        x,
        w,
        b,
    )


def test_unfold_fold_match_torch():
    x = randn(2, 3, 6, 5, seed=23)
    compare(
        lambda t: F.unfold(t, (2, 3), padding=1, stride=(2, 1)),
        lambda t: TF.unfold(t, (2, 3), padding=1, stride=(2, 1)),
        x,
    )
    cols = randn(2, 3 * 4, 9, seed=24)
    compare(
        lambda t: F.fold(t, (4, 4), 2, stride=1),
        lambda t: TF.fold(t, (4, 4), 2, stride=1),
        cols,
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kernel_size": 2},
        {"kernel_size": 3, "stride": 2, "padding": 1},
        {"kernel_size": (2, 3), "stride": (1, 2)},
        {"kernel_size": 2, "dilation": 2},
        {"kernel_size": 3, "stride": 2, "ceil_mode": True},
        {"kernel_size": 2, "stride": 1},
    ],
)
def test_max_pool2d_matches_torch(kwargs):
    x = randn(2, 3, 7, 8, seed=25)
    compare(lambda t: F.max_pool2d(t, **kwargs), lambda t: TF.max_pool2d(t, **kwargs), x)


def test_max_pool2d_ties_send_gradient_to_first_maximum():
    x = np.ones((1, 1, 4, 4), dtype=np.float32)
    x[0, 0, 3, 3] = 2.0
    compare(lambda t: F.max_pool2d(t, 2), lambda t: TF.max_pool2d(t, 2), x)
    compare(lambda t: F.max_pool2d(t, 3, 1, 1), lambda t: TF.max_pool2d(t, 3, 1, 1), x)


def test_max_pool2d_return_indices():
    x = randn(2, 3, 7, 8, seed=26)
    g_out, g_idx = F.max_pool2d(graphc.tensor(x), 3, 2, 1, return_indices=True)
    t_out, t_idx = TF.max_pool2d(torch.tensor(x), 3, 2, 1, return_indices=True)
    assert_close(g_out, t_out)
    np.testing.assert_array_equal(g_idx.numpy(), t_idx.numpy())
    assert g_idx.dtype == graphc.int64


def test_max_pool1d_and_avg_pool1d():
    x = randn(2, 3, 9, seed=27)
    compare(lambda t: F.max_pool1d(t, 3, 2), lambda t: TF.max_pool1d(t, 3, 2), x)
    compare(lambda t: F.avg_pool1d(t, 2, 2, 1), lambda t: TF.avg_pool1d(t, 2, 2, 1), x)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kernel_size": 2},
        {"kernel_size": 3, "stride": 2, "padding": 1},
        {"kernel_size": 3, "stride": 2, "padding": 1, "count_include_pad": False},
        {"kernel_size": 3, "stride": 2, "ceil_mode": True},
        {
            "kernel_size": 3,
            "stride": 2,
            "padding": 1,
            "ceil_mode": True,
            "count_include_pad": False,
        },
        {"kernel_size": 2, "divisor_override": 3},
    ],
)
def test_avg_pool2d_matches_torch(kwargs):
    x = randn(2, 3, 7, 8, seed=28)
    compare(lambda t: F.avg_pool2d(t, **kwargs), lambda t: TF.avg_pool2d(t, **kwargs), x)


@pytest.mark.parametrize("size", [1, (1, 1), (2, 4), (3, 5), (None, 3), 7])
def test_adaptive_avg_pool2d_matches_torch(size):
    x = randn(2, 3, 8, 7, seed=29)
    compare(
        lambda t: F.adaptive_avg_pool2d(t, size),
        lambda t: TF.adaptive_avg_pool2d(t, size),
        x,
    )


def test_pad_constant_and_crop():
    x = randn(2, 3, 4, seed=30)
    compare(lambda t: F.pad(t, (1, 2)), lambda t: TF.pad(t, (1, 2)), x)
    compare(
        lambda t: F.pad(t, (1, 0, 2, 1), value=3.5),
        lambda t: TF.pad(t, (1, 0, 2, 1), value=3.5),
        x,
    )
    compare(lambda t: F.pad(t, (-1, 2, 0, -1)), lambda t: TF.pad(t, (-1, 2, 0, -1)), x)


@pytest.mark.parametrize("mode", ["replicate", "reflect", "circular"])
def test_pad_edge_modes(mode):
    x = randn(1, 2, 4, 5, seed=31)
    compare(
        lambda t: F.pad(t, (2, 1, 1, 2), mode=mode),
        lambda t: TF.pad(t, (2, 1, 1, 2), mode=mode),
        x,
    )


def test_batch_norm_training_and_eval():
    x = randn(6, 3, 4, 5, seed=32)
    w, b = randn(3, seed=33), randn(3, seed=34)
    compare(
        lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
        lambda x, w, b: TF.batch_norm(x, None, None, w, b, training=True),
        x,
        w,
        b,
        rtol=1e-4,
        atol=1e-4,
    )
    rm, rv = np.abs(randn(3, seed=35)), np.abs(randn(3, seed=36)) + 0.5
    compare(
        lambda x, w, b: F.batch_norm(x, graphc.tensor(rm), graphc.tensor(rv), w, b),
        lambda x, w, b: TF.batch_norm(x, torch.tensor(rm), torch.tensor(rv), w, b),
        x,
        w,
        b,
    )


def test_batch_norm_updates_running_stats_in_place():
    x = randn(8, 3, seed=37)
    g_rm, g_rv = graphc.zeros(3), graphc.ones(3)
    t_rm, t_rv = torch.zeros(3), torch.ones(3)
    F.batch_norm(graphc.tensor(x), g_rm, g_rv, training=True, momentum=0.3)
    TF.batch_norm(torch.tensor(x), t_rm, t_rv, training=True, momentum=0.3)
    assert_close(g_rm, t_rm)
    assert_close(g_rv, t_rv)


def test_layer_norm_and_group_norm():
    x = randn(3, 4, 5, 6, seed=38)
    w, b = randn(5, 6, seed=39), randn(5, 6, seed=40)
    compare(
        lambda x, w, b: F.layer_norm(x, (5, 6), w, b),
        lambda x, w, b: TF.layer_norm(x, (5, 6), w, b),
        x,
        w,
        b,
        atol=1e-4,
    )
    gw, gb = randn(4, seed=41), randn(4, seed=42)
    compare(
        lambda x, w, b: F.group_norm(x, 2, w, b),
        lambda x, w, b: TF.group_norm(x, 2, w, b),
        x,
        gw,
        gb,
        atol=1e-4,
    )


def test_layer_norm_shape_error():
    with pytest.raises(ValueError, match="normalized_shape"):
        F.layer_norm(graphc.zeros(2, 3), (4,))


def test_dropout_statistics_and_scaling():
    x = graphc.ones(200, 100)
    out = F.dropout(x, 0.3, training=True).numpy()
    kept = out != 0
    assert 0.65 < kept.mean() < 0.75
    np.testing.assert_allclose(out[kept], 1 / 0.7, rtol=1e-6)
    assert F.dropout(x, 0.3, training=False) is x
    np.testing.assert_array_equal(F.dropout(x, 1.0).numpy(), 0.0)
    with pytest.raises(ValueError):
        F.dropout(x, 1.5)


def test_dropout_gradient_uses_the_same_mask():
    x = graphc.ones(50, 40, requires_grad=True)
    out = F.dropout(x, 0.5)
    out.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), out.detach().numpy())


def test_embedding_and_padding_idx():
    w = randn(6, 4, seed=43)
    idx = np.array([[0, 2, 5], [2, 2, 1]], dtype=np.int64)
    compare(lambda i, w: F.embedding(i, w), lambda i, w: TF.embedding(i, w), idx, w)
    compare(
        lambda i, w: F.embedding(i, w, padding_idx=2),
        lambda i, w: TF.embedding(i, w, padding_idx=2),
        idx,
        w,
    )


def test_one_hot():
    t = np.array([0, 3, 1], dtype=np.int64)
    g = F.one_hot(graphc.tensor(t), 5)
    np.testing.assert_array_equal(g.numpy(), TF.one_hot(torch.tensor(t), 5).numpy())
    assert g.dtype == graphc.int64
    np.testing.assert_array_equal(F.one_hot(graphc.tensor(t)).numpy(), TF.one_hot(torch.tensor(t)).numpy())


def test_conv2d_channel_mismatch_message():
    with pytest.raises(ValueError, match=r"expects 3 input channels.*\(1, 2, 5, 5\)"):
        F.conv2d(graphc.zeros(1, 2, 5, 5), graphc.zeros(4, 3, 3, 3))
