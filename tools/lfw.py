"""LFW protocol files: pairs.txt (View 2, 10 folds) and pairsDev*.txt (View 1).

In: a pairs file and the image root.  Out: a list of Pair (two image paths,
same person or not, fold number).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edge.errors import ExitCode, FacegateError


class PairsError(FacegateError, ValueError):
    """A pairs file that does not follow the LFW format."""

    exit_code = ExitCode.DATA


@dataclass(frozen=True)
class Pair:
    a: Path
    b: Path
    same: bool
    fold: int


def image_path(root: Path, name: str, number: str | int) -> Path:
    return root / name / f"{name}_{int(number):04d}.jpg"


def read_pairs(pairs_file: str | Path, image_root: str | Path | None = None) -> list[Pair]:
    """Parse an LFW pairs file; the first line gives folds and pairs per class per fold."""
    pairs_file = Path(pairs_file)
    root = Path(image_root) if image_root else pairs_file.parent / "images_deepfunneled"
    try:
        lines = [line.split() for line in pairs_file.read_text().splitlines() if line.strip()]
    except OSError as exc:
        raise PairsError(f"{pairs_file}: cannot read: {exc.strerror}") from None
    if not lines:
        raise PairsError(f"{pairs_file}: empty pairs file")
    header = lines[0]
    if len(header) == 1:  # View 1 files: one count, one "fold"
        folds, per_class = 1, int(header[0])
    elif len(header) == 2:
        folds, per_class = int(header[0]), int(header[1])
    else:
        raise PairsError(
            f"{pairs_file}: line 1: expected 'folds pairs' or 'pairs', got {' '.join(header)!r}"
        )
    body = lines[1:]
    if len(body) != folds * per_class * 2:
        raise PairsError(f"{pairs_file}: expected {folds * per_class * 2} pairs, found {len(body)}")
    out = []
    for i, row in enumerate(body):
        fold = i // (2 * per_class)
        if len(row) == 3:
            out.append(
                Pair(image_path(root, row[0], row[1]), image_path(root, row[0], row[2]), True, fold)
            )
        elif len(row) == 4:
            out.append(
                Pair(
                    image_path(root, row[0], row[1]), image_path(root, row[2], row[3]), False, fold
                )
            )
        else:
            raise PairsError(f"{pairs_file}: line {i + 2}: expected 3 or 4 fields, got {len(row)}")
    return out
