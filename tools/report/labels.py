"""Ground truth for decisions: a labels CSV, or NUAA frame paths.

In: ``labels.csv`` with columns ``event_id,truth`` (truth: an enrolled person's
name, ``impostor`` or ``attack``; header optional, ``#`` comments and blank
lines ignored), or a record's ``sources`` (replayed NUAA frame paths).
Out: event_id -> truth; a Labeller that gives a record's truth or None
(unlabelled, with the reason counted); ``append_label`` for the review.

A truth naming somebody who is not enrolled is a live stranger: the report
counts it as an impostor, which is how NUAA subjects outside the gallery work.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

from tools import nuaa
from tools.report import ReportError

log = logging.getLogger(__name__)

IMPOSTOR = "impostor"
ATTACK = "attack"
HEADER = ("event_id", "truth")
_NUAA_DIR = re.compile(r"(?:^|[/\\])(ClientRaw|ImposterRaw)[/\\](\d+)[/\\]")


def check_truth(truth: str) -> str | None:
    """Why ``truth`` is not a usable label, or None if it is."""
    if not truth:
        return "truth: empty (expected a person's name, impostor or attack)"
    if truth != truth.strip():
        return f"truth: {truth!r} has leading or trailing spaces"
    if any(ord(c) < 32 for c in truth):
        return f"truth: {truth!r} contains control characters"
    return None


def read_labels(path: str | Path) -> dict[str, str]:
    """event_id -> truth from a labels CSV; ReportError naming file:line for any bad row.

    The same event_id twice with the same truth is harmless; with different
    truths it is a contradiction we refuse to guess about.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # -sig: spreadsheets add a BOM
    except FileNotFoundError:
        raise ReportError(f"{path}: labels file not found") from None
    except UnicodeDecodeError as exc:
        raise ReportError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise ReportError(f"{path}: cannot read labels: {exc.strerror or exc}") from None
    labels: dict[str, str] = {}
    first_line: dict[str, int] = {}
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        for row in reader:
            line = reader.line_num
            if not row or all(not c.strip() for c in row) or row[0].lstrip().startswith("#"):
                continue
            if line == 1 and tuple(c.strip().lower() for c in row) == HEADER:
                continue
            if len(row) != 2:
                raise ReportError(
                    f"{path}:{line}: expected 2 fields (event_id,truth), got {len(row)}: {','.join(row)!r}"
                )
            event_id, truth = row[0].strip(), row[1]
            if truth.lower() in (IMPOSTOR, ATTACK):
                truth = truth.lower()
            if not event_id:
                raise ReportError(f"{path}:{line}: event_id: empty")
            problem = check_truth(truth)
            if problem:
                raise ReportError(f"{path}:{line}: {problem}")
            old = labels.get(event_id)
            if old is not None and old != truth:
                raise ReportError(
                    f"{path}:{line}: event_id {event_id}: truth {truth!r} contradicts "
                    f"{old!r} on line {first_line[event_id]}"
                )
            labels[event_id] = truth
            first_line.setdefault(event_id, line)
    except csv.Error as exc:
        raise ReportError(f"{path}:{reader.line_num}: {exc}") from None
    log.info("%s: %d labels", path, len(labels))
    return labels


def append_label(path: str | Path, event_id: str, truth: str) -> None:
    """Append one label and fsync: an answer given is never lost, even if the review is killed.

    Creates the file with its header; adds a newline first if a hand edit
    left the last line unterminated.
    """
    path = Path(path)
    problem = check_truth(truth)
    if problem:
        raise ReportError(f"{path}: {problem}")
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        size = 0
    prefix = ""
    if size == 0:
        writer.writerow(HEADER)
    else:
        with open(path, "rb") as f:
            f.seek(size - 1)
            if f.read(1) != b"\n":
                prefix = "\n"
    writer.writerow((event_id, truth))
    data = (prefix + buf.getvalue()).encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


class Labeller(Protocol):
    """Gives a record's truth (name, impostor, attack) or None; counts why None."""

    unlabelled_why: Counter[str]
    description: str

    def __call__(self, event_id: str, sources: list[Any]) -> str | None: ...

    def notes(self) -> list[str]:
        """Anything the reader of the report should know about the labels."""
        ...


class CsvLabeller:
    """Truth by event_id from a labels CSV."""

    def __init__(self, labels: Mapping[str, str], description: str) -> None:
        self.labels = labels
        self.description = description
        self.unlabelled_why: Counter[str] = Counter()
        self.matched = 0

    def __call__(self, event_id: str, sources: list[Any]) -> str | None:
        truth = self.labels.get(event_id)
        if truth is None:
            self.unlabelled_why["not in the labels file"] += 1
        else:
            self.matched += 1
        return truth

    def notes(self) -> list[str]:
        """Labels that match no decision usually mean the wrong log or labels file."""
        unused = len(self.labels) - self.matched
        return (
            [f"{unused} of {len(self.labels)} labels match no decision in these logs"]
            if unused > 0
            else []
        )


class NoLabels:
    """Every record unlabelled: the report still shows reasons and weeks."""

    description = "none (every decision is unlabelled)"

    def __init__(self) -> None:
        self.unlabelled_why: Counter[str] = Counter()

    def __call__(self, event_id: str, sources: list[Any]) -> str | None:
        self.unlabelled_why["no labels given"] += 1
        return None

    def notes(self) -> list[str]:
        return []


def _nuaa_source(source: str) -> str | None:
    """The truth one frame path names, or None if it is no NUAA frame."""
    m = _NUAA_DIR.search(source)
    if m is None:
        return None
    return nuaa.person(m.group(2)) if m.group(1) == "ClientRaw" else ATTACK


def nuaa_truth(
    sources: Iterable[Any], cache: dict[str, str | None] | None = None
) -> tuple[str | None, str | None]:
    """(truth, None) from NUAA frame paths, or (None, why unlabelled).

    ClientRaw/<id>/... is live subject ``subject<id>``; ImposterRaw/<id>/... is
    a printed photo, an attack.  Frames that name different truths label nothing.
    ``cache`` (folder -> truth) saves the regex for the many frames of one folder.
    """
    found: set[str] = set()
    for source in sources:
        s = str(source)
        folder = s[: max(s.rfind("/"), s.rfind("\\")) + 1]
        if cache is None:
            truth = _nuaa_source(s)
        else:
            truth = cache.get(folder, "")
            if truth == "":
                truth = cache[folder] = _nuaa_source(s)
                if len(cache) > 100_000:  # bounded memory, whatever the paths
                    cache.clear()
        if truth is not None:
            found.add(truth)
    if not found:
        return None, "no NUAA frame in sources"
    if len(found) > 1:
        return None, "sources disagree: " + " + ".join(sorted(found))
    return found.pop(), None


class NuaaLabeller:
    """Truth from each record's sources by NUAA naming (tools.nuaa)."""

    description = "NUAA frame paths in each record's sources"

    def __init__(self) -> None:
        self.unlabelled_why: Counter[str] = Counter()
        self._folders: dict[str, str | None] = {}

    def __call__(self, event_id: str, sources: list[Any]) -> str | None:
        truth, why = nuaa_truth(sources, self._folders)
        if why is not None:
            self.unlabelled_why[
                why if not why.startswith("sources disagree") else "sources disagree"
            ] += 1
        return truth

    def notes(self) -> list[str]:
        return []


def parse_enrolled(text: str) -> tuple[str, ...]:
    """``subject0001,subject0004`` (or bare NUAA ids ``0001``) -> names; ReportError if empty."""
    names = []
    for part in text.split(","):
        name = part.strip()
        if not name:
            continue
        names.append(nuaa.person(name) if name.isdigit() else name)
    if not names:
        raise ReportError(f"--enrolled: no names in {text!r}")
    return tuple(dict.fromkeys(names))
