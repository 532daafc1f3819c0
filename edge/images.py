"""Read image files into Frames.

In: a path to a JPEG/PNG/BMP/WebP/... file.  Out: a Frame (RGB uint8), or an
ImageError naming the file.

An image file is untrusted input (enrollment photos, replays): a few hundred
kilobytes of PNG can declare 100,000 x 100,000 pixels and cost gigabytes to
decode, and a FIFO where a file should be would block forever.  So the file
must be a regular file of at most MAX_BYTES, and its pixel count, read from the
header before anything is decoded, at most MAX_PIXELS.
"""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np

from edge.errors import ImageError
from edge.files import read_regular
from edge.types import Frame

MAX_BYTES = 64 << 20  # 64 MiB
MAX_PIXELS = 40_000_000  # 40 MP: a 12 MP camera's still fits three times over


def declared_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG, JPEG, BMP, GIF or WebP header; None if the format is not one of these."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        w, h = struct.unpack(">II", data[16:24])
        return int(w), int(h)
    if data[:2] == b"BM" and len(data) >= 26:
        w, h = struct.unpack("<ii", data[18:26])
        return abs(int(w)), abs(int(h))
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        w, h = struct.unpack("<HH", data[6:10])
        return int(w), int(h)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and len(data) >= 30:
        kind = data[12:16]
        if kind == b"VP8X":
            return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(
                data[27:30], "little"
            )
        if kind == b"VP8 ":
            w, h = struct.unpack("<HH", data[26:30])
            return int(w) & 0x3FFF, int(h) & 0x3FFF
        if kind == b"VP8L" and len(data) >= 25:
            b = int.from_bytes(data[21:25], "little")
            return (b & 0x3FFF) + 1, ((b >> 14) & 0x3FFF) + 1
    if data[:2] == b"\xff\xd8":
        return _jpeg_size(data)
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """The frame size from the first SOF marker (baseline, progressive, lossless...)."""
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            i += 1
            continue
        marker = data[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7 or marker == 0xFF:
            i += 1 if marker == 0xFF else 2
            continue
        length = struct.unpack(">H", data[i + 2 : i + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h, w = struct.unpack(">HH", data[i + 5 : i + 9])
            return int(w), int(h)
        i += 2 + length
    return None


def decode(data: bytes, source: str = "") -> Frame:
    """Decode image bytes (any format OpenCV reads) into an RGB Frame, refusing oversized ones first."""
    where = source or "<bytes>"
    size = declared_size(data)
    if size is not None and size[0] * size[1] > MAX_PIXELS:
        raise ImageError(
            f"{where}: declares {size[0]} x {size[1]} pixels, more than {MAX_PIXELS:,}: refusing to decode it"
        )
    buf = np.frombuffer(data, np.uint8)
    bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR) if buf.size else None
    if bgr is None or bgr.size == 0:
        raise ImageError(f"{where}: not a decodable image")
    if bgr.shape[0] * bgr.shape[1] > MAX_PIXELS:  # a format whose header was not read above
        raise ImageError(
            f"{where}: {bgr.shape[1]} x {bgr.shape[0]} pixels, more than {MAX_PIXELS:,}"
        )
    return Frame(rgb=cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), source=source)


def read_image(path: str | Path) -> Frame:
    try:
        data, _ = read_regular(path, what="an image", error=ImageError, max_bytes=MAX_BYTES)
    except FileNotFoundError:
        raise ImageError(f"{path}: cannot read an image: no such file") from None
    return decode(data, str(path))
