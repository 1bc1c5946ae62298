"""YouTube-VOS-style ``meta.json`` contents derived from annotation PNGs, for datasets in the
YouTube-VOS layout that ship none (MOSE: ``train/`` and ``valid/`` with ``JPEGImages/<video>``
and ``Annotations/<video>``).

An object's frames run from the first annotation where it occurs to the end of the video:
for a split annotated on its frames (train), the annotated frames; for a split with
first-appearance annotations only (valid), the video's frames (``JPEGImages``). Frames where
the object is absent stay in its list (MOSE's objects disappear and come back), so a
hold-out evaluated from a train split is not told when that happens. Every annotation PNG
of the split is decoded once (videos in parallel processes).
"""
from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from ..errors import SSMVOSError
from ..io.frames.files import frame_key
from ..scoring.labels import annotation_frames, label_ids, read_label_png
from ..scoring.score import default_workers, ignore_interrupts


def _video_objects(label_dir: Path) -> tuple[list[str], dict[int, str]]:
    """The frame stems of ``label_dir``'s annotations (sorted) and, per object id, the first
    of them where it occurs."""
    stems = [name[:-len(".png")] for name in annotation_frames(label_dir)]
    first: dict[int, str] = {}
    for stem in stems:
        for k in label_ids(read_label_png(label_dir / f"{stem}.png")):
            first.setdefault(k, stem)
    return stems, first


def derive_meta(base: Path, test: bool, workers: int | None = None) -> dict[str, dict]:
    """``{video: {"objects": {"<id>": {"frames": [stem, ...]}}}}`` for the split folder ``base``.

    ``test``: annotations only where objects first appear; frames then come from
    ``JPEGImages/<video>/*.jpg``. Raises SSMVOSError when ``base/Annotations`` is missing or empty.
    """
    annotations = base / "Annotations"
    if not annotations.is_dir():
        raise SSMVOSError(f"no meta.json and no Annotations folder in {base}")
    videos = sorted(d.name for d in annotations.iterdir() if d.is_dir())
    if not videos:
        raise SSMVOSError(f"no video folders in {annotations}")
    folders = [annotations / v for v in videos]
    workers = default_workers(len(folders)) if workers is None else workers
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers, initializer=ignore_interrupts) as pool:
            found = list(pool.map(_video_objects, folders, chunksize=8))
    else:
        found = [_video_objects(folder) for folder in folders]
    meta: dict[str, dict] = {}
    for video, (stems, first) in zip(videos, found):
        if not first:
            raise SSMVOSError(f"annotations of video {video!r} in {annotations / video} hold no object")
        if test:
            stems = sorted((p.stem for p in (base / "JPEGImages" / video).glob("*.jpg")), key=frame_key)
        meta[video] = {"objects": {str(k): {"frames": [start] + [f for f in stems if frame_key(f) > frame_key(start)]}
                                   for k, start in sorted(first.items())}}
    return meta


__all__ = ["derive_meta"]
