"""The facegate configuration: YAML in, frozen dataclasses out.

In: a YAML file (or nothing: the defaults).  Out: a :class:`Config`, or one
ConfigError listing *every* problem, each as ``file: section.key: message``.
Unknown keys are refused with a "did you mean" suggestion.  ``edge/default.yaml``
is the commented default and the documentation of every key.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from edge.camera import CAMERAS
from edge.errors import ConfigError
from edge.files import read_regular
from edge.runtime import RUNTIMES
from edge.text import first_line

DEFAULT_CONFIG = Path(__file__).with_name("default.yaml")
MAX_CONFIG_BYTES = 1 << 20  # 1 MiB: the commented default is 12 kB


def _opt(
    default: Any,
    *,
    lo: float | None = None,
    hi: float | None = None,
    choices: tuple[Any, ...] | Callable[[], tuple[Any, ...]] | None = None,
) -> Any:
    """A config field; ``choices`` may be a function, asked when a config is checked (the manifest)."""
    return field(default=default, metadata={"lo": lo, "hi": hi, "choices": choices})


def _manifest_names(role: str) -> Callable[[], tuple[str, ...]]:
    def names() -> tuple[str, ...]:
        from edge.manifest import names_for_role

        return names_for_role(role)

    return names


@dataclass(frozen=True)
class RuntimeConfig:
    backend: str = _opt("auto", choices=("auto", *RUNTIMES))
    threads: int = _opt(2, lo=1, hi=64)


@dataclass(frozen=True)
class ModelsConfig:
    dir: str | None = _opt(None)
    detector: str = _opt("blazeface-short", choices=_manifest_names("detector"))
    landmarker: str | None = _opt("yunet", choices=_manifest_names("landmarker"))
    embedder: str = _opt("sface.dynamic-int8.tflite")


@dataclass(frozen=True)
class DetectConfig:
    min_score: float = _opt(0.6, lo=0.0, hi=1.0)
    iou_threshold: float = _opt(0.3, lo=0.0, hi=1.0)
    min_face_px: int = _opt(40, lo=0, hi=10000)


@dataclass(frozen=True)
class MatchConfig:
    min_cosine_similarity: float = _opt(0.53, lo=-1.0, hi=1.0)
    min_margin: float = _opt(0.1, lo=0.0, hi=2.0)
    threshold_floor: float = _opt(0.42, lo=-1.0, hi=1.0)


@dataclass(frozen=True)
class LivenessConfig:
    enabled: bool = _opt(True)
    min_frames: int = _opt(5, lo=1, hi=100)
    texture: bool = _opt(True)
    model: str | None = _opt(None)
    min_live_probability: float = _opt(0.018, lo=0.0, hi=1.0)
    minifasnet: bool = _opt(True)
    minifasnet_models: str | None = _opt(None)
    minifasnet_min_live_probability: float = _opt(0.46, lo=0.0, hi=1.0)
    planar_motion: bool = _opt(True)


@dataclass(frozen=True)
class CameraConfig:
    backend: str = _opt("picamera2", choices=tuple(CAMERAS))
    device: str = _opt("0")
    width: int = _opt(1280, lo=64, hi=8192)
    height: int = _opt(960, lo=64, hi=8192)
    detect_width: int = _opt(640, lo=64, hi=8192)
    detect_height: int = _opt(480, lo=64, hi=8192)
    fps: float = _opt(10.0, lo=0.1, hi=120.0)
    reopen_initial_s: float = _opt(0.5, lo=0.01, hi=60.0)
    reopen_max_s: float = _opt(30.0, lo=0.1, hi=3600.0)


@dataclass(frozen=True)
class ExposureConfig:
    face_metering: bool = _opt(True)
    target_face_luma: float = _opt(0.47, lo=0.05, hi=0.95)
    tolerance_stops: float = _opt(0.25, lo=0.05, hi=4.0)
    max_stops: float = _opt(2.0, lo=0.0, hi=8.0)
    settle_frames: int = _opt(3, lo=0, hi=100)
    release_s: float = _opt(2.0, lo=0.0, hi=600.0)


@dataclass(frozen=True)
class GalleryConfig:
    path: str = _opt("/var/lib/facegate/gallery.json")
    max_templates_per_person: int = _opt(20, lo=1, hi=1000)


@dataclass(frozen=True)
class PolicyConfig:
    frames: int = _opt(5, lo=1, hi=100)
    min_matching_frames: int = _opt(3, lo=1, hi=100)
    min_face_px: int = _opt(80, lo=0, hi=10000)
    min_sharpness: float = _opt(20.0, lo=0.0, hi=1e6)
    min_brightness: float = _opt(40.0, lo=0.0, hi=255.0)
    max_yaw_deg: float = _opt(30.0, lo=0.0, hi=90.0)
    max_pitch_deg: float = _opt(30.0, lo=0.0, hi=90.0)
    max_roll_deg: float = _opt(30.0, lo=0.0, hi=180.0)
    track_timeout_s: float = _opt(2.0, lo=0.1, hi=60.0)
    retry_after_s: float = _opt(3.0, lo=0.0, hi=600.0)
    lockout_attempts: int = _opt(5, lo=1, hi=1000)
    lockout_window_s: float = _opt(60.0, lo=1.0, hi=86400.0)
    lockout_s: float = _opt(30.0, lo=0.0, hi=86400.0)
    lockout_max_s: float = _opt(900.0, lo=0.0, hi=86400.0)


@dataclass(frozen=True)
class LockConfig:
    relay_pin: int = _opt(17, lo=0, hi=53)
    active_high: bool = _opt(True)
    unlock_s: float = _opt(3.0, lo=0.1, hi=60.0)
    door_contact_pin: int | None = _opt(None, lo=0, hi=53)
    door_contact_pull_up: bool = _opt(True)
    held_open_s: float = _opt(30.0, lo=1.0, hi=3600.0)
    exit_button_pin: int | None = _opt(None, lo=0, hi=53)
    led_pin: int | None = _opt(None, lo=0, hi=53)
    buzzer_pin: int | None = _opt(None, lo=0, hi=53)


@dataclass(frozen=True)
class LogConfig:
    decisions: str = _opt("/var/log/facegate/decisions.jsonl")
    max_mb: float = _opt(10.0, lo=0.01, hi=100000.0)
    backups: int = _opt(10, lo=0, hi=10000)
    snapshots_dir: str | None = _opt(None)
    snapshot_days: float = _opt(30.0, lo=0.0, hi=3650.0)
    snapshot_max_mb: float = _opt(500.0, lo=0.0, hi=1e6)


@dataclass(frozen=True)
class ServiceConfig:
    watchdog_stall_s: float = _opt(10.0, lo=0.5, hi=3600.0)


@dataclass(frozen=True)
class AccessConfig:
    rules: str | None = _opt(None)


@dataclass(frozen=True)
class MqttConfig:
    enabled: bool = _opt(False)
    door_id: str = _opt("door")
    socket: str = _opt("/run/facegate/bridge.sock")
    bridge_user: str = _opt("facegate-bridge")
    queue_max: int = _opt(1000, lo=1, hi=1_000_000)
    host: str = _opt("localhost")
    port: int = _opt(1883, lo=1, hi=65535)
    username: str | None = _opt(None)
    password_file: str | None = _opt(None)
    tls: bool = _opt(False)
    ca_file: str | None = _opt(None)
    discovery_prefix: str = _opt("homeassistant")
    topic_prefix: str = _opt("facegate")
    snapshots: bool = _opt(False)
    remote_unlock: bool = _opt(False)
    code_file: str | None = _opt(None)
    command_max_age_s: float = _opt(30.0, lo=1.0, hi=3600.0)
    broker: bool = _opt(True)


@dataclass(frozen=True)
class WebConfig:
    enabled: bool = _opt(False)
    listen: str = _opt("0.0.0.0")
    port: int = _opt(8443, lo=1, hi=65535)
    state_dir: str = _opt("/var/lib/facegate-bridge")
    cert_file: str | None = _opt(None)
    key_file: str | None = _opt(None)
    session_minutes: float = _opt(720.0, lo=1.0, hi=43200.0)
    idle_minutes: float = _opt(30.0, lo=1.0, hi=43200.0)
    login_max_failures: int = _opt(5, lo=1, hi=100)
    login_lockout_s: float = _opt(900.0, lo=1.0, hi=86400.0)
    upload_max_mb: float = _opt(8.0, lo=0.1, hi=64.0)


@dataclass(frozen=True)
class Config:
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    models: ModelsConfig = field(default_factory=ModelsConfig)
    detect: DetectConfig = field(default_factory=DetectConfig)
    match: MatchConfig = field(default_factory=MatchConfig)
    liveness: LivenessConfig = field(default_factory=LivenessConfig)
    camera: CameraConfig = field(default_factory=CameraConfig)
    exposure: ExposureConfig = field(default_factory=ExposureConfig)
    gallery: GalleryConfig = field(default_factory=GalleryConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    lock: LockConfig = field(default_factory=LockConfig)
    log: LogConfig = field(default_factory=LogConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    access: AccessConfig = field(default_factory=AccessConfig)
    web: WebConfig = field(default_factory=WebConfig)
    service: ServiceConfig = field(default_factory=ServiceConfig)
    source: str = field(default="<defaults>", compare=False, metadata={"internal": True})

    def model_dir(self) -> Path:
        from edge.manifest import default_cache_dir

        return Path(self.models.dir).expanduser() if self.models.dir else default_cache_dir()

    def _model_path(self, name: str) -> Path:
        """A path as given, or a bare file name in models.dir."""
        p = Path(name).expanduser()
        return p if p.is_absolute() or p.parent != Path(".") else self.model_dir() / p

    def embedder_path(self) -> Path:
        return self._model_path(self.models.embedder)

    def liveness_model_path(self) -> Path:
        """liveness.model (the texture cue's), or the model shipped with facegate when it is null."""
        if self.liveness.model is None:
            from edge.liveness import shipped_model

            return shipped_model()
        return self._model_path(self.liveness.model)

    def minifasnet_paths(self) -> tuple[Path, ...]:
        """The MiniFASNet cue's two networks: in liveness.minifasnet_models, or the shipped ones."""
        from edge.liveness import MINIFASNET_MODELS, shipped_model

        folder = self.liveness.minifasnet_models
        if folder is None:
            return tuple(shipped_model(n) for n in MINIFASNET_MODELS)
        return tuple(self._model_path(folder) / n for n in MINIFASNET_MODELS)


_INVALID = object()  # a value that failed its check (its error is already recorded)


def _describe(value: Any) -> str:
    return "null" if value is None else repr(value)


def _type_error(value: Any, tp: Any) -> str | None:
    """Why ``value`` is not of the field's type ``tp`` (bool, int, float or str), or None."""
    if tp is bool and not isinstance(value, bool):
        return "must be true or false"
    if tp is int and (isinstance(value, bool) or not isinstance(value, int)):
        return "must be a whole number"
    if tp is float and (isinstance(value, bool) or not isinstance(value, (int, float))):
        return "must be a number"
    if tp is str and not isinstance(value, str):
        return "must be a string"
    return None


def _check_scalar(value: Any, tp: Any, meta: dict[str, Any], key: str, errors: list[str]) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        if value is None:
            return None
        tp = next(a for a in args if a is not type(None))
    problem = _type_error(value, tp)
    if problem is not None:
        errors.append(f"{key}: {problem}, got {_describe(value)}")
        return _INVALID
    if tp is float:
        value = float(value)
    if tp is str and ("\0" in value or len(value) > 4096):
        errors.append(f"{key}: must be at most 4096 characters with no NUL byte")
        return _INVALID
    lo, hi, choices = meta.get("lo"), meta.get("hi"), meta.get("choices")
    if callable(choices):
        choices = choices()
    if choices is not None and value not in choices:
        errors.append(
            f"{key}: must be one of {', '.join(map(str, choices))}, got {_describe(value)}"
        )
        return _INVALID
    if lo is not None and hi is not None and not lo <= value <= hi:
        errors.append(f"{key}: must be between {lo:g} and {hi:g}, got {value!r}")
        return _INVALID
    return value


def unknown_keys(data: Mapping[Any, Any], known: list[str], prefix: str) -> list[str]:
    """An error for each key of ``data`` not in ``known``, with a "did you mean" when one is close."""
    errors = []
    for key in data:
        if key not in known:
            guess = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
            hint = (
                f"; did you mean {prefix}{guess[0]}?"
                if guess
                else f"; known keys: {', '.join(known)}"
            )
            errors.append(f"{prefix}{key}: unknown key{hint}")
    return errors


def _build(cls: type, data: Any, prefix: str, errors: list[str]) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        errors.append(
            f"{prefix.rstrip('.') or '<top level>'}: must be a mapping of keys, got {_describe(data)}"
        )
        return cls()
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
    errors += unknown_keys(data, list(fields), prefix)
    values = {}
    for name, f in fields.items():
        if name not in data:
            continue
        tp = hints[name]
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):
            values[name] = _build(tp, data[name], f"{prefix}{name}.", errors)
        else:
            checked = _check_scalar(data[name], tp, dict(f.metadata), f"{prefix}{name}", errors)
            if checked is not _INVALID:
                values[name] = checked
    return cls(**values)


def _cross_checks(config: Config) -> list[str]:
    """Rules between keys (of one section or several)."""
    errors = []
    live, policy = config.liveness, config.policy
    lg = config.log
    if lg.snapshots_dir is not None and (lg.snapshot_days == 0 or lg.snapshot_max_mb == 0):
        key = "log.snapshot_days" if lg.snapshot_days == 0 else "log.snapshot_max_mb"
        errors.append(
            f"{key}: 0 keeps no snapshot, yet log.snapshots_dir is set (each would be written, then "
            "deleted, leaving its path in the log): set log.snapshots_dir: null to turn snapshots off"
        )
    if policy.min_matching_frames > policy.frames:
        errors.append(
            f"policy.min_matching_frames: must be at most policy.frames ({policy.frames}), "
            f"got {policy.min_matching_frames}: nobody could ever be accepted"
        )
    errors += _mqtt_checks(config.mqtt)
    errors += _web_checks(config.web, config.mqtt)
    if live.enabled and not (live.texture or live.minifasnet):
        errors.append(
            "liveness.minifasnet: liveness is on but no score cue is (texture and minifasnet are "
            "both false): nobody could ever be accepted; turn one on, or set liveness.enabled: false"
        )
    if live.enabled and live.min_frames > policy.frames:
        errors.append(
            f"liveness.min_frames: must be at most policy.frames ({policy.frames}), got {live.min_frames}: "
            "nobody could ever be accepted"
        )
    return errors


_TOPIC_WORD = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _mqtt_checks(m: MqttConfig) -> list[str]:
    errors = []
    for key in ("door_id", "discovery_prefix", "topic_prefix"):
        if not _TOPIC_WORD.fullmatch(getattr(m, key)):
            errors.append(
                f"mqtt.{key}: must be 1-64 letters, digits, '_' or '-' (it is part of MQTT topics and "
                f"entity ids), got {getattr(m, key)!r}"
            )
    if m.remote_unlock and m.code_file is None:
        errors.append(
            "mqtt.code_file: remote_unlock needs a code (a file holding it, readable only by the daemon)"
        )
    if m.remote_unlock and not m.tls:
        errors.append(
            "mqtt.remote_unlock: needs mqtt.tls: true: the code crosses the broker as typed, and "
            "a code in clear on the LAN is public"
        )
    if m.ca_file is not None and not m.tls:
        errors.append("mqtt.ca_file: set, but mqtt.tls is false: the CA would not be used")
    if (m.username is None) != (m.password_file is None):
        errors.append(
            "mqtt.password_file: give both mqtt.username and mqtt.password_file, or neither"
        )
    return errors


def _web_checks(w: WebConfig, m: MqttConfig) -> list[str]:
    errors = []
    if (w.cert_file is None) != (w.key_file is None):
        errors.append(
            "web.key_file: give both web.cert_file and web.key_file, or neither (a self-signed "
            "certificate is made in web.state_dir)"
        )
    if w.enabled and not m.enabled:
        errors.append(
            "web.enabled: needs mqtt.enabled (the daemon's socket, which the web app uses); set "
            "mqtt.broker: false for the web app without a broker"
        )
    return errors


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing what a config never needs and an attacker can abuse.

    A key given twice would silently override the first (``match:`` twice, the
    second with a threshold of -1); an alias can multiply a small file into
    gigabytes (a "billion laughs").  Both are refused with their line.
    """

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.MarkedYAMLError(
                problem="aliases (*name) are not allowed in a facegate config",
                problem_mark=event.start_mark,
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, (str, int, float, bool)) or key is None:
                if key in seen:
                    raise yaml.MarkedYAMLError(
                        problem=f"key {key!r} given twice (first on line {seen[key].line + 1}); the second would "
                        "silently replace the first",
                        problem_mark=key_node.start_mark,
                    )
                seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _StrictLoader.construct_mapping
)


def load_yaml(text: str, source: str) -> Any:
    """YAML text -> Python data with the strict loader; one ConfigError line naming the place."""
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or first_line(exc)
        raise ConfigError(f"{source}: not valid YAML{where}: {problem}") from None
    except RecursionError:
        raise ConfigError(f"{source}: not valid YAML: nested too deeply") from None


def parse_config(text: str, source: str = "<string>") -> Config:
    """Validate YAML text; raise one ConfigError naming every bad key."""
    data = load_yaml(text, source)
    errors: list[str] = []
    config = _build(Config, data, "", errors)
    errors += _cross_checks(config)
    if errors:
        raise ConfigError("\n".join(f"{source}: {e}" for e in errors))
    return dataclasses.replace(config, source=source)


def load_config(path: str | Path | None = None) -> Config:
    """Read the config at ``path``; None means the shipped defaults."""
    if path is None:
        return parse_config(DEFAULT_CONFIG.read_text(), str(DEFAULT_CONFIG))
    from edge.files import refuse_world_writable

    refuse_world_writable(path, "config", ConfigError)  # whoever can write it chooses the threshold
    return parse_config(read_config_text(path), str(path))


def read_config_text(path: str | Path) -> str:
    """The config file's text, UTF-8; one ConfigError line when it cannot be read as such."""
    try:
        data, _ = read_regular(path, what="a config", error=ConfigError, max_bytes=MAX_CONFIG_BYTES)
    except FileNotFoundError:
        raise ConfigError(f"{path}: cannot read config: no such file") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None


def load_lock_config(path: str | Path | None = None) -> LockConfig:
    """Only ``lock.relay_pin`` and ``lock.active_high``, for ``facegate relay-off``.

    The backstop that relocks the door after any stop must not fail because of
    a typo elsewhere in the file: it reads these two keys and nothing else, and
    refuses only when they themselves are missing a valid value.
    """
    source = str(path) if path is not None else str(DEFAULT_CONFIG)
    file = path if path is not None else DEFAULT_CONFIG
    try:
        data = load_yaml(read_config_text(file), source)
    except ConfigError as exc:  # not YAML (or not UTF-8): an owner's typo must not stop the relock
        wanted = _scan_lock_keys(file, exc)
    else:
        lock = data.get("lock") if isinstance(data, dict) else None
        wanted = {
            k: lock[k] for k in ("relay_pin", "active_high") if isinstance(lock, dict) and k in lock
        }
    errors: list[str] = []
    config = _build(LockConfig, wanted, "lock.", errors)
    if errors:
        raise ConfigError("\n".join(f"{source}: {e}" for e in errors))
    return config


_TRUE = {"true", "yes", "on"}
_FALSE = {"false", "no", "off"}


def _scan_lock_keys(path: str | Path, error: ConfigError) -> dict[str, Any]:
    """``relay_pin`` and ``active_high`` found by a line scan of a config YAML cannot read.

    Strict: each key may appear any number of times with one value (a missing key
    is its default); two different values, or a file that cannot be read at all,
    raise ``error``: which pin to relock cannot be known.  One warning line says
    what was read and why.
    """
    import logging

    try:
        data, _ = read_regular(path, what="a config", error=ConfigError, max_bytes=MAX_CONFIG_BYTES)
    except (OSError, ConfigError):
        raise error from None
    text = data.decode("utf-8", errors="replace")
    wanted: dict[str, Any] = {}
    for key in ("relay_pin", "active_high"):
        found = re.findall(
            rf"""(?<![\w-])["']?{key}["']?[ \t]*:[ \t]*["']?([^\s,{{}}\[\]#"']+)""", text
        )
        values = sorted(set(found))
        if len(values) > 1:
            raise ConfigError(
                f"{first_line(error)}; relay-off cannot tell which lock.{key} is meant "
                f"({', '.join(values)})"
            ) from None
        if values:
            v = values[0]
            low = v.lower()
            wanted[key] = (
                (int(v) if re.fullmatch(r"[+-]?[0-9]+", v) else v)
                if key == "relay_pin"
                else True
                if low in _TRUE
                else False
                if low in _FALSE
                else v
            )
    read = ", ".join(
        f"lock.{k} {wanted[k]!r}" if k in wanted else f"lock.{k} (default)"
        for k in ("relay_pin", "active_high")
    )
    logging.getLogger(__name__).warning(
        "%s; relay-off read %s by a line scan", first_line(error), read
    )
    return wanted
