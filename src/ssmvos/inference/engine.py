"""The per-video inference engine, faithful to the original evaluate loop but without its
repeated work.

Per object (the original's chain): frame 0 of the object is its given mask; the reference
(its frame-0 image and mask, cropped around that mask) is encoded ONCE; every later frame
of the object is cropped around the object's previous predicted mask, resized to the
network size, segmented, softmaxed, resized back to the box and pasted into a zero frame;
the next previous mask is argmax(background, foreground) with ties going to background.

Unlike the original, all objects active at a frame run as one batch, each frame is decoded
once for all of them, and decoding is prefetched in threads. How the network itself runs
(device, precision, layout, compilation, CUDA graphs) is ``ssmvos.runtime.NetworkRunner``'s.
"""
from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch

from ..data import geometry
from ..errors import SSMVOSError
from ..model import SSM, ReferenceEncoding
from ..runtime import make_runner, resolve_backend


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


@dataclass
class _Frame:
    """One frame on its way through :meth:`Engine.propagate`."""

    index: int
    image: np.ndarray
    present: list[ObjectState]  # objects tracked at this frame, in id order
    probs: np.ndarray  # len(present)×H×W: given masks filled in at once, the rest when collected
    running: list[int]  # rows of ``present`` that the network segments
    launched: "_Launched | None" = None


@dataclass
class _Launched:
    """Network work handed to the runner (asynchronous on a GPU) and not yet collected."""

    objects: list[ObjectState]
    boxes: list[geometry.CropBox]
    probs: list[torch.Tensor]  # per object: 1×2×h×w probabilities on the device
    height: int
    width: int


class Engine:
    """Runs the SSM network over videos: crops, chains and pastes back around a NetworkRunner.

    input_size: (height, width) of the network crop; margin: the crop margin
    (``--fix-margin``); max_batch: at most this many objects per forward pass. device,
    precision, channels_last (NHWC layout: faster convolutions in oneDNN and cuDNN),
    cuda_graphs, backend ('torch', 'compile', 'onnxruntime'; ``compile=True`` is 'compile')
    and onnx (an export folder for 'onnxruntime') choose the runner
    (:func:`~ssmvos.runtime.make_runner`).

    lookahead (default: on for CUDA): :meth:`propagate` hands frame t+1 to the network before
    it yields frame t, so that the caller's work on a result (merging, writing PNGs) overlaps
    an asynchronous network. The results are the same either way.

    OpenCV is set to one thread: on 512² crops its thread pool costs more than it saves
    (0.74 vs 1.55 ms per crop and resize on 2 cores, more with many cores).

    ``stage_seconds`` adds up wall-clock seconds per stage over the engine's life: 'frames'
    (waiting for decoded frames), 'prepare' (crop + resize on the CPU), 'network' (handing
    the batch to the runner: the whole forward on a CPU, launches on a GPU) and 'paste-back'
    (resize into the frame; on a GPU this includes waiting for the network to finish).
    """

    def __init__(self, model: SSM, input_size: tuple[int, int] = (512, 512), margin: float = 0.5,
                 device: str | torch.device = "cpu", precision: str = "fp32", max_batch: int = 16,
                 channels_last: bool = True, compile: bool = False, cuda_graphs: bool = False,
                 lookahead: bool | None = None, backend: str = "torch", onnx: str | None = None):
        self.runner = make_runner(model, resolve_backend(backend, compile), device, precision, input_size=input_size,
                                  channels_last=channels_last, cuda_graphs=cuda_graphs, onnx=onnx)
        self.lookahead = self.runner.device.type == "cuda" if lookahead is None else lookahead
        self.input_size = input_size
        self.margin = margin
        self.max_batch = max_batch
        self.stage_seconds: Counter[str] = Counter()
        self._batched_refs: tuple[tuple[int, ...], ReferenceEncoding] | None = None
        cv2.setNumThreads(1)

    @property
    def model(self) -> SSM:
        return self.runner.model

    @property
    def device(self) -> torch.device:
        return self.runner.device

    @property
    def precision(self) -> str:
        return self.runner.precision

    @property
    def memory_format(self) -> torch.memory_format:
        return self.runner.memory_format

    # -- network steps -------------------------------------------------------------------
    def _prepare(self, image: np.ndarray, masks: list[np.ndarray],
                 boxes: list[geometry.CropBox]) -> tuple[torch.Tensor, torch.Tensor]:
        """Crops of one frame around each box, resized: (N×h×w×3 uint8, N×h×w uint8 masks)."""
        t = time.perf_counter()
        h, w = self.input_size
        pairs = [geometry.crop_resize(image, m, b, h, w) for m, b in zip(masks, boxes)]
        images = torch.from_numpy(np.stack([p[0] for p in pairs]))
        crops = torch.from_numpy(np.stack([p[1] for p in pairs]).astype(np.uint8))
        self.stage_seconds["prepare"] += time.perf_counter() - t
        return images, crops

    def encode_reference(self, image: np.ndarray, mask: np.ndarray) -> ReferenceEncoding:
        """Encode an object's reference frame (H×W×3 uint8, H×W float mask), cropped around the mask."""
        return self.runner.encode_reference(*self._prepare(image, [mask], [geometry.mask_box(mask, self.margin)]))

    def _references(self, chunk: list[ObjectState]) -> ReferenceEncoding:
        """The chunk's reference encodings as one batch (concatenated once per set of objects)."""
        if len(chunk) == 1:
            return chunk[0].reference
        key = tuple(id(o.reference) for o in chunk)
        if self._batched_refs is None or self._batched_refs[0] != key:
            self._batched_refs = (key, ReferenceEncoding.cat([o.reference for o in chunk]))
        return self._batched_refs[1]

    @torch.inference_mode()
    def _launch(self, image: np.ndarray, objects: list[ObjectState]) -> _Launched:
        """Crop around each object's previous mask and hand the batches to the runner."""
        boxes = [geometry.mask_box(o.prev_mask, self.margin) for o in objects]
        probs: list[torch.Tensor] = []
        for start in range(0, len(objects), self.max_batch):
            chunk = objects[start : start + self.max_batch]
            images, masks = self._prepare(image, [o.prev_mask for o in chunk], boxes[start : start + self.max_batch])
            t = time.perf_counter()
            logits = self.runner.segment(self._references(chunk), images, masks)
            probs.extend(torch.softmax(logits, dim=1).split(1))
            self.stage_seconds["network"] += time.perf_counter() - t
        return _Launched(objects, boxes, probs, *image.shape[:2])

    @torch.inference_mode()
    def _collect(self, launched: _Launched) -> np.ndarray:
        """Foreground probabilities N×H×W (float32) of launched work; sets each object's
        previous mask to argmax(background, foreground), ties to background."""
        t = time.perf_counter()
        fh, fw = launched.height, launched.width
        out = np.zeros((len(launched.objects), fh, fw), dtype=np.float32)
        for row, (obj, box, probs) in enumerate(zip(launched.objects, launched.boxes, launched.probs)):
            region, (fy, fx) = geometry.box_region(probs, box, fh, fw)
            if not np.isfinite(region).all():
                raise SSMVOSError(f"the network's output for object {obj.object_id} is not finite (NaN or inf) in "
                                  f"{self.precision}" + (": fp16 overflows on large activations; use bf16 or fp32"
                                                         if self.precision == "fp16" else
                                                         ": the weights may be broken"))
            out[row, fy, fx] = region[0, 1]
            prev = np.zeros((fh, fw), dtype=np.float32)
            prev[fy, fx] = region[0, 1] > region[0, 0]
            obj.prev_mask = prev
        self.stage_seconds["paste-back"] += time.perf_counter() - t
        return out

    def segment_objects(self, image: np.ndarray, objects: list[ObjectState]) -> np.ndarray:
        """Foreground probabilities N×H×W (float32) of ``objects`` in ``image``; updates their
        previous masks. Objects run in batches of at most ``max_batch``."""
        return self._collect(self._launch(image, objects))

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
        self._batched_refs = None
        first = min(o.start_frame for o in objects)
        frames = state.frames.iterate(list(range(first, state.num_frames)), prefetch)
        previous: _Frame | None = None
        while True:
            t = time.perf_counter()
            item = next(frames, None)
            self.stage_seconds["frames"] += time.perf_counter() - t
            if item is None:
                break
            current = self._begin(state, objects, *item)
            if previous is not None:
                self._complete(previous)  # its previous masks are what ``current`` crops around
            if current.running:
                current.launched = self._launch(current.image, [current.present[r] for r in current.running])
            if previous is not None:
                yield self._result(previous)
                previous = None
            if self.lookahead:
                previous = current
            else:
                self._complete(current)
                yield self._result(current)
        if previous is not None:
            self._complete(previous)
            yield self._result(previous)

    def _begin(self, state: VideoState, objects: list[ObjectState], index: int, image: np.ndarray) -> _Frame:
        """The objects of frame ``index``; those that start here get their reference encoded."""
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
        return _Frame(index, image, present, probs, running)

    def _complete(self, frame: _Frame) -> None:
        if frame.launched is not None:
            frame.probs[frame.running] = self._collect(frame.launched)
            frame.launched = None

    @staticmethod
    def _result(frame: _Frame) -> FrameResult:
        soft = (frame.probs * 255).astype(np.uint8)
        return FrameResult(frame.index, [o.object_id for o in frame.present], frame.probs, soft, frame.image)
