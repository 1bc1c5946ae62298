"""The onnxruntime backend: the exported graphs (:mod:`ssmvos.export.onnx`) run by ONNX Runtime."""
from __future__ import annotations

import os
import sys
from typing import Any

import torch
from torch import Tensor

from ..data.tensors import normalize_images
from ..errors import SSMVOSError
from ..export.onnx import (GRAPHS, REFERENCE_OUTPUTS, OnnxExport, check_files, export_for, export_onnx,
                           model_fingerprint, open_session, read_export, require)
from ..model import SSM, ReferenceEncoding
from .device import resolve_device
from .spec import check_precision
from .transfer import HostCopy, Transfers


class OnnxRuntimeRunner:
    """The :class:`~.protocol.Runner` of the onnxruntime backend.

    onnx: an export folder (its weights and input size must be ``model``'s and
    ``input_size``); None exports ``model`` once into the cache (and again if that cache entry
    turns out to be damaged). device: 'cpu', 'cuda' (ONNX Runtime's CUDA provider, from the
    onnxruntime-gpu package) or 'auto' (CUDA when that provider is there). Only fp32 (tf32 =
    fp32 here): the graphs are float32. Tensors stay on the host; ORT moves them to its
    device. threads: intra-op threads (default: torch's).
    """

    backend = "onnxruntime"
    device_geometry = False  # the graphs take host arrays: crops are made on the host
    graphs = None

    def __init__(self, model: SSM, input_size: tuple[int, int], device: str | torch.device = "cpu",
                 precision: str = "fp32", onnx: str | os.PathLike | None = None, threads: int | None = None):
        require("onnxruntime")
        import onnxruntime as ort

        check_precision(precision)
        if precision in ("bf16", "fp16"):
            raise SSMVOSError(f"the onnxruntime backend runs fp32 only (its graphs are float32), not {precision}: "
                              "use --backend torch or compile for reduced precision")
        self.providers = _providers(device, ort.get_available_providers())
        self.device = torch.device("cpu")  # where the runner's tensors live; ORT copies to its own device
        self.precision = precision
        self.model = model.eval()
        self.transfers = Transfers(self.device)
        self.input_size = (int(input_size[0]), int(input_size[1]))
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        if onnx is None:
            self.export = export_for(model, self.input_size)
            try:
                self.sessions = self._open(options)
            except SSMVOSError as exc:  # a cache entry from before the manifest recorded file digests
                print(f"the cached ONNX export in {self.export.folder} cannot be used ({exc}); exporting it again",
                      file=sys.stderr)
                export_onnx(model, self.export.folder, self.input_size)
                self.export = read_export(self.export.folder)
                self.sessions = self._open(options)
        else:
            self.export = read_export(onnx)
            self._check_matches(onnx, model)
            self.sessions = self._open(options)

    def _check_matches(self, onnx: str | os.PathLike, model: SSM) -> None:
        if self.export.input_size != self.input_size:
            raise SSMVOSError(f"{onnx} was exported for input size {self.export.input_size[0]}x"
                              f"{self.export.input_size[1]}, not {self.input_size[0]}x{self.input_size[1]}: export "
                              "again with --input-size or use that size")
        if self.export.fingerprint != model_fingerprint(model):
            raise SSMVOSError(f"{onnx} was exported from other weights (or another network configuration) than "
                              "the ones given: export those weights again")

    def _open(self, options: Any) -> dict[str, Any]:
        check_files(self.export)
        return {role: open_session(self.export.folder / f"{role}.onnx", self.export, options, self.providers)
                for role in GRAPHS}

    # -- the protocol --------------------------------------------------------------------
    def to_device(self, t: Tensor) -> Tensor:
        return self.transfers.to_device(t)

    def to_host(self, tensors: list[Tensor]) -> HostCopy:
        return self.transfers.to_host(tensors)

    def encode_reference(self, images: Tensor, masks: Tensor) -> ReferenceEncoding:
        return self.encode_reference_tensors(normalize_images(images), masks.unsqueeze(1).float())

    def segment(self, ref: ReferenceEncoding, images: Tensor, masks: Tensor) -> Tensor:
        return self.segment_tensors(ref, normalize_images(images), masks.unsqueeze(1).float())

    def encode_reference_tensors(self, ref_img: Tensor, ref_mask: Tensor) -> ReferenceEncoding:
        """The encode_reference graph on normalised images N×3×H×W and masks N×1×H×W."""
        return ReferenceEncoding(*self._run("encode_reference", [ref_img, ref_mask]))

    def segment_tensors(self, ref: ReferenceEncoding, cur_img: Tensor, prev_mask: Tensor) -> Tensor:
        """The segment graph's logits N×2×H×W on normalised tensors."""
        return self._run("segment", [*(getattr(ref, name) for name in REFERENCE_OUTPUTS), cur_img, prev_mask])[0]

    def _run(self, role: str, inputs: list[Tensor]) -> list[Tensor]:
        size = tuple(inputs[-1].shape[-2:])
        if size != self.export.input_size:
            raise SSMVOSError(f"the ONNX export takes {self.export.input_size[0]}x{self.export.input_size[1]} crops, "
                              f"not {size[0]}x{size[1]}")
        feeds = {name: t.detach().to("cpu", torch.float32).contiguous().numpy()
                 for name, t in zip(GRAPHS[role]["inputs"], inputs)}
        return [torch.from_numpy(out) for out in self.sessions[role].run(None, feeds)]


def _providers(device: str | torch.device, available: list[str]) -> list[Any]:
    """ONNX Runtime execution providers for a device name (CUDA without TF32: fp32 is IEEE)."""
    cuda = "CUDAExecutionProvider" in available
    name = device.type if isinstance(device, torch.device) else device
    if name == "auto":
        name = "cuda" if cuda else "cpu"
    elif name not in ("cpu", "cuda"):
        resolve_device(name)  # the usual error for unknown or unavailable devices
        raise SSMVOSError(f"the onnxruntime backend runs on cpu or cuda, not {name}")
    if name == "cuda":
        if not cuda:
            raise SSMVOSError("--device cuda with --backend onnxruntime needs ONNX Runtime's CUDA provider "
                              "(the onnxruntime-gpu package); this onnxruntime has only "
                              + ", ".join(available))
        index = device.index if isinstance(device, torch.device) and device.index is not None else 0
        return [("CUDAExecutionProvider", {"use_tf32": 0, "device_id": index}), "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


__all__ = ["OnnxRuntimeRunner", "OnnxExport"]
