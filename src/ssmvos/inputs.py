"""What input sizes the SSM network can take (checked before any work starts)."""
from __future__ import annotations

import math

from .errors import SSMVOSError
from .model.ssm import MIN_INPUT_HEIGHT

#: Channels of the stride-16 features; keep_topk must divide it (the structure branch's groups).
X4_CHANNELS = 1024


def stride16_size(height: int, width: int) -> tuple[int, int]:
    """Rows and columns of the encoder's stride-16 features for an H×W input.

    conv1 and every later stride-2 step (max pool, layer2, layer3) round up.
    """
    h, w = height, width
    for _ in range(4):
        h, w = math.ceil(h / 2), math.ceil(w / 2)
    return h, w


def check_input_size(height: int, width: int, keep_topk: int) -> None:
    """Raise SSMVOSError unless the network can run at height×width with keep_topk."""
    if keep_topk < 1 or X4_CHANNELS % keep_topk:
        raise SSMVOSError(f"--keep-topk {keep_topk} must be a positive divisor of {X4_CHANNELS} "
                          "(the structure branch splits the 1024 stride-16 channels into keep_topk groups)")
    if height < MIN_INPUT_HEIGHT or width < 1:
        raise SSMVOSError(f"input size {height}x{width} (height x width) is too small: the network needs a height "
                          f"of at least {MIN_INPUT_HEIGHT} px (its 7x1 convolution on the stride-32 features)")
    h, w = stride16_size(height, width)
    if h * w < keep_topk:
        raise SSMVOSError(f"input size {height}x{width} gives only {h}x{w} = {h * w} stride-16 positions, fewer "
                          f"than --keep-topk {keep_topk}; use a larger --input-height/--input-width or a smaller "
                          "--keep-topk")
