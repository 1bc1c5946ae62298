"""Arrays -> network tensors (the original's ToTensor + ImageNet Normalize; the statistics are the
published models' cards', :mod:`ssmvos.pretrained`)."""
from __future__ import annotations

import functools

import numpy as np
import torch

from ..pretrained import IMAGENET_MEAN, IMAGENET_STD



def normalize_images(images: torch.Tensor,
                     memory_format: torch.memory_format = torch.contiguous_format) -> torch.Tensor:
    """N×H×W×3 uint8 RGB (on any device) -> N×3×H×W float32, /255 then ImageNet mean/std.

    Only IEEE-exact operations (conversion, division, subtraction), so the values are equal
    bit for bit on a CPU and a GPU: images can travel to the GPU as uint8 (a quarter of the
    bytes) and be normalised there. The result has ``memory_format`` (channels-last costs no
    copy: it is the layout of the uint8 input).
    """
    x = images.permute(0, 3, 1, 2).contiguous(memory_format=memory_format).float().div_(255.0)
    mean, std = _imagenet_constants(x.device)
    return x.sub_(mean).div_(std)


@functools.lru_cache(maxsize=8)
def _imagenet_constants(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """ImageNet mean and std as 1×3×1×1 float32 tensors on ``device``, made once per device
    (building them per call costs a blocking host-to-GPU copy each)."""
    with torch.inference_mode(False):  # ordinary tensors, usable in training too
        mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32).view(1, 3, 1, 1).to(device)
        std = torch.tensor(IMAGENET_STD, dtype=torch.float32).view(1, 3, 1, 1).to(device)
    return mean, std


def image_to_tensor(image: np.ndarray) -> torch.Tensor:
    """H×W×3 uint8 RGB -> 3×H×W float32, /255 then ImageNet mean/std."""
    # contiguous before the arithmetic: the same values, but element-wise ops on the permuted
    # (channels-last) view are several times slower
    return normalize_images(torch.from_numpy(np.ascontiguousarray(image))[None])[0]


def mask_to_tensor(mask: np.ndarray) -> torch.Tensor:
    """H×W float mask -> 1×H×W float32."""
    return torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32)).unsqueeze(0)
