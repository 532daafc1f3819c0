"""The output modes (float32 ... int8-io) and, for int8, the calibration faces.

``configure`` sets a TFLiteConverter for a mode; ``calibrate`` turns calibration
photos into the representative dataset TFLite quantises with, cropped and
normalised exactly as the device will feed the model.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tools.convert import ConvertError
from tools.convert.device import Workspace
from tools.convert.loading import import_tf

log = logging.getLogger(__name__)

MODES = ("float32", "float16", "dynamic-int8", "int8", "int8-io")
INT8_MODES = ("int8", "int8-io")  # full-integer modes: they need calibration faces
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")

# A folder of calibration photos, or an explicit list of them.
Calibration = Path | str | Sequence[Path | str]
Representative = Callable[[], Iterator[list[np.ndarray]]]


def configure(converter: Any, mode: str, representative: Representative | None) -> None:
    tf = import_tf()
    if mode == "float32":
        return
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif mode == "dynamic-int8":
        # TF 2.21 quantises dense layers per channel into FULLY_CONNECTED v12,
        # which tflite-runtime 2.14 cannot load; per-tensor keeps v<=11.
        converter._experimental_disable_per_channel_quantization_for_dense_layers = True
    elif mode in INT8_MODES:
        if representative is None:
            raise ConvertError(f"mode {mode} needs calibration images (--calibration DIR)")
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter._experimental_disable_per_channel_quantization_for_dense_layers = True
        if mode == "int8-io":
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
    else:
        raise ConvertError(f"unknown mode {mode!r}; one of {', '.join(MODES)}")


def calibration_images(folder: Path) -> list[Path]:
    """Every image under ``folder`` (also used for a folder of held-out faces)."""
    if not folder.is_dir():
        raise ConvertError(f"{folder}: calibration folder not found")
    images = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise ConvertError(f"{folder}: no images (.jpg, .png, .bmp) in the calibration folder")
    return images


def calibration_name(calibration: Calibration) -> str:
    """The calibration folder, or a digest of an explicit image list, for messages and the build key.

    A list lets a trainer calibrate on exactly its training frames, so held-out subjects never leak in.
    """
    if isinstance(calibration, (str, os.PathLike)):
        return str(calibration)
    digest = hashlib.sha256("\n".join(map(str, calibration)).encode()).hexdigest()[:16]
    return f"{len(calibration)} listed images (sha256 {digest})"


def _calibration_paths(calibration: Calibration, max_faces: int) -> list[Path]:
    """The images to crop: the folder's or the list's, thinned evenly when there are far more than needed.

    Twice the faces kept leaves room for photos without a usable face; an even
    stride keeps the sample spread across the whole folder.
    """
    if isinstance(calibration, (str, os.PathLike)):
        images = calibration_images(Path(calibration))
    else:
        images = [Path(p) for p in calibration]
    if len(images) > 2 * max_faces:
        images = images[:: len(images) // (2 * max_faces)]
    return images


@dataclass(frozen=True)
class CalibrationSet:
    representative: Representative  # TFLite's representative dataset
    counts: dict[str, int]  # faces, no_face, unreadable: for the conversion report


def calibrate(
    calibration: Calibration, ws: Workspace, card: Any, *, min_faces: int, max_faces: int
) -> CalibrationSet:
    """Crop the calibration photos as the device does; refuse too few faces to calibrate on."""
    images = _calibration_paths(calibration, max_faces)
    info = ws.crops(images, "calib")
    n = len(info["crops"])
    log.info(
        "calibration: %d faces from %d images (%d without a face, %d unreadable)",
        n,
        len(images),
        info["no_face"],
        info["unreadable"],
    )
    if n < min_faces:
        raise ConvertError(
            f"{calibration_name(calibration)}: only {n} usable faces for calibration "
            f"({info['no_face']} images without a face, {info['unreadable']} unreadable); "
            f"need at least {min_faces}"
        )
    counts = {k: info[k] for k in ("faces", "no_face", "unreadable")}
    return CalibrationSet(_representative(info["crops"][:max_faces], card), counts)


def _representative(crops: np.ndarray, card: Any) -> Representative:
    """TFLite's representative dataset: the calibration faces, normalised as the device will."""
    from edge.embed import normalize

    def batches() -> Iterator[list[np.ndarray]]:
        for c in crops:
            yield [normalize(c, card)]

    return batches
