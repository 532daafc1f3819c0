"""The daemon's use of the bridge: what it tells it, and what it lets it do.

In: the daemon's door, policy and camera, and its way to act on a decision (log first, then
the relay).  Out: decision events and the door's state on the bridge socket; the bridge's
commands carried out on the daemon's own thread, once per loop: lock (always allowed), face
unlock on/off (kept in ``switches.json`` beside the gallery, so a restart keeps it), and --
only with ``mqtt.remote_unlock`` -- unlock/open, each a logged decision; and the web app's
requests (:mod:`edge.bridge.household`).
"""

from __future__ import annotations

import base64
import logging
import os
import pwd
from collections.abc import Callable
from pathlib import Path
from typing import Any

import edge
from edge.bridge.commands import SENDER_MAX, RemoteCommands, read_code
from edge.bridge.household import Household
from edge.bridge.protocol import HOUSEHOLD_ACTIONS
from edge.bridge.server import BridgeServer
from edge.closeable import Closeable
from edge.config import Config
from edge.files import read_state, save_state
from edge.policy import Policy
from edge.text import printable
from edge.types import Decision, Frame

log = logging.getLogger(__name__)


def switches_path(config: Config) -> Path:
    return Path(config.gallery.path).with_name("switches.json")


def allowed_uids(bridge_user: str) -> frozenset[int]:
    """The daemon's own uid, and the bridge user's if it exists on this machine."""
    uids = {os.getuid()}
    try:
        uids.add(pwd.getpwnam(bridge_user).pw_uid)
    except KeyError:
        log.info(
            "mqtt.bridge_user %r: no such user; only uid %d may connect", bridge_user, os.getuid()
        )
    return frozenset(uids)


class DaemonLink(Closeable):
    def __init__(
        self,
        config: Config,
        *,
        server: BridgeServer,
        remote: RemoteCommands,
        policy: Policy,
        door: Any,
        camera: Any,
        act: Callable[[Decision, Any], None],
        clock: Callable[[], float],
        wall: Callable[[], float],
        pipeline: Any = None,
    ) -> None:
        self.config = config
        self.server = server
        self.remote = remote
        self.policy = policy
        self.door = door
        self.camera = camera
        self.act = act
        self.clock = clock
        self.wall = wall
        self.policy.face_unlock = self._load_face_unlock()
        self.last_frame: Frame | None = None  # set by the daemon's loop, for a capture
        self.household = (
            None
            if pipeline is None
            else Household(
                config, pipeline=pipeline, policy=policy, last_frame=lambda: self.last_frame
            )
        )

    @classmethod
    def build(cls, config: Config, **parts: Any) -> DaemonLink:
        """Check the code file and bind the socket (before READY), then wire the parts."""
        m = config.mqtt
        code = read_code(m.code_file) if m.remote_unlock and m.code_file else None
        server = BridgeServer(
            m.socket,
            allowed_uids=allowed_uids(m.bridge_user),
            queue_max=m.queue_max,
            state=dict,  # replaced below, once the link exists
        )
        link = cls(
            config,
            server=server,
            remote=RemoteCommands(code=code, max_age_s=m.command_max_age_s),
            **parts,
        )
        server.state = link.state
        server.start()
        return link

    # ------------------------------------------------------------------ out

    def state(self) -> dict[str, Any]:
        """The door as Home Assistant shows it (read from the server's thread: plain reads only)."""
        door = self.door
        is_open = door.is_open
        held = door.contact is not None and door.contact.held_open
        lock = (
            "JAMMED"
            if held
            else "OPEN"
            if is_open
            else "UNLOCKED"
            if door.is_unlocked
            else "LOCKED"
        )
        camera_ok = bool(getattr(self.camera, "connected", True))
        return {
            "door": self.config.mqtt.door_id,
            "version": edge.__version__,
            "lock": lock,
            "door_open": is_open,
            "face_unlock": self.policy.face_unlock,
            "remote_unlock": self.config.mqtt.remote_unlock,
            "problem": not camera_ok,
            "problem_why": "" if camera_ok else "camera lost",
            "locked_out": self.policy.locked_out_until(self.clock()) is not None,
            # Unix seconds while an attack drill runs (no face is let in), else None.
            "drill_until": self.policy.drill_until if self.policy.drilling() else None,
        }

    def decided(self, d: Decision, record: dict[str, Any], snapshot: str | None) -> None:
        msg: dict[str, Any] = {"type": "decision", "record": record}
        if snapshot is not None and self.config.mqtt.snapshots:
            try:
                msg["snapshot_jpeg_b64"] = base64.b64encode(Path(snapshot).read_bytes()).decode()
            except OSError as exc:
                log.warning("bridge: snapshot %s not sent: %s", snapshot, exc.strerror)
        self.server.publish(msg)
        self.server.publish({"type": "state", **self.state()})

    def door_event(self, event: str) -> None:
        """From gpiozero's thread: the door contact and the exit button."""
        self.server.publish({"type": "door_event", "event": event})

    # ------------------------------------------------------------------ in

    def serve(self) -> None:
        """Carry out the commands that arrived since the last call (the daemon's thread)."""
        for cmd in self.server.commands():
            data: dict[str, Any] = {}
            if cmd["action"] in HOUSEHOLD_ACTIONS:
                if self.household is None:
                    ok, why = False, "this daemon takes no household requests"
                else:
                    ok, why, data = self.household.handle(cmd)
            else:
                ok, why = self._command(cmd)
            result = {"type": "result", "id": cmd.get("id"), "ok": ok, "why": why}
            self.server.publish({**result, "data": data} if data else result)
            self.server.publish({"type": "state", **self.state()})

    def _command(self, cmd: dict[str, Any]) -> tuple[bool, str]:
        action = cmd["action"]
        if action == "lock":
            self.door.lock()
            return True, "locked"
        if action == "face_unlock":
            value = cmd.get("value")
            if not isinstance(value, bool):
                return False, "face_unlock needs value true or false"
            self.policy.face_unlock = value
            self._save_face_unlock(value)
            log.warning("face unlock switched %s from the bridge", "on" if value else "off")
            return True, f"face unlock {'on' if value else 'off'}"
        if not self.config.mqtt.remote_unlock:
            log.warning("bridge: %s refused: mqtt.remote_unlock is off", action)
            return False, "remote unlock is off"
        refusal = self.remote.refusal(cmd, self.wall())
        if refusal is not None:
            log.warning("bridge: %s refused: %s", action, refusal)
            return False, refusal
        # "<sender> via <user>" from the bridge (edge.bridge.mqtt.command_sender); bounded again
        # here, so a misbehaving bridge cannot put a newline or a page of text in the log.
        sender = cmd.get("sender")
        sender = (
            printable(sender, 2 * SENDER_MAX + 5) if isinstance(sender, str) else ""
        ) or "mqtt"
        d = self.policy.remote(
            self.clock(), sender=sender, code_ok=self.remote.code_ok(cmd.get("code"))
        )
        self.act(d, None)
        return d.unlock, str(d.reason)

    # ------------------------------------------------------------------ the switch, kept

    def _load_face_unlock(self) -> bool:
        path = switches_path(self.config)
        value, why = read_state(path, "face_unlock")
        if why is not None:
            log.warning("%s: %s: face unlock stays OFF until switched on", path, why)
            return False
        if value is None and not path.exists():
            return True
        if not isinstance(value, bool):
            log.warning("%s: face_unlock is not true or false: face unlock stays OFF", path)
            return False
        if not value:
            log.warning("face unlock is off (%s): faces are refused until it is switched on", path)
        return value

    def _save_face_unlock(self, value: bool) -> None:
        save_state(switches_path(self.config), {"face_unlock": value}, "the face unlock switch")

    def close(self) -> None:
        self.server.close()
