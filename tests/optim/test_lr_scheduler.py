"""Learning-rate schedulers against torch.optim.lr_scheduler."""

import math

import pytest
import torch

import graphc
import graphc.optim as optim
from graphc.optim import lr_scheduler

EPOCHS = 25

SCHEDULERS = [
    ("StepLR", dict(step_size=3, gamma=0.5)),
    ("MultiStepLR", dict(milestones=[2, 5, 5, 11], gamma=0.3)),
    ("ExponentialLR", dict(gamma=0.9)),
    ("CosineAnnealingLR", dict(T_max=7)),
    ("CosineAnnealingLR", dict(T_max=5, eta_min=0.01)),
    ("LambdaLR", dict(lr_lambda=lambda epoch: 0.95**epoch + 0.01 * (epoch % 3))),
]


def _lr_sequences(name, kwargs, epochs=EPOCHS):
    sequences = []
    for mod, sched_mod, make in (
        (optim, lr_scheduler, graphc.zeros),
        (torch.optim, torch.optim.lr_scheduler, torch.zeros),
    ):
        params = [make(2, requires_grad=True), make(3, requires_grad=True)]
        opt = mod.SGD([{"params": params[:1]}, {"params": params[1:], "lr": 0.3}], lr=0.1)
        sched = getattr(sched_mod, name)(opt, **kwargs)
        seq = [list(sched.get_last_lr())]
        for _ in range(epochs):
            opt.step()
            sched.step()
            seq.append(list(sched.get_last_lr()))
            assert seq[-1] == [g["lr"] for g in opt.param_groups]
        sequences.append(seq)
    return sequences


@pytest.mark.parametrize("name,kwargs", SCHEDULERS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(SCHEDULERS)])
def test_schedule_matches_torch(name, kwargs):
    ours, theirs = _lr_sequences(name, kwargs)
    assert len({tuple(x) for x in theirs}) > 1, "the reference schedule must change the lr"
    for epoch, (a, b) in enumerate(zip(ours, theirs)):
        assert a == pytest.approx(b, rel=1e-12, abs=1e-15), f"epoch {epoch}"


PLATEAU = [
    dict(patience=3),
    dict(mode="max", factor=0.5, patience=1),
    dict(patience=2, threshold=0.1, threshold_mode="abs", cooldown=2, min_lr=0.02),
    dict(mode="max", threshold_mode="abs", threshold=0.05, patience=0, min_lr=[0.01, 0.05], factor=0.2),
]


@pytest.mark.parametrize("kwargs", PLATEAU)
def test_reduce_on_plateau_matches_torch(kwargs):
    metrics = [
        1.0,
        0.9,
        0.95,
        0.95,
        0.97,
        0.8,
        0.85,
        0.86,
        0.87,
        0.9,
        0.7,
        0.7,
        0.7,
        0.71,
        0.72,
        0.9,
        0.95,
        0.96,
        0.5,
        0.5,
        0.5,
        0.5,
        0.49,
        0.6,
        0.7,
    ]
    runs = []
    for mod, sched_mod, make in (
        (optim, lr_scheduler, graphc.zeros),
        (torch.optim, torch.optim.lr_scheduler, torch.zeros),
    ):
        params = [make(2, requires_grad=True), make(3, requires_grad=True)]
        opt = mod.SGD([{"params": params[:1]}, {"params": params[1:], "lr": 0.3}], lr=0.1)
        sched = sched_mod.ReduceLROnPlateau(opt, **kwargs)
        seq = []
        for metric in metrics:
            sched.step(metric)
            seq.append(list(sched.get_last_lr()))
        runs.append(seq)
    assert len({tuple(x) for x in runs[1]}) > 1, "the reference run must reduce the lr"
    for epoch, (a, b) in enumerate(zip(*runs)):
        assert a == pytest.approx(b, rel=1e-12), f"epoch {epoch}"


def test_chained_schedulers_match_torch():
    seqs = []
    for mod, sched_mod, make in (
        (optim, lr_scheduler, graphc.zeros),
        (torch.optim, torch.optim.lr_scheduler, torch.zeros),
    ):
        opt = mod.SGD([make(2, requires_grad=True)], lr=1.0)
        first = sched_mod.ExponentialLR(opt, gamma=0.9)
        second = sched_mod.StepLR(opt, step_size=4, gamma=0.1)
        seq = []
        for _ in range(12):
            opt.step()
            first.step()
            second.step()
            seq.append(opt.param_groups[0]["lr"])
        seqs.append(seq)
    assert seqs[0] == pytest.approx(seqs[1], rel=1e-12)


def test_step_with_epoch_uses_closed_form():
    opt = optim.SGD([graphc.zeros(2, requires_grad=True)], lr=1.0)
    sched = lr_scheduler.CosineAnnealingLR(opt, T_max=10, eta_min=0.1)
    sched.step(5)
    assert sched.get_last_lr()[0] == pytest.approx(0.1 + 0.9 * (1 + math.cos(math.pi / 2)) / 2)


def test_scheduler_state_dict_resumes(tmp_path):
    def make():
        opt = optim.SGD([graphc.zeros(2, requires_grad=True)], lr=0.5)
        return opt, lr_scheduler.MultiStepLR(opt, milestones=[3, 6], gamma=0.5)

    opt, sched = make()
    for _ in range(4):
        opt.step()
        sched.step()
    graphc.save({"sched": sched.state_dict(), "opt": opt.state_dict()}, tmp_path / "s.pth")
    expected = []
    for _ in range(4):
        sched.step()
        expected.append(sched.get_last_lr()[0])

    opt2, sched2 = make()
    ckpt = graphc.load(tmp_path / "s.pth")
    opt2.load_state_dict(ckpt["opt"])
    sched2.load_state_dict(ckpt["sched"])
    resumed = []
    for _ in range(4):
        sched2.step()
        resumed.append(sched2.get_last_lr()[0])
    assert resumed == expected
    assert expected[-1] == pytest.approx(0.125)


def test_plateau_state_dict_survives_infinite_best(tmp_path):
    opt = optim.SGD([graphc.zeros(2, requires_grad=True)], lr=0.5)
    sched = lr_scheduler.ReduceLROnPlateau(opt)
    state = sched.state_dict()
    assert state["best"] == math.inf
    graphc.save(state, tmp_path / "p.pth")
    assert graphc.load(tmp_path / "p.pth")["best"] == math.inf
