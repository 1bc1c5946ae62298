"""Arrays -> network tensors (the original's ToTensor + ImageNet Normalize)."""
from __future__ import annotations

import numpy as np
import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def image_to_tensor(image: np.ndarray) -> torch.Tensor:
    """H×W×3 uint8 RGB -> 3×H×W float32, /255 then ImageNet mean/std."""
    # contiguous before the arithmetic: the same values, but element-wise ops on the permuted
    # (channels-last) view are several times slower
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).contiguous().float().div_(255.0)
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32).view(3, 1, 1)
    return x.sub_(mean).div_(std)


def mask_to_tensor(mask: np.ndarray) -> torch.Tensor:
    """H×W float mask -> 1×H×W float32."""
    return torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32)).unsqueeze(0)
