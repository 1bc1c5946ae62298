"""ResNet-50/101 encoder taking RGB + mask (4 channels), torchvision state-dict key names.

Bottleneck blocks put the stride on the 3x3 convolution (torchvision's "v1.5"), so the
ImageNet weights published for torchvision load by name. There is no avgpool/fc.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (stride) -> 1x1 bottleneck with a projection shortcut when needed."""

    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        width = planes
        self.conv1 = nn.Conv2d(in_planes, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNetEncoder(nn.Module):
    """ResNet trunk; ``forward(x: N×in_chans×H×W) -> (x5, x4, x3, x2, x1)``.

    Strides 32, 16, 8, 4, 2 and channels 2048, 1024, 512, 256, 64 (layer4, layer3,
    layer2, layer1, stem after ReLU).
    """

    def __init__(self, layers: tuple[int, int, int, int], in_chans: int = 4):
        super().__init__()
        self.in_planes = 64
        self.conv1 = nn.Conv2d(in_chans, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(64, layers[0], stride=1)
        self.layer2 = self._make_layer(128, layers[1], stride=2)
        self.layer3 = self._make_layer(256, layers[2], stride=2)
        self.layer4 = self._make_layer(512, layers[3], stride=2)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _make_layer(self, planes: int, blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        out_planes = planes * Bottleneck.expansion
        if stride != 1 or self.in_planes != out_planes:
            downsample = nn.Sequential(
                nn.Conv2d(self.in_planes, out_planes, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_planes),
            )
        layers = [Bottleneck(self.in_planes, planes, stride, downsample)]
        self.in_planes = out_planes
        layers += [Bottleneck(out_planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        x1 = self.relu(self.bn1(self.conv1(x)))
        x2 = self.layer1(self.maxpool(x1))
        x3 = self.layer2(x2)
        x4 = self.layer3(x3)
        x5 = self.layer4(x4)
        return x5, x4, x3, x2, x1


def resnet50(in_chans: int = 4) -> ResNetEncoder:
    """ResNet-50 trunk (randomly initialised; see ``adapt_conv1_to_rgbm`` for ImageNet)."""
    return ResNetEncoder((3, 4, 6, 3), in_chans)


def resnet101(in_chans: int = 4) -> ResNetEncoder:
    """ResNet-101 trunk (randomly initialised)."""
    return ResNetEncoder((3, 4, 23, 3), in_chans)


ENCODERS = {"resnet50": resnet50, "resnet101": resnet101}


def adapt_conv1_to_rgbm(state_dict: dict[str, Tensor], generator: torch.Generator | None = None) -> dict[str, Tensor]:
    """Turn a 3-channel torchvision ResNet state dict into one for the RGB + mask encoder.

    ``conv1.weight`` (64×3×7×7) gets a 4th input channel drawn from N(0, 1e-4), as the
    original does; the classifier (``fc.*``) is dropped. Returns a new dict.
    """
    out = {k: v for k, v in state_dict.items() if not k.startswith("fc.")}
    w = out["conv1.weight"]
    if w.shape[1] != 3:
        raise ValueError(f"conv1.weight has {w.shape[1]} input channels, expected 3")
    extra = torch.empty(w.shape[0], 1, *w.shape[2:], dtype=w.dtype).normal_(0.0, 1e-4, generator=generator)
    out["conv1.weight"] = torch.cat([w, extra], dim=1)
    return out
