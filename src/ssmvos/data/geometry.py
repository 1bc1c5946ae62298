"""THE one place where frame and network-crop coordinates meet.

The original's arithmetic, exactly:
* box = OpenCV ``boundingRect`` of the mask's nonzero pixels (x, y, w, h), grown by
  ``margin·w`` left/right and ``margin·h`` top/bottom in float, applied only if the grown
  box is wider AND taller than 5 px, then cast to int32 (truncation toward zero); an
  empty mask, or a box that stays too small, means the whole frame;
* crop with zero padding wherever the box leaves the frame;
* resize with OpenCV bilinear (``INTER_LINEAR``; uint8 images stay uint8), masks
  re-thresholded at 0.5 after resizing;
* paste-back: network probabilities resized (bilinear, align_corners=False) to the box
  size and placed into a zero frame (both channels 0 outside the box); on a GPU only the
  box's part inside the frame travels back to the host (``box_region``).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

#: A grown box must exceed this many pixels in width and height to be used.
MIN_BOX_SIZE = 5


@dataclass(frozen=True)
class CropBox:
    """A crop in frame pixel coordinates, [x1, x2) × [y1, y2); may extend past the frame."""

    x1: int
    y1: int
    x2: int
    y2: int

    @property
    def width(self) -> int:
        return self.x2 - self.x1

    @property
    def height(self) -> int:
        return self.y2 - self.y1

    @classmethod
    def whole(cls, height: int, width: int) -> "CropBox":
        """The box covering a whole H×W frame."""
        return cls(0, 0, int(width), int(height))

    def overlap(self, height: int, width: int) -> tuple[tuple[slice, slice], tuple[slice, slice]]:
        """Slices (rows, cols) of the part of the box inside an H×W frame: (in the crop, in the frame).

        Empty slices when the box misses the frame entirely.
        """
        fy1, fy2 = min(max(self.y1, 0), height), min(max(self.y2, 0), height)
        fx1, fx2 = min(max(self.x1, 0), width), min(max(self.x2, 0), width)
        cy1, cx1 = fy1 - self.y1, fx1 - self.x1
        crop = (slice(cy1, cy1 + (fy2 - fy1)), slice(cx1, cx1 + (fx2 - fx1)))
        frame = (slice(fy1, fy2), slice(fx1, fx2))
        return crop, frame


Margins = tuple[float, float, float, float]  # left, right, top, bottom (fractions of w, h)


def _all_zero(mask: np.ndarray) -> bool:
    """``np.isclose(mask, 0).all()`` (|value| <= 1e-8; NaN is not zero) without its temporaries."""
    a = np.asarray(mask)
    if a.size == 0:
        return True
    if a.dtype.kind in "biu":
        return not a.any()
    return -1e-8 <= float(a.min()) and float(a.max()) <= 1e-8


def grow_rect(rect: tuple[int, int, int, int], margins: float | Margins, height: int, width: int) -> CropBox:
    """Crop box of an OpenCV rect (x, y, w, h) in an H×W frame, grown by ``margins``.

    ``margins`` is one fraction for all sides or (left, right, top, bottom). The grown box is
    used only if wider AND taller than 5 px (else the whole frame), cast to int32 (truncation
    toward zero).
    """
    x, y, bw, bh = rect
    left, right, top, bottom = (margins,) * 4 if isinstance(margins, (int, float)) else margins
    x1, x2 = x - bw * left, x + bw + bw * right
    y1, y2 = y - bh * top, y + bh + bh * bottom
    if x2 - x1 > MIN_BOX_SIZE and y2 - y1 > MIN_BOX_SIZE:
        return CropBox(*(int(v) for v in np.array([x1, y1, x2, y2], dtype=np.int32)))
    return CropBox.whole(height, width)


def mask_box(mask: np.ndarray, margins: float | Margins) -> CropBox:
    """Crop box around the nonzero pixels of an H×W mask, grown by ``margins``.

    ``margins`` is one fraction for all sides or (left, right, top, bottom). The box is
    computed on ``mask.astype(uint8)`` as the original does (so values in (0, 1) do not
    count), and falls back to the whole frame for an empty mask or a too-small box.
    """
    h, w = mask.shape[:2]
    if _all_zero(mask):
        return CropBox.whole(h, w)
    return grow_rect(cv2.boundingRect(np.ascontiguousarray(mask, dtype=np.uint8)), margins, h, w)


def crop(array: np.ndarray, box: CropBox) -> np.ndarray:
    """Cut ``box`` out of an H×W or H×W×C array, zero-padding outside the frame."""
    out = np.zeros((box.height, box.width, *array.shape[2:]), dtype=array.dtype)
    (cy, cx), (fy, fx) = box.overlap(*array.shape[:2])
    out[cy, cx] = array[fy, fx]
    return out


def resize_image(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """OpenCV bilinear resize of an H×W×C image (dtype kept, uint8 rounding as OpenCV)."""
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)


def resize_mask(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """OpenCV bilinear resize of an H×W float mask, re-thresholded: float32 in {0, 1}."""
    small = cv2.resize(np.ascontiguousarray(mask, dtype=np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    return (small > 0.5).astype(np.float32)


def crop_resize(image: np.ndarray, mask: np.ndarray, box: CropBox, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Crop an image (H×W×3 uint8) and a mask (H×W float) to ``box`` and resize both."""
    return resize_image(crop(image, box), height, width), resize_mask(crop(mask, box), height, width)


def paste_back(probs: torch.Tensor, box: CropBox, height: int, width: int) -> torch.Tensor:
    """Network-crop probabilities N×C×h×w -> N×C×H×W frame probabilities.

    Resized (bilinear, align_corners=False) to the box size, then placed into a zero frame.
    """
    resized = F.interpolate(probs, (box.height, box.width), mode="bilinear", align_corners=False)
    out = probs.new_zeros(*probs.shape[:2], height, width)
    (cy, cx), (fy, fx) = box.overlap(height, width)
    out[..., fy, fx] = resized[..., cy, cx]
    return out


def box_region(probs: torch.Tensor, box: CropBox, height: int, width: int) -> tuple[np.ndarray, tuple[slice, slice]]:
    """:func:`paste_back` without the zero frame: the resized probabilities of the part of
    the box inside an H×W frame, as a host float32 array N×C×h×w, and the frame slices
    (rows, cols) where they go. Everything outside them is 0 in :func:`paste_back`.

    The resize runs where ``probs`` lives (the same arithmetic as :func:`paste_back`); only
    the in-frame part of the box is copied back from a GPU.
    """
    resized = F.interpolate(probs, (box.height, box.width), mode="bilinear", align_corners=False)
    (cy, cx), frame = box.overlap(height, width)
    return resized[..., cy, cx].float().cpu().numpy(), frame
