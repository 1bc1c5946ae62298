"""Boxes, crops and paste-back: the original's arithmetic, checked by hand-computed boxes."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ssmvos.data.geometry import (CropBox, crop, crop_resize, crop_resize_tensors, mask_box, mask_boxes, paste_back,
                                  resize_image, resize_mask)


def rect_mask(h, w, x, y, bw, bh, value=1.0):
    m = np.zeros((h, w), np.float32)
    m[y:y + bh, x:x + bw] = value
    return m


def frame(h=40, w=60, c=2, seed=0):
    return np.random.default_rng(seed).random((h, w, c)).astype(np.float32) + 0.1  # never 0


def round_trip(f: np.ndarray, box: CropBox) -> np.ndarray:
    """crop -> N×C×h×w -> paste_back at the same size (identity resize) -> H×W×C."""
    probs = torch.from_numpy(crop(f, box)).permute(2, 0, 1)[None]
    return paste_back(probs, box, *f.shape[:2])[0].permute(1, 2, 0).numpy()


@pytest.mark.parametrize("box", [CropBox(5, 3, 30, 20), CropBox(0, 0, 60, 40), CropBox(-7, -4, 25, 18),
                                 CropBox(40, 30, 75, 55), CropBox(-10, -10, 70, 50)])
def test_crop_then_paste_back_restores_the_frame_inside_the_box(box):
    f = frame()
    got = round_trip(f, box)
    inside = np.zeros(f.shape[:2], bool)
    (_, _), (fy, fx) = box.overlap(*f.shape[:2])
    inside[fy, fx] = True
    np.testing.assert_allclose(got[inside], f[inside], atol=1e-6)
    assert not got[~inside].any()  # both channels 0 outside the box


def test_crop_pads_with_zeros_beyond_the_border():
    f = frame(c=3)
    out = crop(f, CropBox(-3, -2, 10, 8))
    assert out.shape == (10, 13, 3)
    assert not out[:2].any() and not out[:, :3].any()
    np.testing.assert_array_equal(out[2:, 3:], f[0:8, 0:10])
    gone = crop(f, CropBox(100, 100, 110, 105))  # entirely outside
    assert gone.shape == (5, 10, 3) and not gone.any()
    assert not round_trip(frame(), CropBox(100, 100, 110, 105)).any()


def test_mask_box_grows_by_the_margins():
    m = rect_mask(40, 60, x=10, y=5, bw=20, bh=10)
    assert mask_box(m, 0.5) == CropBox(0, 0, 40, 20)  # 10 - 10, 5 - 5, 30 + 10, 15 + 5
    assert mask_box(m, 0.0) == CropBox(10, 5, 30, 15)
    # (left, right, top, bottom): 10 - 5, 5 - 3, 30 + 20, 15 + 0
    assert mask_box(m, (0.25, 1.0, 0.3, 0.0)) == CropBox(5, 2, 50, 15)
    # fractional edges are truncated, not rounded: 10 - 6.6 = 3.4 -> 3, 30 + 6.6 = 36.6 -> 36
    assert mask_box(m, (0.33, 0.33, 0.0, 0.0)) == CropBox(3, 5, 36, 15)


def test_mask_box_truncates_negative_coordinates_toward_zero():
    m = rect_mask(20, 20, x=1, y=2, bw=4, bh=4)
    # x1 = 1 - 4·0.625 = -1.5 -> -1 ; x2 = 5 + 2.5 = 7.5 -> 7 ; y1 = 2 - 4·0.875 = -1.5 -> -1 ; y2 = 6
    assert mask_box(m, (0.625, 0.625, 0.875, 0.0)) == CropBox(-1, -1, 7, 6)


def test_mask_box_beyond_the_far_border():
    m = rect_mask(30, 40, x=30, y=25, bw=10, bh=5)
    assert mask_box(m, 1.0) == CropBox(20, 20, 50, 35)


def test_five_pixel_rule():
    whole = CropBox(0, 0, 50, 30)
    assert mask_box(rect_mask(30, 50, 20, 10, 1, 1), 0.5) == whole  # 1 px -> grown 2×2
    assert mask_box(rect_mask(30, 50, 20, 10, 2, 2), 0.5) == whole  # 2 px -> grown 4×4
    assert mask_box(rect_mask(30, 50, 20, 10, 2, 2), 1.0) == CropBox(18, 8, 24, 14)  # 6×6 > 5
    assert mask_box(rect_mask(30, 50, 20, 10, 5, 5), 0.0) == whole  # exactly 5 is not more than 5
    assert mask_box(rect_mask(30, 50, 20, 10, 20, 1), 0.5) == whole  # wide enough, not tall enough


def test_empty_and_fractional_masks():
    assert mask_box(np.zeros((30, 50), np.float32), 0.5) == CropBox(0, 0, 50, 30)
    assert mask_box(np.full((30, 50), 1e-9), 0.5) == CropBox(0, 0, 50, 30)  # np.isclose(·, 0)
    m = rect_mask(30, 50, 0, 0, 50, 30, value=0.7)  # values in (0, 1) do not count (uint8 cast)...
    m[10:20, 5:15] = 1.0
    assert mask_box(m, 0.0) == CropBox(5, 10, 15, 20)  # ...only the 1s do
    assert mask_box(rect_mask(30, 50, 0, 0, 50, 30, value=0.7), 0.0) == CropBox(0, 0, 50, 30)
    assert mask_box(np.full((30, 50), 255, np.uint8), 0.0) == CropBox(0, 0, 50, 30)


def test_resizes():
    img = np.random.default_rng(1).integers(0, 256, (30, 50, 3), dtype=np.uint8)
    small = resize_image(img, 15, 20)
    assert small.shape == (15, 20, 3) and small.dtype == np.uint8
    m = rect_mask(30, 50, 10, 10, 20, 10)
    r = resize_mask(m, 60, 100)
    assert r.dtype == np.float32 and set(np.unique(r)) == {0.0, 1.0}
    assert r[20:40, 20:60].all() and r.sum() == pytest.approx(4 * m.sum(), rel=0.1)
    ci, cm = crop_resize(img, m, CropBox(10, 10, 30, 20), 40, 80)
    assert ci.shape == (40, 80, 3) and cm.shape == (40, 80) and cm.all()


# -- the same geometry as tensor operations (the device path of the engine) ---------------------
def _masks_for_boxes(rng, h, w):
    """Masks whose boxes cover the cases: past every edge, tiny (whole frame), empty, scattered."""
    yy, xx = np.mgrid[:h, :w]
    out = [np.zeros((h, w), np.float32), rect_mask(h, w, 200, 200, 2, 2), rect_mask(h, w, 0, 0, w, h),
           rect_mask(h, w, w - 40, h - 30, 40, 30), rect_mask(h, w, 0, 10, 25, 300),
           (rng.random((h, w)) > 0.999).astype(np.float32), rect_mask(h, w, 100, 100, 50, 40, value=0.5)]
    for _ in range(12):
        cy, cx, r = rng.integers(0, h), rng.integers(0, w), rng.integers(3, 250)
        out.append((((yy - cy) ** 2 + (xx - cx) ** 2) < r * r).astype(np.float32))
    return out


@pytest.mark.parametrize("margins", [0.5, 0.1, (0.2, 0.7, 0.3, 0.9)])
def test_mask_boxes_on_tensors_equal_mask_box(margins):
    rng = np.random.default_rng(1)
    masks = _masks_for_boxes(rng, 480, 854)
    want = [mask_box(m, margins) for m in masks]
    got = mask_boxes(torch.from_numpy(np.stack(masks)), margins).tolist()
    assert got == [[b.x1, b.y1, b.x2, b.y2] for b in want]
    assert mask_boxes(torch.from_numpy(np.stack(masks) >= 1), margins).tolist() == got  # bool masks too


@pytest.mark.parametrize("size", [(512, 512), (256, 256), (224, 224), (193, 300)])
def test_crop_resize_on_tensors_equals_opencv(size):
    """Bit for bit: OpenCV's uint8 fixed-point resize and the thresholded float resize, for
    boxes inside, across and past the frame edges, enlarging and reducing (exactly 2× too)."""
    rng = np.random.default_rng(sum(size))
    h, w = 480, 854
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    masks = _masks_for_boxes(rng, h, w)
    boxes = [mask_box(m, 0.5) for m in masks]
    boxes += [CropBox(-30, -50, -30 + 2 * size[1], -50 + 2 * size[0]), CropBox(3, 5, 3 + size[1], 5 + size[0]),
              CropBox(800, 400, 1300, 700), CropBox(-900, -600, -10, -20)]
    masks += [masks[-1]] * 4
    got_images, got_masks = crop_resize_tensors(torch.from_numpy(image), torch.from_numpy(np.stack(masks)),
                                                torch.tensor([[b.x1, b.y1, b.x2, b.y2] for b in boxes]), *size)
    for k, (m, b) in enumerate(zip(masks, boxes)):
        want_image, want_mask = crop_resize(image, m, b, *size)
        np.testing.assert_array_equal(got_images[k].numpy(), want_image, err_msg=f"image, box {b}")
        np.testing.assert_array_equal(got_masks[k].numpy(), want_mask.astype(np.uint8), err_msg=f"mask, box {b}")
