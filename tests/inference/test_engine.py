"""The inference engine: batched/cached equals the plain per-object loop; the video API;
YouTube-VOS-style objects that start late; submission archives."""
from __future__ import annotations

import zipfile

import numpy as np
import pytest
import torch

from conftest import DAVIS16, REFERENCE, davis_entries
from ssmvos import SSMVOSError
from ssmvos.data import geometry
from ssmvos.data.io import object_mask, read_frame, read_mask
from ssmvos.data.tensors import image_to_tensor, mask_to_tensor
from ssmvos.inference.engine import Engine
from ssmvos.runtime import RuntimeSpec
from ssmvos.inference.evaluate import evaluate_split, write_submission_zip
from ssmvos.inference.predictor import VideoPredictor
from ssmvos.inference.results import ResultStore

SIZE = (224, 224)


@pytest.fixture(scope="module")
def libby():
    ann = REFERENCE / "davis_two_object" / "Annotations" / "480p"
    return davis_entries("libby", ann, [1, 2], frames=6)


def plain_loop(model, entries, size, margin=0.5):
    """The original evaluate loop, literally: one object at a time, the reference re-encoded
    with every frame, one forward per (object, frame)."""
    out = {}
    for obj in sorted({e["object_index"] for e in entries}):
        track = [e for e in entries if e["object_index"] == obj]
        ref_img = read_frame(track[0]["image_path"])
        ref_mask = object_mask(read_mask(track[0]["mask_path"]), obj)
        prev = ref_mask
        out[obj] = [(ref_mask * 255).astype(np.uint8)]
        for e in track[1:]:
            img = read_frame(e["image_path"])
            rb = geometry.mask_box(ref_mask, margin)
            ri, rm = geometry.crop_resize(ref_img, ref_mask, rb, *size)
            cb = geometry.mask_box(prev, margin)
            ci, pm = geometry.crop_resize(img, prev, cb, *size)
            with torch.no_grad():
                logits, _ = model(image_to_tensor(ri)[None], mask_to_tensor(rm)[None],
                                  image_to_tensor(ci)[None], mask_to_tensor(pm)[None])
            p = geometry.paste_back(torch.softmax(logits, 1), cb, *img.shape[:2])[0]
            out[obj].append((p[1].numpy() * 255).astype(np.uint8))
            prev = (p[1] > p[0]).numpy().astype(np.float32)
    return out


def test_batched_cached_engine_equals_plain_per_object_loop(model, libby):
    want = plain_loop(model, libby, SIZE)
    engine = Engine.for_model(model, SIZE, RuntimeSpec(device="cpu"), max_batch=16)
    state_results = list(engine.propagate(_state(engine, libby)))
    assert [r.object_ids for r in state_results] == [[1, 2]] * 6
    for obj_row, obj in enumerate([1, 2]):
        got = np.stack([r.soft[obj_row] for r in state_results])
        diff = np.abs(got.astype(float) - np.stack(want[obj])).mean()
        assert diff <= 0.05, f"object {obj}: mean soft difference {diff} levels"


def _state(engine, entries):
    from ssmvos.inference.evaluate import _prepare_video, videos_of

    (tracks,) = videos_of(entries).values()
    return _prepare_video(engine, tracks)


def test_video_predictor_api(model, libby):
    """SAM 2's shapes and types: logits N×1×H×W float32 on the predictor's device, rows in the
    order objects were added; the probabilities and soft masks alongside."""
    predictor = VideoPredictor(model, input_size=224, device="cpu")
    assert predictor.device == torch.device("cpu")
    frames = [e["image_path"] for e in libby if e["object_index"] == 1]
    state = predictor.init_state(frames)
    labels = read_mask(libby[0]["mask_path"])
    predictor.add_new_mask(state, 0, 2, labels == 2)
    predictor.add_new_mask(state, 0, 1, labels == 1)
    seen = []
    for result in predictor.propagate_in_video(state):
        frame_idx, obj_ids, masks = result
        assert obj_ids == [2, 1]
        assert isinstance(masks, torch.Tensor) and masks.dtype == torch.float32 and masks.shape == (2, 1, 480, 854)
        assert torch.equal(masks[:, 0] > 0, torch.from_numpy(result.binary))
        assert result.probs.shape == (2, 480, 854) and 0.0 <= result.probs.min() and result.probs.max() <= 1.0
        seen.append(frame_idx)
    assert seen == list(range(6))
    with pytest.raises(SSMVOSError, match="empty"):
        predictor.add_new_mask(state, 0, 3, labels == 3)
    with pytest.raises(SSMVOSError, match="0×10: it has no pixels"):
        predictor.add_new_mask(state, 0, 4, np.ones((10, 0)))


def test_late_objects_background_frames_and_zip(tmp_path, model):
    """YouTube-VOS style: object 2 appears at the 3rd listed frame and has its own frame
    list; the image folder holds a frame before any object: merged output covers it."""
    ann = REFERENCE / "davis_two_object" / "Annotations" / "480p" / "libby"
    video = tmp_path / "JPEGImages" / "v"
    video.mkdir(parents=True)
    src = sorted((DAVIS16 / "JPEGImages" / "480p" / "libby").glob("*.jpg"))[:6]
    for i, f in enumerate(src):
        (video / f"{i * 5:05d}.jpg").symlink_to(f)
    names = [f"{i * 5:05d}" for i in range(6)]
    obj1 = names[1:]  # starts at the 2nd frame (the 1st frame has no object)
    obj2 = names[3:]
    entries = []
    for obj, frames in ((1, obj1), (2, obj2)):
        for t, n in enumerate(frames):
            entries.append(dict(image_path=str(video / f"{n}.jpg"), mask_path=str(ann / f"{frames[0][-2:]:0>5}.png"),
                                video_name="v", num_frames=len(frames), frame_index=t, object_index=obj))
    # masks: object 1 from libby's annotation 00005, object 2 from 00015 (both hold labels 1 and 2)
    for e in entries:
        e["mask_path"] = str(ann / ("00005.png" if e["object_index"] == 1 else "00015.png"))
    engine = Engine.for_model(model, SIZE, RuntimeSpec(device="cpu"))
    stats = evaluate_split(entries, engine, tmp_path / "per", tmp_path / "merged", progress=False)
    assert stats.objects == 2 and stats.frames == 5 and stats.object_frames == 5 + 3
    assert sorted(p.stem for p in (tmp_path / "per" / "v" / "1").glob("*.png")) == obj1
    assert sorted(p.stem for p in (tmp_path / "per" / "v" / "2").glob("*.png")) == obj2
    assert sorted(p.stem for p in (tmp_path / "merged" / "v").glob("*.png")) == names
    assert read_mask(tmp_path / "merged" / "v" / "00000.png").max() == 0
    first2 = read_mask(tmp_path / "per" / "v" / "2" / "00015.png")
    assert np.array_equal(first2 > 0, read_mask(ann / "00015.png") == 2)
    zip_path = write_submission_zip(tmp_path / "merged", tmp_path / "sub.zip")
    with zipfile.ZipFile(zip_path) as zf:
        assert sorted(zf.namelist()) == [f"Annotations/v/{n}.png" for n in names]
    assert not list(tmp_path.glob(".sub.zip*"))


def test_device_geometry_gives_the_same_results_as_opencv_on_the_host(model, libby):
    """The engine's device path (boxes, crops and paste-back as tensor operations, the
    previous masks kept where the network runs, results copied back) gives exactly the host
    path's soft masks: forward in batches of one, then backward from a mask given at the end
    with the results kept (chains resumed from stored masks)."""
    runs = []
    for on_device in (False, True):
        engine = Engine.for_model(model, SIZE, RuntimeSpec(device="cpu"), max_batch=1, device_geometry=on_device)
        assert engine.device_geometry is on_device
        state = _state(engine, libby)
        state.results = ResultStore(state.height, state.width)
        forward = [r.soft.copy() for r in engine.propagate(state)]
        last = read_mask(libby[-1]["mask_path"])
        engine.add_object(state, 5, 1, object_mask(last, 1))
        backward = [r.soft.copy() for r in engine.propagate(state, start=5, reverse=True, max_frames=3)]
        runs.append((forward, backward))
    (host_fwd, host_bwd), (dev_fwd, dev_bwd) = runs
    assert len(host_fwd) == 6 and len(host_bwd) == 4
    for a, b in zip(host_fwd + host_bwd, dev_fwd + dev_bwd):
        np.testing.assert_array_equal(a, b)
