"""Split files: the original's JSON list of frame entries, read into typed entries once.

An entry: ``image_path`` (absolute), ``mask_path``, ``video_name``, ``num_frames``,
``frame_index`` (0-based within the object's frames) and ``object_index`` (label value).
:func:`load_split` checks every entry's fields and types when the file is read; the rest of
the package takes :class:`FrameEntry` objects (plain dicts with these keys are converted,
and checked, by :func:`as_entries`).
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from ..atomic import unsafe_folder_name, write_json_atomic
from ..errors import SSMVOSError


@dataclass(frozen=True)
class FrameEntry:
    """One frame of one object of one video, as a split file lists it."""

    image_path: str
    mask_path: str
    video_name: str
    num_frames: int
    frame_index: int
    object_index: int

    @classmethod
    def from_mapping(cls, item: object, where: str) -> "FrameEntry":
        """Check a JSON object's fields and types; ``where`` names it in errors ("split X: entry 3")."""
        if not isinstance(item, Mapping):
            raise SSMVOSError(f"{where} is a {type(item).__name__}, not an object with the entry fields")
        missing = [f.name for f in fields(cls) if f.name not in item]
        if missing:
            raise SSMVOSError(f"{where} lacks {', '.join(missing)}")
        for key in ("image_path", "mask_path", "video_name"):
            if not isinstance(item[key], str) or not item[key]:
                raise SSMVOSError(f"{where}: {key} must be a non-empty string, not {item[key]!r}")
        for key in ("num_frames", "frame_index", "object_index"):
            if not isinstance(item[key], int) or isinstance(item[key], bool):
                raise SSMVOSError(f"{where}: {key} must be an integer, not {item[key]!r}")
        entry = cls(**{f.name: item[f.name] for f in fields(cls)})
        if not 0 <= entry.frame_index < entry.num_frames:
            raise SSMVOSError(f"{where} ({entry.image_path}) has frame_index {entry.frame_index} outside "
                              f"0..num_frames-1 = 0..{entry.num_frames - 1}")
        if not 1 <= entry.object_index <= 255:
            raise SSMVOSError(f"{where}: object_index {entry.object_index} is not a label value 1..255")
        check_video_name(entry.video_name, where)
        return entry

    def to_dict(self) -> dict:
        return asdict(self)


def check_video_name(name: str, where: str) -> None:
    """Refuse a video_name that is not one plain folder name: evaluate writes under
    ``<save-dir>/<video_name>`` (``../../x`` or ``/x`` would write outside it)."""
    problem = unsafe_folder_name(name)
    if problem is not None:
        raise SSMVOSError(f"{where}: video_name: {problem}; outputs are written in a folder of that name")


def as_entries(items: Iterable[FrameEntry | Mapping], source: str = "split") -> list[FrameEntry]:
    """Entries as :class:`FrameEntry`; mappings are checked and converted."""
    return [e if isinstance(e, FrameEntry) else FrameEntry.from_mapping(e, f"{source}: entry {i}")
            for i, e in enumerate(items)]


def load_split(path: str | os.PathLike) -> list[FrameEntry]:
    """Read and check a split file; raises SSMVOSError naming the file on any problem."""
    path = Path(path)
    if not path.is_file():
        raise SSMVOSError(f"split file not found: {path}")
    try:
        items = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SSMVOSError(f"split file {path} is not valid JSON ({exc})") from None
    except OSError as exc:
        raise SSMVOSError(f"cannot read split file {path}: {exc.strerror or exc}") from None
    if not isinstance(items, list):
        raise SSMVOSError(f"split file {path} must hold a JSON list of frame entries")
    if not items:
        raise SSMVOSError(f"split file {path} holds no entries")
    return as_entries(items, f"split file {path}")


def write_split(path: str | os.PathLike, entries: Iterable[FrameEntry | Mapping]) -> None:
    """Write a split file atomically (temporary file + rename), indented like the original."""
    write_json_atomic(path, [e.to_dict() if isinstance(e, FrameEntry) else dict(e) for e in entries], indent=4)


@dataclass(frozen=True)
class ObjectTrack:
    """One object of one video: its frame entries in order (``entries[i].frame_index == i``)."""

    video: str
    object_index: int
    entries: tuple[FrameEntry, ...]


def group_tracks(entries: list[FrameEntry], source: str = "split") -> list[ObjectTrack]:
    """Group entries into per-object tracks, in first-appearance order of (video, object).

    Raises SSMVOSError if an object's frame indices are not 0, 1, 2, ... in order.
    """
    tracks: dict[tuple[str, int], list[FrameEntry]] = {}
    for e in entries:
        tracks.setdefault((e.video_name, e.object_index), []).append(e)
    out = []
    for (video, obj), items in tracks.items():
        if [e.frame_index for e in items] != list(range(len(items))):
            raise SSMVOSError(f"{source}: frames of video {video!r} object {obj} are not numbered "
                              f"0..{len(items) - 1} in order")
        out.append(ObjectTrack(video, obj, tuple(items)))
    return out


def check_track_order(entries: list[FrameEntry], source: str = "split") -> None:
    """Require each object's frames to be consecutive entries numbered 0..num_frames-1.

    That is the layout the original relies on (and the indexer writes): the frames of the
    object of entry ``i`` are entries ``i - frame_index ... i - frame_index + num_frames - 1``.
    Raises SSMVOSError naming the first entry that breaks it.
    """
    if not entries:
        raise SSMVOSError(f"{source} holds no entries")
    prev: FrameEntry | None = None
    for i, e in enumerate(entries):
        if e.frame_index == 0:
            if prev is not None and prev.frame_index != prev.num_frames - 1:
                raise SSMVOSError(f"{source}: entry {i - 1} ({prev.image_path}) ends its object track at "
                                  f"frame {prev.frame_index} of {prev.num_frames}; a track's frames "
                                  "must be consecutive entries")
        elif (prev is None or prev.frame_index != e.frame_index - 1 or prev.num_frames != e.num_frames
              or prev.video_name != e.video_name or prev.object_index != e.object_index):
            raise SSMVOSError(f"{source}: entry {i} ({e.image_path}, video {e.video_name!r}, object "
                              f"{e.object_index}, frame {e.frame_index}) does not follow frame {e.frame_index - 1} "
                              "of the same object; a track's frames must be consecutive entries")
        prev = e
    assert prev is not None
    if prev.frame_index != prev.num_frames - 1:
        raise SSMVOSError(f"{source}: the last entry ({prev.image_path}) is frame {prev.frame_index} "
                          f"of {prev.num_frames}; its object track is incomplete")


def check_files(entries: list[FrameEntry], source: str = "split") -> None:
    """Raise SSMVOSError naming the first image or mask file of ``entries`` that does not exist."""
    seen: set[str] = set()
    for e in entries:
        for key, p in (("image", e.image_path), ("mask", e.mask_path)):
            if p in seen:
                continue
            seen.add(p)
            if not os.path.isfile(p):
                raise SSMVOSError(f"{source}: {key} file not found: {p} (video {e.video_name})")
