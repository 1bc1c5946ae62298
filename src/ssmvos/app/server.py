"""The HTTP side of ``ssmvos app`` (Starlette): routes that wire requests to sessions.

Every browser tab gets its own session (a random id it keeps in sessionStorage); all
routes under ``/api/sessions/{id}`` act on that session only. Label maps travel as raw
bytes (H·W octets, row-major; gzip-compressed on the wire). Errors a user can cause come
back as ``{"error": "one line"}`` with a 4xx status; anything else as a 500 with a short
message, the traceback going to the server's log only.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import shutil
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..data.io import VIDEO_SUFFIXES
from ..assets import demo_clip
from ..errors import SSMVOSError
from ..numbers import is_number
from .session import AppSession, confined, list_folder, png_to_labels, session_json, unpack_frames_zip

log = logging.getLogger("ssmvos.app")
STATIC = Path(__file__).resolve().parent / "static"


@dataclass
class AppConfig:
    """What ``ssmvos app`` serves: the folder users may open videos from (None: uploads
    only), whether new sessions start on the bundled clip, and limits."""

    root: Path | None = None
    demo: bool = False
    max_upload_mb: int = 1024
    max_sessions: int = 32
    workdir: Path | None = None  # where sessions keep uploads and exports (default: a temporary folder)


class Sessions:
    """The live sessions, the shared predictor and the one network lock."""

    def __init__(self, predictor, config: AppConfig):
        self.predictor = predictor
        self.config = config
        self.network_lock = threading.Lock()
        self.pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="ssmvos-app-job")
        self._own_workdir = config.workdir is None
        self.workdir = Path(tempfile.mkdtemp(prefix="ssmvos-app-")) if config.workdir is None else config.workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.items: dict[str, AppSession] = {}

    def create(self) -> AppSession:
        if len(self.items) >= self.config.max_sessions:
            raise HTTPException(429, f"this server already holds {self.config.max_sessions} sessions")
        sid = secrets.token_urlsafe(16)
        session = AppSession(sid, self.predictor, self.network_lock, self.workdir)
        self.items[sid] = session
        return session

    def get(self, sid: str) -> AppSession:
        session = self.items.get(sid)
        if session is None:
            raise HTTPException(404, "unknown session (the server may have restarted): reload the page")
        return session

    def remove(self, sid: str) -> None:
        session = self.items.pop(sid, None)
        if session is not None:
            session.close()

    def run(self, fn) -> None:
        def guarded() -> None:
            try:
                fn()
            except Exception:  # noqa: BLE001 - the job reports it; keep the traceback for the operator
                log.exception("a job failed")
        self.pool.submit(guarded)

    def close(self) -> None:
        for sid in list(self.items):
            self.remove(sid)
        self.pool.shutdown(wait=False, cancel_futures=True)
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


def create_app(predictor, config: AppConfig | None = None) -> Starlette:
    """The Starlette application serving ``predictor`` (a VideoPredictor)."""
    config = config or AppConfig()
    sessions = Sessions(predictor, config)

    def session_of(request: Request) -> AppSession:
        return sessions.get(request.path_params["sid"])

    def frame_of(request: Request) -> int:
        return int(request.path_params["index"])

    async def body_json(request: Request) -> dict:
        try:
            data = json.loads(await request.body() or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise SSMVOSError("the request body is not JSON") from None
        if not isinstance(data, dict):
            raise SSMVOSError("the request body must be a JSON object")
        return data

    def raw_labels(session: AppSession, data: bytes, what: str) -> np.ndarray:
        h, w = session.state.height, session.state.width
        if len(data) != h * w:
            raise SSMVOSError(f"{what} has {len(data)} bytes, a {w}x{h} label map has {h * w}")
        return np.frombuffer(data, np.uint8).reshape(h, w).copy()

    # -- pages and sessions -----------------------------------------------------------
    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html")

    async def new_session(request: Request) -> Response:
        session = sessions.create()
        if config.demo:
            await run_in_threadpool(session.open, demo_clip()[0], "demo")
        return JSONResponse(session.info())

    async def get_session(request: Request) -> Response:
        return JSONResponse(session_of(request).info())

    async def delete_session(request: Request) -> Response:
        sessions.remove(request.path_params["sid"])
        return JSONResponse({"deleted": True})

    async def server_info(request: Request) -> Response:
        return JSONResponse({"root": config.root is not None, "max_upload_mb": config.max_upload_mb,
                             "device": str(predictor.device), "precision": predictor.precision})

    # -- opening videos ---------------------------------------------------------------
    def require_root() -> Path:
        if config.root is None:
            raise HTTPException(403, "this server was started without --root: upload a video instead")
        return config.root

    async def browse(request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(list_folder, require_root(), request.query_params.get("path", "")))

    async def open_path(request: Request) -> Response:
        session = session_of(request)
        rel = (await body_json(request)).get("path", "")
        target = confined(require_root(), str(rel))
        if not (target.is_dir() or target.suffix.lower() in VIDEO_SUFFIXES):
            raise SSMVOSError(f"{rel!r} is neither a frame folder nor a video file ({', '.join(VIDEO_SUFFIXES)})")
        return JSONResponse(await run_in_threadpool(session.open, target, str(rel)))

    async def open_demo(request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(session_of(request).open, demo_clip()[0], "demo"))

    async def upload(request: Request) -> Response:
        session = session_of(request)
        name = Path(request.query_params.get("name", "")).name
        suffix = Path(name).suffix.lower()
        if suffix not in (*VIDEO_SUFFIXES, ".zip"):
            raise SSMVOSError(f"upload a video ({', '.join(VIDEO_SUFFIXES)}) or a .zip of frames, not {name!r}")
        limit = config.max_upload_mb * 2**20
        declared = request.headers.get("content-length")
        if declared is not None and is_number(declared) and int(declared) > limit:
            raise HTTPException(413, f"the upload is larger than the server's limit of {config.max_upload_mb} MiB")
        folder = session.folder / f"upload-{secrets.token_hex(4)}"
        folder.mkdir()
        target = folder / f"upload{suffix}"
        size = 0
        try:
            with open(target, "wb") as f:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > limit:
                        raise HTTPException(413, f"the upload is larger than the server's limit of "
                                                 f"{config.max_upload_mb} MiB")
                    f.write(chunk)
            if size == 0:
                raise SSMVOSError("the upload is empty")
            if suffix == ".zip":
                video = await run_in_threadpool(unpack_frames_zip, target, folder / "frames", 4 * limit)
                target.unlink()
            else:
                video = target
            return JSONResponse(await run_in_threadpool(session.open, video, f"upload:{name}", folder))
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise

    # -- frames, masks, results -------------------------------------------------------
    async def frame_jpeg(request: Request) -> Response:
        data = await run_in_threadpool(session_of(request).frame_jpeg, frame_of(request))
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})

    def labels_response(labels: np.ndarray | None) -> Response:
        """A label map as raw bytes; 204 (no content) when the frame has none."""
        if labels is None:
            return Response(status_code=204)
        return Response(labels.tobytes(), media_type="application/octet-stream")

    async def get_annotation(request: Request) -> Response:
        return labels_response(session_of(request).annotation(frame_of(request)))

    async def put_annotation(request: Request) -> Response:
        session = session_of(request)
        labels = raw_labels(session, await request.body(), f"the mask of frame {frame_of(request)}")
        return JSONResponse(await run_in_threadpool(session.set_annotation, frame_of(request), labels))

    async def import_annotation(request: Request) -> Response:
        session = session_of(request)
        labels = png_to_labels(await request.body(), "the imported mask")
        return JSONResponse(await run_in_threadpool(session.set_annotation, frame_of(request), labels))

    async def get_result(request: Request) -> Response:
        return labels_response(await run_in_threadpool(session_of(request).result, frame_of(request)))

    async def grabcut(request: Request) -> Response:
        session = session_of(request)
        data = await body_json(request)
        try:
            index, box = int(data["frame"]), [float(v) for v in data["box"]]
        except (KeyError, TypeError, ValueError):
            raise SSMVOSError("grabcut needs {'frame': N, 'box': [x0, y0, x1, y1]}") from None
        if len(box) != 4:
            raise SSMVOSError("grabcut's box is [x0, y0, x1, y1]")
        mask = await run_in_threadpool(session.grabcut, index, tuple(box))
        return Response(mask.astype(np.uint8).tobytes(), media_type="application/octet-stream")

    # -- propagation ------------------------------------------------------------------
    async def propagate(request: Request) -> Response:
        session = session_of(request)
        direction = (await body_json(request)).get("direction", "forward")
        session.start(str(direction), sessions.run)
        return JSONResponse(session.info())

    async def cancel(request: Request) -> Response:
        session = session_of(request)
        if session.job is not None:
            session.job.cancel.set()
        return JSONResponse(session.info())

    async def events(request: Request) -> Response:
        session = session_of(request)
        job = session.job

        async def stream():
            if job is None:
                yield f"data: {json.dumps({'type': 'idle'})}\n\n"
                return
            sent = 0
            while True:
                while sent < len(job.events):
                    event = job.events[sent]
                    sent += 1
                    yield f"data: {json.dumps(event)}\n\n"
                    if event["type"] in ("done", "cancelled", "error"):
                        return
                if await request.is_disconnected():
                    return
                await asyncio.sleep(0.1)

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    # -- export and session files -----------------------------------------------------
    async def export_zip(request: Request) -> Response:
        path = await run_in_threadpool(session_of(request).export_zip)
        return FileResponse(path, media_type="application/zip", filename="masks.zip")

    async def export_overlay(request: Request) -> Response:
        path = await run_in_threadpool(session_of(request).export_overlay)
        return FileResponse(path, media_type="video/mp4", filename="overlay.mp4")

    async def export_session(request: Request) -> Response:
        data = await run_in_threadpool(session_json, session_of(request))
        return Response(data, media_type="application/json",
                        headers={"Content-Disposition": 'attachment; filename="session.json"'})

    async def import_session(request: Request) -> Response:
        session = session_of(request)
        data = await body_json(request)
        return JSONResponse(await run_in_threadpool(session.load_session_masks, data))

    # -- errors -----------------------------------------------------------------------
    async def user_error(request: Request, exc: SSMVOSError) -> Response:
        return JSONResponse({"error": str(exc)}, status_code=400)

    async def http_error(request: Request, exc: HTTPException) -> Response:
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code)

    async def internal_error(request: Request, exc: Exception) -> Response:
        log.exception("request %s %s failed", request.method, request.url.path)
        return JSONResponse({"error": f"internal error ({type(exc).__name__}); the server's log has the details"},
                            status_code=500)

    s = "/api/sessions/{sid}"
    f = s + "/frames/{index:int}"
    routes = [
        Route("/", index),
        Route("/api/server", server_info),
        Route("/api/browse", browse),
        Route("/api/sessions", new_session, methods=["POST"]),
        Route(s, get_session),
        Route(s, delete_session, methods=["DELETE"]),
        Route(s + "/open", open_path, methods=["POST"]),
        Route(s + "/demo", open_demo, methods=["POST"]),
        Route(s + "/upload", upload, methods=["POST"]),
        Route(f + ".jpg", frame_jpeg),
        Route(f + "/annotation", get_annotation),
        Route(f + "/annotation", put_annotation, methods=["PUT"]),
        Route(f + "/annotation/import", import_annotation, methods=["POST"]),
        Route(f + "/result", get_result),
        Route(s + "/grabcut", grabcut, methods=["POST"]),
        Route(s + "/propagate", propagate, methods=["POST"]),
        Route(s + "/cancel", cancel, methods=["POST"]),
        Route(s + "/events", events),
        Route(s + "/export/masks.zip", export_zip),
        Route(s + "/export/overlay.mp4", export_overlay),
        Route(s + "/export/session.json", export_session),
        Route(s + "/session", import_session, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        try:
            yield
        finally:
            sessions.close()

    app = Starlette(routes=routes, middleware=[Middleware(GZipMiddleware, minimum_size=1024)],
                    exception_handlers={SSMVOSError: user_error, HTTPException: http_error, Exception: internal_error},
                    lifespan=lifespan)
    app.state.sessions = sessions
    return app
