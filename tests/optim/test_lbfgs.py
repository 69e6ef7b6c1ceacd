"""optim.LBFGS step for step against torch.optim.LBFGS (same model, same
closure), with and without the strong-Wolfe line search."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import graphc  # noqa: E402
import graphc.nn as nn  # noqa: E402
from tests.nn.nn_testutil import copy_weights  # noqa: E402


def _models(dtype):
    torch.manual_seed(0)
    t_model = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1)).to(dtype)
    g_model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 1))
    g_model.to(graphc.float64 if dtype == torch.float64 else graphc.float32)
    copy_weights(g_model, t_model)
    return g_model, t_model


def _data(dtype):
    rng = np.random.default_rng(0)
    return rng.standard_normal((32, 5)).astype(dtype), rng.standard_normal((32, 1)).astype(dtype)


def _closure(optimizer, model, x, y):
    def closure():
        optimizer.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        return loss

    return closure


def _run_both(g_model, t_model, x, y, steps, **options):
    g_opt = graphc.optim.LBFGS(g_model.parameters(), **options)
    t_opt = torch.optim.LBFGS(t_model.parameters(), **options)
    g_closure = _closure(g_opt, g_model, graphc.tensor(x), graphc.tensor(y))
    t_closure = _closure(t_opt, t_model, torch.tensor(x), torch.tensor(y))
    for step in range(steps):
        g_loss, t_loss = g_opt.step(g_closure), t_opt.step(t_closure)
        yield step, g_opt, t_opt, float(g_loss), float(t_loss.detach())


@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
@pytest.mark.parametrize("history_size", [100, 2])
def test_lbfgs_matches_torch_step_for_step(line_search_fn, history_size):
    # float64, so that rounding (which L-BFGS amplifies) does not hide the
    # algorithm: every step must agree to far below 1e-5.
    g_model, t_model = _models(torch.float64)
    x, y = _data(np.float64)
    options = dict(lr=0.5, max_iter=6, history_size=history_size, line_search_fn=line_search_fn)
    for step, g_opt, t_opt, g_loss, t_loss in _run_both(g_model, t_model, x, y, 4, **options):
        assert g_loss == pytest.approx(t_loss, rel=1e-10), f"loss at step {step}"
        t_state = t_opt.state[next(iter(t_model.parameters()))]
        g_state = g_opt.state[next(iter(g_model.parameters()))]
        assert g_state["func_evals"] == t_state["func_evals"] and g_state["n_iter"] == t_state["n_iter"]
        for (name, t_param), g_param in zip(t_model.named_parameters(), g_model.parameters()):
            np.testing.assert_allclose(
                g_param.detach().numpy(), t_param.detach().numpy(), atol=1e-9, err_msg=f"{name} at step {step}"
            )
    assert len(g_state["old_dirs"]) == len(t_state["old_dirs"]) <= history_size


def test_lbfgs_float32_least_squares():
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((40, 6)).astype(np.float32), rng.standard_normal((40, 1)).astype(np.float32)
    torch.manual_seed(1)
    t_model = torch.nn.Linear(6, 1)
    g_model = nn.Linear(6, 1)
    copy_weights(g_model, t_model)
    for _, _, _, g_loss, t_loss in _run_both(g_model, t_model, x, y, 3, max_iter=4, line_search_fn="strong_wolfe"):
        assert g_loss == pytest.approx(t_loss, rel=1e-5)
    for g_param, t_param in zip(g_model.parameters(), t_model.parameters()):
        # float32 rounding differs (graphc sums in float64), and L-BFGS amplifies it.
        np.testing.assert_allclose(g_param.detach().numpy(), t_param.detach().numpy(), atol=5e-5)


def test_lbfgs_with_a_compiled_closure():
    x, y = _data(np.float32)
    g_model, _ = _models(torch.float32)
    eager_model, _ = _models(torch.float32)
    opt = graphc.optim.LBFGS(g_model.parameters(), max_iter=5, line_search_fn="strong_wolfe")
    eager_opt = graphc.optim.LBFGS(eager_model.parameters(), max_iter=5, line_search_fn="strong_wolfe")
    gx, gy = graphc.tensor(x), graphc.tensor(y)

    @graphc.compile(backend="interp")
    def loss_and_grads(x, y):
        opt.zero_grad()
        loss = ((g_model(x) - y) ** 2).mean()
        loss.backward()
        return loss

    first = float(opt.step(lambda: loss_and_grads(gx, gy)))
    eager_first = float(eager_opt.step(_closure(eager_opt, eager_model, gx, gy)))
    assert first == pytest.approx(eager_first, rel=1e-6)
    final = float(((g_model(gx) - gy) ** 2).mean())
    assert final < 0.8 * first
    for p, q in zip(g_model.parameters(), eager_model.parameters()):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), atol=1e-4)


def test_lbfgs_stops_at_zero_gradient_and_errors():
    w = graphc.zeros(3, requires_grad=True)
    opt = graphc.optim.LBFGS([w])

    def closure():
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    assert opt.state[w]["func_evals"] == 1 and opt.state[w]["n_iter"] == 0
    with pytest.raises(RuntimeError, match="only 'strong_wolfe' is supported"):
        graphc.optim.LBFGS([w], line_search_fn="armijo")
    with pytest.raises(ValueError, match="per-parameter options"):
        graphc.optim.LBFGS([{"params": [w]}, {"params": [graphc.zeros(1, requires_grad=True)]}])
    with pytest.raises(RuntimeError, match="requires a closure"):
        opt.step(None)
    compiled_step = graphc.compile(lambda: opt.step(closure), backend="interp")
    compiled_step()  # graphc.compile's first call runs eagerly; the second traces
    with pytest.raises(graphc.errors.TraceError, match="outside graphc.compile"):
        compiled_step()


def test_lbfgs_docstring_example():
    import doctest

    import graphc.optim.lbfgs as module

    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
