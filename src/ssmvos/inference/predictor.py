"""The video predictor: SAM 2's video-predictor contract on the SSM-VOS network.

A SAM 2 client that prompts with masks runs unchanged but for its import and the line that
builds the predictor::

    predictor = VideoPredictor.from_pretrained("davis17", device="auto")   # or ssmvos.build_predictor(...)
    inference_state = predictor.init_state(video_path="clip.mp4")          # or a folder of frames, ...
    _, out_obj_ids, out_mask_logits = predictor.add_new_mask(inference_state, frame_idx=0, obj_id=1, mask=mask)
    for out_frame_idx, out_obj_ids, out_mask_logits in predictor.propagate_in_video(inference_state):
        masks = {oid: (out_mask_logits[i] > 0.0).cpu().numpy() for i, oid in enumerate(out_obj_ids)}

SAM 2's names, keywords, return values and types (see docs/design.md, "SAM 2
compatibility"): ``video_res_masks`` are float32 logits N×1×H×W on :attr:`device` (> 0
exactly where the object is), rows in the order objects were added, every object on every
frame (-1024 where an object has no result). What differs: SSM-VOS tracks causally from the
masks it was given (an object given at frame k appears from k on in a forward pass: run
``reverse=True`` from k, or :meth:`propagate` with ``direction="both"``, for the frames
before), and point or box prompts become a mask through GrabCut, not a learned model.

ssmvos's own names stay: ``init_state(video=...)``, the ``state=`` keyword, a
:class:`~.state.FrameResult` per frame (``result.soft``, ``.probs``, ``.image``, ``.fps``),
:meth:`frame_result`, :meth:`kept_frames`, :meth:`propagate` by direction.
"""
from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

from ..errors import SSMVOSError, SSMVOSRuntimeError, SSMVOSValueError
from ..model import SSM
from ..pretrained import DEFAULT_INPUT_SIZE, input_size_for
from ..runtime import RuntimeSpec
from .directions import plan, planned_frames
from .engine import Engine, check_object_id
from ..io.frames.open import open_frames
from .prompts import grabcut_mask
from .results import ResultStore
from .state import REFERENCES, FrameResult, SAM2Frame, VideoState

__all__ = ["VideoPredictor", "FrameResult", "VideoState"]


def _sam2(fn: Callable) -> Callable:
    """SAM 2's calling convention on a method whose first argument is the state: the state
    may come as ``inference_state=`` (SAM 2) or ``state=`` (ssmvos), and user errors are
    ``SSMVOSError``s that are also ValueError or RuntimeError (as SAM 2 raises them)."""

    @functools.wraps(fn)
    def wrapper(self: "VideoPredictor", *args: Any, **kwargs: Any) -> Any:
        if "state" in kwargs:
            if args or "inference_state" in kwargs:
                raise TypeError(f"{fn.__name__}() got the state twice")
            kwargs["inference_state"] = kwargs.pop("state")
        try:
            return fn(self, *args, **kwargs)
        except (SSMVOSValueError, SSMVOSRuntimeError):
            raise
        except SSMVOSError as exc:
            raise SSMVOSRuntimeError(str(exc)) from None

    return wrapper


def _sam2_iter(fn: Callable) -> Callable:
    """:func:`_sam2` for a generator method (errors raised while iterating are converted too)."""

    @_sam2
    @functools.wraps(fn)
    def start(self: "VideoPredictor", *args: Any, **kwargs: Any) -> Iterator:
        return _converted(fn(self, *args, **kwargs))

    return start


def _converted(results: Iterator) -> Iterator:
    try:
        yield from results
    except (SSMVOSValueError, SSMVOSRuntimeError):
        raise
    except SSMVOSError as exc:
        raise SSMVOSRuntimeError(str(exc)) from None


class VideoPredictor:
    """Segments the objects given by masks through a whole video, steerably.

    Build it with :meth:`from_pretrained` (a published name or a checkpoint path) or from a
    network: ``VideoPredictor(model, input_size=512, ...)``. device: 'auto' (CUDA, else MPS,
    else CPU), 'cpu', 'cuda' or 'mps'; precision: 'fp32' (faithful), 'tf32', 'bf16' or
    'fp16'; backend: 'torch', 'compile' (torch.compile) or 'onnxruntime' (the network
    exported to ONNX, fp32; ``onnx`` names an export folder, else the weights are exported
    once into the cache); compile=True is backend='compile'; cuda_graphs: see
    ``ssmvos.runtime``. ``runtime`` (a :class:`~ssmvos.runtime.RuntimeSpec`) gives those
    choices at once instead; ``engine`` wraps an engine already built.
    """

    def __init__(self, model: SSM | None = None, input_size: int | tuple[int, int] = DEFAULT_INPUT_SIZE,
                 margin: float = 0.5, device: str = "auto", precision: str = "fp32", max_batch: int = 16,
                 compile: bool = False, cuda_graphs: bool = False, lookahead: bool | None = None,
                 backend: str = "torch", onnx: str | os.PathLike | None = None, *,
                 runtime: RuntimeSpec | None = None, engine: Engine | None = None, size_source: str = "input_size"):
        if engine is None:
            if model is None:
                raise SSMVOSValueError("VideoPredictor needs a network (or use VideoPredictor.from_pretrained)")
            spec = runtime or RuntimeSpec.of(backend, compile, device=device, precision=precision,
                                              cuda_graphs=cuda_graphs, onnx=onnx)
            engine = Engine.for_model(model, input_size_for(input_size), spec, margin=margin, max_batch=max_batch,
                                      lookahead=lookahead, size_source=size_source)
        self.engine = engine

    @classmethod
    def from_pretrained(cls, weights: str | os.PathLike = "davis17", input_size: int | tuple[int, int] | None = None,
                        **options: Any) -> "VideoPredictor":
        """Build from a published model name (downloaded once into the cache) or a checkpoint
        path; ``input_size`` defaults to the model's (512); ``options`` as the constructor's."""
        from ..weights import load_model

        size = input_size_for(input_size, weights)
        model = load_model(weights, input_size=size, size_source=options.get("size_source", "input_size"))
        return cls(model, size, **options)

    @property
    def device(self) -> torch.device:
        """Where the network runs and where ``video_res_masks`` are made."""
        return self.engine.device

    @property
    def precision(self) -> str:
        return self.engine.precision

    @property
    def backend(self) -> str:
        return self.engine.backend

    # -- the video -------------------------------------------------------------------------
    def init_state(self, video_path: object = None, offload_video_to_cpu: bool = False,
                   offload_state_to_cpu: bool = False, async_loading_frames: bool = False, *, video: object = None,
                   reference: str = "first", keep_results: bool | None = None, memory_limit: int = 256 << 20,
                   queue_size: int = 4, drop: bool = True) -> VideoState:
        """Open a video: a file (mp4 etc.), a folder of frames (in natural order: 2.jpg before
        10.jpg), a list of frame paths, a T×H×W×3 uint8 array, or a live source (camera index,
        URL, ``"-"`` for stdin, an iterable of frames; ``queue_size`` and the ``drop`` policy
        are ``ssmvos.io.frames``'). ``video`` is the same as ``video_path``.

        SAM 2's offload_video_to_cpu, offload_state_to_cpu and async_loading_frames are
        accepted and change nothing: frames are always decoded when needed (never all held in
        memory) and kept results are compressed on the host.

        reference: 'first' (default; every frame of an object is matched against its first
        given mask, as the original) or 'latest' (after a correction, against the latest given
        mask the chain passed). keep_results (default: True except for live sources): keep
        every frame's results, compressed (spilled to a temporary folder past
        ``memory_limit`` bytes), so that propagating again recomputes only what a new mask
        changed and :meth:`frame_result` reads them back.
        """
        if video is not None:
            if video_path is not None:
                raise TypeError("init_state() got both video_path and video")
            video_path = video
        if video_path is None:
            raise SSMVOSValueError("init_state needs a video (video_path=...)")
        if reference not in REFERENCES:
            raise SSMVOSValueError(f"reference must be one of {', '.join(REFERENCES)}, not {reference!r}")
        try:
            frames = open_frames(video_path, queue_size=queue_size, drop=drop)
        except (SSMVOSValueError, SSMVOSRuntimeError):
            raise
        except SSMVOSError as exc:
            raise SSMVOSRuntimeError(str(exc)) from None
        height, width = frames.frame_size()
        if keep_results is None:
            keep_results = not frames.live
        results = ResultStore(height, width, memory_limit) if keep_results else None
        return VideoState(frames, height, width, reference=reference, results=results)

    @staticmethod
    def close_state(state: VideoState) -> None:
        """Release the video (decoder, live reader) and the kept results' spill folder."""
        state.frames.close()
        if state.results is not None:
            state.results.close()

    # -- prompts ---------------------------------------------------------------------------
    @_sam2
    def add_new_mask(self, inference_state: VideoState, frame_idx: int, obj_id: int,
                     mask: np.ndarray | torch.Tensor, need_output: bool = True
                     ) -> tuple[int, list[int], torch.Tensor] | None:
        """Give object ``obj_id`` by its mask (numpy or torch, H×W or 1×H×W; any size is resized
        to the video's, and the object is where a value is >= 0.5, as in SAM 2) at
        ``frame_idx``: a new id starts there, a known id is corrected there (its chain
        restarts from this mask). Returns SAM 2's ``(frame_idx, obj_ids, video_res_masks)``
        for that frame (None without ``need_output``, an ssmvos option that saves making
        the masks)."""
        state = inference_state
        self.engine.add_object(state, frame_idx, obj_id, mask)
        state.clicks.pop((int(frame_idx), int(obj_id)), None)
        return self._frame_output(state, int(frame_idx)) if need_output else None

    @_sam2
    def add_new_points_or_box(self, inference_state: VideoState, frame_idx: int, obj_id: int,
                              points: Any = None, labels: Any = None, clear_old_points: bool = True,
                              normalize_coords: bool = True, box: Any = None) -> tuple[int, list[int], torch.Tensor]:
        """SAM 2's click prompt: points N×2 (x, y) with labels N (1 = object, 0 = background)
        and/or a box (x0, y0, x1, y1), in pixels (``normalize_coords=False``: in [0, 1] of the
        frame's width and height). They become the object's mask at ``frame_idx`` through
        GrabCut (:mod:`.prompts`; no learned model), given as by :meth:`add_new_mask`.
        ``clear_old_points=False`` adds the points to those given before for this object and
        frame. Returns what :meth:`add_new_mask` returns."""
        state = inference_state
        frame_idx = self.engine.check_frame(state, frame_idx)
        obj_id = check_object_id(obj_id)
        if points is None and box is None:
            raise SSMVOSValueError("at least one of points or box must be given")
        pts = _as_array(points, (-1, 2), "points")
        labs = _as_array(labels, (-1,), "labels")
        if len(pts) != len(labs):
            raise SSMVOSValueError(f"{len(pts)} points need {len(pts)} labels, not {len(labs)}")
        b = None if box is None else _as_array(box, (4,), "box")
        if not normalize_coords:
            scale = np.array([state.width, state.height], dtype=np.float64)
            pts = pts * scale
            b = None if b is None else b * np.tile(scale, 2)
        key = (frame_idx, obj_id)
        if not clear_old_points:
            if b is not None:
                raise SSMVOSValueError("a box cannot be added to earlier points: give it with clear_old_points=True")
            old_pts, old_labs, b = state.clicks.get(key, (np.zeros((0, 2)), np.zeros(0), None))
            pts, labs = np.concatenate([old_pts, pts]), np.concatenate([old_labs, labs])
        mask = grabcut_mask(state.frames.get(frame_idx), b, pts, labs)
        if not mask.any():
            raise SSMVOSValueError(f"GrabCut found no object from these clicks on frame {frame_idx}: add positive "
                                   "points or a larger box")
        self.engine.add_object(state, frame_idx, obj_id, mask)
        state.clicks[key] = (pts, labs, b)
        return self._frame_output(state, frame_idx)

    @_sam2
    def clear_all_prompts_in_frame(self, inference_state: VideoState, frame_idx: int, obj_id: int,
                                   need_output: bool = True) -> tuple[int, list[int], torch.Tensor] | None:
        """Take back object ``obj_id``'s mask (and clicks) at ``frame_idx``; an object left
        without any mask is removed. Returns SAM 2's output for that frame (None without
        ``need_output``)."""
        state = inference_state
        frame_idx = self.engine.check_frame(state, frame_idx)
        state.clicks.pop((frame_idx, obj_id), None)
        self.engine.clear_mask(state, frame_idx, obj_id)
        return self._frame_output(state, frame_idx) if need_output else None

    @_sam2
    def remove_object(self, inference_state: VideoState, obj_id: int, strict: bool = False,
                      need_output: bool = True) -> tuple[list[int], list[tuple[int, torch.Tensor]]]:
        """Forget object ``obj_id``: later propagations and kept results no longer hold it.
        An id that does not exist is an error with ``strict``, else nothing happens. Returns
        SAM 2's ``(obj_ids, updated_frames)``: the remaining ids, and for each frame where
        the object had a mask, ``(frame_idx, video_res_masks)`` of the remaining objects."""
        state = inference_state
        obj = state.objects.get(obj_id)
        if obj is None:
            if strict:
                raise SSMVOSRuntimeError(f"there is no object {obj_id} to remove (objects: "
                                         f"{', '.join(map(str, state.objects)) or 'none'})")
            return list(state.objects), []
        frames = sorted(obj.prompts)
        self.engine.remove_object(state, obj_id)
        updated = [(f, self._frame_output(state, f)[2]) for f in frames] if need_output and state.objects else []
        return list(state.objects), updated

    @_sam2
    def reset_state(self, inference_state: VideoState) -> None:
        """Forget every object of the state and every kept result (the video stays open)."""
        self.engine.reset(inference_state)

    # -- propagation -----------------------------------------------------------------------
    @_sam2_iter
    def propagate_in_video(self, inference_state: VideoState, start_frame_idx: int | None = None,
                           max_frame_num_to_track: int | None = None, reverse: bool = False) -> Iterator[SAM2Frame]:
        """Yield SAM 2's ``(frame_idx, obj_ids, video_res_masks)`` (a :class:`SAM2Frame`: a
        tuple that also has the :class:`FrameResult`'s attributes) for the start frame and up
        to ``max_frame_num_to_track`` frames after it (default: to the end of the video),
        forward, or backward with ``reverse``.

        start_frame_idx None: the earliest frame with a mask (as SAM 2, in both directions).
        An object given before the start is tracked from its mask up to the start first;
        results kept from earlier calls that no mask given since has changed are read back
        instead of recomputed, and every object's valid kept result is shown on frames this
        pass does not compute it.
        """
        state = inference_state
        if start_frame_idx is None and state.prompt_frames:
            start_frame_idx = min(state.prompt_frames)
        results = self.engine.propagate(state, start_frame_idx, max_frame_num_to_track, reverse)
        try:
            for result in results:
                yield SAM2Frame(result)
        finally:
            results.close()

    @_sam2_iter
    def propagate(self, inference_state: VideoState, direction: str = "both", *,
                  merge: str | None = None) -> Iterator[FrameResult]:
        """Every frame once, for ``direction`` (``inference.directions``): 'forward' from the
        first mask, 'backward' from the last, 'both' (each object backward and forward from
        its first mask; frames before the earliest first mask come first, in decreasing
        order). What ``ssmvos segment`` and the app run. ``merge`` ('soft' or 'hard'): each
        result also carries its merged label map (``FrameResult.labels``, see
        :meth:`Engine.propagate <ssmvos.inference.engine.Engine.propagate>`)."""
        state = inference_state
        firsts = [o.earliest for o in state.objects.values()]
        passes = plan(direction, firsts, state.prompt_frames)
        if state.results is None and len(passes) > 1 and len(set(firsts)) > 1:
            # the backward pass computes objects that start late on frames the forward pass shows
            state.results = ResultStore(state.height, state.width)
        for p in passes:
            for result in self.engine.propagate(state, p.start, reverse=p.reverse, before_first=p.before_first,
                                                merge=merge):
                if p.yields(result.frame_index):
                    yield result

    @_sam2
    def frames_to_propagate(self, inference_state: VideoState, direction: str = "both") -> int:
        """How many frames :meth:`propagate` yields for ``direction`` (not for live sources)."""
        state = inference_state
        passes = plan(direction, [o.earliest for o in state.objects.values()], state.prompt_frames)
        return planned_frames(passes, state.num_frames)

    # -- kept results ----------------------------------------------------------------------
    @_sam2
    def frame_result(self, inference_state: VideoState, frame_idx: int) -> FrameResult | None:
        """The valid kept results at ``frame_idx`` (``image`` None), or None if there are
        none. Runs no network."""
        return self.engine.result_at(inference_state, self.engine.check_frame(inference_state, frame_idx))

    @_sam2
    def kept_frames(self, inference_state: VideoState) -> list[int]:
        """The frames with kept results (given masks count), ascending."""
        return self.engine.kept_frames(inference_state)

    def _frame_output(self, state: VideoState, frame_idx: int) -> tuple[int, list[int], torch.Tensor]:
        """SAM 2's ``(frame_idx, obj_ids, video_res_masks)`` for a frame after a prompt changed."""
        view = self.engine.result_at(state, frame_idx) if state.results is not None else None
        if view is None:  # no kept results: the masks given on this frame
            given = [(oid, obj.prompts[frame_idx].mask > 0) for oid, obj in state.objects.items()
                     if frame_idx in obj.prompts]
            shape = (len(given), state.height, state.width)
            binary = np.stack([m for _, m in given]) if given else np.zeros(shape, bool)
            view = FrameResult(frame_idx, [oid for oid, _ in given], binary.astype(np.uint8) * np.uint8(255), binary,
                               all_object_ids=list(state.objects), device=self.device)
        return frame_idx, view.obj_ids, view.video_res_masks


def _as_array(values: Any, shape: tuple[int, ...], what: str) -> np.ndarray:
    if values is None:
        return np.zeros((0, *shape[1:])) if shape[0] == -1 else None
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    try:
        array = np.asarray(values, dtype=np.float64)
        return array.reshape(shape)
    except (TypeError, ValueError):
        raise SSMVOSValueError(f"{what} must be numbers of shape {'×'.join('N' if s == -1 else str(s) for s in shape)}, "
                               f"not {values!r}") from None
