"""The steerable video API: masks on any frame, corrections that recompute only what they
change, late and removed objects, backward propagation, live sources with bounded memory.

Network runs use the reference weights at 256×256 on a few DAVIS frames; the loop tests
over 1,000 frames replace the network by a cheap stand-in (tests/stub_network.py)."""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from conftest import DAVIS16, REFERENCE
from ssmvos import SSMVOSError
from ssmvos.data.io import read_mask
from ssmvos.inference.predictor import VideoPredictor
from ssmvos.inference.engine import Engine
from ssmvos.runtime import RuntimeSpec, build_runner
from stub_network import CountingRunner, stub_predictor

SIZE = 256
ANN = REFERENCE / "davis_two_object" / "Annotations" / "480p" / "libby"


@pytest.fixture(scope="module")
def libby():
    """(first 5 frame paths of libby, its two-object label maps for those frames)."""
    paths = sorted((DAVIS16 / "JPEGImages" / "480p" / "libby").glob("*.jpg"))[:5]
    return [str(p) for p in paths], [read_mask(ANN / f"{i:05d}.png") for i in range(5)]


@pytest.fixture(scope="module")
def predictor(model):
    """A predictor whose network work is counted (``predictor.engine.runner.calls``)."""
    runner = CountingRunner(build_runner(model, RuntimeSpec(device="cpu"), (SIZE, SIZE)))
    return VideoPredictor(engine=Engine(runner, (SIZE, SIZE)))


def _counted(predictor):
    """Count the network's work from here on: encodes, forward calls and object-frames run."""
    calls = predictor.engine.runner.calls
    calls.clear()
    return calls


def _run(predictor, state, **kw) -> dict[int, tuple[list[int], np.ndarray]]:
    return {r.frame_index: (r.object_ids, r.soft.copy()) for r in predictor.propagate_in_video(state, **kw)}


@pytest.mark.golden
def test_one_mask_at_frame_0_forward_reproduces_the_original(predictor, libby):
    paths, labels = libby
    state = predictor.init_state(paths)
    for obj in (1, 2):
        predictor.add_new_mask(state, 0, obj, labels[0] == obj)
    got = _run(predictor, state)
    assert sorted(got) == list(range(5))
    ref = REFERENCE / "pipeline_two_object_libby" / "per_object" / "libby"
    for frame, (ids, soft) in got.items():
        assert ids == [1, 2]
        for row, obj in enumerate(ids):
            want = read_mask(ref / str(obj) / f"{frame:05d}.png")
            assert np.abs(soft[row].astype(float) - want).mean() <= 1.0, (frame, obj)


def test_correction_recomputes_only_the_frames_from_it(model, predictor, libby):
    paths, labels = libby
    k = 2
    state = predictor.init_state(paths)
    for obj in (1, 2):
        predictor.add_new_mask(state, 0, obj, labels[0] == obj)
    before = _run(predictor, state)
    fix = labels[k] == 1  # the annotation of frame k, which the chain's mask there is not
    assert not np.array_equal(before[k][1][0] > 127, fix)

    calls = _counted(predictor)
    predictor.add_new_mask(state, k, 1, fix)
    after = _run(predictor, state)
    # the network ran for object 1 on frames k+1.. only; its reference (frame 0) was kept
    assert calls["segment_rows"] == len(paths) - 1 - k and not calls["encode"]
    for frame in range(k):
        assert np.array_equal(after[frame][1], before[frame][1]), frame  # byte-identical
        assert np.array_equal(predictor.frame_result(state, frame).soft, before[frame][1])
    assert np.array_equal(after[k][1][0], fix.astype(np.uint8) * 255)
    for frame in range(k, len(paths)):
        assert not np.array_equal(after[frame][1][0], before[frame][1][0]), frame
        assert np.array_equal(after[frame][1][1], before[frame][1][1]), frame  # object 2 untouched
    # propagating again with nothing new runs nothing
    calls.clear()
    assert all(np.array_equal(_run(predictor, state)[f][1], after[f][1]) for f in after)
    assert not calls

    # reference="latest": after the correction, frames are matched against frame k's mask
    latest = predictor.init_state(paths, reference="latest")
    for frame, obj in ((0, 1), (0, 2), (k, 1)):
        predictor.add_new_mask(latest, frame, obj, fix if frame == k else labels[0] == obj)
    calls.clear()
    other = _run(predictor, latest)
    assert calls["encode"] == 3  # objects 1 and 2 at frame 0, object 1 again at frame k
    for frame in range(k):
        assert np.array_equal(other[frame][1], after[frame][1]), frame
    assert np.array_equal(other[k][1][0], after[k][1][0])
    assert not np.array_equal(other[k + 1][1][0], after[k + 1][1][0])


def test_late_object_and_removed_object(predictor, libby):
    paths, labels = libby
    state = predictor.init_state(paths)
    predictor.add_new_mask(state, 0, 1, labels[0] == 1)
    predictor.add_new_mask(state, 2, 2, labels[2] == 2)
    first = _run(predictor, state)
    assert [first[f][0] for f in range(5)] == [[1], [1], [1, 2], [1, 2], [1, 2]]
    assert np.array_equal(first[2][1][1], (labels[2] == 2).astype(np.uint8) * 255)
    calls = _counted(predictor)
    predictor.remove_object(state, 1)
    second = _run(predictor, state)
    assert sorted(second) == [2, 3, 4] and all(ids == [2] for ids, _ in second.values())
    assert all(np.array_equal(second[f][1][0], first[f][1][1]) for f in second)
    assert not calls  # object 2's results were kept
    assert predictor.frame_result(state, 1) is None and predictor.frame_result(state, 3).object_ids == [2]
    assert predictor.remove_object(state, 1) == ([2], [])  # as SAM 2: an unknown id changes nothing
    with pytest.raises(RuntimeError, match="no object 1 to remove"):
        predictor.remove_object(state, 1, strict=True)
    predictor.reset_state(state)
    assert predictor.frame_result(state, 3) is None
    with pytest.raises(SSMVOSError, match="no object was added"):
        next(predictor.propagate_in_video(state))


def test_backward_equals_forward_over_the_reversed_clip(model, libby):
    paths, labels = libby
    paths = paths[:4]
    backward = VideoPredictor(model, SIZE, device="cpu", lookahead=True)  # the GPU's order, on the CPU
    state = backward.init_state(paths)
    backward.add_new_mask(state, 3, 1, labels[3] == 1)
    got = {r.frame_index: r.probs.copy() for r in backward.propagate_in_video(state, reverse=True)}
    forward = VideoPredictor(model, SIZE, device="cpu", lookahead=False)
    state = forward.init_state(paths[::-1])
    forward.add_new_mask(state, 0, 1, labels[3] == 1)
    want = {3 - r.frame_index: r.probs.copy() for r in forward.propagate_in_video(state)}
    assert sorted(got) == sorted(want) == [0, 1, 2, 3]
    for frame in got:
        assert got[frame].tobytes() == want[frame].tobytes(), frame


def test_bad_calls_name_the_problem(predictor):
    clip = np.zeros((3, 40, 50, 3), np.uint8)
    state = predictor.init_state(clip)
    mask = np.zeros((40, 50), bool)
    mask[5:20, 5:20] = True
    with pytest.raises(SSMVOSError, match="frame index 3 is outside the video's 3 frames"):
        predictor.add_new_mask(state, 3, 1, mask)
    with pytest.raises(SSMVOSError, match="object 1 at frame 0 is 10×0: it has no pixels"):
        predictor.add_new_mask(state, 0, 1, np.ones((0, 10)))
    predictor.add_new_mask(state, 0, 1, mask)
    with pytest.raises(SSMVOSError, match="object 1 at frame 1 is empty"):
        predictor.add_new_mask(state, 1, 1, np.zeros((40, 50)))
    with pytest.raises(SSMVOSError, match="start frame 5 is outside"):
        next(predictor.propagate_in_video(state, start_frame_idx=5))
    with pytest.raises(SSMVOSError, match="reference must be one of first, latest"):
        predictor.init_state(clip, reference="middle")
    live = predictor.init_state(iter(clip))
    predictor.add_new_mask(live, 0, 1, mask)
    with pytest.raises(SSMVOSError, match="only be propagated forward"):
        next(predictor.propagate_in_video(live, reverse=True))
    predictor.close_state(live)


@pytest.mark.parametrize("keep_results", [False, True])
def test_live_source_is_processed_online_with_bounded_memory(model, keep_results):
    """1,000 frames of 120×160 from a generator, every one processed (drop=False): each result
    comes while the generator is at most a queue's length ahead, and traced memory peaks at
    a fixed bound, the same after 1,000 frames as after 100 (kept results: compressed, and
    spilled to disk past a 1 MiB bound)."""
    predictor, _ = stub_predictor(224)
    frames, h, w = 1000, 120, 160
    produced = 0

    def camera():
        nonlocal produced
        rng = np.random.default_rng(0)
        for _ in range(frames):
            produced += 1
            yield rng.integers(0, 256, (h, w, 3), dtype=np.uint8)

    tracemalloc.start()
    try:
        state = predictor.init_state(camera(), drop=False, keep_results=keep_results, memory_limit=1 << 20)
        mask = np.zeros((h, w), bool)
        mask[40:80, 50:110] = True
        predictor.add_new_mask(state, 0, 1, mask)
        seen, first_peak = 0, 0
        for result in predictor.propagate_in_video(state):
            assert result.frame_index == seen and result.latency is not None
            assert produced - result.frame_index <= state.frames.queue_size + 2  # online, bounded queue
            seen += 1
            if seen == 100:
                first_peak = tracemalloc.get_traced_memory()[1]
                tracemalloc.reset_peak()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert seen == frames
    mib = 1 << 20
    assert peak < 8 * mib, f"peak {peak / mib:.1f} MiB"  # the frames alone would take 55 MiB
    assert peak <= first_peak + 1.5 * mib, f"frames 100-1000: {peak / mib:.1f} MiB, 0-100: {first_peak / mib:.1f}"
    if keep_results:
        assert state.results.memory_bytes <= mib and state.results.spilled_bytes > 0
        assert predictor.frame_result(state, 999).object_ids == [1]
    predictor.close_state(state)
