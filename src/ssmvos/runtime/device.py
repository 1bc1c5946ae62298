"""Devices and numeric precision: the one owner of what ``--device`` and ``--precision`` mean.

* Devices (``options.DEVICES``): ``auto`` picks CUDA, then Apple MPS, then the CPU.
* Precisions (``options.PRECISIONS``):
  - ``fp32``: IEEE float32 throughout, the faithful setting. TF32 is switched OFF for the
    code inside :func:`precision_scope`, whatever the process default (PyTorch lets cuDNN
    convolve float32 tensors in TF32 on NVIDIA GPUs unless told otherwise).
  - ``tf32``: float32 tensors, with NVIDIA's TF32 matrix units for convolutions and matrix
    products (10-bit mantissa products, float32 sums). Same as fp32 on other devices.
  - ``bf16`` / ``fp16``: autocast (weights stay float32).

The runners (inference) and the trainer take their contexts from here.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from ..errors import SSMVOSError
from ..options import DEVICES
from .spec import check_precision

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(name: str | torch.device, local_rank: int = 0) -> torch.device:
    """'auto' -> CUDA, else MPS, else CPU; 'cuda' -> this process's GPU (local rank); 'mps'; 'cpu'."""
    if isinstance(name, torch.device):
        return name
    if name not in DEVICES:
        raise SSMVOSError(f"device must be one of {', '.join(DEVICES)}, not {name!r}")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "mps" if mps_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise SSMVOSError("--device cuda: CUDA is not available on this machine (use --device cpu)")
        count = torch.cuda.device_count()
        if local_rank >= count:
            raise SSMVOSError(f"local rank {local_rank} has no GPU: only {count} visible")
        return torch.device("cuda", local_rank)
    if name == "mps":
        if not mps_available():
            raise SSMVOSError("--device mps: Apple's Metal backend (MPS) is not available here (use --device cpu)")
        return torch.device("mps")
    return torch.device("cpu")


@contextlib.contextmanager
def matmul_scope(precision: str) -> Iterator[None]:
    """TF32 on for 'tf32', off for every other precision, inside the block (restored after).

    Covers cuDNN convolutions and cuBLAS matrix products; wrap backward passes too.
    """
    check_precision(precision)
    tf32 = precision == "tf32"
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = tf32
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def autocast(device: torch.device, precision: str, cache_enabled: bool = True) -> contextlib.AbstractContextManager:
    """Autocast for bf16/fp16 on ``device``; for fp32 and tf32 autocast switched off, so that
    a caller's own autocast block (SAM 2's examples wrap everything in a bf16 one) does not
    turn the faithful setting into bf16 behind its back."""
    dtype = AUTOCAST_DTYPES.get(check_precision(precision))
    if dtype is None:
        return torch.autocast(device_type=device.type, enabled=False)
    return torch.autocast(device_type=device.type, dtype=dtype, cache_enabled=cache_enabled)


@contextlib.contextmanager
def precision_scope(device: torch.device, precision: str) -> Iterator[None]:
    """:func:`matmul_scope` and :func:`autocast` together (forward passes)."""
    with matmul_scope(precision), autocast(device, precision):
        yield


@contextlib.contextmanager
def cudnn_benchmark(enabled: bool) -> Iterator[None]:
    """cuDNN's algorithm search on or off inside the block (restored after)."""
    saved = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = enabled
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = saved
