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

Kept results. Results can be kept per (frame, object) in a compact
:class:`~.results.ResultStore`, with how each was made (its chain's anchor mask, reference
and direction). A kept result stays valid until a mask given later would change it (a mask
given between it and its anchor, or its anchor or reference mask replaced or cleared), so
that propagating again after a correction at frame k runs the network for frames >= k only
(forward) and reads the rest back. **The kept result of a frame is the one the last pass
that computed it made**, and every view agrees with it: a pass yields, on each frame, the
objects it runs or reads back AND every other object's valid kept result there (so a
backward pass does not drop objects a forward pass found); :meth:`Engine.result_at` and
:meth:`Engine.kept_frames` show the same.

Where a pass starts. An object that has a given mask before the start of a forward pass
(after it, backward) but no valid kept result on the frame before the start is first
caught up: its chain runs from its nearest mask up to the start, unseen, so that the start
frame gets what a whole run gives there.

Unlike the original, all objects active at a frame run as one batch, each frame is decoded
once for all of them, and decoding is prefetched in threads. How the network runs (device,
precision, layout, compilation, CUDA graphs, backend) is the runner's
(:class:`ssmvos.runtime.Runner`, passed in); where the crop geometry runs is one of two
strategies (:mod:`.crops`).
"""
from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from ..data.geometry import resize_mask
from ..errors import SSMVOSError, SSMVOSRuntimeError, SSMVOSValueError
from ..model import SSM, ReferenceEncoding
from ..model.ssm import check_input_size
from ..runtime import Runner, RuntimeSpec, build_runner
from .crops import DeviceGeometry, HostGeometry, NotFinite, Pasted
from .merge import MODES, merge_frame
from .results import Provenance, StoredResult
from .state import REFERENCES, FrameResult, ObjectState, Prompt, VideoState

__all__ = ["Engine", "FrameResult", "ObjectState", "Prompt", "REFERENCES", "VideoState"]


@dataclass
class _Chain:
    """One object's running chain in a pass: its reference and previous mask (in the
    geometry strategy's form), and the provenance its results get."""

    object_id: int
    prev_mask: np.ndarray | torch.Tensor
    provenance: Provenance
    reference: ReferenceEncoding | None = None


@dataclass
class _Row:
    """One object on one frame: ``given`` (its mask given there), ``stored`` (its chain's
    kept result, read back), ``run`` (segmented now) or ``kept`` (another pass's valid kept
    result, shown; no chain)."""

    object_id: int
    kind: str
    chain: _Chain | None = None
    mask: np.ndarray | None = None
    stored: StoredResult | None = None


@dataclass
class _Launched:
    """Network work handed to the runner (asynchronous on a GPU) and not yet collected."""

    chains: list[_Chain]
    boxes: object  # the geometry strategy's boxes
    probs: list[torch.Tensor]  # per object: 1×2×h×w probabilities on the device


@dataclass
class _Frame:
    """One frame on its way through a pass."""

    index: int
    image: np.ndarray
    rows: list[_Row]
    soft: np.ndarray  # len(rows)×H×W uint8
    binary: np.ndarray  # len(rows)×H×W bool
    arrival: float | None = None
    launched: _Launched | None = None
    pasted: Pasted | None = None
    merge: str | None = None  # merge mode asked of the pass (None: no label map)
    labels: np.ndarray | None = None  # H×W uint8, merged where the network ran (device geometry)

    @property
    def running(self) -> list[int]:
        return [r for r, row in enumerate(self.rows) if row.kind == "run"]


class Engine:
    """Runs the SSM network over videos: crops, chains and pastes back around a runner.

    runner: a :class:`ssmvos.runtime.Runner` (:meth:`for_model` builds one from a model and
    a :class:`~ssmvos.runtime.RuntimeSpec`); input_size: (height, width) of the network crop;
    margin: the crop margin (``--fix-margin``); max_batch: at most this many objects per
    forward pass.

    lookahead (default: on for CUDA): :meth:`propagate` hands frame t+1 to the network before
    it yields frame t, so that the caller's work on a result (merging, writing PNGs) overlaps
    an asynchronous network. The results are the same either way.

    device_geometry (default: on for CUDA when the runner allows it): crop boxes, crop +
    resize and paste-back run as tensor operations where the network runs
    (:class:`~.crops.DeviceGeometry`; the same numbers as OpenCV's), so that the host never
    waits for the device between frames. Off: the host does the geometry with OpenCV (the
    original's way, :class:`~.crops.HostGeometry`).

    OpenCV is set to one thread: on 512² crops its thread pool costs more than it saves
    (0.74 vs 1.55 ms per crop and resize on 2 cores, more with many cores).

    ``stage_seconds`` adds up wall-clock seconds per stage over the engine's life: 'frames'
    (waiting for decoded frames), 'prepare' (crop + resize; with device geometry only
    queueing them), 'network' (handing the batch to the runner: the whole forward on a CPU,
    launches on a GPU) and 'paste-back' (resize into the frame; on a GPU this includes
    waiting for the network and the copies to the host to finish).
    """

    def __init__(self, runner: Runner, input_size: tuple[int, int] = (512, 512), margin: float = 0.5,
                 max_batch: int = 16, lookahead: bool | None = None, device_geometry: bool | None = None):
        self.runner = runner
        on_cuda = runner.device.type == "cuda"
        if device_geometry is None:
            device_geometry = on_cuda and runner.device_geometry
        elif device_geometry and not runner.device_geometry:
            raise SSMVOSError(f"device geometry needs the torch or compile backend, not {runner.backend}")
        self.lookahead = on_cuda if lookahead is None else lookahead
        self.input_size = tuple(input_size)
        self.margin = margin
        self.max_batch = max_batch
        self.stage_seconds: Counter[str] = Counter()
        strategy = DeviceGeometry if device_geometry else HostGeometry
        self.geometry = strategy(runner, self.input_size, margin, self.stage_seconds)
        self._batched_refs: tuple[tuple[int, ...], ReferenceEncoding] | None = None
        cv2.setNumThreads(1)

    @classmethod
    def for_model(cls, model: SSM, input_size: tuple[int, int] = (512, 512), runtime: RuntimeSpec | None = None, *,
                  margin: float = 0.5, max_batch: int = 16, lookahead: bool | None = None,
                  device_geometry: bool | None = None, size_source: str = "input_size") -> "Engine":
        """An engine running ``model`` as ``runtime`` asks (default: eager torch, fp32, on
        'auto'), after checking that the model can run at ``input_size`` (``size_source``
        names what set it in the error)."""
        check_input_size(*input_size, model.config["keep_topk"], size_source)
        runner = build_runner(model, runtime or RuntimeSpec(), tuple(input_size))
        return cls(runner, input_size, margin, max_batch, lookahead, device_geometry)

    def on_runner(self, runner: Runner) -> "Engine":
        """A new engine with this one's settings (crop size, margin, batch, lookahead,
        geometry) on ``runner``, e.g. a member of a :class:`~ssmvos.runtime.shared.SharedRunner`."""
        return Engine(runner, self.input_size, self.margin, self.max_batch, self.lookahead, self.device_geometry)

    @property
    def device_geometry(self) -> bool:
        return self.geometry.on_device

    @property
    def device(self) -> torch.device:
        return self.runner.device

    @property
    def precision(self) -> str:
        return self.runner.precision

    @property
    def backend(self) -> str:
        return self.runner.backend

    # -- network steps -------------------------------------------------------------------
    def encode_reference(self, image: np.ndarray, mask: np.ndarray) -> ReferenceEncoding:
        """Encode an object's reference frame (H×W×3 uint8, H×W float mask), cropped around the mask."""
        return self.runner.encode_reference(*self.geometry.reference(image, mask))

    def _references(self, chunk: list[_Chain]) -> ReferenceEncoding:
        """The chunk's reference encodings as one batch (concatenated once per set of objects)."""
        if len(chunk) == 1:
            return chunk[0].reference
        key = tuple(id(c.reference) for c in chunk)
        if self._batched_refs is None or self._batched_refs[0] != key:
            self._batched_refs = (key, ReferenceEncoding.cat([c.reference for c in chunk]))
        return self._batched_refs[1]

    @torch.inference_mode()
    def _launch(self, frame: _Frame) -> _Launched:
        """Crop around each running object's previous mask and hand the batches to the runner
        (with device geometry, without waiting for the device)."""
        chains = [frame.rows[r].chain for r in frame.running]
        boxes, crops = self.geometry.crops(frame.image, [c.prev_mask for c in chains])
        probs: list[torch.Tensor] = []
        for start in range(0, len(chains), self.max_batch):
            chunk = slice(start, start + self.max_batch)
            images, masks = crops(chunk)
            t = time.perf_counter()
            logits = self.runner.segment(self._references(chains[chunk]), images, masks)
            probs.extend(torch.softmax(logits, dim=1).split(1))
            self.stage_seconds["network"] += time.perf_counter() - t
        return _Launched(chains, boxes, probs)

    def _not_finite(self, launched: _Launched, error: NotFinite) -> SSMVOSRuntimeError:
        object_id = launched.chains[error.row].object_id
        return SSMVOSRuntimeError(
            f"the network's output for object {object_id} is not finite (NaN or inf) in {self.precision}"
            + (": fp16 overflows on large activations; use bf16 or fp32" if self.precision == "fp16"
               else ": the weights may be broken"))

    @torch.inference_mode()
    def _paste(self, frame: _Frame) -> None:
        """Paste the frame's network results back (queued, with device geometry); the chains
        continue from the new masks."""
        launched = frame.launched
        if launched is None or frame.pasted is not None:
            return
        try:
            merge = None
            if frame.merge is not None and len(frame.running) == len(frame.rows):  # every row is on the device
                merge = ([row.object_id for row in frame.rows], frame.merge)
            frame.pasted = self.geometry.paste(launched.boxes, launched.probs, *frame.soft.shape[1:], merge=merge)
        except NotFinite as exc:
            raise self._not_finite(launched, exc) from None
        for chain, mask in zip(launched.chains, self.geometry.chain_masks(frame.pasted)):
            chain.prev_mask = mask

    def _complete(self, state: VideoState, frame: _Frame) -> None:
        """The frame's results on the host, in its soft masks and (if kept) the store."""
        if frame.launched is None:
            return
        self._paste(frame)
        try:
            soft, masks, frame.labels = self.geometry.fetch(frame.pasted)
        except NotFinite as exc:
            raise self._not_finite(frame.launched, exc) from None
        for r, levels, m in zip(frame.running, soft, masks):
            frame.soft[r] = levels
            frame.binary[r] = np.asarray(m) > 0
            chain = frame.rows[r].chain
            if state.results is not None and chain.object_id in state.objects:
                state.results.put(frame.index, chain.object_id, frame.soft[r], frame.binary[r], chain.provenance)
        frame.launched = frame.pasted = None

    # -- objects -------------------------------------------------------------------------
    def add_object(self, state: VideoState, frame_index: int, object_id: int, mask: np.ndarray,
                   frames: frozenset[int] | None = None) -> None:
        """Give object ``object_id``'s H×W mask (nonzero = object) at ``frame_index``.

        A new id starts there; a known id is a correction: from this frame on its chain
        restarts from this mask (a mask given again on the same frame replaces it).
        ``frames``: the frames where a new object is tracked (default: every frame).
        """
        object_id = check_object_id(object_id)
        frame_index = self.check_frame(state, frame_index)
        binary = check_mask(mask, state, object_id, frame_index)
        state.version += 1
        prompt = Prompt(binary, state.version)
        obj = state.objects.get(object_id)
        if obj is None:
            obj = state.objects[object_id] = ObjectState(object_id, {}, frame_index, frames)
        obj.prompts[frame_index] = prompt
        state.prompt_frames.add(frame_index)
        self._forget_stale_encodings(obj)
        if state.results is not None:
            ref = obj.reference_frame(frame_index, state.reference)
            state.results.put(frame_index, object_id, (binary * 255).astype(np.uint8), binary,
                              Provenance(frame_index, prompt.version, ref, obj.prompts[ref].version, False))

    @staticmethod
    def check_frame(state: VideoState, frame_index: int) -> int:
        """``frame_index`` as an int if the video has that frame, else SSMVOSValueError."""
        if isinstance(frame_index, bool) or not isinstance(frame_index, (int, np.integer)):
            raise SSMVOSValueError(f"a frame index is a whole number, not {frame_index!r}")
        n = state.num_frames
        if frame_index < 0 or (n is not None and frame_index >= n):
            raise SSMVOSValueError(f"frame index {frame_index} is outside the video's {n} frames" if n is not None
                                   else f"frame index {frame_index} is negative")
        return int(frame_index)

    @staticmethod
    def _forget_stale_encodings(obj: ObjectState) -> None:
        live = {(f, p.version) for f, p in obj.prompts.items()}
        obj.encodings = {k: v for k, v in obj.encodings.items() if k in live}

    def clear_mask(self, state: VideoState, frame_index: int, object_id: int) -> bool:
        """Take back object ``object_id``'s mask at ``frame_index`` (if any); an object left
        without masks is removed. Returns whether the object still exists."""
        obj = state.objects.get(object_id)
        if obj is None or obj.prompts.pop(frame_index, None) is None:
            return obj is not None
        if not obj.prompts:
            self.remove_object(state, object_id)
            return False
        if obj.first == frame_index:
            obj.first = obj.earliest
        self._forget_stale_encodings(obj)
        self._sync_prompt_frames(state)
        return True

    def remove_object(self, state: VideoState, object_id: int) -> None:
        """Forget object ``object_id``: its masks, chain and stored results."""
        if state.objects.pop(object_id, None) is None:
            raise SSMVOSRuntimeError(f"there is no object {object_id} to remove (objects: "
                                     f"{', '.join(map(str, state.objects)) or 'none'})")
        self._sync_prompt_frames(state)
        state.clicks = {k: v for k, v in state.clicks.items() if k[1] != object_id}
        if state.results is not None:
            state.results.remove_object(object_id)

    @staticmethod
    def _sync_prompt_frames(state: VideoState) -> None:
        remaining = {f for o in state.objects.values() for f in o.prompts}
        state.prompt_frames.intersection_update(remaining)  # in place: a live reader holds the set

    def reset(self, state: VideoState) -> None:
        """Forget every object and every stored result of ``state``."""
        state.objects.clear()
        state.prompt_frames.clear()
        state.clicks.clear()
        if state.results is not None:
            state.results.clear()

    # -- kept results --------------------------------------------------------------------
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

    def _is_kept(self, state: VideoState, obj: ObjectState, frame_index: int) -> bool:
        """Whether the object has a valid kept result at ``frame_index`` (made in either
        direction; no decompression)."""
        prov = None if state.results is None else state.results.provenance(frame_index, obj.object_id)
        return prov is not None and self._valid(state, obj, frame_index, prov, prov.reverse)

    def _kept(self, state: VideoState, obj: ObjectState, frame_index: int) -> StoredResult | None:
        """The object's valid kept result at ``frame_index``, or None."""
        return state.results.get(frame_index, obj.object_id) if self._is_kept(state, obj, frame_index) else None

    def result_at(self, state: VideoState, frame_index: int) -> FrameResult | None:
        """The valid kept results at ``frame_index`` (no network; None if there are none)."""
        found = [(obj.object_id, kept) for obj in state.objects.values()
                 if (kept := self._kept(state, obj, frame_index)) is not None]
        if not found:
            return None
        return FrameResult(frame_index, [i for i, _ in found], np.stack([k.soft for _, k in found]),
                           np.stack([k.chain for _, k in found]), None, state.frames.fps,
                           all_object_ids=list(state.objects), device=self.device)

    def kept_frames(self, state: VideoState) -> list[int]:
        """The frames with at least one valid kept result, ascending (given masks count)."""
        if state.results is None:
            return []
        return [f for f in state.results.frames()
                if any(self._is_kept(state, obj, f) for obj in state.objects.values())]

    # -- video loop ----------------------------------------------------------------------
    def propagate(self, state: VideoState, start: int | None = None, max_frames: int | None = None,
                  reverse: bool = False, prefetch: int = 4, *, before_first: bool = False,
                  merge: str | None = None) -> Iterator[FrameResult]:
        """Yield a FrameResult for every frame from ``start`` on, in increasing frame order
        (decreasing if ``reverse``): the start frame and at most ``max_frames`` more.

        ``start`` None: the first frame with a given mask (the last one if ``reverse``). An
        object runs from the first frame of the pass where it has a given mask, or from the
        start if its chain reaches the start (a valid kept result on the frame before it, or
        caught up from an earlier mask: see the module docstring); on other frames the pass
        shows its valid kept result, if any. ``before_first``: objects run only up to their
        first given mask (the backward half of direction "both"). Stored results that are
        still valid are read back instead of recomputed. Masks given or objects removed
        while iterating count from the next frame not yet begun.

        ``merge`` ('soft' or 'hard'): every result also carries ``labels``, the frame's objects
        merged into one H×W uint8 label map (:mod:`.merge`'s rules); with device geometry it is
        made where the network runs and copied to the host with the uint8 soft masks.
        """
        if not state.objects:
            raise SSMVOSRuntimeError("no object was added to the video: add a mask first")
        if merge is not None and merge not in MODES:
            raise SSMVOSValueError(f"merge must be one of {MODES} or None, not {merge!r}")
        if max_frames is not None and max_frames < 0:
            raise SSMVOSValueError(f"max_frame_num_to_track must be >= 0, not {max_frames}")
        live = state.frames.live
        if live and reverse:
            raise SSMVOSValueError("a live source can only be propagated forward")
        if start is None:
            start = max(state.prompt_frames) if reverse else min(state.prompt_frames)
        n = state.num_frames
        if start < 0 or (n is not None and start >= n):
            raise SSMVOSValueError(f"start frame {start} is outside the video's {n} frames" if n is not None
                                   else f"start frame {start} is negative")
        self._batched_refs = None
        chains = self._resume(state, start, reverse, before_first)
        if live:
            count = None if max_frames is None else max_frames + 1
            items = state.frames.stream(start, count, keep=state.prompt_frames.__contains__)
        else:
            self._catch_up(state, start, reverse, chains, before_first, prefetch)
            if reverse:
                stop = 0 if max_frames is None else max(start - max_frames, 0)
                indices = list(range(start, stop - 1, -1))
            else:
                indices = list(range(start, n if max_frames is None else min(start + max_frames + 1, n)))
            items = ((i, image, None) for i, image in state.frames.iterate(indices, prefetch))
        last = None
        for result in self._run(state, items, chains, reverse, before_first, lookahead=self.lookahead and not live,
                                merge=merge):
            last = result.frame_index
            yield result
        if live and max_frames is None:
            missing = sorted(f for f in state.prompt_frames if last is None or f > last)
            if missing:
                seen = f"after frame {last}" if last is not None else f"before frame {start}"
                raise SSMVOSRuntimeError(f"{state.frames.description} ended {seen}, before frame {missing[0]} where "
                                         "a mask was given")

    def _run(self, state: VideoState, items: Iterable, chains: dict[int, _Chain], reverse: bool,
             before_first: bool, lookahead: bool, only: set[int] | None = None,
             merge: str | None = None) -> Iterator[FrameResult]:
        """The frame loop of a pass over ``items`` ((index, image, arrival) in pass order);
        ``chains`` holds the running chains and is updated in place. ``only``: run just these
        objects and show no others (a catch-up)."""
        items = iter(items)
        previous: _Frame | None = None
        while True:
            t = time.perf_counter()
            item = next(items, None)
            self.stage_seconds["frames"] += time.perf_counter() - t
            if item is None:
                break
            current = self._begin(state, chains, reverse, before_first, only, *item)
            current.merge = merge
            if previous is not None:
                self._paste(previous)  # its previous masks are what ``current`` crops around
            for row in current.rows:  # chains continue from the masks read back
                if row.kind == "stored":
                    row.chain.prev_mask = self.geometry.prev_mask(row.stored.chain)
            if current.running:
                current.launched = self._launch(current)
            if previous is not None:
                self._complete(state, previous)
                yield self._result(state, previous, reverse)
                previous = None
            if lookahead:
                previous = current
            else:
                self._complete(state, current)
                yield self._result(state, current, reverse)
        if previous is not None:
            self._complete(state, previous)
            yield self._result(state, previous, reverse)

    def _resume(self, state: VideoState, start: int, reverse: bool, before_first: bool) -> dict[int, _Chain]:
        """Chains that continue into ``start`` from a stored, still valid result on the
        object's frame before it (in the pass's direction)."""
        chains: dict[int, _Chain] = {}
        if state.results is None:
            return chains
        for obj in state.objects.values():
            if start in obj.prompts or (before_first and start > obj.earliest):
                continue
            before = [f for f in (obj.frames or ([start + 1] if reverse else [start - 1]))
                      if (f > start if reverse else f < start) and f >= 0]
            if not before:
                continue
            frame = min(before) if reverse else max(before)
            prov = state.results.provenance(frame, obj.object_id)
            if self._valid(state, obj, frame, prov, reverse):
                stored = state.results.get(frame, obj.object_id)
                chains[obj.object_id] = _Chain(obj.object_id, self.geometry.prev_mask(stored.chain),
                                               Provenance(prov.anchor, prov.anchor_version, prov.ref,
                                                          prov.ref_version, reverse))
        return chains

    def _catch_up(self, state: VideoState, start: int, reverse: bool, chains: dict[int, _Chain],
                  before_first: bool, prefetch: int) -> None:
        """Run, unseen, the chains of objects that have a mask before ``start`` (after it,
        backward) but no chain into it, from that mask up to the frame before ``start``."""
        anchors: dict[int, int] = {}
        for obj in state.objects.values():
            if obj.object_id in chains or start in obj.prompts or not obj.tracked_at(start):
                continue
            if before_first:
                if start > obj.earliest:
                    continue
                masks = [obj.earliest]
            else:
                masks = list(obj.prompts)
            masks = [f for f in masks if (f > start if reverse else f < start)]
            if masks:
                anchors[obj.object_id] = min(masks) if reverse else max(masks)
        if not anchors:
            return
        if reverse:
            indices = list(range(max(anchors.values()), start, -1))
        else:
            indices = list(range(min(anchors.values()), start))
        items = ((i, image, None) for i, image in state.frames.iterate(indices, prefetch))
        for _ in self._run(state, items, chains, reverse, before_first, lookahead=False, only=set(anchors)):
            pass

    def _reference(self, state: VideoState, chain: _Chain, index: int, image: np.ndarray) -> ReferenceEncoding:
        """The chain's reference encoding: cached per object, else encoded (from this frame's
        image when it is the reference frame, else from the source)."""
        obj = state.objects[chain.object_id]
        key = (chain.provenance.ref, chain.provenance.ref_version)
        if key not in obj.encodings:
            if chain.provenance.ref == index:
                ref_image = image
            elif state.frames.live:
                raise SSMVOSRuntimeError(f"object {obj.object_id}'s reference (its mask at frame "
                                         f"{chain.provenance.ref}) is not a frame this live source has passed")
            else:
                ref_image = state.frames.get(chain.provenance.ref)
            obj.encodings[key] = self.encode_reference(ref_image, obj.prompts[chain.provenance.ref].mask)
        return obj.encodings[key]

    def _begin(self, state: VideoState, chains: dict[int, _Chain], reverse: bool, before_first: bool,
               only: set[int] | None, index: int, image: np.ndarray, arrival: float | None) -> _Frame:
        """The objects at frame ``index``, in the order they were added: given masks restart
        their chains (and get their reference encoded if it is this frame), valid stored
        results of the chains are read back, the rest of the chains run, and every other
        object shows its valid kept result, if any."""
        if image.shape[:2] != (state.height, state.width):
            raise SSMVOSRuntimeError(f"frame {state.frames.name(index)} is {image.shape[1]}×{image.shape[0]}, "
                                     f"the video's first frame is {state.width}×{state.height}")
        rows: list[_Row] = []
        for obj in list(state.objects.values()):
            oid = obj.object_id
            if (only is not None and oid not in only) or not obj.tracked_at(index):
                continue
            in_scope = not before_first or index <= obj.earliest
            prompt = obj.prompts.get(index)
            if prompt is not None:
                chain = None
                if in_scope:
                    ref = obj.reference_frame(index, state.reference)
                    chain = chains[oid] = _Chain(
                        oid, self.geometry.prev_mask(prompt.mask),
                        Provenance(index, prompt.version, ref, obj.prompts[ref].version, reverse))
                    if ref == index:  # the original encodes the reference on the object's first frame
                        chain.reference = self._reference(state, chain, index, image)
                rows.append(_Row(oid, "given", chain, mask=prompt.mask))
            elif in_scope and oid in chains:
                chain = chains[oid]
                prov = state.results.provenance(index, oid) if state.results is not None else None
                if prov is not None and prov.anchor != index and prov == chain.provenance \
                        and self._valid(state, obj, index, prov, reverse):
                    rows.append(_Row(oid, "stored", chain, stored=state.results.get(index, oid)))
                else:
                    if chain.reference is None:
                        chain.reference = self._reference(state, chain, index, image)
                    rows.append(_Row(oid, "run", chain))
            elif only is None and (kept := self._kept(state, obj, index)) is not None:
                rows.append(_Row(oid, "kept", stored=kept))
        soft = np.zeros((len(rows), state.height, state.width), dtype=np.uint8)
        binary = np.zeros((len(rows), state.height, state.width), dtype=bool)
        for r, row in enumerate(rows):
            if row.kind == "given":
                binary[r] = row.mask > 0
                soft[r] = binary[r] * np.uint8(255)
            elif row.stored is not None:
                soft[r], binary[r] = row.stored.soft, row.stored.chain
        return _Frame(index, image, rows, soft, binary, arrival)

    def _result(self, state: VideoState, frame: _Frame, reverse: bool) -> FrameResult:
        keep = [r for r, row in enumerate(frame.rows) if row.object_id in state.objects]  # removed meanwhile
        soft, binary = frame.soft, frame.binary
        if len(keep) != len(frame.rows):
            soft, binary = soft[keep], binary[keep]
        latency = None if frame.arrival is None else time.monotonic() - frame.arrival
        ids = [frame.rows[r].object_id for r in keep]
        labels = frame.labels if len(keep) == len(frame.rows) else None
        if frame.merge is not None and labels is None:  # merged on the host (host geometry, given or read-back rows)
            labels = (merge_frame(ids, list(soft), frame.merge) if ids
                      else np.zeros((state.height, state.width), np.uint8))
        return FrameResult(frame.index, ids, soft, binary, frame.image,
                           state.frames.fps, latency, list(state.objects), self.device, reverse,
                           computed=any(frame.rows[r].kind == "run" for r in keep), labels=labels)


def check_object_id(object_id: object) -> int:
    """An object id: a whole number >= 0 (SSMVOSValueError otherwise, at the call)."""
    if isinstance(object_id, bool) or not isinstance(object_id, (int, np.integer)):
        raise SSMVOSValueError(f"an object id is a whole number >= 0, not {object_id!r}")
    if object_id < 0:
        raise SSMVOSValueError(f"an object id is a whole number >= 0, not {object_id}")
    return int(object_id)


def check_mask(mask: object, state: VideoState, object_id: int, frame_index: int) -> np.ndarray:
    """A mask (numpy or torch; bool, integer or float) as float32 {0, 1} at the video's size,
    by SAM 2's rule: a pixel is the object where its value is >= 0.5 (True, 1, 255, a
    probability of 0.5 or more). A mask of another size is resized to the video's first
    (bilinear, :func:`~ssmvos.data.geometry.resize_mask`), as SAM 2 takes any size."""
    if isinstance(mask, torch.Tensor):
        mask = mask.detach().cpu().numpy()
    mask = np.asarray(mask)
    if mask.ndim == 3 and mask.shape[0] == 1:
        mask = mask[0]  # 1×H×W, as some SAM 2 code passes it
    what = f"the mask of object {object_id} at frame {frame_index}"
    if mask.ndim != 2:
        raise SSMVOSValueError(f"{what} is {'×'.join(map(str, mask.shape))}: give an H×W mask (nonzero = object), "
                               "not a colour image or a stack")
    if mask.dtype.kind not in "biuf":
        raise SSMVOSValueError(f"{what} has dtype {mask.dtype}: give booleans or numbers")
    if 0 in mask.shape:
        raise SSMVOSValueError(f"{what} is {mask.shape[1]}×{mask.shape[0]}: it has no pixels")
    values = mask.astype(np.float32)
    if mask.shape == (state.height, state.width):
        binary = (values >= 0.5).astype(np.float32)
    else:  # as SAM 2: the values resized (bilinear), then thresholded
        binary = resize_mask(values, state.height, state.width)
    if not binary.any():
        raise SSMVOSValueError(f"{what} is empty: SSM-VOS follows an object from the pixels of a mask")
    return binary
