"""Runners for tests that exercise the loop, not the numerics: plain implementations of
``ssmvos.runtime.Runner`` (the engine takes a runner as an argument).

``StubRunner``: a cheap deterministic stand-in for the network (the foreground logit follows
the previous mask and the crop's brightness). ``CountingRunner``: wraps any runner and
counts its work. Both keep a Counter ``calls``: 'encode' and 'segment' count calls,
'segment_rows' the object-frames run.
"""
from __future__ import annotations

from collections import Counter

import torch

from ssmvos.inference.engine import Engine
from ssmvos.inference.predictor import VideoPredictor
from ssmvos.model import ReferenceEncoding
from ssmvos.runtime import HostCopy, Runner, Transfers


class StubRunner:
    backend = "stub"
    precision = "fp32"
    device_geometry = True
    graphs = None

    def __init__(self) -> None:
        self.device = torch.device("cpu")
        self.transfers = Transfers(self.device)
        self.calls: Counter = Counter()

    def to_device(self, t: torch.Tensor) -> torch.Tensor:
        return self.transfers.to_device(t)

    def to_host(self, tensors: list[torch.Tensor]) -> HostCopy:
        return self.transfers.to_host(tensors)

    def encode_reference(self, images: torch.Tensor, masks: torch.Tensor) -> ReferenceEncoding:
        self.calls["encode"] += 1
        n = images.shape[0]
        mean = images.float().mean(dim=(1, 2, 3)).view(n, 1, 1, 1) / 255
        z = torch.zeros(n, 1, 1, 1)
        return ReferenceEncoding(mean, z, z.view(n, 1, 1), z, z)

    def segment(self, ref: ReferenceEncoding, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        self.calls["segment"] += 1
        self.calls["segment_rows"] += images.shape[0]
        brightness = images.float().mean(dim=-1) / 255 - ref.x5.view(-1, 1, 1)
        fg = (masks.float() * 2 - 1) * 2 + brightness * 4
        return torch.stack([torch.zeros_like(fg), fg], dim=1)


class CountingRunner:
    """Another runner's work, counted."""

    def __init__(self, inner: Runner):
        self.inner = inner
        self.backend, self.device, self.precision = inner.backend, inner.device, inner.precision
        self.device_geometry, self.graphs = inner.device_geometry, inner.graphs
        self.calls: Counter = Counter()

    def to_device(self, t: torch.Tensor) -> torch.Tensor:
        return self.inner.to_device(t)

    def to_host(self, tensors: list[torch.Tensor]) -> HostCopy:
        return self.inner.to_host(tensors)

    def encode_reference(self, images: torch.Tensor, masks: torch.Tensor) -> ReferenceEncoding:
        self.calls["encode"] += 1
        return self.inner.encode_reference(images, masks)

    def segment(self, ref: ReferenceEncoding, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        self.calls["segment"] += 1
        self.calls["segment_rows"] += images.shape[0]
        return self.inner.segment(ref, images, masks)


def stub_predictor(input_size: int = 224, **engine_options) -> tuple[VideoPredictor, Counter]:
    """A video predictor on :class:`StubRunner`, and its call counter."""
    runner = StubRunner()
    return VideoPredictor(engine=Engine(runner, (input_size, input_size), **engine_options)), runner.calls
