"""The session file: the user's masks of one video, as ``ssmvos app`` saves them and
``ssmvos segment --session`` and the app's *Load session* read them.

Versioned JSON (docs/design.md)::

    {"version": 1,
     "video": {"name": ..., "num_frames": N, "height": H, "width": W},
     "masks": {"<frame>": "<base64 palette PNG>", ...},
     "objects": {"<id>": {"name": ...}, ...}}

Files of the first app release (``{"format": "ssmvos-session/1", "video": NAME, "frames":
N, "width": W, "height": H, "masks": {...}}``) are read too. A file is parsed and checked
whole, straight into masks (no temporary files), before anything uses it; every error
names the file and the field or frame. A session made for another video (another frame
count or size) is refused by :meth:`SessionFile.check_video`.
"""
from __future__ import annotations

import base64
import binascii
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import SSMVOSError
from ..numbers import is_number
from .labels import MAX_PIXELS, LabelMap, encode_label_png, read_object_labels
from .reading import read_user_file

SESSION_VERSION = 1
#: The ``format`` of session files written before the file was versioned.
OLD_FORMAT = "ssmvos-session/1"
#: Frame numbers longer than this are refused before they are turned into numbers.
_MAX_DIGITS = 9


@dataclass(frozen=True)
class SessionVideo:
    """The video a session was made for: its name (what was opened), frame count and size."""

    name: str
    num_frames: int
    height: int
    width: int


@dataclass
class SessionFile:
    """A parsed, checked session file. ``masks``: frame -> H×W uint8 object ids (0 =
    background); ``objects``: object id -> name; ``source``: the file, for messages."""

    video: SessionVideo
    masks: dict[int, np.ndarray]
    objects: dict[int, str] = field(default_factory=dict)
    source: str = "the session file"  # "session file PATH" when read from a file
    path: Path | None = None  # the file it was read from, if any

    def mask_source(self, frame: int) -> str:
        """How errors name the mask of ``frame``."""
        return f"the mask of frame {frame} in {self.source}"

    def label_maps(self) -> list[tuple[int, LabelMap]]:
        """(frame, LabelMap) pairs, in frame order, for :func:`ssmvos.inference.segment.segment_video`."""
        return [(frame, LabelMap(self.masks[frame], self.mask_source(frame))) for frame in sorted(self.masks)]

    def check_video(self, num_frames: int | None, height: int, width: int) -> None:
        """Refuse the session for a video of another frame count (unless ``num_frames`` is
        None: a live source) or size."""
        v = self.video
        made = f"{self.source} was made for a video of {v.num_frames} frames of {v.width}x{v.height}"
        if (v.height, v.width) != (height, width):
            raise SSMVOSError(f"{made}, but the frames are {width}x{height}: it belongs to another video")
        if num_frames is not None and v.num_frames != num_frames:
            raise SSMVOSError(f"{made}, but the video has {num_frames} frames: it belongs to another video")


# --------------------------------------------------------------------------- writing
def session_dict(video: SessionVideo, masks: dict[int, np.ndarray], objects: dict[int, str] | None = None) -> dict:
    """The JSON object of a session file: ``masks`` frame -> H×W uint8 ids (empty maps are left out)."""
    for frame, labels in masks.items():
        if labels.shape != (video.height, video.width):
            raise SSMVOSError(f"the mask of frame {frame} is {labels.shape[1]}x{labels.shape[0]}, the video is "
                              f"{video.width}x{video.height}")
    ids = sorted({int(v) for labels in masks.values() for v in np.unique(labels) if v} | set(objects or {}))
    names = objects or {}
    return {"version": SESSION_VERSION,
            "video": {"name": video.name, "num_frames": video.num_frames, "height": video.height,
                      "width": video.width},
            "masks": {str(f): base64.b64encode(encode_label_png(masks[f])).decode() for f in sorted(masks)
                      if masks[f].any()},
            "objects": {str(i): {"name": names.get(i, f"object {i}")} for i in ids}}


def encode_session(video: SessionVideo, masks: dict[int, np.ndarray], objects: dict[int, str] | None = None) -> bytes:
    """A session file's bytes (UTF-8 JSON); see :func:`session_dict`."""
    return json.dumps(session_dict(video, masks, objects), indent=1).encode()


# --------------------------------------------------------------------------- reading
def _whole(value: object, where: str, source: str) -> int:
    """A JSON whole number > 0 (not a bool, not a float)."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise SSMVOSError(f"{source}: {where} must be a whole number > 0, not {json.dumps(value)[:40]}")
    return value


def _frame_number(key: str, source: str) -> int:
    if not is_number(key):
        shown = key if len(key) <= 20 else f"{key[:12]}... ({len(key)} characters)"
        raise SSMVOSError(f"{source}: mask key {shown!r} is not a frame number (0, 1, 2, ...)")
    if len(key) > _MAX_DIGITS:
        raise SSMVOSError(f"{source}: mask key {key[:12]}... ({len(key)} digits) is not a frame number of any video")
    return int(key)


def _video(data: dict, source: str) -> SessionVideo:
    if data.get("version") is not None:
        if data["version"] != SESSION_VERSION:
            raise SSMVOSError(f"{source}: a session file of version {json.dumps(data['version'])[:20]}; this "
                              f"ssmvos reads version {SESSION_VERSION}")
        video = data.get("video")
        if not isinstance(video, dict):
            raise SSMVOSError(f"{source}: 'video' must be an object with name, num_frames, height and width")
        name = video.get("name", "")
        return SessionVideo(name if isinstance(name, str) else str(name),
                            _whole(video.get("num_frames"), "video.num_frames", source),
                            _whole(video.get("height"), "video.height", source),
                            _whole(video.get("width"), "video.width", source))
    if data.get("format") == OLD_FORMAT:
        name = data.get("video", "")
        return SessionVideo(name if isinstance(name, str) else str(name),
                            _whole(data.get("frames"), "frames", source), _whole(data.get("height"), "height", source),
                            _whole(data.get("width"), "width", source))
    raise SSMVOSError(f"{source}: not an ssmvos session file (it has no \"version\": {SESSION_VERSION})")


def _objects(data: dict, source: str) -> dict[int, str]:
    objects = data.get("objects", {})
    if not isinstance(objects, dict):
        raise SSMVOSError(f"{source}: 'objects' must be an object of id -> {{\"name\": ...}}")
    out = {}
    for key, value in objects.items():
        if not (is_number(key) and len(key) <= 3 and 1 <= int(key) <= 254):
            raise SSMVOSError(f"{source}: objects key {key[:20]!r} is not an object id (1..254)")
        name = value.get("name") if isinstance(value, dict) else None
        if not isinstance(name, str):
            raise SSMVOSError(f"{source}: objects.{key}.name must be a string")
        out[int(key)] = name
    return out


def parse_session(data: object, source: str = "the session file", *,
                  video_of: tuple[int | None, int, int] | None = None) -> SessionFile:
    """A session file's decoded JSON -> :class:`SessionFile`, every field and mask checked
    (``source`` names the file in errors: "session file PATH"). Nothing is returned unless all of it is good.

    ``video_of`` (num_frames, height, width): the video the session must belong to, checked
    (:meth:`SessionFile.check_video`) before any mask is decoded. Each mask's size is checked
    against the session's video from its PNG header, before its pixels are decoded.
    """
    if not isinstance(data, dict):
        raise SSMVOSError(f"{source}: not an ssmvos session file (it is not a JSON object)")
    video = _video(data, source)
    if video.height * video.width > MAX_PIXELS:
        raise SSMVOSError(f"{source}: made for frames of {video.width}x{video.height}, more than any video "
                          f"({MAX_PIXELS} pixels at most)")
    masks_in = data.get("masks", {})
    if not isinstance(masks_in, dict):
        raise SSMVOSError(f"{source}: 'masks' must be an object of frame -> base64 PNG")
    session = SessionFile(video, {}, _objects(data, source), source)
    if video_of is not None:
        session.check_video(*video_of)
    for key, value in masks_in.items():
        frame = _frame_number(key, source)
        if frame in session.masks:
            raise SSMVOSError(f"{source}: two masks for frame {frame} (one under a key with leading zeros)")
        if frame >= video.num_frames:
            raise SSMVOSError(f"{source}: mask for frame {frame}, but the video has {video.num_frames} frames "
                              f"(0..{video.num_frames - 1})")
        try:
            raw = base64.b64decode(value, validate=True) if isinstance(value, str) else None
        except (binascii.Error, ValueError):
            raw = None
        if not raw:
            raise SSMVOSError(f"{source}: the mask of frame {frame} is not base64 PNG data")
        session.masks[frame] = read_object_labels(raw, session.mask_source(frame), size=(video.height, video.width),
                                                  size_of="the session's video")
    return session


def read_session_file(path: str | os.PathLike) -> SessionFile:
    """Read and check a session file (see :func:`parse_session`); errors name ``path``."""
    path = Path(path)
    raw = read_user_file(path, "session file", "a session file")
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise SSMVOSError(f"session file {path} is not UTF-8 text (not a session file?)") from None
    except json.JSONDecodeError as exc:
        raise SSMVOSError(f"session file {path} is not valid JSON (line {exc.lineno}: {exc.msg})") from None
    except RecursionError:
        raise SSMVOSError(f"session file {path} nests too deeply to be a session file") from None
    session = parse_session(data, f"session file {path}")
    session.path = path
    return session


__all__ = ["SESSION_VERSION", "SessionVideo", "SessionFile", "session_dict", "encode_session", "parse_session",
           "read_session_file"]
