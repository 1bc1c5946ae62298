"""One browser session of ``ssmvos app``: its video, the user's masks, the results, its job.

The chain itself is the video predictor's (``inference.predictor.VideoPredictor``): this
module hands it the user's masks (new objects and corrections), asks it to propagate in a
direction, and keeps what it yields — compactly, as PNG bytes per frame — so that a long
video costs little memory. Nothing here knows about HTTP.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import threading
import time
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..errors import SSMVOSError
from ..io import session_file as _session_file
from ..io.frames.files import IMAGE_SUFFIXES, frame_key
from ..io.frames.video import VIDEO_SUFFIXES
from ..io.labels import decode_label_values, encode_label_png, read_object_labels
from ..options import DIRECTIONS

SESSION_FORMAT = _session_file.OLD_FORMAT  # the unversioned format of the first release (still read)


# --------------------------------------------------------------------------- label maps <-> bytes
def labels_to_png(labels: np.ndarray, palette: bool = False) -> bytes:
    """H×W uint8 labels -> PNG bytes (grayscale: values are the labels; or DAVIS palette)."""
    return encode_label_png(labels, palette=palette, compress_level=1)


def png_to_labels(data: bytes, what: str) -> np.ndarray:
    """PNG bytes of a label map -> H×W uint8 object ids, by :mod:`ssmvos.io.labels`' rules
    for a user's mask (a binary 0/255 mask is object 1; JPEG and colour images refused)."""
    return read_object_labels(data, what)


# --------------------------------------------------------------------------- paths
def confined(root: Path, relative: str) -> Path:
    """``root / relative`` resolved, refused unless it stays inside ``root`` (no '..', no
    absolute paths, no symbolic links that lead out)."""
    root = root.resolve()
    if not relative or relative in (".", "/"):
        return root
    if Path(relative).is_absolute():
        raise SSMVOSError(f"{relative!r}: give a path relative to the server's --root folder")
    target = (root / relative).resolve()
    if target != root and root not in target.parents:
        raise SSMVOSError(f"{relative!r} is outside the server's --root folder")
    return target


def list_folder(root: Path, relative: str) -> dict:
    """The videos, frame folders and sub-folders of a folder under ``root``."""
    folder = confined(root, relative)
    if not folder.is_dir():
        raise SSMVOSError(f"{relative!r} is not a folder under the server's --root folder")
    entries = []
    for child in sorted(folder.iterdir(), key=lambda p: p.name.lower()):
        if child.name.startswith("."):
            continue
        try:
            inside = confined(root, str(child.relative_to(root.resolve())))
        except SSMVOSError:
            continue  # a link out of the root: not shown
        rel = str(inside.relative_to(root.resolve()))
        if inside.is_dir():
            frames = sum(1 for p in inside.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            entries.append({"name": child.name, "path": rel, "kind": "frames" if frames else "folder",
                            "frames": frames})
        elif inside.suffix.lower() in VIDEO_SUFFIXES:
            entries.append({"name": child.name, "path": rel, "kind": "video"})
    return {"path": str(folder.relative_to(root.resolve())) if folder != root.resolve() else "", "entries": entries}


def unpack_frames_zip(archive: Path, into: Path, max_bytes: int, max_files: int = 20000) -> Path:
    """Extract the images of a zip of frames into ``into`` (flat, names kept), refusing
    archives that are not zips, hold no images, or would unpack to more than ``max_bytes``."""
    try:
        with zipfile.ZipFile(archive) as zf:
            members = [m for m in zf.infolist() if not m.is_dir() and Path(m.filename).suffix.lower() in IMAGE_SUFFIXES
                       and not Path(m.filename).name.startswith(".") and "__MACOSX" not in m.filename]
            if not members:
                raise SSMVOSError("the zip holds no image frames (jpg/png)")
            if len(members) > max_files:
                raise SSMVOSError(f"the zip holds {len(members)} images, more than the {max_files} allowed")
            if sum(m.file_size for m in members) > max_bytes:
                raise SSMVOSError(f"the zip's frames would take more than {max_bytes // 2**20} MiB unpacked")
            names = [Path(m.filename).name for m in members]
            if len(set(names)) != len(names):
                raise SSMVOSError("the zip holds two frames with the same file name in different folders")
            into.mkdir(parents=True, exist_ok=True)
            for member, name in zip(members, names):
                with zf.open(member) as src, open(into / name, "wb") as dst:
                    shutil.copyfileobj(src, dst)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise SSMVOSError(f"the upload is not a readable zip of frames ({exc})") from None
    size = None
    for name in sorted(names, key=frame_key):  # every frame must decode, at one size
        image = cv2.imread(str(into / name), cv2.IMREAD_COLOR)
        if image is None:
            raise SSMVOSError(f"frame {name} in the zip is not a readable image")
        if size is None:
            size = image.shape
        elif image.shape != size:
            raise SSMVOSError(f"frame {name} in the zip is {image.shape[1]}x{image.shape[0]}, the first frame is "
                              f"{size[1]}x{size[0]}")
    return into


# --------------------------------------------------------------------------- jobs
@dataclass
class Job:
    """A propagation running off the request thread; ``events`` only grows."""

    kind: str
    total: int
    done: int = 0
    computed: int = 0  # frames the network ran on (the rest were given or read back)
    state: str = "running"  # running | done | cancelled | error
    message: str = ""
    events: list[dict] = field(default_factory=list)
    cancel: threading.Event = field(default_factory=threading.Event)
    started: float = field(default_factory=time.monotonic)

    def emit(self, **event) -> None:
        self.events.append(event)


# --------------------------------------------------------------------------- the session
class AppSession:
    """The video, masks and results of one browser session.

    ``predictor`` is a VideoPredictor (shared by all sessions); ``network_lock`` serialises
    propagations of all sessions (one network, one device).
    """

    def __init__(self, sid: str, predictor, network_lock: threading.Lock, workdir: Path):
        self.id = sid
        self.predictor = predictor
        self.network_lock = network_lock
        self.folder = Path(tempfile.mkdtemp(prefix=f"session-{sid[:8]}-", dir=workdir))
        self.lock = threading.RLock()
        self.state = None  # the predictor's VideoState
        self.source = ""  # what was opened, for the session file
        self.owned: Path | None = None  # the upload folder of the open video
        self.annotations: dict[int, bytes] = {}  # frame -> grayscale PNG of the user's label map
        self.given: dict[int, dict[int, str]] = {}  # object -> frame -> digest of the mask the predictor has
        self.job: Job | None = None
        self._jpegs: OrderedDict[int, bytes] = OrderedDict()

    # -- video ---------------------------------------------------------------------------
    def open(self, video: Path, source: str, owned: Path | None = None) -> dict:
        """Open a video file or a frame folder; forgets the previous video's masks and results.

        ``owned``: a folder holding an uploaded video, deleted when another video replaces it.
        """
        self._require_idle()
        state = self.predictor.init_state(video, keep_results=True)
        with self.lock:
            previous, old_state = self.owned, self.state
            self.state, self.source, self.owned = state, source, owned
            self.annotations.clear()
            self.given.clear()
            self._jpegs.clear()
        if old_state is not None:
            self.predictor.close_state(old_state)
        if previous is not None and previous != owned:
            shutil.rmtree(previous, ignore_errors=True)
        return self.info()

    @property
    def frames(self):
        if self.state is None:
            raise SSMVOSError("no video is open in this session")
        return self.state.frames

    def info(self) -> dict:
        job = self.job
        out = {"id": self.id, "video": None, "job": None}
        if self.state is not None:
            out["video"] = {"source": self.source, "frames": self.state.num_frames, "width": self.state.width,
                            "height": self.state.height, "fps": self.frames.fps,
                            "names": [self.frames.name(i) for i in range(self.state.num_frames)],
                            "annotated": sorted(self.annotations), "results": self.result_frames(),
                            "objects": self.object_ids()}
        if job is not None:
            out["job"] = {"kind": job.kind, "state": job.state, "done": job.done, "total": job.total,
                          "computed": job.computed, "message": job.message}
        return out

    def frame_jpeg(self, index: int) -> bytes:
        self._check_frame(index)
        with self.lock:
            if index in self._jpegs:
                self._jpegs.move_to_end(index)
                return self._jpegs[index]
        rgb = self.frames.get(index)
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
        if not ok:
            raise SSMVOSError(f"cannot encode frame {index}")
        with self.lock:
            self._jpegs[index] = buf.tobytes()
            while len(self._jpegs) > 64:
                self._jpegs.popitem(last=False)
        return buf.tobytes()

    def _check_frame(self, index: int) -> None:
        if not 0 <= index < self.frames.__len__():
            raise SSMVOSError(f"frame {index} does not exist: the video has {len(self.frames)} frames")

    # -- masks ---------------------------------------------------------------------------
    def set_annotation(self, index: int, labels: np.ndarray) -> dict:
        """The user's label map of frame ``index`` (0 = no object there); all zeros removes it."""
        self._check_frame(index)
        if labels.shape != (self.state.height, self.state.width):
            raise SSMVOSError(f"the mask of frame {index} is {labels.shape[1]}x{labels.shape[0]}, the video is "
                              f"{self.state.width}x{self.state.height}")
        with self.lock:
            if labels.any():
                self.annotations[index] = labels_to_png(labels)
            else:
                self.annotations.pop(index, None)
        return self.info()

    def annotation(self, index: int) -> np.ndarray | None:
        self._check_frame(index)
        data = self.annotations.get(index)
        return None if data is None else decode_label_values(data, f"the mask of frame {index}")

    def result(self, index: int) -> np.ndarray | None:
        """The merged labels of frame ``index`` from the predictor's kept results (None if none)."""
        from ..inference.merge import merge_frame

        self._check_frame(index)
        found = self.predictor.frame_result(self.state, index)
        if found is None:
            return None
        return merge_frame(found.object_ids, list(found.soft))

    def result_frames(self) -> list[int]:
        """The frames with kept results (given masks count: they are their frame's result)."""
        return self.predictor.kept_frames(self.state)

    def object_ids(self) -> list[int]:
        ids: set[int] = set()
        for index in list(self.annotations):
            ids.update(int(v) for v in np.unique(self.annotation(index)) if v)
        return sorted(ids)

    def grabcut(self, index: int, box: tuple[int, int, int, int], iterations: int = 5) -> np.ndarray:
        """A first mask from a box: OpenCV's GrabCut on frame ``index`` (bool H×W)."""
        from .tools import grabcut_mask

        self._check_frame(index)
        return grabcut_mask(self.frames.get(index), box, iterations)

    # -- propagation ---------------------------------------------------------------------
    def _require_idle(self) -> None:
        if self.job is not None and self.job.state == "running":
            raise SSMVOSError("a propagation is running in this session: wait for it or cancel it")

    def start(self, direction: str, runner: Callable[[Callable[[], None]], None]) -> Job:
        """Start a propagation ``direction`` (forward, backward, both) through ``runner``,
        which runs the given callable off the request thread."""
        if direction not in DIRECTIONS:
            raise SSMVOSError(f"direction must be one of {', '.join(DIRECTIONS)}, not {direction!r}")
        self._require_idle()
        if not self.annotations:
            raise SSMVOSError("draw or import a mask of at least one object first")
        job = Job(direction, total=self.state.num_frames)
        self.job = job
        runner(lambda: self._run(job, direction))
        return job

    def _run(self, job: Job, direction: str) -> None:
        try:
            with self.network_lock:
                self._give_masks()
                job.total = self.predictor.frames_to_propagate(self.state, direction)
                job.emit(type="start", total=job.total)
                frames = self.predictor.propagate(self.state, direction)
                try:
                    for result in frames:  # the predictor keeps each frame's results
                        if job.cancel.is_set():
                            break
                        job.done += 1
                        job.computed += result.computed
                        job.emit(type="frame", frame=int(result.frame_index), done=job.done, total=job.total)
                finally:
                    frames.close()
            job.state = "cancelled" if job.cancel.is_set() else "done"
        except SSMVOSError as exc:
            job.state, job.message = "error", str(exc)
        except Exception as exc:  # noqa: BLE001 - reported on the page, logged by the server
            job.state, job.message = "error", f"internal error: {type(exc).__name__}: {exc}"
            raise
        finally:
            job.emit(type=job.state, done=job.done, total=job.total, computed=job.computed, message=job.message)

    def _give_masks(self) -> None:
        """Hand the predictor what changed in the user's masks since the last propagation: new
        objects and corrections (``add_new_mask``), masks taken away
        (``clear_all_prompts_in_frame``) and objects erased everywhere (``remove_object``)."""
        wanted: dict[int, dict[int, np.ndarray]] = {}
        for index in sorted(self.annotations):
            labels = self.annotation(index)
            for obj in (int(v) for v in np.unique(labels) if v):
                wanted.setdefault(obj, {})[index] = labels == obj
        for obj in sorted(set(self.given) - set(wanted)):
            self.predictor.remove_object(self.state, obj)
            del self.given[obj]
        for obj, masks in wanted.items():
            digests = {f: hashlib.sha1(np.packbits(m).tobytes()).hexdigest() for f, m in masks.items()}
            had = self.given.get(obj, {})
            for index in sorted(masks):  # in frame order: an object's first mask is its reference
                if had.get(index) != digests[index]:
                    self.predictor.add_new_mask(self.state, index, obj, masks[index], need_output=False)
            for index in sorted(set(had) - set(digests)):
                self.predictor.clear_all_prompts_in_frame(self.state, index, obj, need_output=False)
            self.given[obj] = digests

    # -- export --------------------------------------------------------------------------
    def _require_results(self) -> list[int]:
        frames = self.result_frames()
        if not frames:
            raise SSMVOSError("nothing to export yet: propagate first")
        return frames

    def export_zip(self) -> Path:
        """The results as DAVIS palette PNGs, ``<frame name>.png``, in a zip."""
        frames = self._require_results()
        path = self.folder / "masks.zip"
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
            for index in frames:
                zf.writestr(f"{self.frames.name(index)}.png", labels_to_png(self.result(index), palette=True))
        return path

    def export_overlay(self) -> Path:
        """The results blended onto the frames, as an mp4."""
        from ..inference.overlay import OverlayWriter, blend

        done = set(self._require_results())
        path = self.folder / "overlay.mp4"
        writer = OverlayWriter(path, self.state.width, self.state.height, self.frames.fps or 24.0)
        try:
            empty = np.zeros((self.state.height, self.state.width), np.uint8)
            for index in range(self.state.num_frames):
                labels = self.result(index) if index in done else empty
                writer.write(blend(self.frames.get(index), labels))
        except BaseException:
            writer.abort()
            raise
        return writer.close()

    def session_file(self) -> dict:
        """The video's source and the user's masks as a session file's JSON object
        (:mod:`ssmvos.io.session_file`), for reopening."""
        if self.state is None:
            raise SSMVOSError("no video is open in this session")
        video = _session_file.SessionVideo(self.source, self.state.num_frames, self.state.height, self.state.width)
        with self.lock:
            stored = dict(self.annotations)
        return _session_file.session_dict(video, {i: decode_label_values(data, f"the mask of frame {i}")
                                                  for i, data in stored.items()})

    def load_session_masks(self, data: object) -> dict:
        """Replace the user's masks with those of a session file (its decoded JSON) made for
        this video. The whole file is checked first: a bad file changes nothing."""
        if self.state is None:
            raise SSMVOSError("no video is open in this session")
        session = _session_file.parse_session(data, "the session file")
        session.check_video(self.state.num_frames, self.state.height, self.state.width)
        self._require_idle()
        stored = {index: labels_to_png(labels) for index, labels in session.masks.items() if labels.any()}
        with self.lock:
            self.annotations.clear()
            self.annotations.update(stored)
        return self.info()

    def close(self) -> None:
        if self.job is not None:
            self.job.cancel.set()
        if self.state is not None:
            with self.network_lock:  # not while a propagation still reads it
                self.predictor.close_state(self.state)
        shutil.rmtree(self.folder, ignore_errors=True)


def session_json(session: AppSession) -> bytes:
    """The session file of ``session`` (UTF-8 JSON bytes)."""
    return json.dumps(session.session_file(), indent=1).encode()


def parse_session(data: object, what: str) -> tuple[tuple[int, int], dict[int, np.ndarray]]:
    """A session file's frame size (width, height) and masks (frame -> H×W uint8 labels);
    kept for old callers: :func:`ssmvos.io.session_file.parse_session` is the reader."""
    session = _session_file.parse_session(data, what)
    return (session.video.width, session.video.height), session.masks


def read_session_file(path: str | Path) -> dict[int, np.ndarray]:
    """The masks (frame -> H×W uint8 labels) of a session file saved by ``ssmvos app``; kept
    for old callers: :func:`ssmvos.io.session_file.read_session_file` is the reader."""
    return _session_file.read_session_file(path).masks
