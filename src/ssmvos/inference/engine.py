"""The per-video inference engine, faithful to the original evaluate loop but without its
repeated work, and steerable: masks on any frame, corrections, both directions.

Per object (the original's chain): on a frame where the object has a given mask, the result
is that mask and the chain (re)starts from it; every other frame is cropped around the
object's previous predicted mask, resized to the network size, segmented against the
object's reference (an image and mask encoded ONCE), softmaxed, resized back to the box and
pasted into a zero frame; the next previous mask is argmax(background, foreground) with
ties going to background. Backward propagation is the same chain over decreasing frame
indices. With one mask per object and forward propagation this is the original exactly.

The reference is the object's first given mask (``reference="first"``, as the original,
which matches every frame against frame 0) or, after a correction, the latest given mask
the chain passed (``reference="latest"``: the chain restarts there as if the video began
at that frame). Without corrections the two are the same.

Results can be kept per (frame, object) in a compact :class:`~.results.ResultStore`, with how
each was made; a result stays valid until a mask given later would change it, so that
propagating again after a correction at frame k runs the network for frames >= k only
(forward) and reads the rest back.

Unlike the original, all objects active at a frame run as one batch, each frame is decoded
once for all of them, and decoding is prefetched in threads. How the network itself runs
(device, precision, layout, compilation, CUDA graphs) is ``ssmvos.runtime.NetworkRunner``'s.
"""
from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch

from ..data import geometry
from ..errors import SSMVOSError
from ..model import SSM, ReferenceEncoding
from ..model.ssm import input_problem
from ..runtime import HostCopy, NetworkRunner, make_runner, resolve_backend
from .frames import FrameSource
from .results import Provenance, ResultStore, StoredResult

#: which given mask an object is matched against (see the module docstring)
REFERENCES = ("first", "latest")


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


@dataclass
class FrameResult:
    """What one frame yields: ids of the objects present and their foreground probabilities.

    ``probs`` is N×H×W float32 in [0, 1] (a given mask itself on the frame it was given;
    ``soft / 255`` for a result read back from the store); ``soft`` is N×H×W uint8(p·255),
    the original's saved soft mask; ``image`` is the decoded H×W×3 uint8 frame (None for
    results read back with ``VideoPredictor.frame_result``); ``fps`` the source's frame rate
    if known; ``latency`` (live sources) seconds from the frame's arrival to this result.
    Unpacks as SAM 2's ``(frame_index, object_ids, masks)``.
    """

    frame_index: int
    object_ids: list[int]
    probs: np.ndarray
    soft: np.ndarray
    image: np.ndarray | None
    fps: float | None = None
    latency: float | None = None

    @property
    def masks(self) -> np.ndarray:
        return self.probs

    def __iter__(self) -> Iterator:
        return iter((self.frame_index, self.object_ids, self.probs))


@dataclass
class VideoState:
    """Per-video inference state: frame source, size, the objects by id, which reference
    they are matched against (:data:`REFERENCES`) and, if kept, their results."""

    frames: FrameSource
    height: int
    width: int
    objects: dict[int, ObjectState] = field(default_factory=dict)
    reference: str = "first"
    results: ResultStore | None = None
    version: int = 0  # of the latest mask given
    prompt_frames: set[int] = field(default_factory=set)  # frames with a given mask (any object)

    @property
    def num_frames(self) -> int | None:
        """The number of frames; None for a live source (unknown until it ends)."""
        return None if self.frames.live else len(self.frames)


@dataclass
class _Chain:
    """One object's running chain in a pass: its reference and previous mask, and the
    provenance its results get."""

    object_id: int
    prev_mask: np.ndarray | torch.Tensor  # H×W {0, 1}: float32 on the host, or bool on the device
    provenance: Provenance
    reference: ReferenceEncoding | None = None


@dataclass
class _Frame:
    """One frame on its way through :meth:`Engine.propagate`."""

    index: int
    image: np.ndarray
    chains: list[_Chain]  # the objects present at this frame, in id order
    probs: np.ndarray  # len(chains)×H×W: given masks filled in at once, the rest when collected
    running: list[int]  # rows that the network segments
    stored: dict[int, StoredResult]  # rows read back from the store
    arrival: float | None = None
    launched: "_Launched | None" = None
    pasted: "_Pasted | None" = None


@dataclass
class _Launched:
    """Network work handed to the runner (asynchronous on a GPU) and not yet collected."""

    objects: list[_Chain]
    boxes: list[geometry.CropBox] | HostCopy  # HostCopy: boxes computed on the device, on their way
    probs: list[torch.Tensor]  # per object: 1×2×h×w probabilities on the device
    height: int
    width: int


@dataclass
class _Pasted:
    """Pasted-back results: host arrays, or (device geometry) copies to the host in flight."""

    probs: np.ndarray | None = None  # N×H×W float32 foreground probabilities
    chain: list[np.ndarray] | None = None  # per object: H×W {0, 1}, the next previous mask
    copy: HostCopy | None = None  # device geometry: [probs, finite, chain masks]


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

    device_geometry (default: on for CUDA with the torch and compile backends): crop boxes,
    crop + resize and paste-back run as tensor operations where the network runs
    (``geometry.mask_boxes``, ``crop_resize_tensors``; the same numbers as OpenCV's, see
    there), the previous masks stay there, and only the results travel to the host,
    asynchronously: the host never waits for the device between frames, so a fast GPU is
    not held up by the CPU. Off: the host does the geometry with OpenCV (the original's way).

    OpenCV is set to one thread: on 512² crops its thread pool costs more than it saves
    (0.74 vs 1.55 ms per crop and resize on 2 cores, more with many cores).

    ``stage_seconds`` adds up wall-clock seconds per stage over the engine's life: 'frames'
    (waiting for decoded frames), 'prepare' (crop + resize; with device geometry only
    queueing them), 'network' (handing the batch to the runner: the whole forward on a CPU,
    launches on a GPU) and 'paste-back' (resize into the frame; on a GPU this includes
    waiting for the network and the copies to the host to finish).
    """

    def __init__(self, model: SSM, input_size: tuple[int, int] = (512, 512), margin: float = 0.5,
                 device: str | torch.device = "cpu", precision: str = "fp32", max_batch: int = 16,
                 channels_last: bool = True, compile: bool = False, cuda_graphs: bool = False,
                 lookahead: bool | None = None, backend: str = "torch", onnx: str | None = None,
                 device_geometry: bool | None = None):
        problem = input_problem(*input_size, model.config["keep_topk"])
        if problem:
            raise SSMVOSError(f"{problem} (input_size)")
        self.runner = make_runner(model, resolve_backend(backend, compile), device, precision, input_size=input_size,
                                  channels_last=channels_last, cuda_graphs=cuda_graphs, onnx=onnx)
        self.lookahead = self.runner.device.type == "cuda" if lookahead is None else lookahead
        if device_geometry is None:
            device_geometry = self.runner.device.type == "cuda" and isinstance(self.runner, NetworkRunner)
        elif device_geometry and not isinstance(self.runner, NetworkRunner):
            raise SSMVOSError("device geometry needs the torch or compile backend")
        self.device_geometry = device_geometry
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

    def _references(self, chunk: list[_Chain]) -> ReferenceEncoding:
        """The chunk's reference encodings as one batch (concatenated once per set of objects)."""
        if len(chunk) == 1:
            return chunk[0].reference
        key = tuple(id(o.reference) for o in chunk)
        if self._batched_refs is None or self._batched_refs[0] != key:
            self._batched_refs = (key, ReferenceEncoding.cat([o.reference for o in chunk]))
        return self._batched_refs[1]

    @torch.inference_mode()
    def _launch(self, image: np.ndarray, objects: list[_Chain]) -> _Launched:
        """Crop around each object's previous mask and hand the batches to the runner (with
        device geometry, without waiting for the device)."""
        if not self.device_geometry:
            boxes = [geometry.mask_box(o.prev_mask, self.margin) for o in objects]
            probs = self._segment(objects, lambda chunk: self._prepare(
                image, [o.prev_mask for o in objects[chunk]], boxes[chunk]))
            return _Launched(objects, boxes, probs, *image.shape[:2])
        t = time.perf_counter()
        frame = self.runner.to_device(torch.from_numpy(image))
        prev = torch.stack([self._device_mask(o.prev_mask) for o in objects])
        if self.runner.cuda_graphs:  # some hundred small operations: one launch
            device_boxes, images, masks = self.runner.replay("geometry", self._crops_on_device, [frame, prev])
        else:
            device_boxes, images, masks = self._crops_on_device(frame, prev)
        host_boxes = self.runner.to_host([device_boxes])
        self.stage_seconds["prepare"] += time.perf_counter() - t
        probs = self._segment(objects, lambda chunk: (images[chunk], masks[chunk]))
        return _Launched(objects, host_boxes, probs, *image.shape[:2])

    def _segment(self, objects: list[_Chain], crops) -> list[torch.Tensor]:
        """Per object 1×2×h×w probabilities, in batches of at most ``max_batch`` objects;
        ``crops(chunk)`` gives a batch's (images, masks) for a slice of ``objects``."""
        probs: list[torch.Tensor] = []
        for start in range(0, len(objects), self.max_batch):
            chunk = slice(start, start + self.max_batch)
            images, masks = crops(chunk)
            t = time.perf_counter()
            logits = self.runner.segment(self._references(objects[chunk]), images, masks)
            probs.extend(torch.softmax(logits, dim=1).split(1))
            self.stage_seconds["network"] += time.perf_counter() - t
        return probs

    def _crops_on_device(self, frame: torch.Tensor, prev: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Boxes around the previous masks and the crops of the frame and the masks, resized."""
        boxes = geometry.mask_boxes(prev, self.margin)
        return (boxes, *geometry.crop_resize_tensors(frame, prev, boxes, *self.input_size))

    def _device_mask(self, mask: np.ndarray | torch.Tensor) -> torch.Tensor:
        """A previous mask as a bool tensor on the device (given and stored masks come from the host)."""
        if isinstance(mask, torch.Tensor):
            return mask
        return self.runner.to_device(torch.from_numpy(np.asarray(mask) > 0))

    def _not_finite(self, object_id: int) -> SSMVOSError:
        return SSMVOSError(f"the network's output for object {object_id} is not finite (NaN or inf) in "
                           f"{self.precision}" + (": fp16 overflows on large activations; use bf16 or fp32"
                                                  if self.precision == "fp16" else ": the weights may be broken"))

    @torch.inference_mode()
    def _paste_back(self, launched: _Launched) -> _Pasted:
        """Paste launched work back into the frame; sets each object's previous mask to
        argmax(background, foreground), ties to background. With device geometry this only
        queues the work and the copies to the host (:meth:`_fetch` waits for them)."""
        t = time.perf_counter()
        fh, fw = launched.height, launched.width
        if self.device_geometry:
            boxes = [geometry.CropBox(*map(int, b)) for b in launched.boxes.wait()[0].tolist()]
            probs = torch.zeros((len(launched.objects), fh, fw), device=self.device)
            chain = torch.zeros((len(launched.objects), fh, fw), dtype=torch.bool, device=self.device)
            finite = []
            for row, (obj, box, p) in enumerate(zip(launched.objects, boxes, launched.probs)):
                region, (fy, fx) = geometry.box_region_tensor(p, box, fh, fw)
                probs[row, fy, fx] = region[0, 1]
                chain[row, fy, fx] = region[0, 1] > region[0, 0]
                finite.append(torch.isfinite(region).all())
                obj.prev_mask = chain[row]
            pasted = _Pasted(copy=self.runner.to_host([probs, torch.stack(finite), chain]))
        else:
            out = np.zeros((len(launched.objects), fh, fw), dtype=np.float32)
            masks = []
            for row, (obj, box, probs) in enumerate(zip(launched.objects, launched.boxes, launched.probs)):
                region, (fy, fx) = geometry.box_region(probs, box, fh, fw)
                if not np.isfinite(region).all():
                    raise self._not_finite(obj.object_id)
                out[row, fy, fx] = region[0, 1]
                prev = np.zeros((fh, fw), dtype=np.float32)
                prev[fy, fx] = region[0, 1] > region[0, 0]
                obj.prev_mask = prev
                masks.append(prev)
            pasted = _Pasted(out, masks)
        self.stage_seconds["paste-back"] += time.perf_counter() - t
        return pasted

    def _fetch(self, launched: _Launched, pasted: _Pasted) -> tuple[np.ndarray, list[np.ndarray]]:
        """The pasted-back results on the host: (foreground probabilities N×H×W float32, the
        next previous masks)."""
        if pasted.copy is None:
            return pasted.probs, pasted.chain
        t = time.perf_counter()
        probs, finite, chain = pasted.copy.wait()
        for obj, ok in zip(launched.objects, finite.tolist()):
            if not ok:
                raise self._not_finite(obj.object_id)
        result = probs.numpy(), list(chain.numpy())
        self.stage_seconds["paste-back"] += time.perf_counter() - t
        return result

    # -- objects -------------------------------------------------------------------------
    def add_object(self, state: VideoState, frame_index: int, object_id: int, mask: np.ndarray,
                   frames: frozenset[int] | None = None) -> None:
        """Give object ``object_id``'s H×W mask (nonzero = object) at ``frame_index``.

        A new id starts there; a known id is a correction: from this frame on its chain
        restarts from this mask (a mask given again on the same frame replaces it).
        ``frames``: the frames where a new object is tracked (default: every frame).
        """
        n = state.num_frames
        if frame_index < 0 or (n is not None and frame_index >= n):
            raise SSMVOSError(f"frame index {frame_index} is outside the video's {n} frames" if n is not None
                              else f"frame index {frame_index} is negative")
        if mask.shape[:2] != (state.height, state.width):
            raise SSMVOSError(f"mask of object {object_id} is {mask.shape[1]}×{mask.shape[0]}, "
                              f"the frames are {state.width}×{state.height}")
        binary = (np.asarray(mask) > 0).astype(np.float32)
        if not binary.any():
            raise SSMVOSError(f"the mask of object {object_id} at frame {frame_index} is empty")
        state.version += 1
        prompt = Prompt(binary, state.version)
        obj = state.objects.get(object_id)
        if obj is None:
            obj = state.objects[object_id] = ObjectState(object_id, {}, frame_index, frames)
        obj.prompts[frame_index] = prompt
        state.prompt_frames.add(frame_index)
        live = {(f, p.version) for f, p in obj.prompts.items()}
        obj.encodings = {k: v for k, v in obj.encodings.items() if k in live}
        if state.results is not None:
            ref = obj.reference_frame(frame_index, state.reference)
            state.results.put(frame_index, object_id, (binary * 255).astype(np.uint8), binary,
                              Provenance(frame_index, prompt.version, ref, obj.prompts[ref].version, False))

    def remove_object(self, state: VideoState, object_id: int) -> None:
        """Forget object ``object_id``: its masks, chain and stored results."""
        if state.objects.pop(object_id, None) is None:
            raise SSMVOSError(f"there is no object {object_id} to remove (objects: "
                              f"{', '.join(map(str, sorted(state.objects))) or 'none'})")
        remaining = {f for o in state.objects.values() for f in o.prompts}
        state.prompt_frames.intersection_update(remaining)  # in place: a live reader holds the set
        if state.results is not None:
            state.results.remove_object(object_id)

    def reset(self, state: VideoState) -> None:
        """Forget every object and every stored result of ``state``."""
        state.objects.clear()
        state.prompt_frames.clear()
        if state.results is not None:
            state.results.clear()

    def result_at(self, state: VideoState, frame_index: int) -> FrameResult | None:
        """The stored results at ``frame_index`` (no network; None if nothing is stored)."""
        if state.results is None:
            return None
        ids = [i for i in state.results.objects_at(frame_index) if i in state.objects]
        if not ids:
            return None
        soft = np.stack([state.results.get(frame_index, i).soft for i in ids])
        return FrameResult(frame_index, ids, soft.astype(np.float32) / 255, soft, None, state.frames.fps)

    def _valid(self, state: VideoState, obj: ObjectState, frame_index: int, prov: Provenance | None,
               reverse: bool) -> bool:
        """Whether a result made as ``prov`` at ``frame_index`` is what a pass in this
        direction would make now (no mask given since changes it)."""
        if prov is None or (prov.reverse != reverse and prov.anchor != frame_index):
            return False
        anchor, ref = obj.prompts.get(prov.anchor), obj.prompts.get(prov.ref)
        if anchor is None or anchor.version != prov.anchor_version or ref is None or ref.version != prov.ref_version:
            return False
        if prov.ref != obj.reference_frame(prov.anchor, state.reference):
            return False
        lo, hi = sorted((prov.anchor, frame_index))
        return not any(lo < f < hi for f in obj.prompts)

    # -- video loop ----------------------------------------------------------------------
    def propagate(self, state: VideoState, start: int | None = None, max_frames: int | None = None,
                  reverse: bool = False, prefetch: int = 4) -> Iterator[FrameResult]:
        """Yield a FrameResult for every frame from ``start`` on, in increasing frame order
        (decreasing if ``reverse``): the start frame and at most ``max_frames`` more.

        ``start`` None: the first frame with a given mask (the last one if ``reverse``). An
        object is present from the first frame of the pass where it has a given mask, or
        from the start if its result on the frame before the start is stored and still
        valid. Stored results that are still valid are read back instead of recomputed.
        Masks given or objects removed while iterating count from the next frame not yet begun.
        """
        if not state.objects:
            raise SSMVOSError("no object was added to the video")
        if max_frames is not None and max_frames < 0:
            raise SSMVOSError(f"max_frame_num_to_track must be >= 0, not {max_frames}")
        live = state.frames.live
        if live and reverse:
            raise SSMVOSError("a live source can only be propagated forward")
        if start is None:
            start = max(state.prompt_frames) if reverse else min(state.prompt_frames)
        n = state.num_frames
        if start < 0 or (n is not None and start >= n):
            raise SSMVOSError(f"start frame {start} is outside the video's {n} frames" if n is not None
                              else f"start frame {start} is negative")
        if reverse:
            stop = 0 if max_frames is None else max(start - max_frames, 0)
            indices = list(range(start, stop - 1, -1))
        elif n is not None:
            indices = list(range(start, n if max_frames is None else min(start + max_frames + 1, n)))
        self._batched_refs = None
        chains = self._resume(state, start, reverse)
        if live:
            count = None if max_frames is None else max_frames + 1
            items = state.frames.stream(start, count, keep=state.prompt_frames.__contains__)
        else:
            items = ((i, image, None) for i, image in state.frames.iterate(indices, prefetch))
        lookahead = self.lookahead and not live  # a live frame is yielded as soon as it is done
        previous: _Frame | None = None
        last = None
        while True:
            t = time.perf_counter()
            item = next(items, None)
            self.stage_seconds["frames"] += time.perf_counter() - t
            if item is None:
                break
            last = item[0]
            current = self._begin(state, chains, reverse, *item)
            if previous is not None:
                self._paste(previous)  # its previous masks are what ``current`` crops around
            self._apply_stored(current)
            if current.running:
                current.launched = self._launch(current.image, [current.chains[r] for r in current.running])
            if previous is not None:
                self._complete(state, previous)
                yield self._result(state, previous)
                previous = None
            if lookahead:
                previous = current
            else:
                self._complete(state, current)
                yield self._result(state, current)
        if previous is not None:
            self._complete(state, previous)
            yield self._result(state, previous)
        if live and max_frames is None:
            missing = sorted(f for f in state.prompt_frames if last is None or f > last)
            if missing:
                seen = f"after frame {last}" if last is not None else f"before frame {start}"
                raise SSMVOSError(f"{state.frames.description} ended {seen}, before frame {missing[0]} where a "
                                  "mask was given")

    def _resume(self, state: VideoState, start: int, reverse: bool) -> dict[int, _Chain]:
        """Chains that continue into ``start`` from a stored, still valid result on the
        object's frame before it."""
        chains: dict[int, _Chain] = {}
        if state.results is None:
            return chains
        for obj in state.objects.values():
            if start in obj.prompts:
                continue
            before = [f for f in (obj.frames or ([start + 1] if reverse else [start - 1]))
                      if (f > start if reverse else f < start) and f >= 0]
            if not before:
                continue
            frame = min(before) if reverse else max(before)
            prov = state.results.provenance(frame, obj.object_id)
            if self._valid(state, obj, frame, prov, reverse):
                stored = state.results.get(frame, obj.object_id)
                chains[obj.object_id] = _Chain(obj.object_id, stored.chain.astype(np.float32),
                                               Provenance(prov.anchor, prov.anchor_version, prov.ref,
                                                          prov.ref_version, reverse))
        return chains

    def _reference(self, state: VideoState, chain: _Chain, index: int, image: np.ndarray) -> ReferenceEncoding:
        """The chain's reference encoding: cached per object, else encoded (from this frame's
        image when it is the reference frame, else from the source)."""
        obj = state.objects[chain.object_id]
        key = (chain.provenance.ref, chain.provenance.ref_version)
        if key not in obj.encodings:
            if chain.provenance.ref == index:
                ref_image = image
            elif state.frames.live:
                raise SSMVOSError(f"object {obj.object_id}'s reference (its mask at frame {chain.provenance.ref}) "
                                  "is not a frame this live source has passed")
            else:
                ref_image = state.frames.get(chain.provenance.ref)
            obj.encodings[key] = self.encode_reference(ref_image, obj.prompts[chain.provenance.ref].mask)
        return obj.encodings[key]

    def _begin(self, state: VideoState, chains: dict[int, _Chain], reverse: bool, index: int,
               image: np.ndarray, arrival: float | None) -> _Frame:
        """The objects present at frame ``index``: given masks restart their chains (and get
        their reference encoded if it is this frame), valid stored results are read back,
        the rest run."""
        if image.shape[:2] != (state.height, state.width):
            raise SSMVOSError(f"frame {state.frames.name(index)} is {image.shape[1]}×{image.shape[0]}, "
                              f"the video's first frame is {state.width}×{state.height}")
        present: list[_Chain] = []
        given: list[tuple[int, np.ndarray]] = []
        running: list[int] = []
        stored: dict[int, StoredResult] = {}
        for obj in sorted(state.objects.values(), key=lambda o: o.object_id):
            if not obj.tracked_at(index):
                continue
            prompt = obj.prompts.get(index)
            row = len(present)
            if prompt is not None:
                ref = obj.reference_frame(index, state.reference)
                chain = chains[obj.object_id] = _Chain(
                    obj.object_id, prompt.mask,
                    Provenance(index, prompt.version, ref, obj.prompts[ref].version, reverse))
                if ref == index:  # the original encodes the reference on the object's first frame
                    chain.reference = self._reference(state, chain, index, image)
                given.append((row, prompt.mask))
            elif obj.object_id in chains:
                chain = chains[obj.object_id]
                prov = state.results.provenance(index, obj.object_id) if state.results is not None else None
                if prov is not None and prov.anchor != index and self._valid(state, obj, index, prov, reverse) \
                        and prov == chain.provenance:
                    stored[row] = state.results.get(index, obj.object_id)
                else:
                    if chain.reference is None:
                        chain.reference = self._reference(state, chain, index, image)
                    running.append(row)
            else:
                continue
            present.append(chain)
        probs = np.zeros((len(present), state.height, state.width), dtype=np.float32)
        for row, mask in given:
            probs[row] = mask
        for row, hit in stored.items():
            probs[row] = hit.soft.astype(np.float32) / 255
        return _Frame(index, image, present, probs, running, stored, arrival)

    @staticmethod
    def _apply_stored(frame: _Frame) -> None:
        """Chains continue from the masks read back (after the frame before was collected)."""
        for row, hit in frame.stored.items():
            frame.chains[row].prev_mask = hit.chain.astype(np.float32)

    def _paste(self, frame: _Frame) -> None:
        """Paste the frame's network results back (queued, with device geometry)."""
        if frame.launched is not None and frame.pasted is None:
            frame.pasted = self._paste_back(frame.launched)

    def _complete(self, state: VideoState, frame: _Frame) -> None:
        """The frame's results on the host, in its probabilities and (if kept) the store."""
        if frame.launched is None:
            return
        self._paste(frame)
        probs, masks = self._fetch(frame.launched, frame.pasted)
        frame.probs[frame.running] = probs
        frame.launched = frame.pasted = None
        if state.results is not None:
            for row, mask in zip(frame.running, masks):
                chain = frame.chains[row]
                if chain.object_id in state.objects:
                    state.results.put(frame.index, chain.object_id, (frame.probs[row] * 255).astype(np.uint8),
                                      mask, chain.provenance)

    @staticmethod
    def _result(state: VideoState, frame: _Frame) -> FrameResult:
        keep = [r for r, c in enumerate(frame.chains) if c.object_id in state.objects]  # removed meanwhile
        probs = frame.probs if len(keep) == len(frame.chains) else frame.probs[keep]
        soft = (probs * 255).astype(np.uint8)
        for out_row, row in enumerate(keep):
            if row in frame.stored:
                soft[out_row] = frame.stored[row].soft
        latency = None if frame.arrival is None else time.monotonic() - frame.arrival
        return FrameResult(frame.index, [frame.chains[r].object_id for r in keep], probs, soft, frame.image,
                           state.frames.fps, latency)
