"""Guards on globals and closure variables: a compiled function whose
Python globals, closure values or baked-in tensor values changed compiles
again instead of returning stale results, and says why at GRAPHC_DEBUG=1.
Results are compared with PyTorch running the same code eagerly."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
import torch
from frontend_helpers import assert_same

import graphc
import graphc.nn as nn
from graphc import _guards
from graphc._compile import MAX_PROGRAMS_PER_SIGNATURE

THIS = sys.modules[__name__]
SCALE = 2.0
FACTOR = 2
USE_RELU = True
SHAPE = (2, 3)
MODE = "add"
W = graphc.ones(3)
T = graphc.tensor(2.0)


def _data():
    arr = np.linspace(-1.0, 1.0, 6, dtype=np.float32)
    return graphc.tensor(arr), torch.tensor(arr)


def _programs(compiled) -> int:
    return sum(len(entries) for entries in compiled._cache.values())


def scaled(x):
    return x * SCALE


@pytest.fixture(params=["llvm", "interp"])
def backend(request):
    return request.param


def test_global_scalar_change_recompiles_and_says_why(backend, monkeypatch, capsys):
    monkeypatch.setenv("GRAPHC_DEBUG", "1")
    compiled = graphc.compile(scaled, backend=backend)
    gx, tx = _data()
    for _ in range(3):
        assert_same(compiled(gx), tx * 2.0)
    monkeypatch.setattr(THIS, "SCALE", 3.0)
    capsys.readouterr()
    for _ in range(2):
        assert_same(compiled(gx), tx * 3.0)
    err = capsys.readouterr().err
    assert err.count("recompiling scaled: global 'SCALE' changed from 2.0 to 3.0") == 1, err
    assert _programs(compiled) == 2


def test_equal_value_rebound_does_not_recompile(monkeypatch):
    compiled = graphc.compile(scaled, backend="interp")
    gx, tx = _data()
    compiled(gx)
    compiled(gx)
    monkeypatch.setattr(THIS, "SCALE", float("2.0"))  # another float object, same value
    assert_same(compiled(gx), tx * 2.0)
    assert _programs(compiled) == 1


def test_type_change_recompiles_with_the_new_dtype(monkeypatch):
    def times_factor(x):
        return x * FACTOR

    compiled = graphc.compile(times_factor, backend="interp")
    gi, ti = graphc.arange(4), torch.arange(4)
    for _ in range(2):
        assert_same(compiled(gi), ti * 2)
    for value in (2.0, True):  # equal to 2 or 1 as numbers, other result dtypes
        monkeypatch.setattr(THIS, "FACTOR", value)
        for _ in range(2):
            assert_same(compiled(gi), ti * value)
    assert _programs(compiled) == 3


def test_closure_variable_change_recompiles(monkeypatch, capsys):
    monkeypatch.setenv("GRAPHC_DEBUG", "1")
    offset = 1.0

    @graphc.compile(backend="interp")
    def shifted(x):
        return x + offset

    gx, tx = _data()
    for _ in range(2):
        assert_same(shifted(gx), tx + 1.0)
    offset = -4.5
    for _ in range(2):
        assert_same(shifted(gx), tx - 4.5)
    assert "recompiling shifted: closure variable 'offset' changed from 1.0 to -4.5" in capsys.readouterr().err


def test_branch_tuple_and_string_globals(monkeypatch):
    def pick(x):
        y = x.reshape(SHAPE)
        y = y.relu() if USE_RELU else y.tanh()
        return y + 1.0 if MODE == "add" else y * 3.0

    def reference(t):
        y = t.reshape(SHAPE)
        y = y.relu() if USE_RELU else y.tanh()
        return y + 1.0 if MODE == "add" else y * 3.0

    compiled = graphc.compile(pick)
    gx, tx = _data()
    for name, value in [("USE_RELU", False), ("SHAPE", (3, 2)), ("MODE", "mul"), ("SHAPE", (6,))]:
        for _ in range(2):
            assert_same(compiled(gx), reference(tx), what=f"{name}={getattr(THIS, name)!r}")
        monkeypatch.setattr(THIS, name, value)
    assert_same(compiled(gx), reference(tx))


def test_tuple_elements_are_compared_by_type(monkeypatch):
    monkeypatch.setattr(THIS, "SHAPE", (1, 2))
    guards = _guards.record(lambda: SHAPE)
    assert guards.check() is None
    monkeypatch.setattr(THIS, "SHAPE", (1, 2))
    assert guards.check() is None  # an equal tuple
    monkeypatch.setattr(THIS, "SHAPE", (1.0, 2))
    assert guards.check() == "global 'SHAPE' changed from (1, 2) to (1.0, 2)"


def helper(x):
    return x * SCALE


def other_helper(x):
    return x - SCALE


def calls_helper(x):
    return helper(x) + 1.0


def test_globals_of_called_functions_are_guarded(monkeypatch, capsys):
    monkeypatch.setenv("GRAPHC_DEBUG", "1")
    compiled = graphc.compile(calls_helper, backend="interp")
    gx, tx = _data()
    for _ in range(2):
        assert_same(compiled(gx), tx * 2.0 + 1.0)
    monkeypatch.setattr(THIS, "SCALE", 5.0)
    for _ in range(2):
        assert_same(compiled(gx), tx * 5.0 + 1.0)
    monkeypatch.setattr(THIS, "helper", other_helper)
    for _ in range(2):
        assert_same(compiled(gx), tx - 5.0 + 1.0)
    err = capsys.readouterr().err
    assert "global 'SCALE' changed from 2.0 to 5.0" in err
    assert "global 'helper' changed from <function helper> to <function other_helper>" in err


def test_global_tensor_rebound_or_updated_in_place(monkeypatch):
    def times_w(x):
        return x[:3] * W

    compiled = graphc.compile(times_w)
    gx, tx = _data()
    for _ in range(2):
        assert_same(compiled(gx), tx[:3] * torch.ones(3))
    # In place: W is an input of the program, read on every call.
    W.mul_(2.0)
    try:
        assert_same(compiled(gx), tx[:3] * 2.0)
        assert _programs(compiled) == 1
    finally:
        W.fill_(1.0)
    # Rebound: the old program would keep reading the old tensor.
    monkeypatch.setattr(THIS, "W", graphc.tensor([1.0, -1.0, 3.0]))
    for _ in range(2):
        assert_same(compiled(gx), tx[:3] * torch.tensor([1.0, -1.0, 3.0]))
    assert _programs(compiled) == 2


def test_tensor_read_as_python_value_is_guarded_by_version(monkeypatch, capsys):
    monkeypatch.setenv("GRAPHC_DEBUG", "1")

    def times_t(x):
        return x * T.item()

    compiled = graphc.compile(times_t, backend="interp")
    gx, tx = _data()
    for _ in range(2):
        assert_same(compiled(gx), tx * 2.0)
    T.add_(1.0)
    try:
        for _ in range(2):
            assert_same(compiled(gx), tx * 3.0)
    finally:
        T.fill_(2.0)
    assert "was modified in place (version" in capsys.readouterr().err


class Scaled(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 2)

    def forward(self, x):
        return self._scale(self.fc(x))

    def _scale(self, y):  # a helper method reads the global
        return y * SCALE


def test_compiled_module_method_globals_are_guarded(monkeypatch):
    graphc.manual_seed(0)
    model = graphc.compile(Scaled())
    x = graphc.ones(4, 3)
    with graphc.no_grad():
        base = model.fn.fc(x).numpy()
        for _ in range(2):
            np.testing.assert_allclose(model(x).numpy(), base * 2.0, rtol=1e-6)
        monkeypatch.setattr(THIS, "SCALE", -1.0)
        for _ in range(2):
            np.testing.assert_allclose(model(x).numpy(), -base, rtol=1e-6)


def test_nested_compiled_function_globals_are_guarded(monkeypatch):
    inner = graphc.compile(scaled, backend="interp")

    @graphc.compile(backend="interp")
    def outer(x):
        return inner(x) + 1.0

    gx, tx = _data()
    for _ in range(2):
        assert_same(outer(gx), tx * 2.0 + 1.0)
    monkeypatch.setattr(THIS, "SCALE", 4.0)
    for _ in range(2):
        assert_same(outer(gx), tx * 4.0 + 1.0)


def test_deleted_global_fails_like_eager_code(monkeypatch, capsys):
    monkeypatch.setenv("GRAPHC_DEBUG", "1")
    compiled = graphc.compile(scaled, backend="interp")
    gx, _ = _data()
    compiled(gx)
    compiled(gx)
    monkeypatch.delattr(THIS, "SCALE")
    with pytest.raises(NameError, match="SCALE"):
        compiled(gx)
    assert "recompiling scaled: global 'SCALE' was deleted" in capsys.readouterr().err


def test_changing_value_keeps_a_bounded_number_of_programs(monkeypatch):
    compiled = graphc.compile(scaled, backend="interp")
    gx, tx = _data()
    for step in range(MAX_PROGRAMS_PER_SIGNATURE + 4):
        monkeypatch.setattr(THIS, "SCALE", float(step))
        for _ in range(2):
            assert_same(compiled(gx), tx * float(step))
    assert _programs(compiled) == MAX_PROGRAMS_PER_SIGNATURE


def test_record_lists_globals_loaded_by_name_only():
    def uses(x):
        n = len(x.shape)  # builtin and attribute: not guarded
        values = [SCALE * i for i in range(n)]  # comprehension: its own code object
        return (lambda y: y * FACTOR)(x) + math.pi + values[0]

    guards = _guards.record(uses)
    assert sorted(name for _, name, _ in guards.globals) == ["FACTOR", "SCALE", "math"]
    assert guards.cells == []


def test_guards_hold_for_compiled_forward_and_backward(monkeypatch):
    # A call whose results require grad compiles a forward and a backward
    # program (graphc/_compiled_autograd.py): a changed global rebuilds both.
    compiled = graphc.compile(scaled)
    arr = np.linspace(-1.0, 1.0, 6, dtype=np.float32)
    for scale in (2.0, 2.0, 2.0, 3.0, 3.0):
        monkeypatch.setattr(THIS, "SCALE", scale)
        gx = graphc.tensor(arr, requires_grad=True)
        tx = torch.tensor(arr, requires_grad=True)
        out = compiled(gx)
        assert out.grad_fn is not None
        (out * out).sum().backward()
        (tx * scale * tx * scale).sum().backward()
        assert_same(out.detach(), (tx * scale).detach())
        assert_same(gx.grad, tx.grad)
    assert _programs(compiled) == 2
