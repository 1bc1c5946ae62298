"""The generic scoring rules over label maps: which object is scored on which frame.

These are the rules of vos-benchmark (github.com/hkchengrex/vos-benchmark), the de facto
standard for scoring semi-supervised VOS on datasets other than DAVIS (objects that appear
late, ids with gaps, annotations on some frames only); restated here, not copied:

* the caller feeds the scored frames of a video in order (by default the annotated frames
  without the first and the last, see :mod:`.score`);
* an object is any id that occurs in a scored frame's ground truth or result; from the first
  scored frame where it occurs (in either) on, it gets a J and an F on every scored frame
  (empty in both: 1 and 1; present in one only: J = 0, F = 0 unless its boundary is empty);
* only ids that occur in the ground truth of some scored frame are reported; ids that only a
  result has are counted nowhere, and their pixels are background for every object;
* ``exclude_given``: an object's first annotated frame where it occurs in the ground truth
  (the mask a semi-supervised method is given) is left out of its figures. Not a
  vos-benchmark rule; off by default.

Pure computation on arrays; reading files is the caller's business.
"""
from __future__ import annotations

import numpy as np

from .labels import label_ids, new_ids, unknown_lut
from .metrics import BOUND_TH, boundary_radius, mask_scores


class GenericVideo:
    """Per-object J and F of one video, fed one scored frame at a time (:meth:`add_frame`)."""

    def __init__(self, exclude_given: bool = False, bound_th: float = BOUND_TH) -> None:
        self.exclude_given = exclude_given
        self.bound_th = bound_th
        self._j: dict[int, list[float]] = {}  # every id seen so far, in order of appearance
        self._f: dict[int, list[float]] = {}
        self._lut = unknown_lut(set())
        self.in_ground_truth: set[int] = set()
        self._given: set[int] = set()  # ids whose given (first ground-truth) frame has passed

    def mark_given(self, gt_labels: np.ndarray) -> None:
        """An annotated frame that is not scored (the first one, by default): the objects in
        its ground truth (H, W) have had their given mask."""
        self._given.update(label_ids(gt_labels))

    def add_frame(self, gt_labels: np.ndarray, pred_labels: np.ndarray, void: np.ndarray | None = None) -> None:
        """Score one frame: ``gt_labels`` and ``pred_labels`` are (H, W) integer label maps of
        equal size (0 = background); ``void`` (H, W) bool: pixels left out of every object."""
        known = set(self._j)
        new = set(new_ids(gt_labels, known, self._lut)) | set(new_ids(pred_labels, known, self._lut))
        if new:
            for k in sorted(new):
                self._j[k] = []
                self._f[k] = []
            self._lut = unknown_lut(set(self._j))
        keep = None if void is None else ~void
        radius = boundary_radius(gt_labels.shape, self.bound_th)
        for k in self._j:
            gt = gt_labels == k
            pred = pred_labels == k
            if keep is not None:
                gt &= keep
                pred &= keep
            if gt.any():
                self.in_ground_truth.add(k)
                if k not in self._given:
                    self._given.add(k)
                    if self.exclude_given:
                        continue  # its given mask
            j, f = mask_scores(gt, pred, radius)
            self._j[k].append(j)
            self._f[k].append(f)

    def series(self) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """Per reported object (ascending id): its per-frame J and F, float64 arrays (T_k,).

        Reported: ids of the ground truth with at least one scored frame.
        """
        return {k: (np.array(self._j[k]), np.array(self._f[k]))
                for k in sorted(self.in_ground_truth) if self._j[k]}

    def result_only_ids(self) -> list[int]:
        """Ids that occurred in a scored result but in no scored ground truth (not reported)."""
        return sorted(set(self._j) - self.in_ground_truth)

    def unscored_ids(self) -> list[int]:
        """Ground-truth ids left without a scored frame (``exclude_given``: seen only on their given frame)."""
        return sorted(k for k in self.in_ground_truth if not self._j[k])


__all__ = ["GenericVideo"]
