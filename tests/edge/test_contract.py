"""The one contract between the web app and the daemon (edge.bridge.contract), on both sides."""

from __future__ import annotations

import base64
import dataclasses
import json
import subprocess
import sys
from typing import Any

import pytest

from edge.bridge import contract as c
from edge.bridge.household import Household
from edge.bridge.protocol import HOUSEHOLD_ACTIONS, MAX_LINE
from edge.web.client import DaemonClient

JPEG = base64.b64encode(b"\xff\xd8\xff\xe0 a JPEG, as far as the contract knows").decode()
ATTEMPT = c.Attempt(photo=1, ok=False, why="no face")

# One valid request and answer for every household action.
REQUESTS: dict[str, c.Wire] = {
    "people": c.PeopleRequest(),
    "enroll": c.EnrollRequest(name="zoe", photos=(JPEG, JPEG), replace=True),
    "capture": c.CaptureRequest(),
    "rename": c.RenameRequest(old="zoe", new="zoé b"),
    "remove": c.RemoveRequest(name="zoe"),
    "reenroll": c.ReenrollRequest(name="zoe"),
    "add_template": c.AddTemplateRequest(name="zoe", photo=JPEG),
    "decisions": c.DecisionsRequest(after="2026-01-01T00:00:00.000Z", limit=7),
    "snapshot": c.SnapshotRequest(event_id="20260101T000000-ab.c_d"),
    "face": c.FaceRequest(name="zoe"),
    "rules_get": c.RulesGetRequest(),
    "rules_set": c.RulesSetRequest(text="people:\n  bob:\n    disabled: true\n"),
    "threshold_set": c.ThresholdSetRequest(value=0.5),
    "liveness_set": c.LivenessSetRequest(points={"texture": 0.3, "minifasnet": 0.5}),
    "drill": c.DrillRequest(minutes=5),
    "settings": c.SettingsRequest(),
}
ANSWERS: dict[str, c.Wire] = {
    "people": c.PeopleAnswer(
        people=(c.Person(name="zoe", templates=3, face=True, photos=2),), model_current=False
    ),
    "enroll": c.EnrollAnswer(attempts=(ATTEMPT, c.Attempt(2, True, "ok")), added=1, templates=4),
    "capture": c.CaptureAnswer(jpeg_b64=JPEG, ok=True),
    "rename": c.NoData(),
    "remove": c.NoData(),
    "reenroll": c.EnrollAnswer(attempts=()),
    "add_template": c.AddTemplateAnswer(score=0.61, floor=0.42, templates=5),
    "decisions": c.DecisionsAnswer(
        records=({"event_id": "e1", "time": "2026-01-01T00:00:00.000Z", "decision": "deny"},),
        more=True,
    ),
    "snapshot": c.ImageAnswer(jpeg_b64=JPEG),
    "face": c.ImageAnswer(jpeg_b64=JPEG),
    "rules_get": c.RulesAnswer(path=None, text=""),
    "rules_set": c.NoData(),
    "threshold_set": c.ThresholdAnswer(old=0.5, new=0.55),
    "liveness_set": c.LivenessAnswer(old={"texture": 0.018}, new={"texture": 0.3}),
    "drill": c.DrillAnswer(drill_until=None),
    "settings": c.SettingsAnswer(
        min_cosine_similarity=0.5,
        config_min_cosine_similarity=0.45,
        liveness_points={"texture": 0.3},
        config_liveness_points={},
        drill_until=1.8e9,
        min_margin=0.05,
        model="sface.tflite",
        door="door",
        snapshots=True,
        rules=False,
    ),
}
HUGE = "x" * (MAX_LINE + 1)


def test_the_dispatch_table_is_the_one_list_of_household_actions():
    assert tuple(c.HOUSEHOLD) == HOUSEHOLD_ACTIONS
    assert set(REQUESTS) == set(ANSWERS) == set(c.HOUSEHOLD)
    assert c.MAX_IMAGE_B64 <= MAX_LINE


def test_the_contracts_score_cues_are_the_daemons():
    from edge.liveness import SCORE_CUES

    assert tuple(SCORE_CUES) == c.LIVENESS_CUES


@pytest.mark.parametrize("action", HOUSEHOLD_ACTIONS)
def test_every_request_and_answer_round_trips_through_json(action):
    request_type, answer_type = c.HOUSEHOLD[action]
    req, ans = REQUESTS[action], ANSWERS[action]
    assert type(req) is request_type and isinstance(ans, answer_type)
    for obj, cls in ((req, request_type), (ans, answer_type)):
        wire = json.loads(json.dumps(obj.to_wire(), allow_nan=False))
        back = cls.from_wire(wire, action)
        assert back == obj and back.to_wire() == obj.to_wire()
    line = {"type": "command", "id": 3, "action": action, **req.to_wire()}
    assert c.parse_request(line) == req
    reply = c.Reply.from_wire(
        action, answer_type, {"type": "result", "ok": True, "why": "", "data": ans.to_wire()}
    )
    assert reply == c.Reply(True, "", ans)


def _hostile(action: str) -> list[tuple[str, dict[str, Any]]]:
    """(field, request fields) pairs: one field made hostile in an otherwise valid request."""
    base = REQUESTS[action].to_wire()
    cases: list[tuple[str, dict[str, Any]]] = [("surprise", {**base, "surprise": 1})]
    for f in dataclasses.fields(type(REQUESTS[action])):  # type: ignore[arg-type]
        required = f.default is dataclasses.MISSING
        if required:
            cases.append((f.name, {k: v for k, v in base.items() if k != f.name}))
        values: list[Any] = [float("nan"), float("inf"), -float("inf"), HUGE, [HUGE], {}, None]
        values += [] if isinstance(base[f.name], bool) else [True, False]
        values += [] if isinstance(base[f.name], str) else ["1"]
        values += [] if isinstance(base[f.name], (int, float)) else [1, 0.5]
        for v in values:
            cases.append((f.name, {**base, f.name: v}))
    return cases


@pytest.mark.parametrize("action", HOUSEHOLD_ACTIONS)
def test_a_hostile_request_is_refused_naming_its_field_and_never_reaches_the_handler(action):
    h = Household.__new__(Household)  # no daemon needed: nothing may get past the contract
    calls: list[Any] = []
    answer = ANSWERS[action].to_wire()
    setattr(h, "_" + action, lambda req: calls.append(req) or (True, "", answer))
    cases = _hostile(action)
    for field, fields in cases:
        ok, why, data = h.handle({"type": "command", "id": 1, "action": action, **fields})
        shown = {k: str(v)[:20] for k, v in fields.items()}
        assert not ok and data == {} and "\n" not in why and len(why) < 400, (shown, why)
        if action == "snapshot" and field == "event_id":
            assert why == "no such snapshot"  # as for an id that names none
        else:
            assert why.startswith((field + ":", field + ".", field + "[")), (shown, why)
        with pytest.raises(c.ContractError, match=f"^{action}: ") as exc:
            c.parse_request({"action": action, **fields})
        assert exc.value.action == action and exc.value.field.startswith(field)
    assert calls == []
    # ...while the valid request reaches it, typed.
    assert h.handle({"action": action, **REQUESTS[action].to_wire()})[0]
    assert calls == [REQUESTS[action]]


def test_the_limits_of_particular_fields():
    def why(action: str, **fields: Any) -> str:
        with pytest.raises(c.ContractError) as exc:
            c.parse_request({"action": action, **fields})
        return exc.value.line

    assert why("enroll", name="x", photos=[]).startswith("photos: enroll needs 1 to 10 photos")
    assert why("enroll", name="x", photos=[JPEG] * 11).startswith("photos: enroll needs 1 to 10")
    assert why("enroll", name="x", photos=[JPEG, 7]).startswith("photos[1]: a base64 JPEG")
    assert why("enroll", name="x" * 65, photos=[JPEG]).startswith("name: a name of 1 to 64")
    assert why("enroll", name="", photos=[JPEG]).startswith("name: a name of 1 to 64")
    assert why("decisions", after="yesterday").startswith("after: an ISO time")
    assert why("decisions", limit=501).startswith("limit: a whole number from 1 to 500")
    assert why("decisions", limit=0).startswith("limit:")
    assert why("rules_set", text="é" * (c.MAX_RULES_BYTES // 2 + 1)).startswith(
        "text: the rules must be text of at most 262144 bytes"
    )
    assert why("threshold_set", value=1.5).startswith("value: a finite number")
    assert why("drill", minutes=5.0) == "minutes: a whole number from 0 to 30"
    assert why("drill", minutes=True) == "minutes: a whole number from 0 to 30"
    assert why("drill") == "minutes: missing (a whole number from 0 to 30)"
    assert why("liveness_set", points={"texture": 1e-400}).startswith("points.texture:")
    assert why("liveness_set", points={"a\nb": 0.3}) == (
        "points: 'a\\nb' is not a liveness score cue (texture, minifasnet)"
    )
    assert why("people", **{"a\nb": 1}).startswith("'a\\nb': not a field here")
    assert why("unlock").startswith("action: not a household request")


def test_a_refusal_with_its_data_and_one_without_are_both_typed():
    refused = {"ok": False, "why": "nothing enrolled", "data": {"attempts": [ATTEMPT.to_wire()]}}
    reply = c.Reply.from_wire("enroll", c.EnrollAnswer, refused)
    assert reply == c.Reply(False, "nothing enrolled", c.EnrollAnswer(attempts=(ATTEMPT,)))
    assert c.Reply.from_wire("people", c.PeopleAnswer, {"ok": False, "why": "no"}) == c.Reply(
        False, "no"
    )
    for bad in (
        {"ok": 1, "why": ""},
        {"ok": True, "why": 3},
        {"ok": True, "why": "", "data": {}},  # people without its people
        {"ok": True, "why": "", "data": {"people": [], "model_current": True, "embedding": [0.1]}},
        {"ok": True, "why": "", "data": {"people": [{"name": "z"}], "model_current": True}},
        "not an object",
    ):
        with pytest.raises(c.ContractError, match=r"^people: "):
            c.Reply.from_wire("people", c.PeopleAnswer, bad)


def test_the_daemons_answer_is_checked_on_its_way_out(caplog):
    h = Household.__new__(Household)
    h._capture = lambda req: (True, "ok", {"jpeg_b64": "%%%", "ok": True})
    h._add_template = lambda req: (False, "no", {"score": float("nan"), "floor": 0.42})
    h._drill = lambda req: (True, "drill", {"drill_until": 5.0, "vector": [0.1] * 128})
    for action, fields in (("capture", {}), ("add_template", {"name": "z", "photo": JPEG})):
        ok, why, data = h.handle({"action": action, **fields})
        assert not ok and data == {} and "outside the contract" in why, why
    ok, why, data = h.handle({"action": "drill", "minutes": 1})
    assert not ok and data == {} and "vector" in why
    assert "an answer outside the contract" in caplog.text


class FakeDaemon:
    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.listeners: list[Any] = []
        self.sent: list[tuple[str, dict[str, Any]]] = []

    @property
    def state(self) -> dict[str, Any] | None:
        return None

    def request(self, action: str, *, timeout_s: float = 15.0, **fields: Any) -> dict[str, Any]:
        self.sent.append((action, fields))
        return self.answer


def test_the_client_sends_only_what_the_contract_takes_and_types_what_comes_back():
    good = {"type": "result", "id": 1, "ok": True, "why": "", "data": ANSWERS["people"].to_wire()}
    daemon = FakeDaemon(good)
    client = DaemonClient(daemon)
    assert client.people() == c.Reply(True, "", ANSWERS["people"])
    # A request outside the contract is refused in the app, never sent.
    for reply in (
        client.liveness_set({"texture": float("nan")}),
        client.drill(True),
        client.rename("zoe", "x" * 100),
        client.enroll("zoe", [], replace=False),
    ):
        assert not reply.ok and reply.data is None and ":" in reply.why
    assert [a for a, _ in daemon.sent] == ["people"]
    # An answer outside it is a refusal saying so; so is no answer at all.
    daemon.answer = {"ok": True, "why": "", "data": {"people": "everyone"}}
    reply = client.people()
    assert not reply.ok and "not understood" in reply.why and "people" in reply.why
    assert reply.data is None
    # The door commands: no data, typed all the same.
    daemon.answer = {"ok": True, "why": "locked"}
    assert client.lock() == c.Reply(True, "locked", c.NoData())
    assert daemon.sent[-1] == ("lock", {})
    client.face_unlock(False)
    assert daemon.sent[-1] == ("face_unlock", {"value": False})


def test_the_client_says_why_when_the_daemon_is_away():
    from edge.bridge.mqtt import DaemonUnavailable

    class Away(FakeDaemon):
        def request(self, action: str, *, timeout_s: float = 15.0, **fields: Any) -> dict[str, Any]:
            raise DaemonUnavailable("the door daemon is not connected")

    assert DaemonClient(Away(None)).settings() == c.Reply(False, "the door daemon is not connected")


def test_the_contract_and_the_client_load_no_opencv_numpy_or_face_pipeline():
    code = (
        "import sys, edge.bridge.contract, edge.bridge.protocol, edge.web.client\n"
        "print(' '.join(sorted(sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    heavy = {"cv2", "numpy", "edge.pipeline", "edge.detect", "edge.embed", "edge.gallery"}
    assert heavy.isdisjoint(out), heavy & set(out)
    assert not [m for m in out if m.startswith(("edge.liveness", "edge.bridge.household"))]
