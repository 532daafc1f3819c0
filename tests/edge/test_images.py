"""edge.images: untrusted image files are refused before they cost memory or time."""

from __future__ import annotations

import os
import struct
import zlib

import cv2
import numpy as np
import pytest

from edge.errors import ImageError
from edge.images import MAX_PIXELS, declared_size, decode, read_image


@pytest.mark.parametrize("ext", [".png", ".jpg", ".bmp", ".webp"])
def test_the_header_size_matches_what_opencv_decodes(ext):
    img = np.random.default_rng(1).integers(0, 255, (37, 53, 3), dtype=np.uint8)
    ok, buf = cv2.imencode(ext, img)
    assert ok and declared_size(buf.tobytes()) == (53, 37)


def _png_declaring(w: int, h: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    chunk = (
        struct.pack(">I", len(ihdr))
        + b"IHDR"
        + ihdr
        + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    )
    idat = zlib.compress(b"\0" * 1000)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk
        + struct.pack(">I", len(idat))
        + b"IDAT"
        + idat
        + struct.pack(">I", zlib.crc32(b"IDAT" + idat))
    )


def test_a_png_bomb_is_refused_from_its_header(tmp_path):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_declaring(100_000, 100_000))
    with pytest.raises(ImageError) as e:
        read_image(bomb)
    assert (
        str(e.value)
        == f"{bomb}: declares 100000 x 100000 pixels, more than {MAX_PIXELS:,}: refusing to decode it"
    )


def test_a_jpeg_declaring_a_huge_frame_is_refused():
    _ok, buf = cv2.imencode(".jpg", np.zeros((16, 16, 3), np.uint8))
    data = bytearray(buf.tobytes())
    i = data.index(b"\xff\xc0")
    data[i + 5 : i + 9] = struct.pack(">HH", 60000, 60000)
    with pytest.raises(ImageError, match="declares 60000 x 60000 pixels"):
        decode(bytes(data), "huge.jpg")


def test_a_fifo_or_a_directory_is_refused_at_once(tmp_path):
    fifo = tmp_path / "frame.jpg"
    os.mkfifo(fifo)
    with pytest.raises(ImageError, match="not a regular file"):
        read_image(fifo)  # returns at once: no writer needed, nothing blocks
    with pytest.raises(ImageError, match="is a directory"):
        read_image(tmp_path)
    with pytest.raises(ImageError, match="cannot read"):
        read_image(tmp_path / "none.jpg")
    with pytest.raises(ImageError, match="cannot read"):
        read_image("bad\0name.jpg")


def test_garbage_is_not_an_image(tmp_path):
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"\xff\xd8 this is not a jpeg")
    with pytest.raises(ImageError, match="not a decodable image"):
        read_image(junk)
