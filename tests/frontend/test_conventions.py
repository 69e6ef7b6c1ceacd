"""PyTorch conventions that ported programs rely on: `nn.modules.*` import
paths, `nn.parallel.DataParallel`, `backends` flags, Tensor device/layout
properties, `Tensor.select` and `randint`'s argument forms."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from frontend_helpers import assert_same, pair

import graphc
import graphc.nn as nn

# torch.nn.modules.<submodule>: the classes graphc re-exports there.
MODULE_PATHS = {
    "module": ["Module"],
    "linear": ["Bilinear", "Identity", "Linear"],
    "flatten": ["Flatten", "Unflatten"],
    "conv": ["Conv1d", "Conv2d", "ConvTranspose2d"],
    "activation": ["GELU", "LeakyReLU", "ReLU", "Sigmoid", "Softmax", "Tanh"],
    "loss": ["BCEWithLogitsLoss", "CrossEntropyLoss", "L1Loss", "MSELoss", "NLLLoss"],
    "batchnorm": ["BatchNorm1d", "BatchNorm2d"],
    "instancenorm": ["InstanceNorm1d", "InstanceNorm2d"],
    "normalization": ["GroupNorm", "LayerNorm", "RMSNorm"],
    "dropout": ["Dropout", "Dropout1d", "Dropout2d"],
    "pooling": ["AdaptiveAvgPool2d", "AvgPool2d", "MaxPool1d", "MaxPool2d"],
    "rnn": ["GRU", "GRUCell", "LSTM", "LSTMCell", "RNN", "RNNCell"],
    "sparse": ["Embedding"],
    "container": ["ModuleDict", "ModuleList", "Sequential"],
}


@pytest.mark.parametrize("sub", sorted(MODULE_PATHS))
def test_nn_modules_paths_reexport_the_same_classes(sub):
    mod = importlib.import_module(f"graphc.nn.modules.{sub}")
    tmod = importlib.import_module(f"torch.nn.modules.{sub}")
    for name in MODULE_PATHS[sub]:
        assert hasattr(tmod, name), f"torch.nn.modules.{sub} has no {name}"
        assert getattr(mod, name) is getattr(nn, name), f"graphc.nn.modules.{sub}.{name}"
    assert set(mod.__all__) <= set(nn.__all__)
    assert set(mod.__all__) <= set(dir(tmod)), f"names torch.nn.modules.{sub} lacks"


def test_nn_modules_from_import_form():
    from graphc.nn.modules.container import Sequential
    from graphc.nn.modules.linear import Linear
    from graphc.nn.modules.module import Module

    m = Sequential(Linear(2, 3))
    assert isinstance(m, Module) and isinstance(m[0], nn.Linear)
    assert graphc.nn.modules.Module is nn.Module


def _dp_pair():
    torch.manual_seed(0)
    tm = torch.nn.Linear(3, 2).double()
    gm = nn.Linear(3, 2).double()
    gm.load_state_dict({k: graphc.tensor(v.detach().numpy()) for k, v in tm.state_dict().items()})
    return nn.DataParallel(gm), torch.nn.DataParallel(tm)


def test_data_parallel_state_dict_and_repr():
    g, t = _dp_pair()
    assert list(g.state_dict()) == list(t.state_dict()) == ["module.weight", "module.bias"]
    assert [n for n, _ in g.named_parameters()] == [n for n, _ in t.named_parameters()]
    assert repr(g) == repr(t).replace("torch.float64", "graphc.float64")
    assert isinstance(g.module, nn.Linear) and g.dim == 0
    assert nn.parallel.DataParallel is nn.DataParallel
    # a plain model's state dict loads into the wrapper's module, and back
    plain = nn.Linear(3, 2)
    plain.load_state_dict({k[len("module.") :]: v for k, v in g.state_dict().items()})
    np.testing.assert_array_equal(plain.weight.detach().numpy(), g.module.weight.detach().numpy())


def test_data_parallel_forward_and_grad():
    g, t = _dp_pair()
    x = np.random.default_rng(0).standard_normal((4, 3))
    gx, tx = pair(x, requires_grad=True)
    go, to = g(gx), t(tx)
    assert_same(go, to, rtol=1e-12)
    go.square().sum().backward()
    to.square().sum().backward()
    assert_same(gx.grad, tx.grad, rtol=1e-9)
    assert_same(g.module.weight.grad, t.module.weight.grad, rtol=1e-9)


def test_data_parallel_compiled():
    g, _ = _dp_pair()
    x = graphc.tensor(np.random.default_rng(1).standard_normal((4, 3)))
    f = graphc.compile(lambda v: g(v).relu().sum(1))
    eager = g(x).relu().sum(1)
    for _ in range(3):  # eager, then traced and compiled, then cached
        np.testing.assert_allclose(f(x).detach().numpy(), eager.detach().numpy(), rtol=1e-12)


def test_distributed_data_parallel_needs_a_process_group():
    # torch's message; multi-process tests are in tests/distributed
    with pytest.raises(ValueError, match="Default process group has not been initialized"):
        nn.parallel.DistributedDataParallel(nn.Linear(2, 2))


def test_backends_flags():
    b = graphc.backends
    for name in ("benchmark", "deterministic", "enabled", "allow_tf32"):
        assert getattr(b.cudnn, name) == getattr(torch.backends.cudnn, name) or name == "allow_tf32"
    old = b.cudnn.benchmark, b.cudnn.deterministic, b.cuda.matmul.allow_tf32
    try:
        b.cudnn.benchmark = True
        b.cudnn.deterministic = True
        b.cuda.matmul.allow_tf32 = True
        assert b.cudnn.benchmark and b.cudnn.deterministic and b.cuda.matmul.allow_tf32
    finally:
        b.cudnn.benchmark, b.cudnn.deterministic, b.cuda.matmul.allow_tf32 = old
    assert b.mps.is_available() is False
    assert isinstance(b.cudnn.is_available(), bool)


def test_tensor_device_and_layout_properties():
    g, t = pair(np.ones((2, 3)))
    for name in ("is_cpu", "is_cuda", "is_meta", "is_mps", "is_xpu", "is_sparse", "is_quantized"):
        assert getattr(g, name) is getattr(t, name), name


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("dim,index", [(0, 1), (1, -1), (-1, 0), (2, 3), (-3, -2)])
def test_select_values(dtype, dim, index):
    x = np.random.default_rng(0).standard_normal((3, 4, 5)).astype(dtype)
    g, t = pair(x)
    assert_same(g.select(dim, index), t.select(dim, index), rtol=0, atol=0)
    assert_same(graphc.select(g, dim, index), torch.select(t, dim, index), rtol=0, atol=0)


def test_select_grad_and_1d():
    x = np.random.default_rng(1).standard_normal((3, 4))
    g, t = pair(x, requires_grad=True)
    (g.select(1, 2) * g.select(0, -1)[:3]).sum().backward()
    (t.select(1, 2) * t.select(0, -1)[:3]).sum().backward()
    assert_same(g.grad, t.grad, rtol=1e-9)
    g1, t1 = pair(np.arange(4.0))
    assert_same(g1.select(0, 2), t1.select(0, 2))


def test_select_compiled():
    x = graphc.tensor(np.random.default_rng(2).standard_normal((3, 4)))
    f = graphc.compile(lambda v: v.select(1, 1) + v.select(0, -1)[:3])
    eager = x.select(1, 1) + x.select(0, -1)[:3]
    for _ in range(3):
        np.testing.assert_array_equal(f(x).numpy(), eager.numpy())


def test_select_errors():
    g, t = pair(np.zeros((2, 3)))
    for args in [(1, 3), (0, -3)]:
        with pytest.raises(IndexError) as te:
            t.select(*args)
        with pytest.raises(IndexError, match="out of range") as ge:
            g.select(*args)
        assert "index" in str(te.value) and "out of range" in str(te.value)
        assert f"index {args[1]} out of range for tensor of size [2, 3]" in str(ge.value)
    with pytest.raises(IndexError):
        g.select(2, 0)
    with pytest.raises(IndexError):
        graphc.tensor(1.0).select(0, 0)


@pytest.mark.parametrize(
    "args,kwargs",
    [
        ((10, (3,)), {}),
        ((10,), {"size": (3,)}),
        ((2, 5, (4, 2)), {}),
        ((), {"low": 0, "high": 10, "size": (3,)}),
        ((), {"high": 7, "size": (2, 2)}),
        ((3, 4, (5,)), {"dtype": "int32"}),
    ],
)
def test_randint_forms(args, kwargs):
    def call(mod):
        kw = dict(kwargs)
        if "dtype" in kw:
            kw["dtype"] = getattr(mod, kw["dtype"])
        return mod.randint(*args, **kw)

    g, t = call(graphc), call(torch)
    assert tuple(g.shape) == tuple(t.shape)
    assert str(g.dtype).split(".")[-1] == str(t.dtype).split(".")[-1]
    low = kwargs.get("low", args[0] if len(args) == 3 else 0)
    high = kwargs.get("high", args[1] if len(args) == 3 else (args[0] if args else None))
    v = g.numpy()
    assert v.min() >= low and v.max() < high


def test_randint_device_and_errors():
    assert graphc.randint(5, (2,), device="cpu").device.type == "cpu"
    with pytest.raises(RuntimeError, match="expects 'from' to be less than 'to'"):
        graphc.randint(5, 5, (2,))
    with pytest.raises(TypeError):
        graphc.randint(5)


@pytest.fixture
def fake_cuda(monkeypatch):
    """graphc on the simulated CUDA runtime of tests/device/fake_cuda.py."""
    sys.path.insert(0, str(Path(__file__).parent.parent / "device"))
    try:
        from fake_cuda import FakeCudaRuntime
    finally:
        sys.path.pop(0)
    monkeypatch.setattr(graphc.cuda, "_runtime", FakeCudaRuntime())


@pytest.fixture
def restore_default_device():
    yield
    graphc.set_default_device(None)


def test_default_device_is_cpu():
    assert graphc.get_default_device() == graphc.device("cpu")
    assert repr(graphc.get_default_device()) == repr(torch.get_default_device())


def test_set_default_device_cpu(restore_default_device):
    graphc.set_default_device("cpu")
    torch.set_default_device("cpu")
    try:
        assert repr(graphc.get_default_device()) == repr(torch.get_default_device())
        assert graphc.zeros(2).device == "cpu"
    finally:
        torch.set_default_device(None)


def test_set_default_device_cuda(fake_cuda, restore_default_device):
    graphc.set_default_device("cuda")
    assert graphc.get_default_device() == graphc.device("cuda", 0)
    made = [
        graphc.zeros(2),
        graphc.ones(2, 3),
        graphc.full((2,), 1.5),
        graphc.tensor([1.0, 2.0]),
        graphc.arange(3),
        graphc.eye(2),
        graphc.rand(2),
        graphc.randn(2),
        graphc.randint(5, (2,)),
    ]
    for x in made:
        assert x.is_cuda and not x.is_cpu and x.device == graphc.device("cuda", 0)
    assert graphc.zeros(2, device="cpu").is_cpu  # an explicit device wins
    assert graphc.from_numpy(np.zeros(2)).is_cpu  # as in PyTorch
    host = graphc.zeros(2, device="cpu")
    assert graphc.zeros_like(host).is_cpu  # *_like keep the template's device
    x = graphc.arange(4.0)
    f = graphc.compile(lambda v: v * graphc.ones(4))
    for _ in range(3):
        out = f(x)
        assert out.is_cuda
        np.testing.assert_array_equal(out.cpu().numpy(), np.arange(4.0))
    graphc.set_default_device(None)
    assert graphc.get_default_device() == "cpu" and graphc.zeros(1).is_cpu


def test_compiled_function_sees_default_device_change(fake_cuda, restore_default_device):
    f = graphc.compile(lambda v: graphc.zeros(2) + v.sum())
    x = graphc.tensor(1.0)
    for _ in range(3):
        assert f(x).is_cpu
    graphc.set_default_device("cuda")
    xc = graphc.tensor(1.0)
    for _ in range(3):
        assert f(xc).is_cuda


def test_set_default_device_without_cuda_fails_at_creation(restore_default_device):
    if graphc.cuda.is_available():
        pytest.skip("a CUDA runtime is present")
    graphc.set_default_device("cuda")
    with pytest.raises(graphc.errors.DeviceError, match="CUDA is not available"):
        graphc.zeros(2)


def test_default_dtype_round_trip():
    assert graphc.get_default_dtype() is graphc.float32
    graphc.set_default_dtype(graphc.float64)
    try:
        assert graphc.get_default_dtype() is graphc.float64 and graphc.zeros(1).dtype is graphc.float64
    finally:
        graphc.set_default_dtype(graphc.float32)
    with pytest.raises(TypeError, match="only floating-point types"):
        graphc.set_default_dtype(graphc.int64)


def test_data_parallel_module_compiled_and_trained():
    g, t = _dp_pair()
    x = np.random.default_rng(3).standard_normal((4, 3))
    gx, tx = pair(x)
    f = graphc.compile(g)
    for _ in range(3):
        assert_same(f(gx), t(tx), rtol=1e-12)
    f(gx).square().sum().backward()
    t(tx).square().sum().backward()
    assert_same(g.module.weight.grad, t.module.weight.grad, rtol=1e-9)
    assert_same(g.module.bias.grad, t.module.bias.grad, rtol=1e-9)
