"""A stand-in for the network in engine tests that exercise the loop, not the numerics.

``stub_network(engine)`` replaces the engine's runner steps by cheap deterministic ones
(the foreground logit follows the previous mask and the crop's brightness) and returns a
Counter of calls: 'encode' and 'segment' count calls, 'segment_rows' the object-frames run.
"""
from __future__ import annotations

from collections import Counter

import torch

from ssmvos.model import ReferenceEncoding


def stub_network(engine) -> Counter:
    calls: Counter = Counter()

    def encode_reference(images: torch.Tensor, masks: torch.Tensor) -> ReferenceEncoding:
        calls["encode"] += 1
        n = images.shape[0]
        mean = images.float().mean(dim=(1, 2, 3)).view(n, 1, 1, 1) / 255
        z = torch.zeros(n, 1, 1, 1)
        return ReferenceEncoding(mean, z, z.view(n, 1, 1), z, z)

    def segment(ref: ReferenceEncoding, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        calls["segment"] += 1
        calls["segment_rows"] += images.shape[0]
        brightness = images.float().mean(dim=-1) / 255 - ref.x5.view(-1, 1, 1)
        fg = (masks.float() * 2 - 1) * 2 + brightness * 4
        return torch.stack([torch.zeros_like(fg), fg], dim=1)

    engine.runner.encode_reference = encode_reference
    engine.runner.segment = segment
    return calls
