"""TrainSet: the original's training samples, reproducible per (seed, epoch, index)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from conftest import DAVIS16
from ssmvos.data.io import write_palette_png
from ssmvos.data.tensors import IMAGENET_MEAN, IMAGENET_STD
from ssmvos.data.splits import as_entries, check_track_order
from ssmvos.data.train_set import TrainSet, worker_init_fn
from ssmvos.errors import SSMVOSError

H, W = 48, 64
NO_AUGMENT = dict(flip_rate=0.0, rotation=0.0, min_margin=0.0, max_margin=0.0, blur_rate=0.0)


def colour(video: int, frame: int) -> tuple[int, int, int]:
    return 20 + 40 * frame, 60 + 100 * video, 90


def synthetic_split(root: Path) -> list[dict]:
    """Video 0 with objects 1 and 2 (5 frames), video 1 with object 1 (3 frames).

    Each frame is one solid colour (identifying video and frame); object 1 is a 20×20 square
    that moves 4 px right per frame, object 2 a fixed rectangle.
    """
    entries = []
    for video, (n, objects) in enumerate([(5, (1, 2)), (3, (1,))]):
        paths = []
        for k in range(n):
            img = root / f"v{video}" / f"{k:05d}.png"
            msk = root / f"a{video}" / f"{k:05d}.png"
            img.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((H, W, 3), colour(video, k), np.uint8)).save(img)
            labels = np.zeros((H, W), np.uint8)
            labels[10:30, 4 * k + 5:4 * k + 25] = 1
            if 2 in objects:
                labels[35:45, 40:60] = 2
            write_palette_png(msk, labels)
            paths.append((img, msk))
        for obj in objects:
            entries += [dict(image_path=str(i), mask_path=str(m), video_name=f"v{video}", num_frames=n,
                             frame_index=k, object_index=obj) for k, (i, m) in enumerate(paths)]
    return entries


def centre_colour(img: torch.Tensor) -> tuple[int, ...]:
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    rgb = (img * std + mean) * 255
    return tuple(int(round(float(v))) for v in rgb[:, img.shape[1] // 2, img.shape[2] // 2])


@pytest.fixture
def split(tmp_path):
    return synthetic_split(tmp_path)


def test_shapes_dtypes_and_ranges(split):
    ds = TrainSet(split, height=32, width=40)
    assert len(ds) == len(split) == 13
    ref_img, ref_mask, cur_img, cur_mask, prev = ds[3]
    assert ref_img.shape == cur_img.shape == (3, 32, 40)
    assert ref_mask.shape == cur_mask.shape == prev.shape == (1, 32, 40)
    assert all(t.dtype == torch.float32 for t in (ref_img, ref_mask, cur_img, cur_mask, prev))
    for m in (ref_mask, cur_mask):
        assert set(torch.unique(m).tolist()) <= {0.0, 1.0}
    assert 0.0 <= float(prev.min()) and float(prev.max()) <= 1.0
    assert ref_mask.sum() > 0


def test_reference_is_a_random_frame_of_the_same_object_track(split):
    ds = TrainSet(split, height=16, width=16, **NO_AUGMENT)
    tracks = [(0, 5), (5, 10), (10, 13)]
    for start, end in tracks:
        seen = set()
        for index in range(start, end):
            for epoch in range(6):
                ds.set_epoch(epoch)
                got = centre_colour(ds[index][0])
                frame = [k for k in range(end - start) if np.allclose(got, colour(int(split[start]["video_name"][1]), k), atol=2)]
                assert len(frame) == 1, (index, got)
                seen.add(frame[0])
        assert seen == set(range(end - start))  # every frame of the track, nothing else


def test_current_is_cropped_around_the_previous_frames_mask(split):
    ds = TrainSet(split, height=40, width=40, **NO_AUGMENT)
    for index in range(5):  # object 1 of video 0: the square moves 4 px (= 8 output px) per frame
        ref_img, ref_mask, cur_img, cur_mask, prev = ds[index]
        assert prev.all()  # the crop is exactly the previous mask's box
        assert ref_mask.all()
        if index == 0:  # frame 0: previous mask = its own mask
            assert cur_mask.all()
        else:
            assert not cur_mask[0, :, :7].any() and cur_mask[0, :, 9:].all()
        assert centre_colour(cur_img) == pytest.approx(colour(0, index), abs=2)


def test_blur_rate_turns_the_previous_mask_into_a_heat_map(split):
    hard = TrainSet(split, height=32, width=32, blur_rate=0.0)
    soft = TrainSet(split, height=32, width=32, blur_rate=1.0)
    for index in (0, 7, 11):
        assert set(torch.unique(hard[index][4]).tolist()) <= {0.0, 1.0}
        p = soft[index][4]
        assert float(p.max()) > 0.5 and ((p > 0.01) & (p < 0.99)).float().mean() > 0.2


def test_same_seed_and_epoch_give_identical_samples(split):
    a, b = TrainSet(split, 32, 32, seed=7), TrainSet(split, 32, 32, seed=7)
    for index in (0, 4, 12):
        for x, y in zip(a[index], b[index]):
            assert torch.equal(x, y)
    c = TrainSet(split, 32, 32, seed=8)
    assert not torch.equal(a[4][2], c[4][2])


def test_a_new_epoch_draws_new_augmentations(split):
    ds = TrainSet(split, 32, 32)
    first = ds[6]
    ds.set_epoch(1)
    second = ds[6]
    assert not all(torch.equal(x, y) for x, y in zip(first, second))
    ds.set_epoch(0)
    assert all(torch.equal(x, y) for x, y in zip(first, ds[6]))


def test_samples_do_not_depend_on_workers_or_order(split):
    ds = TrainSet(split, 24, 24, seed=3)
    ds.set_epoch(2)
    direct = torch.stack([ds[i][2] for i in range(len(ds))])
    loader = DataLoader(ds, batch_size=4, num_workers=2, worker_init_fn=worker_init_fn)
    batched = torch.cat([batch[2] for batch in loader])
    assert torch.equal(direct, batched)
    assert torch.equal(ds[9][2], direct[9])  # out of order, after other items


def test_split_out_of_track_order_is_refused(split):
    shuffled = split[:2] + [split[3], split[2]] + split[4:]
    with pytest.raises(SSMVOSError, match="consecutive"):
        TrainSet(shuffled)
    with pytest.raises(SSMVOSError, match="incomplete"):
        check_track_order(as_entries(split[:-1]))
    with pytest.raises(SSMVOSError, match="consecutive"):
        TrainSet(split[1:])


def test_missing_or_mismatched_files_name_the_file(split, tmp_path):
    broken = [dict(e) for e in split]
    broken[1]["image_path"] = str(tmp_path / "nowhere.png")
    with pytest.raises(SSMVOSError, match="nowhere.png"):
        TrainSet(broken, 16, 16)[1]
    small = tmp_path / "small.png"
    write_palette_png(small, np.ones((H // 2, W // 2), np.uint8))
    broken = [dict(e) for e in split]
    broken[2]["mask_path"] = str(small)
    with pytest.raises(SSMVOSError, match="small.png"):
        TrainSet(broken, 16, 16)[2]
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"not a png")
    broken[2]["mask_path"] = str(corrupt)
    with pytest.raises(SSMVOSError, match="corrupt.png"):
        TrainSet(broken, 16, 16)[2]


def davis_track(video: str) -> list[dict]:
    images = sorted((DAVIS16 / "JPEGImages" / "480p" / video).glob("*.jpg"))
    masks = sorted((DAVIS16 / "Annotations" / "480p" / video).glob("*.png"))
    return [dict(image_path=str(i), mask_path=str(m), video_name=video, num_frames=len(images),
                 frame_index=k, object_index=255) for k, (i, m) in enumerate(zip(images, masks))]


def test_real_davis_frames():
    ds = TrainSet(davis_track("blackswan"), height=128, width=128)
    for index in (0, 25):
        ref_img, ref_mask, cur_img, cur_mask, prev = ds[index]
        assert ref_img.shape == (3, 128, 128) and torch.isfinite(ref_img).all()
        assert 0.05 < float(ref_mask.mean()) < 0.95  # cropped around the swan: a good part is swan
        assert 0.05 < float(cur_mask.mean()) < 0.95
        assert float(prev.max()) > 0.5
        # the heat map peaks on the object (the previous frame's swan, near the current one)
        y, x = divmod(int(prev.argmax()), 128)
        ys, xs = torch.nonzero(cur_mask[0], as_tuple=True)
        assert int(ys.min()) <= y <= int(ys.max()) and int(xs.min()) <= x <= int(xs.max())
