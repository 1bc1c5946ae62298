"""Published SSM checkpoints and ImageNet encoder weights: where they live, fetching, caching.

Environment variables (read when a function is called, never at import time):

* ``SSMVOS_HOME``: the cache folder (default ``~/.cache/ssmvos``); published
  checkpoints go to ``<cache>/checkpoints/ssm_<name>.pt``, ImageNet weights to
  ``<cache>/hub/``.
* ``SSMVOS_WEIGHTS_URL``: a base URL to fetch ``ssm_<name>.pt`` from instead of
  Dropbox (a mirror, or a local server in tests).
* ``SSMVOS_IMAGENET_URL``: a base URL to fetch the torchvision ImageNet files
  (``resnet50-0676ba61.pth``, ...) from instead of download.pytorch.org.

Nothing downloads in a constructor: building ``SSM()`` never touches the network.
"""
from __future__ import annotations

import contextlib
import os
import pickle
import sys
import urllib.error
import zipfile
from pathlib import Path

from typing import TYPE_CHECKING

from .errors import SSMVOSError
from .fetch import describe_network_error, download, file_name, mirrored
from .pretrained import PRETRAINED

if TYPE_CHECKING:  # torch is imported where it is used: listing the names needs none of it
    import torch
    from torch import Tensor, nn

#: Published SSM checkpoints of the original project: name -> share link (from the cards in
#: :mod:`ssmvos.pretrained`, which hold the rest of each model's facts).
PUBLISHED: dict[str, str] = {name: card.url for name, card in PRETRAINED.items()}

#: torchvision's ImageNet weights (the file name carries the sha256 prefix torch.hub checks).
IMAGENET_URLS: dict[str, str] = {
    "resnet50": "https://download.pytorch.org/models/resnet50-0676ba61.pth",
    "resnet101": "https://download.pytorch.org/models/resnet101-63fe2227.pth",
}

HOME_ENV = "SSMVOS_HOME"
WEIGHTS_URL_ENV = "SSMVOS_WEIGHTS_URL"
IMAGENET_URL_ENV = "SSMVOS_IMAGENET_URL"


def cache_dir() -> Path:
    """``$SSMVOS_HOME``, or ``~/.cache/ssmvos``."""
    home = os.environ.get(HOME_ENV)
    return Path(home).expanduser() if home else Path.home() / ".cache" / "ssmvos"


def _check_name(name: str) -> None:
    if name not in PUBLISHED:
        raise SSMVOSError(f"unknown published checkpoint {name!r}; choose one of {', '.join(PUBLISHED)}")


def published_path(name: str) -> Path:
    """Where the published checkpoint ``name`` is cached: ``<cache>/checkpoints/ssm_<name>.pt``."""
    _check_name(name)
    return cache_dir() / "checkpoints" / file_name(PUBLISHED[name])


def published_url(name: str, base_url: str | None = None) -> str:
    """The address ``name`` is fetched from: ``base_url`` (or ``$SSMVOS_WEIGHTS_URL``)
    followed by the file name, else the share link with ``?dl=1`` (a direct download)."""
    _check_name(name)
    return mirrored(PRETRAINED[name].download_url, WEIGHTS_URL_ENV, base_url)


def _expected_network() -> nn.Module:
    """The default SSM (resnet50, conv, keep_topk 32), built on the meta device: shapes
    only, no memory and no downloads. Published checkpoints must fit it exactly."""
    import torch

    from .model import SSM

    with torch.device("meta"):
        return SSM()


def verify_ssm_checkpoint(path: Path, source: str) -> None:
    """Raise SSMVOSError unless ``path`` reads as a checkpoint of the default SSM network."""
    with open(path, "rb") as f:
        head = f.read(64)
    # torch.save writes a zip archive; the published files (torch 1.4) start with a pickle.
    if not (head.startswith(b"PK\x03\x04") or head.startswith(b"\x80")):
        shown = head[:24].decode("ascii", "replace").encode("unicode_escape").decode("ascii")
        raise SSMVOSError(f"the file downloaded from {source} is not a PyTorch checkpoint: it starts with "
                          f"'{shown}' (a web page instead of the file?)")
    try:
        from .checkpoint import read_checkpoint

        ckpt = read_checkpoint(path)
    except SSMVOSError as exc:
        reason = str(exc).replace(f"{path} ", "it ").replace(str(path), "it")
        raise SSMVOSError(f"the file downloaded from {source} is not a valid SSM checkpoint: {reason}") from None
    from .checkpoint import check_state_dict

    check_state_dict(_expected_network(), ckpt.model_state, f"the file downloaded from {source}")


def fetch_published(name: str, *, force: bool = False, progress: bool = True, base_url: str | None = None,
                    check_cached: bool = False) -> Path:
    """The cached published checkpoint ``name`` (davis16, davis17, youtube), downloading it
    first when it is missing (or when ``force``). ``check_cached`` (``ssmvos download``): a
    cached copy that no longer reads as a checkpoint is downloaded again (loading it for
    that costs a second; the commands that only use it report a damaged file when they load it).

    The download goes to a temporary file that must load as a checkpoint of the default
    SSM network before it is moved into the cache; a failed, partial or invalid download
    leaves nothing behind (and an existing cached file untouched).
    """
    dest = published_path(name)
    if dest.is_file() and not force and not check_cached:
        return dest
    if dest.is_file() and not force:
        from .checkpoint import read_checkpoint

        try:
            read_checkpoint(dest)
            return dest
        except SSMVOSError as exc:  # a copy damaged after it was cached: fetched again
            print(f"note: the cached {name} is unreadable ({str(exc).replace(str(dest), 'it')}); downloading it "
                  "again", file=sys.stderr)
    url = published_url(name, base_url)
    manual = PRETRAINED[name].download_url
    hint = (f"download it by hand from {manual} and pass the file's path with --weights "
            f"(segment) or --resume (evaluate, train), or save it as {dest}")
    try:
        download(url, dest, progress=progress, resume=False, keep_partial=False,
                 verify=lambda p: verify_ssm_checkpoint(p, url), hint=hint)
    except SSMVOSError as exc:
        message = str(exc)
        raise SSMVOSError(message if hint in message else f"{message}; {hint}") from None
    return dest


def resolve_weights(name_or_path: str | os.PathLike, *, progress: bool = True) -> Path:
    """A checkpoint file to load: an existing path is returned as is; a published name
    (davis16, davis17, youtube) gives its cached file, downloaded if missing."""
    if not str(name_or_path).strip():
        raise SSMVOSError("the weights are given as an empty name: give a checkpoint file or one of "
                          f"{', '.join(PUBLISHED)}")
    path = Path(name_or_path).expanduser()
    if path.exists():
        return path
    if str(name_or_path) in PUBLISHED:
        return fetch_published(str(name_or_path), progress=progress)
    raise SSMVOSError(
        f"{name_or_path}: no such checkpoint file, and not the name of a published checkpoint "
        f"({', '.join(PUBLISHED)})"
    )


def load_model(weights: str | os.PathLike = "davis17", *, input_size: tuple[int, int] | None = None,
               encoder: str | None = None, matching: str | None = None, keep_topk: int | None = None,
               size_source: str = "input_size", progress: bool = True) -> nn.Module:
    """An SSM network from a published model name or a checkpoint path, in eval mode.

    With ``input_size`` (H, W), the size is checked first, before anything is downloaded
    (the rules every network shares; the model's own keep_topk is checked when the model
    runs, :meth:`ssmvos.inference.engine.Engine.for_model`). encoder/matching/keep_topk
    (None: what the checkpoint records or implies) may only repeat what a checkpoint
    records. ``size_source`` names what set the size in errors (a command passes its flags).
    """
    from .checkpoint import load_checkpoint
    from .model.ssm import check_input_size

    if input_size is not None:
        check_input_size(*input_size, keep_topk, size_source)
    return load_checkpoint(resolve_weights(weights, progress=progress), encoder=encoder, matching=matching,
                           keep_topk=keep_topk)


# ---------------------------------------------------------------------------------------
# ImageNet initialisation of the encoder


def imagenet_url(arch: str, base_url: str | None = None) -> str:
    """Where torchvision's ImageNet weights for ``arch`` come from (``base_url`` or
    ``$SSMVOS_IMAGENET_URL`` replaces download.pytorch.org, keeping the file name)."""
    if arch not in IMAGENET_URLS:
        raise SSMVOSError(f"no ImageNet weights for encoder {arch!r}; choose one of {', '.join(IMAGENET_URLS)}")
    return mirrored(IMAGENET_URLS[arch], IMAGENET_URL_ENV, base_url)


def imagenet_state_dict(arch: str, *, url: str | None = None, progress: bool = True) -> dict[str, Tensor]:
    """torchvision's 3-channel ImageNet state dict for ``arch`` (resnet50, resnet101),
    cached under ``<cache>/hub`` and checked against the sha256 prefix in its file name."""
    import torch

    url = url or imagenet_url(arch)
    model_dir = cache_dir() / "hub"
    cached = model_dir / file_name(url)
    fallback = "training can start from random weights instead with the train flag --no-pretrained"
    try:
        # torch.hub prints its "Downloading" notice on stdout; keep stdout for results.
        with contextlib.redirect_stdout(sys.stderr):
            state = torch.hub.load_state_dict_from_url(
                url, model_dir=str(model_dir), map_location="cpu", progress=progress and sys.stderr.isatty(),
                check_hash=True, weights_only=True)
    except urllib.error.URLError as exc:
        raise SSMVOSError(f"ImageNet weights could not be fetched from {url} ({describe_network_error(exc)}); "
                          f"{fallback}") from None
    except RuntimeError as exc:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "invalid hash" in text:
            raise SSMVOSError(f"ImageNet weights could not be fetched from {url}: the file does not match "
                              f"its published checksum ({text}); {fallback}") from None
        raise SSMVOSError(f"{cached} is not a readable ImageNet weight file ({text}); delete it to download "
                          f"it again, or {fallback}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, zipfile.BadZipFile) as exc:
        raise SSMVOSError(f"{cached} is not a readable ImageNet weight file ({type(exc).__name__}); delete it to "
                          f"download it again, or {fallback}") from None
    except OSError as exc:
        raise SSMVOSError(f"ImageNet weights could not be fetched from {url} ({exc.strerror or exc}); {fallback}") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise SSMVOSError(f"{cached} is not a state dict of tensors; delete it, or {fallback}")
    return state


def init_encoder_from_imagenet(model: nn.Module, generator: torch.Generator | None = None, *,
                               url: str | None = None, progress: bool = True) -> nn.Module:
    """Load ImageNet weights into ``model.encoder`` (an SSM's ResNet), strictly.

    conv1 keeps the 3 RGB input channels and gets a 4th (mask) channel drawn from
    N(0, 1e-4) with ``generator``; the classifier is dropped. Returns ``model``.
    """
    from .checkpoint import check_state_dict
    from .model import adapt_conv1_to_rgbm

    arch = model.config["encoder"]
    url = url or imagenet_url(arch)
    state = imagenet_state_dict(arch, url=url, progress=progress)
    try:
        adapted = adapt_conv1_to_rgbm(state, generator)
    except (KeyError, ValueError) as exc:
        raise SSMVOSError(f"the ImageNet weights from {url} are not a torchvision ResNet state dict ({exc})") from None
    check_state_dict(model.encoder, adapted, f"the ImageNet weights from {url}")
    model.encoder.load_state_dict(adapted, strict=True)
    return model


__all__ = [
    "IMAGENET_URLS",
    "PUBLISHED",
    "cache_dir",
    "fetch_published",
    "imagenet_state_dict",
    "imagenet_url",
    "init_encoder_from_imagenet",
    "load_model",
    "published_path",
    "published_url",
    "resolve_weights",
    "verify_ssm_checkpoint",
]
