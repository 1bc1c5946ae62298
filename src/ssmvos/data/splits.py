"""Split files: the original's JSON list of frame entries, loaded and validated.

An entry: ``image_path`` (absolute), ``mask_path``, ``video_name``, ``num_frames``,
``frame_index`` (0-based within the object's frames) and ``object_index`` (label value).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import SSMVOSError

ENTRY_KEYS = ("image_path", "mask_path", "video_name", "num_frames", "frame_index", "object_index")


@dataclass(frozen=True)
class ObjectTrack:
    """One object of one video: its frame entries in order (``entries[i]['frame_index'] == i``)."""

    video: str
    object_index: int
    entries: tuple[dict, ...]


def load_split(path: str | os.PathLike) -> list[dict]:
    """Read and validate a split file; raises SSMVOSError naming the file on any problem."""
    path = Path(path)
    if not path.is_file():
        raise SSMVOSError(f"split file not found: {path}")
    try:
        entries = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SSMVOSError(f"split file {path} is not valid JSON ({exc})") from None
    if not isinstance(entries, list):
        raise SSMVOSError(f"split file {path} must hold a JSON list of frame entries")
    if not entries:
        raise SSMVOSError(f"split file {path} holds no entries")
    for i, e in enumerate(entries):
        if not isinstance(e, dict) or any(k not in e for k in ENTRY_KEYS):
            missing = [k for k in ENTRY_KEYS if not isinstance(e, dict) or k not in e]
            raise SSMVOSError(f"split file {path}: entry {i} lacks {', '.join(missing)}")
    return entries


def group_tracks(entries: list[dict], source: str = "split") -> list[ObjectTrack]:
    """Group entries into per-object tracks, in first-appearance order of (video, object).

    Raises SSMVOSError if an object's frame indices are not 0, 1, 2, ... in order.
    """
    tracks: dict[tuple[str, int], list[dict]] = {}
    for e in entries:
        tracks.setdefault((e["video_name"], int(e["object_index"])), []).append(e)
    out = []
    for (video, obj), items in tracks.items():
        if [int(e["frame_index"]) for e in items] != list(range(len(items))):
            raise SSMVOSError(f"{source}: frames of video {video!r} object {obj} are not numbered 0..{len(items) - 1} in order")
        out.append(ObjectTrack(video, obj, tuple(items)))
    return out


def check_files(entries: list[dict], source: str = "split") -> None:
    """Raise SSMVOSError naming the first image or mask file of ``entries`` that does not exist."""
    seen: set[str] = set()
    for e in entries:
        for key in ("image_path", "mask_path"):
            p = e[key]
            if p in seen:
                continue
            seen.add(p)
            if not os.path.isfile(p):
                raise SSMVOSError(f"{source}: {key.replace('_path', '')} file not found: {p} (video {e['video_name']})")
