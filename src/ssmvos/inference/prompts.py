"""Masks from clicks: a box and/or positive and negative points -> a mask, with OpenCV's GrabCut.

No learned model: GrabCut fits colour models of the object and the background and cuts the
frame between them. The box is GrabCut's rectangle (nothing outside it is the object);
positive points are sure object, negative points sure background (small discs). Points
without a box get a rectangle around the positive points, grown on every side. The video
predictor's ``add_new_points_or_box`` and the app's box and point tools use this.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from ..errors import SSMVOSValueError

#: GrabCut's iterations: a fixed number (about 1.5 s on a 854×480 frame on one core)
ITERATIONS = 5


def _finite(values: np.ndarray, what: str) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise SSMVOSValueError(f"{what} must be numbers, not {values!r}") from None
    if not np.isfinite(array).all():
        raise SSMVOSValueError(f"{what} must be finite numbers, not {array.tolist()}")
    return array


def grabcut_mask(image: np.ndarray, box: Sequence[float] | None = None, points: Sequence | None = None,
                 labels: Sequence[int] | None = None, iterations: int = ITERATIONS) -> np.ndarray:
    """The object GrabCut finds in an H×W×3 uint8 RGB image: a bool H×W mask.

    box: (x0, y0, x1, y1) in pixels; points: N×2 (x, y) in pixels with labels N (1 = object,
    0 = background). At least a box or a positive point. SSMVOSValueError for boxes that are
    not finite or smaller than 4 pixels inside the frame, points outside it, bad labels.
    """
    h, w = image.shape[:2]
    if not 1 <= iterations <= 20:
        raise SSMVOSValueError(f"GrabCut iterations must lie in 1..20, not {iterations}")
    pts = _finite(points if points is not None else np.zeros((0, 2)), "points").reshape(-1, 2)
    labs = np.asarray(labels if labels is not None else np.zeros(0), dtype=np.float64).reshape(-1)
    if len(labs) != len(pts):
        raise SSMVOSValueError(f"{len(pts)} points need {len(pts)} labels, not {len(labs)}")
    if not np.isin(labs, (0, 1)).all():
        raise SSMVOSValueError(f"point labels are 1 (object) or 0 (background), not {sorted(set(labs.tolist()))}")
    outside = [(x, y) for x, y in pts if not (0 <= x < w and 0 <= y < h)]
    if outside:
        raise SSMVOSValueError(f"point {outside[0]} is outside the {w}×{h} frame")
    if box is None:
        positive = pts[labs == 1]
        if not len(positive):
            raise SSMVOSValueError("give a box, or at least one positive point (label 1)")
        (x0, y0), (x1, y1) = positive.min(0), positive.max(0)
        gx, gy = max((x1 - x0) / 2, 0.1 * w), max((y1 - y0) / 2, 0.1 * h)
        box = (x0 - gx, y0 - gy, x1 + gx, y1 + gy)
    b = _finite(box, "a box").reshape(-1)
    if b.size != 4:
        raise SSMVOSValueError(f"a box is (x0, y0, x1, y1), not {b.size} numbers")
    x0, y0, x1, y1 = (int(round(v)) for v in b)
    x0, x1 = sorted((max(0, min(w, x0)), max(0, min(w, x1))))
    y0, y1 = sorted((max(0, min(h, y0)), max(0, min(h, y1))))
    if x1 - x0 < 4 or y1 - y0 < 4:
        raise SSMVOSValueError("draw a box at least 4 pixels wide and high inside the frame")
    if x1 - x0 >= w - 1 and y1 - y0 >= h - 1:
        # a box over the whole frame leaves GrabCut no background sample: shrink it by a pixel
        x0, y0, x1, y1 = 1, 1, w - 1, h - 1
    bgr = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    mask = np.zeros((h, w), np.uint8)
    if not len(pts):
        cv2.grabCut(bgr, mask, (x0, y0, x1 - x0, y1 - y0), bgd, fgd, iterations, cv2.GC_INIT_WITH_RECT)
    else:
        mask[y0:y1, x0:x1] = cv2.GC_PR_FGD
        radius = max(2, math.ceil(min(h, w) / 100))
        for (x, y), label in zip(pts, labs):
            cv2.circle(mask, (int(round(x)), int(round(y))), radius,
                       int(cv2.GC_FGD if label == 1 else cv2.GC_BGD), thickness=-1)
        cv2.grabCut(bgr, mask, None, bgd, fgd, iterations, cv2.GC_INIT_WITH_MASK)
    return (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)
