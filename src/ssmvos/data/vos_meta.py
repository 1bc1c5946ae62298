"""YouTube-VOS-style ``meta.json`` contents derived from annotation PNGs, for datasets in the
YouTube-VOS layout that ship none (MOSE: ``train/`` and ``valid/`` with ``JPEGImages/<video>``
and ``Annotations/<video>``).

The derived object lists follow YouTube-VOS's meta.json: for a split with an annotation on
every listed frame (train), an object's frames are the annotated frames where it occurs; for
a split with first-appearance annotations only (valid), an object's frames are the video's
frames from its first annotation on. Every annotation PNG of the split is decoded once
(videos in parallel processes).
"""
from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from ..errors import SSMVOSError
from ..evaluation.labels import annotation_frames, label_ids, read_label_png
from ..evaluation.score import default_workers


def _video_objects(label_dir: Path) -> dict[int, list[str]]:
    """Object id -> the frame stems (sorted) of ``label_dir``'s annotations where it occurs."""
    objects: dict[int, list[str]] = {}
    for name in annotation_frames(label_dir):
        for k in label_ids(read_label_png(label_dir / name)):
            objects.setdefault(k, []).append(name[:-len(".png")])
    return objects


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
        with ProcessPoolExecutor(max_workers=workers) as pool:
            found = list(pool.map(_video_objects, folders, chunksize=8))
    else:
        found = [_video_objects(folder) for folder in folders]
    meta: dict[str, dict] = {}
    for video, objects in zip(videos, found):
        if not objects:
            raise SSMVOSError(f"annotations of video {video!r} in {annotations / video} hold no object")
        if test:
            images = sorted(p.stem for p in (base / "JPEGImages" / video).glob("*.jpg"))
            objects = {k: [frames[0]] + [f for f in images if f > frames[0]] for k, frames in objects.items()}
        meta[video] = {"objects": {str(k): {"frames": frames} for k, frames in sorted(objects.items())}}
    return meta


__all__ = ["derive_meta"]
