"""The photos a person was enrolled from in the web app, kept so a model change needs no sitting.

In: a person's accepted enrollment photos (JPEG bytes, at most 1280 px), and the config.
Out: ``<gallery dir>/photos/<digest of the name>/NNN.jpg`` (0600 files in 0700 folders:
they are biometric images, like the gallery), and :func:`rebuild`, which enrolls everyone
again from them with the current embedder (``facegate reenroll``), keeping the old gallery
as a backup beside it.  A person enrolled only at the command line has no kept photos.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge.config import Config
from edge.enroll import Attempt, from_images
from edge.files import atomic_write_bytes, fsync_dir
from edge.gallery import Gallery, file_stem, gallery_writer

log = logging.getLogger(__name__)

MAX_KEPT = 20  # per person: the newest; the gallery keeps fewer templates than this anyway


def person_dir(config: Config, name: str) -> Path:
    return Path(config.gallery.path).with_name("photos") / file_stem(name)


def kept(config: Config, name: str) -> list[Path]:
    """The person's kept photos, oldest first (by number: 999 comes before 1000)."""
    d = person_dir(config, name)
    if not d.is_dir():
        return []
    photos = [p for p in d.glob("*.jpg") if p.is_file() and not p.is_symlink()]
    return sorted(photos, key=lambda p: (len(p.stem), p.stem))


def keep(config: Config, name: str, jpegs: list[bytes], *, replace: bool) -> None:
    d = person_dir(config, name)
    if replace:
        forget(config, name)
    d.parent.mkdir(mode=0o700, exist_ok=True)
    d.mkdir(mode=0o700, exist_ok=True)
    start = max((int(p.stem) for p in kept(config, name) if p.stem.isdigit()), default=0)
    for i, data in enumerate(jpegs, start + 1):
        atomic_write_bytes(d / f"{i:03d}.jpg", data, mode=0o600)
    for old in kept(config, name)[:-MAX_KEPT]:
        old.unlink()


def forget(config: Config, name: str) -> None:
    shutil.rmtree(person_dir(config, name), ignore_errors=True)


def move(config: Config, old: str, new: str) -> None:
    src, dst = person_dir(config, old), person_dir(config, new)
    if src.is_dir():
        os.replace(src, dst)
        fsync_dir(dst.parent)


def rebuild(
    config: Config,
    pipeline: Any,
    names: list[str] | None = None,
    report: Callable[[Attempt], None] = lambda a: None,
) -> tuple[dict[str, int], list[str], Path | None]:
    """Enroll ``names`` (default: everyone in the gallery) again from their kept photos.

    Returns (templates per person re-enrolled, people left out: no kept photo passed, the old
    gallery's backup or None).  With a gallery made by another model or preprocessing, the new
    gallery holds only the people re-enrolled (the others' templates could not be matched
    anyway) and the old file is kept as ``gallery.json.<its model's sha256[:12]>.bak``.
    """
    path = Path(config.gallery.path)
    embedder = pipeline.embedder
    with gallery_writer(path):
        old = Gallery.load(path) if path.exists() else None
        current = old is not None and old.made_by(embedder.sha256, embedder.preprocessing)
        wanted = names if names is not None else (old.names() if old else [])
        new = (
            old
            if old is not None and current
            else Gallery.empty(
                embedder.sha256, embedder.card.embedding_size, embedder.preprocessing
            )
        )
        done: dict[str, int] = {}
        missing: list[str] = []
        for name in wanted:
            good = from_images(pipeline, kept(config, name), config.policy, report)
            if not good:
                missing.append(name)
                continue
            if name in new.names():
                new.remove(name)
            new.add(
                name,
                [e for e, _ in good],
                [s for _, s in good],
                max_templates=config.gallery.max_templates_per_person,
            )
            done[name] = len(good)
        backup = None
        if old is not None and not current:
            backup = path.with_name(f"{path.name}.{old.model_sha256[:12]}.bak")
            atomic_write_bytes(backup, path.read_bytes(), mode=0o600)
        if done or backup is not None:
            new.save(path)
    return done, missing, backup
