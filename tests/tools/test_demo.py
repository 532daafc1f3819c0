"""The README's first command, and the daemon -> tools/report contract on its log."""

from __future__ import annotations

import json

from tools import demo
from tools.report.__main__ import main as report_main


def test_demo_then_report_end_to_end(model_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FACEGATE_MODEL_DIR", str(model_dir))
    assert demo.main(["--out", str(tmp_path)]) == 0  # exit 0 means no false accept
    out = capsys.readouterr().out
    assert "strangers let in: 0/1" in out and "genuine attempts accepted: 2/2" in out
    assert (
        "photo attacks let in: 0/" in out
        and "(liveness on)" in out
        and "presentation_attack" in out
    )
    assert "relay energised" in out and f"decision log: {tmp_path / 'decisions.jsonl'}" in out
    margins = out.split("margins at threshold ")[1].splitlines()[0]
    assert "lowest genuine best" in margins and "highest stranger best" in margins
    rc = report_main(
        [
            str(tmp_path / "decisions.jsonl"),
            "--labels-from-sources",
            "nuaa",
            "--enrolled",
            ",".join(f"subject{s}" for s in demo.ENROLLED),
            "--threshold-ignores-attacks",
            "--outdir",
            str(tmp_path / "report"),
            "-q",
        ]
    )
    assert rc == 0
    data = json.loads((tmp_path / "report" / "report.json").read_text())
    conf = data["confusion"]
    assert conf["tp"] == 2 and conf["impostor_accepted"] == 0 and conf["wrong_person"] == 0
    assert conf["attack_accepted"] == 0
    live = data["liveness"]
    assert (
        live["attacks"]["k"] == live["attacks"]["n"] == conf["attack_attempts"] > 0
    )  # every photo caught by liveness
    assert live["live"]["k"] == 0 and live["live"]["n"] == 3
    assert data["recommendation"]["threshold"] is not None
    for name in ("report.html", "report.md", "roc.png", "det.png", "scores.png"):
        assert (tmp_path / "report" / name).stat().st_size > 0
