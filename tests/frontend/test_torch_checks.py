"""Argument checks PyTorch makes: each bad call raises in graphc an
exception of the class torch raises for the same call, with a message that
names the problem; the checks that depend only on dtypes and shapes also
fire while tracing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import graphc
import graphc.nn.functional as gF


def _functional(lib):
    return gF if lib is graphc else torch.nn.functional


def _targets(lib, dtype):
    return lib.tensor([0, 1, 2], dtype=dtype)


# name -> (call taking the library module, text the graphc message contains)
CASES = {
    "nll_loss int32 target": (
        lambda lib: _functional(lib).nll_loss(lib.zeros(3, 4), _targets(lib, lib.int32)),
        "expected target dtype to be Long",
    ),
    "cross_entropy int32 target": (
        lambda lib: _functional(lib).cross_entropy(lib.zeros(3, 4), _targets(lib, lib.int32)),
        "expected target dtype to be Long",
    ),
    "cross_entropy float class target": (
        lambda lib: _functional(lib).cross_entropy(lib.zeros(3, 4), lib.tensor([0.0, 1.0, 2.0])),
        "expected target dtype to be Long",
    ),
    "nll_loss float target": (
        lambda lib: _functional(lib).nll_loss(lib.zeros(3, 4), lib.tensor([0.0, 1.0, 2.0])),
        "expected target dtype to be Long",
    ),
    "where float condition": (
        lambda lib: lib.where(lib.ones(3), lib.ones(3), lib.zeros(3)),
        "boolean",
    ),
    "where int64 condition": (
        lambda lib: lib.where(lib.ones(3, dtype=lib.int64), lib.ones(3), lib.zeros(3)),
        "boolean",
    ),
    "Tensor.where float condition": (
        lambda lib: lib.ones(3).where(lib.ones(3), 0.0),
        "boolean",
    ),
    "masked_fill float mask": (
        lambda lib: lib.ones(3).masked_fill(lib.ones(3), 0.0),
        "boolean masks",
    ),
    "masked_fill_ int64 mask": (
        lambda lib: lib.ones(3).masked_fill_(lib.ones(3, dtype=lib.int64), 0.0),
        "boolean masks",
    ),
    "masked_fill uint8 mask": (
        lambda lib: lib.masked_fill(lib.ones(3), lib.ones(3, dtype=lib.uint8), 0.0),
        "boolean masks",
    ),
    "arange negative step up": (lambda lib: lib.arange(0, 10, -1), "inconsistent with step sign"),
    "arange positive step down": (lambda lib: lib.arange(10, 0, 2), "inconsistent with step sign"),
    "arange float negative step": (lambda lib: lib.arange(0.0, 1.0, -0.5), "inconsistent with step sign"),
    "arange zero step": (lambda lib: lib.arange(0, 10, 0), "step must be nonzero"),
    "cat of a tensor": (lambda lib: lib.cat(lib.ones(2, 3)), "must be tuple of Tensors, not Tensor"),
    "cat of a generator": (
        lambda lib: lib.cat(x for x in [lib.ones(2)]),
        "must be tuple of Tensors, not generator",
    ),
    "cat of an int": (lambda lib: lib.cat(3), "not int"),
    "cat of lists": (lambda lib: lib.cat([[1.0], [2.0]]), "expected Tensor as element 0"),
    "stack of a tensor": (lambda lib: lib.stack(lib.ones(2, 3)), "must be tuple of Tensors, not Tensor"),
    "stack of a generator": (
        lambda lib: lib.stack(x for x in [lib.ones(2)]),
        "must be tuple of Tensors, not generator",
    ),
    "cat of an empty list": (lambda lib: lib.cat([]), "expected a non-empty list of Tensors"),
    "stack of an empty list": (lambda lib: lib.stack([]), "expects a non-empty TensorList"),
    "hstack of an empty list": (lambda lib: lib.hstack([]), "expects a non-empty TensorList"),
    "vstack of a tensor": (lambda lib: lib.vstack(lib.ones(2, 3)), "must be tuple of Tensors, not Tensor"),
    "zeros float size": (lambda lib: lib.zeros(2.5), "must be tuple of ints"),
    "zeros float in tuple": (lambda lib: lib.zeros((2.0, 3)), "must be tuple of ints"),
    "ones float second size": (lambda lib: lib.ones(2, 2.0), "at pos 1"),
    "full float size": (lambda lib: lib.full((2.5,), 1.0), "must be tuple of ints"),
    "randn float size": (lambda lib: lib.randn(2.0), "must be tuple of ints"),
    "zeros bool size": (lambda lib: lib.zeros(True), "must be tuple of ints"),
    "view float size": (lambda lib: lib.ones(6).view(2.0, 3), "view(): argument 'size'"),
    "view str size": (lambda lib: lib.ones(6).view("a"), "view(): argument 'size'"),
    "reshape float tuple": (lambda lib: lib.ones(6).reshape((2.0, 3)), "reshape(): argument 'shape'"),
    "expand float size": (lambda lib: lib.ones(1).expand(2.0), "expand(): argument 'size'"),
    "permute float dim": (lambda lib: lib.ones(2, 3).permute(1.0, 0), "permute(): argument 'dims'"),
    "grad of another dtype": (
        lambda lib: setattr(lib.ones(3, requires_grad=True), "grad", lib.ones(3, dtype=lib.float64)),
        "assigned grad has data of a different type",
    ),
    "grad of an int dtype": (
        lambda lib: setattr(lib.ones(3, requires_grad=True), "grad", lib.ones(3, dtype=lib.int64)),
        "assigned grad has data of a different type",
    ),
    "grad of another shape": (
        lambda lib: setattr(lib.ones(3, requires_grad=True), "grad", lib.ones(4)),
        "assigned grad has data of a different size",
    ),
    "view of a transposed tensor": (lambda lib: lib.ones(2, 3).t().view(-1), ".reshape(...)"),
    "view of an expanded tensor": (lambda lib: lib.ones(3, 1).expand(3, 4).view(-1), ".reshape(...)"),
    "view of a column slice": (lambda lib: lib.ones(4, 4)[:, :2].view(-1), ".reshape(...)"),
}


def _raised(call):
    with pytest.raises(Exception) as info:
        call()
    return info.value


@pytest.mark.parametrize("name", list(CASES))
def test_same_exception_class_as_torch(name):
    call, text = CASES[name]
    expected = _raised(lambda: call(torch))
    got = _raised(lambda: call(graphc))
    assert isinstance(got, type(expected)), f"{name}: graphc raised {type(got).__name__}: {got}; torch {expected!r}"
    assert text in str(got), f"{name}: {got}"
    assert "test_torch_checks.py:" in str(got), f"{name}: the message should name the user's line: {got}"


# The calls that are fine in torch stay fine in graphc, with torch's result.
ALLOWED = {
    "uint8 targets": lambda lib: _functional(lib).cross_entropy(lib.zeros(3, 4), _targets(lib, lib.uint8)),
    "class probabilities": lambda lib: _functional(lib).cross_entropy(lib.zeros(3, 4), lib.full((3, 4), 0.5)),
    "arange counting down": lambda lib: lib.arange(10, 0, -3),
    "empty arange": lambda lib: lib.arange(5, 5, -1),
    "int-valued 0-d tensor size": lambda lib: lib.zeros(lib.tensor(2)),
    "cat of a tuple": lambda lib: lib.cat((lib.ones(2), lib.zeros(1))),
    "view of a row slice": lambda lib: lib.arange(16).reshape(4, 4)[1:3].view(-1),
    "view of a transpose keeping its layout": lambda lib: lib.arange(6).reshape(2, 3).t().view(3, 1, 2),
    "view after contiguous": lambda lib: lib.arange(6).reshape(2, 3).t().contiguous().view(-1),
    "reshape of a transpose": lambda lib: lib.arange(6).reshape(2, 3).t().reshape(-1),
}


@pytest.mark.parametrize("name", list(ALLOWED))
def test_valid_calls_still_work(name):
    call = ALLOWED[name]
    expected, got = call(torch), call(graphc)
    assert list(got.shape) == list(expected.shape)
    np.testing.assert_allclose(np.asarray(got.tolist()), np.asarray(expected.tolist()), rtol=1e-6)


def test_where_accepts_uint8_condition_like_torch():
    cond = [1, 0, 2]
    got = graphc.where(graphc.tensor(cond, dtype=graphc.uint8), graphc.ones(3), graphc.zeros(3))
    assert got.tolist() == [1.0, 0.0, 1.0]


@pytest.mark.parametrize(
    "fn, message",
    [
        (lambda x: graphc.where(x, x, -x), "boolean"),
        (lambda x: x.masked_fill(x, 0.0), "boolean masks"),
        (lambda x: gF.cross_entropy(x, graphc.tensor([0, 1], dtype=graphc.int32)), "Long"),
        (lambda x: x.t().view(-1), ".reshape(...)"),
        (lambda x: x.view(3.0, 2), "must be tuple of ints"),
    ],
)
def test_checks_fire_while_tracing(fn, message):
    with pytest.raises((RuntimeError, TypeError), match=message.replace("(", r"\(").replace(")", r"\)")):
        graphc.trace(fn, graphc.ones(2, 3))


def test_checks_fire_in_compiled_functions():
    step = graphc.compile(lambda x: graphc.where(x, x, -x), backend="interp")
    for _ in range(2):  # the first call runs eagerly, the second traces
        with pytest.raises(RuntimeError, match="boolean"):
            step(graphc.ones(3))


LAYOUTS = {
    "fresh": lambda lib: lib.ones(2, 3),
    "transposed": lambda lib: lib.ones(2, 3).t(),
    "transposed back": lambda lib: lib.ones(2, 3).t().t(),
    "expanded": lambda lib: lib.ones(3, 1).expand(3, 4),
    "column slice": lambda lib: lib.ones(4, 4)[:, 1:3],
    "row slice": lambda lib: lib.ones(4, 4)[1:3],
    "contiguous copy": lambda lib: lib.ones(2, 3).t().contiguous(),
    "reshaped transpose": lambda lib: lib.ones(2, 3).t().reshape(6),
    "size-1 dims": lambda lib: lib.ones(3, 1).t(),
}


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_is_contiguous_like_torch(name):
    make = LAYOUTS[name]
    assert make(graphc).is_contiguous() == make(torch).is_contiguous()


def test_view_after_contiguous_traces():
    graph = graphc.trace(lambda x: x.t().contiguous().view(-1), graphc.ones(2, 3))
    assert graph.outputs[0].shape == (6,)
