"""What a session's results export to, besides the palette-PNG zip and the overlay video
(:meth:`AppSession.export_zip`, :meth:`AppSession.export_overlay`):

* **COCO-style RLE JSON** (:func:`export_coco`): ``ssmvos.io.coco``'s file, one video, per
  frame and object a compressed RLE that ``pycocotools.mask.decode`` reads;
* **a training dataset** (:func:`export_dataset`): a zip in YouTube-VOS's layout,
  ``train/JPEGImages/<video>/<frame>.jpg``, ``train/Annotations/<video>/<frame>.png`` (DAVIS
  palette) and ``train/meta.json`` (each object's frames, from the first where it occurs),
  frames named ``00000``, ``00001``, ... Unzipped into DIR, ``ssmvos index --mose DIR`` writes
  its split file and ``ssmvos train --split ... --resume davis17`` fine-tunes on it.
"""
from __future__ import annotations

import re
import zipfile
from pathlib import Path

import cv2
import numpy as np

from ..atomic import atomic_path
from ..io.coco import video_entry, write_coco_json
from .session import AppSession, labels_to_png


def video_name(session: AppSession) -> str:
    """A file-name-safe name for the session's video, from what was opened."""
    source = session.source.split(":", 1)[-1] if session.source.startswith("upload:") else session.source
    stem = Path(source.rstrip("/")).stem if source else "video"
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("._") or "video"


def export_coco(session: AppSession) -> Path:
    """The results as one video of a COCO-style RLE JSON file (frame indices, object ids)."""
    frames = session._require_results()
    entry = video_entry(video_name(session), session.state.height, session.state.width,
                        ((i, session.result(i)) for i in frames))
    path = session.folder / "masks.coco.json"
    write_coco_json(path, [entry])
    return path


def dataset_meta(objects: dict[int, list[int]]) -> dict:
    """``meta.json``'s entry of one video: per object id, its frame names (first occurrence on)."""
    return {"objects": {str(obj): {"frames": [f"{i:05d}" for i in frames]} for obj, frames in sorted(objects.items())}}


def export_dataset(session: AppSession, jpeg_quality: int = 95) -> Path:
    """The frames with results and their masks as a YouTube-VOS-layout training set (zip)."""
    import json

    frames = session._require_results()
    name = video_name(session)
    objects: dict[int, list[int]] = {}
    path = session.folder / "dataset.zip"
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
        for index in frames:
            labels = session.result(index)
            for obj in (int(v) for v in np.unique(labels) if v):
                objects.setdefault(obj, [])
            for obj, listed in objects.items():
                if listed or (labels == obj).any():
                    listed.append(index)  # from its first occurrence on, as YouTube-VOS lists them
            rgb = session.frames.get(index)
            ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
            if not ok:
                raise RuntimeError(f"cannot encode frame {index} as JPEG")
            zf.writestr(f"train/JPEGImages/{name}/{index:05d}.jpg", jpeg.tobytes())
            zf.writestr(f"train/Annotations/{name}/{index:05d}.png", labels_to_png(labels, palette=True))
        zf.writestr("train/meta.json", json.dumps({"videos": {name: dataset_meta(objects)}}, indent=1))
    return path
