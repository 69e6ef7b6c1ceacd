"""Regression tests for bugs found while running the reference programs
compiled end to end."""

from __future__ import annotations

import numpy as np

import graphc
import graphc.nn as nn
import graphc.nn.functional as F
import graphc.optim as optim


def test_compiled_function_follows_the_models_train_eval_switch(monkeypatch, capsys):
    """A compiled *function* that calls a model (not the compiled Module
    itself) used to keep running the program traced in the first mode:
    after model.train() dropout stayed off (and vice versa)."""
    monkeypatch.setenv("GRAPHC_DEBUG", "1")
    graphc.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.Dropout(0.5))

    @graphc.compile
    def predict(x):
        return model(x)

    x = graphc.ones(8, 4)
    with graphc.no_grad():
        model.eval()
        evals = [predict(x).numpy().copy() for _ in range(3)]
        model.train()
        trains = [predict(x).numpy().copy() for _ in range(3)]
        model.eval()
        again = predict(x).numpy()
    # The first call runs eagerly, later ones compiled: equal up to rounding.
    for e in evals:
        np.testing.assert_allclose(e, evals[0], rtol=1e-6, atol=1e-7)
    for t in trains:  # dropout: zeros, and the survivors scaled by 2
        assert (t == 0).any()
        np.testing.assert_allclose(t[t != 0], 2 * evals[0][t != 0], rtol=1e-6)
    np.testing.assert_allclose(again, evals[0], rtol=1e-6, atol=1e-7)
    assert "recompiling predict: Sequential switched to train mode" in capsys.readouterr().err
    entries = next(iter(predict._cache.values()))
    assert len(entries) == 2  # one program per mode, both reused


def test_compiled_train_step_after_model_eval_matches_eager():
    """The same compiled training step called after model.eval() uses
    BatchNorm's running statistics and no dropout, as the eager step does."""

    def run(compiled):
        graphc.manual_seed(0)
        model = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.3), nn.Linear(8, 3))
        opt = optim.SGD(model.parameters(), lr=0.1)

        def step(x, y):
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            return loss

        fn = graphc.compile(step) if compiled else step
        r = np.random.default_rng(0)
        losses = []
        for i in range(8):
            model.train(i < 4)
            x = graphc.tensor(r.standard_normal((16, 6)).astype(np.float32))
            y = graphc.tensor(r.integers(0, 3, 16))
            losses.append(fn(x, y).item())
        return losses, model[1].running_mean.numpy().copy()

    eager, eager_mean = run(False)
    compiled, mean = run(True)
    np.testing.assert_allclose(compiled, eager, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(mean, eager_mean, rtol=1e-5, atol=1e-6)


def test_compiled_step_sees_optimizer_state_loaded_from_a_checkpoint(tmp_path):
    """Resuming from a checkpoint: optimizer.load_state_dict used to put new
    tensors in optimizer.state, so a compiled step traced before kept
    updating the old moment buffers and step counts (losses drifted from
    eager training by ~20%)."""

    def run(compiled):
        graphc.manual_seed(0)
        model = nn.Linear(4, 3)
        opt = optim.Adam(model.parameters(), lr=0.1)

        def step(x, y):
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            return loss

        fn = graphc.compile(step) if compiled else step
        r = np.random.default_rng(0)
        data = [
            (graphc.tensor(r.standard_normal((8, 4)).astype(np.float32)), graphc.tensor(r.integers(0, 3, 8)))
            for _ in range(10)
        ]
        for x, y in data[:4]:
            fn(x, y)
        path = str(tmp_path / f"ckpt{int(compiled)}.pth")
        graphc.save({"model": model.state_dict(), "optimizer": opt.state_dict()}, path)
        for x, y in data[4:7]:
            fn(x, y)
        checkpoint = graphc.load(path)
        model.load_state_dict(checkpoint["model"])
        opt.load_state_dict(checkpoint["optimizer"])
        losses = [fn(x, y).item() for x, y in data[4:10]]
        return losses, model.weight.detach().numpy().copy(), float(opt.state_dict()["state"][0]["step"])

    eager, eager_w, eager_steps = run(False)
    compiled, w, steps = run(True)
    assert eager_steps == steps == 10.0
    np.testing.assert_allclose(compiled, eager, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(w, eager_w, rtol=1e-5, atol=1e-6)
