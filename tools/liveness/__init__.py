"""tools/liveness: train, convert and evaluate facegate's presentation-attack detector.

The split is by subject, fixed here so that every command (training, the
operating point, the evaluation, the daemon benchmark) agrees on it: the
classifier never sees a frame of a held-out subject, live or printed.

    python -m tools.liveness.train      # NUAA training subjects -> models/liveness-nuaa.*
    python -m tools.liveness.evaluate   # held-out subjects -> APCER/BPCER, curve, plots
"""

from __future__ import annotations

# NUAA subjects 0001-0010, split by subject two ways:
#   training: 0001-0007, the classifier is fitted on them and its operating point is
#             placed on their leave-one-subject-out scores (tools/liveness/train.py);
#   test:     0008-0010, never read by training (0008 and 0010 have one live
#             session each, 0009 two; the demo's photo attack is 0009's).
TRAIN_SUBJECTS = (
    "0001",
    "0002",
    "0003",
    "0004",
    "0005",
    "0006",
    "0007",
)  # everything training may read
TEST_SUBJECTS = ("0008", "0009", "0010")
