"""ONNX export of the SSM network (``ssmvos export --format onnx``; optional extra ``.[onnx]``).

An export folder (``ssmvos export --format onnx --out DIR``) holds the network split the
way inference uses it, for one fixed input size H×W and any number N of objects:

* ``encode_reference.onnx``: ref_img N×3×H×W, ref_mask N×1×H×W -> the five tensors of a
  :class:`~ssmvos.model.ReferenceEncoding` (x5, x4, fg, group_feats, global_feats), run
  once per object;
* ``segment.onnx``: those five + cur_img N×3×H×W + prev_mask N×1×H×W -> logits N×2×H×W,
  run once per frame for all objects together;
* ``ssmvos-onnx.json`` (:data:`MANIFEST`): inputs, outputs, normalisation, the crop rule, the
  model's configuration and weight fingerprint, and the verification figures.

Every ``.onnx`` file carries the fingerprint, its role and the input size in its metadata,
so a file of another model or size is refused when it is loaded, and the manifest records
each file's sha256, so a damaged or truncated file is caught before ONNX Runtime reads it
(a damaged entry of the cache, :func:`export_for`, is exported again). Export verifies ONNX
Runtime's outputs against PyTorch's on fixed inputs (the bundled demo frames) and writes
nothing when they differ by more than :data:`VERIFY_TOLERANCE`. Running an export is
:class:`ssmvos.runtime.onnx_runner.OnnxRuntimeRunner`'s.
"""
from __future__ import annotations

import contextlib
import copy
import hashlib
import importlib
import io
import json
import logging
import math
import os
import shutil
import sys
import tempfile
import warnings
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..assets import demo_clip
from ..atomic import write_json_atomic
from ..data import geometry
from ..data.tensors import normalize_images
from ..errors import SSMVOSError
from ..model import SSM, ReferenceEncoding
from ..model.ssm import check_input_size
from ..pretrained import IMAGENET_MEAN, IMAGENET_STD

FORMAT = "ssmvos-onnx"
FORMAT_VERSION = 1
MANIFEST = "ssmvos-onnx.json"
OPSET = 18
#: Largest relative error (L2 norm of the difference over the norm of PyTorch's output)
#: that export accepts between ONNX Runtime and PyTorch, per output: the golden tolerance.
VERIFY_TOLERANCE = 1e-4
INSTALL_HINT = 'pip install -e ".[onnx]"'

REFERENCE_OUTPUTS = tuple(f.name for f in fields(ReferenceEncoding))
GRAPHS: dict[str, dict[str, tuple[str, ...]]] = {
    "encode_reference": {"inputs": ("ref_img", "ref_mask"), "outputs": REFERENCE_OUTPUTS},
    "segment": {"inputs": (*REFERENCE_OUTPUTS, "cur_img", "prev_mask"), "outputs": ("logits",)},
}


# --------------------------------------------------------------------------- the extra
def require(*modules: str, purpose: str = "the onnxruntime backend") -> None:
    """Import ``modules`` or raise one SSMVOSError line naming the install command."""
    missing = []
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise SSMVOSError(f"{purpose} needs the optional package(s) {', '.join(missing)}, which are not installed: "
                          f"run {INSTALL_HINT} in the ssmvos source folder")


def model_fingerprint(model: SSM) -> str:
    """sha256 over the network's configuration and every state-dict tensor (names, shapes, bytes)."""
    digest = hashlib.sha256(json.dumps(model.config, sort_keys=True).encode())
    for name, tensor in model.state_dict().items():
        t = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


# --------------------------------------------------------------------------- export
class _ReferenceGraph(nn.Module):
    """``SSM.encode_reference`` with the encoding as a tuple (what the exporter needs)."""

    def __init__(self, model: SSM):
        super().__init__()
        self.model = model

    def forward(self, ref_img: Tensor, ref_mask: Tensor) -> tuple[Tensor, ...]:
        ref = self.model.encode_reference(ref_img, ref_mask)
        return tuple(getattr(ref, name) for name in REFERENCE_OUTPUTS)


class _SegmentGraph(nn.Module):
    """``SSM.segment``'s logits from the encoding's tensors and the current pair."""

    def __init__(self, model: SSM):
        super().__init__()
        self.model = model

    def forward(self, x5: Tensor, x4: Tensor, fg: Tensor, group_feats: Tensor, global_feats: Tensor,
                cur_img: Tensor, prev_mask: Tensor) -> Tensor:
        logits, _ = self.model.segment(ReferenceEncoding(x5, x4, fg, group_feats, global_feats), cur_img, prev_mask)
        return logits


def verification_inputs(height: int, width: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Fixed inputs for the export check: two objects from the bundled demo clip (frame 0 as
    reference, frame 1 as current, cropped around the first-frame mask as the engine does;
    the second object is the mirrored crop). -> (ref_img, ref_mask, cur_img, prev_mask),
    normalised images 2×3×H×W and masks 2×1×H×W."""
    from ..data.io import read_mask
    from ..io.frames.files import list_frames, read_frame

    frames, mask_path = demo_clip()
    paths = list_frames(frames)
    mask = (read_mask(mask_path) > 0).astype(np.float32)
    box = geometry.mask_box(mask, 0.5)
    pairs = [geometry.crop_resize(read_frame(p), mask, box, height, width) for p in paths[:2]]
    out = []
    for image, crop_mask in pairs:
        images = torch.from_numpy(np.stack([image, image[:, ::-1]]))
        masks = torch.from_numpy(np.stack([crop_mask, crop_mask[:, ::-1]]))
        out += [normalize_images(images), masks.unsqueeze(1).float()]
    return out[0], out[1], out[2], out[3]


def relative_error(got: np.ndarray, want: np.ndarray) -> float:
    """||got - want|| / ||want|| in float64 (the absolute norm when ``want`` is all zero)."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        return float("inf")
    scale = float(np.linalg.norm(want))
    return float(np.linalg.norm(got - want)) / (scale if scale > 0 else 1.0)


@contextlib.contextmanager
def _quiet() -> Any:
    """Silence the exporter's progress lines (printed to stdout), warnings and log messages."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _export_graph(module: nn.Module, args: tuple[Tensor, ...], role: str, path: Path, metadata: dict[str, str]) -> None:
    """torch.onnx's dynamo exporter, with the object dimension dynamic; metadata added."""
    import onnx

    objects = torch.export.Dim("objects", min=1, max=4096)
    spec = GRAPHS[role]
    with _quiet():
        program = torch.onnx.export(module, args, dynamo=True, input_names=list(spec["inputs"]),
                                    output_names=list(spec["outputs"]), opset_version=OPSET,
                                    dynamic_shapes=tuple({0: objects} for _ in args), verbose=False)
    proto = program.model_proto
    onnx.helper.set_model_props(proto, {**metadata, "ssmvos.graph": role})
    onnx.save_model(proto, str(path))


def _staging_dir(out: Path) -> tuple[Path, bool]:
    """Create ``out`` (if needed) and a hidden staging folder in it; -> (staging, out was created)."""
    if out.exists() and not out.is_dir():
        raise SSMVOSError(f"--out {out} exists and is not a folder")
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=".ssmvos-export-", dir=out)), created
    except OSError as exc:
        raise SSMVOSError(f"cannot write to {out}: {exc.strerror or exc}") from None


def export_onnx(model: SSM, out_dir: str | os.PathLike, input_size: tuple[int, int], *,
                tolerance: float = VERIFY_TOLERANCE, size_source: str = "input_size") -> Path:
    """Export ``model`` for ``input_size`` (H, W) into ``out_dir``; returns the manifest's path.

    The graphs are written and checked in a staging folder inside ``out_dir`` and moved into
    place only when ONNX Runtime reproduces PyTorch within ``tolerance`` (relative error of
    every output, 2 objects and 1 object); otherwise SSMVOSError, and nothing is left.
    ``size_source`` names what set the input size in errors.
    """
    require("onnx", "onnxscript", "onnxruntime", purpose="ssmvos export --format onnx")
    height, width = (int(v) for v in input_size)
    check_input_size(height, width, model.config["keep_topk"], size_source)
    out = Path(out_dir)
    staging, created = _staging_dir(out)
    try:
        cpu = copy.deepcopy(model).to("cpu", memory_format=torch.contiguous_format).float().eval()
        fingerprint = model_fingerprint(cpu)
        metadata = {"ssmvos.format": FORMAT, "ssmvos.fingerprint": fingerprint,
                    "ssmvos.input_size": f"{height}x{width}"}
        ref_img, ref_mask, cur_img, prev_mask = verification_inputs(height, width)
        with torch.no_grad():
            want_ref = _ReferenceGraph(cpu)(ref_img, ref_mask)
            want = _SegmentGraph(cpu)(*want_ref, cur_img, prev_mask)
            _export_graph(_ReferenceGraph(cpu), (ref_img, ref_mask), "encode_reference",
                          staging / "encode_reference.onnx", metadata)
            _export_graph(_SegmentGraph(cpu), (*want_ref, cur_img, prev_mask), "segment",
                          staging / "segment.onnx", metadata)
        errors = _verify(staging, (ref_img, ref_mask, cur_img, prev_mask), want_ref, want, tolerance)
        digests = {role: file_sha256(staging / f"{role}.onnx") for role in GRAPHS}
        manifest = _manifest(cpu.config, fingerprint, height, width, errors, tolerance, digests)
        write_json_atomic(staging / MANIFEST, manifest).chmod(0o644)
        for name in ("encode_reference.onnx", "segment.onnx", MANIFEST):  # the manifest last
            os.replace(staging / name, out / name)
    except OSError as exc:
        raise SSMVOSError(f"cannot write the export to {out}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if created and not (out / MANIFEST).exists():
            shutil.rmtree(out, ignore_errors=True)
    return out / MANIFEST


def _verify(folder: Path, inputs: tuple[Tensor, ...], want_ref: tuple[Tensor, ...], want: Tensor,
            tolerance: float) -> dict[str, float]:
    """Run both graphs with ONNX Runtime on ``inputs`` (2 objects, then the first alone) and
    compare with PyTorch's outputs; SSMVOSError above ``tolerance``. -> worst error per output."""
    if not all(bool(t.isfinite().all()) for t in (*want_ref, want)):
        raise SSMVOSError("export check failed: PyTorch's outputs under these weights are not finite numbers (NaN "
                          "or infinity: a damaged or diverged checkpoint?); nothing was written")
    ref_img, ref_mask, cur_img, prev_mask = (t.numpy() for t in inputs)
    encode, segment = (open_session(folder / f"{role}.onnx", None) for role in GRAPHS)
    errors: dict[str, float] = {}

    def badness(error: float) -> float:  # a NaN is the worst error (plain max() would drop it)
        return math.inf if math.isnan(error) else error

    def worse(name: str, error: float) -> None:
        errors[name] = max(errors.get(name, 0.0), error, key=badness)

    for rows in (slice(0, 2), slice(0, 1)):
        got_ref = encode.run(None, {"ref_img": ref_img[rows], "ref_mask": ref_mask[rows]})
        for name, got, expected in zip(REFERENCE_OUTPUTS, got_ref, want_ref):
            worse(name, relative_error(got, expected[rows].numpy()))
        feeds = dict(zip(GRAPHS["segment"]["inputs"], [*got_ref, cur_img[rows], prev_mask[rows]]))
        worse("logits", relative_error(segment.run(None, feeds)[0], want[rows].numpy()))
    worst = max(errors, key=lambda name: badness(errors[name]))
    if not errors[worst] <= tolerance:
        raise SSMVOSError(f"export check failed: ONNX Runtime's {worst} differs from PyTorch's by a relative error of "
                          f"{errors[worst]:.3g} (tolerance {tolerance:g}); nothing was written")
    return errors


def _manifest(config: dict, fingerprint: str, height: int, width: int, errors: dict[str, float],
              tolerance: float, digests: dict[str, str]) -> dict[str, Any]:
    """The JSON that lets another runtime reproduce ssmvos's pipeline around the graphs."""
    import onnxruntime

    from .. import __version__

    n = "objects"
    h16, w16 = -(-height // 16), -(-width // 16)
    h32, w32 = -(-h16 // 2), -(-w16 // 2)
    k = config["keep_topk"]
    shapes = {
        "ref_img": [n, 3, height, width], "ref_mask": [n, 1, height, width],
        "cur_img": [n, 3, height, width], "prev_mask": [n, 1, height, width],
        "x5": [n, 2048, h32, w32], "x4": [n, 1024, h16, w16], "fg": [n, 1, h16 * w16],
        "group_feats": [n, 1024, h16, w16], "global_feats": [n, 1024 // k, h16, w16],
        "logits": [n, 2, height, width],
    }
    meaning = {
        "ref_img": "reference crop (the object's first frame), normalised RGB",
        "ref_mask": "reference mask crop, float32 in {0, 1}",
        "cur_img": "current-frame crop, normalised RGB",
        "prev_mask": "previous predicted mask crop (the given mask on the frame after the first), float32 in {0, 1}",
        "x5": "reference features, stride 32", "x4": "reference features, stride 16",
        "fg": "reference foreground at stride 16, flattened, {0, 1}",
        "group_feats": "grouped 1x1 conv of x4 (structure branch)",
        "global_feats": "shared 1x1 conv of x4 (structure branch)",
        "logits": "(background, foreground) logits of the crop",
    }

    def tensors(names: tuple[str, ...]) -> list[dict[str, Any]]:
        return [{"name": t, "shape": shapes[t], "dtype": "float32", "meaning": meaning[t]} for t in names]

    return {
        "format": FORMAT, "format_version": FORMAT_VERSION, "ssmvos_version": __version__,
        "exported_with": {"torch": torch.__version__.split("+")[0], "onnxruntime": onnxruntime.__version__,
                          "opset": OPSET},
        "model": {**config, "fingerprint_sha256": fingerprint},
        "input_size": [height, width],
        "dynamic_dimension": "objects (batch): any number of objects, one row each",
        "graphs": {role: {"file": f"{role}.onnx", "sha256": digests[role], "inputs": tensors(spec["inputs"]),
                          "outputs": tensors(spec["outputs"])}
                   for role, spec in GRAPHS.items()},
        "normalisation": {
            "images": "RGB uint8 H×W×3 -> float32 3×H×W: (value / 255 - mean) / std per channel",
            "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD),
            "masks": "float32 {0, 1}, 1×H×W",
        },
        "crop_rule": {
            "box": "OpenCV boundingRect (x, y, w, h) of the mask's nonzero pixels, grown by margin·w left and right "
                   "and margin·h top and bottom (in float), used only if wider and taller than min_box_size px, "
                   "then cast to int32 (truncation toward zero); an empty mask or a too-small box means the whole "
                   "frame. The reference is cropped around its given mask, every later frame around the object's "
                   "previous predicted mask",
            "margin": 0.5, "min_box_size": geometry.MIN_BOX_SIZE,
            "crop": "zero padding wherever the box leaves the frame",
            "resize": "OpenCV INTER_LINEAR to the input size (uint8 images stay uint8); masks re-thresholded at > 0.5",
            "paste_back": "softmax over the two logits, probabilities resized (bilinear, align_corners=False, "
                          "half-pixel centres) to the box size and placed into a zero frame",
            "next_mask": "foreground probability > background probability (ties to background), at frame size",
            "soft_mask_png": "uint8(foreground probability · 255), truncated",
        },
        "verification": {
            "inputs": "the bundled demo clip (DAVIS 2016 car-shadow) frames 0 and 1 cropped around the first-frame "
                      "mask, 2 objects (the second mirrored) and 1 object",
            "relative_error": errors, "tolerance": tolerance,
        },
    }


# --------------------------------------------------------------------------- loading
@dataclass
class OnnxExport:
    """A checked export folder: its manifest, fingerprint and input size."""

    folder: Path
    manifest: dict[str, Any]

    @property
    def fingerprint(self) -> str:
        return self.manifest["model"]["fingerprint_sha256"]

    @property
    def input_size(self) -> tuple[int, int]:
        return tuple(self.manifest["input_size"])


def read_export(folder: str | os.PathLike) -> OnnxExport:
    """Read and check an export folder's manifest (SSMVOSError naming the problem)."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not folder.is_dir():
        raise SSMVOSError(f"ONNX export folder not found: {folder}")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SSMVOSError(f"{folder} is not an ssmvos ONNX export: {MANIFEST} is missing (write one with "
                          "'ssmvos export --format onnx')") from None
    except (OSError, ValueError) as exc:
        raise SSMVOSError(f"cannot read {path}: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise SSMVOSError(f"{path} is not an ssmvos ONNX manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise SSMVOSError(f"{path} has format version {manifest.get('format_version')}, this ssmvos reads "
                          f"{FORMAT_VERSION}: export again")
    return OnnxExport(folder, manifest)


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_files(export: OnnxExport) -> None:
    """SSMVOSError unless both graph files are there and, where the manifest records their
    sha256 (exports since it does), unchanged: a damaged or truncated file is caught here,
    with a message naming it, instead of inside ONNX Runtime."""
    for role in GRAPHS:
        path = export.folder / f"{role}.onnx"
        if not path.is_file():
            raise SSMVOSError(f"ONNX file not found: {path}")
        want = export.manifest.get("graphs", {}).get(role, {}).get("sha256")
        try:
            got = file_sha256(path) if want else None
        except OSError as exc:
            raise SSMVOSError(f"cannot read {path}: {exc.strerror or exc}") from None
        if want and got != want:
            raise SSMVOSError(f"{path} is damaged or was changed after export (its sha256 differs from the one in "
                              f"{MANIFEST}): export again")


def open_session(path: Path, export: OnnxExport | None, options: Any = None, providers: list | None = None) -> Any:
    """An ONNX Runtime session for ``path``; with ``export``, the file's metadata and
    inputs must be those of that export's graph."""
    import onnxruntime as ort

    if not path.is_file():
        raise SSMVOSError(f"ONNX file not found: {path}")
    try:
        session = ort.InferenceSession(str(path), options, providers=providers or ["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own exception types for unreadable or invalid models
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise SSMVOSError(f"{path} is not a loadable ONNX model ({first})") from None
    if export is None:
        return session
    role = path.stem
    meta = session.get_modelmeta().custom_metadata_map
    if meta.get("ssmvos.format") != FORMAT or meta.get("ssmvos.graph") != role:
        raise SSMVOSError(f"{path} is not the {role} graph of an ssmvos export (another model's ONNX file?)")
    size = "x".join(map(str, export.input_size))
    if meta.get("ssmvos.fingerprint") != export.fingerprint or meta.get("ssmvos.input_size") != size:
        raise SSMVOSError(f"{path} does not belong to the export in {export.folder} (other weights or input size "
                          f"than its {MANIFEST}): export again")
    names = tuple(i.name for i in session.get_inputs())
    if names != GRAPHS[role]["inputs"]:
        raise SSMVOSError(f"{path} has inputs {', '.join(names)}, not those of ssmvos's {role} graph")
    return session


def export_for(model: SSM, input_size: tuple[int, int]) -> OnnxExport:
    """The export of ``model`` at ``input_size`` in the cache (``$SSMVOS_HOME/onnx``),
    written (and verified) the first time it is needed; a cache entry that cannot be read or
    whose files are damaged is exported again, with a note on stderr."""
    from ..weights import cache_dir

    fingerprint = model_fingerprint(model)
    folder = cache_dir() / "onnx" / f"{fingerprint[:16]}-{input_size[0]}x{input_size[1]}"
    note = f"exporting the network to ONNX for {input_size[0]}x{input_size[1]} into {folder} (once for these " \
           "weights and this size)"
    if (folder / MANIFEST).exists():
        try:
            export = read_export(folder)
            if export.fingerprint == fingerprint and export.input_size == tuple(input_size):
                check_files(export)
                return export
        except SSMVOSError as exc:
            note = f"the cached ONNX export in {folder} cannot be used ({exc}); exporting it again"
    print(note, file=sys.stderr)
    export_onnx(model, folder, input_size)
    return read_export(folder)
