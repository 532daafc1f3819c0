"""Label decisions at the terminal: walk the unlabelled ones, ask for the truth, save each answer.

In: decision logs (as for the report), a labels CSV (created if missing),
answers on ``stdin``: a name (or its number in the list shown), ``i`` (impostor),
``a`` (attack), ``s`` (skip), ``q`` (quit); end of input quits too.
Out: one ``event_id,truth`` row appended and fsynced per answer, so quitting
or a crash loses nothing already answered; a prompt per decision on ``stdout``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from edge.decisions import read_records
from tools.report.collect import expand_paths
from tools.report.labels import ATTACK, IMPOSTOR, append_label, check_truth, read_labels

PROMPT = "truth? name or number / i=impostor / a=attack / s=skip / q=quit: "


@dataclass(frozen=True)
class ReviewResult:
    labelled: int
    skipped: int
    remaining: int  # unlabelled decisions not reached (quit early)


def _score(x: Any) -> str:
    return f"{x:.4f}" if isinstance(x, (int, float)) and not isinstance(x, bool) else "n/a"


def describe(rec: dict[str, Any], path: Path) -> list[str]:
    """What a reviewer needs to judge one decision, snapshot first in mind."""
    verdict = "UNLOCK" if rec.get("decision") == "unlock" else "deny"
    second = (
        f"second {rec.get('second') or '-'} {_score(rec.get('second_score'))}"
        if rec.get("second")
        else "no runner-up"
    )
    return [
        f"{rec.get('time', '?')}  event {rec.get('event_id', '?')}  ({path.name})",
        f"  decision {verdict}  reason {rec.get('reason', '?')}  person {rec.get('person') or '-'}",
        f"  best {rec.get('best') or '-'} {_score(rec.get('best_score'))}  {second}  "
        f"threshold {_score(rec.get('threshold'))}  min_margin {_score(rec.get('min_margin'))}  "
        f"frames {rec.get('frames_matched', '?')}/{rec.get('frames_used', '?')}",
        f"  snapshot: {rec.get('snapshot') or '(none saved)'}",
    ]


def _records(files: list[Path]) -> Iterator[tuple[Path, dict[str, Any]]]:
    for f in files:
        for rec in read_records([f]):
            yield f, rec


def _wanted(rec: dict[str, Any], labels: dict[str, str], only: str | None) -> bool:
    eid = rec.get("event_id")
    return (
        isinstance(eid, str)
        and bool(eid)
        and eid not in labels
        and (only is None or rec.get("decision") == only)
    )


def review(
    paths: Sequence[str | Path],
    labels_path: str | Path,
    *,
    enrolled: Sequence[str] | None = None,
    only: str | None = None,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
) -> ReviewResult:
    """Ask for the truth of each unlabelled decision (only unlocks or denials with ``only``)."""
    stdin = sys.stdin if stdin is None else stdin
    stdout = sys.stdout if stdout is None else stdout
    labels_path = Path(labels_path)
    labels = read_labels(labels_path) if labels_path.exists() else {}
    files = expand_paths(paths)
    names: set[str] = set(enrolled or ())
    todo = 0
    for _, rec in _records(files):  # first pass: how many, and who the gallery knows
        for key in ("person", "best", "second"):
            if isinstance(rec.get(key), str):
                names.add(rec[key])
        todo += _wanted(rec, labels, only)
    known = sorted(names)
    print(f"{todo} unlabelled decision(s) to review; labels go to {labels_path}", file=stdout)
    if known:
        print("people: " + "  ".join(f"[{i}] {n}" for i, n in enumerate(known, 1)), file=stdout)
    done = skipped = seen = 0
    for path, rec in _records(files):
        if not _wanted(rec, labels, only):
            continue
        seen += 1
        print(f"\n[{seen}/{todo}] " + "\n".join(describe(rec, path)), file=stdout)
        answer = _ask(stdin, stdout, known)
        if answer is None:
            print(
                f"stopped: {done} labelled, {skipped} skipped, {todo - seen + 1} left", file=stdout
            )
            return ReviewResult(done, skipped, todo - seen + 1)
        if answer == "":
            skipped += 1
            continue
        append_label(labels_path, rec["event_id"], answer)
        labels[rec["event_id"]] = answer
        done += 1
    print(f"done: {done} labelled, {skipped} skipped", file=stdout)
    return ReviewResult(done, skipped, 0)


# The one-letter answers: quit (None), skip (""), impostor, attack.
_KEYS: dict[str, str | None] = {"q": None, "s": "", "i": IMPOSTOR, "a": ATTACK}


def _ask(stdin: TextIO, stdout: TextIO, known: list[str]) -> str | None:
    """The truth typed, "" for skip, None for quit (or end of input)."""
    unconfirmed: str | None = None
    while True:
        print(PROMPT, end="", file=stdout, flush=True)
        line = stdin.readline()
        if not line:
            print(file=stdout)
            return None
        text = line.strip()
        if text.lower() in _KEYS:
            return _KEYS[text.lower()]
        if not text:
            continue
        if text.isdigit() and 1 <= int(text) <= len(known):
            return known[int(text) - 1]
        problem = check_truth(text)
        if problem:
            print(f"  {problem}", file=stdout)
            continue
        if text in known or text in (IMPOSTOR, ATTACK) or text == unconfirmed:
            return text
        unconfirmed = text
        print(
            f"  {text!r} is nobody the log knows ({', '.join(known) or 'no names'}); "
            f"type it again to label it anyway (a person not enrolled counts as an impostor)",
            file=stdout,
        )
