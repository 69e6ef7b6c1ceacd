"""Optimizer state dicts, param groups, and the lr tensors that keep the
learning rate a live input of compiled steps."""

import gc

import numpy as np
import pytest

import graphc
import graphc.optim as optim
from graphc.optim import optimizer as optimizer_module


def _params():
    rng = np.random.default_rng(1)
    return [
        graphc.tensor(rng.standard_normal((4, 3)).astype(np.float32), requires_grad=True),
        graphc.tensor(rng.standard_normal(3).astype(np.float32), requires_grad=True),
    ]


def _step(opt, params, step):
    for i, p in enumerate(params):
        rng = np.random.default_rng(step * 10 + i)
        p.grad = graphc.tensor(rng.standard_normal(p.shape).astype(np.float32) + p.detach().numpy())
    opt.step()


FACTORIES = {
    "SGD": lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9),
    "Adam": lambda ps: optim.Adam(ps, lr=0.01, amsgrad=True),
    "AdamW": lambda ps: optim.AdamW(ps, lr=0.01),
    "Adagrad": lambda ps: optim.Adagrad(ps, lr=0.1, lr_decay=0.01),
    "RMSprop": lambda ps: optim.RMSprop(ps, lr=0.01, centered=True, momentum=0.5),
    "Adadelta": lambda ps: optim.Adadelta(ps),
}


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_state_dict_round_trip_resumes_exactly(name, tmp_path):
    straight = _params()
    opt = FACTORIES[name](straight)
    for step in range(5):
        _step(opt, straight, step)

    first = _params()
    opt1 = FACTORIES[name](first)
    for step in range(3):
        _step(opt1, first, step)
    graphc.save({"params": [p.detach() for p in first], "opt": opt1.state_dict()}, tmp_path / "ckpt.pth")

    ckpt = graphc.load(tmp_path / "ckpt.pth")
    resumed = [graphc.tensor(t.numpy(), requires_grad=True) for t in ckpt["params"]]
    opt2 = FACTORIES[name](resumed)
    opt2.load_state_dict(ckpt["opt"])
    for step in range(3, 5):
        _step(opt2, resumed, step)
    for a, b in zip(straight, resumed):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())


def test_state_dict_layout_matches_pytorch():
    params = _params()
    opt = optim.Adam([{"params": [params[0]]}, {"params": [params[1]], "lr": 0.5}], lr=0.01)
    _step(opt, params, 0)
    sd = opt.state_dict()
    assert set(sd) == {"state", "param_groups"}
    assert [g["params"] for g in sd["param_groups"]] == [[0], [1]]
    assert sd["param_groups"][1]["lr"] == 0.5 and sd["param_groups"][0]["betas"] == (0.9, 0.999)
    assert set(sd["state"]) == {0, 1}
    assert set(sd["state"][0]) == {"step", "exp_avg", "exp_avg_sq"}
    assert sd["state"][0]["step"].dtype == graphc.float32 and float(sd["state"][0]["step"]) == 1.0


def test_load_state_dict_copies_and_validates():
    params = _params()
    opt = optim.SGD(params, lr=0.1, momentum=0.9)
    _step(opt, params, 0)
    other = optim.SGD(_params(), lr=0.3, momentum=0.9)
    other.load_state_dict(opt.state_dict())
    assert other.param_groups[0]["lr"] == 0.1
    buf_a = opt.state[params[0]]["momentum_buffer"]
    buf_b = other.state[other.param_groups[0]["params"][0]]["momentum_buffer"]
    np.testing.assert_array_equal(buf_a.numpy(), buf_b.numpy())
    buf_b.mul_(0)
    assert np.abs(buf_a.numpy()).sum() > 0, "loaded state must not alias the source optimizer's"
    with pytest.raises(ValueError, match="parameter group"):
        optim.SGD(_params()[:1], lr=0.1).load_state_dict(opt.state_dict())


def test_add_param_group_and_defaults():
    a, b = _params()
    opt = optim.SGD([a], lr=0.1, momentum=0.5)
    opt.add_param_group({"params": b, "lr": 0.01})
    assert len(opt.param_groups) == 2
    assert opt.param_groups[1]["momentum"] == 0.5 and opt.param_groups[1]["lr"] == 0.01
    a.grad = graphc.ones_like(a)
    b.grad = graphc.ones_like(b)
    before = b.detach().numpy().copy()
    opt.step()
    np.testing.assert_allclose(b.detach().numpy(), before - 0.01, rtol=1e-6)


def test_lr_tensor_follows_python_lr_through_pre_call_hooks():
    params = _params()
    opt = optim.Adam(params, lr=0.01)
    assert float(opt.lr_tensor(0)) == pytest.approx(0.01)
    opt.param_groups[0]["lr"] = 0.25
    # What the compiled-call machinery does before each call:
    optimizer_module.run_pre_call_hooks()
    assert float(opt.lr_tensor(0)) == pytest.approx(0.25)
    lr_tensor = opt.lr_tensor(0)
    scheduler = optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    opt.step()
    scheduler.step()
    optimizer_module.run_pre_call_hooks()
    assert opt.lr_tensor(0) is lr_tensor, "the lr tensor is updated in place, never replaced"
    assert float(lr_tensor) == pytest.approx(0.125)


def test_hooks_do_not_keep_optimizers_alive():
    count = len(optimizer_module._pre_call_hooks)
    opt = optim.SGD(_params(), lr=0.1)
    assert len(optimizer_module._pre_call_hooks) == count + 1
    del opt
    gc.collect()
    assert len(optimizer_module._pre_call_hooks) == count


@pytest.mark.parametrize("name", ["SGD", "Adam", "RMSprop"])
def test_compiled_step_reads_lr_tensor_each_call(name):
    """Under graphc.compile the lr is a program input, not a constant: a
    scheduler's change reaches the compiled step once the pre-call hooks
    run. (Called by hand here, as the compiled-call machinery would.)"""
    x = graphc.tensor(np.arange(1, 4, dtype=np.float32))
    runs = []
    for compiled in (False, True):
        w = graphc.tensor(np.ones(3, np.float32), requires_grad=True)
        opt = FACTORIES[name]([w])
        sched = optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)

        def train_step(inp, w=w, opt=opt):
            opt.zero_grad()
            loss = ((w * inp - 1.0) ** 2).sum()
            loss.backward()
            opt.step()
            return loss

        step = graphc.compile(train_step) if compiled else train_step
        for _ in range(4):
            optimizer_module.run_pre_call_hooks()
            step(x)
            sched.step()
        runs.append(w.detach().numpy().copy())
    np.testing.assert_allclose(runs[1], runs[0], rtol=1e-6)
