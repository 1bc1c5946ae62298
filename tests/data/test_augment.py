"""Training augmentations: geometry stays aligned, draws are reproducible, heat maps behave."""
from __future__ import annotations

from dataclasses import astuple

import numpy as np
import pytest

from ssmvos.data import augment as A
from ssmvos.data.geometry import CropBox, crop, mask_box, resize_image, resize_mask

RED = np.array([250, 10, 10], dtype=np.uint8)


def painted_scene(seed: int = 0, h: int = 90, w: int = 160):
    """Random dark image with an L-shaped object painted red; returns (image, mask)."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 120, (h, w, 3), dtype=np.uint8)
    mask = np.zeros((h, w), np.float32)
    mask[20:70, 40:60] = 1
    mask[55:70, 60:110] = 1
    image[mask > 0] = RED
    return image, mask


def red_fraction(image: np.ndarray, where: np.ndarray) -> float:
    px = image[where > 0].astype(int)
    return float(((px[:, 0] > 180) & (px[:, 1] < 70) & (px[:, 2] < 70)).mean())


def test_hflip_mirrors_columns():
    a = np.arange(24, dtype=np.float32).reshape(2, 4, 3)
    np.testing.assert_array_equal(A.hflip(a), a[:, ::-1])
    np.testing.assert_array_equal(A.hflip(a[:, :, 0]), a[:, ::-1, 0])


@pytest.mark.parametrize("angle", [30.0, -45.0, 12.5])
def test_rotation_canvas_keeps_the_whole_frame(angle):
    h, w = 48, 80
    rad = np.deg2rad(abs(angle))
    _, (nh, nw) = A.rotation_matrix(h, w, angle)
    assert (nh, nw) == (int(h * np.cos(rad) + w * np.sin(rad)), int(h * np.sin(rad) + w * np.cos(rad)))
    rotated = A.rotate_mask(np.ones((h, w), np.float32), angle)
    assert rotated.shape == (nh, nw)
    assert abs(rotated.sum() - h * w) < 2 * (h + w)  # area kept up to the border pixels
    ys, xs = np.nonzero(rotated)  # the rotated frame reaches (almost) every canvas edge
    assert xs.min() <= 1 and ys.min() <= 1 and xs.max() >= nw - 2 and ys.max() >= nh - 2


def test_rotation_zero_is_identity_and_positive_is_clockwise():
    image, mask = painted_scene()
    np.testing.assert_array_equal(A.rotate_bound(image, 0.0), image)
    dot = np.zeros((41, 41), np.float32)
    dot[2:6, 18:23] = 1  # near the top, centred
    ys, xs = np.nonzero(A.rotate_mask(dot, 90.0))
    assert xs.mean() > 33 and abs(ys.mean() - 20) < 3  # clockwise: top goes right


def test_draw_order_matches_the_original():
    params = A.draw_params(np.random.default_rng(5), 0.5, 45.0, 0.1, 0.9)
    rng = np.random.default_rng(5)
    flip = rng.random() < 0.5
    angle = rng.uniform(-45.0, 45.0)
    top, bottom, left, right = (rng.uniform(0.1, 0.9) for _ in range(4))
    assert params.flip == flip and params.angle == pytest.approx(angle)
    assert params.margins == pytest.approx((left, right, top, bottom))


@pytest.mark.parametrize("seed", range(8))
def test_image_mask_and_bounding_mask_stay_aligned(seed):
    image, mask = painted_scene(seed)
    params = A.draw_params(np.random.default_rng(seed), 0.5, 45.0, 0.0, 1.0)
    out = A.apply_params(image, mask, mask.copy(), params, 64, 96)
    assert out.image.shape == (64, 96, 3) and out.image.dtype == np.uint8
    assert out.mask.shape == (64, 96) and set(np.unique(out.mask)) <= {0.0, 1.0}
    assert out.mask.sum() > 100
    assert red_fraction(out.image, out.mask) > 0.95
    assert red_fraction(out.image, 1 - out.mask) < 0.1
    np.testing.assert_array_equal(out.mask, out.bounding_mask)


def test_flip_and_rotation_move_image_and_mask_together():
    image, mask = painted_scene(3)
    for flip in (False, True):
        for angle in (-40.0, 0.0, 33.0):
            out = A.apply_params(image, mask, None, A.AugmentParams(flip, angle, (0.3,) * 4), 80, 80)
            assert red_fraction(out.image, out.mask) > 0.95
    plain = A.apply_params(image, mask, None, A.AugmentParams(False, 0.0, (0.3,) * 4), 80, 80)
    flipped = A.apply_params(image, mask, None, A.AugmentParams(True, 0.0, (0.3,) * 4), 80, 80)
    np.testing.assert_array_equal(flipped.mask, plain.mask[:, ::-1])


def test_crop_follows_the_bounding_mask():
    image, mask = painted_scene(1)
    bounding = np.zeros_like(mask)
    bounding[10:30, 100:140] = 1  # elsewhere than the object
    out = A.apply_params(image, mask, bounding, A.AugmentParams(False, 0.0, (0.0,) * 4), 40, 80)
    assert out.box == CropBox(100, 10, 140, 30)
    assert out.bounding_mask.all()  # the crop is exactly the bounding box
    np.testing.assert_array_equal(out.image, resize_image(image[10:30, 100:140], 40, 80))
    # margins grow the crop on each side independently: left 1.0 -> the box starts 40 px further left
    wide = A.apply_params(image, mask, bounding, A.AugmentParams(False, 0.0, (1.0, 0.0, 0.0, 0.5)), 30, 80)
    assert wide.box == CropBox(60, 10, 140, 40)
    assert wide.bounding_mask[:20, 40:].all() and not wide.bounding_mask[:, :40].any()


def test_empty_bounding_mask_means_the_whole_frame():
    image, mask = painted_scene(2)
    out = A.apply_params(image, mask, np.zeros_like(mask), A.AugmentParams(False, 0.0, (0.5,) * 4), 45, 80)
    assert out.box == CropBox(0, 0, 160, 90)
    assert not out.bounding_mask.any()


def test_same_generator_same_result_and_different_seeds_differ():
    image, mask = painted_scene(4)
    a = A.augment(np.random.default_rng(9), image, mask, None, 48, 48)
    b = A.augment(np.random.default_rng(9), image, mask, None, 48, 48)
    c = A.augment(np.random.default_rng(10), image, mask, None, 48, 48)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.mask, b.mask)
    assert not np.array_equal(a.image, c.image)


def naive_moments(mask):
    """The original's formula over all pixel coordinates (x, y)."""
    pts = np.asarray(np.nonzero(mask)).astype(np.float32).T[:, ::-1]
    centre = np.median(pts, axis=0)
    std = np.maximum(1.4826 * np.median(np.abs(pts - centre), axis=0), 5.0)
    return centre, std


@pytest.mark.parametrize("seed", range(6))
def test_robust_moments_equal_the_pixel_medians(seed):
    rng = np.random.default_rng(seed)
    mask = np.zeros((70, 90), np.float32)
    mask[rng.random((70, 90)) < 0.1 + 0.1 * seed] = 1
    mask[10:30, 5:20] = 1  # skew it
    centre, std = A.robust_moments(mask)
    want_c, want_s = naive_moments(mask)
    np.testing.assert_allclose(centre, want_c, atol=1e-6)
    np.testing.assert_allclose(std, want_s, rtol=1e-6)


def test_tiny_mask_std_is_at_least_5_px_and_empty_is_none():
    mask = np.zeros((30, 30), np.float32)
    mask[12, 7] = 1
    centre, std = A.robust_moments(mask)
    np.testing.assert_allclose(centre, [7, 12])
    np.testing.assert_allclose(std, [5, 5])
    assert A.robust_moments(np.zeros((5, 5))) is None


def test_gaussian_map_equals_the_full_formula():
    h, w = 37, 53
    centre, std = np.array([20.3, 11.7]), np.array([6.5, 9.25])
    ny, nx = np.mgrid[0:h, 0:w]
    want = np.exp(-((nx - centre[0]) ** 2 * 0.5 / std[0] ** 2 + (ny - centre[1]) ** 2 * 0.5 / std[1] ** 2))
    got = A.gaussian_map((h, w), centre, std)
    assert got.dtype == np.float32 and got.shape == (h, w)
    np.testing.assert_allclose(got, want, atol=1e-6)


@pytest.mark.parametrize("seed", range(5))
def test_heatmap_peaks_near_the_median_centre(seed):
    _, mask = painted_scene(seed)
    centre, std = A.robust_moments(mask)
    heat = A.heatmap(np.random.default_rng(seed), mask)
    assert heat.dtype == np.float32 and heat.shape == mask.shape
    assert 0.0 <= heat.min() and heat.max() <= 1.0 and heat.max() > 0.95
    y, x = np.unravel_index(np.argmax(heat), heat.shape)
    assert abs(x - centre[0]) <= 0.2 * std[0] + 1 and abs(y - centre[1]) <= 0.2 * std[1] + 1


def test_heatmap_jitter_is_random_but_reproducible_and_empty_stays_empty():
    _, mask = painted_scene()
    a = A.heatmap(np.random.default_rng(1), mask)
    np.testing.assert_array_equal(a, A.heatmap(np.random.default_rng(1), mask))
    assert not np.array_equal(a, A.heatmap(np.random.default_rng(2), mask))
    empty = A.heatmap(np.random.default_rng(1), np.zeros((20, 30), np.float32))
    assert empty.shape == (20, 30) and not empty.any()


def reference_apply(image, mask, bounding, params, height, width):
    """The original's order of operations, whole frames: flip, rotate, threshold, mask_box, crop, resize."""
    if params.flip:
        image, mask, bounding = A.hflip(image), A.hflip(mask), A.hflip(bounding)
    image, mask, bounding = (A.rotate_bound(image, params.angle), A.rotate_mask(mask, params.angle),
                             A.rotate_mask(bounding, params.angle))
    box = mask_box(bounding, params.margins)
    return (resize_image(crop(image, box), height, width), resize_mask(crop(mask, box), height, width),
            resize_mask(crop(bounding, box), height, width), box)


@pytest.mark.parametrize("seed", range(12))
def test_fast_path_equals_rotating_whole_frames(seed):
    rng = np.random.default_rng(100 + seed)
    image, mask = painted_scene(seed)
    bounding = np.roll(mask, (int(rng.integers(-15, 15)), int(rng.integers(-30, 30))), axis=(0, 1))
    if seed == 0:
        bounding[:] = 0  # empty bounding mask: whole canvas
    if seed == 1:
        bounding = np.zeros_like(mask)
        bounding[0:3, 150:160] = 1  # at the corner, partly rotated off the source frame
    params = A.draw_params(rng, 0.5, 45.0, 0.0, 1.0)
    got = A.apply_params(image, mask, bounding, params, 64, 80)
    want_img, want_mask, want_bound, want_box = reference_apply(image, mask, bounding, params, 64, 80)
    assert max(abs(a - b) for a, b in zip(astuple(got.box), astuple(want_box))) <= 1
    if got.box == want_box:
        assert np.abs(got.image.astype(int) - want_img).mean() < 0.5
        assert (got.mask == want_mask).mean() > 0.995
        assert (got.bounding_mask == want_bound).mean() > 0.995
