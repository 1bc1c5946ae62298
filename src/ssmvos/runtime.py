"""How the network runs: device, numeric precision, memory layout, compilation, CUDA graphs.

The one owner of these choices; the inference engine, the trainer and the command line take
their names, checks and contexts from here.

* Devices (``options.DEVICES``): ``auto`` picks CUDA, then Apple MPS, then the CPU.
* Precisions (``options.PRECISIONS``):
  - ``fp32``: IEEE float32 throughout, the faithful setting. TF32 is switched OFF for the
    code inside :func:`precision_scope`, whatever the process default (PyTorch lets cuDNN
    convolve float32 tensors in TF32 on NVIDIA GPUs unless told otherwise).
  - ``tf32``: float32 tensors, with NVIDIA's TF32 matrix units for convolutions and matrix
    products (10-bit mantissa products, float32 sums). Same as fp32 on other devices.
  - ``bf16`` / ``fp16``: autocast (weights stay float32).
* :class:`NetworkRunner`: the network's two inference steps (encode a reference once per
  object; segment a batch of current frames) with the chosen layout and precision, and
  optionally through ``torch.compile`` and/or replayed CUDA graphs. The engine above it only
  crops, pastes back and chains frames.
* Backends (``BACKENDS``, :func:`make_runner`): ``torch`` (eager PyTorch), ``compile``
  (``torch.compile``, inductor) and ``onnxruntime`` (the exported ONNX graphs run by ONNX
  Runtime: ``ssmvos.onnx_backend.OnnxRuntimeRunner``, same interface, optional extra).
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import Tensor

from .data.tensors import normalize_images
from .errors import SSMVOSError
from .model import SSM, ReferenceEncoding
from .options import BACKENDS, DEVICES, PRECISIONS

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


# --------------------------------------------------------------------------- devices
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


# --------------------------------------------------------------------------- precision
def check_precision(name: str) -> str:
    if name not in PRECISIONS:
        raise SSMVOSError(f"precision must be one of {', '.join(PRECISIONS)}, not {name!r}")
    return name


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
    """Autocast for bf16/fp16 on ``device``; a no-op context for fp32 and tf32."""
    dtype = AUTOCAST_DTYPES.get(check_precision(precision))
    if dtype is None:
        return contextlib.nullcontext()
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


# --------------------------------------------------------------------------- the runner
class NetworkRunner:
    """Runs an SSM network's inference steps on one device in one precision.

    Inputs arrive as host tensors (images uint8 N×H×W×3, masks uint8/float N×H×W in {0, 1});
    the runner moves them (pinned, asynchronously on CUDA), normalises the images there and
    lays them out channels-last.

    compile: run the segment step through ``torch.compile`` (inductor; compiled once per
    batch size, which takes tens of seconds) except the structure branch, which stays eager
    (its top-k selection is sensitive to the order of float sums). cuda_graphs: capture the segment step once per
    batch size as a CUDA graph and replay it (removes the per-kernel launch cost, which
    dominates at small batches on fast GPUs); CUDA only. Both give the same arithmetic as
    the plain path up to the order of float sums (tested against the original's outputs).
    """

    def __init__(self, model: SSM, device: str | torch.device = "cpu", precision: str = "fp32",
                 channels_last: bool = True, compile: bool = False, cuda_graphs: bool = False):
        self.device = resolve_device(device)
        self.precision = check_precision(precision)
        if cuda_graphs and self.device.type != "cuda":
            raise SSMVOSError(f"CUDA graphs need a CUDA device, not {self.device.type}")
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.model = model.eval().to(self.device, memory_format=self.memory_format)
        self.compiled = compile
        self.backend = "compile" if compile else "torch"
        self.cuda_graphs = cuda_graphs
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
        self._graphs: dict[tuple, tuple[torch.cuda.CUDAGraph, list[Tensor], Tensor | tuple[Tensor, ...]]] = {}
        self._pool = None
        self._staging: dict[tuple, tuple[Tensor, torch.cuda.Event]] = {}
        self._pinned: dict[tuple, list[tuple[Tensor, torch.cuda.Event]]] = {}

    # -- inputs ------------------------------------------------------------------------
    def _to_device(self, t: Tensor) -> Tensor:
        """Host tensor -> device; on CUDA through a pinned staging buffer kept per shape
        (asynchronous copy; the buffer is reused once its previous copy has finished)."""
        if t.device == self.device or self.device.type != "cuda":
            return t.to(self.device)
        key = (tuple(t.shape), t.dtype)
        if key not in self._staging:
            with torch.inference_mode(False):  # an ordinary tensor: copied into outside inference mode too
                self._staging[key] = (torch.empty(t.shape, dtype=t.dtype, pin_memory=True), torch.cuda.Event())
        host, copied = self._staging[key]
        copied.synchronize()
        host.copy_(t)
        out = host.to(self.device, non_blocking=True)
        copied.record()
        return out

    def to_device(self, t: Tensor) -> Tensor:
        """A host tensor on the device (asynchronously from pinned memory on CUDA); a device
        tensor as it is."""
        return self._to_device(t)

    def to_host(self, tensors: list[Tensor]) -> "HostCopy":
        """Start copying device tensors to the host (into pinned buffers on CUDA, without
        waiting); :meth:`HostCopy.wait` gives them as host tensors."""
        if self.device.type != "cuda":
            return HostCopy([t.cpu() for t in tensors], None)
        out = []
        for t in tensors:
            key = (tuple(t.shape), t.dtype)
            ring = self._pinned.setdefault(key, [])
            buffer = next((b for b, used in ring if used.query()), None) if len(ring) >= _PINNED_RING else None
            if buffer is None:
                with torch.inference_mode(False):
                    buffer = torch.empty(t.shape, dtype=t.dtype, pin_memory=True)
                ring.append((buffer, torch.cuda.Event()))
            entry = next(e for e in ring if e[0] is buffer)
            buffer.copy_(t, non_blocking=True)
            entry[1].record()
            out.append(buffer)
        done = torch.cuda.Event()
        done.record()
        return HostCopy(out, done)

    def images(self, images: Tensor) -> Tensor:
        """N×H×W×3 uint8 host images -> normalised N×3×H×W float32 on the device."""
        # normalised in the standard layout, then converted: element-wise arithmetic on a
        # channels-last tensor with a per-channel operand is ~3x slower on CPUs
        return normalize_images(self._to_device(images)).contiguous(memory_format=self.memory_format)

    def masks(self, masks: Tensor) -> Tensor:
        """N×H×W host masks in {0, 1} -> N×1×H×W float32 on the device."""
        return self._to_device(masks).unsqueeze(1).float()

    @contextlib.contextmanager
    def _scope(self) -> Iterator[None]:
        with torch.inference_mode(), matmul_scope(self.precision), cudnn_benchmark(self.device.type == "cuda"):
            yield

    # -- steps -------------------------------------------------------------------------
    def encode_reference(self, images: Tensor, masks: Tensor) -> ReferenceEncoding:
        """Encode reference pairs (host uint8 images N×H×W×3, masks N×H×W) once per object."""
        with self._scope():
            return self._encode(self.images(images), self.masks(masks))

    def encode_reference_tensors(self, ref_img: Tensor, ref_mask: Tensor) -> ReferenceEncoding:
        """``SSM.encode_reference`` on device tensors (normalised images N×3×H×W, masks N×1×H×W)."""
        with self._scope():
            return self._encode(ref_img, ref_mask)

    def _encode(self, ref_img: Tensor, ref_mask: Tensor) -> ReferenceEncoding:
        with autocast(self.device, self.precision):
            return self.model.encode_reference(ref_img.contiguous(memory_format=self.memory_format), ref_mask)

    def segment(self, ref: ReferenceEncoding, images: Tensor, masks: Tensor) -> Tensor:
        """Logits N×2×H×W (float32, on the device) of host crops of the current frame (uint8
        N×H×W×3) given the previous masks (N×H×W in {0, 1}). Asynchronous on a GPU."""
        with self._scope():
            return self._segment(ref, self.images(images), self.masks(masks))

    def segment_tensors(self, ref: ReferenceEncoding, cur_img: Tensor, prev_mask: Tensor) -> Tensor:
        """``SSM.segment``'s logits (as float32) on device tensors, through compile/CUDA graphs
        when configured."""
        with self._scope():
            return self._segment(ref, cur_img, prev_mask)

    def _segment(self, ref: ReferenceEncoding, cur_img: Tensor, prev_mask: Tensor) -> Tensor:
        args = [ref.x5, ref.x4, ref.fg, ref.group_feats, ref.global_feats,
                cur_img.contiguous(memory_format=self.memory_format), prev_mask]
        if self.cuda_graphs:
            return self._replay(args)
        return self._step(*args)

    def _segment_step(self, x5: Tensor, x4: Tensor, fg: Tensor, group_feats: Tensor, global_feats: Tensor,
                      cur: Tensor, prev: Tensor) -> Tensor:
        # autocast without its weight cache: cached casts would live outside a captured graph
        with autocast(self.device, self.precision, cache_enabled=False):
            logits, _ = self.model.segment(ReferenceEncoding(x5, x4, fg, group_feats, global_feats), cur, prev)
        return logits.float()

    def _replay(self, args: list[Tensor]) -> Tensor:
        """Run the segment step as a CUDA graph captured for these input shapes."""
        return self.replay("segment", self._step, args)

    def replay(self, name: str, fn, args: list[Tensor]):
        """``fn(*args)`` (device tensors in, a tensor or a tuple of tensors out, no host
        synchronisation inside) as a CUDA graph captured once per name and input shapes, then
        replayed: one launch instead of one per operation. Returns fresh copies of the outputs."""
        key = (name, *((tuple(a.shape), a.dtype, a.stride()) for a in args))
        entry = self._graphs.get(key)
        if entry is None:
            static = [a.clone() for a in args]
            side = torch.cuda.Stream(self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):
                for _ in range(2):  # warm-up: cuDNN algorithm search, lazy inits, compilation
                    fn(*static)
            torch.cuda.current_stream(self.device).wait_stream(side)
            if self._pool is None:
                self._pool = torch.cuda.graph_pool_handle()
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=self._pool):
                out = fn(*static)
            entry = self._graphs[key] = (graph, static, out)
        graph, static, out = entry
        for dst, src in zip(static, args):
            dst.copy_(src)
        graph.replay()
        return tuple(o.clone() for o in out) if isinstance(out, tuple) else out.clone()


#: pinned buffers per shape and dtype for copies to the host: up to this many are made, then
#: any whose copy has finished is reused. What a copy gives is therefore valid until the next
#: copy of the same shape and dtype is started (the engine reads a frame's results before the
#: next frame's are copied, and copies one tensor of each shape at a time)
_PINNED_RING = 3


class HostCopy:
    """Device-to-host copies in flight (:meth:`NetworkRunner.to_host`)."""

    def __init__(self, tensors: list[Tensor], done: "torch.cuda.Event | None"):
        self._tensors = tensors
        self._done = done

    def wait(self) -> list[Tensor]:
        """The host tensors, once copied. Pinned buffers are reused (see ``_PINNED_RING``):
        copy what you keep before the next copy of the same shape starts."""
        if self._done is not None:
            self._done.synchronize()
        return self._tensors


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


# --------------------------------------------------------------------------- backends
def resolve_backend(backend: str = "torch", compile: bool = False) -> str:
    """The backend name, with the older ``compile=True`` flag as an alias of 'compile'."""
    if backend not in BACKENDS:
        raise SSMVOSError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    if compile and backend == "onnxruntime":
        raise SSMVOSError("--compile means --backend compile: it cannot be combined with --backend onnxruntime")
    return "compile" if compile else backend


def make_runner(model: SSM, backend: str = "torch", device: str | torch.device = "cpu", precision: str = "fp32", *,
                input_size: tuple[int, int] | None = None, channels_last: bool = True, cuda_graphs: bool = False,
                onnx: str | None = None) -> NetworkRunner:
    """A runner for ``backend``: :class:`NetworkRunner` for torch and compile, an
    ``OnnxRuntimeRunner`` for onnxruntime (which needs ``input_size``, the crop size its
    graphs are exported for, and takes an export folder ``onnx``; without one, ``model``
    is exported once into the cache)."""
    backend = resolve_backend(backend)
    if backend != "onnxruntime":
        if onnx is not None:
            raise SSMVOSError("--onnx (an export folder) is for --backend onnxruntime only")
        return NetworkRunner(model, device, precision, channels_last, backend == "compile", cuda_graphs)
    if cuda_graphs:
        raise SSMVOSError("--cuda-graphs is for the torch and compile backends, not onnxruntime")
    if input_size is None:
        raise ValueError("the onnxruntime backend needs the input size its graphs are exported for")
    from .onnx_backend import OnnxRuntimeRunner

    return OnnxRuntimeRunner(model, input_size, device, precision, onnx)
