"""NUAA Photograph Imposter Database as labelled door-camera replays.

In: the NUAA folder (ClientRaw/<id>/, ImposterRaw/<id>/; file names
ID_glasses_pos_session_frame.jpg).  Out: enrollment images per subject (one
session), and attempts: short runs of consecutive frames, each labelled with
the true person (a genuine attempt), "impostor" (someone not enrolled) or
"attack" (a printed photo of an enrolled person), played back as the daemon's
camera with a gap of empty frames between attempts so each is its own track.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

LIVE_BY_FOLDER = {
    "ClientRaw": True,
    "ImposterRaw": False,
}  # live webcam frames, printed-photo attacks
NAME = re.compile(r"^(\d{4})_(\d{2})_(\d{2})_(\d{2})_(\d+)\.jpe?g$", re.IGNORECASE)


@dataclass(frozen=True)
class Clip:
    """Consecutive frames of one subject, one session, live or photo."""

    subject: str
    session: str
    live: bool
    frames: tuple[Path, ...]


@dataclass(frozen=True)
class Attempt:
    label: str  # the true person's name, "impostor", or "attack"
    subject: str
    frames: tuple[Path, ...]


def recording(path: Path, live: bool) -> str:
    """The recording a frame belongs to: ID_glasses_pos_session, live or photo.

    Coarser than a Clip: NUAA films each photo movement (pos) separately.
    """
    return "_".join(path.name.split("_")[:4]) + ("_live" if live else "_photo")


def frame_number(path: Path) -> int:
    return int(path.stem.rsplit("_", 1)[1])


def person(subject: str) -> str:
    return f"subject{subject}"


def clips(root: Path) -> list[Clip]:
    """Every (subject, session, live/photo) run, frames in recording order."""
    groups: dict[tuple[str, str, bool], list[tuple[int, Path]]] = defaultdict(list)
    for kind, live in LIVE_BY_FOLDER.items():
        for p in sorted((root / kind).glob("*/*.jpg")):
            m = NAME.match(p.name)
            if m:
                groups[(m.group(1), m.group(4), live)].append((int(m.group(5)), p))
    return [
        Clip(s, sess, live, tuple(p for _, p in sorted(v)))
        for (s, sess, live), v in sorted(groups.items())
    ]


def split(
    root: Path,
    enrolled: list[str],
    *,
    enroll_frames: int = 10,
    attempt_frames: int = 10,
    attack_attempts_per_clip: int = 3,
) -> tuple[dict[str, list[Path]], list[Attempt]]:
    """Enrollment images (first live session of each enrolled subject, or the first
    frames of its only session) and labelled attempts (everything else)."""
    all_clips = clips(root)
    enroll: dict[str, list[Path]] = {}
    attempts: list[Attempt] = []
    for subject in sorted({c.subject for c in all_clips}):
        live = [c for c in all_clips if c.subject == subject and c.live]
        photos = [c for c in all_clips if c.subject == subject and not c.live]
        rest: list[tuple[Path, ...]] = []
        if subject in enrolled and live:
            first = live[0]
            step = max(1, len(first.frames) // enroll_frames) if len(live) > 1 else 1
            if len(live) > 1:  # enrol from session one, spread over it; attempts from the others
                enroll[person(subject)] = list(first.frames[::step][:enroll_frames])
                rest = [c.frames for c in live[1:]]
            else:  # one session: its first frames enrol, the rest attempt
                enroll[person(subject)] = list(first.frames[:enroll_frames])
                rest = [first.frames[enroll_frames:]]
            label = person(subject)
        else:
            rest = [c.frames for c in live]
            label = "impostor"
        for frames in rest:
            for i in range(0, len(frames) - attempt_frames + 1, attempt_frames):
                attempts.append(Attempt(label, subject, tuple(frames[i : i + attempt_frames])))
        if subject in enrolled:
            for c in photos:
                for i in range(
                    0,
                    min(len(c.frames), attack_attempts_per_clip * attempt_frames)
                    - attempt_frames
                    + 1,
                    attempt_frames,
                ):
                    attempts.append(
                        Attempt("attack", subject, tuple(c.frames[i : i + attempt_frames]))
                    )
    return enroll, attempts


def playlist(attempts: list[Attempt], blank: Path, gap_frames: int) -> list[Path]:
    """Frames of every attempt in turn, with ``gap_frames`` empty frames between them."""
    out: list[Path] = []
    for a in attempts:
        out.extend(a.frames)
        out.extend([blank] * gap_frames)
    return out


def write_blank(path: Path, size: tuple[int, int] = (640, 480)) -> Path:
    """An empty grey frame: no face, so the tracker ends the previous attempt."""
    cv2.imwrite(str(path), np.full((size[1], size[0], 3), 96, np.uint8))
    return path


def label_of(sources: list[str], attempts_by_frame: dict[str, Attempt]) -> Attempt | None:
    """The attempt a decision's frames came from (None if they span none)."""
    for s in sources:
        if s in attempts_by_frame:
            return attempts_by_frame[s]
    return None
