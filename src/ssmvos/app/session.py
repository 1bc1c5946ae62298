"""One browser session of ``ssmvos app``: its video, the user's masks, the results, its job.

The chain itself is the video predictor's (``inference.predictor.VideoPredictor``): this
module hands it the user's masks (new objects and corrections), asks it to propagate in a
direction, and keeps what it yields — compactly, as PNG bytes per frame — so that a long
video costs little memory. Nothing here knows about HTTP.
"""
from __future__ import annotations

import hashlib
import json
import logging
import secrets
import shutil
import threading
import time
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..atomic import atomic_path, write_json_atomic
from ..errors import SSMVOSError
from ..io import session_file as _session_file
from ..io.labels import decode_label_values, encode_label_png, read_object_labels
from ..numbers import is_number
from ..options import DIRECTIONS

SESSION_FORMAT = _session_file.OLD_FORMAT  # the unversioned format of the first release (still read)
STATE_FORMAT = "ssmvos-app-state/1"  # a session's state.json in the state folder
log = logging.getLogger("ssmvos.app")


# --------------------------------------------------------------------------- label maps <-> bytes
def labels_to_png(labels: np.ndarray, palette: bool = False) -> bytes:
    """H×W uint8 labels -> PNG bytes (grayscale: values are the labels; or DAVIS palette)."""
    return encode_label_png(labels, palette=palette, compress_level=1)


def png_to_labels(data: bytes, what: str) -> np.ndarray:
    """PNG bytes of a label map -> H×W uint8 object ids, by :mod:`ssmvos.io.labels`' rules
    for a user's mask (a binary 0/255 mask is object 1; JPEG and colour images refused)."""
    return read_object_labels(data, what)


class VideoChanged(SSMVOSError):
    """A request made for a video that is no longer the session's open one: another video
    was opened meanwhile (the page names its video by the key in ``info()["video"]["key"]``)."""


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
    propagations of all sessions (one network, one device). ``folder`` (created if needed)
    holds the session on disk: ``state.json`` (what is open), ``masks/<frame>.png`` (the
    user's masks, written as they change), ``results/<frame>.png`` (written after each
    propagation), uploads and exports; :meth:`restore` reopens it.
    """

    def __init__(self, sid: str, predictor, network_lock: threading.Lock, folder: Path):
        self.id = sid
        self.predictor = predictor
        self.network_lock = network_lock
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        self.state = None  # the predictor's VideoState
        self.source = ""  # what was opened, for the session file
        self.video_path: Path | None = None  # the file or folder open
        self.video_key = ""  # changes with every video opened: frame URLs carry it (no stale cached frames)
        self.owned: Path | None = None  # the upload folder of the open video
        self.annotations: dict[int, bytes] = {}  # frame -> grayscale PNG of the user's label map
        self.given: dict[int, dict[int, str]] = {}  # object -> frame -> digest of the mask the predictor has
        self.saved_results: set[int] = set()  # frames whose results were read back from disk at a restore
        self.names: dict[int, str] = {}  # object -> the name the user gave it (the page's objects panel)
        self.job: Job | None = None
        self.opening = False  # a video is being opened (init_state runs outside the lock)
        self.used = time.time()  # last request, for expiry and least-recently-used unloading
        self._jpegs: OrderedDict[int, bytes] = OrderedDict()

    # -- video ---------------------------------------------------------------------------
    def open(self, video: Path, source: str, owned: Path | None = None) -> dict:
        """Open a video file or a frame folder; forgets the previous video's masks, results and
        finished job. Refused while a propagation runs or another open is under way (no
        propagation can start during an open either).

        ``owned``: a folder holding an uploaded video, deleted when another video replaces it.
        """
        with self.lock:
            self._require_idle()
            self.opening = True
        try:
            state = self.predictor.init_state(video, keep_results=True)
            with self.lock:
                previous, old_state = self.owned, self.state
                self.state, self.source, self.owned = state, source, owned
                self.video_path, self.video_key = Path(video), secrets.token_hex(6)
                self.job = None  # the last video's job: its events and figures are not this video's
                self.annotations.clear()
                self.given.clear()
                self.names.clear()
                self._jpegs.clear()
                self.saved_results.clear()
                shutil.rmtree(self.folder / "masks", ignore_errors=True)
                shutil.rmtree(self.folder / "results", ignore_errors=True)
                self._save_state()
        finally:
            self.opening = False
        if old_state is not None:
            self.predictor.close_state(old_state)
        if previous is not None and previous != owned:
            shutil.rmtree(previous, ignore_errors=True)
        return self.info()

    # -- on disk -------------------------------------------------------------------------
    def _relative(self, path: Path | None) -> str | None:
        """``path`` relative to the session folder when inside it (uploads), else absolute."""
        if path is None:
            return None
        try:
            return str(Path(path).resolve().relative_to(self.folder.resolve()))
        except ValueError:
            return str(Path(path).resolve())

    def _save_state(self) -> None:
        write_json_atomic(self.folder / "state.json", {
            "format": STATE_FORMAT, "source": self.source, "video": self._relative(self.video_path),
            "owned": self._relative(self.owned), "key": self.video_key,
            "names": {str(k): v for k, v in sorted(self.names.items())}}, indent=1)

    def _save_mask(self, index: int, png: bytes | None) -> None:
        path = self.folder / "masks" / f"{index}.png"
        if png is None:
            path.unlink(missing_ok=True)
            return
        with atomic_path(path) as tmp:
            tmp.write_bytes(png)

    def touch(self) -> None:
        """Mark the session used now (in memory, and on disk for expiry across restarts)."""
        now = time.time()
        if now - self.used > 30:
            try:
                (self.folder / "state.json").touch()
            except OSError:  # the folder went away (deleted meanwhile): nothing to keep
                pass
        self.used = now

    @classmethod
    def restore(cls, sid: str, predictor, network_lock: threading.Lock, folder: Path,
                allowed: Callable[[Path], bool] = lambda path: True) -> AppSession:
        """The session saved in ``folder``: its video reopened (when ``allowed`` still lets
        the page open it), its masks and last results read back (the predictor has none of them:
        the next propagation computes again from the masks)."""
        session = cls(sid, predictor, network_lock, folder)
        try:
            saved = json.loads((folder / "state.json").read_text())
        except (OSError, ValueError):
            return session  # nothing opened yet (or unreadable): an empty session
        if not isinstance(saved, dict) or saved.get("format") != STATE_FORMAT or not saved.get("video"):
            return session
        video = Path(saved["video"])
        video = video if video.is_absolute() else folder / video
        owned = folder / saved["owned"] if saved.get("owned") else None
        if not allowed(video):
            log.warning("session %s: %s may no longer be opened; its masks are kept", sid[:8], saved.get("source"))
            return session
        try:
            state = predictor.init_state(video, keep_results=True)
        except SSMVOSError as exc:
            log.warning("session %s: cannot reopen %s (%s)", sid[:8], saved.get("source"), exc)
            return session
        session.state, session.video_path, session.owned = state, video, owned
        session.source, session.video_key = str(saved.get("source", "")), str(saved.get("key") or secrets.token_hex(6))
        names = saved.get("names")
        if isinstance(names, dict):
            session.names = {int(k): str(v)[:64] for k, v in names.items() if is_number(str(k))
                             and 1 <= int(k) <= 255}
        masks = folder / "masks"
        for path in sorted(masks.glob("*.png")) if masks.is_dir() else []:
            if not is_number(path.stem) or int(path.stem) >= state.num_frames:
                continue
            try:
                data = path.read_bytes()
                labels = png_to_labels(data, f"the saved mask of frame {path.stem}")
            except (OSError, SSMVOSError) as exc:
                log.warning("session %s: mask %s left out (%s)", sid[:8], path.name, exc)
                continue
            if labels.shape == (state.height, state.width) and labels.any():
                session.annotations[int(path.stem)] = data
        results = folder / "results"
        session.saved_results = {int(p.stem) for p in results.glob("*.png") if is_number(p.stem)
                                 and int(p.stem) < state.num_frames} if results.is_dir() else set()
        session.used = (folder / "state.json").stat().st_mtime
        return session

    @property
    def frames(self):
        if self.state is None:
            raise SSMVOSError("no video is open in this session")
        return self.state.frames

    def current(self, key: str | None = None) -> tuple[object, str]:
        """The open video's (state, key), taken together; ``key`` (when given) must be that
        video's, else :class:`VideoChanged` (a request made for a video opened before)."""
        with self.lock:
            if self.state is None:
                raise SSMVOSError("no video is open in this session")
            if key is not None and key != self.video_key:
                raise VideoChanged("another video was opened in this session since: this request was for the "
                                   "one before (reload the page)")
            return self.state, self.video_key

    def info(self) -> dict:
        job = self.job
        out = {"id": self.id, "video": None, "job": None}
        if self.state is not None:
            out["video"] = {"source": self.source, "key": self.video_key, "frames": self.state.num_frames,
                            "width": self.state.width, "height": self.state.height, "fps": self.frames.fps,
                            "names": [self.frames.name(i) for i in range(self.state.num_frames)],
                            "annotated": sorted(self.annotations), "results": self.result_frames(),
                            "objects": self.object_ids(),
                            "object_names": {str(k): v for k, v in sorted(self.names.items())}}
        if job is not None:
            out["job"] = {"kind": job.kind, "state": job.state, "done": job.done, "total": job.total,
                          "computed": job.computed, "message": job.message}
        return out

    def frame_jpeg(self, index: int) -> tuple[bytes, str]:
        """Frame ``index`` of the open video as JPEG bytes, and the key of the video it is
        from. Decoded outside the lock: kept for later requests only while that video is
        still the open one (a frame of the last video is never served for the new one)."""
        with self.lock:
            state, key = self.current()
            _check_frame_of(state, index)
            if index in self._jpegs:
                self._jpegs.move_to_end(index)
                return self._jpegs[index], key
        try:
            rgb = state.frames.get(index)
        except Exception:
            if self.state is not state:  # closed under us by an open
                raise VideoChanged("another video was opened in this session while this frame was read") from None
            raise
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
        if not ok:
            raise SSMVOSError(f"cannot encode frame {index}")
        with self.lock:
            if self.state is state:
                self._jpegs[index] = buf.tobytes()
                while len(self._jpegs) > 64:
                    self._jpegs.popitem(last=False)
        return buf.tobytes(), key

    def _check_frame(self, index: int) -> None:
        _check_frame_of(self.current()[0], index)

    # -- masks ---------------------------------------------------------------------------
    def set_annotation(self, index: int, labels: np.ndarray, key: str | None = None) -> dict:
        """The user's label map of frame ``index`` (0 = no object there); all zeros removes it.
        ``key``: the video it was drawn on (:meth:`current`); another video open now refuses it."""
        with self.lock:
            state, _ = self.current(key)
            _check_frame_of(state, index)
            if labels.shape != (state.height, state.width):
                raise SSMVOSError(f"the mask of frame {index} is {labels.shape[1]}x{labels.shape[0]}, the video is "
                                  f"{state.width}x{state.height}")
            if labels.any():
                self.annotations[index] = labels_to_png(labels)
            else:
                self.annotations.pop(index, None)
            self._save_mask(index, self.annotations.get(index))
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
            if index in self.saved_results:  # computed before a restart, not since
                return png_to_labels((self.folder / "results" / f"{index}.png").read_bytes(), f"result {index}")
            return None
        return merge_frame(found.object_ids, list(found.soft))

    def result_frames(self) -> list[int]:
        """The frames with kept results (given masks count: they are their frame's result),
        and those read back from disk after a restart."""
        return sorted(set(self.predictor.kept_frames(self.state)) | self.saved_results)

    def _save_results(self, frames: set[int], state) -> None:
        """Write the merged results of ``frames`` to ``results/<frame>.png`` (read back by
        :meth:`restore`), unless another video was opened meanwhile."""
        for index in sorted(frames):
            if self.state is not state:
                return
            labels = self.result(index)
            path = self.folder / "results" / f"{index}.png"
            if labels is None:
                path.unlink(missing_ok=True)
                continue
            with atomic_path(path) as tmp:
                tmp.write_bytes(labels_to_png(labels))

    def object_ids(self) -> list[int]:
        """The objects drawn on some frame or named in the objects panel."""
        ids: set[int] = set(self.names)
        for index in list(self.annotations):
            ids.update(int(v) for v in np.unique(self.annotation(index)) if v)
        return sorted(ids)

    def grabcut(self, index: int, box: tuple[int, int, int, int], iterations: int = 5) -> np.ndarray:
        """A first mask from a box: OpenCV's GrabCut on frame ``index`` (bool H×W), the same
        tool as the predictor's ``add_new_points_or_box`` (:mod:`ssmvos.inference.prompts`)."""
        from ..inference.prompts import grabcut_mask

        self._check_frame(index)
        return grabcut_mask(self.frames.get(index), box=box, iterations=iterations)

    # -- propagation ---------------------------------------------------------------------
    def _require_idle(self) -> None:
        if self.opening:
            raise SSMVOSError("a video is being opened in this session: wait for it")
        if self.job is not None and self.job.state == "running":
            raise SSMVOSError("a propagation is running in this session: wait for it or cancel it")

    def start(self, direction: str, runner: Callable[[Callable[[], None]], None]) -> Job:
        """Start a propagation ``direction`` (forward, backward, both) through ``runner``,
        which runs the given callable off the request thread."""
        if direction not in DIRECTIONS:
            raise SSMVOSError(f"direction must be one of {', '.join(DIRECTIONS)}, not {direction!r}")
        with self.lock:  # checked and taken at once: no second job, no open in between
            self._require_idle()
            state, _ = self.current()
            if not self.annotations:
                raise SSMVOSError("draw or import a mask of at least one object first")
            job = Job(direction, total=state.num_frames)
            self.job = job
        runner(lambda: self._run(job, direction, state))
        return job

    def _run(self, job: Job, direction: str, state) -> None:
        """The job's propagation of ``state`` (the video open when it started: no video is
        opened while it runs)."""
        seen: set[int] = set()
        try:
            with self.network_lock:
                self._give_masks(state)
                job.total = min(self.predictor.frames_to_propagate(state, direction), state.num_frames)
                job.emit(type="start", total=job.total)
                frames = self.predictor.propagate(state, direction)
                ran: set[int] = set()
                # 'both' passes its first frame twice: count each frame once (seen)
                try:
                    for result in frames:  # the predictor keeps each frame's results
                        if job.cancel.is_set():
                            break
                        seen.add(int(result.frame_index))
                        job.done = len(seen)
                        if result.computed:
                            ran.add(int(result.frame_index))
                        job.computed = len(ran)
                        job.emit(type="frame", frame=int(result.frame_index), done=job.done, total=job.total)
                finally:
                    frames.close()
            job.state = "cancelled" if job.cancel.is_set() else "done"
        except SSMVOSError as exc:
            job.state, job.message = "error", str(exc)
        except Exception as exc:  # noqa: BLE001 - reported on the page, logged by the server
            job.state, job.message = "error", f"internal error ({type(exc).__name__}); the server's log has the details"
            raise
        finally:
            job.emit(type=job.state, done=job.done, total=job.total, computed=job.computed, message=job.message)
        if seen:  # after the page was told: a restart shows these results again
            try:
                self._save_results(seen, state)
            except Exception:  # noqa: BLE001 - e.g. the session closed meanwhile: the results stay in memory only
                log.exception("session %s: cannot keep the results on disk", self.id[:8])

    def _give_masks(self, state) -> None:
        """Hand the predictor what changed in the user's masks since the last propagation: new
        objects and corrections (``add_new_mask``), masks taken away
        (``clear_all_prompts_in_frame``) and objects erased everywhere (``remove_object``)."""
        wanted: dict[int, dict[int, np.ndarray]] = {}
        with self.lock:
            stored = dict(self.annotations)
        for index, data in sorted(stored.items()):
            labels = decode_label_values(data, f"the mask of frame {index}")
            for obj in (int(v) for v in np.unique(labels) if v):
                wanted.setdefault(obj, {})[index] = labels == obj
        for obj in sorted(set(self.given) - set(wanted)):
            self.predictor.remove_object(state, obj)
            del self.given[obj]
        for obj, masks in wanted.items():
            digests = {f: _digest(m) for f, m in masks.items()}
            had = self.given.get(obj, {})
            for index in sorted(masks):  # in frame order: an object's first mask is its reference
                if had.get(index) != digests[index]:
                    self.predictor.add_new_mask(state, index, obj, masks[index], need_output=False)
            for index in sorted(set(had) - set(digests)):
                self.predictor.clear_all_prompts_in_frame(state, index, obj, need_output=False)
            self.given[obj] = digests

    # -- the objects panel and the point tool ---------------------------------------------
    def name_object(self, obj: int, name: str) -> dict:
        """Register object ``obj`` (1..255) under ``name`` (shown in the page's objects panel)."""
        _check_object(obj)
        name = " ".join(str(name).split())[:64]
        with self.lock:
            self.names[obj] = name or f"object {obj}"
            if self.state is not None:
                self._save_state()
        return self.info()

    def remove_object(self, obj: int) -> dict:
        """Delete object ``obj`` from every frame's mask and from the results (the predictor's
        ``remove_object``)."""
        self._require_idle()
        state, key = self.current()
        for index in sorted(self.annotations):
            labels = self.annotation(index).copy()
            if (labels == obj).any():
                labels[labels == obj] = 0
                self.set_annotation(index, labels, key)
        with self.network_lock:
            self.predictor.remove_object(state, obj)
        with self.lock:
            self.given.pop(obj, None)
            self.names.pop(obj, None)
            self._save_state()
        return self.info()

    def click(self, index: int, obj: int, points: np.ndarray, labels: np.ndarray,
              box: tuple[float, float, float, float] | None, key: str | None = None) -> np.ndarray:
        """Object ``obj``'s mask on frame ``index`` from clicks: points N×2 (x, y pixels),
        labels N (1 = object, 0 = background) and an optional box, through the predictor's
        ``add_new_points_or_box``. The mask replaces the object's pixels in the frame's label
        map, which is returned (H×W uint8). ``key``: the video the clicks were made on
        (:meth:`current`)."""
        self._require_idle()
        state, key = self.current(key)
        _check_frame_of(state, index)
        _check_object(obj)
        with self.network_lock:
            _, ids, logits = self.predictor.add_new_points_or_box(state, index, obj, points=points,
                                                                   labels=labels, box=box)
        mask = (logits[ids.index(obj), 0] > 0).cpu().numpy()
        current = self.annotation(index)
        frame = np.zeros((state.height, state.width), np.uint8) if current is None else current.copy()
        frame[frame == obj] = 0
        frame[mask] = obj
        self.set_annotation(index, frame, key)
        with self.lock:  # the predictor now holds this mask: no need to give it again
            self.given.setdefault(obj, {})[index] = _digest(mask)
        return frame

    # -- export --------------------------------------------------------------------------
    def _require_results(self) -> list[int]:
        self.frames  # noqa: B018 - raises the one-line error when no video is open
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
                                                  for i, data in stored.items()}, dict(self.names))

    def load_session_masks(self, data: object) -> dict:
        """Replace the user's masks with those of a session file (its decoded JSON) made for
        this video. The whole file is checked first (its video before any mask is decoded): a
        bad file changes nothing."""
        state, key = self.current()
        session = _session_file.parse_session(data, "the session file",
                                              video_of=(state.num_frames, state.height, state.width))
        self._require_idle()
        stored = {index: labels_to_png(labels) for index, labels in session.masks.items() if labels.any()}
        with self.lock:
            self.current(key)  # still the video the file was checked against
            dropped = set(self.annotations) - set(stored)
            self.annotations.clear()
            self.annotations.update(stored)
            self.names = dict(session.objects)
            for index in dropped:  # the state folder follows: a restart shows the loaded masks
                self._save_mask(index, None)
            for index, png in stored.items():
                self._save_mask(index, png)
            self._save_state()
        return self.info()

    def close(self, delete: bool = True) -> None:
        """Free the video and results; ``delete``: the session's folder too (else it stays on
        disk for :meth:`restore`). May wait for this session's own propagation to stop: call
        it off the event loop."""
        job = self.job
        if job is not None:
            job.cancel.set()
        if self.state is not None:
            if job is not None and job.state == "running":
                with self.network_lock:  # not while its propagation still reads it
                    self.predictor.close_state(self.state)
            else:
                self.predictor.close_state(self.state)
            self.state = None
        if delete:
            shutil.rmtree(self.folder, ignore_errors=True)


def _check_frame_of(state, index: int) -> None:
    if not 0 <= index < state.num_frames:
        raise SSMVOSError(f"frame {index} does not exist: the video has {state.num_frames} frames")


def _check_object(obj: int) -> None:
    if not 1 <= obj <= 255:
        raise SSMVOSError(f"object ids lie in 1..255 (a label map holds one octet per pixel), not {obj}")


def _digest(mask: np.ndarray) -> str:
    """A short fingerprint of an H×W bool mask (to tell which masks the predictor already has)."""
    return hashlib.sha1(np.packbits(mask).tobytes()).hexdigest()


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
