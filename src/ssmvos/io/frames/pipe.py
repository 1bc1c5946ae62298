"""Frames on a byte stream such as stdin (a live source): concatenated JPEG or PNG images, or a
YUV4MPEG2 stream, split into frames as the bytes arrive."""
from __future__ import annotations

import re
from typing import BinaryIO

import cv2
import numpy as np

from ...errors import SSMVOSError
from .live import LiveSource

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


__all__ = ["PipeStream"]
