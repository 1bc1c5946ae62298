"""A video API shaped like SAM 2's predictor.

    predictor = VideoPredictor.from_pretrained("davis17")      # or VideoPredictor(model)
    state = predictor.init_state("clip.mp4")                    # or a folder of frames
    predictor.add_new_mask(state, frame_idx=0, obj_id=1, mask=first_mask)
    for frame_idx, obj_ids, masks in predictor.propagate_in_video(state):
        ...   # masks: N×H×W float32 foreground probabilities, rows in obj_ids order
"""
from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np

from ..model import SSM
from .engine import Engine, VideoState
from .video import open_frames


class VideoPredictor:
    """Segments the objects given by masks through a whole video.

    device: 'auto' (CUDA, else MPS, else CPU), 'cpu', 'cuda' or 'mps'; precision: 'fp32'
    (faithful), 'tf32', 'bf16' or 'fp16'; backend: 'torch', 'compile' (torch.compile) or
    'onnxruntime' (the network exported to ONNX, fp32; ``onnx`` names an export folder, else
    the weights are exported once into the cache); compile=True is backend='compile';
    cuda_graphs: see ``ssmvos.runtime``.
    """

    def __init__(self, model: SSM, input_size: int | tuple[int, int] = 512, margin: float = 0.5,
                 device: str = "auto", precision: str = "fp32", max_batch: int = 16, compile: bool = False,
                 cuda_graphs: bool = False, backend: str = "torch", onnx: str | os.PathLike | None = None):
        size = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
        self.engine = Engine(model, size, margin, device, precision, max_batch, compile=compile,
                             cuda_graphs=cuda_graphs, backend=backend, onnx=onnx)

    @classmethod
    def from_pretrained(cls, weights: str | os.PathLike = "davis17", **kwargs) -> "VideoPredictor":
        """Build from a published model name (downloaded into the cache) or a checkpoint path."""
        from ..checkpoint import load_checkpoint
        from ..weights import resolve_weights

        return cls(load_checkpoint(resolve_weights(weights)), **kwargs)

    def init_state(self, video: str | os.PathLike | list) -> VideoState:
        """Open a video (mp4 etc., a folder of frames, or a list of frame paths)."""
        frames = open_frames(video)
        first = frames.get(0)
        return VideoState(frames, first.shape[0], first.shape[1])

    def add_new_mask(self, state: VideoState, frame_idx: int, obj_id: int, mask: np.ndarray) -> None:
        """Give object ``obj_id`` by its H×W mask (nonzero = object) at ``frame_idx``."""
        self.engine.add_object(state, frame_idx, obj_id, mask)

    def propagate_in_video(self, state: VideoState) -> Iterator[tuple[int, list[int], np.ndarray]]:
        """Yield ``(frame_index, object_ids, masks)`` for every frame from the first mask on."""
        for result in self.engine.propagate(state):
            yield result.frame_index, result.object_ids, result.probs

    def reset_state(self, state: VideoState) -> None:
        """Forget every object of ``state``."""
        state.objects.clear()
