"""Train facegate's passive liveness classifier on NUAA's training subjects, reproducibly.

In: ../shared/data/nuaa (live webcam frames and printed-photo attacks) and the
FaceNet Keras source model (models/manifest.yaml: from its PyPI wheel, sha256
checked).  Out: ``models/liveness-nuaa.int8.tflite`` with its model card
(converted and parity-checked by tools/convert), which also records the
training subjects, the recipe and the chosen operating point.

The model is FaceNet's own stem (its first seven convolutions, pretrained on
faces, frozen) on the face *with its surroundings*, pooled into texture
statistics (per-channel mean and mean square), and one logistic-regression
unit on top.  Only that unit is trained: with seven subjects to learn from, a
CNN trained from scratch latched onto whatever told those seven apart, so its
error on new people depended on the random seed; pretrained texture features
with a linear read-out have too few parameters to do that (docs/liveness.md).

Steps:
1. Every NUAA frame goes through edge's own detector and crop (Recipe), as the
   device will cut it.  TEST_SUBJECTS are never read.
2. The operating point (min_live_probability) is placed on leave-one-subject-
   out scores: each training subject scored by a head fitted on the other six,
   so every one of the seven is a "new person" once.  It is the lowest APCER
   with BPCER <= 5% over attempts of ATTEMPT_FRAMES frames, in the middle of
   the best range.  Two fixed validation subjects were too few: the threshold
   they chose depended on which two were held out, while the ranking carried
   over, so every subject takes its turn as the new person (docs/liveness.md).
3. The head is fitted on all TRAIN_SUBJECTS, folded into one Keras model with
   the stem, and converted to int8 by tools/convert (calibrated and
   parity-checked on the training frames).

Deterministic (full-batch gradient descent from zero): the same command gives
the same model.  A few minutes on 2 cores.

    python -m tools.liveness.train [--out models/liveness-nuaa.int8.tflite] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge.cli import run_command
from edge.errors import DataError
from tools.liveness import TEST_SUBJECTS, TRAIN_SUBJECTS
from tools.liveness.data import DEFAULT_NUAA, ROOT, Crops, extract_in_child
from tools.liveness.metrics import MAX_BPCER, attempt_scores, choose_threshold, rates

log = logging.getLogger(__name__)

ATTEMPT_FRAMES = 5  # the policy's default window (policy.frames, liveness.min_frames)
DEFAULT_OUT = ROOT / "models" / "liveness-nuaa.int8.tflite"
BACKBONE = "facenet-keras"


@dataclass(frozen=True)
class Recipe:
    """Everything that decides the model; the defaults are the shipped model's (docs/liveness.md)."""

    size: int = 112  # input side, pixels
    margin: float = 0.6  # around the face box, on every side: the surroundings are evidence
    layer: str = "Conv2d_4b_3x3_Activation"  # the end of FaceNet's stem: 256 texture channels
    l2: float = 30.0  # ridge penalty of the logistic regression (on standardised features)
    steps: int = 800  # full-batch gradient steps

    def spec(self) -> dict[str, Any]:
        """The source spec for tools/convert (becomes the model card)."""
        return {
            "task": "liveness",
            "input_size": [self.size, self.size],
            "color": "RGB",
            "normalization": {"kind": "prewhiten"},  # FaceNet's own
            "crop": {"method": "box", "margin": self.margin, "rotate": False, "aspect": 1.0},
            "flip_average": False,
        }


def _keras():
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tf_keras

    return tf_keras


def backbone_path() -> Path:
    from edge.manifest import fetch, manifest_entry

    return fetch(manifest_entry(BACKBONE))


def build_stem(r: Recipe) -> Any:
    """FaceNet's stem at ``r.size`` input, frozen, ending in texture statistics (mean, mean square)."""
    keras = _keras()
    facenet = keras.models.load_model(str(backbone_path()), compile=False)
    inp = keras.Input((r.size, r.size, 3), name="crop")
    x = inp
    for layer in facenet.layers[1:]:  # the stem is a plain chain: rebuild it at our input size
        x = layer(x)
        if layer.name == r.layer:
            break
    else:
        raise SystemExit(f"{BACKBONE}: no layer {r.layer!r}")
    mean = keras.layers.GlobalAveragePooling2D(name="texture_mean")(x)
    square = keras.layers.GlobalAveragePooling2D(name="texture_square")(
        keras.layers.Multiply()([x, x])
    )
    feats = keras.layers.Concatenate(name="texture")([mean, square])
    stem = keras.Model(inp, feats, name="stem")
    stem.trainable = False
    return stem


def features(stem: Any, crops: np.ndarray, r: Recipe) -> np.ndarray:
    """Texture features of uint8 crops, normalised exactly as the device will (edge.embed.normalize)."""
    from edge.embed import normalize
    from tools.convert.devrun import _card_from_spec

    card = _card_from_spec(r.spec())
    out = []
    for i in range(0, len(crops), 64):
        x = np.concatenate([normalize(c, card) for c in crops[i : i + 64]])
        out.append(np.asarray(stem.predict(x, verbose=0)))
    return np.concatenate(out) if out else np.zeros((0, stem.output_shape[-1]), np.float32)


@dataclass(frozen=True)
class Head:
    """Logistic regression on standardised features, as one Dense unit on the raw ones."""

    weights: np.ndarray
    bias: float

    def __call__(self, feats: np.ndarray) -> np.ndarray:
        return feats @ self.weights + self.bias


def fit_head(feats: np.ndarray, live: np.ndarray, r: Recipe) -> Head:
    """Class-balanced ridge logistic regression by full-batch gradient descent (deterministic)."""
    y = live.astype(np.float64)
    mu, sd = feats.mean(0), feats.std(0) + 1e-6
    z = (feats - mu) / sd
    w, b = np.zeros(z.shape[1]), 0.0
    balance = np.where(y == 1, len(y) / (2 * y.sum()), len(y) / (2 * (len(y) - y.sum())))
    for _ in range(r.steps):
        p = 1.0 / (1.0 + np.exp(-(z @ w + b)))
        g = (p - y) * balance
        w -= 0.1 * (z.T @ g / len(y) + r.l2 * w / len(y))
        b -= 0.1 * float(g.mean())
    # Fold the standardisation into the unit: w.(x - mu)/sd + b = (w/sd).x + (b - w.mu/sd).
    return Head((w / sd).astype(np.float32), float(b - np.dot(w, mu / sd)))


def held_out_logits(feats: np.ndarray, data: Crops, r: Recipe) -> np.ndarray:
    """Each subject's logits from a head fitted on the other subjects (NaN where those lack a class)."""
    out = np.full(len(data), np.nan)
    for subject in sorted(set(map(str, data.subject))):
        rest = data.subject != subject
        if data.live[rest].any() and not data.live[rest].all():
            out[~rest] = fit_head(feats[rest], data.live[rest], r)(feats[~rest])
    return out


def choose_operating_point(
    logits: np.ndarray, data: Crops, *, scored_by: str = "a head fitted on the other subjects"
) -> dict[str, Any]:
    """min_live_probability from held-out logits (NaN: not scored); 0.5 when they lack live or attack attempts."""
    ok = ~np.isnan(logits)
    scores, live, _ = attempt_scores(
        logits[ok], data.clip[ok], data.frame_no[ok], data.live[ok], ATTEMPT_FRAMES
    )
    if not live.any() or live.all():
        return {
            "min_live_probability": 0.5,
            "chosen_on": "default (too few subjects to hold one out)",
        }
    threshold = choose_threshold(scores, live, max_bpcer=MAX_BPCER)
    apcer, bpcer = rates(scores, live, threshold)
    subjects = sorted(set(map(str, data.subject[ok])))
    return {
        "min_live_probability": round(threshold, 3),
        "chosen_on": f"held-out attempts ({ATTEMPT_FRAMES} frames) of {', '.join(subjects)}, scored by {scored_by}; "
        f"lowest APCER with BPCER <= {MAX_BPCER:g}, middle of the best range",
        "held_out_attempts": {"live": int(live.sum()), "attack": int((~live).sum())},
        "held_out_apcer": round(apcer, 4),
        "held_out_bpcer": round(bpcer, 4),
        "held_out_live_min": round(float(scores[live].min()), 4),
        "held_out_attack_max": round(float(scores[~live].max()), 4),
    }


def fit_procedure(
    feats: np.ndarray, data: Crops, r: Recipe, *, validation: tuple[str, ...] = ()
) -> tuple[Head, dict[str, Any]]:
    """The whole training method on ``data``'s subjects: (head, operating point).

    Shipped: the head is fitted on every subject and the operating point placed
    on their leave-one-subject-out logits.  With ``validation`` (the method it
    replaced, kept for tools/liveness/rotate's comparison): the head is fitted
    on the other subjects and the operating point placed on these.
    """
    if not validation:
        return fit_head(feats, data.live, r), choose_operating_point(
            held_out_logits(feats, data, r), data
        )
    val = np.isin(data.subject, validation)
    head = fit_head(feats[~val], data.live[~val], r)
    return head, choose_operating_point(
        np.where(val, head(feats), np.nan), data, scored_by="a head not fitted on them"
    )


def full_model(stem: Any, head: Head) -> Any:
    """Stem + the fitted unit: crop in, one live logit out (what tools/convert converts)."""
    keras = _keras()
    unit = keras.layers.Dense(1, name="live_logit")
    out = unit(stem.output)
    unit.set_weights([head.weights.reshape(-1, 1), np.array([head.bias], np.float32)])
    return keras.Model(stem.input, out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="tools.liveness.train",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    d = Recipe()
    ap.add_argument("--nuaa", type=Path, default=DEFAULT_NUAA)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--size", type=int, default=d.size, help="input side, pixels")
    ap.add_argument(
        "--margin", type=float, default=d.margin, help="crop margin around the face box, each side"
    )
    ap.add_argument(
        "--layer", default=d.layer, help="FaceNet layer whose texture statistics are the features"
    )
    ap.add_argument("--l2", type=float, default=d.l2)
    ap.add_argument("--min-calibration-faces", type=int, default=100)
    ap.add_argument(
        "--work", type=Path, help="keep the crops and the Keras model here (default: a temp dir)"
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    r = Recipe(size=args.size, margin=args.margin, layer=args.layer, l2=args.l2)

    def body() -> int:
        work = args.work or Path(tempfile.mkdtemp(prefix="facegate-liveness-"))
        work.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        everything = extract_in_child(r.spec(), args.nuaa, work / "crops.npz")
        data = everything.select(np.isin(everything.subject, TRAIN_SUBJECTS))
        if not data.live.any() or data.live.all():
            raise DataError(
                f"{args.nuaa}: need live and photo frames of subjects {', '.join(TRAIN_SUBJECTS)}"
            )
        print(
            f"{len(data)} frames ({int(data.live.sum())} live, {int((~data.live).sum())} photo) of "
            f"{', '.join(sorted(set(map(str, data.subject))))}; held out and never read: {', '.join(TEST_SUBJECTS)}"
        )
        stem = build_stem(r)
        head, operating = fit_procedure(features(stem, data.crops, r), data, r)
        if "held_out_attempts" in operating:
            o = operating
            print(
                f"leave-one-subject-out ({o['held_out_attempts']['attack']} attack / {o['held_out_attempts']['live']} "
                f"live attempts of {ATTEMPT_FRAMES} frames): operating point min_live_probability "
                f"{o['min_live_probability']:.3f}, APCER {100 * o['held_out_apcer']:.1f}%, BPCER "
                f"{100 * o['held_out_bpcer']:.1f}% (lowest live attempt {o['held_out_live_min']:.3f}, highest "
                f"attack {o['held_out_attack_max']:.3f})"
            )
        source = work / "liveness-nuaa.h5"
        full_model(stem, head).save(str(source), include_optimizer=False)
        convert_model(source, args.out, data, r, min_calibration_faces=args.min_calibration_faces)
        card = finish_card(args.out, data, r, operating)
        print(
            f"wrote {args.out} ({card['size_bytes'] / 1e3:.0f} kB) and its card in {time.perf_counter() - t0:.0f} s"
        )
        return 0

    return run_command("tools.liveness.train", body)


def convert_model(
    source: Path, out: Path, data: Crops, r: Recipe, *, min_calibration_faces: int
) -> None:
    """tools/convert, int8, calibrated and parity-checked on the training frames."""
    from edge.files import sha256_file
    from tools.convert.build import convert
    from tools.convert.holdout import Evaluation
    from tools.convert.source import Source

    paths = [Path(p) for p in data.paths]
    src = Source(source, "keras-h5", "liveness-nuaa", sha256_file(source), r.spec())
    convert(
        src,
        out,
        mode="int8",
        calibration=paths,
        min_calibration_faces=min_calibration_faces,
        evaluation=Evaluation(paths, labels=[int(v) for v in data.live]),
        min_holdout_faces=min(50, len(paths)),
        force=True,
    )


def finish_card(out: Path, data: Crops, r: Recipe, operating: dict[str, Any]) -> dict[str, Any]:
    """The operating point and the training facts into the card (the .tflite is unchanged)."""
    from edge.cards import card_path_for, write_card
    from edge.files import sha256_file
    from edge.manifest import manifest_entry

    card = json.loads(card_path_for(out).read_text())
    card["operating_point"] = operating
    card["training"] = {
        "data": "NUAA Photograph Imposter Database (ClientRaw live, ImposterRaw printed photos)",
        "subjects": sorted(set(map(str, data.subject))),
        "held_out_subjects": list(TEST_SUBJECTS),
        "frames": {"live": int(data.live.sum()), "photo": int((~data.live).sum())},
        "backbone": {"name": BACKBONE, "sha256": manifest_entry(BACKBONE).sha256, "frozen": True},
        "recipe": asdict(r),
        "command": "python -m tools.liveness.train",
    }
    write_card(out, card)
    assert card["sha256"] == sha256_file(out)
    return card


if __name__ == "__main__":
    sys.exit(main())
