"""repr like PyTorch's, conversions, creation, devices and random numbers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import graphc

REPR_CASES = [
    "tensor([[1, 2], [3, 4]])",
    "tensor(4.)",
    "tensor(3)",
    "tensor(True)",
    "tensor([True, False])",
    "tensor([0.5, 2.0, -1.25])",
    "tensor([1.0, 2.0, 3.0])",
    "tensor([1e-5, 1.0])",
    "tensor([1e9, 1.0])",
    "tensor([[1.5, 2.0], [3.0, 4.0]], dtype=X.float64)",
    "tensor([1, 2], dtype=X.int32)",
    "tensor([1, 2], dtype=X.uint8)",
    "tensor([])",
    "X.zeros(2, 0)",
    "X.arange(2000.0)",
    "X.arange(24).reshape(2, 3, 4)",
    "X.arange(40.0) / 7",
    "tensor([float('nan'), float('inf'), 1.5])",
]


@pytest.mark.parametrize("expr", REPR_CASES)
def test_repr_matches_torch(expr):
    t_expr = expr.replace("X.", "torch.") if expr.startswith("X.") else "torch." + expr.replace("X.", "torch.")
    g_expr = expr.replace("X.", "graphc.") if expr.startswith("X.") else "graphc." + expr.replace("X.", "graphc.")
    expected = repr(eval(t_expr)).replace("torch.", "graphc.")
    assert repr(eval(g_expr)) == expected


def test_repr_autograd_suffixes():
    x = graphc.tensor([1.0, 2.0], requires_grad=True)
    assert repr(x) == "tensor([1., 2.], requires_grad=True)"
    assert repr(x * 2) == "tensor([2., 4.], grad_fn=<MulBackward0>)"


def test_conversions_and_properties():
    x = graphc.tensor([[1.5, -2.0], [3.0, 4.0]])
    assert x.shape == (2, 2) and x.size(1) == 2 and x.dim() == 2 and x.ndim == 2 and x.numel() == 4
    assert repr(x.shape) == "graphc.Size([2, 2])"
    assert x.dtype is graphc.float32 and x.element_size() == 4 and x.is_floating_point()
    assert x.long().tolist() == [[1, -2], [3, 4]]
    assert x.int().dtype is graphc.int32 and x.double().dtype is graphc.float64 and x.bool().dtype is graphc.bool
    assert x.type_as(graphc.tensor([1])).dtype is graphc.int64
    assert x.to(graphc.float64).dtype is graphc.float64
    assert x[0, 1].item() == -2.0 and float(x[1, 1]) == 4.0 and int(x[1, 0]) == 3
    assert len(x) == 2 and [r.tolist() for r in x] == [[1.5, -2.0], [3.0, 4.0]]
    assert {x: 1}[x] == 1
    assert np.asarray(x).shape == (2, 2)


def test_numpy_and_from_numpy_share_memory():
    arr = np.arange(4, dtype=np.float32)
    t = graphc.from_numpy(arr)
    arr[0] = 10
    assert t[0].item() == 10
    t.numpy()[1] = 20
    assert arr[1] == 20
    assert graphc.as_tensor(arr).numpy() is arr or np.shares_memory(graphc.as_tensor(arr).numpy(), arr)
    copy = graphc.tensor(arr)
    arr[2] = 30
    assert copy[2].item() == 2


def test_data_attribute_shares_and_replaces():
    w = graphc.ones(3, requires_grad=True)
    w.data.mul_(2)
    assert w.tolist() == [2.0, 2.0, 2.0]
    w.data = graphc.zeros(3)
    assert w.tolist() == [0.0, 0.0, 0.0] and w.requires_grad


def test_creation_matches_torch():
    pairs = [
        (graphc.zeros(2, 3), torch.zeros(2, 3)),
        (graphc.ones((2,), dtype=graphc.int64), torch.ones((2,), dtype=torch.int64)),
        (graphc.full((2, 2), 7), torch.full((2, 2), 7)),
        (graphc.full((2,), 1.5), torch.full((2,), 1.5)),
        (graphc.arange(5), torch.arange(5)),
        (graphc.arange(1, 2, 0.25), torch.arange(1, 2, 0.25)),
        (graphc.linspace(0, 1, 5), torch.linspace(0, 1, 5)),
        (graphc.eye(3, 2), torch.eye(3, 2)),
        (
            graphc.zeros_like(graphc.ones(2, dtype=graphc.int32)),
            torch.zeros_like(torch.ones(2, dtype=torch.int32)),
        ),
        (graphc.tensor([1, 2.5]), torch.tensor([1, 2.5])),
        (graphc.tensor(np.ones(2)), torch.tensor(np.ones(2))),
    ]
    for g, t in pairs:
        assert g.tolist() == t.tolist() and str(g.dtype).split(".")[1] == str(t.dtype).split(".")[1]


def test_default_dtype():
    graphc.set_default_dtype(graphc.float64)
    try:
        assert graphc.tensor([1.0]).dtype is graphc.float64
        assert (graphc.tensor([1]) * 0.5).dtype is graphc.float64
    finally:
        graphc.set_default_dtype(graphc.float32)
    assert graphc.get_default_dtype() is graphc.float32


def test_devices():
    assert graphc.device("cuda:1").index == 1 and graphc.device("cpu").type == "cpu"
    assert repr(graphc.device("cuda", 0)) == "device(type='cuda', index=0)"
    assert graphc.device("cpu") == "cpu"
    x = graphc.ones(2)
    assert x.device == graphc.device("cpu") and x.to("cpu") is x and x.cpu() is x
    assert not graphc.cuda.is_available() and graphc.cuda.device_count() == 0
    assert not graphc.backends.mps.is_available()
    assert graphc.accelerator.current_accelerator() is None
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        x.cuda()
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        graphc.zeros(2, device="cuda")
    dev = graphc.device("cuda" if graphc.cuda.is_available() else "cpu")
    assert x.to(dev, non_blocking=True).device == dev


def test_random_is_seeded_and_distributed():
    graphc.manual_seed(3)
    a = graphc.randn(20000)
    graphc.manual_seed(3)
    b = graphc.randn(20000)
    assert a.tolist() == b.tolist()
    assert abs(a.mean().item()) < 0.03 and abs(a.std().item() - 1) < 0.03
    u = graphc.rand(20000)
    assert 0 <= u.min().item() and u.max().item() < 1 and abs(u.mean().item() - 0.5) < 0.01
    r = graphc.randint(2, 5, (1000,))
    assert r.dtype is graphc.int64 and set(r.tolist()) == {2, 3, 4}
    assert sorted(graphc.randperm(10).tolist()) == list(range(10))
    assert graphc.rand(3).tolist() != graphc.rand(3).tolist()
    g = graphc.Generator().manual_seed(1)
    assert graphc.rand(4, generator=g).tolist() == graphc.rand(4, generator=graphc.Generator().manual_seed(1)).tolist()
    p = graphc.full((10000,), 0.25)
    assert abs(graphc.bernoulli(p).mean().item() - 0.25) < 0.02
    w = graphc.empty(5000)
    w.normal_(2.0, 0.5)
    assert abs(w.mean().item() - 2.0) < 0.05
    w.uniform_(-1, 1)
    assert -1 <= w.min().item() and w.max().item() < 1
    assert graphc.randn_like(w).shape == w.shape and graphc.rand_like(w).dtype is w.dtype


def test_pickle_round_trip_keeps_data_dtype_and_leaf_flags():
    import pickle

    w = graphc.tensor([[1.5, 2.0]], dtype=graphc.float64, requires_grad=True)
    w.grad = graphc.ones(1, 2, dtype=graphc.float64)
    w2 = pickle.loads(pickle.dumps(w))
    assert w2.tolist() == w.tolist() and w2.dtype is graphc.float64 and w2.requires_grad
    assert w2.grad.tolist() == [[1.0, 1.0]]
    y = pickle.loads(pickle.dumps(w * 2))
    assert y.grad_fn is None and not y.requires_grad and y.tolist() == [[3.0, 4.0]]


def _fake_cuda_runtime():
    """The simulated CUDA runtime of tests/device (host memory as the device)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "device" / "fake_cuda.py"
    spec = importlib.util.spec_from_file_location("_graphc_fake_cuda", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.FakeCudaRuntime()


def test_device_labels_and_mixing_errors_with_a_registered_runtime(monkeypatch):
    monkeypatch.setattr(graphc.cuda, "_runtime", _fake_cuda_runtime())
    assert graphc.cuda.is_available() and graphc.accelerator.current_accelerator() == "cuda:0"
    x = graphc.ones(2, device="cuda")
    assert x.device == graphc.device("cuda", 0) and x.is_cuda
    assert (x * 2).device.type == "cuda" and graphc.zeros_like(x).device.type == "cuda"
    assert (x * graphc.tensor(3.0)).tolist() == [
        3.0,
        3.0,
    ]  # CPU scalars mix, as in torch
    assert repr(x) == "tensor([1., 1.], device='cuda:0')"
    with pytest.raises(RuntimeError, match="same device") as err:
        x + graphc.ones(2)
    assert "cuda:0" in str(err.value) and "cpu" in str(err.value) and "test_repr_misc.py" in str(err.value)
    w = graphc.ones(2, requires_grad=True)
    wc = w.to("cuda")
    assert wc.device.type == "cuda" and w.device.type == "cpu"
    (wc * x).sum().backward()
    assert w.grad.tolist() == [1.0, 1.0]
    assert x.cpu().device == "cpu" and x.to("cuda:0") is x
