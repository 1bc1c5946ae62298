"""The sessions of ``ssmvos app``: those in memory (least recently used first) and those
kept in the state folder, with expiry, unloading to make room, and removal off the event
loop; and :class:`AppConfig`, what the app serves.

Layout of the state folder: ``<session id>/`` per session (see :class:`.session.AppSession`);
a deleted session's folder is first renamed ``.deleted-<id>-<random>`` (at once, so that it
cannot be reloaded), then removed by a background thread.
"""
from __future__ import annotations

import logging
import re
import secrets
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from starlette.exceptions import HTTPException

from ..assets import demo_clip
from ..errors import SSMVOSError
from .files import check_video_target
from .session import AppSession

log = logging.getLogger("ssmvos.app")
SESSION_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")
TRASH = ".deleted-"  # a deleted session's folder is renamed so, then removed off the event loop


@dataclass
class AppConfig:
    """What ``ssmvos app`` serves: the folder users may open videos from (None: uploads
    only), whether new sessions start on the bundled clip, where sessions are kept, the
    address it answers for, and limits."""

    root: Path | None = None
    demo: bool = False
    max_upload_mb: int = 1024
    max_sessions: int = 32  # sessions held in memory; more are unloaded to the state folder
    state_dir: Path | None = None  # where sessions are kept (default: a temporary folder, removed at exit)
    session_ttl_hours: float = 24.0 * 7  # a session unused this long is deleted
    host: str = "127.0.0.1"  # the address listened on: the Host header must name it
    port: int | None = None  # its port (None: any port, e.g. an app served by a test client)
    allowed_hosts: tuple[str, ...] = ()  # more Host names to answer for (e.g. a reverse proxy's)
    workdir: Path | None = None  # the old name of state_dir, still taken


class Sessions:
    """The sessions (in memory, least recently used first, and on disk), the shared
    predictor and the one network lock."""

    def __init__(self, predictor, config: AppConfig):
        self.predictor = predictor
        self.config = config
        self.network_lock = threading.Lock()
        self.pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="ssmvos-app-job")
        self.cleaner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ssmvos-app-cleanup")
        folder = config.state_dir or config.workdir
        self._own_folder = folder is None
        self.folder = Path(tempfile.mkdtemp(prefix="ssmvos-app-")) if folder is None else Path(folder).expanduser()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.items: OrderedDict[str, AppSession] = OrderedDict()
        self.guard = threading.RLock()  # items
        self._swept = 0.0

    # -- lookup ---------------------------------------------------------------------------
    def create(self) -> AppSession:
        self.sweep()
        with self.guard:
            self._make_room()
            sid = secrets.token_urlsafe(16)
            session = AppSession(sid, self.predictor, self.network_lock, self.folder / sid)
            session._save_state()
            self.items[sid] = session
        return session

    def get(self, sid: str) -> AppSession:
        """The session ``sid``, reloaded from the state folder when it was unloaded (or the
        server restarted). May open its video: call it off the event loop when not loaded."""
        with self.guard:
            session = self.items.get(sid)
            if session is not None:
                self.items.move_to_end(sid)
                session.touch()
                return session
        if not SESSION_ID.fullmatch(sid) or not (self.folder / sid / "state.json").is_file():
            raise HTTPException(404, "unknown session (it expired or was deleted): reload the page")
        if (self.folder / sid / "state.json").stat().st_mtime < self._expired_before():
            shutil.rmtree(self.folder / sid, ignore_errors=True)
            raise HTTPException(404, "unknown session (it expired or was deleted): reload the page")
        restored = AppSession.restore(sid, self.predictor, self.network_lock, self.folder / sid, self.may_reopen)
        with self.guard:
            if sid in self.items:  # restored meanwhile by another request
                restored.close(delete=False)
                return self.items[sid]
            self._make_room()
            self.items[sid] = restored
            restored.touch()
        return restored

    def loaded(self, sid: str) -> bool:
        return sid in self.items

    def may_reopen(self, video: Path) -> bool:
        """Whether a saved session's video may still be opened: the demo clip, an upload in
        the state folder, or a path under the current --root."""
        video = video.resolve()
        inside = [self.folder.resolve(), demo_clip()[0].resolve()]
        if self.config.root is not None:
            inside.append(self.config.root.resolve())
        if not any(video == f or f in video.parents for f in inside):
            return False
        if self.config.root is not None and self.config.root.resolve() in video.parents:
            try:
                check_video_target(self.config.root, video, video.name)
            except SSMVOSError:
                return False
        return True

    # -- making room, expiry, removal -------------------------------------------------------
    def _make_room(self) -> None:
        """Unload least recently used idle sessions to disk until one more fits."""
        while len(self.items) >= self.config.max_sessions:
            idle = next((sid for sid, s in self.items.items()
                         if s.job is None or s.job.state != "running"), None)
            if idle is None:
                raise HTTPException(429, f"all {self.config.max_sessions} sessions in memory are propagating: "
                                         "try again when one is done")
            session = self.items.pop(idle)
            self.cleaner.submit(self._quietly, session.close, False)

    def remove(self, sid: str) -> None:
        """Forget session ``sid`` and delete its folder, off the caller's thread."""
        if not SESSION_ID.fullmatch(sid):
            raise HTTPException(404, "unknown session")
        with self.guard:
            session = self.items.pop(sid, None)
            trash = self.folder / f"{TRASH}{sid}-{secrets.token_hex(4)}"
            try:  # at once, so that it cannot be reloaded; the files go later
                (self.folder / sid).rename(trash)
            except OSError:
                if session is None:
                    raise HTTPException(404, "unknown session (it expired or was deleted)") from None
        if session is not None:  # its propagation may hold the network lock: wait for it elsewhere
            self.cleaner.submit(self._quietly, session.close, False)
        self.cleaner.submit(shutil.rmtree, trash, True)

    def _expired_before(self) -> float:
        return time.time() - self.config.session_ttl_hours * 3600

    def sweep(self, force: bool = False, wait: bool = False) -> None:
        """Delete sessions unused for ``session_ttl_hours`` (at most once a minute unless
        ``force``; the files go off the caller's thread unless ``wait``)."""
        now = time.time()
        if not force and now - self._swept < 60:
            return
        self._swept = now
        limit = self._expired_before()
        with self.guard:
            for sid, session in list(self.items.items()):
                if session.used < limit and (session.job is None or session.job.state != "running"):
                    self.remove(sid)
        if wait:
            self._sweep_disk(limit)
        else:
            self.cleaner.submit(self._quietly, self._sweep_disk, limit)

    def _sweep_disk(self, limit: float) -> None:
        for folder in list(self.folder.iterdir()):
            if folder.name.startswith(TRASH):  # deleted, the server stopped before the files were gone
                shutil.rmtree(folder, ignore_errors=True)
                continue
            if folder.name in self.items or not SESSION_ID.fullmatch(folder.name):
                continue
            marker = folder / "state.json"
            try:
                used = marker.stat().st_mtime if marker.exists() else folder.stat().st_mtime
            except OSError:
                continue
            if used < limit:
                shutil.rmtree(folder, ignore_errors=True)

    @staticmethod
    def _quietly(fn, *args) -> None:
        try:
            fn(*args)
        except Exception:  # noqa: BLE001 - a cleanup failure must not stop the server; log it
            log.exception("a cleanup failed")

    def run(self, fn) -> None:
        def guarded() -> None:
            try:
                fn()
            except Exception:  # noqa: BLE001 - the job reports it; keep the traceback for the operator
                log.exception("a job failed")
        self.pool.submit(guarded)

    def close(self) -> None:
        """Unload every session (kept on disk unless the state folder is a temporary one)."""
        with self.guard:
            sessions, self.items = list(self.items.values()), OrderedDict()
        for session in sessions:  # propagations stop at their next frame and keep what they computed
            if session.job is not None:
                session.job.cancel.set()
        self.pool.shutdown(wait=True, cancel_futures=True)
        for session in sessions:
            self._quietly(session.close, self._own_folder)
        self.cleaner.shutdown(wait=True)
        if self._own_folder:
            shutil.rmtree(self.folder, ignore_errors=True)
