"""Module bookkeeping: registration, iteration, state dicts, modes, hooks,
containers and reprs, compared with torch.nn where it has an answer."""

from collections import OrderedDict

import numpy as np
import pytest
import torch
import torch.nn as tnn

import graphc
import graphc.nn.functional as F
from graphc import nn
from graphc.vision.models import Net


class Small(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(3, 4)
        self.bn = nn.BatchNorm1d(4)
        self.fc2 = nn.Linear(4, 2)
        self.register_buffer("scale", graphc.ones(2))
        self.register_buffer("scratch", graphc.zeros(2), persistent=False)

    def forward(self, x):
        return self.fc2(F.relu(self.bn(self.fc1(x)))) * self.scale


class TSmall(tnn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = tnn.Linear(3, 4)
        self.bn = tnn.BatchNorm1d(4)
        self.fc2 = tnn.Linear(4, 2)
        self.register_buffer("scale", torch.ones(2))
        self.register_buffer("scratch", torch.zeros(2), persistent=False)


def test_names_and_order_match_torch():
    g, t = Small(), TSmall()
    assert [n for n, _ in g.named_parameters()] == [n for n, _ in t.named_parameters()]
    assert [n for n, _ in g.named_buffers()] == [n for n, _ in t.named_buffers()]
    assert list(g.state_dict()) == list(t.state_dict())
    assert [n for n, _ in g.named_modules()] == [n for n, _ in t.named_modules()]
    assert [n for n, _ in g.named_children()] == [n for n, _ in t.named_children()]
    assert len(list(g.parameters())) == 6 and len(list(g.buffers())) == 5
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in g.parameters())


def test_shared_parameters_listed_once():
    m = nn.Sequential(nn.Linear(2, 2))
    m.add_module("again", m[0])
    assert len(list(m.parameters())) == 2
    assert len(list(m.named_parameters(remove_duplicate=False))) == 4


def test_setattr_routing_and_delattr():
    m = nn.Module()
    m.w = nn.Parameter(graphc.zeros(2))
    m.sub = nn.Linear(1, 1)
    m.plain = 3
    assert "w" in m._parameters and "sub" in m._modules and m.plain == 3
    with pytest.raises(TypeError, match="cannot assign"):
        m.w = graphc.zeros(2)
    m.w = None
    assert m.w is None and next(iter(m.named_parameters()))[0] == "sub.weight"
    del m.sub
    assert not hasattr(m, "sub")
    with pytest.raises(AttributeError, match="has no attribute 'missing'"):
        _ = m.missing
    assert "w" in dir(m)
    m.sub = 5  # reassign as a plain attribute after deletion
    assert m.sub == 5


def test_register_errors():
    m = nn.Module()
    with pytest.raises(KeyError, match="contain"):
        m.register_buffer("a.b", graphc.zeros(1))
    with pytest.raises(TypeError):
        m.register_parameter("p", graphc.zeros(1))
    with pytest.raises(TypeError):
        m.add_module("x", 3)


def test_get_submodule_and_parameter():
    net = nn.Sequential(OrderedDict(block=nn.Sequential(nn.Linear(2, 3), nn.ReLU())))
    assert isinstance(net.get_submodule("block.0"), nn.Linear)
    assert net.get_parameter("block.0.bias").shape == (3,)
    with pytest.raises(AttributeError):
        net.get_submodule("block.5")


def test_state_dict_round_trip_and_keys():
    a, b = Small(), Small()
    a.bn.running_mean.copy_(graphc.tensor([1.0, 2.0, 3.0, 4.0]))
    result = b.load_state_dict(a.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        np.testing.assert_array_equal(x.numpy(), y.numpy(), err_msg=name)
    assert "scratch" not in a.state_dict()
    # state_dict values are detached and share data with the parameters.
    assert not a.state_dict()["fc1.weight"].requires_grad
    assert a.state_dict(keep_vars=True)["fc1.weight"] is a.fc1.weight


def test_load_state_dict_keeps_parameter_objects():
    m = nn.Linear(2, 2)
    weight = m.weight
    m.load_state_dict({"weight": graphc.ones(2, 2), "bias": graphc.zeros(2)})
    assert m.weight is weight
    np.testing.assert_array_equal(m.weight.detach().numpy(), 1.0)


def test_load_state_dict_errors_list_keys_like_torch():
    g, t = nn.Linear(2, 3), tnn.Linear(2, 3)
    bad = {"weight": np.zeros((3, 3), np.float32), "x": np.zeros(1, np.float32)}
    with pytest.raises(RuntimeError) as g_err:
        g.load_state_dict({k: graphc.tensor(v) for k, v in bad.items()})
    with pytest.raises(RuntimeError) as t_err:
        t.load_state_dict({k: torch.tensor(v) for k, v in bad.items()})
    assert str(g_err.value) == str(t_err.value).replace("torch.Size", "graphc.Size")
    result = g.load_state_dict({"weight": graphc.zeros(3, 2), "x": graphc.zeros(1)}, strict=False)
    assert result.missing_keys == ["bias"] and result.unexpected_keys == ["x"]


def test_load_state_dict_shape_mismatch_even_when_not_strict():
    with pytest.raises(RuntimeError, match=r"size mismatch for weight: .*\[3, 1\].*\[3, 2\]"):
        nn.Linear(2, 3).load_state_dict({"weight": graphc.zeros(3, 1)}, strict=False)


def test_train_eval_propagates():
    m = Small()
    assert m.training and m.bn.training
    assert m.eval() is m
    assert not m.training and not m.bn.training and not m.fc2.training
    m.train()
    assert m.bn.training


def test_zero_grad_and_requires_grad():
    m = nn.Linear(3, 1)
    m(graphc.ones(2, 3)).sum().backward()
    assert m.weight.grad is not None
    m.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(m.weight.grad.numpy(), 0.0)
    m.zero_grad()
    assert m.weight.grad is None
    m.requires_grad_(False)
    assert not any(p.requires_grad for p in m.parameters())


def test_apply_visits_children_first():
    seen = []
    nn.Sequential(nn.Linear(1, 1), nn.ReLU()).apply(lambda mod: seen.append(type(mod).__name__))
    assert seen == ["Linear", "ReLU", "Sequential"]


def test_to_dtype_and_device_keep_parameter_objects():
    m = Small()
    weight = m.fc1.weight
    assert m.double() is m
    assert m.fc1.weight is weight and m.fc1.weight.dtype == graphc.float64
    assert m.bn.num_batches_tracked.dtype == graphc.int64  # integers are not cast
    m.to(graphc.float32)
    assert m.fc1.weight.dtype == graphc.float32
    m.to("cpu")
    m.cpu()
    assert m(graphc.ones(3, 3)).dtype == graphc.float32


def test_hooks():
    m = nn.Linear(2, 2)
    calls = []
    pre = m.register_forward_pre_hook(lambda mod, args: (args[0] * 0.0,))
    post = m.register_forward_hook(lambda mod, args, out: calls.append(out.shape) or out + 1.0)
    out = m(graphc.ones(1, 2))
    np.testing.assert_allclose(out.detach().numpy(), m.bias.detach().numpy()[None] + 1.0, rtol=1e-6)
    assert calls == [(1, 2)]
    pre.remove()
    post.remove()
    np.testing.assert_allclose(m(graphc.zeros(1, 2)).detach().numpy(), m.bias.detach().numpy()[None], rtol=1e-6)


def test_forward_not_implemented():
    with pytest.raises(NotImplementedError, match="forward"):
        nn.Module()(1)


def test_parameter_repr_and_defaults():
    p = nn.Parameter(graphc.tensor([1.0, 2.0]))
    assert p.requires_grad and isinstance(p, graphc.Tensor)
    assert repr(p).startswith("Parameter containing:\ntensor([1., 2.], requires_grad=True)")
    assert not nn.Parameter(graphc.zeros(1), requires_grad=False).requires_grad


def test_reprs_match_torch():
    pairs = [
        (nn.Linear(10, 20), tnn.Linear(10, 20)),
        (nn.Linear(3, 1, bias=False), tnn.Linear(3, 1, bias=False)),
        (nn.Conv2d(1, 10, kernel_size=5), tnn.Conv2d(1, 10, kernel_size=5)),
        (
            nn.Conv2d(2, 4, 3, stride=2, padding=1, dilation=2, groups=2, bias=False),
            tnn.Conv2d(2, 4, 3, stride=2, padding=1, dilation=2, groups=2, bias=False),
        ),
        (nn.Conv2d(1, 2, 3, padding="same"), tnn.Conv2d(1, 2, 3, padding="same")),
        (nn.Conv1d(2, 3, 3), tnn.Conv1d(2, 3, 3)),
        (nn.ConvTranspose2d(2, 3, 3, stride=2), tnn.ConvTranspose2d(2, 3, 3, stride=2)),
        (nn.MaxPool2d(2), tnn.MaxPool2d(2)),
        (nn.AvgPool2d(2), tnn.AvgPool2d(2)),
        (nn.AdaptiveAvgPool2d((1, 1)), tnn.AdaptiveAvgPool2d((1, 1))),
        (nn.BatchNorm2d(3), tnn.BatchNorm2d(3)),
        (nn.BatchNorm1d(3, momentum=None), tnn.BatchNorm1d(3, momentum=None)),
        (nn.LayerNorm(4), tnn.LayerNorm(4)),
        (nn.GroupNorm(2, 4), tnn.GroupNorm(2, 4)),
        (nn.Dropout(), tnn.Dropout()),
        (nn.Dropout(0.2), tnn.Dropout(0.2)),
        (nn.Embedding(3, 4, padding_idx=0), tnn.Embedding(3, 4, padding_idx=0)),
        (nn.Flatten(), tnn.Flatten()),
        (nn.Unflatten(1, (2, 2)), tnn.Unflatten(1, (2, 2))),
        (nn.ReLU(), tnn.ReLU()),
        (nn.ReLU(inplace=True), tnn.ReLU(inplace=True)),
        (nn.ELU(), tnn.ELU()),
        (nn.LeakyReLU(), tnn.LeakyReLU()),
        (nn.GELU(), tnn.GELU()),
        (nn.GELU("tanh"), tnn.GELU("tanh")),
        (nn.Softmax(dim=1), tnn.Softmax(dim=1)),
        (nn.LogSoftmax(1), tnn.LogSoftmax(1)),
        (nn.Softplus(), tnn.Softplus()),
        (nn.Hardtanh(), tnn.Hardtanh()),
        (nn.ReLU6(), tnn.ReLU6()),
        (nn.SiLU(), tnn.SiLU()),
        (nn.Sigmoid(), tnn.Sigmoid()),
        (nn.Tanh(), tnn.Tanh()),
        (nn.Identity(), tnn.Identity()),
        (nn.CrossEntropyLoss(), tnn.CrossEntropyLoss()),
        (nn.MSELoss(), tnn.MSELoss()),
        (nn.LSTM(3, 4, 2, batch_first=True), tnn.LSTM(3, 4, 2, batch_first=True)),
        (
            nn.GRU(3, 4, bidirectional=True, dropout=0.5, num_layers=2),
            tnn.GRU(3, 4, bidirectional=True, dropout=0.5, num_layers=2),
        ),
        (
            nn.RNN(2, 3, nonlinearity="relu", bias=False),
            tnn.RNN(2, 3, nonlinearity="relu", bias=False),
        ),
        (nn.Bilinear(2, 3, 4), tnn.Bilinear(2, 3, 4)),
        (
            nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Sequential(nn.Linear(3, 1))),
            tnn.Sequential(tnn.Linear(2, 3), tnn.ReLU(), tnn.Sequential(tnn.Linear(3, 1))),
        ),
        (
            nn.ModuleList([nn.Linear(2, 3), nn.Linear(2, 3), nn.ReLU()]),
            tnn.ModuleList([tnn.Linear(2, 3), tnn.Linear(2, 3), tnn.ReLU()]),
        ),
        (nn.ModuleDict({"a": nn.ReLU()}), tnn.ModuleDict({"a": tnn.ReLU()})),
    ]
    for g, t in pairs:
        assert repr(g) == repr(t)


def test_mnist_net_repr_matches_torch():
    class TNet(tnn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = tnn.Conv2d(1, 10, kernel_size=5)
            self.conv2 = tnn.Conv2d(10, 20, kernel_size=5)
            self.fc1 = tnn.Linear(320, 50)
            self.fc2 = tnn.Linear(50, 10)

    assert repr(Net()) == repr(TNet()).replace("TNet(", "Net(", 1)


def test_sequential_indexing_slicing_append():
    layers = [nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)]
    seq = nn.Sequential(*layers)
    assert len(seq) == 3 and seq[0] is layers[0] and seq[-1] is layers[2]
    head = seq[:2]
    assert isinstance(head, nn.Sequential) and len(head) == 2 and head[1] is layers[1]
    seq.append(nn.Sigmoid())
    assert len(seq) == 4 and [n for n, _ in seq.named_children()][-1] == "3"
    named = nn.Sequential(OrderedDict([("fc", nn.Linear(2, 2)), ("act", nn.Tanh())]))
    assert list(named.state_dict()) == ["fc.weight", "fc.bias"]
    assert named.fc is named[0]
    del seq[1]
    assert [type(m).__name__ for m in seq] == ["Linear", "Linear", "Sigmoid"]
    out = nn.Sequential(nn.Linear(2, 2), nn.ReLU())(graphc.ones(4, 2))
    assert out.shape == (4, 2)


def test_module_list_and_dict_and_parameter_list():
    ml = nn.ModuleList([nn.Linear(1, 1) for _ in range(3)])
    ml.append(nn.Linear(1, 2))
    assert len(ml) == 4 and len(list(ml.parameters())) == 8 and ml[-1].out_features == 2
    holder = nn.Module()
    holder.layers = ml
    assert "layers.3.weight" in holder.state_dict()
    md = nn.ModuleDict({"a": nn.Linear(1, 1)})
    md["b"] = nn.ReLU()
    assert list(md.keys()) == ["a", "b"] and "a" in md
    pl = nn.ParameterList([nn.Parameter(graphc.zeros(2)), graphc.ones(3)])
    assert len(list(pl.parameters())) == 2 and isinstance(pl[1], nn.Parameter)
    pd = nn.ParameterDict({"w": graphc.zeros(2)})
    assert list(dict(pd.named_parameters())) == ["w"]


def test_layer_input_shape_errors_name_layer_and_shapes():
    with pytest.raises(
        ValueError,
        match=r"Linear: expected input with last dimension in_features=3, got .*\(2, 4\)",
    ):
        nn.Linear(3, 1)(graphc.zeros(2, 4))
    with pytest.raises(ValueError, match=r"Conv2d: .*in_channels=3.*\(1, 2, 8, 8\)"):
        nn.Conv2d(3, 1, 3)(graphc.zeros(1, 2, 8, 8))
    with pytest.raises(ValueError, match=r"BatchNorm2d: .*\(2, 3\)"):
        nn.BatchNorm2d(3)(graphc.zeros(2, 3))
    with pytest.raises(ValueError, match=r"LSTM: .*\(5, 2, 7\)"):
        nn.LSTM(3, 4)(graphc.zeros(5, 2, 7))
    with pytest.raises(ValueError, match=r"MaxPool2d"):
        nn.MaxPool2d(2)(graphc.zeros(4, 4))


def _replace_first_layer(lib):
    class Net(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = lib.nn.Conv2d(1, 2, 3)
            self.scale = lib.nn.Parameter(lib.ones(1))
            self.fc = lib.nn.Linear(2, 2)
            self.bias = lib.nn.Parameter(lib.zeros(1))

    net = Net()
    net.conv1 = lib.nn.Conv2d(1, 2, 5)  # replaced child
    net.scale = lib.nn.Parameter(lib.ones(1) * 2)  # replaced parameter
    return net


def test_reassigned_child_and_parameter_keep_their_place_as_in_torch():
    g, t = _replace_first_layer(graphc), _replace_first_layer(torch)
    assert [n for n, _ in g.named_children()] == [n for n, _ in t.named_children()] == ["conv1", "fc"]
    assert [n for n, _ in g.named_parameters()] == [n for n, _ in t.named_parameters()]
    assert list(g.state_dict()) == list(t.state_dict())
    # The idiom that dropped the wrong layer: everything but the last child.
    kept = list(g.children())[:-1]
    assert len(kept) == 1 and kept[0] is g.conv1 and g.conv1.kernel_size == (5, 5)
