"""graphc.nn under tracing and graphc.compile: layers lower to primitives,
state updates (BatchNorm, RNG) become program outputs, and a compiled
training step gives the eager numbers."""

import copy

import numpy as np
import pytest

import graphc
import graphc.nn.functional as F
from graphc import nn
from graphc.ir.ops import Op
from graphc.vision.models import Net


def _ops(graph):
    return {node.op for node in graph.nodes}


def test_conv_and_pool_lower_to_unfold_and_fold():
    net = Net()
    graph = graphc.trace(net, graphc.randn(2, 1, 28, 28))
    assert Op.UNFOLD in _ops(graph) and Op.DOT in _ops(graph)
    names = [i.attrs["name"] for i in graph.inputs]
    assert names[:3] == ["x", "conv1.weight", "conv1.bias"]
    transposed = graphc.trace(nn.ConvTranspose2d(2, 3, 3, stride=2), graphc.randn(1, 2, 4, 4))
    assert Op.FOLD in _ops(transposed)


def test_batchnorm_running_stats_are_state_outputs():
    bn = nn.BatchNorm2d(3)
    graph = graphc.trace(bn, graphc.randn(4, 3, 2, 2))
    assert {"running_mean", "running_var", "num_batches_tracked"} <= set(graph.output_names)


@pytest.mark.parametrize("momentum", [0.1, None])
def test_compiled_batchnorm_updates_match_eager(momentum):
    eager, compiled_bn = (
        nn.BatchNorm1d(3, momentum=momentum),
        nn.BatchNorm1d(3, momentum=momentum),
    )
    compiled = graphc.compile(compiled_bn, backend="interp")
    for step in range(3):
        x = graphc.randn(5, 3) + step
        np.testing.assert_allclose(
            compiled(x).detach().numpy(),
            eager(x).detach().numpy(),
            rtol=1e-5,
            atol=1e-5,
        )
    np.testing.assert_allclose(compiled_bn.running_mean.numpy(), eager.running_mean.numpy(), rtol=1e-5)
    np.testing.assert_allclose(compiled_bn.running_var.numpy(), eager.running_var.numpy(), rtol=1e-5)
    assert compiled_bn.num_batches_tracked.item() == 3


def test_compiled_dropout_draws_new_masks():
    drop = graphc.compile(lambda x: F.dropout(x, 0.5), backend="interp")
    x = graphc.ones(64)
    first, second = drop(x).numpy(), drop(x).numpy()
    assert not np.array_equal(first, second)
    assert set(np.unique(first)) <= {0.0, 2.0}


def test_compiled_training_step_matches_eager():
    graphc.manual_seed(0)
    net = Net()
    twin = copy.deepcopy(net)
    x, y = graphc.randn(4, 1, 28, 28), graphc.tensor([1, 2, 3, 4])
    opt = graphc.optim.SGD(net.parameters(), lr=0.1)

    def step(x, y):
        opt.zero_grad()
        loss = F.nll_loss(net(x), y)
        loss.backward()
        opt.step()
        return loss

    compiled = graphc.compile(step, backend="interp")
    twin_opt = graphc.optim.SGD(twin.parameters(), lr=0.1)
    for _ in range(2):
        loss = compiled(x, y)
        twin_opt.zero_grad()
        expected = F.nll_loss(twin(x), y)
        expected.backward()
        twin_opt.step()
        np.testing.assert_allclose(loss.item(), expected.item(), rtol=1e-5)
    for (name, p), q in zip(net.named_parameters(), twin.parameters()):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-4, atol=1e-6, err_msg=name)


def test_compiled_lstm_matches_eager():
    lstm = nn.LSTM(3, 4, batch_first=True)
    x = graphc.randn(2, 5, 3)
    out, (h, c) = lstm(x)
    compiled = graphc.compile(lstm, backend="interp")
    c_out, (c_h, c_c) = compiled(x)
    for a, b in [(c_out, out), (c_h, h), (c_c, c)]:
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-5, atol=1e-6)
