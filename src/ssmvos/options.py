"""The device, precision, backend and direction choices the front ends offer, importable without torch.

``ssmvos.runtime`` and ``ssmvos.inference.directions`` give them their meaning; argument parsers
(built for every command, including those that never touch the network) take their names and
help texts from here.
"""
from __future__ import annotations

DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("fp32", "tf32", "bf16", "fp16")
BACKENDS = ("torch", "compile", "onnxruntime")
#: directions of propagation; what each means is ``ssmvos.inference.directions``'
DIRECTIONS = ("forward", "backward", "both")

PRECISION_HELP = ("fp32 (IEEE float32, faithful to the original; the default), tf32 (float32 with TF32 matrix units "
                  "on NVIDIA GPUs), bf16 or fp16 (autocast): faster, not faithful; see benchmarks/README.md")
DEVICE_HELP = ("where to run: auto (default: CUDA, else Apple MPS, else CPU), cpu, cuda (this process's GPU), mps "
               "(Apple GPUs; untested, see README)")
BACKEND_HELP = ("how the network runs: torch (eager PyTorch, the default), compile (torch.compile with inductor; "
                "tens of seconds of compiling per number of objects), onnxruntime (the network exported to ONNX and run "
                "by ONNX Runtime, fp32 only; needs pip install -e \".[onnx]\")")
