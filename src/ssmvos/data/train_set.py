"""Training samples: (reference, current, previous mask) triples with the original's augmentations.

Reproducibility: every random choice of item ``index`` (reference frame, flips, angles,
margins, heat-map jitter) comes from ``np.random.default_rng([seed, epoch, index])`` and from
nothing else. A sample therefore depends only on (seed, epoch, index): not on the number of
DataLoader workers, the order they run in, or where a run was resumed. Call
:meth:`TrainSet.set_epoch` at the start of every epoch (before iterating) so each epoch draws
fresh augmentations; with persistent workers, recreate the DataLoader's iterator after it.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import SSMVOSError
from ..io.frames.files import read_frame
from .augment import apply_params, draw_params, heatmap
from .io import object_mask, read_label_map
from .splits import FrameEntry, as_entries, check_track_order
from .tensors import image_to_tensor, mask_to_tensor


def worker_init_fn(worker_id: int) -> None:
    """DataLoader worker setup: single-threaded OpenCV (the workers are the parallelism).

    No seeding is needed: samples draw only from their own per-item generator.
    """
    cv2.setNumThreads(0)


@contextlib.contextmanager
def _naming(where: str, path: str) -> Iterator[None]:
    """Errors reading ``path`` as one SSMVOSError that starts with ``where`` (the video and
    frame); a decoder's own exception (cv2.error, OSError, ...) also names the file."""
    try:
        yield
    except SSMVOSError as exc:
        raise SSMVOSError(f"{where}: {exc}") from None
    except (OSError, ValueError, cv2.error) as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise SSMVOSError(f"{where}: cannot decode {path} ({reason[:200]})") from None


class TrainSet(Dataset):
    """The original TrainDataset: item ``index`` is frame t of one object track.

    Returns ``(ref_img, ref_mask, cur_img, cur_mask, prev_mask)``: images 3×H×W float32
    (ImageNet-normalised), ``ref_mask``/``cur_mask`` 1×H×W float32 in {0, 1}, ``prev_mask``
    1×H×W float32 in [0, 1] (a Gaussian heat map with probability ``blur_rate``, else the
    augmented GT mask of frame t−1).

    * reference = a uniformly random frame of the same track (possibly t itself), cropped
      around its own mask;
    * current = frame t, cropped around the previous mask (GT of t−1; of t at t = 0);
    * each of the two gets its own flip (p ``flip_rate``), rotation (±``rotation``°),
      four crop margins (uniform in [``min_margin``, ``max_margin``]) and resize to
      ``height``×``width``.

    All randomness: ``np.random.default_rng([seed, epoch, index])`` (see the module doc).
    """

    def __init__(self, entries: list[FrameEntry], height: int = 512, width: int = 512, min_margin: float = 0.0,
                 max_margin: float = 1.0, flip_rate: float = 0.5, rotation: float = 45.0, blur_rate: float = 1.0,
                 seed: int = 123) -> None:
        entries = as_entries(entries, "training split")
        check_track_order(entries, "training split")
        if height <= 0 or width <= 0:
            raise SSMVOSError(f"training input size must be positive, got {height}x{width}")
        if min_margin > max_margin:
            raise SSMVOSError(f"min margin {min_margin} exceeds max margin {max_margin}")
        self.entries = entries
        self.height, self.width = int(height), int(width)
        self.min_margin, self.max_margin = float(min_margin), float(max_margin)
        self.flip_rate, self.rotation, self.blur_rate = float(flip_rate), float(rotation), float(blur_rate)
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose augmentations the next items draw."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.entries)

    def rng(self, index: int) -> np.random.Generator:
        """The generator of item ``index`` in the current epoch."""
        return np.random.default_rng([self.seed, self.epoch, int(index)])

    def _mask(self, index: int, image_shape: tuple[int, ...] | None) -> np.ndarray:
        e = self.entries[index]
        mask = object_mask(read_label_map(e.mask_path, "annotation"), e.object_index)
        if image_shape is not None and mask.shape != tuple(image_shape[:2]):
            raise SSMVOSError(f"mask {e.mask_path} is {mask.shape[1]}x{mask.shape[0]} but image "
                              f"{e.image_path} is {image_shape[1]}x{image_shape[0]}")
        return mask

    def _image_mask(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The entry's H×W×3 uint8 frame and H×W uint8 object mask; a file that cannot be read
        is an SSMVOSError naming the file and the video (the decoder's own error otherwise
        reaches the user as a DataLoader worker's traceback line without either)."""
        e = self.entries[index]
        where = f"video {e.video_name!r} frame {e.frame_index}"
        with _naming(where, e.image_path):
            image = read_frame(e.image_path)
        with _naming(where, e.mask_path):
            return image, self._mask(index, image.shape)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        index = int(index) % len(self)
        rng = self.rng(index)
        e = self.entries[index]
        start = index - e.frame_index
        ref_index = int(rng.integers(start, start + e.num_frames))
        prev_index = index if e.frame_index == 0 else index - 1

        cur_img, cur_mask = self._image_mask(index)
        ref_img, ref_mask = (cur_img, cur_mask) if ref_index == index else self._image_mask(ref_index)
        prev_mask = cur_mask if prev_index == index else self._mask(prev_index, cur_img.shape)

        draw = (self.flip_rate, self.rotation, self.min_margin, self.max_margin)
        ref = apply_params(ref_img, ref_mask, None, draw_params(rng, *draw), self.height, self.width)
        cur = apply_params(cur_img, cur_mask, prev_mask, draw_params(rng, *draw), self.height, self.width)
        prev = cur.bounding_mask
        if rng.random() < self.blur_rate:
            prev = heatmap(rng, prev)
        return (image_to_tensor(ref.image), mask_to_tensor(ref.mask), image_to_tensor(cur.image),
                mask_to_tensor(cur.mask), mask_to_tensor(prev))
