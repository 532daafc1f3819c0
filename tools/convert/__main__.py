"""python -m tools.convert: convert a face-embedding or liveness model for the device.

Examples:
  python -m tools.convert facenet-keras                       # manifest name: fetched, float32
  python -m tools.convert my_model.h5 --mode int8 --calibration faces/ \\
      --input-size 112 112 --normalization fixed:127.5:128 --embedding-size 512
  python -m tools.convert live.h5 --task liveness --mode int8 --calibration train_faces/ \\
      --holdout nuaa_test/ --input-size 64 64 --normalization fixed:127.5:127.5
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from edge.cli import run_command, setup_logging
from edge.errors import ExitCode
from edge.files import sha256_file
from edge.manifest import default_cache_dir, fetch, load_manifest
from tools.convert import ConvertError
from tools.convert.build import Report, convert
from tools.convert.holdout import Evaluation
from tools.convert.parity import Bounds
from tools.convert.quantize import MODES, calibration_images
from tools.convert.source import FORMATS, TASKS, Source, detect_format
from tools.lfw import read_pairs


def print_report(report: Report) -> None:
    card = report.card
    if not report.converted:
        print(f"{report.out}: up to date ({card.get('mode')}, card beside it)")
        return
    data = card.get("report_data", {})
    size, src = data.get("size_bytes", 0), data.get("source_size_bytes", 0)
    share = 100 * size / max(src, 1)
    print(
        f"{report.out}: converted ({card['mode']}), {size / 1e6:.1f} MB ({share:.0f}% of the source)"
    )
    if "calibration" in data:
        c = data["calibration"]
        print(
            f"  calibration: {c['faces']} faces ({c['no_face']} images without a face, "
            f"{c['unreadable']} unreadable)"
        )
    liveness = card.get("role") == "liveness"
    for runtime, p in (card.get("parity") or {}).items():
        print(_liveness_parity_line(runtime, p) if liveness else _embedding_parity_line(runtime, p))
    for k, v in (data.get("latency_ms") or {}).items():
        print(f"  latency {k}: {v:.1f} ms per run")
    print(f"  card: {report.out}.card.json; report: {report.out}.report.json")


def _liveness_parity_line(runtime: str, p: dict[str, Any]) -> str:
    line = (
        f"  parity in {runtime}: live probability vs source |diff| mean {p['mean_probability_diff']:.4f}, "
        f"p99 {p['p99_probability_diff']:.4f}, max {p['max_probability_diff']:.4f}; "
        f"verdicts changed {100 * p['verdict_flips']:.2f}%"
    )
    if p.get("source_auc") is not None:
        line += f"; AUC {p['source_auc']:.4f} -> {p['converted_auc']:.4f}"
    return line


def _embedding_parity_line(runtime: str, p: dict[str, Any]) -> str:
    line = (
        f"  parity in {runtime}: cosine to source mean {p['mean_cosine']:.4f}, "
        f"p1 {p['p1_cosine']:.4f}, min {p['min_cosine']:.4f}"
    )
    if p.get("source"):
        src, conv = p["source"], p["converted"]
        line += (
            f"; accuracy {100 * src['accuracy']:.2f}% -> {100 * conv['accuracy']:.2f}%"
            f", TAR@FAR1e-3 {100 * src['tar_at_far_1e3']:.2f}% -> {100 * conv['tar_at_far_1e3']:.2f}%"
        )
    return line


def nuaa_labels(images: list[Path]) -> list[int] | None:
    """1 live / 0 attack by NUAA's layout (ClientRaw/, ImposterRaw/), or None if any image is outside it."""
    from tools.nuaa import LIVE_BY_FOLDER

    labels: list[int] = []
    for p in images:
        live = next((live for folder, live in LIVE_BY_FOLDER.items() if folder in p.parts), None)
        if live is None:
            return None
        labels.append(int(live))
    return labels


def parse_normalization(text: str) -> dict[str, Any]:
    if text == "prewhiten":
        return {"kind": "prewhiten"}
    parts = text.split(":")
    if parts[0] == "fixed" and len(parts) == 3:
        return {"kind": "fixed", "mean": float(parts[1]), "std": float(parts[2])}
    raise ConvertError(f"--normalization: expected prewhiten or fixed:MEAN:STD, got {text!r}")


# ArcFace's five-point template for a 112x112 crop (insightface), the subject's right eye
# on the image's left: what ArcFace-style models (SFace, MobileFaceNet, IResNet) train on.
ARCFACE_112 = {
    "right_eye": (38.2946, 51.6963),
    "left_eye": (73.5318, 51.5014),
    "nose_tip": (56.0252, 71.7366),
    "mouth_right": (41.5493, 92.3655),
    "mouth_left": (70.7299, 92.2041),
}


def crop_spec(method: str, margin: float, rotate: bool, size: tuple[int, int]) -> dict[str, Any]:
    """The card's crop for --crop-method; "template" is ArcFace's, scaled to the input size."""
    if method == "template":
        h, w = size
        return {
            "method": "template",
            "template": {
                n: [round(x * w / 112, 4), round(y * h / 112, 4)]
                for n, (x, y) in ARCFACE_112.items()
            },
        }
    return {"method": method, "margin": margin, "rotate": rotate}


def resolve_source(args: argparse.Namespace) -> Source:
    manifest = load_manifest()
    if args.model in manifest and not Path(args.model).exists():
        entry = manifest[args.model]
        if entry.role != "embedder-source":
            raise ConvertError(f"{args.model}: a {entry.role}, not an embedder to convert")
        path = fetch(entry, Path(args.cache) if args.cache else None)
        spec = dict(entry.spec)
        return Source(path, entry.format, entry.name, entry.sha256, spec, dict(entry.tensors))
    path = Path(args.model)
    if not path.exists():
        raise ConvertError(
            f"{path}: no such file, and not a model name in the manifest ({', '.join(manifest)})"
        )
    fmt = args.format or detect_format(path)
    if args.task == "liveness":
        if args.input_size is None:
            raise ConvertError(f"{path}: give --input-size H W for a model outside the manifest")
        task: dict[str, Any] = {"task": "liveness"}  # one logit, never mirror-averaged
    else:
        if args.input_size is None or args.embedding_size is None:
            raise ConvertError(
                f"{path}: give --input-size H W and --embedding-size N for a model outside the manifest"
            )
        task = {"embedding_size": args.embedding_size, "flip_average": not args.no_flip}
    spec = {
        "input_size": list(args.input_size),
        "color": args.color,
        "normalization": parse_normalization(args.normalization),
        **task,
        "crop": crop_spec(
            args.crop_method, args.crop_margin, not args.no_rotate, tuple(args.input_size)
        ),
    }
    tensors = {k: v for k, v in (("input", args.input_name), ("output", args.output_name)) if v}
    sha = sha256_file(path) if path.is_file() else "directory"
    return Source(path, fmt, args.name or path.stem, sha, spec, tensors)


def _model_arguments(ap: argparse.ArgumentParser) -> None:
    """The model, the output, and (outside the manifest) what the card must say about its input."""
    ap.add_argument(
        "model",
        help="model file/directory, or a manifest name (sface, facenet-keras, facenet-20180408)",
    )
    ap.add_argument(
        "--task",
        choices=TASKS,
        default="embedding",
        help="embedding (a face embedder) or liveness (one logit, positive = live)",
    )
    ap.add_argument("--mode", choices=MODES, default="float32")
    ap.add_argument("--out", help="output .tflite (default: MODEL_DIR/NAME.MODE.tflite)")
    ap.add_argument(
        "--cache",
        help="model cache directory (default: $FACEGATE_MODEL_DIR or ~/.cache/facegate/models)",
    )
    ap.add_argument(
        "--format", choices=list(FORMATS), help="source format (default: from the file name)"
    )
    ap.add_argument("--name", help="model name for the card and the output file")
    ap.add_argument(
        "--input-name", help="frozen graph: input tensor (default: the only float placeholder)"
    )
    ap.add_argument("--output-name", help="frozen graph: output tensor (default: the only sink)")
    ap.add_argument("--input-size", type=int, nargs=2, metavar=("H", "W"))
    ap.add_argument("--embedding-size", type=int, help="embedding length (not for --task liveness)")
    ap.add_argument("--color", choices=("RGB", "BGR"), default="RGB")
    ap.add_argument("--normalization", default="prewhiten", help="prewhiten | fixed:MEAN:STD")
    ap.add_argument(
        "--crop-method",
        choices=("landmarks", "box", "template"),
        default="landmarks",
        help="box or landmarks: a face box (FaceNet-style); template: ArcFace's 5-point warp",
    )
    ap.add_argument("--crop-margin", type=float, default=0.0)
    ap.add_argument("--no-rotate", action="store_true")
    ap.add_argument(
        "--no-flip",
        action="store_true",
        help="do not average with the mirror image (a liveness model never is)",
    )


def _gate_arguments(ap: argparse.ArgumentParser) -> None:
    """Calibration faces for int8, held-out faces for the parity gate."""
    ap.add_argument(
        "--calibration", type=Path, help="folder of ordinary face photos for int8 calibration"
    )
    ap.add_argument("--min-calibration-faces", type=int, default=100)
    ap.add_argument(
        "--detector", default="blazeface-short", help="detector for calibration/held-out faces"
    )
    ap.add_argument(
        "--pairs",
        type=Path,
        help="LFW-format pairs file for the parity gate (images beside it in images_deepfunneled/)",
    )
    ap.add_argument(
        "--image-root",
        type=Path,
        help="image folder for --pairs (default: PAIRS_DIR/images_deepfunneled)",
    )
    ap.add_argument(
        "--holdout",
        type=Path,
        help="folder of held-out face photos for the parity gate (an embedder: cosine only; "
        "liveness: a NUAA-layout folder, ClientRaw/ and ImposterRaw/, also gives AUC)",
    )
    ap.add_argument("--min-holdout-faces", type=int, default=50)
    ap.add_argument(
        "--no-parity", action="store_true", help="skip the parity gate (unsafe; float32 only)"
    )


def _bounds_arguments(ap: argparse.ArgumentParser) -> None:
    """The parity gate's bounds (defaults: tools.convert.parity.Bounds)."""
    b = Bounds()
    ap.add_argument("--min-mean-cosine", type=float, default=b.min_mean_cosine)
    ap.add_argument("--min-p1-cosine", type=float, default=b.min_p1_cosine)
    ap.add_argument(
        "--max-accuracy-drop",
        type=float,
        default=b.max_accuracy_drop,
        help="fraction, 0.002 = 0.2 points",
    )
    ap.add_argument("--max-tar-drop", type=float, default=b.max_tar_drop)
    ap.add_argument(
        "--max-probability-diff",
        type=float,
        default=b.max_probability_diff,
        help="liveness: bound on the 99th percentile of |live probability, converted - source|",
    )
    ap.add_argument(
        "--max-verdict-flips",
        type=float,
        default=b.max_verdict_flips,
        help="liveness: fraction of held-out faces whose live/attack verdict at p = 0.5 may change",
    )


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="tools/convert",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _model_arguments(ap)
    _gate_arguments(ap)
    _bounds_arguments(ap)
    ap.add_argument(
        "--force", action="store_true", help="convert even if an up-to-date output exists"
    )
    ap.add_argument("-v", "--verbose", action="store_true")
    return ap


def evaluation_from(args: argparse.Namespace, src: Source) -> Evaluation | None:
    """The held-out faces for the parity gate: LFW-format pairs, or a folder (NUAA's layout labels it)."""
    if args.pairs:
        pairs = read_pairs(args.pairs, args.image_root)
        images = sorted({p for pr in pairs for p in (pr.a, pr.b)})
        return Evaluation(images, pairs)
    if args.holdout:
        images = calibration_images(args.holdout)
        return Evaluation(images, labels=nuaa_labels(images) if src.task == "liveness" else None)
    if args.mode != "float32" and not args.no_parity:
        raise ConvertError(
            f"mode {args.mode}: the parity gate needs held-out faces: "
            "give --pairs or --holdout (or --no-parity, unsafe)"
        )
    return None


def run(args: argparse.Namespace) -> int:
    src = resolve_source(args)
    cache = Path(args.cache) if args.cache else default_cache_dir()
    out = Path(args.out) if args.out else cache / f"{src.name}.{args.mode}.tflite"
    evaluation = evaluation_from(args, src)
    bounds = Bounds(**{f: getattr(args, f) for f in Bounds.__dataclass_fields__})
    report = convert(
        src,
        out,
        mode=args.mode,
        calibration=args.calibration,
        min_calibration_faces=args.min_calibration_faces,
        evaluation=evaluation,
        min_holdout_faces=args.min_holdout_faces,
        bounds=bounds,
        detector=args.detector,
        force=args.force,
    )
    print_report(report)
    return ExitCode.OK


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so temporary files are removed and nothing half-written stays.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    setup_logging(logging.INFO if args.verbose else logging.WARNING)
    return run_command("tools/convert", lambda: run(args), debug=args.verbose)


if __name__ == "__main__":
    sys.exit(main())
