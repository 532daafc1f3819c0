"""The web app's one way to the door daemon: a typed client over the bridge's socket.

In: a :class:`DaemonPort` (the Bridge; a test may pass its own).  Out: one method per
household action (and the two door commands the app sends), each returning a
:class:`~edge.bridge.contract.Reply` whose ``data`` is the action's typed answer
(:mod:`edge.bridge.contract`): the app never sees the daemon's dicts.  A request outside the
contract is refused here, before it is sent; an answer outside it, or no answer (the daemon
away, a timeout), is a refusal saying why: no method raises.

Every method blocks (a round trip through the daemon's loop): routes call them from the
thread pool, never on the event loop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from edge.bridge.contract import (
    HOUSEHOLD,
    WEB_DOOR,
    AddTemplateAnswer,
    AddTemplateRequest,
    CaptureAnswer,
    CaptureRequest,
    ContractError,
    DecisionsAnswer,
    DecisionsRequest,
    DrillAnswer,
    DrillRequest,
    EnrollAnswer,
    EnrollRequest,
    FaceRequest,
    FaceUnlockRequest,
    ImageAnswer,
    LivenessAnswer,
    LivenessSetRequest,
    LockRequest,
    NoData,
    PeopleAnswer,
    PeopleRequest,
    ReenrollRequest,
    RemoveRequest,
    RenameRequest,
    Reply,
    RulesAnswer,
    RulesGetRequest,
    RulesSetRequest,
    SettingsAnswer,
    SettingsRequest,
    SnapshotRequest,
    ThresholdAnswer,
    ThresholdSetRequest,
    Wire,
)
from edge.errors import FacegateError
from edge.text import first_line

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 15.0
SLOW_TIMEOUT_S = 120.0  # an enrollment: judging up to ten photos between frames


class DaemonPort(Protocol):
    """What the app needs of the daemon (the Bridge; a test may pass its own)."""

    listeners: list[Callable[[dict[str, Any]], None]]

    @property
    def state(self) -> dict[str, Any] | None: ...

    def request(self, action: str, *, timeout_s: float = ..., **fields: Any) -> dict[str, Any]: ...


class DaemonClient:
    """The daemon's household requests, typed (see the module docstring)."""

    def __init__(self, daemon: DaemonPort) -> None:
        self.daemon = daemon

    def call(self, request: Wire, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> Reply[Any]:
        """Send ``request`` (checked first) and its answer, checked; never raises."""
        action = request.ACTION
        request_type, answer_type = {**HOUSEHOLD, **WEB_DOOR}[action]
        try:
            fields = request_type.from_wire(request.to_wire(), action).to_wire()
        except ContractError as exc:
            return Reply(False, exc.line)
        try:
            msg = self.daemon.request(action, timeout_s=timeout_s, **fields)
        except FacegateError as exc:
            return Reply(False, first_line(exc))
        try:
            return Reply.from_wire(action, answer_type, msg)
        except ContractError as exc:
            log.warning("the door daemon's answer is outside the contract: %s", exc)
            return Reply(
                False, f"the door daemon's answer to {action} was not understood ({exc.line})"
            )

    # ------------------------------------------------------------------ people

    def people(self) -> Reply[PeopleAnswer]:
        return self.call(PeopleRequest())

    def enroll(self, name: str, photos: list[str], *, replace: bool) -> Reply[EnrollAnswer]:
        return self.call(
            EnrollRequest(name=name, photos=tuple(photos), replace=replace),
            timeout_s=SLOW_TIMEOUT_S,
        )

    def reenroll(self, name: str) -> Reply[EnrollAnswer]:
        return self.call(ReenrollRequest(name=name), timeout_s=SLOW_TIMEOUT_S)

    def capture(self) -> Reply[CaptureAnswer]:
        return self.call(CaptureRequest())

    def rename(self, old: str, new: str) -> Reply[NoData]:
        return self.call(RenameRequest(old=old, new=new), timeout_s=SLOW_TIMEOUT_S)

    def remove(self, name: str) -> Reply[NoData]:
        return self.call(RemoveRequest(name=name), timeout_s=SLOW_TIMEOUT_S)

    def add_template(self, name: str, photo: str) -> Reply[AddTemplateAnswer]:
        return self.call(AddTemplateRequest(name=name, photo=photo), timeout_s=60.0)

    # ------------------------------------------------------------------ decisions and images

    def decisions(self, after: str = "") -> Reply[DecisionsAnswer]:
        return self.call(DecisionsRequest(after=after))

    def snapshot(self, event_id: str) -> Reply[ImageAnswer]:
        return self.call(SnapshotRequest(event_id=event_id))

    def face(self, name: str) -> Reply[ImageAnswer]:
        return self.call(FaceRequest(name=name))

    # ------------------------------------------------------------------ rules and settings

    def rules_get(self) -> Reply[RulesAnswer]:
        return self.call(RulesGetRequest())

    def rules_set(self, text: str) -> Reply[NoData]:
        return self.call(RulesSetRequest(text=text))

    def threshold_set(self, value: float) -> Reply[ThresholdAnswer]:
        return self.call(ThresholdSetRequest(value=value))

    def liveness_set(self, points: dict[str, float]) -> Reply[LivenessAnswer]:
        return self.call(LivenessSetRequest(points=dict(points)))

    def drill(self, minutes: int) -> Reply[DrillAnswer]:
        return self.call(DrillRequest(minutes=minutes))

    def settings(self) -> Reply[SettingsAnswer]:
        return self.call(SettingsRequest())

    # ------------------------------------------------------------------ the door commands

    def lock(self) -> Reply[NoData]:
        return self.call(LockRequest())

    def face_unlock(self, value: bool) -> Reply[NoData]:
        return self.call(FaceUnlockRequest(value=value))
