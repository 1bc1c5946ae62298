"""The HTTP side of ``ssmvos app`` (Starlette): routes that wire requests to sessions.

Every browser tab gets its own session (a random id it keeps in its URL); all routes under
``/api/sessions/{id}`` act on that session only. Sessions live in a state folder
(:mod:`.sessions`): the user's masks are written as they change, a session not used for
``session_ttl_hours`` is deleted, and past ``max_sessions`` in memory the least recently
used one is unloaded to disk (reloaded on its next request, also after a restart). Label
maps travel as raw bytes (H·W octets, row-major; gzip-compressed on the wire). Who may send
what is :mod:`.network`'s (Host, Origin, Content-Type, body sizes); what may be opened is
:mod:`.files`'. Errors a user can cause come back as ``{"error": "one line"}`` with a 4xx
status; anything else as a 500 with a short message, the traceback going to the server's log
only.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import secrets
import shutil
import tempfile
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

from ..assets import demo_clip
from ..data.io import VIDEO_SUFFIXES
from ..errors import SSMVOSError
from ..io.labels import read_object_labels
from ..numbers import is_number
from .exports import export_coco, export_dataset
from .files import (
    check_video_size,
    check_video_target,
    confined,
    list_folder,
    unpack_frames_zip,
)
from .network import GuardMiddleware, HostRule, public_message, read_body
from .session import AppSession, VideoChanged, session_json
from .sessions import AppConfig, Sessions

log = logging.getLogger("ssmvos.app")
STATIC = Path(__file__).resolve().parent / "static"
JSON_LIMIT = 1 << 20  # bytes of a JSON request (a box, a path, a direction)
MASK_FILE_LIMIT = 64 << 20  # bytes of an imported mask image


def create_app(predictor, config: AppConfig | None = None) -> Starlette:
    """The Starlette application serving ``predictor`` (a VideoPredictor)."""
    config = config or AppConfig()
    sessions = Sessions(predictor, config)
    hosts = HostRule(config.host, config.port, config.allowed_hosts)
    private = {sessions.folder: "<session folder>", Path(tempfile.gettempdir()): "<tmp>"}
    if config.root is not None:
        private[config.root] = "<--root>"

    async def session_of(request: Request) -> AppSession:
        sid = request.path_params["sid"]
        if sessions.loaded(sid):
            return sessions.get(sid)
        return await run_in_threadpool(sessions.get, sid)

    def frame_of(request: Request) -> int:
        return int(request.path_params["index"])

    async def body_json(request: Request, limit: int = JSON_LIMIT) -> dict:
        raw = await read_body(request, limit, "the request body")

        def finite_only(constant: str) -> float:
            raise ValueError(f"{constant} is not a JSON number")

        try:
            data = json.loads(raw or b"{}", parse_constant=finite_only)
        except (ValueError, UnicodeDecodeError):
            raise SSMVOSError("the request body is not JSON") from None
        except RecursionError:
            raise SSMVOSError("the request body nests too deeply") from None
        if not isinstance(data, dict):
            raise SSMVOSError("the request body must be a JSON object")
        return data

    def raw_labels(state, data: bytes, what: str) -> np.ndarray:
        """A label map sent as raw bytes (one per pixel, rows in order) for the video ``state``."""
        h, w = state.height, state.width
        if len(data) != h * w:
            raise SSMVOSError(f"{what} has {len(data)} bytes, a {w}x{h} label map has {h * w}")
        return np.frombuffer(data, np.uint8).reshape(h, w).copy()

    def public_info(info: dict) -> dict:
        if info.get("job") and info["job"].get("message"):
            info["job"]["message"] = public_message(info["job"]["message"], private)
        return info

    # -- pages and sessions -----------------------------------------------------------
    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html")

    async def new_session(request: Request) -> Response:
        await body_json(request)
        session = sessions.create()
        if config.demo:
            await run_in_threadpool(session.open, demo_clip()[0], "demo")
        return JSONResponse(session.info())

    async def get_session(request: Request) -> Response:
        return JSONResponse(public_info((await session_of(request)).info()))

    async def delete_session(request: Request) -> Response:
        sessions.remove(request.path_params["sid"])  # the files go off the event loop
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
        session = await session_of(request)
        rel = str((await body_json(request)).get("path", ""))
        root = require_root()
        target = confined(root, rel)
        await run_in_threadpool(check_video_target, root, target, rel)
        return JSONResponse(await run_in_threadpool(session.open, target, rel))

    async def open_demo(request: Request) -> Response:
        session = await session_of(request)
        await body_json(request)
        return JSONResponse(await run_in_threadpool(session.open, demo_clip()[0], "demo"))

    async def upload(request: Request) -> Response:
        session = await session_of(request)
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
                await run_in_threadpool(check_video_size, target, name)
                video = target
            return JSONResponse(await run_in_threadpool(session.open, video, f"upload:{name}", folder))
        except SSMVOSError as exc:
            shutil.rmtree(folder, ignore_errors=True)
            raise SSMVOSError(public_message(str(exc), {target: name, folder: "<upload>"})) from None
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise

    # -- frames, masks, results -------------------------------------------------------
    async def frame_jpeg(request: Request) -> Response:
        session = await session_of(request)
        data, key = await run_in_threadpool(session.frame_jpeg, frame_of(request))
        # always the frame of the video open now; a URL with that video's key (?v=, new at each
        # open) names one image for good, any other is revalidated each time
        cache = "private, max-age=3600, immutable" if request.query_params.get("v") == key else "no-cache"
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": cache})

    def labels_response(labels: np.ndarray | None) -> Response:
        """A label map as raw bytes; 204 (no content) when the frame has none."""
        if labels is None:
            return Response(status_code=204)
        return Response(labels.tobytes(), media_type="application/octet-stream")

    async def get_annotation(request: Request) -> Response:
        return labels_response((await session_of(request)).annotation(frame_of(request)))

    def video_key(request: Request) -> str | None:
        """The video a mask was drawn on (``?v=``, the key of ``info()``): a mask sent for a
        video opened before is refused (409), never saved onto the one open now."""
        return request.query_params.get("v")

    async def put_annotation(request: Request) -> Response:
        session = await session_of(request)
        # no video, another video: one clear error before the body (off the event loop: it takes the session's lock)
        state, _ = await run_in_threadpool(session.current, video_key(request))
        what = f"the mask of frame {frame_of(request)}"
        data = await read_body(request, state.height * state.width, what)
        labels = raw_labels(state, data, what)
        return JSONResponse(await run_in_threadpool(session.set_annotation, frame_of(request), labels,
                                                    video_key(request)))

    async def import_annotation(request: Request) -> Response:
        session = await session_of(request)
        state, _ = await run_in_threadpool(session.current, video_key(request))
        data = await read_body(request, min(MASK_FILE_LIMIT, config.max_upload_mb << 20), "the imported mask")
        # the size from the image's header first: a small file may inflate to gigabytes
        labels = await run_in_threadpool(read_object_labels, data, "the imported mask",
                                         size=(state.height, state.width))
        return JSONResponse(await run_in_threadpool(session.set_annotation, frame_of(request), labels,
                                                    video_key(request)))

    async def get_result(request: Request) -> Response:
        session = await session_of(request)
        return labels_response(await run_in_threadpool(session.result, frame_of(request)))

    async def grabcut(request: Request) -> Response:
        session = await session_of(request)
        data = await body_json(request)
        try:
            index, box = int(data["frame"]), [float(v) for v in data["box"]]
        except (KeyError, TypeError, ValueError, OverflowError):
            raise SSMVOSError("grabcut needs {'frame': N, 'box': [x0, y0, x1, y1]}") from None
        if len(box) != 4 or not all(math.isfinite(v) for v in box):
            raise SSMVOSError("grabcut's box is [x0, y0, x1, y1], four finite numbers")
        mask = await run_in_threadpool(session.grabcut, index, tuple(box))
        return Response(mask.astype(np.uint8).tobytes(), media_type="application/octet-stream")

    # -- the objects panel and the point tool ---------------------------------------------
    def object_of(request: Request) -> int:
        return int(request.path_params["obj"])

    async def name_object(request: Request) -> Response:
        name = (await body_json(request)).get("name", "")
        session = await session_of(request)
        return JSONResponse(await run_in_threadpool(session.name_object, object_of(request), str(name)))

    async def delete_object(request: Request) -> Response:
        session = await session_of(request)
        return JSONResponse(await run_in_threadpool(session.remove_object, object_of(request)))

    async def points(request: Request) -> Response:
        session = await session_of(request)
        data = await body_json(request)
        try:
            index, obj = int(data["frame"]), int(data["object"])
            pts = np.asarray(data.get("points", []), np.float64).reshape(-1, 2)
            labels = np.asarray(data.get("labels", []), np.float64).reshape(-1)
            box = data.get("box")
            box = None if box is None else tuple(float(v) for v in box)
        except (KeyError, TypeError, ValueError):
            raise SSMVOSError("points need {'frame': N, 'object': K, 'points': [[x, y], ...], 'labels': [1|0, ...], "
                              "'box': [x0, y0, x1, y1] or null}") from None
        if not (np.isfinite(pts).all() and np.isfinite(labels).all() and (box is None or all(map(math.isfinite, box)))):
            raise SSMVOSError("points, labels and box must be finite numbers")
        labels_map = await run_in_threadpool(session.click, index, obj, pts, labels, box, video_key(request))
        return Response(labels_map.tobytes(), media_type="application/octet-stream")

    # -- propagation ------------------------------------------------------------------
    async def propagate(request: Request) -> Response:
        session = await session_of(request)
        direction = (await body_json(request)).get("direction", "forward")
        session.start(str(direction), sessions.run)
        return JSONResponse(session.info())

    async def cancel(request: Request) -> Response:
        session = await session_of(request)
        if session.job is not None:
            session.job.cancel.set()
        return JSONResponse(public_info(session.info()))

    async def events(request: Request) -> Response:
        session = await session_of(request)
        job = session.job

        async def stream():
            if job is None:
                yield f"data: {json.dumps({'type': 'idle'})}\n\n"
                return
            sent = 0
            while True:
                while sent < len(job.events):
                    event = dict(job.events[sent])
                    sent += 1
                    if event.get("message"):
                        event["message"] = public_message(event["message"], private)
                    yield f"data: {json.dumps(event)}\n\n"
                    if event["type"] in ("done", "cancelled", "error"):
                        return
                if await request.is_disconnected():
                    return
                await asyncio.sleep(0.1)

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    # -- export and session files -----------------------------------------------------
    async def export_zip(request: Request) -> Response:
        path = await run_in_threadpool((await session_of(request)).export_zip)
        return FileResponse(path, media_type="application/zip", filename="masks.zip")

    async def export_overlay(request: Request) -> Response:
        path = await run_in_threadpool((await session_of(request)).export_overlay)
        return FileResponse(path, media_type="video/mp4", filename="overlay.mp4")

    async def export_coco_json(request: Request) -> Response:
        path = await run_in_threadpool(export_coco, await session_of(request))
        return FileResponse(path, media_type="application/json", filename="masks.coco.json")

    async def export_dataset_zip(request: Request) -> Response:
        path = await run_in_threadpool(export_dataset, await session_of(request))
        return FileResponse(path, media_type="application/zip", filename="dataset.zip")

    async def export_session(request: Request) -> Response:
        data = await run_in_threadpool(session_json, await session_of(request))
        return Response(data, media_type="application/json",
                        headers={"Content-Disposition": 'attachment; filename="session.json"'})

    async def import_session(request: Request) -> Response:
        session = await session_of(request)
        data = await body_json(request, config.max_upload_mb << 20)
        return JSONResponse(await run_in_threadpool(session.load_session_masks, data))

    # -- errors -----------------------------------------------------------------------
    async def user_error(request: Request, exc: SSMVOSError) -> Response:
        status = 409 if isinstance(exc, VideoChanged) else 400
        return JSONResponse({"error": public_message(str(exc), private)}, status_code=status)

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
        Route(s + "/objects/{obj:int}", name_object, methods=["PUT"]),
        Route(s + "/objects/{obj:int}", delete_object, methods=["DELETE"]),
        Route(s + "/points", points, methods=["POST"]),
        Route(s + "/propagate", propagate, methods=["POST"]),
        Route(s + "/cancel", cancel, methods=["POST"]),
        Route(s + "/events", events),
        Route(s + "/export/masks.zip", export_zip),
        Route(s + "/export/overlay.mp4", export_overlay),
        Route(s + "/export/masks.coco.json", export_coco_json),
        Route(s + "/export/dataset.zip", export_dataset_zip),
        Route(s + "/export/session.json", export_session),
        Route(s + "/session", import_session, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        await run_in_threadpool(sessions.sweep, True, True)  # sessions that expired while the server was down
        try:
            yield
        finally:
            sessions.close()

    middleware = [Middleware(GuardMiddleware, hosts=hosts), Middleware(GZipMiddleware, minimum_size=1024)]
    app = Starlette(routes=routes, middleware=middleware,
                    exception_handlers={SSMVOSError: user_error, HTTPException: http_error, Exception: internal_error},
                    lifespan=lifespan)
    app.state.sessions = sessions
    return app
