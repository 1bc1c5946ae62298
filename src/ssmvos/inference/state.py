"""Per-video inference state and what a frame yields.

:class:`VideoState` is one video's state: its frame source, the objects (each with the masks
given for it, by frame) and, if kept, every frame's results. It also answers the few
documented keys of SAM 2's ``inference_state`` dict (``state["num_frames"]``,
``["video_height"]``, ``["video_width"]``, ``["obj_ids"]``), read-only.

:class:`FrameResult` is what a frame yields. As ssmvos sees it: the objects that have a
result there, their soft masks (uint8 p·255, the original's saved soft mask) and where each
object is (its chain mask). As SAM 2 sees it (what it unpacks to): ``(frame_idx, obj_ids,
video_res_masks)`` with every object of the video, in the order they were added, and a
float32 tensor N×1×H×W of logits on the predictor's device (an object without a result
there: -1024, as SAM 2 does).
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..model import ReferenceEncoding
from ..io.frames.base import FrameSource
from .results import ResultStore

#: which given mask an object is matched against (see ``inference.engine``)
REFERENCES = ("first", "latest")
#: the logit of an object that has no result on a frame (SAM 2's NO_OBJ_SCORE)
NO_OBJECT_LOGIT = -1024.0
#: |logit| for each soft-mask level s: the log-odds of (s + 0.5) / 256, the middle of the
#: level's probability interval
_MAGNITUDE = np.abs(np.log((np.arange(256) + 0.5) / (255.5 - np.arange(256)))).astype(np.float32)


def soft_logits(soft: np.ndarray, binary: np.ndarray) -> np.ndarray:
    """Logits (float32) of kept soft masks: the log-odds of each level's middle, with the sign
    of where the object is, so that ``logits > 0`` is exactly the object's mask (the chain's
    argmax) and the values are the same however often a result is read back."""
    magnitude = _MAGNITUDE[soft]
    return np.where(binary, magnitude, -magnitude)


@dataclass
class Prompt:
    """A mask given for an object at one frame; ``version`` grows with every mask given."""

    mask: np.ndarray  # H×W float32 {0, 1}
    version: int


@dataclass
class ObjectState:
    """One object: the masks given for it by frame, the frame of the first one given (its
    reference under ``reference="first"``), optionally the frames where it is tracked, and
    its reference encodings by (frame, version) of the mask they encode."""

    object_id: int
    prompts: dict[int, Prompt]
    first: int
    frames: frozenset[int] | None = None  # frames where it is tracked (None: every frame)
    encodings: dict[tuple[int, int], ReferenceEncoding] = field(default_factory=dict)

    def tracked_at(self, frame_index: int) -> bool:
        return self.frames is None or frame_index in self.frames

    def reference_frame(self, anchor: int, reference: str) -> int:
        """The frame whose given mask a chain started at ``anchor`` is matched against."""
        return self.first if reference == "first" else anchor

    @property
    def earliest(self) -> int:
        """The earliest frame with a given mask."""
        return min(self.prompts)


@dataclass
class FrameResult:
    """What one frame yields (see the module docstring).

    ``object_ids``: the objects with a result on this frame, in the order they were added;
    ``soft``: their soft masks, N×H×W uint8 p·255 (a given mask: 0/255); ``binary``: N×H×W
    bool, where each object is (the chain's mask, p_fg > p_bg; what the next frame is cropped
    around); ``image``: the decoded H×W×3 uint8 frame (None when read back without decoding);
    ``fps``: the source's frame rate if known; ``latency`` (live sources): seconds from the
    frame's arrival to this result. ``all_object_ids``: every object of the video when the
    frame was done (SAM 2's rows); ``device``: where :attr:`video_res_masks` is made;
    ``reverse``: whether a backward pass yielded it (False for results read back);
    ``computed``: whether the network ran on this frame for at least one object (False when
    every result was given or read back); ``labels``: with ``propagate(..., merge=mode)``,
    the objects merged into one H×W uint8 label map (else None).
    """

    frame_index: int
    object_ids: list[int]
    soft: np.ndarray
    binary: np.ndarray
    image: np.ndarray | None = None
    fps: float | None = None
    latency: float | None = None
    all_object_ids: list[int] | None = None
    device: torch.device | None = None
    reverse: bool = False
    computed: bool = False
    labels: np.ndarray | None = None

    @property
    def probs(self) -> np.ndarray:
        """Foreground probabilities N×H×W float32, ``soft / 255``: the same values however
        often a result is read back."""
        return self.soft.astype(np.float32) / np.float32(255)

    @property
    def masks(self) -> np.ndarray:
        """The earlier name of :attr:`probs`."""
        return self.probs

    @property
    def obj_ids(self) -> list[int]:
        """SAM 2's rows: every object of the video, in the order they were added."""
        return list(self.all_object_ids if self.all_object_ids is not None else self.object_ids)

    @property
    def video_res_masks(self) -> torch.Tensor:
        """SAM 2's masks: float32 logits len(obj_ids)×1×H×W at the video's resolution on
        :attr:`device` (> 0 exactly where the object is; -1024 for an object without a result
        on this frame)."""
        ids = self.obj_ids
        out = np.full((len(ids), 1, *self.soft.shape[1:]), NO_OBJECT_LOGIT, dtype=np.float32)
        rows = {obj: row for row, obj in enumerate(self.object_ids)}
        for k, obj in enumerate(ids):
            if obj in rows:
                out[k, 0] = soft_logits(self.soft[rows[obj]], self.binary[rows[obj]])
        tensor = torch.from_numpy(out)
        return tensor if self.device is None or self.device.type == "cpu" else tensor.to(self.device)

    def __iter__(self) -> Iterator:
        return iter((self.frame_index, self.obj_ids, self.video_res_masks))


class SAM2Frame(tuple):
    """What ``propagate_in_video`` yields: SAM 2's ``(frame_idx, obj_ids, video_res_masks)``,
    a real tuple (indexing, ``len``, storing and comparing work as with SAM 2), that also
    answers every attribute of its :class:`FrameResult` (``.probs``, ``.soft``, ``.image``...)."""

    def __new__(cls, result: FrameResult) -> "SAM2Frame":
        frame = super().__new__(cls, (result.frame_index, result.obj_ids, result.video_res_masks))
        frame.result = result
        return frame

    def __getattr__(self, name: str):  # only for names the tuple lacks
        try:
            result = object.__getattribute__(self, "__dict__")["result"]
        except KeyError:
            raise AttributeError(name) from None
        return getattr(result, name)

    def __reduce__(self):
        return SAM2Frame, (self.result,)


#: the keys of SAM 2's inference-state dict that a VideoState answers
SAM2_KEYS = ("video_height", "video_width", "num_frames", "obj_ids")


@dataclass
class VideoState:
    """Per-video inference state: frame source, size, the objects by id (in the order they
    were added), which reference they are matched against (:data:`REFERENCES`) and, if kept,
    their results."""

    frames: FrameSource
    height: int
    width: int
    objects: dict[int, ObjectState] = field(default_factory=dict)
    reference: str = "first"
    results: ResultStore | None = None
    version: int = 0  # of the latest mask given
    prompt_frames: set[int] = field(default_factory=set)  # frames with a given mask (any object)
    #: point and box prompts by (frame, object), for ``add_new_points_or_box(clear_old_points=False)``
    clicks: dict[tuple[int, int], Any] = field(default_factory=dict)

    @property
    def num_frames(self) -> int | None:
        """The number of frames; None for a live source (unknown until it ends)."""
        return None if self.frames.live else len(self.frames)

    # -- SAM 2's dict view (read-only) -----------------------------------------------------
    def __getitem__(self, key: str) -> Any:
        if key == "video_height":
            return self.height
        if key == "video_width":
            return self.width
        if key == "num_frames":
            return self.num_frames
        if key == "obj_ids":
            return list(self.objects)
        raise KeyError(f"{key!r}: an ssmvos VideoState answers only {', '.join(SAM2_KEYS)} of SAM 2's keys")

    def __contains__(self, key: object) -> bool:
        return key in SAM2_KEYS

    def __len__(self) -> int:
        return len(SAM2_KEYS)

    def keys(self) -> tuple[str, ...]:
        return SAM2_KEYS

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in SAM2_KEYS else default
