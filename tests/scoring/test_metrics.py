"""J, F and statistics on hand-made masks whose figures can be worked out by hand."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from ssmvos.scoring.metrics import (boundary_f, boundary_radius, db_statistics, decay_bins, disk_kernel,
                                       frame_scores, jaccard, seg2bmap)


def mask(shape, *pixels):
    m = np.zeros(shape, dtype=bool)
    for y, x in pixels:
        m[y, x] = True
    return m


def boundary_by_definition(seg: np.ndarray) -> np.ndarray:
    """The Berkeley seg2bmap rule written pixel by pixel (outside the image = background)."""
    h, w = seg.shape
    at = lambda y, x: bool(seg[y, x]) if y < h and x < w else False  # noqa: E731
    b = np.zeros((h, w), dtype=bool)
    for y in range(h):
        for x in range(w):
            if y == h - 1 and x == w - 1:
                continue
            if y == h - 1:
                b[y, x] = at(y, x) != at(y, x + 1)
            elif x == w - 1:
                b[y, x] = at(y, x) != at(y + 1, x)
            else:
                b[y, x] = at(y, x) != at(y, x + 1) or at(y, x) != at(y + 1, x) or at(y, x) != at(y + 1, x + 1)
    return b


def boundary_f_full_frame(gt: np.ndarray, pred: np.ndarray) -> float:
    """The F-measure on whole frames (no cropping), for comparison with the cropped fast path."""
    kernel = disk_kernel(boundary_radius(gt.shape))
    gb, pb = boundary_by_definition(gt), boundary_by_definition(pred)
    n_g, n_p = gb.sum(), pb.sum()
    if n_g == 0 or n_p == 0:
        return 1.0 if n_g == n_p else 0.0
    prec = (pb & (cv2.dilate(gb.astype(np.uint8), kernel) > 0)).sum() / n_p
    rec = (gb & (cv2.dilate(pb.astype(np.uint8), kernel) > 0)).sum() / n_g
    return 0.0 if prec + rec == 0 else 2 * prec * rec / (prec + rec)


def random_blobs(rng, shape, n):
    m = np.zeros(shape, dtype=np.uint8)
    for _ in range(n):
        cy, cx = rng.integers(0, shape[0]), rng.integers(0, shape[1])
        axes = (int(rng.integers(1, shape[1] // 3)), int(rng.integers(1, shape[0] // 3)))
        cv2.ellipse(m, (int(cx), int(cy)), axes, float(rng.integers(0, 180)), 0, 360, 1, -1)
    return m.astype(bool)


# ------------------------------------------------------------------ boundaries and kernels

def test_single_pixel_boundary_is_the_2x2_block_towards_the_origin():
    b = seg2bmap(mask((5, 5), (2, 2)))
    assert set(zip(*np.nonzero(b))) == {(1, 1), (1, 2), (2, 1), (2, 2)}


def test_full_frame_mask_has_no_boundary_and_border_rules_hold():
    assert not seg2bmap(np.ones((6, 7), bool)).any()
    last_col = np.zeros((6, 7), bool)
    last_col[:, -1] = True
    # The column left of it is the boundary; the last column itself never differs downwards.
    np.testing.assert_array_equal(np.nonzero(seg2bmap(last_col))[1], np.full(6, 5))


def test_boundary_map_matches_the_rule_pixel_by_pixel():
    rng = np.random.default_rng(1)
    for _ in range(40):
        seg = rng.random((int(rng.integers(1, 9)), int(rng.integers(1, 9)))) < rng.random()
        np.testing.assert_array_equal(seg2bmap(seg), boundary_by_definition(seg))


def test_radius_and_disk_as_the_official_code():
    assert boundary_radius((480, 854)) == 8  # ceil(0.008 * 979.6)
    assert boundary_radius((50, 50)) == 1
    np.testing.assert_array_equal(disk_kernel(1), [[0, 1, 0], [1, 1, 1], [0, 1, 0]])
    k = disk_kernel(8)
    yy, xx = np.mgrid[-8:9, -8:9]
    np.testing.assert_array_equal(k, (yy ** 2 + xx ** 2 <= 64).astype(np.uint8))


# ------------------------------------------------------------------ J

def test_jaccard_by_hand():
    shape = (10, 10)
    empty = np.zeros(shape, bool)
    assert jaccard(empty, empty) == 1.0
    assert jaccard(mask(shape, (3, 3)), empty) == 0.0
    assert jaccard(empty, mask(shape, (3, 3))) == 0.0
    assert jaccard(mask(shape, (3, 3)), mask(shape, (3, 3))) == 1.0
    assert jaccard(mask(shape, (3, 3)), mask(shape, (3, 4))) == 0.0
    gt, pred = mask(shape, (1, 1), (1, 2)), mask(shape, (1, 1), (5, 5))
    assert jaccard(gt, pred) == pytest.approx(1 / 3)
    # Void pixels leave both sets: the false positive at (5, 5) no longer counts.
    assert jaccard(gt, pred, void=mask(shape, (5, 5))) == pytest.approx(1 / 2)
    assert jaccard(gt, pred, void=gt | pred) == 1.0  # nothing left: empty union


# ------------------------------------------------------------------ F

def test_boundary_f_empty_conventions():
    shape = (50, 50)
    empty = np.zeros(shape, bool)
    assert boundary_f(empty, empty) == 1.0
    assert boundary_f(mask(shape, (10, 10)), empty) == 0.0  # precision 1, recall 0
    assert boundary_f(empty, mask(shape, (10, 10))) == 0.0  # precision 0, recall 1
    # A mask filling the frame has no boundary at all: against an empty one F is 1 (J is 0).
    assert boundary_f(np.ones(shape, bool), empty) == 1.0
    assert jaccard(np.ones(shape, bool), empty) == 0.0


def test_boundary_f_single_pixels_by_hand():
    # 50x50: radius ceil(0.008 * 70.7) = 1 (a plus-shaped disk). A pixel's boundary is the
    # 2x2 block up-left of it; blocks one column apart match fully, two apart half, three not.
    shape = (50, 50)
    gt = mask(shape, (10, 10))
    assert boundary_f(gt, mask(shape, (10, 10))) == 1.0
    assert boundary_f(gt, mask(shape, (10, 11))) == 1.0
    assert boundary_f(gt, mask(shape, (10, 12))) == pytest.approx(0.5)
    assert boundary_f(gt, mask(shape, (10, 13))) == 0.0
    # Diagonal neighbour blocks: 3 of 4 pixels within the plus-shaped reach each way.
    assert boundary_f(gt, mask(shape, (11, 11))) == pytest.approx(0.75)


def test_boundary_f_touching_the_image_border():
    shape = (50, 50)
    gt = np.zeros(shape, bool)
    gt[:, 45:] = True  # a band along the right border: boundary = column 44 only
    pred = np.zeros(shape, bool)
    pred[:, 47:] = True  # boundary = column 46: two columns away, beyond the radius of 1
    assert boundary_f(gt, pred) == 0.0
    pred[:, 46:] = True  # boundary = column 45: within reach everywhere
    assert boundary_f(gt, pred) == 1.0
    # A corner object: its boundary hugs the last row and column rules.
    corner = mask(shape, (49, 49))  # bottom-right pixel: boundary (48, 48), (48, 49), (49, 48)
    np.testing.assert_array_equal(np.argwhere(seg2bmap(corner)), [[48, 48], [48, 49], [49, 48]])
    assert boundary_f(corner, corner) == 1.0


def test_void_pixels_become_background_before_boundaries():
    shape = (50, 50)
    gt = np.zeros(shape, bool)
    gt[10:20, 10:20] = True
    pred = gt.copy()
    pred[30:40, 30:40] = True  # a far false positive halves precision...
    assert boundary_f(gt, pred) < 0.8
    void = np.zeros(shape, bool)
    void[25:45, 25:45] = True  # ...unless it lies in void
    assert boundary_f(gt, pred, void=void) == 1.0


def test_cropped_fast_path_equals_the_full_frame_computation():
    rng = np.random.default_rng(7)
    for i in range(30):
        shape = (int(rng.integers(20, 90)), int(rng.integers(20, 120)))
        gt = random_blobs(rng, shape, int(rng.integers(0, 3)))
        pred = random_blobs(rng, shape, int(rng.integers(0, 3))) if i % 3 else np.roll(gt, i % 5, axis=i % 2)
        assert boundary_f(gt, pred) == pytest.approx(boundary_f_full_frame(gt, pred), abs=1e-12)


# ------------------------------------------------------------------ label maps

def test_frame_scores_for_several_objects():
    shape = (40, 60)
    gt = np.zeros(shape, np.uint8)
    gt[5:15, 5:15] = 1
    gt[20:30, 30:50] = 2
    gt[35:38, 0:3] = 7  # above n_objects: belongs to no object
    pred = np.zeros(shape, np.uint8)
    pred[5:15, 5:15] = 1  # object 1 exact
    pred[20:30, 30:40] = 2  # object 2 half
    j, f = frame_scores(gt, pred, n_objects=4)
    assert j.tolist()[:2] == [1.0, 0.5] and f[0] == 1.0
    assert f[1] == pytest.approx(boundary_f(gt == 2, pred == 2))
    assert j[2] == f[2] == 1.0  # object 3: absent from both
    assert j[3] == f[3] == 1.0
    j, f = frame_scores(gt, np.zeros(shape, np.uint8), n_objects=2)  # missing objects score 0
    assert j.tolist() == [0.0, 0.0] and f.tolist() == [0.0, 0.0]
    void = gt == 2
    j, _ = frame_scores(gt, pred, n_objects=2, void=void)
    assert j.tolist() == [1.0, 1.0]  # object 2 entirely void: empty union


# ------------------------------------------------------------------ statistics

def test_statistics_by_hand():
    # n = 4: linspace(1, 4, 5) = 1, 1.75, 2.5, 3.25, 4 -> rounded (2.5 up, thanks to the
    # +1e-10) 1, 2, 3, 3, 4 -> ids 0, 1, 2, 2, 3; bin i = values[ids[i] : ids[i+1] + 1].
    assert decay_bins(4) == [(0, 2), (1, 3), (2, 3), (2, 4)]
    mean, recall, decay = db_statistics([0.2, 0.6, 0.8, 1.0])
    assert mean == pytest.approx(0.65)
    assert recall == pytest.approx(0.75)
    assert decay == pytest.approx((0.2 + 0.6) / 2 - (0.8 + 1.0) / 2)
    # Recall counts values strictly above 0.5.
    assert db_statistics([0.5, 0.5, 0.51])[1] == pytest.approx(1 / 3)


def test_decay_bins_of_a_typical_sequence():
    # n = 48 (a 50-frame video): linspace = 1, 12.75, 24.5, 36.25, 48 -> 0, 12, 24, 35, 47.
    assert decay_bins(48) == [(0, 13), (12, 25), (24, 36), (35, 48)]
    values = np.r_[np.ones(13), np.zeros(22), np.full(13, 0.25)]
    assert db_statistics(values)[2] == pytest.approx(0.75)


def test_decay_uint8_wrap_of_the_official_code_is_kept():
    # n = 300: ids 0, 75, 150, 224, 299 -> uint8 -> 299 wraps to 43, so the last bin
    # values[224:44] is empty and the official decay is nan.
    assert decay_bins(300)[3] == (224, 44)
    assert math.isnan(db_statistics(np.linspace(0, 1, 300))[2])
