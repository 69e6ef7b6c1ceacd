"""Layers with weights copied from torch: outputs, input gradients and
parameter gradients; BatchNorm running statistics; recurrent layers."""

import numpy as np
import pytest
import torch
import torch.nn as tnn
from nn_testutil import assert_close, compare, compare_modules, copy_weights, randn

import graphc
from graphc import nn

LAYERS = [
    ("linear", lambda m: m.Linear(5, 3), (4, 5)),
    ("linear_3d", lambda m: m.Linear(5, 3, bias=False), (2, 4, 5)),
    ("bilinear", None, None),
    ("conv2d", lambda m: m.Conv2d(3, 4, 3, padding=1), (2, 3, 6, 6)),
    (
        "conv2d_groups",
        lambda m: m.Conv2d(4, 6, (3, 2), stride=2, groups=2, bias=False),
        (2, 4, 7, 6),
    ),
    (
        "conv2d_same",
        lambda m: m.Conv2d(2, 3, 4, padding="same", dilation=2),
        (1, 2, 9, 9),
    ),
    ("conv1d", lambda m: m.Conv1d(3, 4, 3, stride=2, padding=1), (2, 3, 10)),
    (
        "conv_transpose2d",
        lambda m: m.ConvTranspose2d(3, 2, 3, stride=2, padding=1, output_padding=1),
        (2, 3, 4, 4),
    ),
    ("maxpool", lambda m: m.MaxPool2d(2), (2, 3, 6, 6)),
    ("maxpool_overlap", lambda m: m.MaxPool2d(3, stride=2, padding=1), (1, 2, 7, 7)),
    ("avgpool", lambda m: m.AvgPool2d(3, stride=2, padding=1), (1, 2, 7, 7)),
    ("adaptive", lambda m: m.AdaptiveAvgPool2d((2, 3)), (2, 3, 5, 7)),
    ("layernorm", lambda m: m.LayerNorm(6), (3, 4, 6)),
    ("groupnorm", lambda m: m.GroupNorm(3, 6), (2, 6, 3, 3)),
    ("batchnorm1d", lambda m: m.BatchNorm1d(5), (8, 5)),
    ("batchnorm1d_3d", lambda m: m.BatchNorm1d(3), (4, 3, 6)),
    ("batchnorm2d", lambda m: m.BatchNorm2d(3), (4, 3, 5, 5)),
    ("flatten", lambda m: m.Flatten(), (2, 3, 4)),
    ("unflatten", lambda m: m.Unflatten(1, (2, 6)), (2, 12)),
    ("identity", lambda m: m.Identity(), (3,)),
    (
        "sequential",
        lambda m: m.Sequential(m.Linear(4, 8), m.GELU(), m.Linear(8, 2), m.LogSoftmax(1)),
        (5, 4),
    ),
]


@pytest.mark.parametrize(
    "name,make,shape",
    [case for case in LAYERS if case[1]],
    ids=[c[0] for c in LAYERS if c[1]],
)
def test_layer_matches_torch(name, make, shape):
    torch.manual_seed(0)
    t_layer = make(tnn)
    g_layer = make(nn)
    # Non-trivial affine parameters for the normalization layers.
    with torch.no_grad():
        for p in t_layer.parameters():
            p.add_(torch.randn(p.shape) * 0.1)
    compare_modules(g_layer, t_layer, randn(*shape, seed=1), atol=1e-4)


def test_bilinear_layer():
    compare_modules(
        nn.Bilinear(3, 2, 4),
        tnn.Bilinear(3, 2, 4),
        randn(5, 3, seed=2),
        randn(5, 2, seed=3),
    )


def test_embedding_layer_gradients_skip_padding_row():
    g, t = nn.Embedding(6, 3, padding_idx=1), tnn.Embedding(6, 3, padding_idx=1)
    np.testing.assert_array_equal(g.weight.detach().numpy()[1], 0.0)
    idx = np.array([[1, 2, 3], [1, 5, 2]], dtype=np.int64)
    compare_modules(g, t, idx)
    np.testing.assert_array_equal(g.weight.grad.numpy()[1], 0.0)


@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("cls,shape", [("BatchNorm1d", (8, 4)), ("BatchNorm2d", (6, 4, 3, 3))])
def test_batchnorm_running_stats_over_steps(cls, shape, momentum):
    g, t = (
        getattr(nn, cls)(4, momentum=momentum),
        getattr(tnn, cls)(4, momentum=momentum),
    )
    for step in range(4):
        x = randn(*shape, seed=10 + step, scale=2.0) + step
        assert_close(g(graphc.tensor(x)), t(torch.tensor(x)), atol=1e-4)
    assert_close(g.running_mean, t.running_mean)
    assert_close(g.running_var, t.running_var)
    assert int(g.num_batches_tracked.item()) == int(t.num_batches_tracked) == 4
    g.eval(), t.eval()
    x = randn(*shape, seed=20)
    compare(g, t, x, atol=1e-4)
    assert int(g.num_batches_tracked.item()) == 4


def test_batchnorm_without_tracking_and_without_affine():
    g = nn.BatchNorm2d(3, affine=False, track_running_stats=False)
    t = tnn.BatchNorm2d(3, affine=False, track_running_stats=False)
    assert list(g.state_dict()) == list(t.state_dict()) == []
    x = randn(4, 3, 2, 2, seed=30)
    g.eval(), t.eval()
    compare(g, t, x, atol=1e-4)


def test_dropout_module_train_and_eval():
    d = nn.Dropout(0.5)
    x = graphc.ones(100, 100)
    assert 0.4 < (d(x).numpy() == 0).mean() < 0.6
    d.eval()
    np.testing.assert_array_equal(d(x).numpy(), 1.0)


RNN_CASES = [
    ("RNN", {}),
    ("RNN", {"nonlinearity": "relu", "num_layers": 2, "batch_first": True}),
    ("LSTM", {}),
    ("LSTM", {"num_layers": 2, "bidirectional": True}),
    ("LSTM", {"batch_first": True, "bias": False}),
    ("GRU", {}),
    ("GRU", {"num_layers": 2, "bidirectional": True, "batch_first": True}),
]


@pytest.mark.parametrize("cls,kwargs", RNN_CASES, ids=[f"{c}-{k}" for c, k in RNN_CASES])
def test_recurrent_matches_torch(cls, kwargs):
    torch.manual_seed(0)
    t_rnn, g_rnn = getattr(tnn, cls)(3, 4, **kwargs), getattr(nn, cls)(3, 4, **kwargs)
    assert [(n, tuple(p.shape)) for n, p in g_rnn.named_parameters()] == [
        (n, tuple(p.shape)) for n, p in t_rnn.named_parameters()
    ]
    copy_weights(g_rnn, t_rnn)
    shape = (2, 5, 3) if kwargs.get("batch_first") else (5, 2, 3)
    x = randn(*shape, seed=40)

    def run(module):
        def fn(x):
            out, state = module(x)
            states = state if isinstance(state, tuple) else (state,)
            return (out * out).sum() + out.sum() + sum((s * s).sum() for s in states)

        return fn

    compare(run(g_rnn), run(t_rnn), x, atol=1e-4)
    g_params = dict(g_rnn.named_parameters())
    for name, p in t_rnn.named_parameters():
        assert_close(g_params[name].grad, p.grad, atol=1e-4, what=name)


def test_lstm_initial_state_and_unbatched_input():
    torch.manual_seed(1)
    t_lstm, g_lstm = tnn.LSTM(3, 4, num_layers=2), nn.LSTM(3, 4, num_layers=2)
    copy_weights(g_lstm, t_lstm)
    x, h0, c0 = randn(6, 3, seed=41), randn(2, 4, seed=42), randn(2, 4, seed=43)
    g_out, (g_h, g_c) = g_lstm(graphc.tensor(x), (graphc.tensor(h0), graphc.tensor(c0)))
    t_out, (t_h, t_c) = t_lstm(torch.tensor(x), (torch.tensor(h0), torch.tensor(c0)))
    for a, b in [(g_out, t_out), (g_h, t_h), (g_c, t_c)]:
        assert_close(a, b, atol=1e-5)


def test_gru_initial_state_shape_error():
    with pytest.raises(ValueError, match=r"hidden state of shape \(1, 2, 4\)"):
        nn.GRU(3, 4)(graphc.zeros(5, 2, 3), graphc.zeros(1, 3, 4))


def test_rnn_dropout_only_in_training():
    g = nn.GRU(3, 4, num_layers=2, dropout=0.9)
    x = graphc.tensor(randn(5, 2, 3, seed=44))
    g.eval()
    first, _ = g(x)
    second, _ = g(x)
    np.testing.assert_array_equal(first.detach().numpy(), second.detach().numpy())
    g.train()
    third, _ = g(x)
    assert not np.allclose(first.detach().numpy(), third.detach().numpy())
