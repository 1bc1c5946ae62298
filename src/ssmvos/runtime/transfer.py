"""Moving tensors between the host and a device without stalling either.

On CUDA, host tensors travel through pinned staging buffers, asynchronously; results come
back into pinned buffers the same way (:meth:`Transfers.to_host` returns a
:class:`HostCopy` to wait on). Elsewhere these are plain copies.
"""
from __future__ import annotations

import torch
from torch import Tensor

#: pinned buffers per shape and dtype for copies to the host: up to this many are made, then
#: any whose copy has finished is reused. What a copy gives is therefore valid until the next
#: copy of the same shape and dtype is started (the engine reads a frame's results before the
#: next frame's are copied, and copies one tensor of each shape at a time)
PINNED_RING = 3


class HostCopy:
    """Device-to-host copies in flight (:meth:`Transfers.to_host`)."""

    def __init__(self, tensors: list[Tensor], done: "torch.cuda.Event | None"):
        self._tensors = tensors
        self._done = done

    def wait(self) -> list[Tensor]:
        """The host tensors, once copied. Pinned buffers are reused (see ``PINNED_RING``):
        copy what you keep before the next copy of the same shape starts."""
        if self._done is not None:
            self._done.synchronize()
        return self._tensors


class Transfers:
    """Host <-> ``device`` copies (pinned and asynchronous on CUDA)."""

    def __init__(self, device: torch.device):
        self.device = device
        self._staging: dict[tuple, tuple[Tensor, torch.cuda.Event]] = {}
        self._pinned: dict[tuple, list[tuple[Tensor, torch.cuda.Event]]] = {}

    def to_device(self, t: Tensor) -> Tensor:
        """A host tensor on the device (on CUDA through a pinned staging buffer kept per shape,
        asynchronously; the buffer is reused once its previous copy has finished); a tensor
        already there as it is."""
        if t.device == self.device or self.device.type != "cuda":
            return t.to(self.device)
        key = (tuple(t.shape), t.dtype)
        if key not in self._staging:
            with torch.inference_mode(False):  # an ordinary tensor: copied into outside inference mode too
                self._staging[key] = (torch.empty(t.shape, dtype=t.dtype, pin_memory=True), torch.cuda.Event())
        host, copied = self._staging[key]
        copied.synchronize()
        host.copy_(t)
        out = host.to(self.device, non_blocking=True)
        copied.record()
        return out

    def to_host(self, tensors: list[Tensor]) -> HostCopy:
        """Start copying device tensors to the host (into pinned buffers on CUDA, without
        waiting); :meth:`HostCopy.wait` gives them as host tensors."""
        if self.device.type != "cuda":
            return HostCopy([t.cpu() for t in tensors], None)
        out = []
        for t in tensors:
            key = (tuple(t.shape), t.dtype)
            ring = self._pinned.setdefault(key, [])
            buffer = next((b for b, used in ring if used.query()), None) if len(ring) >= PINNED_RING else None
            if buffer is None:
                with torch.inference_mode(False):
                    buffer = torch.empty(t.shape, dtype=t.dtype, pin_memory=True)
                ring.append((buffer, torch.cuda.Event()))
            entry = next(e for e in ring if e[0] is buffer)
            buffer.copy_(t, non_blocking=True)
            entry[1].record()
            out.append(buffer)
        done = torch.cuda.Event()
        done.record()
        return HostCopy(out, done)
