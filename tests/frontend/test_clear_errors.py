"""Mistakes that used to fail with an unrelated exception (ZeroDivisionError,
AttributeError, RecursionError, a traceback from deep inside) now raise the
exception class PyTorch raises, with a message that names the problem."""

from __future__ import annotations

import copy
import io

import numpy as np
import pytest
import safetensors.numpy
import torch

import graphc
import graphc.nn as gnn
import graphc.nn.functional as gF
from graphc.serialization import CheckpointError


@pytest.mark.parametrize("chunks", [0, -1])
def test_chunk_needs_a_positive_count(chunks):
    with pytest.raises(RuntimeError, match="chunk expects `chunks` to be greater than 0"):
        torch.ones(4).chunk(chunks)
    with pytest.raises(RuntimeError, match=f"chunk expects `chunks` to be greater than 0, got: {chunks}"):
        graphc.ones(4).chunk(chunks)


LIST = [[1.0, 2.0], [3.0, 4.0]]

# name -> (call taking (library, nn module), text of graphc's message)
NOT_A_TENSOR = {
    "matmul other": (lambda lib, nn: lib.matmul(lib.ones(2, 2), LIST), "matmul(): argument 'other' (position 2)"),
    "matmul input": (lambda lib, nn: lib.matmul(LIST, lib.ones(2, 2)), "matmul(): argument 'input' (position 1)"),
    # Methods number their arguments after self, as in torch.
    "Tensor.matmul": (lambda lib, nn: lib.ones(2, 2).matmul(LIST), "matmul(): argument 'other' (position 1)"),
    "Tensor.mm": (lambda lib, nn: lib.ones(2, 2).mm(LIST), "mm(): argument 'mat2' (position 1)"),
    "mm": (lambda lib, nn: lib.mm(lib.ones(2, 2), LIST), "mm(): argument 'mat2'"),
    "bmm": (lambda lib, nn: lib.bmm(lib.ones(1, 2, 2), LIST), "bmm(): argument 'mat2'"),
    "Linear": (lambda lib, nn: nn.Linear(2, 2)(LIST), "Linear(): argument 'input' (position 1) must be Tensor"),
    "F.linear": (lambda lib, nn: nn.functional.linear(LIST, lib.ones(2, 2)), "linear(): argument 'input'"),
    "Conv2d": (lambda lib, nn: nn.Conv2d(1, 1, 1)(LIST), "Conv2d(): argument 'input'"),
    "F.relu": (lambda lib, nn: nn.functional.relu(LIST), "relu(): argument 'input'"),
    "F.cross_entropy": (
        lambda lib, nn: nn.functional.cross_entropy(LIST, lib.tensor([0, 1])),
        "cross_entropy(): argument 'input'",
    ),
    "exp": (lambda lib, nn: lib.exp(LIST), "exp(): argument 'input'"),
    "sum": (lambda lib, nn: lib.sum(LIST), "sum(): argument 'input'"),
    "add": (lambda lib, nn: lib.add(lib.ones(2), [1.0, 2.0]), "expected a Tensor or a Python number"),
    "where condition": (lambda lib, nn: lib.where([True, False], lib.ones(2), lib.zeros(2)), "'condition'"),
}


@pytest.mark.parametrize("name", list(NOT_A_TENSOR))
def test_a_list_where_a_tensor_is_required_is_a_type_error(name):
    call, text = NOT_A_TENSOR[name]
    with pytest.raises(TypeError):
        call(torch, torch.nn)
    with pytest.raises(TypeError) as err:
        call(graphc, gnn)
    assert text in str(err.value) and "list" in str(err.value)
    assert "test_clear_errors.py:" in str(err.value)


def test_softmax_of_a_list_is_a_type_error():
    # torch's Python-level F.softmax fails here with an AttributeError.
    with pytest.raises(TypeError, match=r"softmax\(\): argument 'input' \(position 1\) must be Tensor, not list"):
        gF.softmax(LIST, 0)


# Zero-size batches: eager works, so compiled code must too.
class _Net(gnn.Module):
    def __init__(self):
        super().__init__()
        self.conv = gnn.Conv2d(1, 4, 3, padding=1)
        self.fc = gnn.Linear(4 * 4 * 4, 10)

    def forward(self, x):
        x = gF.max_pool2d(gF.relu(self.conv(x)), 2)
        return self.fc(x.flatten(1))


EMPTY = {
    "conv2d": (lambda x: gF.conv2d(x, graphc.ones(4, 1, 3, 3), stride=2), (0, 1, 8, 8)),
    "elementwise": (lambda x: (x.relu() * 2 + 1).exp(), (0, 5)),
    "sum over the empty dim": (lambda x: x.sum(0), (0, 5)),
    "matmul with inner size 0": (lambda x: x @ graphc.ones(0, 4), (3, 0)),
    "softmax": (lambda x: x.softmax(1), (0, 5)),
    "cat": (lambda x: graphc.cat([x, x + 1]), (0, 3)),
    "empty middle dim": (lambda x: (x * 2).sum(0), (4, 0, 3)),
}


@pytest.mark.parametrize("backend", ["interp", "llvm"])
@pytest.mark.parametrize("name", list(EMPTY))
def test_compiled_code_handles_zero_size_tensors(name, backend):
    fn, shape = EMPTY[name]
    x = graphc.randn(*shape)
    expected = fn(x)
    compiled = graphc.compile(fn, backend=backend)
    for _ in range(3):  # eager first call, then traced and compiled
        got = compiled(x)
        assert tuple(got.shape) == tuple(expected.shape)
        np.testing.assert_allclose(got.numpy(), expected.numpy())


def test_compiled_model_and_training_step_with_a_batch_of_zero():
    graphc.manual_seed(0)
    model = _Net()
    optimizer = graphc.optim.SGD(model.parameters(), lr=0.1)

    def step(x, y):
        optimizer.zero_grad()
        loss = gF.cross_entropy(model(x), y, reduction="sum")
        loss.backward()
        optimizer.step()
        return loss

    forward, train = graphc.compile(model), graphc.compile(step)
    x, y = graphc.randn(0, 1, 8, 8), graphc.zeros(0, dtype=graphc.int64)
    before = [p.detach().clone() for p in model.parameters()]
    for _ in range(3):
        assert tuple(forward(x).shape) == (0, 10)
        assert train(x, y).item() == 0.0
    for old, new in zip(before, model.parameters()):
        np.testing.assert_array_equal(old.numpy(), new.detach().numpy())


def test_flatten_of_an_empty_batch_keeps_the_merged_size():
    assert tuple(graphc.zeros(0, 4, 4, 4).flatten(1).shape) == tuple(torch.zeros(0, 4, 4, 4).flatten(1).shape)


# Checkpoints: a crafted file fails as a corrupt checkpoint, not by recursion.
def _crafted(structure: str) -> io.BytesIO:
    data = safetensors.numpy.save(
        {"x": np.zeros(1, np.float32)}, metadata={"format": "graphc", "graphc.structure": structure}
    )
    return io.BytesIO(data)


@pytest.mark.parametrize("depth", [100_000, 300])
def test_deeply_nested_checkpoint_structure_is_corrupt(depth):
    with pytest.raises(CheckpointError, match="not a valid graphc checkpoint.*nested"):
        graphc.load(_crafted('{"$list": [' * depth + "1" + "]}" * depth))


def test_deeply_nested_checkpoint_header_is_corrupt():
    header = ('{"a":' * 100_000 + "1" + "}" * 100_000).encode()
    data = len(header).to_bytes(8, "little") + header
    with pytest.raises(CheckpointError, match="nested too deeply"):
        graphc.load(io.BytesIO(data))


@pytest.mark.parametrize(
    "structure",
    ['{"$dtype": "save"}', '{"$list": 3}', '{"$dict": [[{"$list": []}, 1]]}', '{"$float": "abc"}', '{"$dict": [1]}'],
)
def test_malformed_checkpoint_structure_is_corrupt(structure):
    with pytest.raises(CheckpointError, match="not a valid graphc checkpoint"):
        graphc.load(_crafted(structure))


def test_nesting_a_real_checkpoint_might_have_round_trips():
    nested = [graphc.ones(2)]
    for _ in range(150):
        nested = {"inner": nested}
    buffer = io.BytesIO()
    graphc.save(nested, buffer)
    buffer.seek(0)
    loaded = graphc.load(buffer)
    for _ in range(150):
        loaded = loaded["inner"]
    assert loaded[0].tolist() == [1.0, 1.0]


def test_saving_a_reference_cycle_is_a_checkpoint_error():
    cycle = []
    cycle.append(cycle)
    with pytest.raises(CheckpointError, match="reference cycle"):
        graphc.save(cycle, io.BytesIO())


def test_compile_rejects_unknown_keywords_and_lists_the_valid_ones():
    with pytest.raises(TypeError) as err:
        graphc.compile(lambda x: x, bogus=1)
    assert "'bogus'" in str(err.value) and "backend" in str(err.value) and "fullgraph" in str(err.value)
    with pytest.raises(TypeError, match="'bogus'"):
        graphc.compile(bogus=1)
    # torch.compile's own options are accepted (and ignored).
    double = graphc.compile(lambda x: x * 2, mode="max-autotune", fullgraph=True, dynamic=False)
    assert double(graphc.ones(1)).item() == 2


@pytest.mark.parametrize("module", [graphc, graphc.cuda, graphc.ir])
def test_module_getattr_raises_attribute_error_for_unknown_names(module):
    assert not hasattr(module, "no_such_name")
    with pytest.raises(AttributeError, match="no_such_name"):
        module.no_such_name  # noqa: B018


def test_no_jit_attribute():
    assert hasattr(torch, "jit")
    assert not hasattr(graphc, "jit")


def test_compiled_module_attribute_lookup_before_init():
    compiled = graphc.compile(gnn.Linear(2, 3))
    assert compiled.in_features == 2 and not hasattr(compiled, "no_such_name")
    clone = copy.copy(compiled)  # copy looks attributes up on an empty instance
    assert clone.out_features == 3
