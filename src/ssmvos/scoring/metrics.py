"""DAVIS region (J) and boundary (F) measures and their statistics: pure numpy functions.

The numbers equal those of the official DAVIS evaluation code
(github.com/davisvideochallenge/davis2017-evaluation, ``davis2017/metrics.py`` and
``davis2017/utils.py``); only the way they are computed is faster:

* J (Jaccard): ``|gt & pred| / |gt | pred|``; an empty union counts 1. Void pixels, when
  given, are left out of both sets.
* F (boundary F-measure): one-pixel boundary maps of both masks (the Berkeley ``seg2bmap``
  rule, with its special last row and column), each dilated by a disk of radius
  ``ceil(0.008 * ||(H, W)||)`` (``x² + y² <= r²``, 8 px at 854×480); precision = share of the
  predicted boundary within reach of the true one, recall the other way round. An empty
  predicted boundary gives precision 1 / recall 0 (recall 1 / precision 0 the other way round,
  1 / 1 when both are empty); F = 0 when precision + recall = 0.
  The fast path crops both masks to the box around their union (plus one pixel) before
  taking boundaries and dilating: boundary pixels can only lie there, and a dilation only
  matters at boundary pixels, so the counts are exactly those of the full frame.
* statistics: mean, recall = share of frames above 0.5, decay = mean of the first quarter of
  the frames minus mean of the last quarter, with the official (odd) binning replicated.
"""
from __future__ import annotations

import functools
import warnings

import cv2
import numpy as np

#: The official boundary tolerance: a fraction of the image diagonal.
BOUND_TH = 0.008


def boundary_radius(shape: tuple[int, int], bound_th: float = BOUND_TH) -> int:
    """Dilation radius in pixels for an image of ``shape`` (H, W): ``ceil(bound_th * diagonal)``.

    ``bound_th >= 1`` is a radius in pixels already (as in the official code).
    """
    if bound_th >= 1:
        return int(bound_th)
    return int(np.ceil(bound_th * np.linalg.norm(shape[:2])))


@functools.lru_cache(maxsize=32)
def disk_kernel(radius: int) -> np.ndarray:
    """The (2r+1, 2r+1) uint8 disk ``x² + y² <= r²`` (as ``skimage.morphology.disk``); cached."""
    offsets = np.arange(-radius, radius + 1)
    kernel = (offsets[:, None] ** 2 + offsets[None, :] ** 2 <= radius ** 2).astype(np.uint8)
    kernel.setflags(write=False)
    return kernel


def seg2bmap(seg: np.ndarray) -> np.ndarray:
    """One-pixel boundary map (H, W) bool of a mask (H, W), as the official ``_seg2bmap``.

    A pixel is on the boundary when it differs from its right, lower or lower-right
    neighbour (outside the image counts as background), except on the last row (only the
    right neighbour counts), the last column (only the lower one) and the last pixel (never).
    """
    seg = np.asarray(seg, dtype=bool)
    h, w = seg.shape
    b = np.zeros((h, w), dtype=bool)
    if h == 0 or w == 0:
        return b
    # Interior: compare with right, lower and lower-right neighbours.
    core = seg[:-1, :-1]
    b[:-1, :-1] = (core != seg[:-1, 1:]) | (core != seg[1:, :-1]) | (core != seg[1:, 1:])
    # Last column (except its last pixel): only the lower neighbour counts.
    b[:-1, -1] = seg[:-1, -1] != seg[1:, -1]
    # Last row (except its last pixel): only the right neighbour counts.
    b[-1, :-1] = seg[-1, :-1] != seg[-1, 1:]
    # The bottom-right pixel is never a boundary pixel (b[-1, -1] stays False).
    return b


def _union_box(union: np.ndarray) -> tuple[slice, slice] | None:
    """Rows/columns around the True pixels of ``union`` (H, W), one pixel wider on every side."""
    rows = np.flatnonzero(union.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(union.any(axis=0))
    h, w = union.shape
    return (slice(max(rows[0] - 1, 0), min(rows[-1] + 2, h)),
            slice(max(cols[0] - 1, 0), min(cols[-1] + 2, w)))


def _f_from_counts(n_pred: int, n_gt: int, pred_match: int, gt_match: int) -> float:
    """F-measure from boundary pixel counts with the official conventions for empty boundaries."""
    if n_pred == 0 and n_gt > 0:
        precision, recall = 1.0, 0.0
    elif n_pred > 0 and n_gt == 0:
        precision, recall = 0.0, 1.0
    elif n_pred == 0 and n_gt == 0:
        precision, recall = 1.0, 1.0
    else:
        precision = pred_match / float(n_pred)
        recall = gt_match / float(n_gt)
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def _boundary_f_cropped(gt: np.ndarray, pred: np.ndarray, radius: int) -> float:
    """F-measure of two same-size bool crops that hold every boundary pixel of both masks."""
    gt_b = seg2bmap(gt)
    pred_b = seg2bmap(pred)
    n_gt = int(np.count_nonzero(gt_b))
    n_pred = int(np.count_nonzero(pred_b))
    if n_gt == 0 or n_pred == 0:
        return _f_from_counts(n_pred, n_gt, 0, 0)
    kernel = disk_kernel(radius)
    gt_dil = cv2.dilate(gt_b.view(np.uint8), kernel)
    pred_dil = cv2.dilate(pred_b.view(np.uint8), kernel)
    pred_match = int(np.count_nonzero(pred_b & gt_dil.view(bool)))
    gt_match = int(np.count_nonzero(gt_b & pred_dil.view(bool)))
    return _f_from_counts(n_pred, n_gt, pred_match, gt_match)


def _exclude_void(gt: np.ndarray, pred: np.ndarray, void: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    gt = np.asarray(gt, dtype=bool)
    pred = np.asarray(pred, dtype=bool)
    if gt.shape != pred.shape:
        raise ValueError(f"annotation {gt.shape} and prediction {pred.shape} differ in size")
    if void is not None:
        void = np.asarray(void, dtype=bool)
        if void.shape != gt.shape:
            raise ValueError(f"annotation {gt.shape} and void mask {void.shape} differ in size")
        keep = ~void
        gt, pred = gt & keep, pred & keep
    return gt, pred


def jaccard(gt: np.ndarray, pred: np.ndarray, void: np.ndarray | None = None) -> float:
    """Region similarity J of two masks (H, W) (nonzero = object); 1 when both are empty.

    ``void`` (H, W): pixels left out of both masks.
    """
    gt, pred = _exclude_void(gt, pred, void)
    union = int(np.count_nonzero(gt | pred))
    if union == 0:
        return 1.0
    return int(np.count_nonzero(gt & pred)) / union


def boundary_f(gt: np.ndarray, pred: np.ndarray, void: np.ndarray | None = None,
               bound_th: float = BOUND_TH) -> float:
    """Boundary F-measure of two masks (H, W) (nonzero = object), as the official ``f_measure``.

    ``void`` (H, W): pixels set to background in both masks before taking boundaries.
    """
    gt, pred = _exclude_void(gt, pred, void)
    return mask_scores(gt, pred, boundary_radius(gt.shape, bound_th))[1]


def mask_scores(gt: np.ndarray, pred: np.ndarray, radius: int) -> tuple[float, float]:
    """J and F of one object: ``gt`` and ``pred`` are (H, W) bool masks (void pixels already
    removed), ``radius`` the boundary tolerance in pixels (:func:`boundary_radius` of the frame).

    Both empty gives (1, 1). The work is done on the box around the two masks.
    """
    box = _union_box(gt | pred)
    if box is None:
        return 1.0, 1.0  # both empty
    gt, pred = gt[box], pred[box]
    j = int(np.count_nonzero(gt & pred)) / int(np.count_nonzero(gt | pred))
    return j, _boundary_f_cropped(gt, pred, radius)


def frame_scores(gt_labels: np.ndarray, pred_labels: np.ndarray, n_objects: int,
                 void: np.ndarray | None = None, bound_th: float = BOUND_TH) -> tuple[np.ndarray, np.ndarray]:
    """J and F of objects ``1..n_objects`` in one frame.

    gt_labels, pred_labels: (H, W) integer label maps (object k = pixels equal to k; other
    values, e.g. labels above ``n_objects``, belong to no object). void: optional (H, W) bool
    of pixels to leave out. Returns two float64 arrays of shape (n_objects,).
    """
    gt_labels = np.asarray(gt_labels)
    pred_labels = np.asarray(pred_labels)
    if gt_labels.shape != pred_labels.shape:
        raise ValueError(f"annotation {gt_labels.shape} and prediction {pred_labels.shape} differ in size")
    keep = None
    if void is not None:
        keep = ~np.asarray(void, dtype=bool)
    radius = boundary_radius(gt_labels.shape, bound_th)
    j = np.ones(n_objects)
    f = np.ones(n_objects)
    for k in range(n_objects):
        gt = gt_labels == k + 1
        pred = pred_labels == k + 1
        if keep is not None:
            gt &= keep
            pred &= keep
        j[k], f[k] = mask_scores(gt, pred, radius)
    return j, f


def _nanmean(values: np.ndarray) -> float:
    """``np.nanmean`` without its warnings; nan for an empty or all-nan input (as numpy)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        return float(np.nanmean(values))


def decay_bins(n: int, n_bins: int = 4) -> list[tuple[int, int]]:
    """The official decay bins for ``n`` per-frame values, as (start, stop) slice bounds.

    Replicates ``davis2017/utils.db_statistics`` exactly, quirks included:
    ``ids = uint8(round(linspace(1, n, 5) + 1e-10) - 1)`` and bin i = ``values[ids[i]:ids[i+1]+1]``,
    so consecutive bins share their boundary frame; the ``+1e-10`` makes halves round up
    (numpy rounds half to even otherwise); and the uint8 cast wraps indices modulo 256, so for
    ``n > 256`` the last bins come out empty or shifted (the official decay is then nan or odd).
    The ``+1`` on the uint8 stop wraps too (numpy uint8 arithmetic), replicated by ``% 256``.
    """
    ids = (np.round(np.linspace(1, n, n_bins + 1) + 1e-10) - 1).astype(np.int64) % 256  # = the uint8 cast
    return [(int(ids[i]), (int(ids[i + 1]) + 1) % 256) for i in range(n_bins)]


def db_statistics(per_frame: np.ndarray) -> tuple[float, float, float]:
    """Mean, recall and decay of per-frame values (T,), as the official ``db_statistics``.

    mean = nanmean; recall = share of values > 0.5 (nan counts as not above);
    decay = nanmean(first bin) - nanmean(last bin) over the bins of :func:`decay_bins`.
    """
    values = np.asarray(per_frame, dtype=np.float64).reshape(-1)
    mean = _nanmean(values)
    recall = _nanmean(values > 0.5)
    bins = [values[start:stop] for start, stop in decay_bins(len(values))]
    decay = _nanmean(bins[0]) - _nanmean(bins[-1])
    return mean, recall, decay


__all__ = ["BOUND_TH", "boundary_radius", "disk_kernel", "seg2bmap", "jaccard", "boundary_f",
           "mask_scores", "frame_scores", "decay_bins", "db_statistics"]
