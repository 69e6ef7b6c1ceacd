"""RNNCell, LSTMCell and GRUCell against torch.nn: the same weights give the
same states and gradients, batched and unbatched, eagerly and compiled; a
state dict moves between the two libraries by name."""

import numpy as np
import pytest
import torch

import graphc
from graphc.errors import InputShapeError

RNG = np.random.default_rng(3)
CELLS = {
    "RNNCell": {},
    "RNNCell-relu": {"nonlinearity": "relu"},
    "LSTMCell": {},
    "GRUCell": {},
    "GRUCell-no-bias": {"bias": False},
}


def _pair(name):
    cls, kwargs = name.split("-")[0], CELLS[name]
    t_cell = getattr(torch.nn, cls)(3, 4, **kwargs).double()
    g_cell = getattr(graphc.nn, cls)(3, 4, **kwargs).double()
    g_cell.load_state_dict({k: graphc.tensor(v.detach().numpy()) for k, v in t_cell.state_dict().items()})
    return g_cell, t_cell


def _unroll(lib, cell, xs, hx):
    """Run the cell over the time steps of `xs`; the loss sums every state."""
    loss = 0
    for x in xs:
        hx = cell(x, hx)
        states = hx if isinstance(hx, tuple) else (hx,)
        loss = loss + sum(s.sum() for s in states)
    return loss


@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("name", CELLS)
def test_cell_states_and_gradients_match_torch(name, batched):
    g_cell, t_cell = _pair(name)
    shape = (5, 2, 3) if batched else (5, 3)
    xs = RNG.standard_normal(shape)
    losses, grads = [], []
    for lib, cell in ((graphc, g_cell), (torch, t_cell)):
        x = lib.tensor(xs, requires_grad=True)
        loss = _unroll(lib, cell, x, None)
        loss.backward()
        losses.append(float(loss.item()))
        grads.append([x.grad.numpy()] + [p.grad.numpy() for p in cell.parameters()])
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-10)
    assert len(grads[0]) == len(grads[1])
    for g, t in zip(*grads):
        np.testing.assert_allclose(g, t, rtol=1e-9, atol=1e-12)


def test_given_initial_states_and_state_dict_names_match_torch():
    g_cell, t_cell = _pair("LSTMCell")
    assert list(g_cell.state_dict()) == list(t_cell.state_dict())
    x, h, c = RNG.standard_normal((2, 3)), RNG.standard_normal((2, 4)), RNG.standard_normal((2, 4))
    got = g_cell(graphc.tensor(x), (graphc.tensor(h), graphc.tensor(c)))
    want = t_cell(torch.tensor(x), (torch.tensor(h), torch.tensor(c)))
    for g, t in zip(got, want):
        np.testing.assert_allclose(g.detach().numpy(), t.detach().numpy(), rtol=1e-12)


def test_compiled_training_step_with_a_cell_equals_eager():
    def run(compiled: bool):
        graphc.manual_seed(0)
        cell, head = graphc.nn.GRUCell(3, 4), graphc.nn.Linear(4, 1)
        params = list(cell.parameters()) + list(head.parameters())
        opt = graphc.optim.SGD(params, lr=0.1)
        xs, ys = graphc.tensor(RNG_FIXED[0]), graphc.tensor(RNG_FIXED[1])

        def step():
            opt.zero_grad()
            h = None
            for t in range(xs.shape[0]):
                h = cell(xs[t], h)
            loss = ((head(h) - ys) ** 2).mean()
            loss.backward()
            opt.step()
            return loss

        fn = graphc.compile(step) if compiled else step
        return [float(fn().item()) for _ in range(5)]

    np.testing.assert_allclose(run(True), run(False), rtol=5e-5)


RNG_FIXED = (
    np.random.default_rng(9).standard_normal((4, 2, 3)).astype(np.float32),
    np.random.default_rng(10).standard_normal((2, 1)).astype(np.float32),
)


def test_bad_inputs_are_clear_errors():
    cell = graphc.nn.RNNCell(3, 4)
    with pytest.raises(ValueError, match="1D or 2D"):
        cell(graphc.ones(1, 2, 3))
    with pytest.raises(RuntimeError, match="inconsistent input_size: got 5 expected 3"):
        cell(graphc.ones(2, 5))
    with pytest.raises(InputShapeError, match="hidden state"):
        cell(graphc.ones(2, 3), graphc.ones(3, 4))
    with pytest.raises(ValueError, match="nonlinearity"):
        graphc.nn.RNNCell(3, 4, nonlinearity="gelu")
