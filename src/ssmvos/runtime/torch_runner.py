"""The torch and compile backends: the network in PyTorch, eager or through ``torch.compile``,
optionally replayed as CUDA graphs."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import Tensor

from ..data.tensors import normalize_images
from ..errors import SSMVOSError
from ..model import SSM, ReferenceEncoding
from .device import autocast, cudnn_benchmark, matmul_scope, resolve_device
from .graphs import CudaGraphs
from .spec import check_precision
from .transfer import HostCopy, Transfers


class TorchRunner:
    """The :class:`~.protocol.Runner` of the torch and compile backends.

    Inputs arrive as host tensors (images uint8 N×H×W×3, masks uint8/float N×H×W in {0, 1})
    or device tensors; the runner moves them (pinned, asynchronously on CUDA), normalises the
    images there and lays them out channels-last (``channels_last``; None: see
    :attr:`RuntimeSpec.channels_last <ssmvos.runtime.RuntimeSpec>`).

    compile: run the segment step through ``torch.compile`` (inductor; compiled once per
    batch size, which takes tens of seconds) except the structure branch, which stays eager
    (its top-k selection is sensitive to the order of float sums). cuda_graphs: capture the
    segment step once per batch size as a CUDA graph and replay it (removes the per-kernel
    launch cost, which dominates at small batches on fast GPUs); CUDA only. Both give the
    same arithmetic as the plain path up to the order of float sums (tested against the
    original's outputs).
    """

    device_geometry = True  # crops and paste-back may run as tensor operations where the network runs

    def __init__(self, model: SSM, device: str | torch.device = "cpu", precision: str = "fp32",
                 channels_last: bool | None = None, compile: bool = False, cuda_graphs: bool = False):
        self.device = resolve_device(device)
        self.precision = check_precision(precision)
        if channels_last is None:  # see RuntimeSpec.channels_last
            channels_last = self.device.type != "cpu" or precision in ("bf16", "fp16")
        if cuda_graphs and self.device.type != "cuda":
            raise SSMVOSError(f"CUDA graphs need a CUDA device, not {self.device.type}")
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.model = model.eval().to(self.device, memory_format=self.memory_format)
        self.backend = "compile" if compile else "torch"
        self.transfers = Transfers(self.device)
        self.graphs = CudaGraphs(self.device) if cuda_graphs else None
        self._step = self._segment_step
        if compile:
            import torch._dynamo as dynamo

            # one compiled graph per batch size: allow more than dynamo's default 8 before it
            # would silently fall back to the uncompiled step
            dynamo.config.cache_size_limit = max(dynamo.config.cache_size_limit, 64)
            # The structure branch stays eager: it picks the top-k current positions by summed
            # correlation, and inductor's own summation order can swap near-tied positions,
            # which moved one of libby's objects off the original's masks in the pipeline test.
            _keep_eager(self.model.pixel_corr.self_structure)
            self._step = torch.compile(self._segment_step, dynamic=False)

    # -- inputs ------------------------------------------------------------------------
    def to_device(self, t: Tensor) -> Tensor:
        return self.transfers.to_device(t)

    def to_host(self, tensors: list[Tensor]) -> HostCopy:
        return self.transfers.to_host(tensors)

    def images(self, images: Tensor) -> Tensor:
        """N×H×W×3 uint8 images -> normalised N×3×H×W float32 on the device."""
        # normalised in the standard layout, then converted: element-wise arithmetic on a
        # channels-last tensor with a per-channel operand is ~3x slower on CPUs
        return normalize_images(self.to_device(images)).contiguous(memory_format=self.memory_format)

    def masks(self, masks: Tensor) -> Tensor:
        """N×H×W masks in {0, 1} -> N×1×H×W float32 on the device."""
        return self.to_device(masks).unsqueeze(1).float()

    @contextlib.contextmanager
    def _scope(self) -> Iterator[None]:
        with torch.inference_mode(), matmul_scope(self.precision), cudnn_benchmark(self.device.type == "cuda"):
            yield

    # -- steps -------------------------------------------------------------------------
    def encode_reference(self, images: Tensor, masks: Tensor) -> ReferenceEncoding:
        with self._scope():
            return self._encode(self.images(images), self.masks(masks))

    def encode_reference_tensors(self, ref_img: Tensor, ref_mask: Tensor) -> ReferenceEncoding:
        """``SSM.encode_reference`` on normalised images N×3×H×W and masks N×1×H×W."""
        with self._scope():
            return self._encode(self.to_device(ref_img), self.to_device(ref_mask))

    def _encode(self, ref_img: Tensor, ref_mask: Tensor) -> ReferenceEncoding:
        with autocast(self.device, self.precision):
            return self.model.encode_reference(ref_img.contiguous(memory_format=self.memory_format), ref_mask)

    def segment(self, ref: ReferenceEncoding, images: Tensor, masks: Tensor) -> Tensor:
        with self._scope():
            return self._segment(ref, self.images(images), self.masks(masks))

    def segment_tensors(self, ref: ReferenceEncoding, cur_img: Tensor, prev_mask: Tensor) -> Tensor:
        """``SSM.segment``'s logits (as float32) on normalised tensors, through compile/CUDA
        graphs when configured."""
        with self._scope():
            return self._segment(ref, self.to_device(cur_img), self.to_device(prev_mask))

    def _segment(self, ref: ReferenceEncoding, cur_img: Tensor, prev_mask: Tensor) -> Tensor:
        args = [ref.x5, ref.x4, ref.fg, ref.group_feats, ref.global_feats,
                cur_img.contiguous(memory_format=self.memory_format), prev_mask]
        if self.graphs is not None:
            return self.graphs.replay("segment", self._step, args)
        return self._step(*args)

    def _segment_step(self, x5: Tensor, x4: Tensor, fg: Tensor, group_feats: Tensor, global_feats: Tensor,
                      cur: Tensor, prev: Tensor) -> Tensor:
        # autocast without its weight cache: cached casts would live outside a captured graph
        with autocast(self.device, self.precision, cache_enabled=False):
            logits, _ = self.model.segment(ReferenceEncoding(x5, x4, fg, group_feats, global_feats), cur, prev)
        return logits.float()


def _keep_eager(module: torch.nn.Module) -> None:
    """Make torch.compile run ``module`` eagerly: its class becomes a subclass whose forward
    dynamo skips (weights, state-dict keys and copies are unchanged)."""
    cls = type(module)
    if not getattr(cls, "_ssmvos_eager", False):
        if cls not in _EAGER_CLASSES:
            _EAGER_CLASSES[cls] = type(f"Eager{cls.__name__}", (cls,),
                                       {"forward": torch.compiler.disable(cls.forward), "_ssmvos_eager": True})
        module.__class__ = _EAGER_CLASSES[cls]


_EAGER_CLASSES: dict[type, type] = {}
