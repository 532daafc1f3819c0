"""Decision logs -> compact per-attempt columns, streamed.

In: decision-log paths (a live log expands to its rotated siblings through
edge.decisions.log_files; ``.gz`` files and torn last lines are handled by
edge.decisions.read_records) and a Labeller giving each record's truth.
Out: :class:`Columns`: one entry per attempt in a handful of typed arrays
(a few bytes each: names and weeks are small integer codes into tables) plus
the few examples worth showing a reviewer.  Records are never kept, so memory
grows by those bytes per decision rather than by the size of a parsed record:
a year of a busy door's logs fits on the workstation that reports on it.

A record whose fields break the schema is an error naming file:line and the
field (or, with ``strict=False``, a warning and the record skipped).
"""

from __future__ import annotations

import gzip
import logging
import math
import sys
from array import array
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from edge.decisions import log_files, read_field, read_records
from edge.errors import DecisionLogError
from edge.jsonfields import FieldError
from edge.types import REMOTE, UNLOCKING, Reason
from tools.report import ReportError
from tools.report.door_liveness import LivenessCollector, LivenessTable, read_cues
from tools.report.labels import ATTACK, IMPOSTOR, Labeller

log = logging.getLogger(__name__)

# Truth codes; a code >= 0 indexes Columns.names.
UNLABELLED, IMPOSTOR_CODE, ATTACK_CODE = -1, -2, -3
NO_NAME = -1
REASONS = tuple(Reason)
# Keyed by the log's reason strings (a Reason is its own string).
REASON_CODE: dict[str, int] = {r: i for i, r in enumerate(REASONS)}
# Denials the threshold cannot undo: the attempt never reached (or failed after)
# the score comparison, so the sweep denies it at every threshold.
HARD_DENIALS = frozenset(
    {
        Reason.LOW_QUALITY,
        Reason.TOO_DARK,
        Reason.LOCKED_OUT,
        Reason.PRESENTATION_ATTACK,
        Reason.NO_GALLERY,
        Reason.ERROR,
        Reason.FACE_UNLOCK_OFF,
        Reason.OUTSIDE_HOURS,
        Reason.PERSON_DISABLED,
        Reason.NOT_YET_VALID,
        Reason.EXPIRED,
        Reason.NO_ENTRIES_LEFT,
        # a drill attempt is never let in, whatever its score
        Reason.ATTACK_DRILL,
    }
)
_HARD = frozenset(REASON_CODE[r] for r in HARD_DENIALS)
MAX_EXAMPLES = 20


MAX_CODES = 32000  # the columns hold codes as int16


class _Codes:
    """Strings to small codes in first-seen order, for the int16 columns; ReportError past MAX_CODES."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.values: list[str] = []
        self._code: dict[str, int] = {}

    def __call__(self, value: str) -> int:
        code = self._code.get(value)
        if code is None:
            code = len(self.values)
            if code > MAX_CODES:
                raise ReportError(f"more than {MAX_CODES} distinct {self.what} ({value!r}...)")
            self.values.append(value)
            self._code[value] = code
        return code


@dataclass(frozen=True)
class Example:
    """One decision worth a human look (a false accept, a lockout), with where to find it."""

    event_id: str
    time: str
    decision: str
    reason: str
    person: str | None
    best_score: float | None
    truth: str | None
    snapshot: str | None
    file: str


@dataclass(frozen=True, eq=False)
class Columns:
    """Everything the report needs, one array entry per attempt.

    ``score`` is the logged best_score (NaN when there was no match to score);
    ``eligible`` says the attempt reached the score comparison and passed the
    margin (so a threshold alone decides it); ``redecide_agree`` counts how
    often that re-decision at the record's own logged threshold matches what
    the daemon logged.
    """

    files: tuple[str, ...]
    names: tuple[str, ...]
    weeks: tuple[str, ...]
    score: np.ndarray  # float64
    eligible: np.ndarray  # bool
    truth: np.ndarray  # int16: UNLABELLED, IMPOSTOR_CODE, ATTACK_CODE, or a name code
    person: np.ndarray  # int16 name code of the logged person, NO_NAME if none
    best: np.ndarray  # int16 name code of the best match, NO_NAME if none
    unlock: np.ndarray  # bool
    reason: np.ndarray  # int8 index into REASONS
    week: np.ndarray  # int16 index into weeks
    exposure: np.ndarray  # float32 exposure_stops, NaN when not face-metered
    doors: tuple[str, ...]  # door ids in first-seen order ("" for logs from before door ids)
    door: np.ndarray  # int16 index into doors
    remote: dict[str, int]  # remote-unlock decisions by reason: commands, not face attempts
    gallery: frozenset[str]  # every name the log shows as person, best or second
    settings: dict[tuple[float, float], int]  # (threshold, min_margin) -> records
    min_margin_override: float | None
    unlabelled_why: dict[str, int]
    label_notes: tuple[str, ...]
    redecide_agree: int
    redecide_unlock_only_logged: int  # logged unlock, best-frame re-decision denies
    redecide_unlock_only_replayed: int  # logged deny, best-frame re-decision accepts
    false_accept_examples: tuple[Example, ...]
    locked_out_examples: tuple[Example, ...]
    liveness: LivenessTable  # the attempts liveness can be judged on (tools.report.door_liveness)
    skipped_bad: int = 0

    @property
    def n(self) -> int:
        return int(self.score.shape[0])


def expand_paths(paths: Sequence[str | Path]) -> list[Path]:
    """Each path with its rotated siblings (oldest first), each file once; ReportError if one is missing."""
    out: list[Path] = []
    seen: set[Path] = set()
    for given in paths:
        p = Path(given)
        if p.is_dir():
            raise ReportError(
                f"{p}: is a directory; give the decision log file (e.g. {p / 'decisions.jsonl'})"
            )
        files = log_files(p)
        if not files:
            raise ReportError(f"{p}: no such decision log (nor rotated {p.name}.N.gz beside it)")
        for f in files:
            key = f.resolve()
            if key not in seen:
                seen.add(key)
                out.append(f)
    return out


class _BadField(Exception):
    pass


def _field(rec: dict[str, Any], key: str) -> Any:
    """The field checked by the decision log's own schema (edge.decisions.FIELDS)."""
    try:
        return read_field(rec, key)
    except FieldError as exc:
        raise _BadField(str(exc)) from None


class Fields(NamedTuple):
    """The fields of one decision record the report reads, each checked by :func:`check_fields`."""

    time: str
    unlock: bool
    reason: str
    reason_code: int  # index into REASONS
    person: str | None
    best: str | None
    second: str | None
    best_score: float  # NaN when null
    second_score: float  # NaN when null
    threshold: float
    min_margin: float
    exposure: float  # exposure_stops; NaN when not face-metered
    sources: list[Any]
    door: str  # "" when the log has no door ids
    cues: dict[str, tuple[float, float]] | None  # liveness score cue -> (score, point); None: off
    drill: bool  # made during an attack drill (false in logs from before drills)


def check_fields(rec: dict[str, Any]) -> Fields:
    """Every per-field check of a decision record (bar event_id, checked first for duplicates).

    Each field is read through edge.decisions.read_field, the schema the daemon writes
    (docs/decision-log.md); raises _BadField naming the first field that breaks it, in this
    order.  The time's ISO format is checked where its week is taken (Collector._week_of).
    """
    t = _field(rec, "time")
    decision = _field(rec, "decision")
    reason = _field(rec, "reason")
    rcode = REASON_CODE[reason]
    unlock = decision == "unlock"
    if unlock != (reason in UNLOCKING):
        raise _BadField(
            f"decision: {decision!r} with reason {reason!r} (only reasons "
            f"{' and '.join(sorted(UNLOCKING))} unlock)"
        )
    return Fields(
        t,
        unlock,
        reason,
        rcode,
        _field(rec, "person"),
        _field(rec, "best"),
        _field(rec, "second"),
        _field(rec, "best_score"),
        _field(rec, "second_score"),
        _field(rec, "threshold"),
        _field(rec, "min_margin"),
        _field(rec, "exposure_stops"),  # NaN in logs from before face metering, or with it off
        _field(rec, "sources"),
        _field(rec, "door") or "",
        _cues(_field(rec, "liveness")),
        _field(rec, "drill"),
    )


def _cues(liveness: dict[str, Any] | None) -> dict[str, tuple[float, float]] | None:
    """The liveness object's score cues (tools.report.door_liveness.read_cues), checked."""
    if liveness is None:
        return None
    try:
        return read_cues(liveness)
    except FieldError as exc:
        raise _BadField(str(exc)) from None


def _line_of(path: Path, index: int) -> int:
    """The line number of the index-th record of ``path`` (read_records skips blank lines)."""
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            seen = 0
            for lineno, raw in enumerate(f, 1):
                if raw.strip():
                    seen += 1
                    if seen == index:
                        return lineno
    except (OSError, EOFError):
        pass
    return index


class Collector:
    """Streams records into columns; call :meth:`add` per file, then :meth:`columns`."""

    def __init__(
        self,
        labeller: Labeller,
        *,
        min_margin: float | None = None,
        enrolled: Iterable[str] | None = None,
        progress: bool | None = None,
    ) -> None:
        self.labeller = labeller
        self.min_margin = min_margin
        self.enrolled = None if enrolled is None else frozenset(enrolled)
        self.progress = sys.stderr.isatty() if progress is None else progress
        self._names = _Codes("person names in the logs and labels")
        self._weeks = _Codes("ISO weeks in the logs")
        self._day_week: dict[str, int] = {}
        self._gallery: set[str] = set()
        self._settings: Counter[tuple[float, float]] = Counter()
        self._score = array("d")
        self._eligible = array("b")
        self._truth = array("h")
        self._person = array("h")
        self._best = array("h")
        self._unlock = array("b")
        self._reason = array("b")
        self._week = array("h")
        self._exposure = array("f")
        self._door = array("h")
        self._doors = _Codes("door ids in the logs")
        self._remote: Counter[str] = Counter()
        self._files: list[str] = []
        self._agree = self._only_logged = self._only_replayed = 0
        self._fa: list[Example] = []
        self._locked: list[Example] = []
        self._skipped = 0
        self._liveness = LivenessCollector()
        # Hashes of event ids: a record given twice (a log copied beside itself) counts once.
        self._seen: set[int] = set()
        self.duplicates = 0

    # -- codes --------------------------------------------------------------------------

    def _name(self, name: str | None) -> int:
        if name is None:
            return NO_NAME
        return self._names(name)

    def _truth_code(self, truth: str | None) -> int:
        if truth is None:
            return UNLABELLED
        if truth == IMPOSTOR:
            return IMPOSTOR_CODE
        if truth == ATTACK:
            return ATTACK_CODE
        return self._name(truth)

    def _week_of(self, t: str) -> int:
        day = t[:10]
        code = self._day_week.get(day)
        if code is None:
            try:
                y, w, _ = date.fromisoformat(day).isocalendar()
            except ValueError:
                raise _BadField(
                    f"time: expected ISO 8601 like 2024-05-01T12:34:56.789Z, got {t!r}"
                ) from None
            key = f"{y}-W{w:02d}"
            code = self._day_week[day] = self._weeks(key)
        return code

    # -- reading ------------------------------------------------------------------------

    def add(self, path: Path, *, strict: bool = True) -> int:
        """Stream one log file in; return how many records it held."""
        self._files.append(str(path))
        bar = None
        if self.progress:
            from tqdm import tqdm

            bar = tqdm(desc=path.name, unit=" rec", unit_scale=True, leave=False, file=sys.stderr)
        index = 0
        try:
            for rec in read_records([path], strict=strict):
                index += 1
                try:
                    self._add(rec, path)
                except _BadField as exc:
                    msg = f"{path}:{_line_of(path, index)}: {exc}"
                    if strict:
                        raise DecisionLogError(msg) from None
                    log.warning("%s; record skipped", msg)
                    self._skipped += 1
                if bar is not None and not index & 0x3FFF:
                    bar.update(0x4000)
        finally:
            if bar is not None:
                bar.close()
        log.info("%s: %d records", path, index)
        return index

    def _add(self, rec: dict[str, Any], path: Path) -> None:
        event_id = _field(rec, "event_id")
        if self._seen_before(event_id, path):
            return
        f = check_fields(rec)
        if f.reason in REMOTE:  # a command, not a face: no score to sweep, no truth to label
            self._remote[f.reason] += 1
            return
        week = self._week_of(f.time)
        # -1.0 is the "nobody to match" placeholder, not a score.
        score = math.nan if f.best is None else f.best_score
        eligible = self._redecide(f, score)
        truth = self.labeller(event_id, f.sources)
        self._gallery.update(n for n in (f.person, f.best, f.second) if n is not None)
        self._settings[(f.threshold, f.min_margin)] += 1
        self._liveness.add(f.cues, drill=f.drill, truth=truth, time=f.time)
        self._append(f, score, eligible, truth, week)
        self._keep_example(rec, path, f, truth)

    def _seen_before(self, event_id: str, path: Path) -> bool:
        """A record given twice (a log copied beside itself) counts once; warn the first time."""
        key = hash(event_id)
        if key not in self._seen:
            self._seen.add(key)
            return False
        self.duplicates += 1
        if self.duplicates == 1:
            log.warning(
                "%s: event_id %s seen before; each decision is counted once (the same log given twice?)",
                path,
                ascii(event_id)[:40],
            )
        return True

    def _redecide(self, f: Fields, score: float) -> bool:
        """Whether a threshold alone decides the attempt; count how often the best-frame re-decision agrees."""
        margin_needed = f.min_margin if self.min_margin is None else self.min_margin
        # Match.margin: 2.0 without a runner-up; NaN (null) fails the comparison.
        margin = 2.0 if f.second is None else round(score - f.second_score, 4)
        eligible = f.reason_code not in _HARD and not math.isnan(score) and margin >= margin_needed
        replayed = eligible and score >= f.threshold
        if replayed == f.unlock:
            self._agree += 1
        elif f.unlock:
            self._only_logged += 1
        else:
            self._only_replayed += 1
        return eligible

    def _append(
        self, f: Fields, score: float, eligible: bool, truth: str | None, week: int
    ) -> None:
        """One entry on every column.  Name codes are taken in first-seen order: truth, person, best."""
        tcode = self._truth_code(truth)
        pcode = self._name(f.person)
        bcode = self._name(f.best)
        self._score.append(score)
        self._eligible.append(eligible)
        self._truth.append(tcode)
        self._person.append(pcode)
        self._best.append(bcode)
        self._unlock.append(f.unlock)
        self._reason.append(f.reason_code)
        self._week.append(week)
        self._exposure.append(f.exposure)
        self._door.append(self._doors(f.door))

    def _keep_example(self, rec: dict[str, Any], path: Path, f: Fields, truth: str | None) -> None:
        """The first false accepts and lockouts, for a reviewer to look at."""
        if f.unlock and truth is not None and len(self._fa) < MAX_EXAMPLES:
            right = truth == f.person and (self.enrolled is None or truth in self.enrolled)
            if not right:
                self._fa.append(self._example(rec, path, truth))
        elif f.reason == Reason.LOCKED_OUT and len(self._locked) < MAX_EXAMPLES:
            self._locked.append(self._example(rec, path, truth))

    @staticmethod
    def _example(rec: dict[str, Any], path: Path, truth: str | None) -> Example:
        score = rec.get("best_score")
        snapshot = rec.get("snapshot")
        return Example(
            rec["event_id"],
            rec["time"],
            rec["decision"],
            rec["reason"],
            rec.get("person"),
            float(score) if isinstance(score, (int, float)) else None,
            truth,
            snapshot if isinstance(snapshot, str) else None,
            str(path),
        )

    def columns(self) -> Columns:
        """The collected arrays (zero-copy views of the arrays filled while streaming)."""

        def view(a: array, dtype: Any) -> np.ndarray:
            return np.frombuffer(a, dtype=dtype) if len(a) else np.zeros(0, dtype)

        return Columns(
            files=tuple(self._files),
            names=tuple(self._names.values),
            weeks=tuple(self._weeks.values),
            score=view(self._score, np.float64),
            eligible=view(self._eligible, np.int8).astype(bool),
            truth=view(self._truth, np.int16),
            person=view(self._person, np.int16),
            best=view(self._best, np.int16),
            unlock=view(self._unlock, np.int8).astype(bool),
            reason=view(self._reason, np.int8),
            week=view(self._week, np.int16),
            exposure=view(self._exposure, np.float32),
            doors=tuple(self._doors.values),
            door=view(self._door, np.int16),
            remote=dict(self._remote),
            gallery=frozenset(self._gallery),
            settings=dict(self._settings),
            min_margin_override=self.min_margin,
            unlabelled_why=dict(self.labeller.unlabelled_why),
            label_notes=tuple(self.labeller.notes()),
            redecide_agree=self._agree,
            redecide_unlock_only_logged=self._only_logged,
            redecide_unlock_only_replayed=self._only_replayed,
            false_accept_examples=tuple(self._fa),
            locked_out_examples=tuple(self._locked),
            liveness=self._liveness.table(),
            skipped_bad=self._skipped,
        )


def collect(
    paths: Sequence[str | Path],
    labeller: Labeller,
    *,
    min_margin: float | None = None,
    enrolled: Iterable[str] | None = None,
    strict: bool = True,
    progress: bool | None = None,
) -> Columns:
    """Read every log (with rotated siblings) into Columns."""
    collector = Collector(labeller, min_margin=min_margin, enrolled=enrolled, progress=progress)
    for f in expand_paths(paths):
        collector.add(f, strict=strict)
    return collector.columns()
