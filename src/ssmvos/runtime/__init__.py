"""How the network runs: device, numeric precision, memory layout, compilation, CUDA graphs,
and the backend that runs it.

* :class:`RuntimeSpec` (:mod:`.spec`): the user's choices, checked before any model loads.
* :mod:`.device`: what devices and precisions mean (contexts the runners and the trainer use).
* :class:`Runner` (:mod:`.protocol`): what the inference engine asks of a backend; the
  backends are plain classes that implement it: :class:`TorchRunner` (torch and compile,
  optionally replayed as CUDA graphs) and ``OnnxRuntimeRunner`` (:mod:`.onnx_runner`, the
  exported graphs; optional extra). :func:`build_runner` is the one place a spec becomes a
  runner. :class:`SharedRunner` lets engines in several threads share one runner's calls
  (the objects of several videos in one batch).
"""
from __future__ import annotations

import torch

from ..model import SSM
from .device import (AUTOCAST_DTYPES, autocast, cudnn_benchmark, matmul_scope, mps_available, precision_scope,
                     resolve_device)
from .graphs import CudaGraphs
from .protocol import Runner
from .shared import SharedRunner
from .spec import RuntimeSpec, check_backend, check_precision
from .torch_runner import TorchRunner
from .transfer import HostCopy, Transfers


def build_runner(model: SSM, spec: RuntimeSpec | None = None, input_size: tuple[int, int] | None = None) -> Runner:
    """The runner ``spec`` asks for, running ``model`` (moved to the runner's device).

    ``input_size`` (H, W): the crop size; the onnxruntime backend needs it (its graphs are
    exported for one size).
    """
    spec = spec or RuntimeSpec()
    if spec.backend != "onnxruntime":
        return TorchRunner(model, spec.device, spec.precision, spec.channels_last, spec.compiled, spec.cuda_graphs)
    if input_size is None:
        raise ValueError("the onnxruntime backend needs the input size its graphs are exported for")
    from .onnx_runner import OnnxRuntimeRunner

    return OnnxRuntimeRunner(model, input_size, spec.device, spec.precision, spec.onnx)


# -- the names of earlier versions ---------------------------------------------------------
#: ``NetworkRunner`` was the torch runner's name.
NetworkRunner = TorchRunner
#: ``resolve_backend(backend, compile)`` is :func:`check_backend`.
resolve_backend = check_backend


def make_runner(model: SSM, backend: str = "torch", device: str | torch.device = "cpu", precision: str = "fp32", *,
                input_size: tuple[int, int] | None = None, channels_last: bool | None = None, cuda_graphs: bool = False,
                onnx: str | None = None) -> Runner:
    """:func:`build_runner` with the spec's fields as arguments (the earlier signature)."""
    return build_runner(model, RuntimeSpec(backend, device, precision, cuda_graphs, onnx, channels_last), input_size)


__all__ = ["AUTOCAST_DTYPES", "CudaGraphs", "HostCopy", "NetworkRunner", "Runner", "RuntimeSpec", "SharedRunner", "TorchRunner",
           "Transfers", "autocast", "build_runner", "check_backend", "check_precision", "cudnn_benchmark",
           "make_runner", "matmul_scope", "mps_available", "precision_scope", "resolve_backend", "resolve_device"]
