"""python -m tools.report as a user meets it: files written, one-line errors, the stdin review."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from test_report import HAND, make_record, write_labels, write_log

from edge.errors import ExitCode
from edge.types import Reason
from tools.report.__main__ import main
from tools.report.labels import read_labels
from tools.report.review import review

ROOT = Path(__file__).resolve().parents[2]
PNG = b"\x89PNG\r\n\x1a\n"


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "tools.report", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
    )


def one_line_error(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.fixture
def hand_files(tmp_path):
    log = write_log(tmp_path / "decisions.jsonl", [r for r, _ in HAND])
    labels = write_labels(tmp_path / "labels.csv", {r["event_id"]: t for r, t in HAND if t})
    return log, labels


def test_outdir_writes_html_markdown_json_and_pngs(hand_files, tmp_path, capsys):
    log, labels = hand_files
    out = tmp_path / "out"
    assert (
        main(
            [
                str(log),
                "--labels",
                str(labels),
                "--enrolled",
                "alice,bob",
                "--outdir",
                str(out),
                "--target-far",
                "0.1",
            ]
        )
        == 0
    )
    stdout = capsys.readouterr().out
    assert "TP 2" in stdout and "FN 2" in stdout and "UNLABELLED: 1" in stdout
    for name in ("roc.png", "det.png", "scores.png"):
        assert (out / name).read_bytes().startswith(PNG), name
    html = (out / "report.html").read_text()
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == 3 and all(base64.b64decode(b).startswith(PNG) for b in images)
    assert "<img" in html and 'src="roc.png"' not in html  # self-contained
    md = (out / "report.md").read_text()
    assert "![ROC](roc.png)" in md and "| genuine (enrolled person) | TP 2 |" in md
    data = json.loads((out / "report.json").read_text())
    c = data["confusion"]
    assert (c["tp"], c["fp"], c["tn"], c["fn"], c["wrong_person"]) == (2, 3, 5, 2, 1)
    assert c["far"]["value"] == 3 / 8 and data["unlabelled"] == 1
    assert (
        data["locked_out"]["total"] == 1 and data["locked_out"]["examples"][0]["event_id"] == "x3"
    )
    assert data["recommendation"]["meets_target"] is False
    assert data["sweep"]["rows"] and "best frame" in data["sweep"]["method"]
    assert [w["week"] for w in data["per_week"]] == ["2024-W18"]


def test_markdown_alone_writes_its_plots_beside_it(hand_files, tmp_path, capsys):
    log, labels = hand_files
    md = tmp_path / "r" / "week18.md"
    assert main([str(log), "--labels", str(labels), "--markdown", str(md), "--quiet"]) == 0
    assert "![DET](week18.det.png)" in md.read_text()
    assert (md.parent / "week18.det.png").read_bytes().startswith(PNG)
    assert capsys.readouterr().out.strip().splitlines()[-1] == f"wrote {md}"


def test_empty_log_gives_na_json_not_a_crash(tmp_path, capsys):
    log = tmp_path / "decisions.jsonl"
    log.write_text("")
    js = tmp_path / "r.json"
    assert (
        main(
            [
                str(log),
                "--labels-from-sources",
                "nuaa",
                "--enrolled",
                "subject0001",
                "--json",
                str(js),
            ]
        )
        == 0
    )
    data = json.loads(js.read_text())
    assert data["records"] == 0 and data["confusion"]["sensitivity"]["value"] is None
    assert (
        data["confusion"]["far_upper95_one_sided"] is None
        and data["recommendation"]["threshold"] is None
    )
    assert "n/a" in capsys.readouterr().out


def test_bad_labels_row_is_one_line_with_file_and_line(hand_files):
    log, labels = hand_files
    labels.write_text("event_id,truth\na1,alice\na2,alice,bob\n")
    proc = run(str(log), "--labels", str(labels))
    assert proc.returncode == ExitCode.DATA
    assert one_line_error(proc.stderr) == (
        f"tools/report: error: {labels}:3: expected 2 fields (event_id,truth), got 3: 'a2,alice,bob'"
    )


def test_unreadable_log_is_one_line_with_file_and_line(tmp_path, capsys):
    log = tmp_path / "decisions.jsonl"
    log.write_text(
        json.dumps(make_record("a", best="alice"))
        + "\nnot json\n"
        + json.dumps(make_record("b"))
        + "\n"
    )
    assert main([str(log), "--labels-from-sources", "nuaa"]) == ExitCode.LOG
    assert (
        one_line_error(capsys.readouterr().err)
        == f"tools/report: error: {log}:2: not a JSON object"
    )
    gz = tmp_path / "other.jsonl.1.gz"
    gz.write_bytes(b"\x1f\x8b\x08\x00garbage")
    assert main([str(gz), "--labels-from-sources", "nuaa"]) == ExitCode.LOG
    assert f"tools/report: error: {gz}: cannot read after line 0" in capsys.readouterr().err


def test_bad_arguments_are_one_line(hand_files, tmp_path, capsys):
    log, labels = hand_files
    assert main([str(log), "--target-far", "2"]) == ExitCode.DATA
    assert (
        one_line_error(capsys.readouterr().err)
        == "tools/report: error: --target-far: must be between 0 and 1, got 2"
    )
    assert main([str(tmp_path / "missing.jsonl"), "--labels", str(labels)]) == ExitCode.DATA
    assert "missing.jsonl: no such decision log" in one_line_error(capsys.readouterr().err)
    assert main([str(log), "--labels", str(tmp_path / "none.csv")]) == ExitCode.DATA
    assert one_line_error(capsys.readouterr().err).endswith("none.csv: labels file not found")


def test_rotated_and_torn_logs_from_the_command_line(tmp_path, caplog):
    write_log(
        tmp_path / "decisions.jsonl.1.gz",
        [make_record("old", unlock=True, best="alice", score=0.9)],
    )
    live = write_log(
        tmp_path / "decisions.jsonl",
        [make_record("new", best="alice", score=0.4)],
        tail='{"schema": 1, "event',
    )
    labels = write_labels(tmp_path / "labels.csv", {"old": "alice", "new": "alice"})
    js = tmp_path / "r.json"
    assert main([str(live), "--labels", str(labels), "--json", str(js), "--quiet"]) == 0
    data = json.loads(js.read_text())
    assert data["records"] == 2 and [Path(f).name for f in data["files"]] == [
        "decisions.jsonl.1.gz",
        "decisions.jsonl",
    ]
    assert (data["confusion"]["tp"], data["confusion"]["fn"]) == (1, 1)
    assert any("decisions.jsonl:2: torn last line skipped" in m for m in caplog.messages)


def test_review_walks_unlabelled_decisions_and_appends_answers(tmp_path):
    recs = [
        make_record("e1", unlock=True, best="alice", score=0.91, snapshot="/snaps/e1.jpg"),
        make_record("e2", best="bob", score=0.42, second="alice", second_score=0.3),
        make_record("e3", best="alice", score=0.2, reason=Reason.LOCKED_OUT),
        make_record("e4", best="alice", score=0.2),
        make_record("e5", best="alice", score=0.2),
    ]
    log = write_log(tmp_path / "decisions.jsonl", recs)
    labels = write_labels(tmp_path / "labels.csv", {"e2": "bob"})  # already labelled: not asked
    out = io.StringIO()
    answers = "1\ni\ns\ncarol\ncarol\nq\n"  # e1: [1]=alice; e3: impostor; e4: skip; e5: carol (confirmed); quit
    result = review([log], labels, stdin=io.StringIO(answers), stdout=out)
    assert read_labels(labels) == {"e2": "bob", "e1": "alice", "e3": "impostor", "e5": "carol"}
    assert (result.labelled, result.skipped, result.remaining) == (3, 1, 0)
    text = out.getvalue()
    assert "4 unlabelled decision(s) to review" in text and "[1] alice  [2] bob" in text
    assert (
        "decision UNLOCK  reason accepted  person alice" in text
        and "snapshot: /snaps/e1.jpg" in text
    )
    assert "'carol' is nobody the log knows" in text
    out = io.StringIO()
    again = review([log], labels, stdin=io.StringIO(""), stdout=out)  # end of input quits
    assert (again.labelled, again.remaining) == (
        0,
        1,
    ) and "1 unlabelled decision(s)" in out.getvalue()


def test_review_command_fed_by_stdin(tmp_path):
    log = write_log(
        tmp_path / "decisions.jsonl",
        [
            make_record("e1", unlock=True, best="alice", score=0.9),
            make_record("e2", best="alice", score=0.3),
        ],
    )
    labels = tmp_path / "new" / "labels.csv"
    labels.parent.mkdir()
    proc = run("review", str(log), "--labels", str(labels), "--only", "unlock", stdin="a\n")
    assert proc.returncode == 0, proc.stderr
    assert labels.read_text() == "event_id,truth\ne1,attack\n"
    assert "1 unlabelled decision(s) to review" in proc.stdout


def test_a_log_given_twice_counts_each_decision_once(hand_files, tmp_path):
    log, labels = hand_files
    copy = tmp_path / "copy" / "decisions.jsonl"
    copy.parent.mkdir()
    copy.write_bytes(log.read_bytes())
    once, twice = tmp_path / "once", tmp_path / "twice"
    assert (
        main(
            [
                str(log),
                "--labels",
                str(labels),
                "--enrolled",
                "alice,bob",
                "--outdir",
                str(once),
                "-q",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                str(log),
                str(copy),
                "--labels",
                str(labels),
                "--enrolled",
                "alice,bob",
                "--outdir",
                str(twice),
                "-q",
            ]
        )
        == 0
    )
    a, b = (json.loads((d / "report.json").read_text()) for d in (once, twice))
    assert a["confusion"] == b["confusion"] and a["records"] == b["records"]


def test_a_name_with_terminal_escapes_is_a_bad_record_not_printed_raw(tmp_path):
    rec = make_record(event_id="esc", person="\x1b[2J\x1b[31mowned", best="\x1b[2J\x1b[31mowned")
    log = write_log(tmp_path / "decisions.jsonl", [rec])
    labels = write_labels(tmp_path / "labels.csv", {"esc": "impostor"})
    p = run(str(log), "--labels", str(labels), "-q")
    assert p.returncode == ExitCode.LOG and "\x1b" not in p.stderr + p.stdout
    assert "person: holds control characters" in one_line_error(p.stderr)
