"""3-D layers (Conv3d, MaxPool3d, AvgPool3d, AdaptiveAvgPool3d,
BatchNorm3d, Dropout3d) against PyTorch, eager and compiled."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import graphc  # noqa: E402
import graphc.nn as nn  # noqa: E402
import graphc.nn.functional as F  # noqa: E402
from tests.nn.nn_testutil import compare, compare_modules, randn  # noqa: E402

X = randn(2, 4, 5, 6, 7)


def assert_compiles(fn, *inputs):
    expected = fn(*inputs).detach().numpy()
    compiled = graphc.compile(fn, backend="interp")
    for _ in range(2):
        np.testing.assert_allclose(compiled(*inputs).detach().numpy(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"stride": 2, "padding": 1},
        {"stride": (1, 2, 1), "padding": (2, 0, 1), "dilation": (2, 1, 1), "groups": 2},
        {"padding": "same", "dilation": 2},
        {"padding": "valid", "bias": False},
    ],
)
def test_conv3d(kwargs):
    torch.manual_seed(0)
    g_layer, t_layer = nn.Conv3d(4, 6, 3, **kwargs), torch.nn.Conv3d(4, 6, 3, **kwargs)
    assert repr(g_layer) == repr(t_layer)
    compare_modules(g_layer, t_layer, X)


def test_conv3d_unbatched_compiled_and_errors():
    torch.manual_seed(0)
    g_layer, t_layer = nn.Conv3d(4, 2, (2, 3, 1)), torch.nn.Conv3d(4, 2, (2, 3, 1))
    compare_modules(g_layer, t_layer, X[0])
    assert_compiles(g_layer, graphc.tensor(X))
    with pytest.raises(graphc.errors.InputShapeError, match=r"\[N, C, D, H, W\]"):
        g_layer(graphc.zeros(2, 3, 5, 6, 7))
    with pytest.raises(ValueError, match="strided"):
        F.conv3d(graphc.tensor(X), g_layer.weight, stride=2, padding="same")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kernel_size": 2},
        {"kernel_size": 3, "stride": 2, "padding": 1},
        {"kernel_size": (3, 2, 2), "stride": (2, 1, 2), "dilation": (1, 2, 1), "ceil_mode": True},
    ],
)
def test_max_pool3d(kwargs):
    g_layer, t_layer = nn.MaxPool3d(**kwargs), torch.nn.MaxPool3d(**kwargs)
    assert repr(g_layer) == repr(t_layer)
    compare(g_layer, t_layer, X)


def test_max_pool3d_ties_send_the_gradient_to_the_first_maximum():
    compare(
        lambda x: F.max_pool3d(x, 2),
        lambda x: torch.nn.functional.max_pool3d(x, 2),
        np.ones((1, 1, 2, 4, 4), np.float32),
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kernel_size": 2},
        {"kernel_size": 3, "stride": 2, "padding": 1},
        {"kernel_size": 3, "stride": 2, "padding": 1, "count_include_pad": False, "ceil_mode": True},
        {"kernel_size": 2, "divisor_override": 3},
    ],
)
def test_avg_pool3d(kwargs):
    g_layer, t_layer = nn.AvgPool3d(**kwargs), torch.nn.AvgPool3d(**kwargs)
    assert repr(g_layer) == repr(t_layer)
    compare(g_layer, t_layer, X)


@pytest.mark.parametrize("output_size", [(2, 3, 4), 3, (None, 2, 5), 1])
def test_adaptive_avg_pool3d(output_size):
    compare(nn.AdaptiveAvgPool3d(output_size), torch.nn.AdaptiveAvgPool3d(output_size), X)


def test_pools_compiled_and_unbatched():
    x = graphc.tensor(X)
    assert_compiles(lambda x: F.max_pool3d(x, 3, 2, 1) + F.avg_pool3d(x, 3, 2, 1), x)
    assert_compiles(lambda x: F.adaptive_avg_pool3d(x, (2, 2, 3)), x)
    compare(nn.MaxPool3d(2), torch.nn.MaxPool3d(2), X[0])
    compare(nn.AvgPool3d(2), torch.nn.AvgPool3d(2), X[0])


def test_batch_norm3d_train_and_eval():
    torch.manual_seed(0)
    g_layer, t_layer = nn.BatchNorm3d(4), torch.nn.BatchNorm3d(4)
    compare_modules(g_layer, t_layer, X)
    np.testing.assert_allclose(g_layer.running_var.numpy(), t_layer.running_var.numpy(), rtol=1e-5)
    g_layer.eval()
    t_layer.eval()
    compare(g_layer, t_layer, X)
    with pytest.raises(ValueError, match="5-D"):
        g_layer(graphc.zeros(2, 4, 3, 3))


def test_dropout3d_zeroes_whole_channels():
    graphc.manual_seed(0)
    layer = nn.Dropout3d(0.5)
    out = layer(graphc.ones(4, 8, 2, 3, 3)).numpy().reshape(32, -1)
    assert set(np.unique(out)) <= {0.0, 2.0}
    assert (out.std(1) == 0).all()  # a channel is kept or dropped as a whole
    assert 0 < (out[:, 0] == 0).sum() < 32
    layer.eval()
    assert layer(graphc.ones(2, 3, 2, 2, 2)).numpy().min() == 1.0
    with pytest.raises(RuntimeError, match="Expected 4D or 5D input"):
        F.dropout3d(graphc.ones(2, 3))
