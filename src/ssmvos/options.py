"""The device and precision choices the front ends offer, importable without torch.

``ssmvos.runtime`` gives them their meaning; argument parsers (built for every command,
including those that never touch the network) take their names and help texts from here.
"""
from __future__ import annotations

DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("fp32", "tf32", "bf16", "fp16")

PRECISION_HELP = ("fp32 (IEEE float32, faithful to the original; the default), tf32 (float32 with TF32 matrix units "
                  "on NVIDIA GPUs), bf16 or fp16 (autocast): faster, not faithful; see benchmarks/README.md")
DEVICE_HELP = ("where to run: auto (default: CUDA, else Apple MPS, else CPU), cpu, cuda (this process's GPU), mps "
               "(Apple GPUs; untested, see README)")
