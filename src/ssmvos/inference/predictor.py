"""A video API shaped like SAM 2's predictor.

    predictor = VideoPredictor.from_pretrained("davis17")      # or VideoPredictor(model)
    state = predictor.init_state("clip.mp4")                    # folder, paths, array, camera, URL, "-"
    predictor.add_new_mask(state, frame_idx=0, obj_id=1, mask=first_mask)
    for frame_idx, obj_ids, masks in predictor.propagate_in_video(state):
        ...   # masks: N×H×W float32 foreground probabilities, rows in obj_ids order
    predictor.add_new_mask(state, frame_idx=40, obj_id=1, mask=fixed)   # a correction
    for frame_idx, obj_ids, masks in predictor.propagate_in_video(state):
        ...   # frames 0..39 are read back from the kept results; the network runs from 40 on

What it yields is a :class:`~.engine.FrameResult`: it unpacks as the triple above and also
carries the frame's image, the soft masks (uint8), the source's fps and, for live sources,
the latency.
"""
from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np

from ..errors import SSMVOSError
from ..model import SSM
from .engine import REFERENCES, Engine, FrameResult, VideoState
from .frames import open_frames
from .results import ResultStore


class VideoPredictor:
    """Segments the objects given by masks through a whole video, steerably.

    device: 'auto' (CUDA, else MPS, else CPU), 'cpu', 'cuda' or 'mps'; precision: 'fp32'
    (faithful), 'tf32', 'bf16' or 'fp16'; backend: 'torch', 'compile' (torch.compile) or
    'onnxruntime' (the network exported to ONNX, fp32; ``onnx`` names an export folder, else
    the weights are exported once into the cache); compile=True is backend='compile';
    cuda_graphs: see ``ssmvos.runtime``.
    """

    def __init__(self, model: SSM, input_size: int | tuple[int, int] = 512, margin: float = 0.5,
                 device: str = "auto", precision: str = "fp32", max_batch: int = 16, compile: bool = False,
                 cuda_graphs: bool = False, lookahead: bool | None = None, backend: str = "torch",
                 onnx: str | os.PathLike | None = None):
        size = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
        self.engine = Engine(model, size, margin, device, precision, max_batch, compile=compile,
                             cuda_graphs=cuda_graphs, lookahead=lookahead, backend=backend, onnx=onnx)

    @classmethod
    def from_pretrained(cls, weights: str | os.PathLike = "davis17", **kwargs) -> "VideoPredictor":
        """Build from a published model name (downloaded into the cache) or a checkpoint path."""
        from ..checkpoint import load_checkpoint
        from ..weights import resolve_weights

        return cls(load_checkpoint(resolve_weights(weights)), **kwargs)

    def init_state(self, video: object, reference: str = "first", keep_results: bool | None = None,
                   memory_limit: int = 256 << 20, queue_size: int = 4, drop: bool = True) -> VideoState:
        """Open a video: a file (mp4 etc.), a folder of frames, a list of frame paths, a
        T×H×W×3 uint8 array, or a live source (camera index, URL, ``"-"`` for stdin, an
        iterable of frames; see ``inference.frames`` for ``queue_size`` and the ``drop`` policy).

        reference: 'first' (default; every frame of an object is matched against its first
        given mask, as the original) or 'latest' (after a correction, against the latest given
        mask the chain passed). keep_results (default: True except for live sources): keep
        every frame's results, compressed (spilled to a temporary folder past
        ``memory_limit`` bytes), so that propagating again recomputes only what a new mask
        changed and :meth:`frame_result` reads them back.
        """
        if reference not in REFERENCES:
            raise SSMVOSError(f"reference must be one of {', '.join(REFERENCES)}, not {reference!r}")
        frames = open_frames(video, queue_size=queue_size, drop=drop)
        height, width = frames.frame_size()
        if keep_results is None:
            keep_results = not frames.live
        results = ResultStore(height, width, memory_limit) if keep_results else None
        return VideoState(frames, height, width, reference=reference, results=results)

    def add_new_mask(self, state: VideoState, frame_idx: int, obj_id: int, mask: np.ndarray) -> None:
        """Give object ``obj_id`` by its H×W mask (nonzero = object) at ``frame_idx``: a new id
        starts there, a known id is corrected there (its chain restarts from this mask)."""
        self.engine.add_object(state, frame_idx, obj_id, mask)

    def propagate_in_video(self, state: VideoState, start_frame_idx: int | None = None,
                           max_frame_num_to_track: int | None = None, reverse: bool = False) -> Iterator[FrameResult]:
        """Yield a :class:`FrameResult` (unpacks as ``(frame_index, object_ids, masks)``) for
        the start frame and up to ``max_frame_num_to_track`` frames after it (default: to the
        end of the video), forward, or backward with ``reverse``.

        start_frame_idx None: the first frame with a mask (forward) or the last (backward).
        Backward runs the same chain over decreasing frame indices. Results kept from earlier
        calls that no mask given since has changed are read back instead of recomputed.
        """
        return self.engine.propagate(state, start_frame_idx, max_frame_num_to_track, reverse)

    def frame_result(self, state: VideoState, frame_idx: int) -> FrameResult | None:
        """The kept results at ``frame_idx`` (soft masks; ``image`` None), or None if there
        are none. Runs no network."""
        return self.engine.result_at(state, frame_idx)

    def remove_object(self, state: VideoState, obj_id: int) -> None:
        """Forget object ``obj_id``: later propagations and kept results no longer hold it."""
        self.engine.remove_object(state, obj_id)

    def reset_state(self, state: VideoState) -> None:
        """Forget every object of ``state`` and every kept result (the video stays open)."""
        self.engine.reset(state)

    @staticmethod
    def close_state(state: VideoState) -> None:
        """Release the video (decoder, live reader) and the kept results' spill folder."""
        state.frames.close()
        if state.results is not None:
            state.results.close()
