"""A learning-rate schedule changes a compiled training step as it changes
the eager one: the compiled program reads the lr from a tensor each call."""

import numpy as np
import pytest

import graphc
import graphc.nn as nn
import graphc.nn.functional as F
import graphc.optim as optim


def train(compiled: bool, make_opt, backend="llvm"):
    graphc.manual_seed(0)
    model = nn.Linear(4, 2)
    opt = make_opt(model.parameters())
    sched = optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.1)
    x, y = graphc.randn(8, 4), graphc.randn(8, 2)

    def step(x, y):
        opt.zero_grad()
        loss = F.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        return loss

    fn = graphc.compile(step, backend=backend) if compiled else step
    for _ in range(6):
        fn(x, y)
        sched.step()
    return model.weight.detach().numpy().copy()


@pytest.mark.parametrize(
    "make_opt",
    [
        lambda p: optim.SGD(p, lr=0.1, momentum=0.9),
        lambda p: optim.Adam(p, lr=0.1),
        lambda p: optim.RMSprop(p, lr=0.05),
    ],
    ids=["sgd", "adam", "rmsprop"],
)
def test_step_lr_under_compile_matches_eager(make_opt):
    eager = train(False, make_opt)
    compiled = train(True, make_opt)
    np.testing.assert_allclose(compiled, eager, rtol=1e-5, atol=1e-6)
