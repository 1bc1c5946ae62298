"""Frame sources: where the frames of a video come from.

Random access (``live`` False): image files (a folder or a list of paths), a video container
(mp4, avi, ...), a numpy array T×H×W×3. Such a source has a length, ``get(i)`` -> H×W×3 uint8
RGB, ``name(i)`` (the file stem used for output names), ``fps`` (None when unknown) and
``iterate(indices)``, which decodes ahead of the caller in threads.

Live (``live`` True): a camera (an OpenCV device index), a network stream (an RTSP/HTTP/...
URL), a byte pipe such as stdin (concatenated JPEG or PNG images, or a YUV4MPEG2 stream), or
any Python iterable of frames. A live source is read once, in order, through ``stream()``:
a thread reads frames as they come, numbered by arrival, into a queue of at most
``queue_size`` frames. **Drop policy**: when frames come faster than they are processed and
the queue is full, the oldest waiting frame is dropped, so that results stay close to live
(frames with a given mask are never dropped; ``dropped`` counts the others). With
``drop=False`` the reader waits instead and every frame is processed: a pipe's writer is
then held back, and a camera drops frames on its side.
"""
from __future__ import annotations

import contextlib
import os
import queue
import re
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np

from ..data.io import VIDEO_SUFFIXES, list_frames, open_video, read_frame
from ..errors import SSMVOSError
from ..numbers import is_number


class FrameSource:
    """The frames of a video. Random-access subclasses implement ``__len__`` and ``get``."""

    #: frames per second, when the source knows it
    fps: float | None = None
    #: True for sources read once as frames arrive (see :class:`LiveSource`)
    live: bool = False
    #: what the source is, for messages
    description: str = "the video"

    def __len__(self) -> int:  # pragma: no cover - interface
        raise NotImplementedError

    def get(self, index: int) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def frame_size(self) -> tuple[int, int]:
        """(height, width) of the frames."""
        return self.get(0).shape[:2]

    def name(self, index: int) -> str:
        """A file stem for frame ``index`` (used for output names)."""
        return f"{index:05d}"

    def close(self) -> None:
        """Release what the source holds open (decoders, reader threads)."""

    def iterate(self, indices: list[int], prefetch: int = 4) -> Iterator[tuple[int, np.ndarray]]:
        """Decode ``indices`` in the given order, ``prefetch`` frames ahead in threads."""
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="ssmvos-decode") as pool:
            pending: list[tuple[int, Future]] = []
            it = iter(indices)
            for i in it:
                pending.append((i, pool.submit(self.get, i)))
                if len(pending) > prefetch:
                    break
            while pending:
                i, fut = pending.pop(0)
                nxt = next(it, None)
                if nxt is not None:
                    pending.append((nxt, pool.submit(self.get, nxt)))
                yield i, fut.result()


class FrameFiles(FrameSource):
    """Frames stored as image files (JPEG/PNG), in the given order."""

    def __init__(self, paths: list[Path], fps: float | None = None):
        if not paths:
            raise SSMVOSError("a video needs at least one frame")
        self.paths = [Path(p) for p in paths]
        self.fps = fps
        self.description = f"the frames in {self.paths[0].parent}"

    def __len__(self) -> int:
        return len(self.paths)

    def get(self, index: int) -> np.ndarray:
        return read_frame(self.paths[index])

    def name(self, index: int) -> str:
        return self.paths[index].stem


class ArrayFrames(FrameSource):
    """Frames held in a numpy array T×H×W×3 uint8 (RGB)."""

    def __init__(self, frames: np.ndarray, fps: float | None = None):
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
            raise SSMVOSError(f"a frame array must be T×H×W×3 uint8 RGB with T >= 1, not "
                              f"{'×'.join(map(str, frames.shape))} {frames.dtype}")
        self.frames = frames
        self.fps = fps
        self.description = "the frame array"

    def __len__(self) -> int:
        return len(self.frames)

    def get(self, index: int) -> np.ndarray:
        if not 0 <= index < len(self.frames):
            raise SSMVOSError(f"frame {index} is outside the array's {len(self.frames)} frames")
        return self.frames[index]


class _Decoder:
    """One OpenCV decoder over a :class:`VideoFile` that reads any frame: the next one
    directly, a short jump forward by decoding through, anything else by seeking."""

    def __init__(self, video: "VideoFile"):
        self.video = video
        self.cap: cv2.VideoCapture | None = None
        self.next = 0  # index of the frame the decoder reads next

    def read(self, index: int) -> np.ndarray:
        video = self.video
        if not 0 <= index < video.count:
            raise SSMVOSError(f"frame {index} is outside {video.path}'s {video.count} frames")
        seeked = self._position(index)
        ok, bgr = self.cap.read()
        if ok and seeked and abs(self.cap.get(cv2.CAP_PROP_POS_MSEC) - video.times[index]) > 0.5:
            video.exact_seek = False  # this container seeks inexactly: read sequentially from now on
            self.close()
            self._position(index)
            ok, bgr = self.cap.read()
        self.next = index + 1
        if not ok:
            raise SSMVOSError(f"cannot decode frame {index} of {video.path}")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def _position(self, index: int) -> bool:
        """Make ``index`` the next frame read; True if that took a seek."""
        video = self.video
        near = self.cap is not None and self.next <= index and (
            index - self.next <= VideoFile.SKIP_LIMIT or not video.exact_seek)
        if not near:
            if self.cap is None or not video.exact_seek:
                self.close()
                self.cap, _ = open_video(video.path)
                self.next = 0
            if video.exact_seek and index != self.next:
                self.cap.set(cv2.CAP_PROP_POS_FRAMES, index)
                self.next = index
                return True
        while self.next < index:
            self.cap.grab()
            self.next += 1
        return False

    def close(self) -> None:
        if self.cap is not None:
            self.cap.release()
            self.cap = None


class VideoFile(FrameSource):
    """A video file (mp4, avi, ...).

    Opening decodes it once, to count its frames and note each one's timestamp. ``get`` keeps
    a decoder open: the next frame is read directly, a jump forward of at most
    ``SKIP_LIMIT`` frames is decoded through, and any other access seeks (OpenCV/FFmpeg go
    to the key frame before it and decode forward), so its cost depends on the distance
    between key frames, not on the frame index. A seek that lands on the wrong frame (its
    timestamp differs; some containers seek inexactly) is caught, and such a file is read
    sequentially instead from then on. ``iterate`` decodes in a thread of its own, in the
    order asked: forward from its first index, or backward in blocks of ``BLOCK`` frames,
    each read forward.
    """

    SKIP_LIMIT = 16
    BLOCK = 16

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.description = str(self.path)
        cap, self.fps = open_video(self.path)
        times: list[float] = []
        try:
            while cap.grab():
                times.append(cap.get(cv2.CAP_PROP_POS_MSEC))
        finally:
            cap.release()
        if not times:
            raise SSMVOSError(f"video {self.path} has no decodable frames")
        self.count = len(times)
        self.times = np.asarray(times)
        #: seeking is trusted while timestamps are distinct and every seek lands where asked
        self.exact_seek = bool(np.all(np.diff(self.times) > 0))
        self._lock = threading.Lock()
        self._decoder = _Decoder(self)

    def __len__(self) -> int:
        return self.count

    def get(self, index: int) -> np.ndarray:
        with self._lock:
            return self._decoder.read(index)

    def close(self) -> None:
        """Release the decoder that ``get`` keeps open (reopened when needed)."""
        with self._lock:
            self._decoder.close()

    def iterate(self, indices: list[int], prefetch: int = 4) -> Iterator[tuple[int, np.ndarray]]:
        steps = {b > a for a, b in zip(indices, indices[1:])}
        if len(steps) > 1:  # neither increasing nor decreasing: frame by frame
            yield from super().iterate(indices, prefetch)
            return
        backward = steps == {False}
        q: queue.Queue = queue.Queue(maxsize=max(prefetch, 1))
        stop = threading.Event()

        def decode() -> None:
            decoder = _Decoder(self)
            try:
                if backward:
                    for k in range(0, len(indices), self.BLOCK):
                        block = indices[k : k + self.BLOCK]
                        frames = {}
                        for i in reversed(block):
                            if stop.is_set():
                                return
                            frames[i] = decoder.read(i)
                        for i in block:
                            q.put((i, frames.pop(i)))
                else:
                    for i in indices:
                        if stop.is_set():
                            return
                        q.put((i, decoder.read(i)))
                q.put(None)
            except BaseException as exc:  # handed to the consumer
                q.put(exc)
            finally:
                decoder.close()

        thread = threading.Thread(target=decode, name="ssmvos-video", daemon=True)
        thread.start()
        try:
            while True:
                item = q.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            while thread.is_alive():
                try:
                    q.get_nowait()
                except queue.Empty:
                    thread.join(timeout=0.05)


# ------------------------------------------------------------------------------ live sources
class LiveSource(FrameSource):
    """Frames read once, as they arrive (see the module docstring for the queue and the drop
    policy). Subclasses implement ``_read`` (the next RGB frame, or None at the end) and may
    implement ``_release``. The first frame is read when the source is opened."""

    live = True

    def __init__(self, description: str, queue_size: int = 4, drop: bool = True):
        self.description = description
        self.queue_size = max(1, int(queue_size))
        self.drop = drop
        self.dropped = 0  # frames dropped by the drop policy
        self.received = 0  # frames read from the source
        self._cond = threading.Condition()
        self._buffer: deque[tuple[int, np.ndarray, float]] = deque()
        self._end: bool | BaseException | None = None  # True: the source ended; an exception: it failed
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._keep: Callable[[int], bool] = lambda index: False
        try:
            first = self._read()
        except BaseException:
            self._release()
            raise
        if first is None:
            self._release()
            raise SSMVOSError(f"{description} gave no frame")
        self.received = 1
        self._first: np.ndarray | None = first
        self._size = first.shape[:2]

    def _read(self) -> np.ndarray | None:  # pragma: no cover - interface
        raise NotImplementedError

    def _release(self) -> None:
        """Close what the source reads from (called from the reader thread once it ends)."""

    def __len__(self) -> int:
        raise TypeError(f"{self.description} is live: its length is unknown")

    def frame_size(self) -> tuple[int, int]:
        return self._size

    def get(self, index: int) -> np.ndarray:
        if index == 0 and self._first is not None:
            return self._first
        raise SSMVOSError(f"{self.description} is live: frame {index} cannot be read back")

    def stream(self, start: int = 0, count: int | None = None,
               keep: Callable[[int], bool] | None = None) -> Iterator[tuple[int, np.ndarray, float]]:
        """Yield ``(index, frame, arrival)`` as frames arrive, from frame ``start`` on
        (earlier ones are skipped), at most ``count`` of them; ``arrival`` is
        ``time.monotonic()`` when the frame was read (for frame 0: when streaming began).
        ``keep(index)`` True protects a frame from the drop policy."""
        if keep is not None:
            self._keep = keep
        if self._thread is None:
            self._buffer.append((0, self._first, time.monotonic()))
            self._first = None
            self._thread = threading.Thread(target=self._reader, name="ssmvos-live", daemon=True)
            self._thread.start()
        yielded = 0
        while count is None or yielded < count:
            with self._cond:
                while not self._buffer and self._end is None:
                    self._cond.wait(0.25)
                if not self._buffer:
                    if isinstance(self._end, BaseException):
                        raise self._end
                    return
                item = self._buffer.popleft()
                self._cond.notify_all()
            if item[0] >= start:
                yielded += 1
                yield item

    def _reader(self) -> None:
        index = 1
        end: bool | BaseException = True
        try:
            while not self._stop.is_set():
                frame = self._read()
                if frame is None:
                    break
                self.received += 1
                self._push((index, frame, time.monotonic()))
                index += 1
        except BaseException as exc:  # handed to the consumer after the frames before it
            end = exc
        finally:
            self._release()
            with self._cond:
                self._end = end
                self._cond.notify_all()

    def _push(self, item: tuple[int, np.ndarray, float]) -> None:
        with self._cond:
            while len(self._buffer) >= self.queue_size and not self._stop.is_set():
                if self.drop:
                    victim = next((k for k, queued in enumerate(self._buffer) if not self._keep(queued[0])), None)
                    if victim is not None:
                        del self._buffer[victim]
                        self.dropped += 1
                        break
                self._cond.wait(0.1)
            self._buffer.append(item)
            self._cond.notify_all()

    def close(self) -> None:
        """Stop reading (the reader thread ends after its current read)."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is None:
            self._release()


@contextlib.contextmanager
def _quiet_opencv() -> Iterator[None]:
    """OpenCV's and FFmpeg's own log lines off while opening a capture (their failures
    become one SSMVOSError instead). FFmpeg reads its level once, on its first use."""
    level = cv2.utils.logging.getLogLevel()
    saved = os.environ.get("OPENCV_FFMPEG_LOGLEVEL")
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    os.environ["OPENCV_FFMPEG_LOGLEVEL"] = "-8"  # AV_LOG_QUIET
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(level)
        if saved is None:
            os.environ.pop("OPENCV_FFMPEG_LOGLEVEL", None)
        else:
            os.environ["OPENCV_FFMPEG_LOGLEVEL"] = saved


class CaptureStream(LiveSource):
    """A camera (OpenCV device index) or a network stream (RTSP, HTTP, ... URL) read by OpenCV."""

    #: seconds OpenCV waits to open a network stream, and for each of its frames
    TIMEOUT = 15.0

    def __init__(self, source: int | str, queue_size: int = 4, drop: bool = True):
        what = f"camera {source}" if isinstance(source, int) else f"stream {source}"
        with _quiet_opencv():
            if isinstance(source, int):
                cap = cv2.VideoCapture(source)
            else:
                ms = int(self.TIMEOUT * 1000)
                cap = cv2.VideoCapture(source, cv2.CAP_FFMPEG,
                                       [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms])
        if not cap.isOpened():
            raise SSMVOSError(f"cannot open {what}" + (" (no such camera?)" if isinstance(source, int) else ""))
        self._cap = cap
        fps = float(cap.get(cv2.CAP_PROP_FPS))
        self.fps = fps if 0 < fps < 1000 else None
        super().__init__(what, queue_size, drop)

    def _read(self) -> np.ndarray | None:
        ok, bgr = self._cap.read()
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) if ok else None

    def _release(self) -> None:
        self._cap.release()


_JPEG_SCAN_END = re.compile(rb"\xff+[^\x00\xd0-\xd7\xff]")


class PipeStream(LiveSource):
    """Frames on a byte stream such as stdin: concatenated JPEG or PNG images (ffmpeg
    ``-f image2pipe``, an MJPEG stream) or a YUV4MPEG2 stream (ffmpeg ``-f yuv4mpegpipe``;
    4:2:0, 4:4:4 or mono, converted to RGB as OpenCV does). The format is told by the first
    bytes."""

    CHUNK = 1 << 16

    def __init__(self, stream: BinaryIO, description: str = "stdin", queue_size: int = 4, drop: bool = True):
        self.description = description
        self._stream = stream
        self._buf = bytearray()
        self._eof = False
        self._count = 0  # frames parsed
        head = self._peek(9)
        if not head:
            raise SSMVOSError(f"{description} gave no frame (it is empty)")
        if head.startswith(b"YUV4MPEG2"):
            self._format = "y4m"
            self._y4m_header(description)
        elif head.startswith(b"\xff\xd8"):
            self._format = "jpeg"
        elif head.startswith(b"\x89PNG"):
            self._format = "png"
        else:
            raise SSMVOSError(f"{description} holds neither JPEG/PNG images nor a YUV4MPEG2 stream "
                              f"(it starts with {bytes(head[:9])!r})")
        super().__init__(description, queue_size, drop)

    # -- bytes ---------------------------------------------------------------------------
    def _fill(self, n: int) -> bool:
        """Buffer at least ``n`` bytes unless the stream ends first; False if it did."""
        while len(self._buf) < n and not self._eof:
            chunk = self._stream.read1(self.CHUNK) if hasattr(self._stream, "read1") else self._stream.read(self.CHUNK)
            if not chunk:
                self._eof = True
            self._buf += chunk
        return len(self._buf) >= n

    def _peek(self, n: int) -> bytes:
        self._fill(n)
        return bytes(self._buf[:n])

    def _take(self, n: int, what: str) -> bytes:
        if not self._fill(n):
            raise SSMVOSError(f"{self.description} ended in the middle of frame {self._count} ({what})")
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    # -- formats -------------------------------------------------------------------------
    def _read(self) -> np.ndarray | None:
        if not self._fill(1):
            return None
        data = {"jpeg": self._jpeg, "png": self._png, "y4m": self._y4m}[self._format]()
        if isinstance(data, np.ndarray):
            frame = data
        else:
            bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
            if bgr is None:
                raise SSMVOSError(f"cannot decode image {self._count} on {self.description}")
            frame = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        self._count += 1
        return frame

    def _jpeg(self) -> bytes:
        """One JPEG: marker segments up to EOI; entropy-coded data after each SOS runs to the
        next marker (0xFF followed by neither 0x00 nor a restart marker)."""
        out = bytearray(self._take(2, "JPEG start"))
        if out != b"\xff\xd8":
            raise SSMVOSError(f"{self.description}: image {self._count} is not a JPEG like the first")
        while True:
            marker = self._take(2, "JPEG marker")
            while marker[1] == 0xFF:  # fill bytes
                marker = marker[1:] + self._take(1, "JPEG marker")
            if marker[0] != 0xFF:
                raise SSMVOSError(f"{self.description}: image {self._count} is a broken JPEG")
            out += marker
            code = marker[1]
            if code == 0xD9:
                return bytes(out)
            if 0xD0 <= code <= 0xD7 or code == 0x01:
                continue
            length = self._take(2, "JPEG segment")
            out += length + self._take(int.from_bytes(length, "big") - 2, "JPEG segment")
            if code == 0xDA:  # start of scan
                while True:
                    found = _JPEG_SCAN_END.search(self._buf)
                    if found is not None:
                        out += self._buf[: found.start()]
                        del self._buf[: found.start()]
                        break
                    keep = 1 if self._buf.endswith(b"\xff") else 0
                    out += self._buf[: len(self._buf) - keep]
                    del self._buf[: len(self._buf) - keep]
                    if not self._fill(len(self._buf) + 1):
                        raise SSMVOSError(f"{self.description} ended in the middle of frame {self._count} "
                                          "(JPEG data)")

    def _png(self) -> bytes:
        out = bytearray(self._take(8, "PNG signature"))
        if out != b"\x89PNG\r\n\x1a\n":
            raise SSMVOSError(f"{self.description}: image {self._count} is not a PNG like the first")
        while True:
            head = self._take(8, "PNG chunk")
            out += head + self._take(int.from_bytes(head[:4], "big") + 4, "PNG chunk")
            if head[4:] == b"IEND":
                return bytes(out)

    def _line(self, what: str) -> bytes:
        while b"\n" not in self._buf:
            if not self._fill(len(self._buf) + 1):
                raise SSMVOSError(f"{self.description} ended in the middle of frame {self._count} ({what})")
            if len(self._buf) > 4096:
                raise SSMVOSError(f"{self.description}: a YUV4MPEG2 {what} line is too long")
        end = self._buf.index(b"\n")
        line = bytes(self._buf[:end])
        del self._buf[: end + 1]
        return line

    def _y4m_header(self, description: str) -> None:
        fields = {t[:1]: t[1:] for t in self._line("header").split()[1:]}
        try:
            self._w, self._h = int(fields[b"W"]), int(fields[b"H"])
            rate = fields.get(b"F", b"0:1").split(b":")
            self.fps = float(rate[0]) / float(rate[1]) if float(rate[0]) > 0 else None
        except (KeyError, ValueError, ZeroDivisionError, IndexError):
            raise SSMVOSError(f"{description}: the YUV4MPEG2 header has no valid W, H or F") from None
        colour = fields.get(b"C", b"420jpeg").decode(errors="replace")
        area = self._w * self._h
        if colour.startswith("420"):
            if self._w % 2 or self._h % 2:
                raise SSMVOSError(f"{description}: 4:2:0 frames must have an even width and height")
            self._chroma, self._frame_bytes = "420", area * 3 // 2
        elif colour.startswith("444") and colour != "444alpha":
            self._chroma, self._frame_bytes = "444", area * 3
        elif colour.startswith("mono") and colour in ("mono", "mono8"):
            self._chroma, self._frame_bytes = "mono", area
        else:
            raise SSMVOSError(f"{description}: YUV4MPEG2 colour space C{colour} is not supported "
                              "(use 420, 444 or mono, 8 bits)")

    def _y4m(self) -> np.ndarray:
        if not self._line("FRAME").startswith(b"FRAME"):
            raise SSMVOSError(f"{self.description}: frame {self._count} does not start with FRAME")
        data = np.frombuffer(self._take(self._frame_bytes, "YUV4MPEG2 frame"), np.uint8)
        h, w = self._h, self._w
        if self._chroma == "420":
            return cv2.cvtColor(data.reshape(h * 3 // 2, w), cv2.COLOR_YUV2RGB_I420)
        if self._chroma == "444":
            return cv2.cvtColor(np.ascontiguousarray(data.reshape(3, h, w).transpose(1, 2, 0)), cv2.COLOR_YUV2RGB)
        return cv2.cvtColor(data.reshape(h, w), cv2.COLOR_GRAY2RGB)


class IterableStream(LiveSource):
    """Frames from a Python iterable (a generator, a camera wrapper, ...): H×W×3 uint8 RGB."""

    def __init__(self, frames: Iterable[np.ndarray], fps: float | None = None, queue_size: int = 4,
                 drop: bool = True):
        self._it = iter(frames)
        self._count = 0
        self.fps = fps
        super().__init__("the frame iterable", queue_size, drop)

    def _read(self) -> np.ndarray | None:
        frame = next(self._it, None)
        if frame is None:
            return None
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[-1] != 3 or frame.dtype != np.uint8:
            raise SSMVOSError(f"frame {self._count} of the iterable is {'×'.join(map(str, frame.shape))} "
                              f"{frame.dtype}, not H×W×3 uint8 RGB")
        self._count += 1
        return frame


def is_live(video: object) -> bool:
    """Whether :func:`open_frames` opens ``video`` as a live source (without opening it)."""
    if isinstance(video, (np.ndarray, list, tuple)):
        return False
    if isinstance(video, int) or hasattr(video, "read"):
        return True
    if isinstance(video, (str, os.PathLike)):
        text = os.fspath(video)
        return text == "-" or "://" in text or (is_number(text) and not Path(text).exists())
    return hasattr(video, "__iter__")


def open_frames(video: object, queue_size: int = 4, drop: bool = True) -> FrameSource:
    """A frame source for ``video``: a video file, a folder of frames, a list of image paths,
    a T×H×W×3 uint8 array; or, live, a camera index (an int or a string of digits that is not
    a file), a URL (``rtsp://``, ``http://``, ...), ``"-"`` for stdin, a binary file object,
    or an iterable of H×W×3 frames. ``queue_size`` and ``drop`` apply to live sources."""
    if isinstance(video, np.ndarray):
        return ArrayFrames(video)
    if isinstance(video, (list, tuple)):
        return FrameFiles([Path(p) for p in video])
    if isinstance(video, bool):
        raise SSMVOSError(f"not a video: {video!r}")
    if isinstance(video, int):
        return CaptureStream(video, queue_size, drop)
    if hasattr(video, "read"):
        return PipeStream(video, getattr(video, "name", "the byte stream"), queue_size, drop)
    if isinstance(video, (str, os.PathLike)):
        text = os.fspath(video)
        if text == "-":
            # unbuffered, on the descriptor itself: a reader thread blocked in sys.stdin.buffer
            # would hold its lock and abort the interpreter's shutdown (e.g. after Ctrl-C)
            return PipeStream(open(sys.stdin.fileno(), "rb", buffering=0, closefd=False), "stdin", queue_size, drop)
        if "://" in text:
            return CaptureStream(text, queue_size, drop)
        path = Path(text)
        if path.is_dir():
            return FrameFiles(list_frames(path))
        if path.is_file():
            return VideoFile(path)
        if is_number(text):
            return CaptureStream(int(text), queue_size, drop)
        if path.suffix.lower() in VIDEO_SUFFIXES:
            return VideoFile(path)  # raises naming the missing file
        raise SSMVOSError(f"video not found: {path}")
    if hasattr(video, "__iter__"):
        return IterableStream(video, queue_size=queue_size, drop=drop)
    raise SSMVOSError(f"cannot read frames from a {type(video).__name__}")
