"""The household's requests to the daemon (from the web app, through the bridge socket).

In: a command dict from the bridge (``people``, ``enroll``, ``capture``, ``rename``,
``remove``, ``reenroll``, ``decisions``, ``snapshot``, ``face``, ``rules_get``, ``rules_set``,
``threshold_set``, ``liveness_set``, ``drill``, ``settings``).  Out: ``(ok, why, data)`` for
its result line.

Everything runs on the daemon's own thread, between frames, and the daemon stays the only
writer of its state: the gallery (through the same locked load-add-save as ``facegate
enroll``), the access rules file, ``settings.json`` (the applied threshold and liveness
operating points, each writer keeping the other's), ``drill.json`` (when an attack drill
ends: restored at start by the daemon, :func:`load_drill`), ``faces/``
(one small aligned face per person, for the review page) and ``photos/`` (the accepted
enrollment photos, :mod:`edge.kept_photos`, so a model change needs no new sitting).  What goes back is names,
counts, decision records and JPEGs -- never an embedding.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeGuard

import cv2
import numpy as np

from edge import kept_photos
from edge.access import parse_rules
from edge.bridge.contract import (
    HOUSEHOLD,
    MAX_DRILL_MINUTES,
    MAX_PHOTOS,
    MAX_RECORDS,
    MAX_RULES_BYTES,
    AddTemplateRequest,
    ContractError,
    DecisionsRequest,
    DrillRequest,
    EnrollRequest,
    FaceRequest,
    LivenessSetRequest,
    NameRequest,
    RenameRequest,
    RulesSetRequest,
    SnapshotRequest,
    ThresholdSetRequest,
    Wire,
    parse_request,
    threshold_ok,
    threshold_why,
)
from edge.config import Config
from edge.decisions import iso_utc_ms, log_files, read_records
from edge.enroll import add_to_gallery, judge
from edge.errors import FacegateError
from edge.files import atomic_write_bytes, read_regular, read_state, save_state
from edge.gallery import Gallery, file_stem, gallery_writer, validate_name
from edge.images import decode
from edge.jsonfields import as_finite
from edge.liveness import SCORE_CUES, operating_points
from edge.text import first_line
from edge.types import Frame

log = logging.getLogger(__name__)

__all__ = ["MAX_DRILL_MINUTES", "MAX_PHOTOS", "MAX_RECORDS", "MAX_RULES_BYTES", "Household"]

Result = tuple[bool, str, dict[str, Any]]


def settings_path(config: Config) -> Path:
    return Path(config.gallery.path).with_name("settings.json")


def drill_path(config: Config) -> Path:
    """When the attack drill ends, beside the gallery with the door's other state."""
    return Path(config.gallery.path).with_name("drill.json")


def faces_dir(config: Config) -> Path:
    return Path(config.gallery.path).with_name("faces")


def face_file(config: Config, name: str) -> Path:
    """A person's face thumbnail."""
    return faces_dir(config) / (file_stem(name) + ".jpg")


def load_threshold(config: Config) -> float | None:
    """The threshold applied from the web app (``settings.json``), or None: the config's."""
    path = settings_path(config)
    value, why = read_state(path, "min_cosine_similarity")
    if why is not None:
        log.warning("%s: %s: the config's threshold is used", path, why)
        return None
    if value is None and not path.exists():
        return None
    if not threshold_ok(value, config.match.threshold_floor):
        log.warning(
            "%s: min_cosine_similarity is not a number from match.threshold_floor (%g) to 1: "
            "ignored, the config's threshold is used",
            path,
            config.match.threshold_floor,
        )
        return None
    return float(value)


def load_liveness_points(config: Config) -> dict[str, float]:
    """The liveness operating points applied from the web app (``settings.json``), by score cue
    (edge.liveness.SCORE_CUES); empty: the config's.  A bad entry is ignored with a warning."""
    path = settings_path(config)
    value, why = read_state(path, "liveness_points")
    if why is not None:
        log.warning("%s: %s: the config's liveness operating points are used", path, why)
        return {}
    if value is None:
        return {}
    if not isinstance(value, dict):
        log.warning("%s: liveness_points is not an object: ignored", path)
        return {}
    points = {}
    for key, p in value.items():
        if key in SCORE_CUES and _point_ok(p):
            points[key] = float(p)
        else:
            log.warning(
                "%s: liveness_points: %s: not a score cue with a number in (0, 1): ignored",
                path,
                ascii(key)[:40],
            )
    return points


def load_drill(config: Config, now: float) -> float | None:
    """When the attack drill saved in ``drill.json`` ends (Unix seconds), or None: no drill.

    An unreadable file, or an end further off than a drill can last, is no drill (a warning).
    """
    path = drill_path(config)
    value, why = read_state(path, "until")
    if why is not None:
        log.warning("%s: %s: no attack drill", path, why)
        return None
    if value is None:
        return None
    until = as_finite(value)
    if until is None or until > now + (MAX_DRILL_MINUTES + 1) * 60.0:
        log.warning("%s: until is not the end of a drill (Unix seconds): no attack drill", path)
        return None
    return until


def _point_ok(value: Any) -> TypeGuard[float]:
    """A liveness operating point: a live probability strictly between 0 and 1."""
    p = as_finite(value)
    return p is not None and 0.0 < p < 1.0


def _jpeg(rgb: np.ndarray, quality: int = 85) -> bytes:
    ok, buf = cv2.imencode(
        ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _jpeg_file(path: Path, what: str) -> Result:
    """An image file for the app, never through a symbolic link."""
    data, _ = read_regular(
        path, what=what, error=FacegateError, max_bytes=2 << 20, follow_symlinks=False
    )
    return True, "", {"jpeg_b64": _b64(data)}


class Household:
    """The web app's requests, carried out by the daemon (see the module docstring)."""

    def __init__(
        self,
        config: Config,
        *,
        pipeline: Any,
        policy: Any,
        last_frame: Callable[[], Frame | None],
    ) -> None:
        self.config = config
        self.pipeline = pipeline
        self.policy = policy
        self.last_frame = last_frame
        self.gallery_path = Path(config.gallery.path)
        applied = load_threshold(config)
        if applied is not None:
            log.warning(
                "threshold %.3f applied from the web app (%s) instead of the config's %.3f",
                applied,
                settings_path(config),
                config.match.min_cosine_similarity,
            )
            self._set_threshold(applied)
        points = load_liveness_points(config)
        if points and self.policy.liveness is None:
            log.warning(
                "liveness operating points in %s ignored: liveness is off in the config",
                settings_path(config),
            )
        elif points:
            log.warning(
                "liveness operating points %s applied from the web app (%s) instead of the config's %s",
                _points_text(points),
                settings_path(config),
                _points_text(operating_points(self.policy.liveness)),
            )
            self._set_points(points)

    def handle(self, cmd: dict[str, Any]) -> Result:
        """One command line: its request parsed through the contract (a bad one refused with
        the contract's one-line why, never reaching a handler), carried out, and its answer
        checked against the contract on the way out."""
        action = cmd.get("action")
        if not isinstance(action, str) or action not in HOUSEHOLD:
            return False, f"{ascii(action)[:40]}: not a household request", {}
        try:
            request = parse_request(cmd)
        except ContractError as exc:
            log.warning("bridge: %s refused: %s", action, exc)
            return False, exc.line, {}
        try:
            ok, why, data = getattr(self, "_" + action)(request)
        except FacegateError as exc:
            return False, first_line(exc), {}
        except OSError as exc:
            log.warning("bridge: %s failed: %s", action, exc)
            return False, f"{action} failed: {exc.strerror or exc}", {}
        if not data and not ok:
            return ok, why, {}
        try:
            answer = HOUSEHOLD[action][1].from_wire(data, action)
        except ContractError as exc:
            log.error("bridge: %s: an answer outside the contract, not sent: %s", action, exc)
            return False, f"{action}: the daemon's answer is outside the contract ({exc.line})", {}
        return ok, why, answer.to_wire()

    # ------------------------------------------------------------------ people

    def _load(self) -> Gallery | None:
        return Gallery.load(self.gallery_path) if self.gallery_path.exists() else None

    def _people(self, req: Wire) -> Result:
        g = self._load()
        embedder = self.pipeline.embedder
        current = g is None or g.made_by(embedder.sha256, embedder.preprocessing)
        people = (
            []
            if g is None
            else [
                {
                    "name": n,
                    "templates": g.count(n),
                    "face": face_file(self.config, n).exists(),
                    "photos": len(kept_photos.kept(self.config, n)),
                }
                for n in g.names()
            ]
        )
        why = "" if current else "the gallery was made with another model: re-enroll everyone"
        return True, why, {"people": people, "model_current": current}

    def _enroll(self, req: EnrollRequest) -> Result:
        name = validate_name(req.name)
        raws: list[bytes | None] = []
        for b64 in req.photos:  # 1 to MAX_PHOTOS strings (the contract)
            try:
                raws.append(base64.b64decode(b64, validate=True))
            except (ValueError, binascii.Error):
                raws.append(None)
        return self._enroll_from(name, raws, replace=req.replace, keep_photos=True)

    def _reenroll(self, req: NameRequest) -> Result:
        """A person's templates made again from the photos kept when they were enrolled here."""
        name = validate_name(req.name)
        paths = kept_photos.kept(self.config, name)
        if not paths:
            return (
                False,
                f"{name}: no kept photos (enrolled at the command line): enroll with new photos",
                {},
            )
        raws: list[bytes | None] = [p.read_bytes() for p in paths[-kept_photos.MAX_KEPT :]]
        return self._enroll_from(name, raws, replace=True, keep_photos=False)

    def _add_template(self, req: AddTemplateRequest) -> Result:
        """One photo (a refused attempt's snapshot) added to an enrolled person's templates, only
        if it passes the enrollment checks and resembles their templates: its best cosine to them
        at least match.threshold_floor (below it strangers get in), decided here, not by the app."""
        name = validate_name(req.name)
        g = self._load()
        if g is None or name not in g.names():
            return False, f"{name}: not enrolled", {}
        try:
            raw = base64.b64decode(req.photo, validate=True)
            frame = decode(raw, "snapshot")
        except (ValueError, binascii.Error):
            return False, "snapshot: not a base64 image", {}
        result, why = judge(self.pipeline, frame, self.config.policy)
        if result is None:
            return False, why, {"attempts": [{"photo": 1, "ok": False, "why": why}]}
        m, rows = g.matrix()
        mine = np.asarray([i for i, n in enumerate(rows) if n == name])
        score = float(np.max(m[mine] @ result.embedding.vector.astype(np.float32)))
        floor = self.config.match.threshold_floor
        if not score >= floor:
            log.warning(
                "bridge: template for %s refused: cosine %.3f < floor %.3f", name, score, floor
            )
            return (
                False,
                f"{name}: this face does not resemble {name}'s templates (cosine {score:.3f}, "
                f"below match.threshold_floor {floor:g}: a stranger's face would let that "
                "stranger in): not added",
                {"score": score, "floor": floor},
            )
        gallery = add_to_gallery(
            self.config, name, [(result.embedding, "web review")], self.pipeline.embedder
        )
        log.warning("bridge: template added to %s from the web app (cosine %.3f)", name, score)
        return (
            True,
            f"{name}: 1 template added (cosine {score:.3f} to {name}'s), "
            f"{gallery.count(name)} in all",
            {"score": score, "floor": floor, "templates": gallery.count(name)},
        )

    def _enroll_from(
        self, name: str, raws: list[bytes | None], *, replace: bool, keep_photos: bool
    ) -> Result:
        attempts, good, used, first_face = [], [], [], None
        for i, raw in enumerate(raws, 1):
            if raw is None:
                attempts.append({"photo": i, "ok": False, "why": "not a base64 image"})
                continue
            try:
                frame = decode(raw, f"photo {i}")
            except FacegateError as exc:
                attempts.append({"photo": i, "ok": False, "why": first_line(exc)})
                continue
            result, why = judge(self.pipeline, frame, self.config.policy)
            attempts.append({"photo": i, "ok": result is not None, "why": why})
            if result is not None:
                good.append((result.embedding, f"web upload {i}"))
                used.append(raw)
                first_face = first_face if first_face is not None else result.aligned.rgb
        if not good:
            return (
                False,
                "no photo passed the enrollment checks: nothing enrolled",
                {"attempts": attempts},
            )
        if replace:
            self._edit(lambda g: g.remove(name) if name in g.names() else None)
        gallery = add_to_gallery(self.config, name, good, self.pipeline.embedder)
        self._save_face(name, first_face)
        if keep_photos:
            kept_photos.keep(self.config, name, used, replace=replace)
        log.warning("bridge: enrolled %s (%d template(s)) from the web app", name, len(good))
        return (
            True,
            f"{name}: {len(good)} template(s) added, {gallery.count(name)} in all",
            {"attempts": attempts, "added": len(good), "templates": gallery.count(name)},
        )

    def _capture(self, req: Wire) -> Result:
        frame = self.last_frame()
        if frame is None:
            return False, "no frame from the camera yet", {}
        result, why = judge(self.pipeline, frame, self.config.policy)
        return True, why, {"jpeg_b64": _b64(_jpeg(frame.rgb, 90)), "ok": result is not None}

    def _rename(self, req: RenameRequest) -> Result:
        old, new = validate_name(req.old), validate_name(req.new)
        self._edit(lambda g: g.rename(old, new))
        src, dst = face_file(self.config, old), face_file(self.config, new)
        if src.exists():
            os.replace(src, dst)
        kept_photos.move(self.config, old, new)
        log.warning("bridge: renamed %s to %s from the web app", old, new)
        return True, f"renamed {old} to {new}", {}

    def _remove(self, req: NameRequest) -> Result:
        name = validate_name(req.name)
        self._edit(lambda g: g.remove(name))
        face_file(self.config, name).unlink(missing_ok=True)
        kept_photos.forget(self.config, name)
        log.warning("bridge: removed %s from the web app", name)
        return True, f"removed {name}", {}

    def _edit(self, change: Callable[[Gallery], object]) -> None:
        with gallery_writer(self.gallery_path):
            g = Gallery.load(self.gallery_path)
            change(g)
            g.save(self.gallery_path)

    def _save_face(self, name: str, rgb: np.ndarray | None) -> None:
        if rgb is None:
            return
        d = faces_dir(self.config)
        d.mkdir(mode=0o700, exist_ok=True)
        atomic_write_bytes(face_file(self.config, name), _jpeg(rgb), mode=0o600)

    # ------------------------------------------------------------------ decisions and images

    def _decisions(self, req: DecisionsRequest) -> Result:
        """Records logged after ``after`` (the log's ISO ``time``), oldest first, a page at a time."""
        after, limit = req.after, req.limit  # an ISO time or "", 1 to MAX_RECORDS (the contract)
        path = Path(self.config.log.decisions)
        out: list[dict[str, Any]] = []
        more = False
        for f in log_files(path) if path.exists() else []:
            if after and _mtime_iso(f) < after:
                continue  # written to before the cursor: nothing in it is new
            for rec in read_records([f], strict=False):
                t = rec.get("time")
                if not isinstance(t, str) or t <= after:
                    continue
                if len(out) == limit:
                    more = True
                    break
                out.append(rec)
            if more:
                break
        return True, "", {"records": out, "more": more}

    def _snapshot(self, req: SnapshotRequest) -> Result:
        event_id = req.event_id  # letters, digits, '.', '_', '-': a file name (the contract)
        root = self.config.log.snapshots_dir
        if root is None:
            return False, "no such snapshot", {}
        for day in sorted(Path(root).glob("????-??-??"), reverse=True):
            p = day / f"{event_id}.jpg"
            if p.exists():
                return _jpeg_file(p, "a snapshot")
        return False, "no such snapshot", {}

    def _face(self, req: FaceRequest) -> Result:
        name = validate_name(req.name)
        p = face_file(self.config, name)
        if not p.exists():
            return False, f"{name}: no face picture (enrolled from the command line)", {}
        return _jpeg_file(p, "a face picture")

    # ------------------------------------------------------------------ rules and threshold

    def _rules_get(self, req: Wire) -> Result:
        path = self.config.access.rules
        if path is None:
            return True, "access.rules is not set in the config", {"path": None, "text": ""}
        try:
            data, _ = read_regular(
                path, what="the access rules", error=FacegateError, max_bytes=MAX_RULES_BYTES
            )
        except FileNotFoundError:
            data = b""
        return True, "", {"path": path, "text": data.decode("utf-8", "replace")}

    def _rules_set(self, req: RulesSetRequest) -> Result:
        path = self.config.access.rules
        text = req.text  # at most MAX_RULES_BYTES (the contract)
        if path is None:
            return (
                False,
                "access.rules is not set in the config: there is no rules file to write",
                {},
            )
        rules = parse_rules(
            text, path
        )  # a ConfigError listing every problem, before anything is written
        if os.path.islink(path):
            return False, f"{path}: is a symbolic link; refusing to write through it", {}
        atomic_write_bytes(path, text.encode(), mode=0o600)
        log.warning("bridge: access rules replaced from the web app (%d people)", len(rules.people))
        return True, f"saved: rules for {len(rules.people)} people", {}

    def _threshold_set(self, req: ThresholdSetRequest) -> Result:
        value = req.value  # a finite number (the contract); the floor is the config's
        floor = self.config.match.threshold_floor
        if not threshold_ok(value, floor):
            return False, threshold_why(floor), {}
        old = self.policy.match.min_cosine_similarity
        if not self._save_settings("min_cosine_similarity", value, "the threshold"):
            return (
                False,
                f"{settings_path(self.config)}: cannot be written; threshold unchanged",
                {},
            )
        self._set_threshold(float(value))
        log.warning("bridge: threshold changed from %.3f to %.3f from the web app", old, value)
        return True, f"threshold {old:.3f} -> {float(value):.3f}", {"old": old, "new": float(value)}

    def _set_threshold(self, value: float) -> None:
        self.policy.match = dataclasses.replace(self.policy.match, min_cosine_similarity=value)

    def _liveness_set(self, req: LivenessSetRequest) -> Result:
        """Score cue -> operating point (a live probability), for any of SCORE_CUES: saved in
        ``settings.json`` beside the threshold, and judged by from the next attempt on."""
        points = req.points  # score cues -> numbers strictly between 0 and 1 (the contract)
        live = self.policy.liveness
        if live is None:
            return False, "liveness is off in the config (liveness.enabled): no point to set", {}
        new = {k: float(p) for k, p in points.items()}
        old = {k: float(getattr(live, SCORE_CUES[k].point)) for k in new}
        saved = load_liveness_points(self.config) | new
        if not self._save_settings("liveness_points", saved, "the liveness operating points"):
            return (
                False,
                f"{settings_path(self.config)}: cannot be written; operating points unchanged",
                {},
            )
        self._set_points(new)
        log.warning(
            "bridge: liveness operating points changed from %s to %s from the web app",
            _points_text(old),
            _points_text(new),
        )
        why = "; ".join(f"{k} {old[k]:.3f} -> {new[k]:.3f}" for k in new)
        return True, f"liveness operating points: {why}", {"old": old, "new": new}

    def _set_points(self, points: dict[str, float]) -> None:
        self.policy.liveness = dataclasses.replace(
            self.policy.liveness, **{SCORE_CUES[k].point: p for k, p in points.items()}
        )

    def _save_settings(self, key: str, value: Any, what: str) -> bool:
        """``settings.json`` with ``key`` set and every other value in it kept."""
        path = settings_path(self.config)
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            raw = {}
        except (OSError, ValueError) as exc:
            log.warning("%s: unreadable (%s): written afresh", path, exc)
            raw = {}
        settings = raw if isinstance(raw, dict) else {}
        return save_state(path, {**settings, key: value}, what)

    def _drill(self, req: DrillRequest) -> Result:
        """An attack drill for ``minutes`` (0: stop it): no face is let in until it ends."""
        minutes = req.minutes  # 0 to MAX_DRILL_MINUTES (the contract)
        until = self.policy.wall() + 60.0 * minutes if minutes else None
        if not save_state(drill_path(self.config), {"until": until}, "the attack drill"):
            return False, f"{drill_path(self.config)}: cannot be written; drill unchanged", {}
        self.policy.drill_until = until
        if until is None:
            log.warning("bridge: attack drill stopped from the web app")
            return True, "attack drill stopped", {"drill_until": None}
        log.warning(
            "bridge: attack drill for %d min from the web app: no face is let in until %s",
            minutes,
            iso_utc_ms(until),
        )
        return (
            True,
            f"attack drill until {iso_utc_ms(until)[11:19]} UTC: no face is let in",
            {"drill_until": until},
        )

    def _settings(self, req: Wire) -> Result:
        m = self.policy.match
        live = self.policy.liveness
        return (
            True,
            "",
            {
                "min_cosine_similarity": m.min_cosine_similarity,
                "config_min_cosine_similarity": self.config.match.min_cosine_similarity,
                "liveness_points": {} if live is None else operating_points(live),
                "config_liveness_points": operating_points(self.config.liveness)
                if self.config.liveness.enabled
                else {},
                "drill_until": self.policy.drill_until if self.policy.drilling() else None,
                "min_margin": m.min_margin,
                "model": self.config.models.embedder,
                "door": self.config.mqtt.door_id,
                "snapshots": self.config.log.snapshots_dir is not None,
                "rules": self.config.access.rules is not None,
            },
        )


def _points_text(points: dict[str, float]) -> str:
    return ", ".join(f"{k} {p:.3f}" for k, p in points.items()) or "none"


def _mtime_iso(path: Path) -> str:
    return iso_utc_ms(path.stat().st_mtime + 0.001)  # rounded up: never before its last record
