"""The values passed between pipeline stages, all frozen dataclasses.

Frame -> Face -> AlignedFace -> Embedding (-> Match -> Decision, later stages).
Arrays are numpy; coordinates are pixels of the Frame they came from, (x, y).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np

# BlazeFace's six keypoints, in its output order.  "Right" is the subject's right,
# which appears on the left of an unmirrored image.
KEYPOINT_NAMES = (
    "right_eye",
    "left_eye",
    "nose_tip",
    "mouth",
    "right_ear",
    "left_ear",
)


@dataclass(frozen=True, eq=False)
class Frame:
    """One RGB image, uint8 HxWx3, and where it came from.

    ``rgb`` is what the detector sees.  A camera with two streams (picamera2's
    lores and main) also fills ``hires``, the same view at a higher resolution,
    from which faces are cropped.
    """

    rgb: np.ndarray
    source: str = ""
    index: int = 0
    timestamp: float = 0.0
    hires: np.ndarray | None = None

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])


@dataclass(frozen=True, eq=False)
class Landmarks:
    """Named facial landmarks (N x 2 pixels) from a landmark pass (edge.landmarks), and which one."""

    names: tuple[str, ...]
    points: np.ndarray = field(repr=False)
    source: str = ""

    def point(self, name: str) -> np.ndarray:
        return self.points[self.names.index(name)]


@dataclass(frozen=True, eq=False)
class Face:
    """A detected face: box (x0, y0, x1, y1), detector score, six keypoints (6x2).

    ``landmarks`` holds a landmark pass's points when one ran (None: not run, or
    it found no face there); the detector's own keypoints stay in ``keypoints``.
    """

    box: tuple[float, float, float, float]
    score: float
    keypoints: np.ndarray = field(repr=False)
    landmarks: Landmarks | None = field(default=None, repr=False)

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    def keypoint(self, name: str) -> np.ndarray:
        return self.keypoints[KEYPOINT_NAMES.index(name)]


@dataclass(frozen=True, eq=False)
class AlignedFace:
    """The embedder's input crop: uint8 RGB, the model's input size, and its origin."""

    rgb: np.ndarray = field(repr=False)
    face: Face
    crop_box: tuple[float, float, float, float]


@dataclass(frozen=True, eq=False)
class Embedding:
    """An L2-normalised face embedding, the sha256 of the model that made it, and a
    digest of the preprocessing its crop went through (edge.cards.preprocessing_digest)."""

    vector: np.ndarray = field(repr=False)
    model_sha256: str
    preprocessing: str = ""

    def cosine(self, other: Embedding) -> float:
        """Cosine similarity; both vectors are unit length."""
        return float(np.dot(self.vector, other.vector))


@dataclass(frozen=True)
class Match:
    """One embedding against the gallery: the best and second-best enrolled person.

    Scores are cosine similarities with each person's closest template; a name
    is None when the gallery has fewer people than that.
    """

    best: str | None
    best_score: float
    second: str | None = None
    second_score: float = -1.0

    @property
    def margin(self) -> float:
        """How far the best person leads the runner-up (2.0 when there is none)."""
        return self.best_score - self.second_score if self.second is not None else 2.0


class Reason(enum.StrEnum):
    """Why a Decision went the way it did; its value is the decision log's ``reason`` string."""

    ACCEPTED = "accepted"  # k of n frames matched one person above threshold with margin
    UNKNOWN_FACE = "unknown_face"  # nobody enrolled matched well enough
    AMBIGUOUS = "ambiguous"  # two people too close, or frames disagree on who it is
    LOW_QUALITY = "low_quality"  # blurry, too small or turned away in too many frames
    TOO_DARK = "too_dark"
    LOCKED_OUT = "locked_out"  # too many denials recently: cooling down
    PRESENTATION_ATTACK = "presentation_attack"  # not a live face (edge.liveness)
    NO_GALLERY = "no_gallery"  # nobody is enrolled
    ERROR = "error"  # the pipeline failed; fail secure
    FACE_UNLOCK_OFF = (
        "face_unlock_off"  # a face that would have been let in, while face unlock is off
    )
    REMOTE_UNLOCK = "remote_unlock"  # unlocked by a command from the bridge, with the right code
    WRONG_CODE = "wrong_code"  # a remote unlock with a wrong code: counted apart from faces
    # Remote unlock refused whatever the code (edge.policy.REMOTE_WRONG_IN_ROW):
    REMOTE_LOCKED_OUT = "remote_locked_out"  # after too many wrong codes in a row
    REMOTE_DAILY_CAP = "remote_daily_cap"  # after too many wrong codes today: until tomorrow
    # Refused by the access rules (edge.access), though the face was recognised:
    OUTSIDE_HOURS = "outside_hours"  # outside the person's time windows
    PERSON_DISABLED = "person_disabled"  # disabled, templates kept
    NOT_YET_VALID = "not_yet_valid"  # a guest before their valid_from
    EXPIRED = "expired"  # a guest after their valid_to
    NO_ENTRIES_LEFT = "no_entries_left"  # a guest who used their max_entries
    # A face that would have been let in, during an attack drill (started from the web app):
    # never unlocks, and does not count towards the lockout.
    ATTACK_DRILL = "attack_drill"


# The only reasons that open the door.
UNLOCKING = frozenset({Reason.ACCEPTED, Reason.REMOTE_UNLOCK})
# Decisions about a command, not a face: no score, no frames.
REMOTE = frozenset(
    {Reason.REMOTE_UNLOCK, Reason.WRONG_CODE, Reason.REMOTE_LOCKED_OUT, Reason.REMOTE_DAILY_CAP}
)


@dataclass(frozen=True)
class Decision:
    """What the policy decided for one tracked face (one attempt at the door).

    ``unlock`` is True only for the UNLOCKING reasons.  ``quality`` holds the median
    quality figures over the frames used; ``liveness`` the attempt's liveness
    verdict (edge.liveness.LivenessVerdict.as_dict), None when liveness is off.
    """

    event_id: str
    at: float  # when it was decided, on the policy's monotonic clock (the log records wall time)
    unlock: bool
    reason: Reason
    person: str | None  # the accepted person, or the best candidate when denied
    best: str | None
    best_score: float
    second: str | None
    second_score: float
    threshold: float
    min_margin: float
    frames_used: int
    frames_matched: int
    track_id: int = 0
    quality: dict[str, float] = field(default_factory=dict)
    liveness: dict[str, float | int | bool | None] | None = None
    model_sha256: str = ""
    camera: str = ""
    sources: tuple[str, ...] = ()  # frame sources (file paths on replay) for labelled review
    door: str = ""  # the door's id (mqtt.door_id), so one report can read many doors' logs
    drill: bool = False  # made while an attack drill ran (edge.policy.Policy.drilling)
