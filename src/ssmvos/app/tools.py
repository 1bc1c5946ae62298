"""Mask-making tools that run on the server: a box -> mask with OpenCV's GrabCut."""
from __future__ import annotations

import math

import cv2
import numpy as np

from ..errors import SSMVOSError


def grabcut_mask(image: np.ndarray, box: tuple[int, int, int, int], iterations: int = 5) -> np.ndarray:
    """The foreground GrabCut finds inside ``box`` (x0, y0, x1, y1 in pixels) of an H×W×3
    uint8 RGB image: a bool H×W mask, empty outside the box. No model is needed."""
    h, w = image.shape[:2]
    if len(box) != 4 or not all(math.isfinite(float(v)) for v in box):
        raise SSMVOSError(f"a GrabCut box is four finite numbers x0, y0, x1, y1, not {list(box)}")
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    x0, x1 = sorted((max(0, min(w, x0)), max(0, min(w, x1))))
    y0, y1 = sorted((max(0, min(h, y0)), max(0, min(h, y1))))
    if x1 - x0 < 4 or y1 - y0 < 4:
        raise SSMVOSError("draw a box at least 4 pixels wide and high inside the frame")
    if not 1 <= iterations <= 20:
        raise SSMVOSError(f"GrabCut iterations must lie in 1..20, not {iterations}")
    mask = np.zeros((h, w), np.uint8)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    if x1 - x0 >= w - 1 and y1 - y0 >= h - 1:
        # a box over the whole frame leaves GrabCut no background sample: shrink it by a pixel
        x0, y0, x1, y1 = 1, 1, w - 1, h - 1
    cv2.grabCut(bgr, mask, (x0, y0, x1 - x0, y1 - y0), bgd, fgd, iterations, cv2.GC_INIT_WITH_RECT)
    return (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)
