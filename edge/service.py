"""The door-lock daemon: camera -> pipeline -> policy -> door + decision log.

In: a Config and the parts it builds (camera, face pipeline, gallery, door,
decision log, systemd notifier), all injectable for tests.  Out: unlock pulses
for accepted people only, one JSON line per decision, READY/WATCHDOG/STOPPING
to systemd.

Fail secure: the relay is off at start, after every error, on every exit path
and on SIGTERM/SIGINT.  A decision that cannot be logged does not unlock.
Frames that fail to decode are skipped; a camera that drops is reopened with
back-off (edge.camera.ReconnectingCamera); a pipeline error on a frame relocks
and goes on, and too many in a row end the process (systemd restarts it).
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.access import AccessWatcher, load_rules
from edge.bridge.household import drill_path, load_drill
from edge.bridge.link import DaemonLink
from edge.camera import Camera, CameraStopped, CorruptFrame, EndOfStream, build_camera
from edge.config import Config
from edge.decisions import DecisionLog, decision_record
from edge.errors import CameraError, DecisionLogError, ExitCode, FacegateError
from edge.exposure import FaceExposure, for_camera, meter
from edge.filelock import FileLock, lock_path_for
from edge.files import read_state, save_state
from edge.gallery import Gallery
from edge.gallery_watch import GalleryWatcher
from edge.liveness import build_liveness
from edge.liveness.checker import LivenessChecker
from edge.match import match
from edge.notify import FrameWatchdog, Notifier, watchdog_period
from edge.pipeline import FacePipeline, build_pipeline
from edge.policy import Observation, Policy
from edge.snapshots import SnapshotStore
from edge.track import Tracker
from edge.types import Decision, Frame

log = logging.getLogger(__name__)

MAX_CONSECUTIVE_ERRORS = 20


@dataclass
class Stats:
    frames: int = 0
    corrupt_frames: int = 0
    settling_frames: int = 0  # frames with a face not judged while face-metered exposure changed
    faces: int = 0
    decisions: int = 0
    unlocks: int = 0
    errors: int = 0
    started: float = field(default_factory=time.monotonic)


class Service:
    """One running door: owns the loop; every part is passed in."""

    def __init__(
        self,
        config: Config,
        *,
        camera: Camera,
        pipeline: FacePipeline,
        gallery: Gallery,
        door: Any,  # edge.lock.Door
        decisions: DecisionLog,
        snapshots: SnapshotStore | None = None,
        notifier: Notifier | None = None,
        liveness: LivenessChecker | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        on_decision: Callable[[Decision, dict[str, Any]], None] | None = None,
    ) -> None:
        self.link: DaemonLink | None = None  # the bridge (build_service, with mqtt.enabled)
        self.config = config
        self.camera = camera
        self.pipeline = pipeline
        self.gallery = gallery
        self.door = door
        self.decisions = decisions
        self.snapshots = snapshots
        self.notifier = notifier or Notifier()
        self.clock = clock
        self.wall = wall
        self.on_decision = on_decision
        if config.liveness.enabled and liveness is None:
            raise ValueError("liveness.enabled is true but no LivenessChecker was given")
        self.liveness = liveness if config.liveness.enabled else None
        self.exposure: FaceExposure | None = for_camera(config.exposure, camera)
        self.tracker = Tracker(timeout_s=config.policy.track_timeout_s)
        # Each open track's latest aligned face: the snapshot of a decision made when it ends.
        self._last_crop: dict[int, Any] = {}
        self.policy = Policy(
            config.policy,
            config.match,
            liveness=config.liveness,
            model_sha256=pipeline.embedder.sha256,
            camera=getattr(camera, "name", ""),
            door=config.mqtt.door_id,
            wall=wall,
        )
        self.watchdog = FrameWatchdog(
            self.notifier,
            period=watchdog_period(),
            stall_after=config.service.watchdog_stall_s,
            clock=clock,
        )
        self.stats = Stats()
        self._stop = threading.Event()
        self.instance: FileLock | None = (
            None  # the door's instance lock (build_service), released when run() ends
        )
        self._saved_lockout: dict[str, Any] | None = None
        # No file until a remote command changes the counters.
        self._saved_remote: dict[str, Any] | None = self.policy.remote_state(clock(), wall())
        self.gallery_watcher: GalleryWatcher | None = (
            None  # reloads the gallery when its file changes
        )
        self.access_watcher: AccessWatcher | None = None  # the access rules, reloaded on change
        self._saved_entries: dict[str, int] = {}
        self._ready = False
        self._last_prune = -float("inf")

    # ---------------------------------------------------------------- control

    def stop(self, *_: object) -> None:
        """Ask the loop to end; relock at once and refuse any later unlock (safe from a signal handler)."""
        self._stop.set()
        try:
            self.door.disarm()  # a pulse the interrupted step was about to start must not energise after this
        finally:
            stopper = getattr(self.camera, "stop", None)
            if callable(stopper):
                stopper()

    def install_signal_handlers(self) -> None:
        # SIGHUP keeps its default (the process dies, systemd's ExecStopPost relocks and
        # Restart=on-failure brings it back): a clean exit on it would leave the door unwatched.
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self.stop)

    # ---------------------------------------------------------------- the loop

    def run(self, *, max_frames: int | None = None) -> ExitCode:
        """Process frames until stopped, the replay ends, or a fatal error; always relocks."""
        code = ExitCode.OK
        self.door.lock()
        self.notifier.status("starting: waiting for the first frame")
        try:
            self.camera.open()
            code = self._loop(max_frames)
            self.flush()
        except DecisionLogError as exc:
            log.critical("%s; door stays locked", exc)
            code = ExitCode.LOG
        except CameraError as exc:
            log.critical("camera failed: %s; door stays locked", exc)
            code = ExitCode.CAMERA
        except FacegateError as exc:
            log.critical("%s; door stays locked", exc)
            code = exc.exit_code
        finally:
            self._shut_down()
        return code

    def _loop(self, max_frames: int | None) -> ExitCode:
        """Frames until stopped or the replay ends; FAILURE after too many pipeline errors in a row."""
        errors_in_row = 0
        while not self._stop.is_set():
            if max_frames is not None and self.stats.frames >= max_frames:
                break
            self.door.poll()  # relock an overdue pulse, notice the door even when frames stall
            if self.link is not None:
                self.link.serve()  # the bridge's commands, on this thread
            try:
                frame = self.camera.read()
            except EndOfStream:
                log.info("end of replay after %d frames", self.stats.frames)
                break
            except CameraStopped:
                break
            except CorruptFrame as exc:
                self.stats.corrupt_frames += 1
                log.warning("skipping a corrupt frame: %s", exc)
                continue
            if self.link is not None:
                self.link.last_frame = frame
            if self._frame(frame):
                errors_in_row = 0
                continue
            errors_in_row += 1
            if errors_in_row >= MAX_CONSECUTIVE_ERRORS:
                log.critical(
                    "%d pipeline errors in a row; exiting so systemd restarts facegate",
                    errors_in_row,
                )
                return ExitCode.FAILURE
        return ExitCode.OK

    def _frame(self, frame: Frame) -> bool:
        """One frame through the pipeline and the door; False (door relocked) if it failed."""
        try:
            self.step(frame)
        except DecisionLogError:
            raise
        except Exception as exc:  # one bad frame must not open or kill the door
            self.door.lock()
            self.stats.errors += 1
            log.error(
                "frame %s: pipeline error, door stays locked: %s: %s",
                frame.source or frame.index,
                type(exc).__name__,
                exc,
                exc_info=log.isEnabledFor(logging.DEBUG),
            )
            return False
        self.stats.frames += 1
        self._prune_snapshots()  # retention also when nobody comes to the door (throttled)
        if not self._ready:
            self._ready = True
            self.notifier.ready(status="watching the door")
            log.info("ready: first frame processed")
        self.watchdog.frame_done()
        self.watchdog.tick()
        return True

    def _shut_down(self) -> None:
        """Relock first, then release the pins, the camera, the log and the instance lock."""
        self.notifier.stopping()
        try:
            self.door.close()  # relocks first, then releases the pins
        finally:
            try:
                self.camera.close()
            finally:
                self.decisions.close()
                if self.link is not None:
                    self.link.close()
                if self.instance is not None:
                    self.instance.release()
        log.info(
            "stopped: %d frames, %d decisions, %d unlocks, %d corrupt frames, %d errors",
            self.stats.frames,
            self.stats.decisions,
            self.stats.unlocks,
            self.stats.corrupt_frames,
            self.stats.errors,
        )
        self._log_stage_times()

    def _save_lockout(self) -> None:
        """Keep the lockout in the state directory, so a restart does not clear it."""
        state = self.policy.lockout_state(self.clock(), self.wall())
        if state == self._saved_lockout:
            return
        # Unsaved, the door keeps its lockout in memory; only a restart would lose it.
        if save_state(lockout_path(self.config), state, "the lockout"):
            self._saved_lockout = state

    def _save_remote(self) -> None:
        """Keep the wrong remote codes' counters beside the gallery: a restart gives no fresh ones."""
        state = self.policy.remote_state(self.clock(), self.wall())
        if state == self._saved_remote:
            return
        if save_state(
            remote_path(self.config), {"remote_unlock": state}, "the wrong-code counters"
        ):
            self._saved_remote = state

    def restore_remote(self) -> None:
        """Take back the wrong remote codes' counters; an unreadable file counts as today's cap
        reached (remote unlock refused until tomorrow), with a warning."""
        path = remote_path(self.config)
        raw, why = read_state(path, "remote_unlock")
        if raw is None and why is None and not path.exists():
            return
        if why is None:
            try:
                self.policy.restore_remote(raw, self.clock(), self.wall())
            except ValueError as exc:
                why = str(exc)
        if why is not None:
            self.policy.remote_cap_reached()
            log.warning("%s: %s: remote unlock is refused until tomorrow", path, why)
            return
        self._saved_remote = self.policy.remote_state(self.clock(), self.wall())
        if self.policy.remote_locked_out(self.clock()):
            log.warning("restored from %s: remote unlock is refused for now (wrong codes)", path)

    def _save_entries(self) -> None:
        """Guests' entries used, beside the gallery: a restart does not give them new ones."""
        if self.policy.entries == self._saved_entries:
            return
        if save_state(entries_path(self.config), self.policy.entries, "guests' entries"):
            self._saved_entries = dict(self.policy.entries)

    def restore_entries(self) -> None:
        """Take back the guests' entries used; an unreadable file leaves every counted guest none."""
        path = entries_path(self.config)
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            raw = None
            log.warning("%s: unreadable (%s)", path, exc)
        if not isinstance(raw, dict) or not all(
            isinstance(k, str) and type(v) is int and v >= 0 for k, v in raw.items()
        ):
            log.warning(
                "%s: not a map of name -> entries; guests with max_entries are refused", path
            )
            people = self.policy.access.people if self.policy.access else {}
            raw = dict.fromkeys(people, 1 << 30)
        self.policy.entries = dict(raw)
        self._saved_entries = dict(raw)

    def restore_lockout(self) -> None:
        """Take back the lockout a previous run saved (a bad file is reported and ignored)."""
        path = lockout_path(self.config)
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            log.warning("%s: unreadable lockout state, ignored: %s", path, exc)
            return
        try:
            self.policy.restore_lockout(raw, self.clock(), self.wall())
        except ValueError as exc:
            log.warning("%s: %s; lockout state ignored", path, exc)
            return
        self._saved_lockout = self.policy.lockout_state(self.clock(), self.wall())
        until = self.policy.locked_out_until(self.clock())
        if until is not None:
            log.warning(
                "restored a lockout from %s: nobody is let in for %.0f s more",
                path,
                until - self.clock(),
            )

    def restore_drill(self) -> None:
        """Take back an attack drill a previous run started: a restart never ends one early
        (an unreadable file is no drill, with a warning)."""
        until = load_drill(self.config, self.wall())
        self.policy.drill_until = until
        if until is not None and self.policy.drilling():
            log.warning(
                "restored an attack drill from %s: no face is let in for %.0f s more",
                drill_path(self.config),
                until - self.wall(),
            )

    def stage_ms(self) -> dict[str, float]:
        """Mean ms per call of each stage (detect per frame, the rest per judged face); NaN if never run."""
        t, live = self.pipeline.times, self.liveness

        def per(total: float, n: int) -> float:
            return 1e3 * total / n if n else float("nan")

        return {
            "detect": per(t.detect, self.stats.frames),
            "align": per(t.align, t.calls),
            "embed": per(t.embed, t.calls),
            "liveness": per(live.seconds, live.calls) if live is not None else float("nan"),
        }

    def _log_stage_times(self) -> None:
        """What a frame costs, for benchmarks and sizing a Pi."""
        if self.stats.frames:
            ms = self.stage_ms()
            log.info(
                "stage times: detect %.1f ms per frame; per judged face: align+quality %.1f ms, embed %.1f ms, "
                "liveness %.1f ms",
                ms["detect"],
                ms["align"],
                ms["embed"],
                ms["liveness"],
            )

    def step(self, frame: Frame) -> list[Decision]:
        """One frame through detect -> track -> gate -> embed -> match -> policy."""
        now = self.clock()
        out = []
        if self.gallery_watcher is not None:
            self.gallery = self.gallery_watcher.poll(now)
        if self.access_watcher is not None:
            self.policy.access = self.access_watcher.poll(now)
        # Only the largest face is at the door: others are passers-by behind the
        # person (and would only fill the log with low-quality attempts).
        faces = self.pipeline.detect(frame)[:1]
        self.stats.faces += len(faces)
        if self.exposure is not None:
            self.exposure = meter(
                self.exposure, self.camera, frame.rgb, faces[0].box if faces else None, now
            )
        settling = self.exposure is not None and self.exposure.settling
        for face, tid in zip(faces, self.tracker.update(faces, now), strict=False):
            if self.policy.settled(tid, now):
                continue  # decided and not due to retry: skip the embedder
            if (
                settling
            ):  # the exposure is changing: judge the face on frames taken after it settles
                self.stats.settling_frames += 1
                continue
            live = (
                self.liveness.sample(tid, frame, face, now) if self.liveness is not None else None
            )
            result = self.pipeline.process(frame, face)
            self._last_crop[tid] = result.aligned.rgb
            failed = self.policy.gate(result.quality)
            m = None if failed else match(result.embedding, self.gallery)
            d = self.policy.observe(
                Observation(tid, now, m, result.quality, frame.source, live), now
            )
            if d is not None:
                self.act(d, result.aligned.rgb)
                out.append(d)
        for tid in self.tracker.expired(now):
            if self.liveness is not None:
                self.liveness.forget(tid)
            d = self._end_track(tid, now)
            if d is not None:
                out.append(d)
        return out

    def _end_track(self, tid: int, now: float) -> Decision | None:
        """A track that left: its pending decision (if any) acted on, with its last face."""
        d = self.policy.end_track(tid, now)
        crop = self._last_crop.pop(tid, None)
        if d is not None:
            self.act(d, crop)
        return d

    def flush(self) -> None:
        """End every open attempt (end of replay, shutdown) so each one is logged."""
        now = self.clock() + self.config.policy.track_timeout_s + 1.0
        for tid in self.tracker.expired(now):
            self._end_track(tid, now)

    def _prune_snapshots(self) -> None:
        """Apply the snapshot retention (days, MB) at most every ten minutes."""
        now = self.clock()
        if self.snapshots is None or now - self._last_prune < 600.0:
            return
        self._last_prune = now
        try:
            removed = self.snapshots.prune()
            if removed:
                log.info("snapshot retention: removed %d old snapshot(s)", removed)
        except Exception as exc:
            log.warning("snapshot retention failed: %s", exc)

    def act(self, d: Decision, crop: Any) -> None:
        """Log the decision durably, then (only then) move the relay."""
        snapshot = None
        if self.snapshots is not None and crop is not None:
            try:
                snapshot = str(self.snapshots.save(d.event_id, crop))
            except Exception as exc:  # a snapshot is a nicety: never lose the decision over it
                log.warning("decision %s: no snapshot: %s", d.event_id, exc)
            self._prune_snapshots()
        record = decision_record(
            d,
            unix_time=self.wall(),
            snapshot=snapshot,
            exposure_stops=None if self.exposure is None else self.exposure.compensation,
        )
        try:
            self.decisions.append(record)
        except DecisionLogError:
            self.door.lock()
            log.error(
                "decision %s could not be logged: not acting on it, door stays locked", d.event_id
            )
            raise
        self.stats.decisions += 1
        self._save_lockout()
        self._save_remote()
        self._save_entries()
        if d.unlock:
            self.door.unlock(d.person or "")
            self.stats.unlocks += 1
        else:
            self.door.deny()
        log.info(
            "decision %s: %s %s (%s) best=%s %.3f frames %d/%d",
            d.event_id,
            "UNLOCK" if d.unlock else "deny",
            d.person or "-",
            d.reason,
            d.best,
            d.best_score,
            d.frames_matched,
            d.frames_used,
        )
        if self.link is not None:
            self.link.decided(d, record, snapshot)
        if self.on_decision is not None:
            self.on_decision(d, record)


def entries_path(config: Config) -> Path:
    return Path(config.gallery.path).with_name("entries.json")


def lockout_path(config: Config) -> Path:
    """The lockout's state, in the state directory beside the gallery (it survives a restart or power cut)."""
    return Path(config.gallery.path).with_name("lockout.json")


def remote_path(config: Config) -> Path:
    """The wrong remote codes' counters (edge.policy.REMOTE_WRONG_IN_ROW), beside the gallery."""
    return Path(config.gallery.path).with_name("remote.json")


def build_service(
    config: Config,
    *,
    pin_factory: Any = None,
    camera: Camera | None = None,
    on_decision: Callable[[Decision, dict[str, Any]], None] | None = None,
    notifier: Notifier | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Service:
    """Build every part from the config; any bad part is a FacegateError before the door is touched."""
    from edge.lock import Door

    pipeline = build_pipeline(config)
    liveness = build_liveness(config)
    # A rules file that does not load: refused now, before the door or the log is touched.
    access = load_rules(config.access.rules) if config.access.rules is not None else None
    watcher = GalleryWatcher.load(
        config.gallery.path,
        model_sha256=pipeline.embedder.sha256,
        preprocessing=pipeline.embedder.preprocessing,
        embedding_size=pipeline.embedder.card.embedding_size,
        max_templates=config.gallery.max_templates_per_person,
        clock=clock,
    )
    cam = camera or build_camera(config.camera)
    # One daemon per door: a second one would append to a log the first rotated away.
    instance = FileLock.acquire(
        lock_path_for(config.log.decisions),
        what="a facegate daemon for this door",
        unwritable=DecisionLogError,  # exit 10, not 12 "busy": no other daemon runs
    )
    try:
        decisions = DecisionLog(
            Path(config.log.decisions),
            max_bytes=int(config.log.max_mb * 1024 * 1024),
            backups=config.log.backups,
        )
        # Before READY: an unwritable log (or one behind a symlink) is found now, not at the first decision.
        decisions.open()
    except BaseException:
        instance.release()
        raise
    snapshots = None
    if config.log.snapshots_dir:
        snapshots = SnapshotStore(
            config.log.snapshots_dir,
            max_days=config.log.snapshot_days,
            max_mb=config.log.snapshot_max_mb,
        )
    # The bridge's door events go to the link, which exists once the door does.
    events: list[DaemonLink] = []

    def door_event(event: str) -> None:
        for link in events:
            link.door_event(event)

    # The door keeps real time even on a virtual-time replay: its pulse is real.
    try:
        door = Door.from_config(config.lock, pin_factory=pin_factory, on_event=door_event)
    except BaseException:
        decisions.close()
        instance.release()
        raise
    service = Service(
        config,
        camera=cam,
        pipeline=pipeline,
        gallery=watcher.gallery,
        door=door,
        decisions=decisions,
        snapshots=snapshots,
        notifier=notifier,
        on_decision=on_decision,
        clock=clock,
        liveness=liveness,
    )
    service.instance = instance
    if config.mqtt.enabled:
        try:
            service.link = DaemonLink.build(
                config,
                policy=service.policy,
                door=door,
                camera=cam,
                act=service.act,
                clock=clock,
                wall=service.wall,
                pipeline=pipeline,
            )
        except BaseException:
            door.close()
            decisions.close()
            instance.release()
            raise
        events.append(service.link)
    service.gallery_watcher = (
        watcher  # a revocation or enrollment reaches the running door within a second
    )
    service.restore_lockout()  # a restart or power cut does not clear an attacker's lockout
    service.restore_drill()  # nor end an attack drill early
    service.restore_remote()  # nor give a code guesser a fresh count
    if config.access.rules is not None and access is not None:
        service.policy.access = access
        service.access_watcher = AccessWatcher(config.access.rules, access)
        service.restore_entries()
    return service
