"""What a runner is asked to be: backend, device, precision, layout, CUDA graphs, export folder.

:class:`RuntimeSpec` is built once from the user's choices (command-line flags, the app's,
``VideoPredictor``'s or ``build_predictor``'s keywords) and checked here, before any model is
loaded: conflicting choices are one clear error naming the flags. It imports no torch, so
front ends can check it first; :func:`ssmvos.runtime.build_runner` turns it into a runner.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from ..errors import SSMVOSError
from ..options import BACKENDS, DEVICES, PRECISIONS


def check_backend(backend: str, compile: bool = False) -> str:
    """The backend name, with the older ``compile=True`` (``--compile``) as an alias of 'compile'."""
    if backend not in BACKENDS:
        raise SSMVOSError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    if compile and backend == "onnxruntime":
        raise SSMVOSError("--compile means --backend compile: it cannot be combined with --backend onnxruntime")
    return "compile" if compile else backend


def check_precision(name: str) -> str:
    """``name`` if it is a precision (:data:`~ssmvos.options.PRECISIONS`), else SSMVOSError."""
    if name not in PRECISIONS:
        raise SSMVOSError(f"precision must be one of {', '.join(PRECISIONS)}, not {name!r}")
    return name


@dataclass(frozen=True)
class RuntimeSpec:
    """How the network runs (see ``ssmvos.options`` for the names).

    backend: 'torch' (eager), 'compile' (``torch.compile``) or 'onnxruntime' (the exported
    graphs; ``onnx`` names an export folder, else the weights are exported once into the
    cache). device: 'auto', 'cpu', 'cuda', 'mps', or a ``torch.device`` (a process's own
    GPU under torchrun). precision: 'fp32' (faithful), 'tf32', 'bf16', 'fp16'.
    cuda_graphs: replay the network and the crop geometry as CUDA graphs. channels_last:
    the NHWC memory layout for the torch backends (faster convolutions); None (the default):
    NHWC except for fp32/tf32 on a CPU, where the original's NCHW layout keeps oneDNN's order
    of float sums, and with it the original's masks, on every CPU (with NHWC some CPUs flip a
    near-tied top-k choice and one object's chain drifts from the original's).
    """

    backend: str = "torch"
    device: Any = "auto"  # str, or a torch.device
    precision: str = "fp32"
    cuda_graphs: bool = False
    onnx: str | None = None
    channels_last: bool | None = None

    def __post_init__(self) -> None:
        check_backend(self.backend)
        check_precision(self.precision)
        if isinstance(self.device, str) and self.device not in DEVICES:
            raise SSMVOSError(f"device must be one of {', '.join(DEVICES)}, not {self.device!r}")
        if self.onnx is not None:
            if self.backend != "onnxruntime":
                raise SSMVOSError("--onnx (an export folder) is for --backend onnxruntime only")
            object.__setattr__(self, "onnx", os.fspath(self.onnx))
        if self.backend == "onnxruntime":
            if self.cuda_graphs:
                raise SSMVOSError("--cuda-graphs is for the torch and compile backends, not onnxruntime")
            if self.precision in ("bf16", "fp16"):
                raise SSMVOSError(f"the onnxruntime backend runs fp32 only (its graphs are float32), not "
                                  f"{self.precision}: use --backend torch or compile for reduced precision")
        device_type = self.device if isinstance(self.device, str) else getattr(self.device, "type", "")
        if self.cuda_graphs and device_type in ("cpu", "mps"):
            raise SSMVOSError(f"CUDA graphs need a CUDA device, not {device_type}")

    @classmethod
    def of(cls, backend: str = "torch", compile: bool = False, **options: Any) -> "RuntimeSpec":
        """A spec from keyword options as the API and the flags spell them (``compile=True``
        is ``backend='compile'``)."""
        return cls(backend=check_backend(backend, compile), **options)

    @property
    def compiled(self) -> bool:
        return self.backend == "compile"
