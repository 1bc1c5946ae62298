"""SharedRunner: engines in several threads share one runner's calls (the objects of several
videos in one batch), with the results each would get alone, fewer and fuller network calls,
a fixed call order, and errors kept to the member whose call failed."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from conftest import DAVIS16, on_cuda
from stub_network import StubRunner
from ssmvos.inference.engine import Engine
from ssmvos.inference.predictor import VideoPredictor
from ssmvos.runtime import SharedRunner

SIZE = (224, 224)
H, W = 120, 160


def _video(seed: int, frames: int, objects: int):
    """A T×H×W×3 clip of moving bright squares on noise, and the frame-0 mask of each square."""
    rng = np.random.default_rng(seed)
    clip = rng.integers(0, 60, (frames, H, W, 3), dtype=np.uint8)
    masks = {}
    for k in range(objects):
        y, x = 10 + 35 * k, 10 + 20 * k
        for t in range(frames):
            clip[t, y:y + 25, x + 2 * t:x + 2 * t + 25] = 200 + 10 * k
        m = np.zeros((H, W), np.uint8)
        m[y:y + 25, x:x + 25] = 1
        masks[k + 1] = m
    return clip, masks


VIDEOS = [_video(0, 7, 2), _video(1, 4, 1), _video(2, 9, 3)]  # different lengths and object counts


def _segment(engine: Engine, clip, masks) -> list[tuple[int, list[int], np.ndarray]]:
    predictor = VideoPredictor(engine=engine)
    state = predictor.init_state(clip, keep_results=False)
    for oid, m in masks.items():
        predictor.add_new_mask(state, 0, oid, m)
    return [(r.frame_index, r.object_ids, r.soft.copy()) for r in predictor.propagate(state, "forward")]


def _together(shared: SharedRunner, base: Engine, videos) -> list:
    """Every video in its own thread, all sharing ``shared``; the results in video order."""
    results: list = [None] * len(videos)
    errors: list = [None] * len(videos)

    def work(i: int) -> None:
        try:
            with shared.turn(i) as runner:
                results[i] = _segment(base.on_runner(runner), *videos[i])
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            errors[i] = exc

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(videos))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
        assert not t.is_alive(), "a member never got its turn back"
    return results, errors


class RecordingRunner(StubRunner):
    """The stub network, recording the rows of every call; fails a call holding ``fail_rows`` rows."""

    def __init__(self, fail_rows: int | None = None):
        super().__init__()
        self.batches: list[int] = []
        self.fail_rows = fail_rows

    def segment(self, ref, images, masks):
        self.batches.append(images.shape[0])
        if images.shape[0] == self.fail_rows:
            raise RuntimeError("out of memory (test)")
        return super().segment(ref, images, masks)


@pytest.mark.parametrize("lookahead", [False, True], ids=["plain", "lookahead"])
def test_videos_together_give_each_video_its_own_results_in_fewer_fuller_calls(lookahead):
    alone_runner = RecordingRunner()
    alone = [_segment(Engine(alone_runner, SIZE, lookahead=lookahead), *v) for v in VIDEOS]
    inner = RecordingRunner()
    shared = SharedRunner(inner, max_batch=16, seats=3)
    together, errors = _together(shared, Engine(inner, SIZE, lookahead=lookahead), VIDEOS)
    assert errors == [None] * 3
    for got, want in zip(together, alone):
        assert [(f, ids) for f, ids, _ in got] == [(f, ids) for f, ids, _ in want]
        for (_, _, a), (_, _, b) in zip(got, want):
            np.testing.assert_array_equal(a, b)
    # 6 + 3 + 8 frames to compute, alone one call each; together the longest video's 8 rounds
    assert len(alone_runner.batches) == 17
    assert shared.stats["rounds"] == len(inner.batches) == 8
    assert sum(inner.batches) == sum(alone_runner.batches) == shared.stats["rows"] == 6 * 2 + 3 * 1 + 8 * 3
    assert max(inner.batches) == 6  # the three videos' 2 + 1 + 3 objects in one call


def test_calls_hold_at_most_max_batch_rows_and_repeat_exactly():
    runs = []
    for _ in range(2):
        inner = RecordingRunner()
        shared = SharedRunner(inner, max_batch=4, seats=3)
        together, errors = _together(shared, Engine(inner, SIZE, max_batch=4), VIDEOS)
        assert errors == [None] * 3
        runs.append((inner.batches, [[s for _, _, s in v] for v in together]))
    assert max(runs[0][0]) <= 4 and len(runs[0][0]) > 8  # 6 rows a round need two calls
    assert runs[0][0] == runs[1][0]  # the same calls in the same order
    for a, b in zip(runs[0][1], runs[1][1]):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)


def test_a_failed_call_fails_its_members_only():
    videos = [VIDEOS[0], _video(3, 5, 2), VIDEOS[2]]  # 2, 2, 3 objects: calls of 2, 2 and 3 rows
    inner = RecordingRunner(fail_rows=3)  # the third video's calls fail
    shared = SharedRunner(inner, max_batch=3, seats=3)
    together, errors = _together(shared, Engine(inner, SIZE, max_batch=3), videos)
    assert isinstance(errors[2], RuntimeError) and "out of memory" in str(errors[2])
    assert errors[0] is None and errors[1] is None
    assert [len(v) for v in together[:2]] == [7, 5]  # the others finished every frame


def test_members_that_come_and_go_get_their_own_results():
    """Without seats (a Ray actor's concurrent calls): whatever the timing, each video's
    results are its own."""
    alone = [_segment(Engine(RecordingRunner(), SIZE), *v) for v in VIDEOS]
    inner = RecordingRunner()
    shared = SharedRunner(inner)
    results: list = [None] * 3

    def work(i: int) -> None:
        with shared.turn() as runner:
            results[i] = _segment(Engine(inner, SIZE).on_runner(runner), *VIDEOS[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for got, want in zip(results, alone):
        for (_, _, a), (_, _, b) in zip(got, want):
            np.testing.assert_array_equal(a, b)
    assert sum(inner.batches) == 6 * 2 + 3 * 1 + 8 * 3  # every row once, in however many calls


def test_misuse_is_refused():
    shared = SharedRunner(StubRunner())
    with shared.turn() as member:
        pass
    with pytest.raises(RuntimeError, match="outside its turn"):
        member.encode_reference(torch.zeros(1, 8, 8, 3, dtype=torch.uint8), torch.zeros(1, 8, 8))
    with pytest.raises(ValueError, match="no seats"):
        with shared.turn(0):
            pass
    seated = SharedRunner(StubRunner(), seats=2)
    for seat in (None, 2, -1):
        with pytest.raises(ValueError, match="not free"):
            with seated.turn(seat):
                pass
    with pytest.raises(ValueError, match="max_batch"):
        SharedRunner(StubRunner(), max_batch=0)
    with pytest.raises(ValueError, match="seats"):
        SharedRunner(StubRunner(), seats=0)


@pytest.mark.parametrize("device,graphs", [("cpu", False), on_cuda("cuda", False, id="cuda"),
                                           on_cuda("cuda", True, id="cuda-graphs")])
def test_the_network_shared_by_three_videos_gives_one_at_a_time_masks(model, device, graphs):
    """The real network (reference weights, 224 px) on DAVIS frames: three videos together
    against each alone, with the device's defaults (on CUDA: device geometry, lookahead, and
    CUDA graphs captured while the other members wait for their turn)."""
    from ssmvos.runtime import RuntimeSpec, build_runner
    from ssmvos.data.io import read_mask

    runner = build_runner(model, RuntimeSpec(device=device, cuda_graphs=graphs), SIZE)
    videos = []
    for name, frames in (("blackswan", 4), ("car-shadow", 3), ("libby", 5)):
        paths = sorted((DAVIS16 / "JPEGImages" / "480p" / name).glob("*.jpg"))[:frames]
        mask = read_mask(DAVIS16 / "Annotations" / "480p" / name / "00000.png") > 0
        videos.append(([str(p) for p in paths], {1: mask}))
    alone = [_segment(Engine(runner, SIZE), *v) for v in videos]
    shared = SharedRunner(runner, max_batch=16, seats=3)
    together, errors = _together(shared, Engine(runner, SIZE), videos)
    assert errors == [None] * 3
    assert shared.stats["rounds"] == 4 and shared.stats["rows"] == 3 + 2 + 4  # 9 calls alone
    for got, want in zip(together, alone):
        assert [f for f, _, _ in got] == [f for f, _, _ in want]
        for (_, _, a), (_, _, b) in zip(got, want):
            assert np.mean((a > 127) == (b > 127)) >= 0.999
            # float rounding of other batches only (measured on the CPU: at most 1.3e-4 levels)
            assert np.abs(a.astype(int) - b.astype(int)).mean() <= 0.05
