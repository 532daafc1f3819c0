"""convert(): a Source -> a checked .tflite, its card and its conversion report, in named steps.

Nothing is written at ``out`` unless every check passed (it loads and gives
finite output in every device runtime, its output has the card's shape, and it
passes the parity gate when held-out faces are given); the .tflite, the report
and the card are each written atomically, the card last.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.cards import ModelCard, card_path_for, write_card
from edge.files import atomic_write_bytes
from edge.text import first_line
from tools.convert import ConvertError
from tools.convert.card import build_key, make_card, up_to_date
from tools.convert.device import Workspace, device_check
from tools.convert.devrun import _card_from_spec
from tools.convert.holdout import Evaluation, HeldOut, parity_gate, prepare_holdout
from tools.convert.loading import RunSource, load_converter
from tools.convert.parity import Bounds
from tools.convert.quantize import (
    INT8_MODES,
    MODES,
    Calibration,
    CalibrationSet,
    calibrate,
    calibration_name,
    configure,
)
from tools.convert.source import Source, source_size

log = logging.getLogger(__name__)


@dataclass
class Report:
    out: Path
    converted: bool  # False: an up-to-date conversion was already there
    card: dict[str, Any] = field(default_factory=dict)  # with "report_data" when converted


def convert(
    src: Source,
    out: Path,
    *,
    mode: str = "float32",
    calibration: Calibration | None = None,
    min_calibration_faces: int = 100,
    max_calibration_faces: int = 500,
    evaluation: Evaluation | None = None,
    min_holdout_faces: int = 50,
    bounds: Bounds | None = None,
    detector: str = "blazeface-short",
    model_dir: Path | None = None,
    force: bool = False,
) -> Report:
    """Convert ``src`` to ``out`` (+ card + report); refuse it if it fails the device or parity checks.

    ``calibration`` is a folder or a list of images.  Nothing is written under
    ``out`` unless every check passed; all files are written atomically, the card last.
    """
    bounds = bounds or Bounds()
    if mode not in MODES:
        raise ConvertError(f"unknown mode {mode!r}; one of {', '.join(MODES)}")
    liveness = src.task == "liveness"
    if evaluation is not None:
        evaluation.check()
    extra = _key_extra(calibration, evaluation, bounds, detector)
    key = build_key(src, mode, extra)
    if not force and up_to_date(out, key):
        log.info("%s is up to date", out)
        return Report(out, False, json.loads(card_path_for(out).read_text()))
    if mode in INT8_MODES and calibration is None:
        raise ConvertError(f"mode {mode} needs calibration face photos (--calibration DIR)")
    _check_writable(out)
    job = _Job(src, out, mode, liveness, bounds, extra, key, _card_from_spec(src.spec))
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".convert-") as tmpdir:
        ws = Workspace.create(Path(tmpdir), src.spec, detector=detector, model_dir=model_dir)
        calib = None
        if calibration is not None and mode in INT8_MODES:
            calib = calibrate(
                calibration,
                ws,
                job.card,
                min_faces=min_calibration_faces,
                max_faces=max_calibration_faces,
            )
        held = None
        if evaluation is not None:
            held = prepare_holdout(evaluation, ws, min_faces=min_holdout_faces)
        card, report = _build(job, ws, calib, held)
    log.info("wrote %s (%d bytes) and its card", out, card["size_bytes"])
    return Report(out, True, card | {"report_data": report})


@dataclass(frozen=True)
class _Job:
    """One conversion as asked, checked: what the steps after the inputs need to know."""

    src: Source
    out: Path
    mode: str
    liveness: bool
    bounds: Bounds
    extra: dict[str, Any]  # what the build key covers beyond source and mode (see _key_extra)
    key: str  # the build key
    card: ModelCard  # the card the converted model will get: how the device feeds it


def _build(
    job: _Job, ws: Workspace, calib: CalibrationSet | None, held: HeldOut | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Convert, check in every runtime, gate, and write: (the card, the conversion report)."""
    flat, run_source = _to_tflite(job.src, job.mode, calib)
    staged = ws.tmp / job.out.name
    staged.write_bytes(flat)
    checks = device_check(staged)
    _check_output_shape(job.src, checks, liveness=job.liveness)
    report = _size_report(job.src, job.mode, flat, calib)
    parity = None
    if held is not None:
        gate = parity_gate(
            held,
            run_source,
            staged,
            checks=checks,
            ws=ws,
            card=job.card,
            liveness=job.liveness,
            bounds=job.bounds,
            what=f"{job.out.name} ({job.mode})",
        )
        report |= gate.report
        parity = gate.parity
    card = _card(job, flat, checks, parity)
    _write(job.out, flat, report, card)
    return card, report


def _key_extra(
    calibration: Calibration | None, evaluation: Evaluation | None, bounds: Bounds, detector: str
) -> dict[str, Any]:
    """What decides the output besides the source and the mode: in the build key and the card."""
    return {
        "calibration": None if calibration is None else calibration_name(calibration),
        "evaluation_images": len(evaluation.images) if evaluation else 0,
        "bounds": bounds.__dict__,
        "detector": detector,
    }


def _check_writable(out: Path) -> None:
    """Fail before the slow steps if ``out``'s folder cannot take the files."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out.parent, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise ConvertError(f"{out}: cannot write there: {exc.strerror or exc}") from None


def _to_tflite(src: Source, mode: str, calib: CalibrationSet | None) -> tuple[bytes, RunSource]:
    """(the .tflite's bytes, a callable running the source model) for the parity gate."""
    converter, run_source = load_converter(src, src.input_size)
    configure(converter, mode, None if calib is None else calib.representative)
    try:
        flat = converter.convert()
    except Exception as exc:  # TF raises ConverterError and friends
        raise ConvertError(
            f"{src.path}: TFLite conversion ({mode}) failed: {first_line(exc)}"
        ) from None
    return flat, run_source


def _check_output_shape(src: Source, checks: dict[str, dict[str, Any]], *, liveness: bool) -> None:
    """The converted model returns what its card will promise: one logit, or one embedding."""
    out_shape = next(c["output"] for c in checks.values() if c["ok"])
    if liveness and out_shape != [1, 1]:
        raise ConvertError(f"{src.path}: output shape {out_shape} is not one liveness logit [1, 1]")
    if not liveness and (out_shape[-1] != int(src.spec["embedding_size"]) or len(out_shape) != 2):
        raise ConvertError(
            f"{src.path}: output shape {out_shape} is not one embedding of embedding_size "
            f"{src.spec['embedding_size']}"
        )


def _size_report(
    src: Source, mode: str, flat: bytes, calib: CalibrationSet | None
) -> dict[str, Any]:
    report: dict[str, Any] = {
        "mode": mode,
        "size_bytes": len(flat),
        "source_size_bytes": source_size(src.path),
    }
    if calib is not None:
        report["calibration"] = calib.counts
    return report


def _card(
    job: _Job, flat: bytes, checks: dict[str, dict[str, Any]], parity: dict[str, Any] | None
) -> dict[str, Any]:
    extra = {**job.extra, "runtimes": checks}
    card = make_card(job.src, job.mode, hashlib.sha256(flat).hexdigest(), len(flat), extra)
    card["file"] = job.out.name
    card["build_key"] = job.key
    card["parity"] = parity or None
    card["report"] = f"{job.out.name}.report.json"
    return card


def _write(out: Path, flat: bytes, report: dict[str, Any], card: dict[str, Any]) -> None:
    # The card goes last: a .tflite without a matching card is refused by the device.
    atomic_write_bytes(out, flat)
    atomic_write_bytes(
        out.with_name(out.name + ".report.json"), (json.dumps(report, indent=2) + "\n").encode()
    )
    write_card(out, card)
