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

The same geometry also exists as tensor operations on a batch of objects (``mask_boxes``,
``crop_resize_tensors``, ``box_region_tensor``), so that on a GPU the chain runs there
without waiting for the host between frames. They restate OpenCV's arithmetic: its uint8
bilinear resize (11-bit fixed-point weights, the vectorised rounding) bit for bit, its
float32 resize to within float rounding (about 1e-7 before the 0.5 threshold of masks).
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
    region, frame = box_region_tensor(probs, box, height, width)
    return region.float().cpu().numpy(), frame


def box_region_tensor(probs: torch.Tensor, box: CropBox, height: int, width: int) -> tuple[torch.Tensor, tuple[slice, slice]]:
    """:func:`box_region` where ``probs`` lives: (the resized in-frame part N×C×h×w, frame slices)."""
    resized = F.interpolate(probs, (box.height, box.width), mode="bilinear", align_corners=False)
    (cy, cx), frame = box.overlap(height, width)
    return resized[..., cy, cx], frame


# ----------------------------------------------------------------- the same, as tensor operations
#: OpenCV's fixed-point scale of bilinear weights for uint8 images (INTER_RESIZE_COEF_BITS = 11)
_COEF_SCALE = 2048


def mask_boxes(masks: torch.Tensor, margins: float | Margins) -> torch.Tensor:
    """:func:`mask_box` of each of N H×W masks, on their device: N×4 int64 (x1, y1, x2, y2).

    Nonzero means ``mask.astype(uint8) != 0`` as in :func:`mask_box`; an empty mask or a
    grown box not wider AND taller than 5 px gives the whole frame. No host round trip.
    """
    n, h, w = masks.shape
    hit = masks >= 1 if masks.is_floating_point() else masks != 0
    rows, cols = hit.any(2), hit.any(1)
    ys = torch.arange(h, device=masks.device)
    xs = torch.arange(w, device=masks.device)
    y0 = torch.where(rows, ys, h).amin(1)
    y1 = torch.where(rows, ys, -1).amax(1) + 1
    x0 = torch.where(cols, xs, w).amin(1)
    x1 = torch.where(cols, xs, -1).amax(1) + 1
    empty = ~rows.any(1)
    left, right, top, bottom = (margins,) * 4 if isinstance(margins, (int, float)) else margins
    x, y = x0.double(), y0.double()
    bw, bh = (x1 - x0).double(), (y1 - y0).double()
    grown = torch.stack([x - bw * left, y - bh * top, x + bw + bw * right, y + bh + bh * bottom], 1)
    usable = (grown[:, 2] - grown[:, 0] > MIN_BOX_SIZE) & (grown[:, 3] - grown[:, 1] > MIN_BOX_SIZE) & ~empty
    box = grown.to(torch.int32).long()
    # the whole frame where unusable (built from scalars: a tensor from a list would be a host copy that waits)
    whole = torch.zeros_like(box)
    whole[:, 2], whole[:, 3] = w, h
    return torch.where(usable[:, None], box, whole)


def _taps(extent: torch.Tensor, size: int, float_frac: bool, clamp: bool
          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """OpenCV INTER_LINEAR source taps of ``size`` outputs along one axis, from N sources of
    ``extent`` pixels: (index 0, index 1, weight 0, weight 1), indices into the source,
    weights float32.

    OpenCV: scale = 1 / (size / extent); f = (d + 0.5)·scale − 0.5 (as float32 for uint8
    images, float64 for float images); s = floor(f). Columns (``clamp``) clamp: s < 0 gives
    s = 0 and s >= extent−1 gives s = extent−1, both with weight 0 on the second tap; rows keep
    their weights and clip the indices.
    """
    scale = 1.0 / (size / extent.double())
    f = (torch.arange(size, dtype=torch.float64, device=extent.device)[None] + 0.5) * scale[:, None] - 0.5
    if float_frac:
        f = f.float()
    s = torch.floor(f)
    frac = f - s
    s = s.long()
    last = extent[:, None] - 1
    if clamp:
        hi = s >= last
        frac = torch.where((s < 0) | hi, torch.zeros_like(frac), frac)
        i0 = torch.where(hi, last, s.clamp(min=0))
        i1 = torch.minimum(i0 + 1, last)
    else:
        i0 = torch.minimum(s.clamp(min=0), last)
        i1 = torch.minimum((s + 1).clamp(min=0), last)
    return i0, i1, (1 - frac).float(), frac.float()


def _gather(frames: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, shared: bool) -> torch.Tensor:
    """frames[rows, cols] for N×h row and N×w column indices in frame coordinates: N×h×w(×C),
    zero outside the frame (the crop's zero padding). ``frames``: one H×W×C frame shared by
    the N crops (``shared``), or N H×W frames, one per crop."""
    fh, fw = frames.shape[:2] if shared else frames.shape[1:3]
    inside = ((rows >= 0) & (rows < fh))[:, :, None] & ((cols >= 0) & (cols < fw))[:, None, :]
    r, c = rows.clamp(0, fh - 1)[:, :, None], cols.clamp(0, fw - 1)[:, None, :]
    if shared:
        return frames[r, c] * inside[..., None]
    return frames[torch.arange(len(frames), device=frames.device)[:, None, None], r, c] * inside


def _resize_plan(boxes: torch.Tensor, height: int, width: int, float_frac: bool):
    x1, y1, x2, y2 = boxes.unbind(1)
    xs0, xs1, a0, a1 = _taps(x2 - x1, width, float_frac, clamp=True)
    ys0, ys1, b0, b1 = _taps(y2 - y1, height, float_frac, clamp=False)
    cols = (xs0 + x1[:, None], xs1 + x1[:, None])
    rows = (ys0 + y1[:, None], ys1 + y1[:, None])
    return rows, cols, (a0, a1), (b0, b1)


def crop_resize_tensors(image: torch.Tensor, masks: torch.Tensor, boxes: torch.Tensor, height: int,
                        width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`crop_resize` of one H×W×3 uint8 frame around N boxes (N×4, from
    :func:`mask_boxes`) and of N H×W masks, on their device: (N×h×w×3 uint8, N×h×w uint8 {0, 1}).

    The image is OpenCV's uint8 resize bit for bit (horizontal taps weighted by 11-bit
    fixed-point weights, then the vertical pass as its vector code rounds it:
    ``((S0>>4)·b0>>16) + ((S1>>4)·b1>>16) + 2 >> 2``; for an exact 2× reduction, where
    OpenCV switches to its area average, this gives the same numbers). The masks are its
    float32 resize up to float rounding, then thresholded at 0.5.
    """
    # image: fixed point
    rows, cols, (a0, a1), (b0, b1) = _resize_plan(boxes, height, width, float_frac=True)
    a0, a1, b0, b1 = (torch.round(w * _COEF_SCALE).to(torch.int32) for w in (a0, a1, b0, b1))
    frame = image.to(torch.int32)

    def horizontal(r: torch.Tensor) -> torch.Tensor:
        return _gather(frame, r, cols[0], True) * a0[:, None, :, None] + _gather(frame, r, cols[1], True) * a1[:, None, :, None]

    top, bottom = horizontal(rows[0]), horizontal(rows[1])
    images = ((((top >> 4) * b0[:, :, None, None]) >> 16) + (((bottom >> 4) * b1[:, :, None, None]) >> 16) + 2) >> 2
    images = images.clamp(0, 255).to(torch.uint8)
    # masks: float32
    rows, cols, (a0, a1), (b0, b1) = _resize_plan(boxes, height, width, float_frac=False)
    m = masks.float()

    def horizontal_mask(r: torch.Tensor) -> torch.Tensor:
        return _gather(m, r, cols[0], False) * a0[:, None, :] + _gather(m, r, cols[1], False) * a1[:, None, :]

    small = horizontal_mask(rows[0]) * b0[:, :, None] + horizontal_mask(rows[1]) * b1[:, :, None]
    return images, (small > 0.5).to(torch.uint8)
