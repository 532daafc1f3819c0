"""Device-side steps of tools/convert, run in a clean child process.

A process that has imported TensorFlow cannot also load tflite-runtime's
interpreter (both bundle TFLite), and the device never has TensorFlow; so the
converter runs everything the device would run — detection, cropping, the
converted model in each runtime — in a child process through edge/ itself.

  python -m tools.convert.devrun check MODEL RUNTIME
      load and run MODEL once; print JSON {ok, input, output, ...}
  python -m tools.convert.devrun crops SPEC.json OUT.npz [--detector NAME] IMAGE...
      detect + align each image as the device would (recipe from SPEC); OUT.npz
      holds uint8 crops, their paths, and the paths with no face
  python -m tools.convert.devrun embed MODEL RUNTIME SPEC.json CROPS.npz OUT.npy
      embeddings of the crops by MODEL in RUNTIME (normalisation and mirror
      averaging from SPEC), plus the median ms per crop on stdout as JSON
  python -m tools.convert.devrun scores MODEL RUNTIME SPEC.json CROPS.npz OUT.npy
      as embed, but MODEL's raw outputs (a liveness logit): no mirror
      averaging, no L2 normalisation
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from edge.cards import ModelCard


def _card_from_spec(spec: dict[str, Any], path: str = "") -> ModelCard:
    """The card a converted model will get, from a source spec (a liveness model: one logit, no mirroring)."""
    from edge.cards import CropRecipe, ModelCard

    liveness = spec.get("task", "embedding") == "liveness"
    h, w = (int(v) for v in spec["input_size"])
    return ModelCard(
        path=Path(path),
        sha256="",
        input_size=(h, w),
        color=spec.get("color", "RGB"),
        normalization=spec.get("normalization", {"kind": "prewhiten"}),
        embedding_size=1 if liveness else int(spec["embedding_size"]),
        crop=CropRecipe.from_dict(spec.get("crop", {})),
        flip_average=False if liveness else bool(spec.get("flip_average", True)),
        metric="logit" if liveness else "cosine",
        role="liveness" if liveness else "embedder",
    )


def cmd_check(args: argparse.Namespace) -> int:
    from edge.errors import FacegateError
    from edge.runtime import Model

    try:
        m = Model(args.model, runtime=args.runtime, threads=1)
        y = m.run(np.zeros(m.inputs[0].shape, np.float32))[0]
    except FacegateError as exc:
        print(json.dumps({"ok": False, "error": str(exc)}))
        return 1
    print(
        json.dumps(
            {
                "ok": True,
                "input": list(m.inputs[0].shape),
                "output": list(y.shape),
                "input_dtype": str(m.inputs[0].dtype),
                "finite": bool(np.isfinite(y).all()),
            }
        )
    )
    return 0


def cmd_crops(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from edge.config import load_config
    from edge.detect import largest_first
    from edge.errors import FacegateError
    from edge.images import read_image
    from edge.pipeline import build_cropper, build_detector

    spec = json.loads(Path(args.spec).read_text())
    card = _card_from_spec(spec)
    config = load_config()
    config = replace(
        config, models=replace(config.models, detector=args.detector, dir=args.model_dir)
    )
    detector = build_detector(config)
    cropper = build_cropper(config, card.crop, card.input_size, where=args.spec)
    paths = list(args.images)
    if args.list:
        paths += [line.strip() for line in Path(args.list).read_text().splitlines() if line.strip()]
    crops, kept, no_face, unreadable = [], [], [], []
    try:
        from tqdm import tqdm

        it = tqdm(paths, desc="faces", unit="img", file=sys.stderr, disable=args.quiet)
    except ImportError:
        it = paths
    for p in it:
        try:
            frame = read_image(p)
        except FacegateError:
            unreadable.append(p)
            continue
        faces = detector(frame)
        if not faces:
            no_face.append(p)
            continue
        aligned, found = cropper(frame, largest_first(faces)[0])
        if not found:  # the device would not decide on this crop either
            no_face.append(p)
            continue
        crops.append(aligned.rgb)
        kept.append(p)
    h, w = card.input_size
    np.savez(
        args.out,
        crops=np.stack(crops) if crops else np.zeros((0, h, w, 3), np.uint8),
        paths=np.array(kept, dtype=str),
        no_face=np.array(no_face, dtype=str),
        unreadable=np.array(unreadable, dtype=str),
    )
    print(json.dumps({"faces": len(kept), "no_face": len(no_face), "unreadable": len(unreadable)}))
    return 0


def run_crops(run, crops: np.ndarray, card, *, batch: int = 1) -> np.ndarray:
    """The model's raw outputs (N x outputs) on the crops, normalised as the device does.

    ``batch`` > 1 runs that many crops per call (the source model in
    TensorFlow is much faster batched; the device runtimes take batch 1).
    """
    from edge.embed import normalize

    out = np.zeros((len(crops), card.embedding_size), np.float32)
    steps = range(0, len(crops), batch)
    try:
        from tqdm import tqdm

        steps = tqdm(
            steps, desc="running", unit="batch", file=sys.stderr, disable=None
        )  # None: only on a terminal
    except ImportError:
        pass
    for i in steps:
        chunk = crops[i : i + batch]
        x = np.concatenate([normalize(c, card) for c in chunk])
        out[i : i + len(chunk)] = np.asarray(run(x), np.float32).reshape(len(chunk), -1)
    return out


def embed_crops(run, crops: np.ndarray, card, *, batch: int = 1) -> np.ndarray:
    """Embeddings as the device makes them: normalise, run, mirror-average, L2."""

    def unit(v: np.ndarray) -> np.ndarray:
        return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)

    v = unit(run_crops(run, crops, card, batch=batch))
    if card.flip_average:
        v = unit(v + unit(run_crops(run, crops[:, :, ::-1], card, batch=batch)))
    return v


def cmd_run(args: argparse.Namespace) -> int:
    """embed (embeddings, as the device matches them) or scores (raw outputs, e.g. a liveness logit)."""
    from edge.runtime import Model

    spec = json.loads(Path(args.spec).read_text())
    card = _card_from_spec(spec)
    crops = np.load(args.crops)["crops"]
    model = Model(args.model, runtime=args.runtime, threads=args.threads)
    times = []

    def run(x):
        t = time.perf_counter()
        y = model.run(x)[0]
        times.append((time.perf_counter() - t) * 1e3)
        return y

    np.save(args.out, (embed_crops if args.cmd == "embed" else run_crops)(run, crops, card))
    print(
        json.dumps({"crops": len(crops), "median_ms": float(np.median(times)) if times else None})
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="tools.convert.devrun")
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("check")
    s.add_argument("model")
    s.add_argument("runtime")
    s.set_defaults(func=cmd_check)
    s = sub.add_parser("crops")
    s.add_argument("spec")
    s.add_argument("out")
    s.add_argument("images", nargs="*")
    s.add_argument("--list", help="file with one image path per line")
    s.add_argument("--detector", default="blazeface-short")
    s.add_argument("--model-dir")
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(func=cmd_crops)
    for name in ("embed", "scores"):
        s = sub.add_parser(name)
        for a in ("model", "runtime", "spec", "crops", "out"):
            s.add_argument(a)
        s.add_argument("--threads", type=int, default=2)
        s.set_defaults(func=cmd_run)
    args = ap.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
