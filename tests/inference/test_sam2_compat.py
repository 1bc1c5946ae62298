"""SAM 2's video-predictor contract, and steering results a user can trust.

The first test is a SAM 2 client as SAM 2's mask-prompt tools and notebooks write one (here
in this project's own words), run unchanged but for the line that builds the predictor, on a
real DAVIS clip: its masks must be the original SSM-VOS code's. The others pin the contract
(names, keywords, return values, types, ordering, errors) and the semantics of kept results
across passes, on a cheap stand-in network (tests/stub_network.py)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import DAVIS16, REFERENCE
from ssmvos import SSMVOSError, VideoPredictor
from ssmvos.data.io import read_mask
from stub_network import stub_predictor

LIBBY_ANN = REFERENCE / "davis_two_object" / "Annotations" / "480p" / "libby"


@pytest.mark.golden
def test_a_sam2_client_runs_unchanged_and_gets_the_originals_masks(reference_checkpoint):
    video_dir = DAVIS16 / "JPEGImages" / "480p" / "libby"
    first_mask = read_mask(LIBBY_ANN / "00000.png")
    # -- the client: only this line differs from what it does with SAM 2 ----------------------
    predictor = VideoPredictor.from_pretrained(reference_checkpoint, input_size=256, device="cpu")
    # SAM 2's examples run everything in a bf16 autocast block ("cuda" there): the predictor's
    # own precision (fp32, the faithful setting) must still hold inside it
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        inference_state = predictor.init_state(video_path=str(video_dir), offload_video_to_cpu=True,
                                               offload_state_to_cpu=True, async_loading_frames=False)
        height, width = inference_state["video_height"], inference_state["video_width"]
        per_obj_input_mask = {obj_id: first_mask == obj_id for obj_id in (1, 2)}
        for obj_id, mask in per_obj_input_mask.items():
            frame_idx, obj_ids, mask_logits = predictor.add_new_mask(inference_state=inference_state, frame_idx=0,
                                                                     obj_id=obj_id, mask=mask)
        video_segments = {}
        for out_frame_idx, out_obj_ids, out_mask_logits in predictor.propagate_in_video(inference_state):
            video_segments[out_frame_idx] = {
                out_obj_id: (out_mask_logits[i] > 0.0).cpu().numpy() for i, out_obj_id in enumerate(out_obj_ids)}
        predictor.reset_state(inference_state)
    # -- what it got ---------------------------------------------------------------------------
    assert (height, width) == (480, 854) and inference_state["num_frames"] == 49
    assert frame_idx == 0 and obj_ids == [1, 2] and mask_logits.shape == (2, 1, 480, 854)
    assert sorted(video_segments) == list(range(49))
    reference = REFERENCE / "pipeline_two_object_libby" / "per_object" / "libby"
    agree = total = 0
    for frame, masks in video_segments.items():
        assert list(masks) == [1, 2]
        for obj_id, mask in masks.items():
            assert mask.shape == (1, 480, 854) and mask.dtype == bool
            want = read_mask(reference / str(obj_id) / f"{frame:05d}.png") > 127
            agree += int((mask[0] == want).sum())
            total += want.size
    assert agree / total >= 0.999


def _clip(frames: int = 12, h: int = 64, w: int = 96) -> np.ndarray:
    """A bright square moving right over a dark, textured background: T×H×W×3 uint8."""
    rng = np.random.default_rng(1)
    video = rng.integers(0, 40, (frames, h, w, 3), dtype=np.uint8)
    for t in range(frames):
        video[t, 20:40, 10 + 3 * t: 30 + 3 * t] = 230
    return video


def _square(t: int, h: int = 64, w: int = 96) -> np.ndarray:
    mask = np.zeros((h, w), bool)
    mask[20:40, 10 + 3 * t: 30 + 3 * t] = True
    return mask


def _run(predictor, state, **kw) -> dict[int, tuple[list[int], np.ndarray, np.ndarray]]:
    return {r.frame_index: (r.obj_ids, r.video_res_masks.numpy(), r.probs) for r in
            predictor.propagate_in_video(state, **kw)}


def test_sam2_names_keywords_return_values_and_types():
    predictor, _ = stub_predictor(224)
    video = _clip()
    state = predictor.init_state(video_path=video, offload_video_to_cpu=True)
    assert predictor.device == torch.device("cpu")
    assert (state["num_frames"], state["video_height"], state["video_width"]) == (12, 64, 96)
    assert "num_frames" in state and "nonsense" not in state and len(state) == len(state.keys())
    with pytest.raises(KeyError):
        state["nonsense"]
    out = predictor.add_new_mask(inference_state=state, frame_idx=0, obj_id=5, mask=torch.from_numpy(_square(0)))
    frame_idx, obj_ids, logits = out
    assert frame_idx == 0 and obj_ids == [5]
    assert logits.dtype == torch.float32 and logits.shape == (1, 1, 64, 96) and logits.device == predictor.device
    assert torch.equal(logits[0, 0] > 0, torch.from_numpy(_square(0)))
    # a second object, added later on a later frame: rows in the order objects were added
    predictor.add_new_mask(state, 4, 2, _square(4))
    results = _run(predictor, state)
    assert sorted(results) == list(range(12))
    for frame, (ids, masks, _) in results.items():
        assert ids == [5, 2] and masks.shape == (2, 1, 64, 96)
        if frame < 4:  # object 2 has no result before its mask in a forward pass: SAM 2's "no object"
            assert (masks[1] == -1024).all()
    # the ssmvos names still work: state=, init_state(video=), FrameResult's fields
    other = predictor.init_state(video=video)
    predictor.add_new_mask(state=other, frame_idx=0, obj_id=1, mask=_square(0))
    first = next(iter(predictor.propagate_in_video(state=other)))
    assert first.object_ids == [1] and first.soft.dtype == np.uint8 and first.image.shape == (64, 96, 3)
    # what propagate_in_video yields is a real tuple, as SAM 2's: kept in a list and indexed
    outputs = list(predictor.propagate_in_video(other))
    assert all(isinstance(o, tuple) and len(o) == 3 for o in outputs)
    assert [o[0] for o in outputs] == list(range(12)) and outputs[3][1] == [1]
    assert outputs[3][2].shape == (1, 1, 64, 96) and torch.equal(outputs[3][2], outputs[3].video_res_masks)
    import pickle

    again = pickle.loads(pickle.dumps(outputs[3]))
    assert again[0] == 3 and torch.equal(again[2], outputs[3][2]) and np.array_equal(again.soft, outputs[3].soft)
    # remove_object: (obj_ids, updated_frames), quietly for an unknown id unless strict
    ids, updated = predictor.remove_object(state, 5)
    assert ids == [2] and [f for f, _ in updated] == [0] and updated[0][1].shape == (1, 1, 64, 96)
    assert predictor.remove_object(state, 5) == ([2], [])
    with pytest.raises(RuntimeError):
        predictor.remove_object(state, 5, strict=True)
    # clear_all_prompts_in_frame: the object's mask there goes; an object left without masks goes
    predictor.add_new_mask(state, 8, 2, _square(8))
    frame_idx, ids, masks = predictor.clear_all_prompts_in_frame(state, 8, 2)
    assert frame_idx == 8 and ids == [2] and state.objects[2].prompts.keys() == {4}
    predictor.clear_all_prompts_in_frame(state, 4, 2, need_output=False)
    assert state["obj_ids"] == []
    with pytest.raises(RuntimeError, match="no object was added"):
        next(iter(predictor.propagate_in_video(state)))


def test_errors_a_caller_causes_are_value_or_runtime_errors_at_the_call():
    predictor, _ = stub_predictor(224)
    state = predictor.init_state(_clip())
    bad = {
        "a colour mask": lambda: predictor.add_new_mask(state, 0, 1, np.dstack([_square(0)] * 3)),
        "a mask without pixels": lambda: predictor.add_new_mask(state, 0, 1, np.ones((0, 10), bool)),
        "a mask that is empty once resized": lambda: predictor.add_new_mask(state, 0, 1, np.eye(640, 960) > 0),
        "an empty mask": lambda: predictor.add_new_mask(state, 0, 1, np.zeros((64, 96), bool)),
        "a negative id": lambda: predictor.add_new_mask(state, 0, -1, _square(0)),
        "a string id": lambda: predictor.add_new_mask(state, 0, "car", _square(0)),
        "a frame outside the video": lambda: predictor.add_new_mask(state, 12, 1, _square(0)),
        "a NaN box": lambda: predictor.add_new_points_or_box(state, 0, 1, box=[float("nan"), 0, 10, 10]),
        "no points and no box": lambda: predictor.add_new_points_or_box(state, 0, 1),
        "a missing video": lambda: predictor.init_state(video_path="/nonexistent/clip.mp4"),
    }
    for what, call in bad.items():
        with pytest.raises((ValueError, RuntimeError)) as caught:
            call()
        assert isinstance(caught.value, SSMVOSError), what
        assert "Traceback" not in str(caught.value) and str(caught.value), what
    assert state["obj_ids"] == []  # nothing half-added
    with pytest.raises(RuntimeError, match="no object was added"):
        next(iter(predictor.propagate_in_video(state)))
    # string and integer ids mixed never reach the engine's ordering
    predictor.add_new_mask(state, 0, 1, _square(0))
    with pytest.raises(ValueError, match="whole number"):
        predictor.add_new_mask(state, 0, "2", _square(0))


def test_points_and_boxes_become_a_mask_through_grabcut():
    predictor, _ = stub_predictor(224)
    video = _clip()
    state = predictor.init_state(video)
    _, ids, logits = predictor.add_new_points_or_box(state, 3, 1, box=[14, 16, 46, 44])
    square = _square(3)
    got = logits[0, 0].numpy() > 0
    assert ids == [1] and (got & square).sum() / (got | square).sum() > 0.9
    # points: pixel coordinates, or [0, 1] fractions with normalize_coords=False
    pixels = predictor.add_new_points_or_box(state, 3, 2, points=[[29, 30]], labels=[1])[2][1, 0].numpy() > 0
    fractions = predictor.add_new_points_or_box(state, 3, 3, points=[[29 / 96, 30 / 64]], labels=[1],
                                                normalize_coords=False)[2][2, 0].numpy() > 0
    assert np.array_equal(pixels, fractions) and pixels[30, 29]
    # a negative point added to the earlier ones (clear_old_points=False) takes its pixel out
    after = predictor.add_new_points_or_box(state, 3, 2, points=[[22, 30]], labels=[0], clear_old_points=False)
    assert not (after[2][1, 0].numpy() > 0)[30, 22] and state.clicks[(3, 2)][0].shape == (2, 2)
    with pytest.raises(ValueError, match="box cannot be added"):
        predictor.add_new_points_or_box(state, 3, 2, box=[0, 0, 20, 20], clear_old_points=False)


def test_starting_after_the_mask_tracks_the_object_as_a_whole_run_does():
    predictor, calls = stub_predictor(224)
    video = _clip()
    whole = predictor.init_state(video)
    predictor.add_new_mask(whole, 0, 1, _square(0))
    full = _run(predictor, whole)
    fresh = predictor.init_state(video)
    predictor.add_new_mask(fresh, 0, 1, _square(0))
    late = _run(predictor, fresh, start_frame_idx=5)
    assert sorted(late) == list(range(5, 12))
    for frame, (ids, masks, probs) in late.items():
        assert ids == [1]
        np.testing.assert_array_equal(masks, full[frame][1])
    # the same without kept results (a live-style state): the chain is caught up all the same
    bare = predictor.init_state(video, keep_results=False)
    predictor.add_new_mask(bare, 0, 1, _square(0))
    assert all(np.array_equal(m, full[f][1]) for f, (_, m, _) in _run(predictor, bare, start_frame_idx=5).items())
    # backward from before an object's mask: caught up from it, down to the start
    back = predictor.init_state(video)
    predictor.add_new_mask(back, 9, 1, _square(9))
    want = {f: m for f, (_, m, _) in _run(predictor, back, start_frame_idx=9, reverse=True).items()}
    again = predictor.init_state(video)
    predictor.add_new_mask(again, 9, 1, _square(9))
    got = _run(predictor, again, start_frame_idx=4, reverse=True)
    assert sorted(got) == [0, 1, 2, 3, 4]
    assert all(np.array_equal(got[f][1], want[f]) for f in got)


def test_kept_results_after_several_passes_agree_everywhere():
    """Forward, then backward from frame k (SAM 2's pattern): no object is lost on frames
    1..k, and the kept result of each frame (what frame_result and a later forward pass show)
    is the one the last pass that computed it made; read back, it is what was yielded."""
    predictor, calls = stub_predictor(224)
    state = predictor.init_state(_clip())
    predictor.add_new_mask(state, 0, 1, _square(0))
    predictor.add_new_mask(state, 7, 2, _square(7))
    forward = _run(predictor, state)
    backward = _run(predictor, state, start_frame_idx=7, reverse=True)
    assert sorted(backward) == list(range(8))
    for frame, (ids, masks, probs) in backward.items():
        assert ids == [1, 2]
        assert (masks[0] > 0).any(), frame  # object 1 kept its forward results
        np.testing.assert_array_equal(masks[0], forward[frame][1][0])
        assert (masks[1] > 0).any(), frame  # object 2 tracked backward from its mask
    calls.clear()
    again = _run(predictor, state)
    assert not calls  # everything read back
    for frame, (ids, masks, probs) in again.items():
        view = predictor.frame_result(state, frame)
        last = backward.get(frame, forward[frame])  # the last pass that computed the frame
        np.testing.assert_array_equal(masks, last[1])
        np.testing.assert_array_equal(probs, last[2])  # yielded again: the same values exactly
        np.testing.assert_array_equal(view.video_res_masks.numpy(), masks)
        assert view.obj_ids == ids == [1, 2]
    assert predictor.kept_frames(state) == list(range(12))


def test_both_tracks_every_object_backward_and_forward_from_its_first_mask():
    predictor, _ = stub_predictor(224)
    video = _clip()
    state = predictor.init_state(video)
    predictor.add_new_mask(state, 2, 1, _square(2))
    predictor.add_new_mask(state, 6, 2, _square(6))
    assert predictor.frames_to_propagate(state, "both") == 12
    results = [(r.frame_index, r.object_ids, r.video_res_masks.numpy()) for r in predictor.propagate(state, "both")]
    assert [f for f, _, _ in results] == [1, 0] + list(range(2, 12))  # every frame once
    by_frame = {f: (ids, m) for f, ids, m in results}
    assert all(by_frame[f][0] == [1, 2] for f in range(12))  # object 2 before its mask too
    # object 2 on frames 0..5 is its backward chain from frame 6, object 1 after 2 its forward chain
    ref = predictor.init_state(video)
    predictor.add_new_mask(ref, 6, 2, _square(6))
    backward = _run(predictor, ref, start_frame_idx=6, reverse=True)
    predictor.add_new_mask(ref, 2, 1, _square(2))
    forward = _run(predictor, ref, start_frame_idx=2)
    for f in range(12):  # rows: by_frame [object 1, object 2]; ref's passes [object 2, object 1]
        np.testing.assert_array_equal(by_frame[f][1][1], backward[f][1][0] if f <= 6 else forward[f][1][0])
        if f >= 2:
            np.testing.assert_array_equal(by_frame[f][1][0], forward[f][1][1])
        else:
            assert (by_frame[f][1][0] > 0).any()  # object 1 backward from its mask at frame 2


def test_masks_are_taken_as_sam2_takes_them():
    """Any size (resized to the video's), and a pixel is the object where its value is >= 0.5,
    whatever the dtype: a half-resolution float mask of probabilities gives the object the
    full-resolution boolean mask gives."""
    predictor, _ = stub_predictor(224)
    video = _clip()
    full = _square(0)
    probs = np.where(full, 0.9, 0.2).astype(np.float32)[::2, ::2]  # 32x48 probabilities
    logits = {}
    for name, mask in {"bool": full, "uint8 0/255": full.astype(np.uint8) * 255, "half-size probabilities": probs,
                       "torch 1xHxW": torch.from_numpy(full)[None]}.items():
        state = predictor.init_state(video)
        _, ids, out = predictor.add_new_mask(state, 0, 1, mask)
        logits[name] = out[0, 0] > 0
        assert ids == [1] and out.shape == (1, 1, 64, 96), name
    for name, got in logits.items():
        assert torch.equal(got, torch.from_numpy(full)), name
    state = predictor.init_state(video)
    low = np.where(full, 0.4, 0.0).astype(np.float32)  # under 0.5 everywhere: no object (SAM 2's threshold)
    with pytest.raises(ValueError, match="is empty"):
        predictor.add_new_mask(state, 0, 1, low)
