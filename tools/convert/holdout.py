"""The held-out faces and the parity gate over them: does the .tflite behave as its source does?

The held-out photos are cropped as the device crops them; the source model (in
TensorFlow) and the converted one (in each device runtime, in a child process)
run on the same crops, and tools.convert.parity compares the two.  A model
that breaks a bound is refused with ParityError, and nothing is written.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import ParityError
from tools.convert import ConvertError
from tools.convert.device import Workspace
from tools.convert.devrun import embed_crops, run_crops
from tools.convert.loading import RunSource
from tools.convert.parity import Bounds, LivenessParity, PairSet, Parity, compare, compare_liveness

SOURCE_BATCH = 32  # crops per call to the source model in TensorFlow (the runtimes take 1)


@dataclass
class Evaluation:
    """Held-out faces for the parity gate: images, and optionally LFW-format pairs over them
    (an embedder) or labels, 1 live / 0 attack per image (a liveness model, for AUC)."""

    images: list[Path]
    pairs: list[Any] | None = None  # tools.lfw.Pair
    labels: list[int] | None = None

    def check(self) -> None:
        if self.labels is not None and len(self.labels) != len(self.images):
            raise ConvertError(
                f"Evaluation.labels: {len(self.labels)} labels for {len(self.images)} images"
            )


@dataclass(frozen=True)
class HeldOut:
    """The evaluation's faces, cropped as the device crops them."""

    evaluation: Evaluation
    crops: np.ndarray
    paths: list[Path]  # the image of each crop
    no_face: int  # images without a usable face


def prepare_holdout(evaluation: Evaluation, ws: Workspace, *, min_faces: int) -> HeldOut:
    info = ws.crops(evaluation.images, "eval")
    if len(info["crops"]) < min_faces:
        raise ConvertError(
            f"only {len(info['crops'])} held-out faces found; "
            f"the parity gate needs at least {min_faces}"
        )
    return HeldOut(evaluation, info["crops"], info["paths"], info["no_face"])


@dataclass(frozen=True)
class GateResult:
    parity: dict[str, dict[str, Any]]  # per runtime, for the card
    report: dict[str, Any]  # latency_ms, parity, evaluation: for the conversion report


def parity_gate(
    held: HeldOut,
    run_source: RunSource,
    model: Path,
    *,
    checks: dict[str, dict[str, Any]],
    ws: Workspace,
    card: Any,
    liveness: bool,
    bounds: Bounds,
    what: str,
) -> GateResult:
    """Compare the converted ``model`` with its source on the held-out faces in every runtime it loaded in.

    ``checks`` is device_check's result; ``card`` the card the model will get (its
    normalisation and mirroring); ``what`` names the model in the ParityError
    raised when a bound is broken.
    """
    src_out, per_crop = _source_outputs(run_source, held.crops, card, liveness=liveness)
    crops_file = ws.tmp / "evalcrops.npz"
    np.savez(crops_file, crops=held.crops)
    labels, pairs = _labels(held), _pairs(held)
    # A liveness logit is compared raw; embeddings as the device matches them.
    step = "scores" if liveness else "embed"
    latency: dict[str, float] = {"source_tensorflow_per_face_batched": per_crop}
    parity_out: dict[str, dict[str, Any]] = {}
    failures: list[str] = []
    for runtime, info in checks.items():
        if not info.get("ok"):
            continue
        latency[f"converted_{runtime}"], conv_out = ws.run_model(step, model, runtime, crops_file)
        parity: Parity | LivenessParity
        if liveness:
            parity = compare_liveness(src_out, conv_out, runtime, labels)
        else:
            parity = compare(src_out, conv_out, runtime, pairs)
        parity_out[runtime] = parity.as_dict()
        failures += [f"{runtime}: {f}" for f in parity.failures(bounds)]
    if failures:
        raise ParityError(f"{what} fails the parity gate, nothing written: " + "; ".join(failures))
    report = {"latency_ms": latency, "parity": parity_out, "evaluation": _summary(held, labels)}
    return GateResult(parity_out, report)


def _source_outputs(
    run_source: RunSource, crops: np.ndarray, card: Any, *, liveness: bool
) -> tuple[np.ndarray, float]:
    """The source model's outputs on the crops, and its median ms per crop."""
    outputs = run_crops if liveness else embed_crops
    times: list[float] = []

    def timed_source(x: np.ndarray) -> np.ndarray:
        t = time.perf_counter()
        y = run_source(x)
        times.append((time.perf_counter() - t) * 1e3)
        return y

    try:
        out = outputs(timed_source, crops, card, batch=SOURCE_BATCH)
        return out, float(np.median(times)) / SOURCE_BATCH
    except Exception:  # a graph fixed to batch 1
        times.clear()
        out = outputs(timed_source, crops, card)
        return out, float(np.median(times))


def _labels(held: HeldOut) -> np.ndarray | None:
    """Live (True) / attack per crop, from the evaluation's per-image labels."""
    ev = held.evaluation
    if ev.labels is None:
        return None
    label_of = {Path(p): int(v) for p, v in zip(ev.images, ev.labels, strict=True)}
    return np.array([label_of[p] for p in held.paths], bool)


def _pairs(held: HeldOut) -> PairSet | None:
    """The evaluation's pairs as indices into the crops (-1: that image gave no face)."""
    pairs = held.evaluation.pairs
    if not pairs:
        return None
    index = {p: i for i, p in enumerate(held.paths)}
    return PairSet(
        a=np.array([index.get(p.a, -1) for p in pairs]),
        b=np.array([index.get(p.b, -1) for p in pairs]),
        same=np.array([p.same for p in pairs]),
        fold=np.array([p.fold for p in pairs]),
    )


def _summary(held: HeldOut, labels: np.ndarray | None) -> dict[str, int]:
    ev = held.evaluation
    summary = {
        "images": len(ev.images),
        "faces": len(held.crops),
        "no_face": held.no_face,
        "pairs": len(ev.pairs or []),
    }
    if labels is not None:
        summary |= {"live": int(labels.sum()), "attack": int((~labels).sum())}
    return summary
