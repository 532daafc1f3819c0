"""The attack suite: hostile configs, images, galleries, cards, logs, labels and CLI misuse against the real commands.

Prints ``N tried, M broke`` and fails when M is not 0; each broken case is named
with what broke (see tests/attack/hostile.py for what "holds" means).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from hostile import Case, World, cases, summary

ROOT = Path(__file__).resolve().parents[2]
PROGRAMS = {
    "facegate": [sys.executable, "-m", "edge"],
    "report": [sys.executable, "-m", "tools.report"],
}


def _unlocks(d: Path) -> int:
    log = d / "decisions.jsonl"
    if not log.is_file() or log.is_symlink():
        return 0
    n = 0
    for line in log.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            n += json.loads(line).get("decision") == "unlock"
    return n


def attempt(case: Case, world: World) -> str | None:
    """None if the case held, else what broke."""
    with tempfile.TemporaryDirectory(prefix="facegate-attack-") as tmp:
        d = Path(tmp)
        try:
            argv = case.make(d, world)
        except Exception as exc:  # the generator itself failed: a broken test, counted as broken
            return f"could not build the case: {type(exc).__name__}: {exc}"
        env = {**os.environ, "FACEGATE_MODEL_DIR": str(world.model_dir), "PYTHONPATH": str(ROOT)}
        try:
            p = subprocess.run(
                [*PROGRAMS[case.program], *argv],
                capture_output=True,
                text=True,
                env=env,
                cwd=ROOT,
                timeout=case.timeout_s,
                stdin=subprocess.DEVNULL,
                errors="replace",
            )
        except subprocess.TimeoutExpired:
            return f"hung for more than {case.timeout_s:g} s"
        finally:
            os.chmod(d, 0o700)  # a case may have opened the folder to others
        if "Traceback" in p.stderr:
            return "traceback: " + p.stderr.strip().splitlines()[-1][:300]
        if p.returncode < 0:
            return f"killed by signal {-p.returncode}"
        if p.returncode not in case.ok_codes:
            last = (p.stderr.strip().splitlines() or ["(no stderr)"])[-1][:300]
            return f"exit {p.returncode}: {last}"
        if p.returncode != 0:
            # One line says what is wrong: the command's own ("facegate: ...", "tools/report: error: ..."),
            # or the daemon's CRITICAL log line (it logs to journald); warnings may come before it.
            prefixes = ("facegate: ", "tools/report: ", "CRITICAL ")
            errors = [line for line in p.stderr.splitlines() if line.startswith(prefixes)]
            if len(errors) != 1:
                return f"exit {p.returncode} with {len(errors)} error lines: {p.stderr.strip()[:300]!r}"
        if "run" in argv and _unlocks(d):
            return f"{_unlocks(d)} unlock(s) logged"
    return None


def test_every_hostile_input_is_refused_cleanly(model_dir, samples, capsys):
    world = World(model_dir=model_dir, samples=samples)
    all_cases = cases()
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda c: (c, attempt(c, world)), all_cases))
    broke, text = summary("attack suite", results)
    with capsys.disabled():
        print("\n" + text)
    assert not broke, f"{broke} of {len(all_cases)} hostile inputs broke facegate"
