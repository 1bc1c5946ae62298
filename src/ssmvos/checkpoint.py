"""Checkpoint files: strict, self-explaining loading and atomic saving.

Formats read (always with ``torch.load(..., weights_only=True)``):
* the published/original format ``{'model_dict': state_dict, 'global_step': int}``
  (saved by torch 1.4, legacy serialisation), plus the extra training states that
  ``ssmvos train`` adds;
* a bare state dict;
* keys prefixed with ``module.`` (saved from a DataParallel/DDP wrapper).
"""
from __future__ import annotations

import io
import os
import pickle
import re
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .atomic import atomic_path
from .errors import SSMVOSError


@dataclass
class Checkpoint:
    """What a checkpoint file holds: the model's state dict, its step, and anything else."""

    model_state: dict[str, Tensor]
    global_step: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def checkpoint_kind(head: bytes) -> str | None:
    """None when ``head`` (a file's first bytes) may start a PyTorch checkpoint (a zip archive,
    as torch.save writes, or a pickle, as torch < 1.6 wrote); else what the file looks like."""
    if head.startswith(b"PK\x03\x04") or head.startswith(b"\x80"):
        return None
    if not head:
        return "empty"
    for signature, kind in ((b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"{", "JSON text"),
                            (b"<", "an HTML or XML page (a web page instead of the file?)")):
        if head.startswith(signature):
            return kind
    if all(32 <= b < 127 or b in b"\t\r\n" for b in head):
        return "a text file"
    return "neither a zip archive (torch.save) nor a pickle"


def read_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read a checkpoint file without building a model. Raises SSMVOSError naming the file."""
    path = Path(path)
    if not path.exists():
        raise SSMVOSError(f"checkpoint not found: {path}")
    if path.is_dir():
        raise SSMVOSError(f"checkpoint path is a directory, not a file: {path}")
    try:
        with open(path, "rb") as f:
            head = f.read(8)
        kind = checkpoint_kind(head)
        if kind is not None:
            raise SSMVOSError(f"{path} is not a PyTorch checkpoint file: it is {kind}")
        with warnings.catch_warnings():  # torch's warnings about old files are not the user's to read
            warnings.simplefilter("ignore")
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, zipfile.BadZipFile, AttributeError,
            KeyError, IndexError, TypeError, UnicodeDecodeError) as exc:
        text = str(exc)
        found = re.search(r"Unsupported global: GLOBAL (\S+)", text)
        if found:
            # PyTorch's message goes on to explain how to switch the protection off: not ours to relay
            raise SSMVOSError(f"{path} is not a plain checkpoint: it holds Python objects ({found.group(1)}) besides "
                              "tensors, which ssmvos never unpickles") from None
        reason = re.search(r"WeightsUnpickler error: ([^\n]+)", text)
        first = reason.group(1) if reason else text.strip().splitlines()[0] if text.strip() else type(exc).__name__
        raise SSMVOSError(f"{path} is damaged or not a PyTorch checkpoint file ({first[:160]})") from None
    except OSError as exc:
        raise SSMVOSError(f"cannot read checkpoint {path}: {exc.strerror or exc}") from None
    if not isinstance(obj, dict):
        raise SSMVOSError(f"{path} is not an SSM checkpoint: it holds a {type(obj).__name__}, not a dict")
    if "model_dict" in obj:
        state, step = obj["model_dict"], obj.get("global_step")
        extra = {k: v for k, v in obj.items() if k not in ("model_dict", "global_step")}
    else:
        state, step, extra = obj, None, {}
    if not isinstance(state, dict) or not state or not all(isinstance(v, Tensor) for v in state.values()):
        raise SSMVOSError(f"{path} is not an SSM checkpoint: no state dict of tensors inside")
    if all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return Checkpoint(dict(state), int(step) if step is not None else None, extra)


def infer_config(state: dict[str, Tensor]) -> dict[str, Any]:
    """Encoder and keep_topk implied by a state dict's shapes (matching has no weights)."""
    config: dict[str, Any] = {}
    w = state.get("pixel_corr.self_structure.global_conv.0.weight")
    if w is not None and w.ndim == 4 and w.shape[0] > 0:
        config["keep_topk"] = w.shape[1] // w.shape[0]
    blocks = {k.split(".")[2] for k in state if k.startswith("encoder.layer3.")}
    if blocks:
        config["encoder"] = "resnet101" if len(blocks) > 6 else "resnet50"
    return config


def check_state_dict(model: nn.Module, state: dict[str, Tensor], source: str) -> None:
    """Raise one SSMVOSError listing missing keys, unexpected keys and shape mismatches."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    mismatched = [
        f"{k} (checkpoint {tuple(state[k].shape)}, model {tuple(v.shape)})"
        for k, v in expected.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    if not (missing or unexpected or mismatched):
        return

    def names(items: list[str]) -> str:
        shown = ", ".join(items[:8])
        return shown + (f", ... ({len(items) - 8} more)" if len(items) > 8 else "")

    parts = []
    if missing:
        parts.append(f"missing keys: {names(missing)}")
    if unexpected:
        parts.append(f"unexpected keys: {names(unexpected)}")
    if mismatched:
        parts.append(f"shape mismatches: {names(mismatched)}")
    raise SSMVOSError(f"{source} does not fit the network: " + "; ".join(parts))


#: The constructor arguments of ``SSM`` a checkpoint may record under ``model_config``.
CONFIG_KEYS = ("encoder", "matching", "keep_topk")


def recorded_config(ckpt: Checkpoint, source: str) -> dict[str, Any]:
    """The ``model_config`` a checkpoint records (``ssmvos train`` writes it); {} for the
    original's checkpoints, which record none."""
    config = ckpt.extra.get("model_config")
    if config is None:
        return {}
    if not isinstance(config, dict) or any(k not in CONFIG_KEYS for k in config):
        raise SSMVOSError(f"{source}: its model_config is not a dict of {', '.join(CONFIG_KEYS)}")
    return dict(config)


def model_config_for(ckpt: Checkpoint, source: str, **given: Any) -> dict[str, Any]:
    """The SSM configuration a checkpoint loads as: its recorded ``model_config``, else what
    its weight shapes imply (encoder, keep_topk; matching has no weights, so 'conv', the
    original's default). ``given`` settings (None = not given) must agree with the record.
    """
    recorded = recorded_config(ckpt, source)
    given = {k: v for k, v in given.items() if v is not None}
    for key, value in given.items():
        if key in recorded and recorded[key] != value:
            flag = "--" + key.replace("_", "-")
            raise SSMVOSError(f"{source} was trained with {flag} {recorded[key]}; {flag} {value} contradicts it "
                              f"(leave {flag} out to use the checkpoint's)")
    return {**infer_config(ckpt.model_state), **recorded, **given}


def load_checkpoint(path: str | os.PathLike, model: nn.Module | None = None, **config: Any) -> nn.Module:
    """Build (or fill) an SSM network from a checkpoint file.

    With no ``model``, an ``SSM`` is built as the checkpoint records (``model_config``,
    written by ``ssmvos train``) or, for the original's checkpoints, as its weight shapes
    imply; ``config`` (encoder, matching, keep_topk; None = unset) may only repeat what a
    checkpoint records. Returns the model in eval mode.
    """
    ckpt = read_checkpoint(path)
    if model is None:
        from .model import SSM
        from .model.ssm import topk_problem

        settings = model_config_for(ckpt, str(path), **config)
        problem = topk_problem(settings.get("keep_topk", 32))
        if problem:
            raise SSMVOSError(f"{path} cannot configure the network: {problem}")
        model = SSM(**settings)
    check_state_dict(model, ckpt.model_state, str(path))
    model.load_state_dict(ckpt.model_state, strict=True)
    return model.eval()


class _WriteRecorder(io.RawIOBase):
    """A file for ``torch.save`` that keeps the OSError of a failed write: torch reports it
    as a RuntimeError without the reason ('unexpected pos ...')."""

    def __init__(self, file: io.BufferedWriter):
        super().__init__()
        self.file = file
        self.error: OSError | None = None

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        try:
            return self.file.write(data)
        except OSError as exc:
            self.error = exc
            raise


def save_checkpoint(path: str | os.PathLike, model_state: dict[str, Tensor], global_step: int, **extra: Any) -> Path:
    """Write ``{'model_dict', 'global_step', **extra}`` atomically (temporary file + rename).

    A process killed mid-write leaves the previous file (or none), never a truncated one; a
    failed write (no space, ...) is one SSMVOSError naming the file and the reason.
    """
    payload = {"model_dict": model_state, "global_step": int(global_step), **extra}
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            recorder = _WriteRecorder(f)
            try:
                torch.save(payload, recorder)
            except RuntimeError:
                if recorder.error is None:
                    raise
                raise recorder.error from None
            f.flush()
            os.fsync(f.fileno())
    return Path(path)
