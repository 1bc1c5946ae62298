"""``ssmvos app``: a local web app to segment your own video in the browser."""
from __future__ import annotations

import argparse
import ipaddress
import socket
import sys

INSTALL = 'pip install -e ".[app]"  (or: pip install "ssmvos[app]")'


def add_parser(subparsers) -> None:
    from .common import add_inference_flags
    from .types import add_input_size_flags, int_range

    p = subparsers.add_parser(
        "app", help="segment your own video in the browser (local web app)",
        description="Serve a web page where you open a video, draw masks of objects on any frame (brush, eraser, "
        "polygon, fill, or a box and point clicks that GrabCut turns into a mask; undo/redo, zoom, an objects "
        "panel), propagate them forward or backward with a timeline of the results, correct any frame and export the masks, an overlay video and a session file. Needs the [app] extra: " + INSTALL,
        epilog="On a remote GPU server, keep the default --host 127.0.0.1 and tunnel the port: "
        "ssh -L 7860:localhost:7860 server, then open http://localhost:7860 on your machine.")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; others get a warning)")
    p.add_argument("--port", type=int_range(1, 65535), default=7860, help="port (default 7860)")
    p.add_argument("--weights", default="davis17", help="published model name or checkpoint path (default davis17)")
    p.add_argument("--root", help="folder whose videos and frame folders the page may open (default: uploads only)")
    p.add_argument("--demo", action="store_true", help="open the bundled DAVIS clip in every new session")
    add_input_size_flags(p)
    add_inference_flags(p)
    p.add_argument("--max-upload-mb", type=int_range(1), default=1024, help="largest upload accepted, in MiB (default 1024)")
    p.add_argument("--state-dir", help="folder where sessions are kept (masks saved as they change, so a restart or a "
                   "closed tab loses nothing; default $SSMVOS_HOME/app-sessions)")
    p.add_argument("--session-ttl", type=float, default=24.0 * 7, metavar="HOURS",
                   help="delete a session not used for this many hours (default 168: a week)")
    p.add_argument("--max-sessions", type=int_range(1), default=32,
                   help="sessions held in memory; past it the least recently used is unloaded to --state-dir "
                   "(default 32)")
    p.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                   help="also answer requests whose Host is NAME (e.g. a reverse proxy's name); by default only "
                   "the --host address (and localhost for a loopback one) is answered")
    p.set_defaults(func=run)


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..errors import SSMVOSError
    from ..weights import cache_dir

    try:
        import starlette  # noqa: F401
        import uvicorn
    except ImportError:
        raise SSMVOSError(f"ssmvos app needs its extra packages: {INSTALL}") from None
    from ..app.server import AppConfig, create_app
    from ..build import build_predictor
    from .common import runtime_spec
    from .types import INPUT_SIZE_FLAGS

    spec = runtime_spec(args)
    root = None
    if args.root is not None:
        root = Path(args.root).expanduser()
        if not root.is_dir():
            raise SSMVOSError(f"--root {root} is not a folder")
    if not args.session_ttl > 0:
        raise SSMVOSError(f"--session-ttl must be a positive number of hours, not {args.session_ttl}")
    state_dir = Path(args.state_dir).expanduser() if args.state_dir else cache_dir() / "app-sessions"
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SSMVOSError(f"cannot create --state-dir {state_dir} ({exc.strerror or exc})") from None
    try:  # the port first: a busy port should not wait for the model
        with socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET) as probe:
            # as uvicorn binds: a port left in TIME_WAIT by a server just stopped (Ctrl-C) is free
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((args.host, args.port))
    except OSError as exc:
        raise SSMVOSError(f"cannot listen on {args.host}:{args.port} ({exc.strerror or exc}); pick another --port "
                          "or --host") from None
    predictor = build_predictor(args.weights, (args.input_height, args.input_width), spec,
                                size_source=INPUT_SIZE_FLAGS)
    app = create_app(predictor, AppConfig(root=root, demo=args.demo, max_upload_mb=args.max_upload_mb,
                                          max_sessions=args.max_sessions, state_dir=state_dir,
                                          session_ttl_hours=args.session_ttl, host=args.host, port=args.port,
                                          allowed_hosts=tuple(args.allow_host)))
    if not _loopback(args.host):
        print(f"warning: listening on {args.host}: anyone who can reach this address can use the app and "
              "upload files; there is no login", file=sys.stderr)
    shown = "localhost" if args.host in ("127.0.0.1", "::1", "0.0.0.0", "::") else args.host
    print(f"ssmvos app on {predictor.device}: open http://{shown}:{args.port}/  (Ctrl-C stops it)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
