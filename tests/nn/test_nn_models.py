"""Reference models: names, shapes and numbers against the same models
written with torch.nn (torchvision's ResNet-18 rebuilt from torch.nn
modules in tests/torch_resnet.py)."""

import numpy as np
import pytest
import torch
import torch.nn as tnn
import torch.nn.functional as TF
from nn_testutil import assert_close, compare_modules, copy_weights, randn
from torch_resnet import TorchResNet18

import graphc
from graphc.vision import models


def _shapes(module):
    return [(k, tuple(v.shape)) for k, v in module.state_dict().items()]


def test_resnet18_state_dict_matches_torchvision_layout():
    g, t = models.resnet18(), TorchResNet18()
    assert _shapes(g) == _shapes(t)
    assert len(g.state_dict()) == 122
    assert [n for n, _ in g.named_modules()] == [n for n, _ in t.named_modules()]
    assert sum(p.numel() for p in g.parameters()) == 11689512
    assert g.fc.in_features == 512
    assert repr(g.layer2) == repr(t.layer2).replace("TorchBasicBlock", "BasicBlock")


def test_resnet18_init_and_custom_classes():
    g = models.resnet18(num_classes=7)
    assert g.fc.weight.shape == (7, 512)
    w = g.conv1.weight.detach().numpy()
    fan_out = 64 * 7 * 7
    assert abs(w.std() - np.sqrt(2.0 / fan_out)) < 0.1 * np.sqrt(2.0 / fan_out)
    np.testing.assert_array_equal(g.layer1[0].bn2.weight.detach().numpy(), 1.0)


def test_resnet18_loads_torch_weights_and_matches_output():
    torch.manual_seed(0)
    t, g = TorchResNet18(num_classes=10).eval(), models.resnet18(num_classes=10).eval()
    # Make the running statistics non-trivial before copying.
    for module in t.modules():
        if isinstance(module, tnn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    copy_weights(g, t)
    x = randn(1, 3, 32, 32, seed=1)
    with torch.no_grad():
        expected = t(torch.tensor(x))
    with graphc.no_grad():
        actual = g(graphc.tensor(x))
    assert_close(actual, expected, rtol=1e-3, atol=1e-4)


def test_resnet18_replace_fc_and_weights_argument():
    g = models.resnet18()
    g.fc = graphc.nn.Linear(g.fc.in_features, 3)
    assert list(g.state_dict())[-2:] == [
        "fc.weight",
        "fc.bias",
    ] and g.fc.weight.shape == (3, 512)
    again = models.resnet18(num_classes=3, weights=g.state_dict())
    np.testing.assert_array_equal(again.fc.weight.detach().numpy(), g.fc.weight.detach().numpy())
    with pytest.raises(ValueError, match="state dict"):
        models.resnet18(weights="IMAGENET1K_V9")


class TorchNet(tnn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = tnn.Conv2d(1, 10, kernel_size=5)
        self.conv2 = tnn.Conv2d(10, 20, kernel_size=5)
        self.fc1 = tnn.Linear(320, 50)
        self.fc2 = tnn.Linear(50, 10)

    def forward(self, x):
        x = TF.relu(TF.max_pool2d(self.conv1(x), 2))
        x = TF.relu(TF.max_pool2d(self.conv2(x), 2))
        x = TF.relu(self.fc1(x.view(-1, 320)))
        return TF.log_softmax(self.fc2(x), dim=1)


class TorchCifarNet(tnn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = tnn.Conv2d(3, 6, 5)
        self.pool = tnn.MaxPool2d(2, 2)
        self.conv2 = tnn.Conv2d(6, 16, 5)
        self.fc1 = tnn.Linear(400, 120)
        self.fc2 = tnn.Linear(120, 84)
        self.fc3 = tnn.Linear(84, 10)

    def forward(self, x):
        x = self.pool(TF.relu(self.conv1(x)))
        x = self.pool(TF.relu(self.conv2(x)))
        x = torch.flatten(x, 1)
        return self.fc3(TF.relu(self.fc2(TF.relu(self.fc1(x)))))


class TorchMLP(tnn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = (
            tnn.Linear(784, 128),
            tnn.Linear(128, 64),
            tnn.Linear(64, 10),
        )

    def forward(self, x):
        x = x.reshape(x.shape[0], -1)
        return self.fc3(TF.relu(self.fc2(TF.relu(self.fc1(x)))))


@pytest.mark.parametrize(
    "g_cls,t_cls,shape",
    [
        (models.Net, TorchNet, (3, 1, 28, 28)),
        (models.CifarNet, TorchCifarNet, (2, 3, 32, 32)),
        (models.MLP, TorchMLP, (4, 1, 28, 28)),
    ],
)
def test_reference_cnns_match_torch(g_cls, t_cls, shape):
    torch.manual_seed(0)
    g, t = g_cls(), t_cls()
    assert _shapes(g) == _shapes(t)
    compare_modules(g, t, randn(*shape, seed=2), rtol=1e-3, atol=1e-4)
