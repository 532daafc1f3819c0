"""The one contract between the household web app and the door daemon, written once.

In: a household request's fields, or an answer's ``data``, as they come off the socket (dicts).
Out: frozen dataclasses, checked field by field (:meth:`Wire.from_wire`), or one
:class:`ContractError` naming the action and the field; and back to dicts (:meth:`Wire.to_wire`).

:data:`HOUSEHOLD` is the single list of household actions: name -> (request type, answer
type); :data:`edge.bridge.protocol.HOUSEHOLD_ACTIONS` is its keys.  The daemon
(:class:`edge.bridge.household.Household`) parses every request through it before a handler
sees it and checks every answer on its way out; the web app (:class:`edge.web.client.DaemonClient`)
checks what it sends and what comes back.  :class:`Reply` is one result line: ``ok``, ``why``
and the typed answer (``None`` when the daemon sent no data, e.g. most refusals).

What the daemon alone can judge stays with it: whether a name may be enrolled
(:func:`edge.gallery.validate_name`: here only a bounded string), the threshold's floor (from
its config), whether a photo decodes.  This module imports nothing heavy (no OpenCV, numpy or
face pipeline): the web app's process loads it without the daemon's modules.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, ClassVar, Generic, Self, TypeVar

from edge.jsonfields import as_finite

MAX_NAME = 64  # edge.gallery.MAX_NAME_LEN: the daemon checks the rest of the name rule
MAX_PHOTOS = 10  # one enrollment
MAX_RECORDS = 500  # one page of decisions
MAX_RULES_BYTES = 256 << 10
MAX_DRILL_MINUTES = 30
MAX_IMAGE_B64 = 4 << 20  # one base64 JPEG: no more than a whole line (protocol.MAX_LINE)
MAX_WHY = 64 << 10  # a refusal's why (a rules file's problems, every one, on one line)
MAX_PEOPLE = 10_000
MAX_PATH = 4096
# edge.liveness.SCORE_CUES, by name (that module loads numpy; a test keeps the two the same)
LIVENESS_CUES = ("texture", "minifasnet")
ENVELOPE = ("type", "id", "action")  # a command line's own keys, not the request's fields
ISO_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")
EVENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_B64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")


class ContractError(ValueError):
    """A request or answer outside the contract: ``action``, ``field`` and ``why`` (one line).

    ``line`` (``field: why``) is what the daemon answers a bad request with; ``why`` alone
    for a field whose refusal must not tell a bad value from an absent thing (``alone``: a
    snapshot's event id is "no such snapshot" either way)."""

    def __init__(self, action: str, field: str, why: str, *, alone: bool = False) -> None:
        self.action, self.field, self.why, self.alone = action, field, why, alone
        super().__init__(f"{action}: {field}: {why}")

    @property
    def line(self) -> str:
        return self.why if self.alone else f"{self.field}: {self.why}"


class _Bad(Exception):
    def __init__(self, field: str, why: str, *, alone: bool = False) -> None:
        self.field, self.why, self.alone = field, why, alone


def _show(value: Any) -> str:
    return ascii(value)[:40]


def _key(key: Any) -> str:
    """A dict key in a field path: as it is if plain, else quoted (never a line break)."""
    return key if isinstance(key, str) and re.fullmatch(r"[A-Za-z0-9_]{1,40}", key) else _show(key)


@dataclasses.dataclass(frozen=True)
class Check:
    """One field's rule: ``parse(value, path)`` returns the typed value or raises _Bad."""

    desc: str
    parse: Callable[[Any, str], Any]
    alone: bool = False  # its refusal is ``desc`` alone (see ContractError)


def string(
    max_len: int,
    *,
    min_len: int = 0,
    pattern: re.Pattern[str] | None = None,
    desc: str | None = None,
    utf8: bool = False,
) -> Check:
    unit = "bytes (UTF-8)" if utf8 else "characters"
    d = desc or (
        f"a string of {min_len} to {max_len} {unit}"
        if min_len
        else f"a string of at most {max_len} {unit}"
    )

    def parse(v: Any, path: str) -> str:
        if not isinstance(v, str):
            raise _Bad(path, d)
        size = len(v) if not utf8 or len(v) * 4 <= max_len else len(v.encode("utf-8", "replace"))
        if not min_len <= size <= max_len or (pattern is not None and not pattern.fullmatch(v)):
            raise _Bad(path, d)
        return v

    return Check(d, parse)


def image(*, strict: bool, what: str = "a base64 JPEG") -> Check:
    """A base64 image of at most MAX_IMAGE_B64 characters; ``strict``: valid base64 too (an
    answer; a request's photos are judged one by one by the daemon, a bad one said why)."""
    d = f"{what} of at most {MAX_IMAGE_B64} characters"

    def parse(v: Any, path: str) -> str:
        if not isinstance(v, str) or len(v) > MAX_IMAGE_B64 or (strict and not _B64.fullmatch(v)):
            raise _Bad(path, d)
        return v

    return Check(d, parse)


def whole(lo: int, hi: int, desc: str | None = None) -> Check:
    """An int (never a bool, never 5.0) from lo to hi."""
    d = desc or f"a whole number from {lo} to {hi}"

    def parse(v: Any, path: str) -> int:
        if type(v) is not int or not lo <= v <= hi:
            raise _Bad(path, d)
        return v

    return Check(d, parse)


def number(
    lo: float,
    hi: float,
    *,
    open_lo: bool = False,
    open_hi: bool = False,
    desc: str | None = None,
    got: bool = False,
) -> Check:
    """A finite number (never a bool, NaN or infinity) in the range, as a float."""
    d = desc or f"a finite number from {lo:g} to {hi:g}"

    def parse(v: Any, path: str) -> float:
        f = as_finite(v)
        if (
            f is None
            or not (lo < f if open_lo else lo <= f)
            or not (f < hi if open_hi else f <= hi)
        ):
            raise _Bad(path, f"{d}, got {_show(v)}" if got else d)
        return f

    return Check(d, parse)


def threshold_ok(value: Any, floor: float) -> bool:
    """A threshold the web app may set: a finite number from the floor (match.threshold_floor,
    below which strangers get in) up to 1 (which nobody reaches).  The app refuses with
    :func:`threshold_why` before asking; the daemon, which decides, refuses the same."""
    t = as_finite(value)
    return t is not None and max(floor, 0.0) <= t < 1.0


def threshold_why(floor: float) -> str:
    return (
        f"threshold: a number from {max(floor, 0.0):g} (match.threshold_floor: below it "
        "strangers get in) to 1"
    )


FLAG = Check(
    "true or false", lambda v, path: v if isinstance(v, bool) else _raise(path, "true or false")
)


def _raise(path: str, why: str) -> Any:
    raise _Bad(path, why)


def maybe(check: Check) -> Check:
    """None, or what ``check`` takes."""
    return Check(
        f"null or {check.desc}", lambda v, path: None if v is None else check.parse(v, path)
    )


def many(item: Check, lo: int, hi: int, desc: str | None = None) -> Check:
    """A list of lo to hi items, each checked (``path[i]``), as a tuple."""
    d = desc or f"a list of {lo} to {hi} items, each {item.desc}"

    def parse(v: Any, path: str) -> tuple[Any, ...]:
        if not isinstance(v, (list, tuple)) or not lo <= len(v) <= hi:
            raise _Bad(path, d)
        return tuple(item.parse(x, f"{path}[{i}]") for i, x in enumerate(v))

    return Check(d, parse)


def points(lo: int, desc: str | None = None) -> Check:
    """Liveness operating points: score cue (LIVENESS_CUES) -> a live probability in (0, 1)."""
    cues = ", ".join(LIVENESS_CUES)
    d = desc or f"an object of score cue ({cues}) -> a number between 0 and 1"
    value = number(
        0.0, 1.0, open_lo=True, open_hi=True, desc="a number strictly between 0 and 1", got=True
    )

    def parse(v: Any, path: str) -> dict[str, float]:
        if not isinstance(v, dict) or not lo <= len(v) <= len(LIVENESS_CUES):
            raise _Bad(path, d)
        out = {}
        for key, p in v.items():
            if key not in LIVENESS_CUES:
                raise _Bad(path, f"{_show(key)} is not a liveness score cue ({cues})")
            out[key] = value.parse(p, f"{path}.{key}")
        return out

    return Check(d, parse)


def nested(cls: type[Wire]) -> Check:
    """One of the contract's own objects, inside another."""

    def parse(v: Any, path: str) -> Any:
        if not isinstance(v, dict):
            raise _Bad(path, "an object")
        return cls._parse(v, path + ".")

    return Check("an object", parse)


def _record(v: Any, path: str) -> dict[str, Any]:
    if not isinstance(v, dict) or not isinstance(v.get("time"), str):
        raise _Bad(path, "a decision record (an object with its time)")
    return v


RECORD = Check("a decision record (an object with its time)", _record)


def field(check: Check, **kw: Any) -> Any:
    """A dataclass field with its rule."""
    return dataclasses.field(metadata={"check": check}, **kw)


W = TypeVar("W", bound="Wire")


class Wire:
    """What every request and answer shares: from a dict (checked) and back."""

    ACTION: ClassVar[str] = ""  # the action it belongs to (several, for a shared answer)

    @classmethod
    def from_wire(cls, d: Any, action: str | None = None) -> Self:
        """The typed object, or ContractError naming the action and the field."""
        try:
            return cls._parse(d, "")
        except _Bad as bad:
            raise ContractError(action or cls.ACTION, bad.field, bad.why, alone=bad.alone) from None

    @classmethod
    def _parse(cls, d: Any, prefix: str) -> Self:
        fields = dataclasses.fields(cls)  # type: ignore[arg-type]
        names = [f.name for f in fields]
        if not isinstance(d, Mapping):
            raise _Bad(prefix.rstrip(".") or "(fields)", "not an object")
        extra = next((k for k in d if k not in names), None)
        if extra is not None:
            raise _Bad(
                prefix + _key(extra), f"not a field here (only: {', '.join(names) or 'none'})"
            )
        values = {}
        for f in fields:
            check: Check = f.metadata["check"]
            try:
                if f.name in d:
                    values[f.name] = check.parse(d[f.name], prefix + f.name)
                elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                    raise _Bad(prefix + f.name, f"missing ({check.desc})")
            except _Bad as bad:
                if check.alone:
                    raise _Bad(bad.field, check.desc, alone=True) from None
                raise
        return cls(**values)

    def to_wire(self) -> dict[str, Any]:
        """The dict for the socket (tuples as lists)."""
        return {
            f.name: _wire(getattr(self, f.name))
            for f in dataclasses.fields(self)  # type: ignore[arg-type]
        }


def _wire(v: Any) -> Any:
    if isinstance(v, Wire):
        return v.to_wire()
    if isinstance(v, (list, tuple)):
        return [_wire(x) for x in v]
    if isinstance(v, dict):
        return {k: _wire(x) for k, x in v.items()}
    return v


NAME = string(MAX_NAME, min_len=1, desc=f"a name of 1 to {MAX_NAME} characters")
WHY = string(MAX_WHY)
COUNT = whole(0, 1 << 31)


# --------------------------------------------------------------------------- the parts of answers


@dataclasses.dataclass(frozen=True)
class Person(Wire):
    ACTION = "people"
    name: str = field(NAME)
    templates: int = field(COUNT)
    face: bool = field(FLAG)
    photos: int = field(COUNT)


@dataclasses.dataclass(frozen=True)
class Attempt(Wire):
    """One photo of an enrollment: its number, whether it passed, and why not."""

    ACTION = "enroll"
    photo: int = field(whole(1, 1 << 16))
    ok: bool = field(FLAG)
    why: str = field(WHY)


# --------------------------------------------------------------------------- requests


@dataclasses.dataclass(frozen=True)
class NoFields(Wire):
    """A request with no fields (people, capture, rules_get, settings, lock)."""


@dataclasses.dataclass(frozen=True)
class PeopleRequest(NoFields):
    ACTION = "people"


@dataclasses.dataclass(frozen=True)
class CaptureRequest(NoFields):
    ACTION = "capture"


@dataclasses.dataclass(frozen=True)
class RulesGetRequest(NoFields):
    ACTION = "rules_get"


@dataclasses.dataclass(frozen=True)
class SettingsRequest(NoFields):
    ACTION = "settings"


@dataclasses.dataclass(frozen=True)
class EnrollRequest(Wire):
    ACTION = "enroll"
    name: str = field(NAME)
    photos: tuple[str, ...] = field(
        many(
            image(strict=False),
            1,
            MAX_PHOTOS,
            desc=f"enroll needs 1 to {MAX_PHOTOS} photos, each a base64 JPEG of at most "
            f"{MAX_IMAGE_B64} characters",
        )
    )
    replace: bool = field(FLAG, default=False)


@dataclasses.dataclass(frozen=True)
class NameRequest(Wire):
    """A request about one enrolled person."""

    name: str = field(NAME)


@dataclasses.dataclass(frozen=True)
class ReenrollRequest(NameRequest):
    ACTION = "reenroll"


@dataclasses.dataclass(frozen=True)
class RemoveRequest(NameRequest):
    ACTION = "remove"


@dataclasses.dataclass(frozen=True)
class FaceRequest(NameRequest):
    ACTION = "face"


@dataclasses.dataclass(frozen=True)
class RenameRequest(Wire):
    ACTION = "rename"
    old: str = field(NAME)
    new: str = field(NAME)


@dataclasses.dataclass(frozen=True)
class AddTemplateRequest(Wire):
    ACTION = "add_template"
    name: str = field(NAME)
    photo: str = field(image(strict=False))


@dataclasses.dataclass(frozen=True)
class DecisionsRequest(Wire):
    """Records logged after ``after`` (the log's ISO ``time``; "": from the start)."""

    ACTION = "decisions"
    after: str = field(
        string(
            40,
            pattern=re.compile(f"(?:{ISO_TIME.pattern})?"),
            desc="an ISO time like 2026-01-01T00:00:00.000Z",
        ),
        default="",
    )
    limit: int = field(whole(1, MAX_RECORDS), default=MAX_RECORDS)


@dataclasses.dataclass(frozen=True)
class SnapshotRequest(Wire):
    ACTION = "snapshot"
    event_id: str = field(
        dataclasses.replace(
            string(128, min_len=1, pattern=EVENT_ID, desc="no such snapshot"), alone=True
        )
    )  # a bad id is no such snapshot, as an absent one is


@dataclasses.dataclass(frozen=True)
class RulesSetRequest(Wire):
    ACTION = "rules_set"
    text: str = field(
        string(
            MAX_RULES_BYTES,
            utf8=True,
            desc=f"the rules must be text of at most {MAX_RULES_BYTES} bytes",
        )
    )


@dataclasses.dataclass(frozen=True)
class ThresholdSetRequest(Wire):
    """The daemon checks the floor (match.threshold_floor) it alone knows."""

    ACTION = "threshold_set"
    value: float = field(number(-1.0, 1.0, desc="a finite number (a cosine, from -1 to 1)"))


@dataclasses.dataclass(frozen=True)
class LivenessSetRequest(Wire):
    ACTION = "liveness_set"
    points: Mapping[str, float] = field(points(1))


@dataclasses.dataclass(frozen=True)
class DrillRequest(Wire):
    """An attack drill for ``minutes`` (0: stop it)."""

    ACTION = "drill"
    minutes: int = field(whole(0, MAX_DRILL_MINUTES))


@dataclasses.dataclass(frozen=True)
class LockRequest(NoFields):
    """A door command (not a household request: edge.bridge.link answers it)."""

    ACTION = "lock"


@dataclasses.dataclass(frozen=True)
class FaceUnlockRequest(Wire):
    """A door command (not a household request: edge.bridge.link answers it)."""

    ACTION = "face_unlock"
    value: bool = field(FLAG)


# --------------------------------------------------------------------------- answers


@dataclasses.dataclass(frozen=True)
class NoData(Wire):
    """An answer with no data (rename, remove, rules_set; the door commands)."""

    ACTION = "rename/remove/rules_set"


@dataclasses.dataclass(frozen=True)
class PeopleAnswer(Wire):
    ACTION = "people"
    people: tuple[Person, ...] = field(many(nested(Person), 0, MAX_PEOPLE))
    model_current: bool = field(FLAG)


@dataclasses.dataclass(frozen=True)
class EnrollAnswer(Wire):
    """Each photo's outcome (a refusal too), and on success how many templates."""

    ACTION = "enroll/reenroll"
    attempts: tuple[Attempt, ...] = field(many(nested(Attempt), 0, 1 << 10))
    added: int = field(COUNT, default=0)
    templates: int = field(COUNT, default=0)


@dataclasses.dataclass(frozen=True)
class AddTemplateAnswer(Wire):
    """The cosine to the person's templates and the floor; how many templates now."""

    ACTION = "add_template"
    score: float | None = field(maybe(number(-1.0, 1.0)), default=None)
    floor: float | None = field(maybe(number(-1.0, 1.0)), default=None)
    templates: int | None = field(maybe(COUNT), default=None)
    attempts: tuple[Attempt, ...] = field(many(nested(Attempt), 0, 1), default=())


@dataclasses.dataclass(frozen=True)
class CaptureAnswer(Wire):
    """The camera's last frame, and whether it would pass the enrollment checks."""

    ACTION = "capture"
    jpeg_b64: str = field(image(strict=True))
    ok: bool = field(FLAG)


@dataclasses.dataclass(frozen=True)
class ImageAnswer(Wire):
    ACTION = "snapshot/face"
    jpeg_b64: str = field(image(strict=True))


@dataclasses.dataclass(frozen=True)
class DecisionsAnswer(Wire):
    ACTION = "decisions"
    records: tuple[dict[str, Any], ...] = field(many(RECORD, 0, MAX_RECORDS))
    more: bool = field(FLAG)


@dataclasses.dataclass(frozen=True)
class RulesAnswer(Wire):
    """The rules file (None: access.rules is not set) and its text."""

    ACTION = "rules_get"
    path: str | None = field(maybe(string(MAX_PATH)))
    text: str = field(string(MAX_RULES_BYTES * 3))  # undecodable bytes come as U+FFFD


@dataclasses.dataclass(frozen=True)
class ThresholdAnswer(Wire):
    ACTION = "threshold_set"
    old: float = field(number(-1.0, 1.0))
    new: float = field(number(-1.0, 1.0))


@dataclasses.dataclass(frozen=True)
class LivenessAnswer(Wire):
    ACTION = "liveness_set"
    old: Mapping[str, float] = field(points(0))
    new: Mapping[str, float] = field(points(1))


@dataclasses.dataclass(frozen=True)
class DrillAnswer(Wire):
    """When the drill ends (Unix seconds), or None: stopped."""

    ACTION = "drill"
    drill_until: float | None = field(maybe(number(0.0, 1e11)))


@dataclasses.dataclass(frozen=True)
class SettingsAnswer(Wire):
    """What the door applies now, beside its config's values."""

    ACTION = "settings"
    min_cosine_similarity: float = field(number(-1.0, 1.0))
    config_min_cosine_similarity: float = field(number(-1.0, 1.0))
    liveness_points: Mapping[str, float] = field(points(0))
    config_liveness_points: Mapping[str, float] = field(points(0))
    drill_until: float | None = field(maybe(number(0.0, 1e11)))
    min_margin: float = field(number(-2.0, 2.0))
    model: str = field(string(MAX_PATH))
    door: str = field(string(256))
    snapshots: bool = field(FLAG)
    rules: bool = field(FLAG)


# --------------------------------------------------------------------------- the dispatch table

HOUSEHOLD: Mapping[str, tuple[type[Wire], type[Wire]]] = MappingProxyType(
    {
        "people": (PeopleRequest, PeopleAnswer),
        "enroll": (EnrollRequest, EnrollAnswer),
        "capture": (CaptureRequest, CaptureAnswer),
        "rename": (RenameRequest, NoData),
        "remove": (RemoveRequest, NoData),
        "reenroll": (ReenrollRequest, EnrollAnswer),
        "add_template": (AddTemplateRequest, AddTemplateAnswer),
        "decisions": (DecisionsRequest, DecisionsAnswer),
        "snapshot": (SnapshotRequest, ImageAnswer),
        "face": (FaceRequest, ImageAnswer),
        "rules_get": (RulesGetRequest, RulesAnswer),
        "rules_set": (RulesSetRequest, NoData),
        "threshold_set": (ThresholdSetRequest, ThresholdAnswer),
        "liveness_set": (LivenessSetRequest, LivenessAnswer),
        "drill": (DrillRequest, DrillAnswer),
        "settings": (SettingsRequest, SettingsAnswer),
    }
)
# The door commands the web app sends (edge.bridge.link answers them, with no data).
WEB_DOOR: Mapping[str, tuple[type[Wire], type[Wire]]] = MappingProxyType(
    {"lock": (LockRequest, NoData), "face_unlock": (FaceUnlockRequest, NoData)}
)


def parse_request(cmd: Mapping[str, Any]) -> Wire:
    """A household command line (its envelope: ``type``, ``id``, ``action``) as its typed
    request; ContractError if the action is not a household one or a field is bad."""
    action = cmd.get("action")
    if not isinstance(action, str) or action not in HOUSEHOLD:
        raise ContractError(_show(action), "action", "not a household request")
    fields = {k: v for k, v in cmd.items() if k not in ENVELOPE}
    return HOUSEHOLD[action][0].from_wire(fields, action)


A = TypeVar("A", bound=Wire)


@dataclasses.dataclass(frozen=True)
class Reply(Generic[A]):
    """One result line: whether the daemon did it, why (or why not), and its typed answer
    (None when it sent no data: most refusals, and every answer the app could not get)."""

    ok: bool
    why: str
    data: A | None = None

    @classmethod
    def from_wire(cls, action: str, answer: type[A], msg: Any) -> Reply[A]:
        """A result line (``ok``, ``why``, ``data``) checked against ``answer``'s contract."""
        if not isinstance(msg, Mapping):
            raise ContractError(action, "(result)", "not an object")
        try:
            ok = FLAG.parse(msg.get("ok"), "ok")
            why = WHY.parse(msg.get("why", ""), "why")
        except _Bad as bad:
            raise ContractError(action, bad.field, bad.why) from None
        data = msg.get("data")
        if data is None or (not ok and data == {}):
            data = {} if ok else None
        return cls(ok, why, None if data is None else answer.from_wire(data, action))
