"""Read image files into Frames.

In: a path to a JPEG/PNG/... file.  Out: a Frame (RGB uint8), or an ImageError
naming the file.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edge.errors import ImageError
from edge.types import Frame


def decode(data: bytes, source: str = "") -> Frame:
    """Decode image bytes (any format OpenCV reads) into an RGB Frame."""
    buf = np.frombuffer(data, np.uint8)
    bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR) if buf.size else None
    if bgr is None or bgr.size == 0:
        raise ImageError(f"{source or '<bytes>'}: not a decodable image")
    return Frame(rgb=cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), source=source)


def read_image(path: str | Path) -> Frame:
    path = Path(path)
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise ImageError(f"{path}: is a directory, not an image") from None
    except OSError as exc:
        raise ImageError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return decode(data, str(path))
