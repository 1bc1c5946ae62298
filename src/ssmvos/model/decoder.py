"""Decoder parts: residual block, Global Convolution Block, refinement module."""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class ResidualBlock(nn.Module):
    """ReLU-conv3×3-ReLU-conv3×3 plus a skip connection; keys ``res.1`` and ``res.3``.

    The original's first ReLU runs in place on the block input before the sum is formed,
    so the skip carries relu(x): ``out = relu(x) + res(x)``. Reproduced here explicitly.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.res = nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
        )

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(x)
        return x + self.res[3](F.relu(self.res[1](x)))


class GlobalConvolutionBlock(nn.Module):
    """Two separable large-kernel branches (1×k→k×1 and k×1→1×k) summed, then a residual block.

    The second branch pads its k×1 conv with (0, k//2) and its 1×k conv with (k//2, 0),
    exactly as the original (the shape round-trips; the border handling differs).
    """

    def __init__(self, in_channels: int, out_channels: int = 256, k: int = 7):
        super().__init__()
        p = k // 2
        self.branch1 = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, (1, k), padding=(0, p)),
            nn.Conv2d(out_channels, out_channels, (k, 1), padding=(p, 0)),
        )
        self.branch2 = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, (k, 1), padding=(0, p)),
            nn.Conv2d(out_channels, out_channels, (1, k), padding=(p, 0)),
        )
        self.RB = ResidualBlock(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.RB(self.branch1(x) + self.branch2(x))


class RefinementModule(nn.Module):
    """``RB2(upsample(top) + RB1(conv3×3(low)))``: merges a coarse map into a finer one."""

    def __init__(self, in_channels: int, out_channels: int = 256):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.RB1 = ResidualBlock(out_channels)
        self.RB2 = ResidualBlock(out_channels)

    def forward(self, top: Tensor, low: Tensor) -> Tensor:
        """top: N×C×h×w (coarser), low: N×in×H×W -> N×out×H×W."""
        top = F.interpolate(top, size=low.shape[-2:], mode="bilinear", align_corners=False)
        return self.RB2(top + self.RB1(self.conv(low)))
