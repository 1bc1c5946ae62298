"""Where the crop geometry runs: two strategies for the engine.

Both restate :mod:`ssmvos.data.geometry` (the one owner of the arithmetic) for a batch of
objects of one frame: crop each around its previous mask, resize to the network size, and
paste the network's probabilities back into the frame, setting each object's next previous
mask to argmax(background, foreground) (ties to background).

* :class:`HostGeometry`: OpenCV on the host, the original's way. Previous masks are H×W
  float32 arrays.
* :class:`DeviceGeometry`: tensor operations where the network runs (boxes, crop + resize
  and paste-back; the same numbers as OpenCV's, see ``data.geometry``); previous masks stay
  there as bool tensors and only the results travel to the host, asynchronously. With the
  runner's CUDA graphs the crops are one captured graph.

A strategy's :meth:`crops` gives the batch's crops, :meth:`paste` queues the paste-back and
:meth:`fetch` returns it on the host: soft masks as uint8 levels (quantised where the paste
ran, :mod:`.merge`), and with device geometry optionally the frame's merged label map, so
that a frame's results cross to the host as uint8 arrays only.
"""
from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ..data import geometry
from ..runtime import HostCopy, Runner
from .merge import merge_frame_tensor, quantize, quantize_tensor

#: crops of a slice of the batch: (images N×h×w×3 uint8, masks N×h×w)
Crops = Callable[[slice], tuple[torch.Tensor, torch.Tensor]]


@dataclass
class Pasted:
    """Pasted-back results: host arrays, or (device geometry) copies to the host in flight."""

    probs: np.ndarray | None = None  # N×H×W float32 foreground probabilities
    chain: list[np.ndarray] | None = None  # per object: H×W {0, 1}, the next previous mask
    copy: HostCopy | None = None  # device geometry: [soft N×H×W uint8, finite, chain masks(, labels H×W uint8)]


class NotFinite(Exception):
    """The network's output for row ``row`` of a batch is not finite."""

    def __init__(self, row: int):
        super().__init__(row)
        self.row = row


class HostGeometry:
    """Crops, resizing and paste-back with OpenCV on the host."""

    on_device = False

    def __init__(self, runner: Runner, input_size: tuple[int, int], margin: float, seconds: Counter):
        self.runner, self.input_size, self.margin, self.seconds = runner, input_size, margin, seconds

    def prev_mask(self, mask: np.ndarray | torch.Tensor) -> np.ndarray:
        """A previous mask in this strategy's form: H×W float32 {0, 1} on the host."""
        return np.asarray(mask, dtype=np.float32)

    def crop(self, image: np.ndarray, masks: list[np.ndarray],
             boxes: list[geometry.CropBox]) -> tuple[torch.Tensor, torch.Tensor]:
        """Crops of one frame around each box, resized: (N×h×w×3 uint8, N×h×w uint8 masks)."""
        t = time.perf_counter()
        h, w = self.input_size
        pairs = [geometry.crop_resize(image, m, b, h, w) for m, b in zip(masks, boxes)]
        images = torch.from_numpy(np.stack([p[0] for p in pairs]))
        crops = torch.from_numpy(np.stack([p[1] for p in pairs]).astype(np.uint8))
        self.seconds["prepare"] += time.perf_counter() - t
        return images, crops

    def reference(self, image: np.ndarray, mask: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """The reference crop of an object: its frame cropped around its given mask."""
        return self.crop(image, [mask], [geometry.mask_box(mask, self.margin)])

    def crops(self, image: np.ndarray, prev: list) -> tuple[list[geometry.CropBox], Crops]:
        """Boxes around the previous masks, and the crops of a slice of them."""
        boxes = [geometry.mask_box(m, self.margin) for m in prev]
        return boxes, lambda chunk: self.crop(image, prev[chunk], boxes[chunk])

    def paste(self, boxes: list[geometry.CropBox], probs: list[torch.Tensor], height: int, width: int,
              merge: tuple[list[int], str] | None = None) -> Pasted:
        """Paste each object's 1×2×h×w probabilities back into an H×W frame (``merge`` is the
        device strategy's: here the engine merges on the host)."""
        t = time.perf_counter()
        out = np.zeros((len(probs), height, width), dtype=np.float32)
        masks = []
        for row, (box, p) in enumerate(zip(boxes, probs)):
            region, (fy, fx) = geometry.box_region(p, box, height, width)
            if not np.isfinite(region).all():
                raise NotFinite(row)
            out[row, fy, fx] = region[0, 1]
            prev = np.zeros((height, width), dtype=np.float32)
            prev[fy, fx] = region[0, 1] > region[0, 0]
            masks.append(prev)
        self.seconds["paste-back"] += time.perf_counter() - t
        return Pasted(out, masks)

    def fetch(self, pasted: Pasted) -> tuple[np.ndarray, list, np.ndarray | None]:
        """(soft masks N×H×W uint8, the next previous masks, None: no label map made here)."""
        t = time.perf_counter()
        soft = quantize(pasted.probs)
        self.seconds["paste-back"] += time.perf_counter() - t
        return soft, pasted.chain, None

    def chain_masks(self, pasted: Pasted) -> list:
        """The next previous masks, in this strategy's form, as soon as they are known."""
        return pasted.chain


class DeviceGeometry:
    """Crops, resizing and paste-back as tensor operations on the runner's device."""

    on_device = True

    def __init__(self, runner: Runner, input_size: tuple[int, int], margin: float, seconds: Counter):
        self.runner, self.input_size, self.margin, self.seconds = runner, input_size, margin, seconds
        self._host = HostGeometry(runner, input_size, margin, seconds)

    def prev_mask(self, mask: np.ndarray | torch.Tensor) -> torch.Tensor:
        """A previous mask as a bool tensor on the device (given and stored masks come from the host)."""
        if isinstance(mask, torch.Tensor):
            return mask
        return self.runner.to_device(torch.from_numpy(np.asarray(mask) > 0))

    def reference(self, image: np.ndarray, mask: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        return self._host.reference(image, mask)  # once per object: OpenCV's own arithmetic

    def _crops_on_device(self, frame: torch.Tensor, prev: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor,
                                                                                torch.Tensor]:
        """Boxes around the previous masks and the crops of the frame and the masks, resized."""
        boxes = geometry.mask_boxes(prev, self.margin)
        return (boxes, *geometry.crop_resize_tensors(frame, prev, boxes, *self.input_size))

    def crops(self, image: np.ndarray, prev: list) -> tuple[HostCopy, Crops]:
        t = time.perf_counter()
        frame = self.runner.to_device(torch.from_numpy(image))
        stacked = torch.stack([self.prev_mask(m) for m in prev])
        graphs = self.runner.graphs
        if graphs is not None:  # some hundred small operations: one launch
            device_boxes, images, masks = graphs.replay("geometry", self._crops_on_device, [frame, stacked])
        else:
            device_boxes, images, masks = self._crops_on_device(frame, stacked)
        boxes = self.runner.to_host([device_boxes])
        self.seconds["prepare"] += time.perf_counter() - t
        return boxes, lambda chunk: (images[chunk], masks[chunk])

    def paste(self, boxes: HostCopy, probs: list[torch.Tensor], height: int, width: int,
              merge: tuple[list[int], str] | None = None) -> Pasted:
        """Queue the paste-back, the quantisation of the soft masks, with ``merge`` = (the
        rows' object ids, mode) their merged label map, and the copies of the uint8 results to
        the host (:meth:`fetch` waits)."""
        t = time.perf_counter()
        device = self.runner.device
        crop_boxes = [geometry.CropBox(*map(int, b)) for b in boxes.wait()[0].tolist()]
        out = torch.zeros((len(probs), height, width), device=device)
        chain = torch.zeros((len(probs), height, width), dtype=torch.bool, device=device)
        finite = []
        for row, (box, p) in enumerate(zip(crop_boxes, probs)):
            region, (fy, fx) = geometry.box_region_tensor(p, box, height, width)
            out[row, fy, fx] = region[0, 1]
            chain[row, fy, fx] = region[0, 1] > region[0, 0]
            finite.append(torch.isfinite(region).all())
        soft = quantize_tensor(out)
        results = [soft, torch.stack(finite), chain]
        if merge is not None:
            results.append(merge_frame_tensor(merge[0], soft, merge[1]))
        pasted = Pasted(copy=self.runner.to_host(results))
        pasted.chain = list(chain)  # the next previous masks stay on the device
        self.seconds["paste-back"] += time.perf_counter() - t
        return pasted

    def chain_masks(self, pasted: Pasted) -> list:
        return pasted.chain

    def fetch(self, pasted: Pasted) -> tuple[np.ndarray, list, np.ndarray | None]:
        """(soft masks N×H×W uint8, the next previous masks, the label map H×W uint8 or None)."""
        t = time.perf_counter()
        soft, finite, chain, *labels = pasted.copy.wait()
        for row, ok in enumerate(finite.tolist()):
            if not ok:
                raise NotFinite(row)
        result = soft.numpy(), list(chain.numpy()), labels[0].numpy() if labels else None
        self.seconds["paste-back"] += time.perf_counter() - t
        return result
