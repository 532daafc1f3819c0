"""facegate bridge: the door daemon's events and state on MQTT, for Home Assistant; its commands back.

In: the config's ``mqtt`` section, the daemon's socket (:mod:`edge.bridge.server`) and a
broker.  Out: Home Assistant discovery (retained; again whenever HA announces ``online`` on
``<discovery_prefix>/status``), the door's state (retained), an event per decision and door
event, optionally the visitor's snapshot; and the lock and switch commands passed to the
daemon, which decides.  A retained command is never passed on (and retained commands are
cleared at start).  Every topic is under ``<topic_prefix>/<door_id>/``, so doors share a broker.

The bridge holds no relay, no gallery and no code: it runs as its own unprivileged user.
It also carries the web app's requests (:meth:`Bridge.request`, answered on the same
socket, never published) and hands every daemon message to its ``listeners``; with
``mqtt.broker: false`` it serves only those.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import json
import logging
import socket
import stat
import threading
import time
from collections.abc import Callable
from typing import Any

import edge
from edge.bridge.commands import MIN_CODE_LEN, SENDER_MAX
from edge.bridge.protocol import LineReader, ProtocolError, encode
from edge.config import Config, MqttConfig
from edge.errors import ConfigError, ExitCode, FacegateError
from edge.files import read_secret
from edge.jsonfields import as_finite
from edge.text import first_line, printable
from edge.throttle import Throttle

log = logging.getLogger(__name__)

EVENT_TYPES = (
    "granted",
    "denied_unknown",
    "presentation_attack",
    "lockout",
    "remote_unlock",
    "exit_button",
    "door_held_open",
    "attack_drill",
)
# decision log reason -> event type (every other denial is denied_unknown, with its reason)
REASON_EVENTS = {
    "accepted": "granted",
    "presentation_attack": "presentation_attack",
    "locked_out": "lockout",
    "remote_unlock": "remote_unlock",
    # Remote unlock refused whatever the code, after too many wrong ones (in a row, or today).
    "remote_locked_out": "lockout",
    "remote_daily_cap": "lockout",
    # A face that would have been let in during an attack drill: denied, and not an alarm.
    "attack_drill": "attack_drill",
}
# The events whose person is who came in or asked; every other names nobody.
NAMED_REASONS = frozenset({"accepted", "remote_unlock"})
LOCK_ACTIONS = {"LOCK": "lock", "UNLOCK": "unlock", "OPEN": "open"}
# A lock command is a flat JSON object of a few short fields; anything bigger is not a client's.
MAX_COMMAND_BYTES = 1024
# field -> (its type, the longest string); ts is a finite number
COMMAND_FIELDS: dict[str, tuple[type, int]] = {
    "action": (str, 16),
    "code": (str, 128),
    "nonce": (str, 128),
    "sender": (str, 64),
}
LOG_EVERY_S = 60.0  # one warning per kind of bad message in this long


def command_sender(sender: Any, username: str | None) -> str:
    """Who asked: "<sender> via <the bridge's MQTT user>", each part printable (control
    characters and newlines stripped) and at most SENDER_MAX characters, so the user is never
    cut off; just the user without a usable sender."""
    who = printable(username or "", SENDER_MAX) or "mqtt"
    said = printable(sender, SENDER_MAX) if isinstance(sender, str) else ""
    return f"{said} via {who}" if said else who


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def parse_lock_command(payload: bytes) -> tuple[dict[str, Any] | None, str]:
    """A lock/set payload -> (its fields, "") or (None, why it was refused).

    A bare ``LOCK``/``UNLOCK``/``OPEN``, or a flat JSON object of the COMMAND_FIELDS and a finite
    ``ts``: NaN and Infinity, nesting, oversize payloads and wrong types are refused here, before
    anything reaches the daemon.
    """
    if len(payload) > MAX_COMMAND_BYTES:
        return None, f"{len(payload)} bytes, more than {MAX_COMMAND_BYTES}"
    text = payload.decode("utf-8", "replace").strip()
    if not text.startswith("{"):
        return {"action": text}, ""
    try:
        body = json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        return None, f"not JSON: {first_line(exc)}"
    if not isinstance(body, dict):
        return None, "not a JSON object"
    out: dict[str, Any] = {}
    for key, value in body.items():
        if key == "ts":
            if as_finite(value) is None:
                return None, "ts: not a finite number"
            out[key] = value
        elif key in COMMAND_FIELDS:
            kind, longest = COMMAND_FIELDS[key]
            if not isinstance(value, kind) or len(str(value)) > longest:
                return None, f"{key}: not a string of at most {longest} characters"
            out[key] = value
    return out, ""


# Home Assistant renders this with the code typed in, and a fresh timestamp and nonce.  Its
# sandbox refuses ranges of more than 100,000 (MAX_RANGE: "Range too big"), and the code is
# whatever the user typed (a quote or a backslash in it): Jinja's own tojson escapes it, and a
# missing code (None) is sent as "".  tests/edge/test_bridge.py renders it as Home Assistant does.
LOCK_COMMAND_TEMPLATE = (
    '{"action": {{ value | string | tojson }}, '
    '"code": {{ (code if code is string else "") | tojson }}, '
    '"ts": {{ now().timestamp() }}, '
    '"nonce": "{{ range(1, 100000) | random }}-{{ now().timestamp() }}"}'
)


class DaemonUnavailable(FacegateError, ConnectionError):
    """The daemon did not answer a request (not connected, or too slow)."""


class Topics:
    def __init__(self, cfg: MqttConfig) -> None:
        base = f"{cfg.topic_prefix}/{cfg.door_id}"
        self.availability = f"{base}/availability"
        self.lock_state = f"{base}/lock/state"
        self.lock_set = f"{base}/lock/set"
        self.event = f"{base}/event"
        self.snapshot = f"{base}/snapshot"
        self.door_state = f"{base}/door/state"
        self.problem_state = f"{base}/problem/state"
        self.problem_attributes = f"{base}/problem/attributes"
        self.face_state = f"{base}/face_unlock/state"
        self.face_set = f"{base}/face_unlock/set"
        self.result = f"{base}/command/result"
        self.ha_status = f"{cfg.discovery_prefix}/status"


def discovery(
    cfg: MqttConfig, version: str = edge.__version__, *, door_contact: bool = True
) -> dict[str, dict[str, Any]]:
    """Discovery topic -> payload for every entity of this door (published retained).

    Without a door contact (``lock.door_contact_pin``) the door sensor's payload is empty:
    Home Assistant then removes it instead of showing a sensor that is always unknown.
    """
    t = Topics(cfg)
    node = f"facegate_{cfg.door_id}"
    device = {
        "identifiers": [node],
        "name": f"facegate {cfg.door_id}",
        "manufacturer": "facegate",
        "model": "face-verification door lock",
        "sw_version": version,
    }
    common = {"availability_topic": t.availability, "device": device}

    def topic(component: str, obj: str) -> str:
        return f"{cfg.discovery_prefix}/{component}/{node}/{obj}/config"

    lock: dict[str, Any] = {
        "name": "Lock",
        "unique_id": f"{node}_lock",
        "state_topic": t.lock_state,
        "command_topic": t.lock_set,
        "payload_lock": "LOCK",
        "payload_unlock": "UNLOCK",
        "payload_open": "OPEN",
        "state_locked": "LOCKED",
        "state_unlocked": "UNLOCKED",
        "state_open": "OPEN",
        "state_jammed": "JAMMED",
        "optimistic": False,
        **common,
    }
    if cfg.remote_unlock:
        lock["code_format"] = rf"^\S{{{MIN_CODE_LEN},64}}$"
        lock["command_template"] = LOCK_COMMAND_TEMPLATE
    out = {
        topic("lock", "lock"): lock,
        topic("event", "decision"): {
            "name": "Decision",
            "unique_id": f"{node}_decision",
            "state_topic": t.event,
            "event_types": list(EVENT_TYPES),
            **common,
        },
        topic("binary_sensor", "door"): {
            "name": "Door",
            "unique_id": f"{node}_door",
            "device_class": "door",
            "state_topic": t.door_state,
            "payload_on": "ON",
            "payload_off": "OFF",
            **common,
        },
        topic("binary_sensor", "problem"): {
            "name": "Problem",
            "unique_id": f"{node}_problem",
            "device_class": "problem",
            "state_topic": t.problem_state,
            "json_attributes_topic": t.problem_attributes,
            "payload_on": "ON",
            "payload_off": "OFF",
            **common,
        },
        topic("switch", "face_unlock"): {
            "name": "Face unlock",
            "unique_id": f"{node}_face_unlock",
            "state_topic": t.face_state,
            "command_topic": t.face_set,
            "payload_on": "ON",
            "payload_off": "OFF",
            "optimistic": False,
            **common,
        },
    }
    if not door_contact:
        out[topic("binary_sensor", "door")] = {}
    if cfg.snapshots:
        out[topic("image", "visitor")] = {
            "name": "Last visitor",
            "unique_id": f"{node}_visitor",
            "image_topic": t.snapshot,
            "content_type": "image/jpeg",
            **common,
        }
    return out


class Bridge:
    """One bridge: the broker on one side, the daemon's socket on the other."""

    def __init__(
        self,
        cfg: MqttConfig,
        *,
        client_factory: Callable[..., Any] | None = None,
        reconnect_s: float = 1.0,
        door_contact: bool = True,
    ) -> None:
        self.cfg = cfg
        self.topics = Topics(cfg)
        self.reconnect_s = reconnect_s
        self.dropped = 0  # MQTT messages dropped while the broker was away
        self._pending: collections.deque[tuple[str, bytes, bool]] = collections.deque()
        self._sock: socket.socket | None = None
        self._sock_lock = threading.Lock()
        self._state: dict[str, Any] | None = None
        self._away = False  # the daemon's outage has been reported
        self._next_id = 0
        self._id_lock = threading.Lock()
        self._waiting: dict[int, list[Any]] = {}  # request id -> [Event, result]
        self.listeners: list[Callable[[dict[str, Any]], None]] = []  # each daemon message
        self._stop = threading.Event()
        self.mqtt_failed = False  # paho's loop ended while the bridge ran: exit non-zero
        self._throttle = Throttle(LOG_EVERY_S)  # one warning per kind of bad message
        self._door_ids: collections.deque[int] = collections.deque(maxlen=1024)
        self.door_contact = door_contact
        self._client = self._make_client(client_factory) if cfg.broker else None

    def _make_client(self, factory: Callable[..., Any] | None) -> Any:
        import paho.mqtt.client as mqtt

        make = factory or mqtt.Client
        # MQTT 5: a subscription can keep the retain flag as published (below), so a retained
        # command is told apart from a live one whenever it arrives, not only at connect.
        client = make(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"facegate-{self.cfg.door_id}",
            protocol=mqtt.MQTTv5,
        )
        if self.cfg.username is not None and self.cfg.password_file is not None:
            password = read_secret(
                self.cfg.password_file,
                field="mqtt.password_file",
                refuse_mode=stat.S_IROTH,  # the bridge's group (facegate-bridge) may read it
                who="any user",
                chmod="o-r",
                error=ConfigError,
            )
            client.username_pw_set(self.cfg.username, password)
        if self.cfg.tls:
            try:
                client.tls_set(ca_certs=self.cfg.ca_file)
            except (OSError, ValueError) as exc:
                raise ConfigError(f"{self.cfg.ca_file}: mqtt.ca_file: {first_line(exc)}") from None
        client.will_set(self.topics.availability, "offline", qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_message = self._on_message
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        return client

    # ------------------------------------------------------------------ running

    def stop(self, *_: object) -> None:
        self._stop.set()
        with self._sock_lock:
            if self._sock is not None:
                with contextlib.suppress(OSError):
                    self._sock.shutdown(socket.SHUT_RDWR)

    @property
    def state(self) -> dict[str, Any] | None:
        """The daemon's last state, or None while it is away."""
        return self._state

    def request(self, action: str, *, timeout_s: float = 15.0, **fields: Any) -> dict[str, Any]:
        """Send a household request and wait for its result; DaemonUnavailable if none comes."""
        slot: list[Any] = [threading.Event(), None]
        ident = self._new_id()
        self._waiting[ident] = slot
        try:
            if not self._send({"type": "command", "id": ident, "action": action, **fields}):
                raise DaemonUnavailable("the door daemon is not connected")
            if not slot[0].wait(timeout_s):
                raise DaemonUnavailable(
                    f"the door daemon did not answer {action} in {timeout_s:g} s"
                )
            result: dict[str, Any] = slot[1]
            return result
        finally:
            self._waiting.pop(ident, None)

    def _new_id(self) -> int:
        with self._id_lock:
            self._next_id += 1
            return self._next_id

    def run(self) -> ExitCode:
        client = self._client  # None with mqtt.broker false: the daemon's socket alone
        loop = None
        if client is not None:
            client.connect_async(self.cfg.host, self.cfg.port, keepalive=30)
            loop = threading.Thread(target=self._mqtt_loop, name="mqtt", daemon=True)
            loop.start()
        try:
            while not self._stop.is_set():
                self._serve_daemon()
                if not self._stop.is_set():
                    self._stop.wait(self.reconnect_s)
        finally:
            if client is not None:
                info = client.publish(self.topics.availability, "offline", qos=1, retain=True)
                # Not connected: the broker's last will says offline instead.
                with contextlib.suppress(RuntimeError, ValueError):
                    info.wait_for_publish(timeout=2.0)
                client.disconnect()
            if loop is not None:
                loop.join(timeout=5.0)
        return ExitCode.FAILURE if self.mqtt_failed else ExitCode.OK

    def _mqtt_loop(self) -> None:
        """paho's network loop.  Should it ever end while the bridge runs, the bridge stops and
        exits non-zero, so systemd restarts it: a bridge deaf to MQTT never stays up."""
        assert self._client is not None
        try:
            self._client.loop_forever(retry_first_connection=True)
        except Exception as exc:
            log.error("the MQTT loop died: %s", first_line(exc))
            self.mqtt_failed = True
        if not self._stop.is_set():
            log.error("the MQTT loop ended while the bridge runs: stopping it to be restarted")
            self.mqtt_failed = True
            self.stop()

    def _serve_daemon(self) -> None:
        """Connect to the daemon and relay its messages until it goes away."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(self.cfg.socket)
        except OSError as exc:
            sock.close()
            self._daemon_away(f"daemon unreachable at {self.cfg.socket}: {exc.strerror}")
            return
        with self._sock_lock:
            self._sock = sock
        self._away = False
        log.info("connected to the daemon at %s", self.cfg.socket)
        reader = LineReader(sock)
        try:
            while not self._stop.is_set():
                msg = reader.read()
                if msg is None:
                    break
                self._from_daemon(msg)
        except (OSError, ProtocolError) as exc:
            log.warning("daemon socket: %s", first_line(exc))
        finally:
            with self._sock_lock:
                self._sock = None
            sock.close()
        if not self._stop.is_set():
            # a clean stop says offline (run's end), not a problem
            self._daemon_away("the daemon went away")

    def _daemon_away(self, why: str) -> None:
        """Once per outage: a warning, and availability offline (the bridge keeps retrying)."""
        if self._away:
            return
        self._away = True
        log.warning("%s", why)
        self._state = None
        self._publish(self.topics.availability, b"offline", retain=True)
        self._publish(self.topics.problem_state, b"ON", retain=True)
        self._publish(
            self.topics.problem_attributes, json.dumps({"why": why}).encode(), retain=True
        )

    # ------------------------------------------------------------------ daemon -> MQTT

    def _from_daemon(self, msg: dict[str, Any]) -> None:
        kind = msg["type"]
        if kind == "result":
            slot = self._waiting.get(msg.get("id"))  # type: ignore[arg-type]
            if slot is not None:  # a web request's answer: for it alone, never published
                slot[1] = msg
                slot[0].set()
                return
        for listener in list(self.listeners):
            try:
                listener(msg)
            except Exception:
                log.exception("a listener failed on a %s message", kind)
        if kind == "state":
            self._state = msg
            self._publish_state(msg)
        elif kind == "decision":
            self._publish_decision(msg)
        elif kind == "door_event":
            event = msg.get("event")
            if event in EVENT_TYPES:
                self._publish(self.topics.event, json.dumps({"event_type": event}).encode())
        elif kind == "result" and msg.get("id") in self._door_ids:
            # A household answer never reaches the broker, however late it comes: only the
            # results of door commands sent from MQTT are published.
            self._door_ids.remove(msg["id"])
            self._publish(self.topics.result, json.dumps(msg).encode())

    def _publish_state(self, s: dict[str, Any]) -> None:
        t = self.topics
        self._publish(t.availability, b"online", retain=True)
        self._publish(t.lock_state, str(s.get("lock", "LOCKED")).encode(), retain=True)
        if s.get("door_open") is not None:
            self._publish(t.door_state, b"ON" if s["door_open"] else b"OFF", retain=True)
        self._publish(t.problem_state, b"ON" if s.get("problem") else b"OFF", retain=True)
        attributes = {"why": s.get("problem_why", ""), "dropped_events": s.get("dropped_events", 0)}
        self._publish(t.problem_attributes, json.dumps(attributes).encode(), retain=True)
        self._publish(t.face_state, b"ON" if s.get("face_unlock") else b"OFF", retain=True)

    def _publish_decision(self, msg: dict[str, Any]) -> None:
        rec = msg.get("record")
        if not isinstance(rec, dict):
            return
        reason = rec.get("reason")
        live = rec.get("liveness") if isinstance(rec.get("liveness"), dict) else {}
        event = {
            "event_type": REASON_EVENTS.get(str(reason), "denied_unknown"),
            "reason": reason,
            # who came in (or who asked from afar); a refused face names nobody, its nearest
            # enrolled match has its own field
            "person": rec.get("person") if reason in NAMED_REASONS else None,
            "nearest": rec.get("best") if reason not in NAMED_REASONS else None,
            "score": rec.get("best_score") if rec.get("best") is not None else None,
            "live_probability": live.get("live_probability") if live else None,
            "event_id": rec.get("event_id"),
            "door": self.cfg.door_id,
            "time": rec.get("unix_time"),
            "drill": rec.get("drill") is True,
        }
        self._publish(self.topics.event, json.dumps(event).encode())
        jpeg = msg.get("snapshot_jpeg_b64")
        if self.cfg.snapshots and isinstance(jpeg, str):
            try:
                self._publish(self.topics.snapshot, base64.b64decode(jpeg, validate=True))
            except ValueError:
                log.warning("a snapshot that is not base64 was not published")

    def _publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        """Publish now, or keep it (bounded, oldest dropped first) until the broker is back."""
        if self._client is None:
            return
        if self._client.is_connected():
            self._client.publish(topic, payload, qos=1, retain=retain)
            return
        if len(self._pending) >= self.cfg.queue_max:
            self._pending.popleft()
            self.dropped += 1
        self._pending.append((topic, payload, retain))

    # ------------------------------------------------------------------ MQTT -> daemon

    def _on_connect(
        self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any
    ) -> None:
        self._guarded("the MQTT connection", lambda: self._connected(client, reason_code))

    def _connected(self, client: Any, reason_code: Any) -> None:
        if reason_code.is_failure:
            log.warning(
                "broker %s:%d refused the connection: %s", self.cfg.host, self.cfg.port, reason_code
            )
            return
        log.info("connected to the broker %s:%d", self.cfg.host, self.cfg.port)
        t = self.topics
        # A command left retained on the broker must never act later: clear it, and ignore retained ones.
        for topic in (t.lock_set, t.face_set):
            client.publish(topic, b"", qos=1, retain=True)
        from paho.mqtt.subscribeoptions import SubscribeOptions

        client.subscribe(
            [
                (t.ha_status, SubscribeOptions(qos=1)),
                (t.lock_set, SubscribeOptions(qos=1, retainAsPublished=True)),
                (t.face_set, SubscribeOptions(qos=1, retainAsPublished=True)),
            ]
        )
        self._publish_discovery()
        pending, self._pending = self._pending, collections.deque()
        for topic, payload, retain in pending:
            client.publish(topic, payload, qos=1, retain=retain)
        if self._state is not None:
            self._publish_state(self._state)
        else:
            client.publish(t.availability, b"offline", qos=1, retain=True)

    def _publish_discovery(self) -> None:
        assert self._client is not None
        for topic, payload in discovery(self.cfg, door_contact=self.door_contact).items():
            # an empty retained config removes an entity discovered before (the door sensor)
            body = json.dumps(payload) if payload else b""
            self._client.publish(topic, body, qos=1, retain=True)

    def _guarded(self, what: str, fn: Callable[[], None]) -> None:
        """Run a paho callback's body: an exception is one warning (rate-limited), never the end
        of paho's network thread."""
        try:
            fn()
        except Exception as exc:
            self._warn(what, "%s failed and was skipped: %s", what, first_line(exc))

    def _warn(self, kind: str, message: str, *args: Any) -> None:
        """A warning, at most one per kind every LOG_EVERY_S: a flood of bad messages is one line."""
        held = self._throttle.allow(kind)
        if held is None:
            return
        if held:
            message, args = message + " (%d more since the last line)", (*args, held)
        log.warning(message, *args)

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        self._guarded("an MQTT message", lambda: self._message(msg))

    def _message(self, msg: Any) -> None:
        t = self.topics
        if msg.topic == t.ha_status:
            if msg.payload == b"online":
                log.info("Home Assistant is online: discovery again")
                self._publish_discovery()
                if self._state is not None:
                    self._publish_state(self._state)
            return
        if not msg.payload:
            return  # our own clearing of a retained command
        if msg.retain:
            # ignored, and cleared: a retained UNLOCK would keep its code on the broker
            self._warn("retained", "%s: a retained command is ignored and cleared", msg.topic)
            if self._client is not None:
                self._client.publish(msg.topic, b"", qos=1, retain=True)
            return
        if msg.topic == t.face_set:
            value = msg.payload.strip().upper()
            if value in (b"ON", b"OFF"):
                self._to_daemon({"action": "face_unlock", "value": value == b"ON"})
            return
        if msg.topic == t.lock_set:
            self._lock_command(msg.payload)

    def _lock_command(self, payload: bytes) -> None:
        body, why = parse_lock_command(payload)
        if body is None:
            self._warn("lock", "a lock command was refused: %s", why)
            return
        action = LOCK_ACTIONS.get(str(body.get("action", "")).upper())
        if action is None:
            self._warn("lock", "lock command %r: unknown action, ignored", body.get("action"))
            return
        cmd: dict[str, Any] = {"action": action}
        for key in ("code", "ts", "nonce"):
            if key in body:
                cmd[key] = body[key]
        cmd["sender"] = command_sender(body.get("sender"), self.cfg.username)
        self._to_daemon(cmd)

    def _to_daemon(self, cmd: dict[str, Any]) -> None:
        ident = self._new_id()
        # only the results of commands that came from MQTT go back to MQTT
        self._door_ids.append(ident)
        self._send({"type": "command", "id": ident, **cmd})

    def _send(self, msg: dict[str, Any]) -> bool:
        data = encode(msg)
        with self._sock_lock:
            sock = self._sock
            if sock is None:
                log.warning("command %s dropped: the daemon is not connected", msg["action"])
                return False
            try:
                sock.sendall(data)
            except OSError as exc:
                log.warning("command %s not sent: %s", msg["action"], first_line(exc))
                return False
        return True


def run_bridge(config: Config, *, install_signals: bool = True) -> int:
    """The bridge service: MQTT (unless ``mqtt.broker`` is false) and the web app (``web.enabled``)."""
    import signal

    cfg = config.mqtt
    bridge = Bridge(cfg, door_contact=config.lock.door_contact_pin is not None)
    web = None
    if config.web.enabled:
        from edge.web.server import WebServer

        web = WebServer(config, bridge)  # its state, password and certificate: before serving
    if install_signals:
        signal.signal(signal.SIGTERM, bridge.stop)
        signal.signal(signal.SIGINT, bridge.stop)
    started = time.monotonic()
    if web is not None:
        web.start()
    try:
        code = bridge.run()
    finally:
        if web is not None:
            web.stop()
    log.info(
        "bridge stopped after %.0f s (%d messages dropped while the broker was away)",
        time.monotonic() - started,
        bridge.dropped,
    )
    return int(code)
