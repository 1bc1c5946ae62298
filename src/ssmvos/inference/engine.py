"""The per-video inference engine, faithful to the original evaluate loop but without its
repeated work.

Per object (the original's chain): frame 0 of the object is its given mask; the reference
(its frame-0 image and mask, cropped around that mask) is encoded ONCE; every later frame
of the object is cropped around the object's previous predicted mask, resized to the
network size, segmented, softmaxed, resized back to the box and pasted into a zero frame;
the next previous mask is argmax(background, foreground) with ties going to background.

Unlike the original, all objects active at a frame run as one batch, each frame is decoded
once for all of them, and decoding is prefetched in threads.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import torch

from ..data import geometry
from ..data.tensors import image_to_tensor, mask_to_tensor
from ..distributed import resolve_device
from ..errors import SSMVOSError
from ..model import SSM, ReferenceEncoding

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """Autocast context for ``precision`` ('fp32' = none) on ``device``."""
    if precision not in PRECISIONS:
        raise SSMVOSError(f"precision must be one of {sorted(PRECISIONS)}, not {precision!r}")
    dtype = PRECISIONS[precision]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


@dataclass
class ObjectState:
    """One tracked object: its reference encoding and its latest mask (frame size)."""

    object_id: int
    start_frame: int
    init_mask: np.ndarray  # H×W float32 {0, 1}: the mask given at start_frame
    frames: frozenset[int] | None = None  # frames where it is tracked (None: every frame after start)
    reference: ReferenceEncoding | None = None
    prev_mask: np.ndarray | None = None  # H×W float32 {0, 1}

    def tracked_at(self, frame_index: int) -> bool:
        if frame_index < self.start_frame:
            return False
        return self.frames is None or frame_index in self.frames


@dataclass
class FrameResult:
    """What one frame yields: ids of the objects present and their foreground probabilities.

    ``probs`` is N×H×W float32 in [0, 1] (the given mask itself on an object's first
    frame); ``soft`` is the same as uint8(p·255), the original's saved soft mask;
    ``image`` is the decoded H×W×3 uint8 frame.
    """

    frame_index: int
    object_ids: list[int]
    probs: np.ndarray
    soft: np.ndarray
    image: np.ndarray


@dataclass
class VideoState:
    """Per-video inference state: frame source, size, and the objects in id order."""

    frames: "FrameSource"
    height: int
    width: int
    objects: dict[int, ObjectState] = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return len(self.frames)


class FrameSource:
    """Random access to the frames of a video (a list of image paths or a decoded clip).

    ``get(i)`` -> H×W×3 uint8 RGB. Subclasses in ``inference.video``.
    """

    def __len__(self) -> int:  # pragma: no cover - interface
        raise NotImplementedError

    def get(self, index: int) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def name(self, index: int) -> str:
        """A file stem for frame ``index`` (used for output names)."""
        return f"{index:05d}"

    def iterate(self, indices: list[int], prefetch: int = 4) -> Iterator[tuple[int, np.ndarray]]:
        """Decode ``indices`` in order, ``prefetch`` frames ahead in threads."""
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="ssmvos-decode") as pool:
            pending: list[tuple[int, Future]] = []
            it = iter(indices)
            for i in it:
                pending.append((i, pool.submit(self.get, i)))
                if len(pending) > prefetch:
                    break
            while pending:
                i, fut = pending.pop(0)
                nxt = next(it, None)
                if nxt is not None:
                    pending.append((nxt, pool.submit(self.get, nxt)))
                yield i, fut.result()


class Engine:
    """Runs the SSM network over videos; holds the model, not a subclass of it.

    input_size: (height, width) of the network crop; margin: the crop margin
    (``--fix-margin``); max_batch: at most this many objects per forward pass;
    channels_last: NHWC memory layout (faster convolutions in oneDNN and cuDNN).
    """

    def __init__(self, model: SSM, input_size: tuple[int, int] = (512, 512), margin: float = 0.5,
                 device: str | torch.device = "cpu", precision: str = "fp32", max_batch: int = 16,
                 channels_last: bool = True):
        self.device = device if isinstance(device, torch.device) else resolve_device(device)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.model = model.eval().to(self.device, memory_format=self.memory_format)
        self.input_size = input_size
        self.margin = margin
        self.precision = precision
        self.max_batch = max_batch
        autocast(self.device, precision)  # validates the name early

    # -- network steps -------------------------------------------------------------------
    def _prepare(self, image: np.ndarray, mask: np.ndarray, box: geometry.CropBox) -> tuple[torch.Tensor, torch.Tensor]:
        h, w = self.input_size
        img, msk = geometry.crop_resize(image, mask, box, h, w)
        return image_to_tensor(img), mask_to_tensor(msk)

    @torch.inference_mode()
    def encode_reference(self, image: np.ndarray, mask: np.ndarray) -> ReferenceEncoding:
        """Encode an object's reference frame (H×W×3 uint8, H×W float mask), cropped around the mask."""
        img, msk = self._prepare(image, mask, geometry.mask_box(mask, self.margin))
        img = img[None].to(self.device).contiguous(memory_format=self.memory_format)
        with autocast(self.device, self.precision):
            return self.model.encode_reference(img, msk[None].to(self.device))

    @torch.inference_mode()
    def segment_objects(self, image: np.ndarray, objects: list[ObjectState]) -> np.ndarray:
        """Foreground probabilities N×H×W (float32) of ``objects`` in ``image``; updates their
        previous masks. Objects run in batches of at most ``max_batch``."""
        fh, fw = image.shape[:2]
        out = np.empty((len(objects), fh, fw), dtype=np.float32)
        for start in range(0, len(objects), self.max_batch):
            chunk = objects[start : start + self.max_batch]
            boxes = [geometry.mask_box(o.prev_mask, self.margin) for o in chunk]
            pairs = [self._prepare(image, o.prev_mask, b) for o, b in zip(chunk, boxes)]
            cur = torch.stack([p[0] for p in pairs]).to(self.device).contiguous(memory_format=self.memory_format)
            prev = torch.stack([p[1] for p in pairs]).to(self.device)
            refs = chunk[0].reference if len(chunk) == 1 else ReferenceEncoding.cat([o.reference for o in chunk])
            with autocast(self.device, self.precision):
                logits, _ = self.model.segment(refs, cur, prev)
            probs = torch.softmax(logits.float(), dim=1)
            for i, (obj, box) in enumerate(zip(chunk, boxes)):
                pasted = geometry.paste_back(probs[i : i + 1], box, fh, fw)[0].cpu()
                fg = pasted[1].numpy()
                out[start + i] = fg
                obj.prev_mask = (pasted[1] > pasted[0]).numpy().astype(np.float32)
        return out

    # -- video loop ----------------------------------------------------------------------
    def add_object(self, state: VideoState, frame_index: int, object_id: int, mask: np.ndarray,
                   frames: frozenset[int] | None = None) -> None:
        """Register object ``object_id`` with its H×W mask (nonzero = object) at ``frame_index``."""
        if object_id in state.objects:
            raise SSMVOSError(f"object {object_id} was already added")
        if not 0 <= frame_index < state.num_frames:
            raise SSMVOSError(f"frame index {frame_index} is outside the video's {state.num_frames} frames")
        if mask.shape[:2] != (state.height, state.width):
            raise SSMVOSError(f"mask of object {object_id} is {mask.shape[1]}×{mask.shape[0]}, "
                              f"the frames are {state.width}×{state.height}")
        binary = (np.asarray(mask) > 0).astype(np.float32)
        if not binary.any():
            raise SSMVOSError(f"the mask of object {object_id} at frame {frame_index} is empty")
        state.objects[object_id] = ObjectState(object_id, frame_index, binary, frames)

    def propagate(self, state: VideoState, prefetch: int = 4) -> Iterator[FrameResult]:
        """Yield a FrameResult for every frame from the first object's start to the end."""
        if not state.objects:
            raise SSMVOSError("no object was added to the video")
        objects = sorted(state.objects.values(), key=lambda o: o.object_id)
        for obj in objects:
            obj.reference, obj.prev_mask = None, None
        first = min(o.start_frame for o in objects)
        for index, image in state.frames.iterate(list(range(first, state.num_frames)), prefetch):
            if image.shape[:2] != (state.height, state.width):
                raise SSMVOSError(f"frame {state.frames.name(index)} is {image.shape[1]}×{image.shape[0]}, "
                                  f"the video's first frame is {state.width}×{state.height}")
            present = [o for o in objects if o.tracked_at(index)]
            probs = np.zeros((len(present), state.height, state.width), dtype=np.float32)
            running = []
            for row, obj in enumerate(present):
                if index == obj.start_frame:
                    obj.reference = self.encode_reference(image, obj.init_mask)
                    obj.prev_mask = obj.init_mask
                    probs[row] = obj.init_mask
                else:
                    running.append(row)
            if running:
                probs[running] = self.segment_objects(image, [present[r] for r in running])
            soft = (probs * 255).astype(np.uint8)
            yield FrameResult(index, [o.object_id for o in present], probs, soft, image)
