"""Every optimizer against torch.optim: same initial weights, same gradient
rule, parameters equal after several steps."""

import numpy as np
import pytest
import torch

import graphc
import graphc.optim as optim

STEPS = 6
SHAPES = [(3, 4), (5,)]

CONFIGS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3)),
    ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.01)),
    ("SGD", dict(lr=0.1, weight_decay=0.05, maximize=True)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.02, amsgrad=True)),
    ("Adam", dict(lr=0.01, weight_decay=0.1, betas=(0.8, 0.95), eps=1e-6)),
    ("Adam", dict(lr=0.01, maximize=True, amsgrad=True)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, weight_decay=0.3, amsgrad=True)),
    ("Adagrad", dict(lr=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.2, weight_decay=0.05)),
    ("Adagrad", dict(lr=0.1, initial_accumulator_value=0.3, eps=1e-6, maximize=True)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, centered=True)),
    ("RMSprop", dict(lr=0.01, momentum=0.9)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, centered=True, momentum=0.5, weight_decay=0.1, maximize=True)),
    ("Adadelta", dict()),
    ("Adadelta", dict(lr=0.5, rho=0.8, weight_decay=0.1)),
    ("Adadelta", dict(lr=2.0, eps=1e-4, maximize=True)),
]


def _initial(dtype):
    rng = np.random.default_rng(0)
    return [rng.standard_normal(shape).astype(dtype) for shape in SHAPES]


def _gradient(step: int, index: int, param: np.ndarray) -> np.ndarray:
    # A fixed random part plus a part that depends on the current weights,
    # so the two runs only stay together if every update agrees.
    rng = np.random.default_rng(100 * step + index)
    return (rng.standard_normal(param.shape) + 0.5 * param).astype(param.dtype)


def run_graphc(name, kwargs, dtype, steps=STEPS):
    params = [graphc.tensor(a, requires_grad=True) for a in _initial(dtype)]
    opt = getattr(optim, name)(params, **kwargs)
    for step in range(steps):
        for i, p in enumerate(params):
            p.grad = graphc.tensor(_gradient(step, i, p.detach().numpy()))
        opt.step()
    return [p.detach().numpy().copy() for p in params], opt


def run_torch(name, kwargs, dtype, steps=STEPS):
    params = [torch.tensor(a, requires_grad=True) for a in _initial(dtype)]
    opt = getattr(torch.optim, name)(params, foreach=False, **kwargs)
    for step in range(steps):
        for i, p in enumerate(params):
            p.grad = torch.tensor(_gradient(step, i, p.detach().numpy()))
        opt.step()
    return [p.detach().numpy().copy() for p in params], opt


TOLERANCE = {np.float32: dict(rtol=1e-6, atol=1e-7), np.float64: dict(rtol=1e-12, atol=1e-13)}


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("name,kwargs", CONFIGS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CONFIGS)])
def test_matches_torch(name, kwargs, dtype):
    ours, _ = run_graphc(name, kwargs, dtype)
    theirs, _ = run_torch(name, kwargs, dtype)
    start = _initial(dtype)
    for a, b, s in zip(ours, theirs, start):
        assert a.dtype == dtype
        assert not np.allclose(b, s), "the reference run did not move the parameters"
        np.testing.assert_allclose(a, b, **TOLERANCE[dtype])


@pytest.mark.parametrize("name,kwargs", [c for c in CONFIGS if c[0] != "SGD" or "momentum" in c[1]])
def test_state_matches_torch(name, kwargs):
    _, ours = run_graphc(name, kwargs, np.float64, steps=3)
    _, theirs = run_torch(name, kwargs, np.float64, steps=3)
    ours_state, theirs_state = ours.state_dict()["state"], theirs.state_dict()["state"]
    assert sorted(ours_state) == sorted(theirs_state)
    for index in theirs_state:
        assert set(ours_state[index]) == set(theirs_state[index])
        for key, value in theirs_state[index].items():
            np.testing.assert_allclose(ours_state[index][key].numpy(), value.numpy(), rtol=1e-12, atol=1e-14)


def test_param_groups_with_own_lr_and_skipped_grads():
    a_np, b_np = _initial(np.float32)
    for framework, make, mod in (("graphc", graphc.tensor, optim), ("torch", torch.tensor, torch.optim)):
        a, b = make(a_np, requires_grad=True), make(b_np, requires_grad=True)
        extra = {"foreach": False} if framework == "torch" else {}
        opt = mod.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1, momentum=0.5, **extra)
        for step in range(4):
            a.grad = make(_gradient(step, 0, a.detach().numpy()))
            # b gets no gradient on odd steps: the optimizer must skip it.
            b.grad = make(_gradient(step, 1, b.detach().numpy())) if step % 2 == 0 else None
            opt.step()
        if framework == "graphc":
            ours = (a.detach().numpy().copy(), b.detach().numpy().copy())
        else:
            np.testing.assert_allclose(ours[0], a.detach().numpy(), rtol=1e-6)
            np.testing.assert_allclose(ours[1], b.detach().numpy(), rtol=1e-6)


def test_lr_changed_by_hand_is_used():
    results = []
    for make, mod, extra in ((graphc.tensor, optim, {}), (torch.tensor, torch.optim, {"foreach": False})):
        p = make(np.ones(3, np.float32), requires_grad=True)
        opt = mod.Adam([p], lr=0.1, **extra)
        for step in range(4):
            opt.param_groups[0]["lr"] = 0.1 / (step + 1)
            p.grad = make(np.full(3, step + 1.0, np.float32))
            opt.step()
        results.append(p.detach().numpy().copy())
    np.testing.assert_allclose(results[0], results[1], rtol=1e-6)


def test_closure_and_zero_grad():
    p = graphc.tensor([1.0, -2.0], requires_grad=True)
    opt = optim.SGD([p], lr=0.1)

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert float(loss) == pytest.approx(5.0)
    np.testing.assert_allclose(p.detach().numpy(), [0.8, -1.6], rtol=1e-6)
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(p.grad.numpy(), [0.0, 0.0])
    opt.zero_grad()
    assert p.grad is None


def test_invalid_arguments_raise():
    p = graphc.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="learning rate"):
        optim.SGD([p], lr=-1)
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="beta"):
        optim.Adam([p], betas=(1.0, 0.9))
    with pytest.raises(ValueError, match="empty"):
        optim.Adam([])
    with pytest.raises(TypeError, match="Tensor"):
        optim.SGD([p, 3.0], lr=0.1)
    with pytest.raises(ValueError, match="more than one"):
        optim.SGD([{"params": [p]}, {"params": [p]}], lr=0.1)
