"""What ``ssmvos app`` lets a page reach on the server's disk: paths confined to ``--root``
(every frame of a folder too, not only the folder), folder listings, and zips of frames
unpacked with limits (count, bytes, and pixels read from each image's header before any
decoding). Nothing here knows about HTTP.
"""
from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import cv2
from PIL import Image

from ..io.frames.files import IMAGE_SUFFIXES, frame_key, list_frames
from ..io.frames.video import VIDEO_SUFFIXES
from ..errors import SSMVOSError

MAX_FRAME_PIXELS = 40_000_000  # a frame larger than this (about 8K×5K) is refused before decoding


def confined(root: Path, relative: str) -> Path:
    """``root / relative`` resolved, refused unless it stays inside ``root`` (no '..', no
    absolute paths, no symbolic links that lead out, no NUL characters, no names the system
    cannot resolve: too long, or a loop of links)."""
    root = root.resolve()
    if "\x00" in relative:
        raise SSMVOSError("the path holds a NUL character")
    if not relative or relative in (".", "/"):
        return root
    if Path(relative).is_absolute():
        raise SSMVOSError(f"{relative!r}: give a path relative to the server's --root folder")
    try:
        target = (root / relative).resolve()
        target.exists()  # raises for a name too long (resolve() alone does not look)
    except (OSError, RuntimeError) as exc:  # ENAMETOOLONG; a loop of links (RuntimeError before Python 3.13)
        shown = relative if len(relative) <= 60 else f"{relative[:40]}... ({len(relative)} characters)"
        raise SSMVOSError(f"{shown!r} cannot be opened ({getattr(exc, 'strerror', None) or 'a loop of links'})") from None
    if target != root and root not in target.parents:
        raise SSMVOSError(f"{relative!r} is outside the server's --root folder")
    return target


def _inside(root: Path, path: Path) -> bool:
    resolved = path.resolve()  # a loop of links raises: check_video_target says so in one line
    return resolved == root or root in resolved.parents


def _png_jpeg_size(head: bytes, path: Path) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR or a JPEG's SOF marker; None for other formats."""
    if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR":
        return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    if not head.startswith(b"\xff\xd8"):
        return None
    with open(path, "rb") as f:  # walk the JPEG's segments to its frame header
        f.seek(2)
        while True:
            marker = f.read(2)
            if len(marker) < 2 or marker[0] != 0xFF:
                return None
            if marker[1] in (0xD8, 0x01) or 0xD0 <= marker[1] <= 0xD7:
                continue
            length = int.from_bytes(f.read(2), "big")
            if 0xC0 <= marker[1] <= 0xCF and marker[1] not in (0xC4, 0xC8, 0xCC):
                data = f.read(5)
                return int.from_bytes(data[3:5], "big"), int.from_bytes(data[1:3], "big")
            if length < 2:
                return None
            f.seek(length - 2, 1)


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) of an image file, read from its header (nothing is decoded)."""
    try:
        with open(path, "rb") as f:
            head = f.read(32)
        size = _png_jpeg_size(head, path)
        if size is not None:
            return size
        with Image.open(path) as image:
            return image.size
    except Image.DecompressionBombError:
        raise SSMVOSError(f"frame {path.name} is more than {2 * Image.MAX_IMAGE_PIXELS // 10**6} MP, larger than "
                          "the app accepts: scale the video down first") from None
    except Exception as exc:  # noqa: BLE001 - any reader failure is the same user error
        raise SSMVOSError(f"frame {path.name} is not a readable image ({type(exc).__name__})") from None


def check_frame_size(path: Path, max_pixels: int = MAX_FRAME_PIXELS) -> tuple[int, int]:
    """(width, height) of a frame file, refused above ``max_pixels`` (checked on the header)."""
    w, h = image_size(path)
    if w * h > max_pixels:
        raise SSMVOSError(f"frame {path.name} is {w}x{h} pixels, more than the {max_pixels // 10**6} MP the app "
                          "accepts: scale the video down first")
    return w, h


def check_video_size(path: Path, shown: str | None = None, max_pixels: int = MAX_FRAME_PIXELS) -> None:
    """Refuse a video file whose frames (from its container's header) exceed ``max_pixels``;
    a file OpenCV cannot open is left to the frame reader's own message."""
    capture = cv2.VideoCapture(str(path))
    try:
        w, h = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    finally:
        capture.release()
    if w * h > max_pixels:
        raise SSMVOSError(f"{shown or path.name}: its frames are {w}x{h} pixels, more than the "
                          f"{max_pixels // 10**6} MP the app accepts: scale the video down first")


def check_video_target(root: Path, target: Path, shown: str) -> Path:
    """A video file or frame folder under ``root`` the page may open: a folder's frames must
    each stay inside ``root`` (a symbolic link out is refused) and be no larger than
    :data:`MAX_FRAME_PIXELS` (read from each header)."""
    root = root.resolve()
    try:
        if target.is_dir():
            for frame in list_frames(target):  # the files the frame reader opens, each one checked
                if not _inside(root, frame):
                    raise SSMVOSError(f"{shown!r}: frame {frame.name} is a link to a file outside the server's "
                                      "--root folder")
                check_frame_size(frame)
            return target
        if target.suffix.lower() in VIDEO_SUFFIXES and target.is_file():
            check_video_size(target)
            return target
    except (OSError, RuntimeError) as exc:  # a frame that is a loop of links, a name too long, no permission
        raise SSMVOSError(f"{shown!r} cannot be read ({getattr(exc, 'strerror', None) or 'a loop of links'})") from None
    raise SSMVOSError(f"{shown!r} is neither a frame folder nor a video file ({', '.join(VIDEO_SUFFIXES)})")


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
            try:
                frames = sum(1 for p in inside.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            except OSError:
                continue  # a folder this server may not read: not shown
            entries.append({"name": child.name, "path": rel, "kind": "frames" if frames else "folder",
                            "frames": frames})
        elif inside.suffix.lower() in VIDEO_SUFFIXES:
            entries.append({"name": child.name, "path": rel, "kind": "video"})
    return {"path": str(folder.relative_to(root.resolve())) if folder != root.resolve() else "", "entries": entries}


def unpack_frames_zip(archive: Path, into: Path, max_bytes: int, max_files: int = 20000,
                      max_pixels: int = MAX_FRAME_PIXELS) -> Path:
    """Extract the images of a zip of frames into ``into`` (flat, names kept), refusing
    archives that are not zips, hold no images, would unpack to more than ``max_bytes``, or
    hold frames of different sizes or larger than ``max_pixels`` (read from each header)."""
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
        raise SSMVOSError(f"the upload is not a readable zip of frames ({type(exc).__name__})") from None
    size = None
    for name in sorted(names, key=frame_key):  # every frame's header: one size, within the pixel limit
        shape = check_frame_size(into / name, max_pixels)
        if size is None:
            size = shape
        elif shape != size:
            raise SSMVOSError(f"frame {name} in the zip is {shape[0]}x{shape[1]}, the first frame is "
                              f"{size[0]}x{size[1]}")
        if cv2.imread(str(into / name), cv2.IMREAD_REDUCED_COLOR_8) is None:  # the data too, not only the header
            raise SSMVOSError(f"frame {name} in the zip is not a readable image")
    return into
