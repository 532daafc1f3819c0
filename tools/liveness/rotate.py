"""The liveness training method rotated over all ten NUAA subjects: how well does it carry to new people?

In: ../shared/data/nuaa.  Out: per rotation and in total, APCER and BPCER per
attempt on three test subjects, for the whole method of tools/liveness/train.py
run on the other seven (head fitted on the seven, operating point placed on
their leave-one-subject-out scores); every subject is tested in turn, three
times each over ten rotations.

This estimates the *method*, not the shipped model, and it is slightly
optimistic for subjects 0001-0007: the recipe (crop, input size, layer,
penalty) and the way the operating point is placed were chosen by nested
cross-validation on them.  It uses the float head on
the frozen stem's features (tools/convert's parity gate showed int8 within
0.026 in live probability at the 99th percentile) and the classifier alone
(the planar-motion cue flagged no NUAA attempt).

It also compares ways of placing the operating point without the held-out
subjects: ``--subjects 0001 ... 0007 --test 2`` rotates within the training
subjects only, and ``--placement validation`` fits on all but the last two
training subjects of each rotation and places the threshold on those two (the
method this one replaced).

``--exposure STOPS`` measures how the method copes with a badly exposed face
(a door facing a bright street): the *test* crops' light is scaled by
2**STOPS and clipped at white (a synthetic over- or under-exposure of the
recorded frames), training is unchanged.  ``--metered`` then lets the
daemon's face-metered exposure (edge.exposure.FaceExposure, default config)
correct it, frame by frame, as a camera would: each test crop is re-rendered
from the recorded one at the stress plus the compensation the controller
asks for, until it asks for no more.  It meters the crop's central square,
where the detector's box is.

    python -m tools.liveness.rotate [--json OUT] [--subjects ID ...] [--test N] [--placement loso|validation]
                                    [--exposure STOPS] [--metered]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from edge.cli import run_command
from edge.config import ExposureConfig
from edge.exposure import FaceExposure, expose
from tools.liveness.data import DEFAULT_NUAA, extract_in_child
from tools.liveness.metrics import attempt_scores, rates
from tools.liveness.train import ATTEMPT_FRAMES, Recipe, build_stem, features, fit_procedure

SUBJECTS = tuple(f"{i:04d}" for i in range(1, 11))


def rotations(
    subjects: tuple[str, ...] = SUBJECTS, n_test: int = 3
) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    """(training, test) subjects: test k..k+n_test-1 around the ring, train on the rest (in ring order)."""
    out = []
    for k in range(len(subjects)):
        ring = [subjects[(k + j) % len(subjects)] for j in range(len(subjects))]
        out.append((tuple(ring[n_test:]), tuple(ring[:n_test])))
    return out


def metered(
    crops: np.ndarray, stops: float, r: Recipe, cfg: ExposureConfig | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Crops exposed ``stops`` off and then corrected by the device's face-metering loop; and each one's compensation.

    The crops are the recorded scene as the camera's own metering took it;
    the loop sees only what it would see (the stressed, clipped picture) and
    each new picture is rendered from the recorded one, as re-exposing the
    scene would.
    """
    cfg = replace(
        cfg or ExposureConfig(), settle_frames=0
    )  # one frame here is one settled exposure
    side = crops.shape[1] / (1 + 2 * r.margin)  # the face box in the middle of its crop
    lo, hi = (crops.shape[1] - side) / 2, (crops.shape[1] + side) / 2
    out, comp = np.empty_like(crops), np.zeros(len(crops))
    for i, crop in enumerate(crops):
        loop = FaceExposure(cfg)
        picture = expose(crop, stops)
        for frame in range(20):
            if loop.update(picture, (lo, lo, hi, hi), float(frame)) is None:
                break
            picture = expose(crop, stops + loop.compensation)
        out[i], comp[i] = picture, loop.compensation
    return out, comp


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="tools.liveness.rotate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--nuaa", type=Path, default=DEFAULT_NUAA)
    ap.add_argument("--json", type=Path)
    ap.add_argument(
        "--subjects",
        nargs="+",
        default=list(SUBJECTS),
        help="subjects to rotate over (default: all ten)",
    )
    ap.add_argument("--test", type=int, default=3, help="subjects tested per rotation")
    ap.add_argument(
        "--placement",
        choices=("loso", "validation"),
        default="loso",
        help="loso: leave-one-subject-out over the training subjects (shipped); validation: the last two",
    )
    ap.add_argument(
        "--exposure",
        type=float,
        default=0.0,
        help="test crops' light scaled by 2**STOPS, clipped at white (default 0: as recorded)",
    )
    ap.add_argument(
        "--metered",
        action="store_true",
        help="then corrected by the daemon's face-metered exposure (edge.exposure, default config)",
    )
    args = ap.parse_args(argv)
    if not 1 <= args.test <= len(args.subjects) - (3 if args.placement == "validation" else 2):
        ap.error(
            f"--test: must leave at least {3 if args.placement == 'validation' else 2} training subjects"
        )

    def body() -> int:
        r = Recipe()
        data = extract_in_child(
            r.spec(), args.nuaa, Path(tempfile.mkdtemp(prefix="facegate-rotate-")) / "crops.npz"
        )
        data = data.select(np.isin(data.subject, args.subjects))
        stem = build_stem(r)
        feats = features(stem, data.crops, r)
        test_feats = feats
        if args.metered:
            crops, comp = metered(data.crops, args.exposure, r)
            print(
                f"face-metered: compensation applied, 5/50/95th percentile "
                f"{', '.join(f'{c:+.2f}' for c in np.percentile(comp, [5, 50, 95]))} stops"
            )
            test_feats = features(stem, crops, r)
        elif args.exposure:
            test_feats = features(stem, expose(data.crops, args.exposure), r)
        rows, totals = [], {"attack": 0, "attack_accepted": 0, "live": 0, "live_refused": 0}
        for train, test in rotations(tuple(args.subjects), args.test):
            fitted, tested = np.isin(data.subject, train), np.isin(data.subject, test)
            validation = train[-2:] if args.placement == "validation" else ()
            head, operating = fit_procedure(
                feats[fitted], data.select(fitted), r, validation=validation
            )
            threshold = operating["min_live_probability"]
            t = data.select(tested)
            scores, live, _ = attempt_scores(
                head(test_feats[tested]), t.clip, t.frame_no, t.live, ATTEMPT_FRAMES
            )
            apcer, bpcer = rates(scores, live, threshold)
            row = {
                "train": train,
                "test": test,
                "threshold": threshold,
                "attack": int((~live).sum()),
                "attack_accepted": int((scores[~live] >= threshold).sum()),
                "live": int(live.sum()),
                "live_refused": int((scores[live] < threshold).sum()),
                "apcer": apcer,
                "bpcer": bpcer,
            }
            rows.append(row)
            for k in totals:
                totals[k] += row[k]
            print(
                f"test {', '.join(test)} | threshold {threshold:.3f} ({args.placement}): "
                f"APCER {row['attack_accepted']}/{row['attack']}, BPCER {row['live_refused']}/{row['live']}"
            )
        apcer = totals["attack_accepted"] / max(totals["attack"], 1)
        bpcer = totals["live_refused"] / max(totals["live"], 1)
        if args.exposure or args.metered:
            print(
                f"test crops exposed {args.exposure:+g} stops (light scaled by {2.0**args.exposure:.2f}, clipped)"
                + (", then face-metered" if args.metered else "")
            )
        print(
            f"all rotations: APCER {100 * apcer:.1f}% ({totals['attack_accepted']}/{totals['attack']}), "
            f"BPCER {100 * bpcer:.1f}% ({totals['live_refused']}/{totals['live']}); each subject tested "
            f"{args.test} times"
        )
        if args.json:
            args.json.write_text(
                json.dumps(
                    {
                        "rotations": rows,
                        "totals": totals,
                        "apcer": apcer,
                        "bpcer": bpcer,
                        "exposure_stops": args.exposure,
                        "metered": args.metered,
                    },
                    indent=1,
                )
                + "\n"
            )
        return 0

    return run_command("tools.liveness.rotate", body)


if __name__ == "__main__":
    sys.exit(main())
