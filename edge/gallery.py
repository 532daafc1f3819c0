"""The gallery of enrolled faces: a JSON file of templates per person.

In: Embeddings from enrollment (or a gallery file).  Out: a :class:`Gallery`
that saves itself atomically and hands the matcher one N x D matrix of unit
templates plus the person each row belongs to.

File format, schema 2 (JSON, so an operator can inspect or diff it)::

    {"schema": 2, "model_sha256": "<sha256 of the embedder>",
     "preprocessing": {"input_size": [112, 112], "color": "RGB", "normalization": {...},
                       "crop": {...}, "flip_average": false},
     "embedding_size": 128,
     "people": {"alice": {"templates": [[0.0123457, ...], ...],
                          "added": ["2024-05-01T12:00:00Z", ...],
                          "sources": ["camera", "photos/alice.jpg", ...]}}}

Templates are bound to everything that makes an embedding: the model's weights
(``model_sha256``) and the card's preprocessing (``preprocessing``, from
``ModelCard.preprocessing``); a change in either refuses matching and asks for
enrollment again.  Schema 1 recorded only the weights, so it is refused too.
``templates``, ``added`` and ``sources`` run in parallel, oldest first.  Floats
are rounded to 7 significant digits (float32 holds no more).  Templates are
biometric data: the file is written 0600 in a 0700 directory.  Loading checks
every field and refuses the file with one line naming the file and the field.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from edge import jsonfields
from edge.cards import preprocessing_digest
from edge.errors import GalleryError
from edge.filelock import FileLock, lock_path_for
from edge.files import atomic_write_bytes, folder_writable_by, read_regular
from edge.text import first_line
from edge.types import Embedding

log = logging.getLogger(__name__)

SCHEMA = 2
UNIT_TOLERANCE = 1e-3
MAX_NAME_LEN = 64
MAX_GALLERY_BYTES = (
    64 << 20
)  # a household is kilobytes; a bound keeps a hostile file from filling memory
ENROLL_HINT = "facegate enroll NAME"

# Letters (any script), digits, underscore, space, dot and hyphen.
_NAME = re.compile(r"[\w .\-]+")
_TOP_KEYS = {"schema", "model_sha256", "preprocessing", "embedding_size", "people"}
_PERSON_KEYS = {"templates", "added", "sources"}


def validate_name(name: object) -> str:
    """Return ``name`` if it may be enrolled; names appear in logs, CLIs and field paths."""
    if (
        not isinstance(name, str)
        or not 1 <= len(name) <= MAX_NAME_LEN
        or not _NAME.fullmatch(name)
        or name != name.strip()
    ):
        raise GalleryError(
            f"invalid name {name!r}: use 1-{MAX_NAME_LEN} letters, digits, spaces, '.', '_' or '-', "
            "with no leading or trailing space"
        )
    return name


def file_stem(name: str) -> str:
    """A file name for a person's own files (face picture, kept photos): a digest of the name,
    so that no name can make a path."""
    return hashlib.sha256(name.encode()).hexdigest()[:32]


def model_mismatch_message(enrolled: str, embedder: str) -> str:
    """The one wording for 'templates from another model', shared with edge.match."""
    return (
        f"model_sha256: enrolled with model {enrolled[:12]}…, the embedder is {embedder[:12]}…; "
        f"enroll everyone again ({ENROLL_HINT})"
    )


def preprocessing_mismatch_message(enrolled: dict[str, Any], embedder: dict[str, Any]) -> str:
    """Which part of the preprocessing changed since enrollment, in one line."""
    keys = sorted(set(enrolled) | set(embedder))
    key = next((k for k in keys if enrolled.get(k) != embedder.get(k)), "preprocessing")
    return (
        f"preprocessing.{key}: enrolled with {json.dumps(enrolled.get(key), sort_keys=True)}, the embedder's card has "
        f"{json.dumps(embedder.get(key), sort_keys=True)}; templates from another crop, colour order or normalisation "
        f"do not match: enroll everyone again ({ENROLL_HINT})"
    )


class _DuplicateKey(ValueError):
    pass


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json's object hook: a person (or field) named twice is an error, not 'last one wins'."""
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKey(k)
        out[k] = v
    return out


def _read_trusted(path: Path) -> tuple[bytes, int]:
    """The gallery's bytes and mode, refused unless it is a regular file, not a symlink, that only
    its owner can write, in a directory that only its owner can write (as sshd's StrictModes)."""
    try:
        data, st = read_regular(
            path,
            what="gallery",
            error=GalleryError,
            max_bytes=MAX_GALLERY_BYTES,
            follow_symlinks=False,
        )
    except FileNotFoundError:
        raise GalleryError(f"{path}: no gallery; enroll someone first ({ENROLL_HINT})") from None
    if st.st_mode & 0o022:
        raise GalleryError(
            f"{path}: others can write it (mode {stat.S_IMODE(st.st_mode):04o}): anyone could enroll "
            f"themselves; run chmod 600 {path}"
        )
    try:
        open_folder = folder_writable_by(path.parent, 0o022)
    except OSError as exc:
        raise GalleryError(f"{path}: cannot read gallery: {exc.strerror}") from None
    if open_folder is not None:
        raise GalleryError(
            f"{path}: its directory {path.parent} is writable by others (mode "
            f"{open_folder:04o}): anyone could replace the gallery; run chmod 700 {path.parent}"
        )
    return data, st.st_mode


def gallery_writer(path: str | Path, wait_s: float = 30.0) -> FileLock:
    """Hold this while loading, changing and saving the gallery: two writers at once would lose one's change."""
    return FileLock.acquire(
        lock_path_for(path),
        what="another command changing this gallery",
        wait_s=wait_s,
        unwritable=GalleryError,
    )


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _round7(row: np.ndarray) -> list[float]:
    return [float(f"{v:.7g}") for v in row.tolist()]


@dataclass
class _Person:
    templates: np.ndarray  # k x D float32, unit rows, oldest first
    added: list[str]
    sources: list[str]


class Gallery:
    """Enrolled people and their templates, all from one embedder model."""

    def __init__(
        self, model_sha256: str, embedding_size: int, preprocessing: dict[str, Any] | None = None
    ) -> None:
        if not isinstance(model_sha256, str) or not model_sha256:
            raise GalleryError("model_sha256: must be a non-empty string")
        if (
            isinstance(embedding_size, bool)
            or not isinstance(embedding_size, int)
            or embedding_size < 1
        ):
            raise GalleryError(
                f"embedding_size: must be a positive integer, got {embedding_size!r}"
            )
        if not isinstance(preprocessing, dict) or not preprocessing:
            raise GalleryError(
                "preprocessing: the embedder card's preprocessing is required (ModelCard.preprocessing)"
            )
        self._model_sha256 = model_sha256
        self._preprocessing = dict(preprocessing)
        self._digest = preprocessing_digest(self._preprocessing)
        self._size = embedding_size
        self._people: dict[str, _Person] = {}
        self._matrix: tuple[np.ndarray, list[str]] | None = None
        self.source_sha256: str | None = (
            None  # sha256 of the file bytes load() parsed (None: not loaded from a file)
        )

    # ------------------------------------------------------------------ construction

    @classmethod
    def empty(
        cls, model_sha256: str, embedding_size: int, preprocessing: dict[str, Any] | None = None
    ) -> Gallery:
        return cls(model_sha256, embedding_size, preprocessing)

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        model_sha256: str | None = None,
        preprocessing: dict[str, Any] | None = None,
        embedding_size: int | None = None,
        max_templates: int | None = None,
    ) -> Gallery:
        """Read and check ``path``; with ``model_sha256`` (and ``preprocessing``), refuse templates
        from another model (or another crop, colour order or normalisation); with ``embedding_size``
        and ``max_templates``, refuse what the embedder and the config could never have made."""
        path = Path(path)
        data, mode = _read_trusted(path)
        if stat.S_IMODE(mode) & 0o044:
            log.warning(
                "%s: gallery is readable by group/others (mode %04o); run chmod 600 on it",
                path,
                stat.S_IMODE(mode),
            )
        try:
            raw = json.loads(data, object_pairs_hook=_no_duplicate_keys)
        except json.JSONDecodeError as exc:
            raise GalleryError(f"{path}: not valid JSON (line {exc.lineno})") from None
        except UnicodeDecodeError:
            raise GalleryError(f"{path}: not valid JSON (not UTF-8 text)") from None
        except _DuplicateKey as exc:
            raise GalleryError(
                f"{path}: {exc.args[0]}: given twice; the second would silently replace the first"
            ) from None
        except RecursionError:
            raise GalleryError(f"{path}: not valid JSON (nested too deeply)") from None
        except ValueError as exc:  # an integer of more than 4,300 digits (sys.int_info)
            raise GalleryError(f"{path}: not valid JSON ({first_line(exc)[:120]})") from None
        gallery = cls._from_json(raw, path)
        gallery.source_sha256 = hashlib.sha256(data).hexdigest()
        if model_sha256 is not None and model_sha256 != gallery.model_sha256:
            raise GalleryError(
                f"{path}: {model_mismatch_message(gallery.model_sha256, model_sha256)}"
            )
        if (
            preprocessing is not None
            and preprocessing_digest(preprocessing) != gallery.preprocessing_digest
        ):
            raise GalleryError(
                f"{path}: {preprocessing_mismatch_message(gallery.preprocessing, preprocessing)}"
            )
        if embedding_size is not None and gallery.embedding_size != embedding_size:
            raise GalleryError(
                f"{path}: embedding_size: {gallery.embedding_size}, but the embedder gives {embedding_size}; "
                f"enroll everyone again ({ENROLL_HINT})"
            )
        if max_templates is not None:
            for name in gallery.names():
                if gallery.count(name) > max_templates:
                    raise GalleryError(
                        f"{path}: people.{name}.templates: {gallery.count(name)} templates, more than "
                        f"gallery.max_templates_per_person ({max_templates})"
                    )
        return gallery

    @classmethod
    def _from_json(cls, raw: Any, path: Path) -> Gallery:
        def fail(field: str, msg: str) -> GalleryError:
            return GalleryError(f"{path}: {field}: {msg}")

        if not isinstance(raw, dict):
            raise GalleryError(f"{path}: expected a JSON object, got {type(raw).__name__}")
        schema = raw.get("schema")
        if schema == 1 and not isinstance(schema, bool):
            raise fail(
                "schema",
                "1 records the embedder's weights but not its preprocessing (crop, colour order, "
                f"normalisation); enroll everyone again ({ENROLL_HINT})",
            )
        if schema != SCHEMA or isinstance(schema, bool):
            raise fail("schema", f"expected {SCHEMA}, got {schema!r}")
        unknown = sorted(set(raw) - _TOP_KEYS)
        if unknown:
            raise fail(unknown[0], "unknown field")
        try:
            sha = jsonfields.text(raw, "model_sha256")
            size = jsonfields.integer(raw, "embedding_size", lo=1)
            pre = raw.get("preprocessing")
            if not isinstance(pre, dict) or not pre:
                raise jsonfields.FieldError(
                    f"preprocessing: expected the embedder card's preprocessing (an object), got {pre!r}"
                )
            people = raw.get("people")
            if not isinstance(people, dict):
                raise jsonfields.FieldError(
                    f"people: expected an object of name -> person, got {type(people).__name__}"
                )
            gallery = cls(sha, size, pre)
            for name, person in people.items():
                gallery._people[name] = _person_from_json(name, person, size)
        except jsonfields.FieldError as exc:
            raise GalleryError(f"{path}: {exc}") from None
        return gallery

    # ------------------------------------------------------------------ saving

    def to_json(self) -> str:
        """The file's text: indented, but each template on one line."""
        doc = {
            "schema": SCHEMA,
            "model_sha256": self._model_sha256,
            "preprocessing": self._preprocessing,
            "embedding_size": self._size,
            "people": {
                name: {
                    "templates": [_round7(row) for row in p.templates],
                    "added": p.added,
                    "sources": p.sources,
                }
                for name, p in self._people.items()
            },
        }
        text = json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False)
        # Collapse arrays of numbers onto one line.  JSON strings never hold a raw
        # newline, so this cannot touch a name or a source.
        return (
            re.sub(
                r"\[\n\s+([-+0-9.eE,\s]+?)\n\s*\]",
                lambda m: "[" + re.sub(r",\s+", ", ", m.group(1)) + "]",
                text,
            )
            + "\n"
        )

    def save(self, path: str | Path) -> None:
        """Replace ``path`` atomically (0600): a crash leaves the old gallery or the new one."""
        path = Path(path)
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            atomic_write_bytes(path, self.to_json().encode("utf-8"), mode=0o600)
        except OSError as exc:
            raise GalleryError(f"{path}: cannot save gallery: {exc.strerror or exc}") from None
        log.info(
            "saved gallery %s (%d people, %d templates)",
            path,
            len(self._people),
            self.matrix()[0].shape[0],
        )

    # ------------------------------------------------------------------ editing

    @property
    def model_sha256(self) -> str:
        return self._model_sha256

    @property
    def preprocessing(self) -> dict[str, Any]:
        return dict(self._preprocessing)

    @property
    def preprocessing_digest(self) -> str:
        return self._digest

    @property
    def embedding_size(self) -> int:
        return self._size

    def made_by(self, model_sha256: str, preprocessing: dict[str, Any]) -> bool:
        """Whether these templates come from that embedder (its weights and its preprocessing)."""
        return (
            model_sha256 == self._model_sha256
            and preprocessing_digest(preprocessing) == self._digest
        )

    def names(self) -> list[str]:
        """Enrolled names, in enrollment order."""
        return list(self._people)

    def count(self, name: str) -> int:
        """Templates held for ``name`` (0 if not enrolled)."""
        p = self._people.get(name)
        return 0 if p is None else int(p.templates.shape[0])

    def add(
        self, name: str, embeddings: list[Embedding], sources: list[str], *, max_templates: int
    ) -> None:
        """Add templates for ``name`` (new or existing), keeping only the newest ``max_templates``.

        Newest wins because faces change (beard, glasses, ageing): re-enrolling
        should replace what is stale.
        """
        validate_name(name)
        if max_templates < 1:
            raise GalleryError(f"max_templates: must be at least 1, got {max_templates}")
        if not embeddings:
            raise GalleryError(f"{name}: no embeddings to add")
        if len(sources) != len(embeddings):
            raise GalleryError(f"{name}: {len(embeddings)} embeddings but {len(sources)} sources")
        rows = []
        for i, (e, src) in enumerate(zip(embeddings, sources, strict=False)):
            if e.model_sha256 != self._model_sha256:
                mismatch = model_mismatch_message(self._model_sha256, e.model_sha256)
                raise GalleryError(f"{name}: embedding {i}: {mismatch}")
            if e.preprocessing != self._digest:
                raise GalleryError(
                    f"{name}: embedding {i}: preprocessing: made with other preprocessing "
                    f"({e.preprocessing or 'none'}) than the gallery's ({self._digest or 'none'}); "
                    f"enroll everyone again ({ENROLL_HINT})"
                )
            if not isinstance(src, str):
                raise GalleryError(
                    f"{name}: sources[{i}]: expected a string, got {type(src).__name__}"
                )
            v = np.asarray(e.vector, dtype=np.float64).ravel()
            rows.append(
                _check_template(
                    v.tolist(),
                    self._size,
                    lambda msg, i=i: GalleryError(f"{name}: embedding {i}: {msg}"),
                )
            )
        now = _now_iso()
        old = self._people.get(name)
        templates = np.concatenate([old.templates, np.stack(rows)]) if old else np.stack(rows)
        added = (old.added if old else []) + [now] * len(rows)
        srcs = (old.sources if old else []) + list(sources)
        self._people[name] = _Person(
            templates[-max_templates:], added[-max_templates:], srcs[-max_templates:]
        )
        self._matrix = None

    def remove(self, name: str) -> None:
        self._require(name)
        del self._people[name]
        self._matrix = None

    def rename(self, old: str, new: str) -> None:
        """Rename in place, keeping enrollment order."""
        self._require(old)
        validate_name(new)
        if new in self._people:
            raise GalleryError(f"{new!r} is already enrolled; remove it first or pick another name")
        self._people = {(new if k == old else k): v for k, v in self._people.items()}
        self._matrix = None

    def _require(self, name: str) -> None:
        if name not in self._people:
            enrolled = ", ".join(self._people) or "nobody"
            raise GalleryError(f"{name!r} is not enrolled (enrolled: {enrolled})")

    # ------------------------------------------------------------------ matching

    def matrix(self) -> tuple[np.ndarray, list[str]]:
        """All templates as one read-only N x D float32 matrix, and the name of each row.

        Cached until the gallery changes, so matching a frame costs one matrix product.
        """
        if self._matrix is None:
            if self._people:
                m = np.concatenate([p.templates for p in self._people.values()]).astype(np.float32)
            else:
                m = np.zeros((0, self._size), np.float32)
            m.setflags(write=False)
            rows = [name for name, p in self._people.items() for _ in range(p.templates.shape[0])]
            self._matrix = (m, rows)
        m, rows = self._matrix
        return m, list(rows)


def _person_from_json(name: str, person: Any, size: int) -> _Person:
    """One ``people`` entry, checked; FieldError naming ``people.<name>.<field>``."""
    try:
        validate_name(name)
    except GalleryError as exc:
        raise jsonfields.FieldError(f"people: {exc}") from None
    where = f"people.{name}"
    if not isinstance(person, dict):
        raise jsonfields.FieldError(f"{where}: expected an object, got {type(person).__name__}")
    unknown = sorted(set(person) - _PERSON_KEYS)
    if unknown:
        raise jsonfields.FieldError(f"{where}.{unknown[0]}: unknown field")
    templates = person.get("templates")
    if not isinstance(templates, list) or not templates:
        raise jsonfields.FieldError(f"{where}.templates: expected a non-empty list of templates")
    rows = [
        _check_template(
            t, size, lambda msg, i=i: jsonfields.FieldError(f"{where}.templates[{i}]: {msg}")
        )
        for i, t in enumerate(templates)
    ]
    lists = {}
    for key in ("added", "sources"):
        value = jsonfields.strings(person, key, name=f"{where}.{key}")
        if len(value) != len(rows):
            raise jsonfields.FieldError(
                f"{where}.{key}: expected {len(rows)} entries (one per template), got {len(value)}"
            )
        lists[key] = value
    return _Person(np.stack(rows), lists["added"], lists["sources"])


def _check_template(t: Any, size: int, fail: Any) -> np.ndarray:
    """One template as a unit float32 row, or ``fail(message)`` raised."""
    if not isinstance(t, list) or not all(
        isinstance(x, (int, float)) and not isinstance(x, bool) for x in t
    ):
        raise fail("expected a list of numbers")
    if len(t) != size:
        raise fail(f"expected {size} numbers, got {len(t)}")
    if not all(jsonfields.as_finite(x) is not None for x in t):
        raise fail("holds a non-finite value (NaN, infinity, or a number beyond a float's range)")
    v = np.asarray(t, dtype=np.float64)
    norm = float(np.linalg.norm(v))
    if abs(norm - 1.0) > UNIT_TOLERANCE:
        raise fail(f"not unit length (norm {norm:.4f})")
    # Renormalise so rounding never biases a cosine.
    return (v / norm).astype(np.float32)
