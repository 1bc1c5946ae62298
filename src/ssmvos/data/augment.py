"""Training augmentations: flip, canvas-growing rotation, random-margin crop, resize, heat map.

Every random function takes a ``numpy.random.Generator`` and draws from nothing else, so a
sample is a pure function of its generator's seed. The draws happen in the original's order:
flip decision, rotation angle, then the four crop margins (top, bottom, left, right); for the
heat map, the centre jitter (x, y) then the std scale (x, y).

Arrays: images H×W×3 uint8 RGB; masks H×W float32 in {0, 1}. Boxes and crops go through
:mod:`ssmvos.data.geometry`.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .geometry import CropBox, Margins, crop, grow_rect, resize_image, resize_mask

#: Robust standard deviation of a normal distribution from its median absolute deviation.
MAD_TO_STD = 1.4826
#: The heat map's standard deviation is at least this many pixels per axis.
MIN_HEATMAP_STD = 5.0


# --------------------------------------------------------------------------- geometry steps
def hflip(array: np.ndarray) -> np.ndarray:
    """Mirror an H×W or H×W×C array left-right (a new contiguous array)."""
    return cv2.flip(np.ascontiguousarray(array), 1).reshape(array.shape)


def rotation_matrix(height: int, width: int, angle: float) -> tuple[np.ndarray, tuple[int, int]]:
    """The original ``rotate_bound`` transform: 2×3 float64 matrix and the canvas (height, width).

    Rotates clockwise by ``angle`` degrees about the frame centre (w/2, h/2) and translates so
    the whole rotated frame fits a canvas of ``int(h·|sin| + w·|cos|)`` wide by
    ``int(h·|cos| + w·|sin|)`` high.
    """
    cx, cy = width / 2, height / 2
    m = cv2.getRotationMatrix2D((cx, cy), -angle, 1.0)
    cos, sin = abs(m[0, 0]), abs(m[0, 1])
    new_w = int(height * sin + width * cos)
    new_h = int(height * cos + width * sin)
    m[0, 2] += new_w / 2 - cx
    m[1, 2] += new_h / 2 - cy
    return m, (new_h, new_w)


def rotate_bound(array: np.ndarray, angle: float) -> np.ndarray:
    """Rotate an H×W(×C) array by ``angle`` degrees (clockwise) on a canvas that keeps it whole.

    Bilinear, zeros outside the frame; dtype kept (uint8 rounds as OpenCV does). Masks
    should be re-thresholded by the caller (see :func:`rotate_mask`).
    """
    m, (new_h, new_w) = rotation_matrix(*array.shape[:2], angle)
    out = cv2.warpAffine(np.ascontiguousarray(array), m, (new_w, new_h), flags=cv2.INTER_LINEAR)
    return out.reshape(new_h, new_w, *array.shape[2:])


def rotate_mask(mask: np.ndarray, angle: float) -> np.ndarray:
    """:func:`rotate_bound` of an H×W float mask, re-thresholded at 0.5: float32 {0, 1}."""
    rotated = rotate_bound(np.asarray(mask, dtype=np.float32), angle)
    return cv2.threshold(rotated, 0.5, 1.0, cv2.THRESH_BINARY)[1]


# --------------------------------------------------------------------------- random draws
def draw_margins(rng: np.random.Generator, min_margin: float, max_margin: float) -> Margins:
    """Four independent crop margins uniform in [min_margin, max_margin].

    Drawn in the original's order top, bottom, left, right; returned in
    :mod:`geometry`'s order (left, right, top, bottom).
    """
    top, bottom, left, right = (float(v) for v in rng.uniform(min_margin, max_margin, 4))
    return left, right, top, bottom


@dataclass(frozen=True)
class AugmentParams:
    """The random choices of one augmentation (for inspection and tests)."""

    flip: bool
    angle: float
    margins: Margins  # left, right, top, bottom


def draw_params(rng: np.random.Generator, flip_rate: float, rotation: float, min_margin: float,
                max_margin: float) -> AugmentParams:
    """Draw flip (probability ``flip_rate``), angle (uniform in ±``rotation`` degrees), margins."""
    flip = bool(rng.random() < flip_rate)
    angle = float(rng.uniform(-rotation, rotation))
    return AugmentParams(flip, angle, draw_margins(rng, min_margin, max_margin))


# --------------------------------------------------------------------------- the pipeline
@dataclass(frozen=True)
class Augmented:
    """One augmented image with its masks, all out_h×out_w.

    ``image`` uint8 RGB ×3, ``mask`` float32 {0, 1}, ``bounding_mask`` float32 {0, 1};
    ``box`` is the crop on the rotated canvas.
    """

    image: np.ndarray
    mask: np.ndarray
    bounding_mask: np.ndarray
    box: CropBox


def _warp_box(array: np.ndarray, m: np.ndarray, box: CropBox, canvas: tuple[int, int]) -> np.ndarray:
    """``crop(warpAffine(array, m, canvas), box)``, warping only the part of the box on the canvas."""
    out = np.zeros((box.height, box.width, *array.shape[2:]), dtype=array.dtype)
    (cy, cx), (fy, fx) = box.overlap(*canvas)
    if fy.stop > fy.start and fx.stop > fx.start:
        shifted = m.copy()
        shifted[:, 2] -= (fx.start, fy.start)
        part = cv2.warpAffine(array, shifted, (fx.stop - fx.start, fy.stop - fy.start), flags=cv2.INTER_LINEAR)
        out[cy, cx] = part.reshape(out[cy, cx].shape)
    return out


def _warp_support(mask: np.ndarray, m: np.ndarray, canvas: tuple[int, int]) -> tuple[np.ndarray, CropBox] | None:
    """The rotated, re-thresholded mask over the canvas region that can be nonzero.

    Returns (float32 {0, 1} region, region box on the canvas); None for an empty mask. Outside
    the region the full warp is exactly zero (bilinear support reaches < 1 px beyond the
    mask's nonzero pixels; one more pixel is kept for OpenCV's fixed-point coordinates).
    """
    x, y, w, h = cv2.boundingRect((mask != 0).view(np.uint8))
    if w == 0 or h == 0:
        return None
    corners = np.array([[x - 1, y - 1, 1], [x + w, y - 1, 1], [x - 1, y + h, 1], [x + w, y + h, 1]], np.float64)
    pts = corners @ m.T
    lo, hi = np.floor(pts.min(axis=0)) - 1, np.ceil(pts.max(axis=0)) + 2
    region = CropBox(max(int(lo[0]), 0), max(int(lo[1]), 0), min(int(hi[0]), canvas[1]), min(int(hi[1]), canvas[0]))
    if region.width <= 0 or region.height <= 0:
        return None
    part = _warp_box(mask, m, region, canvas)
    return cv2.threshold(part, 0.5, 1.0, cv2.THRESH_BINARY)[1], region


def _crop_support(support: tuple[np.ndarray, CropBox] | None, box: CropBox) -> np.ndarray:
    """Crop ``box`` (canvas coordinates) from a mask known only on its support region."""
    if support is None:
        return np.zeros((box.height, box.width), np.float32)
    part, region = support
    return crop(part, CropBox(box.x1 - region.x1, box.y1 - region.y1, box.x2 - region.x1, box.y2 - region.y1))


def apply_params(image: np.ndarray, mask: np.ndarray, bounding_mask: np.ndarray | None, params: AugmentParams,
                 height: int, width: int) -> Augmented:
    """Flip, rotate, crop around the bounding mask, resize — the same geometry for all three.

    ``image`` H×W×3 uint8, ``mask`` and ``bounding_mask`` H×W float; ``bounding_mask=None``
    means "the mask itself" (the reference case) and saves work. The crop box is
    :func:`geometry.grow_rect` (= :func:`geometry.mask_box`) of the rotated, re-thresholded
    bounding mask with ``params.margins``; outside the rotated canvas the crop is zero.

    Equivalent to rotating the whole frame (:func:`rotate_bound`, :func:`rotate_mask`) then
    cropping, but only the crop of the image and the neighbourhood of each mask are warped;
    the results agree up to OpenCV's 1/1024-px fixed-point coordinate rounding.
    """
    masks = [np.asarray(m, dtype=np.float32) for m in ([mask] if bounding_mask is None else [mask, bounding_mask])]
    if params.flip:
        image, masks = hflip(image), [hflip(m) for m in masks]
    m, canvas = rotation_matrix(*image.shape[:2], params.angle)
    supports = [_warp_support(mask, m, canvas) for mask in masks]
    support, bounding_support = supports[0], supports[-1]
    box = CropBox.whole(*canvas)  # an empty bounding mask: the whole canvas
    if bounding_support is not None:
        part, region = bounding_support
        x, y, w, h = cv2.boundingRect((part != 0).view(np.uint8))
        if w:
            box = grow_rect((x + region.x1, y + region.y1, w, h), params.margins, *canvas)
    image = resize_image(_warp_box(np.ascontiguousarray(image), m, box, canvas), height, width)
    out_mask = resize_mask(_crop_support(support, box), height, width)
    if bounding_mask is None:
        return Augmented(image, out_mask, out_mask, box)
    return Augmented(image, out_mask, resize_mask(_crop_support(bounding_support, box), height, width), box)


def augment(rng: np.random.Generator, image: np.ndarray, mask: np.ndarray, bounding_mask: np.ndarray | None,
            height: int, width: int, *, flip_rate: float = 0.5, rotation: float = 45.0,
            min_margin: float = 0.0, max_margin: float = 1.0) -> Augmented:
    """Draw the random parameters (:func:`draw_params`) and apply them (:func:`apply_params`)."""
    params = draw_params(rng, flip_rate, rotation, min_margin, max_margin)
    return apply_params(image, mask, bounding_mask, params, height, width)


# --------------------------------------------------------------------------- heat map
def _weighted_median(values: np.ndarray, counts: np.ndarray) -> float:
    """Median of the multiset where ``values[i]`` (sorted ascending) occurs ``counts[i]`` times.

    Like ``np.median``: for an even total the mean of the two middle elements.
    """
    cum = np.cumsum(counts)
    total = int(cum[-1])
    lo = values[np.searchsorted(cum, (total - 1) // 2, side="right")]
    hi = values[np.searchsorted(cum, total // 2, side="right")]
    return (float(lo) + float(hi)) / 2


def _axis_moments(counts: np.ndarray) -> tuple[float, float]:
    """Median and MAD of pixel coordinates along one axis given the per-coordinate counts."""
    coords = np.arange(counts.size, dtype=np.float64)
    keep = counts > 0
    coords, counts = coords[keep], counts[keep]
    centre = _weighted_median(coords, counts)
    dev = np.abs(coords - centre)
    order = np.argsort(dev, kind="stable")
    return centre, _weighted_median(dev[order], counts[order])


def robust_moments(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Median centre and robust std of an H×W mask's nonzero pixels, each as (x, y) float64.

    std = 1.4826·MAD per axis, at least 5 px; ``None`` for an empty mask. Computed exactly
    from the row and column counts (the same values as medians over all pixel coordinates).
    """
    nonzero = np.asarray(mask) != 0
    cols = np.count_nonzero(nonzero, axis=0)
    if not cols.any():
        return None
    rows = np.count_nonzero(nonzero, axis=1)
    (cx, mx), (cy, my) = _axis_moments(cols), _axis_moments(rows)
    centre = np.array([cx, cy])
    std = np.maximum(MAD_TO_STD * np.array([mx, my]), MIN_HEATMAP_STD)
    return centre, std


def gaussian_map(shape: tuple[int, int], centre: np.ndarray, std: np.ndarray) -> np.ndarray:
    """H×W float32 map exp(-Σ (coord - centre)²·0.5/std²) over (x, y), clipped to [0, 1].

    Separable: the outer product of two 1-D exponentials.
    """
    h, w = shape
    gx = np.exp(-0.5 * ((np.arange(w) - centre[0]) / std[0]) ** 2).astype(np.float32)
    gy = np.exp(-0.5 * ((np.arange(h) - centre[1]) / std[1]) ** 2).astype(np.float32)
    out = np.outer(gy, gx)
    return np.clip(out, 0.0, 1.0, out=out)


def heatmap(rng: np.random.Generator, mask: np.ndarray, center_perturb: float = 0.2,
            std_perturb: float = 0.4) -> np.ndarray:
    """The previous mask as a perturbed Gaussian heat map (H×W float32 in [0, 1]).

    Centre = robust centre + uniform(±center_perturb)·std per axis; std scaled by
    uniform[1/(1+std_perturb), 1+std_perturb] per axis. An empty mask gives zeros (and
    draws nothing).
    """
    moments = robust_moments(mask)
    if moments is None:
        return np.zeros(mask.shape[:2], dtype=np.float32)
    centre, std = moments
    centre = centre + rng.uniform(-center_perturb, center_perturb, 2) * std
    std = std * rng.uniform(1.0 / (1.0 + std_perturb), 1.0 + std_perturb, 2)
    return gaussian_map(mask.shape[:2], centre, std)


__all__ = [
    "AugmentParams", "Augmented", "apply_params", "augment", "draw_margins", "draw_params", "gaussian_map",
    "heatmap", "hflip", "robust_moments", "rotate_bound", "rotate_mask", "rotation_matrix",
]
