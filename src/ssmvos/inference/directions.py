"""Directions of propagation, and what "both" means: one definition for the command line, the
Python API and the app.

* ``forward``: one pass from the first frame with a given mask to the end.
* ``backward``: one pass from the last frame with a given mask down to frame 0.
* ``both``: every object is tracked backward and forward from its first mask: frames after
  an object's first mask come from its forward chain (restarted at each correction), frames
  before it from its backward chain. It runs as a backward pass from the latest first mask
  in which each object runs only up to its own first mask, then a forward pass from the
  earliest first mask; every frame is yielded once, by the pass that completes it: frames
  before the earliest first mask by the backward pass (in decreasing order), the rest by the
  forward pass.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..errors import SSMVOSRuntimeError, SSMVOSValueError
from ..options import DIRECTIONS


@dataclass(frozen=True)
class Pass:
    """One propagation pass: from ``start``, forward or backward (``reverse``).

    ``before_first``: objects run only up to their first given mask (the backward half of
    "both"); ``below``: only frames with a lower index are yielded (None: every frame).
    """

    start: int
    reverse: bool
    before_first: bool = False
    below: int | None = None

    def yields(self, frame_index: int) -> bool:
        return self.below is None or frame_index < self.below


def check_direction(direction: str) -> str:
    if direction not in DIRECTIONS:
        raise SSMVOSValueError(f"direction must be one of {', '.join(DIRECTIONS)}, not {direction!r}")
    return direction


def plan(direction: str, first_masks: Iterable[int], mask_frames: Iterable[int]) -> list[Pass]:
    """The passes of ``direction`` for objects whose first masks are on ``first_masks`` and
    masks on ``mask_frames`` (any object)."""
    check_direction(direction)
    masks = sorted(set(mask_frames))
    if not masks:
        raise SSMVOSRuntimeError("no object was added to the video: add a mask first")
    if direction == "forward":
        return [Pass(masks[0], False)]
    if direction == "backward":
        return [Pass(masks[-1], True)]
    firsts = sorted(set(first_masks))
    passes = [Pass(firsts[-1], True, before_first=True, below=firsts[0])] if firsts[-1] > 0 else []
    return passes + [Pass(firsts[0], False)]


def planned_frames(passes: list[Pass], num_frames: int) -> int:
    """How many frames the passes yield on a video of ``num_frames`` frames."""
    total = 0
    for p in passes:
        end = num_frames if p.below is None else min(num_frames, p.below)
        total += max(0, min(p.start + 1, end)) if p.reverse else max(0, end - p.start)
    return total
