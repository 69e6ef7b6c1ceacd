"""graphc.nn.init distributions, default layer initialization and the
gradient utilities."""

import math

import numpy as np
import pytest
import torch
import torch.nn as tnn
from nn_testutil import assert_close

import graphc
from graphc import nn
from graphc.nn import init


def _values(t):
    return t.detach().numpy().ravel()


def test_calculate_gain_matches_torch():
    for name in ["linear", "conv2d", "sigmoid", "tanh", "relu", "selu"]:
        assert init.calculate_gain(name) == pytest.approx(tnn.init.calculate_gain(name))
    assert init.calculate_gain("leaky_relu", 0.2) == pytest.approx(tnn.init.calculate_gain("leaky_relu", 0.2))
    with pytest.raises(ValueError):
        init.calculate_gain("nope")


def test_uniform_and_normal_moments():
    t = graphc.empty(200, 100)
    assert init.uniform_(t, -2.0, 3.0) is t
    v = _values(t)
    assert v.min() >= -2.0 and v.max() < 3.0 and abs(v.mean() - 0.5) < 0.05
    init.normal_(t, 1.0, 2.0)
    v = _values(t)
    assert abs(v.mean() - 1.0) < 0.05 and abs(v.std() - 2.0) < 0.05


def test_constant_zeros_ones_eye_dirac():
    t = graphc.empty(3, 4)
    np.testing.assert_array_equal(_values(init.constant_(t, 0.5)), 0.5)
    np.testing.assert_array_equal(_values(init.zeros_(t)), 0.0)
    np.testing.assert_array_equal(_values(init.ones_(t)), 1.0)
    np.testing.assert_array_equal(init.eye_(t).numpy(), np.eye(3, 4))
    w = graphc.empty(4, 2, 3, 3)
    tw = torch.empty(4, 2, 3, 3)
    np.testing.assert_array_equal(init.dirac_(w, 2).numpy(), tnn.init.dirac_(tw, 2).numpy())


@pytest.mark.parametrize("shape", [(64, 32), (16, 8, 3, 3)])
def test_kaiming_and_xavier_scales(shape):
    fan_in = shape[1] * int(np.prod(shape[2:]))
    fan_out = shape[0] * int(np.prod(shape[2:]))
    t = graphc.empty(*shape)
    init.kaiming_uniform_(t, a=math.sqrt(5))
    bound = math.sqrt(6 / ((1 + 5) * fan_in))
    v = _values(t)
    assert v.min() >= -bound and v.max() <= bound and v.max() > 0.8 * bound
    init.kaiming_normal_(t, mode="fan_out", nonlinearity="relu")
    assert _values(t).std() == pytest.approx(math.sqrt(2 / fan_out), rel=0.1)
    init.xavier_uniform_(t, gain=2.0)
    bound = 2.0 * math.sqrt(6 / (fan_in + fan_out))
    assert np.abs(_values(t)).max() <= bound and _values(t).std() == pytest.approx(bound / math.sqrt(3), rel=0.1)
    init.xavier_normal_(t)
    assert _values(t).std() == pytest.approx(math.sqrt(2 / (fan_in + fan_out)), rel=0.1)


def test_trunc_normal_and_orthogonal():
    t = init.trunc_normal_(graphc.empty(100, 100), mean=0.5, std=1.0, a=-1.0, b=2.0)
    v = _values(t)
    ref = tnn.init.trunc_normal_(torch.empty(100, 100), mean=0.5, std=1.0, a=-1.0, b=2.0).numpy().ravel()
    assert v.min() >= -1.0 and v.max() <= 2.0
    assert abs(v.mean() - ref.mean()) < 0.05 and abs(v.std() - ref.std()) < 0.05
    q = init.orthogonal_(graphc.empty(4, 6)).numpy()
    np.testing.assert_allclose(q @ q.T, np.eye(4), atol=1e-5)


def test_generator_makes_init_reproducible():
    a, b = graphc.empty(5), graphc.empty(5)
    init.uniform_(a, generator=graphc.Generator().manual_seed(3))
    init.uniform_(b, generator=graphc.Generator().manual_seed(3))
    np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_init_does_not_record_gradients():
    p = nn.Parameter(graphc.zeros(3))
    init.normal_(p)
    assert p.is_leaf and p.requires_grad and p.grad_fn is None


@pytest.mark.parametrize(
    "make",
    [
        lambda m: m.Linear(50, 40),
        lambda m: m.Conv2d(6, 8, 3),
        lambda m: m.Conv1d(4, 5, 5),
        lambda m: m.ConvTranspose2d(6, 4, 3),
    ],
)
def test_default_layer_init_bounds_match_torch(make):
    # Both generators seeded: the max-bound check on a 4-element bias fails
    # for about one seed in 16, so it must not depend on earlier tests.
    torch.manual_seed(0)
    graphc.manual_seed(0)
    g, t = make(nn), make(tnn)
    for (name, gp), (_, tp) in zip(g.named_parameters(), t.named_parameters()):
        assert gp.shape == tuple(tp.shape), name
        fan_in = tnn.init._calculate_fan_in_and_fan_out(t.weight)[0]
        bound = 1 / math.sqrt(fan_in)
        v = _values(gp)
        assert np.abs(v).max() <= bound + 1e-7 and np.abs(v).max() > 0.5 * bound, name
        if name == "weight":
            assert abs(v.std() - tp.detach().numpy().std()) < 0.2 * bound, name


def test_default_init_of_norms_embedding_rnn():
    bn = nn.BatchNorm2d(3)
    np.testing.assert_array_equal(bn.weight.detach().numpy(), 1.0)
    np.testing.assert_array_equal(bn.bias.detach().numpy(), 0.0)
    np.testing.assert_array_equal(bn.running_var.numpy(), 1.0)
    emb = nn.Embedding(100, 50)
    assert abs(_values(emb.weight).std() - 1.0) < 0.05
    lstm = nn.LSTM(3, 16)
    assert max(np.abs(_values(p)).max() for p in lstm.parameters()) <= 0.25


def _grads_pair(norm_type):
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in [(3, 4), (5,)]]
    g_params = [nn.Parameter(graphc.zeros(*a.shape)) for a in arrays]
    t_params = [torch.nn.Parameter(torch.zeros(a.shape)) for a in arrays]
    for gp, tp, a in zip(g_params, t_params, arrays):
        gp.grad = graphc.tensor(a)
        tp.grad = torch.tensor(a)
    return g_params, t_params


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
@pytest.mark.parametrize("max_norm", [0.5, 1000.0])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    g_params, t_params = _grads_pair(norm_type)
    g_total = nn.utils.clip_grad_norm_(g_params, max_norm, norm_type)
    t_total = tnn.utils.clip_grad_norm_(t_params, max_norm, norm_type)
    assert_close(g_total, t_total)
    for gp, tp in zip(g_params, t_params):
        assert_close(gp.grad, tp.grad)


def test_clip_grad_value_and_vector_conversion():
    g_params, t_params = _grads_pair(2.0)
    nn.utils.clip_grad_value_(g_params, 0.3)
    tnn.utils.clip_grad_value_(t_params, 0.3)
    for gp, tp in zip(g_params, t_params):
        assert_close(gp.grad, tp.grad)
    vec = nn.utils.parameters_to_vector(g_params)
    assert vec.shape == (17,)
    nn.utils.vector_to_parameters(graphc.arange(17).float(), g_params)
    np.testing.assert_array_equal(g_params[1].detach().numpy(), np.arange(12, 17))
