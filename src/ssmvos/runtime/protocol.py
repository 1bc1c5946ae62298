"""The runner protocol: what the inference engine asks of whatever runs the network.

A runner runs the network's two inference steps on crops the engine made: encode an
object's reference once, and segment a batch of current crops against their references.
The torch/compile runner (:mod:`.torch_runner`), the ONNX Runtime runner
(:mod:`.onnx_runner`) and the tests' stand-in implement it as plain classes; the engine
takes one as an argument (:func:`ssmvos.runtime.build_runner` makes them from a
:class:`~.spec.RuntimeSpec`).
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

from ..model import ReferenceEncoding
from .graphs import CudaGraphs
from .transfer import HostCopy


@runtime_checkable
class Runner(Protocol):
    """Runs an SSM network's inference steps on one device in one precision.

    ``images`` are N×h×w×3 uint8 RGB crops and ``masks`` N×h×w crops in {0, 1}, on the
    host or already on :attr:`device`; the runner normalises and lays them out itself.
    ``device_geometry``: whether the engine may crop and paste back as tensor operations
    on :attr:`device` (it then hands device tensors in); ``graphs``: CUDA graphs the engine
    may replay its own geometry through (None: not asked for, or not on CUDA).
    """

    backend: str
    device: torch.device
    precision: str
    device_geometry: bool
    graphs: CudaGraphs | None

    def encode_reference(self, images: Tensor, masks: Tensor) -> ReferenceEncoding:
        """Encode N reference crops, once per object."""

    def segment(self, ref: ReferenceEncoding, images: Tensor, masks: Tensor) -> Tensor:
        """Logits N×2×h×w (float32, on :attr:`device`; asynchronous on a GPU) of N current
        crops given the previous masks' crops, against the N references ``ref``."""

    def to_device(self, t: Tensor) -> Tensor:
        """A host tensor on :attr:`device` (a tensor already there as it is)."""

    def to_host(self, tensors: list[Tensor]) -> HostCopy:
        """Start copying device tensors to the host; ``.wait()`` gives them."""
