"""Reference models: the MNIST CNN, the CIFAR-style CNN, the MNIST MLP and
ResNet-18 with torchvision's exact module and parameter names, so that
torchvision state dicts load by name, and torchvision's pretrained ResNet-18
weights (`resnet18(weights="IMAGENET1K_V1")`)."""

from __future__ import annotations

import enum
from collections.abc import Mapping

import graphc
import graphc.nn.functional as F
from graphc import nn


class Net(nn.Module):
    """The MNIST CNN: two 5x5 convolutions with max pooling, two linear
    layers, log-probabilities out. Input [N, 1, 28, 28]."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 10, kernel_size=5)
        self.conv2 = nn.Conv2d(10, 20, kernel_size=5)
        self.fc1 = nn.Linear(320, 50)
        self.fc2 = nn.Linear(50, 10)

    def forward(self, x):
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.conv2(x), 2))
        x = x.view(-1, 320)
        x = F.relu(self.fc1(x))
        x = self.fc2(x)
        return F.log_softmax(x, dim=1)


class CifarNet(nn.Module):
    """The CIFAR-10 tutorial CNN. Input [N, 3, 32, 32], logits out."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = graphc.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


class MLP(nn.Module):
    """The MNIST multilayer perceptron 784-128-64-10 (logits out)."""

    def __init__(self, in_features: int = 784, num_classes: int = 10):
        super().__init__()
        self.fc1 = nn.Linear(in_features, 128)
        self.fc2 = nn.Linear(128, 64)
        self.fc3 = nn.Linear(64, num_classes)

    def forward(self, x):
        x = x.reshape(x.shape[0], -1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


def _conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 conv-bn layers with a residual connection (ResNet-18/34)."""

    expansion = 1

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
    ):
        super().__init__()
        self.conv1 = _conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """torchvision's ResNet for BasicBlock: stem, layer1..layer4, avgpool, fc."""

    def __init__(self, block, layers: list[int], num_classes: int = 1000):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def _make_layer(self, block, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(
                    self.inplanes,
                    planes * block.expansion,
                    kernel_size=1,
                    stride=stride,
                    bias=False,
                ),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = graphc.flatten(self.avgpool(x), 1)
        return self.fc(x)


# Where torchvision publishes its pretrained weights (tests point this at a
# local server).
WEIGHTS_BASE_URL = "https://download.pytorch.org/models/"


class Weights:
    """Pretrained weights published for torchvision: the checkpoint's file
    name (its SHA-256 prefix after the last '-') and facts about it."""

    def __init__(self, file_name: str, num_classes: int, meta: dict):
        self.file_name, self.num_classes, self.meta = file_name, num_classes, meta

    @property
    def url(self) -> str:
        return WEIGHTS_BASE_URL + self.file_name

    def __repr__(self) -> str:
        return f"Weights({self.url!r})"


class WeightsEnum(enum.Enum):
    """torchvision's weights enums: `ResNet18_Weights.IMAGENET1K_V1`,
    `ResNet18_Weights.DEFAULT` (the best available), also by name as a
    string."""

    @classmethod
    def verify(cls, obj):
        """The member named by `obj` (a member, its name, or None)."""
        if obj is None or isinstance(obj, cls):
            return obj
        if isinstance(obj, str):
            name = obj.split(".")[-1]
            if name in cls.__members__:
                return cls.__members__[name]
        raise ValueError(
            f"weights {obj!r} is not a {cls.__name__}: use one of {', '.join(cls.__members__)}, None, or a state dict"
        )

    @property
    def url(self) -> str:
        return self.value.url

    @property
    def meta(self) -> dict:
        return self.value.meta

    def get_state_dict(self, progress: bool = True, check_hash: bool = True) -> dict:
        """Download (once, into graphc.hub's cache) and load the checkpoint."""
        from graphc import hub

        return hub.load_state_dict_from_url(self.url, progress=progress, check_hash=check_hash)


class ResNet18_Weights(WeightsEnum):  # noqa: N801 (torchvision's name)
    IMAGENET1K_V1 = Weights(
        "resnet18-f37072fd.pth",
        num_classes=1000,
        meta={"num_params": 11689512, "dataset": "ImageNet-1K", "acc@1": 69.758, "acc@5": 89.078},
    )
    DEFAULT = IMAGENET1K_V1


def resnet18(num_classes: int = 1000, weights=None, progress: bool = True, *, pretrained: bool = False) -> ResNet:
    """ResNet-18 with torchvision's names.

    `weights` is None (random init), `ResNet18_Weights.IMAGENET1K_V1` /
    `.DEFAULT` or its name `"IMAGENET1K_V1"` (torchvision's ImageNet
    weights, downloaded once through `graphc.hub` with a progress bar and a
    hash check), or a state dict (e.g. `graphc.load("resnet18.pth")`).
    `pretrained=True` is the older spelling of `weights="DEFAULT"`.
    """
    if pretrained:
        if weights is not None:
            raise ValueError("resnet18: pass either pretrained=True or weights=, not both")
        weights = ResNet18_Weights.DEFAULT
    if not isinstance(weights, Mapping):
        weights = ResNet18_Weights.verify(weights)
        if weights is not None and num_classes != weights.value.num_classes:
            raise ValueError(
                f"The parameter 'num_classes' expected value {weights.value.num_classes} but got {num_classes} "
                "instead (pretrained weights have that many classes; replace model.fc to fine-tune)."
            )
    # Weights first: a failed download fails before the model is built.
    state = weights.get_state_dict(progress=progress) if isinstance(weights, ResNet18_Weights) else weights
    model = ResNet(BasicBlock, [2, 2, 2, 2], num_classes=num_classes)
    if state is not None:
        model.load_state_dict(state)
    return model


__all__ = [
    "MLP",
    "BasicBlock",
    "CifarNet",
    "Net",
    "ResNet",
    "ResNet18_Weights",
    "Weights",
    "WeightsEnum",
    "resnet18",
]
