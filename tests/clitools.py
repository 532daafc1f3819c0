"""Running facegate's commands as a user does, for the tests (import as ``from clitools import ...``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def convert(
    *args: str, model_dir: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """``python -m tools.convert ARGS`` from the repository root."""
    full = {**os.environ, **(env or {})}
    if model_dir is not None:
        full["FACEGATE_MODEL_DIR"] = str(model_dir)
    return subprocess.run(
        [sys.executable, "-m", "tools.convert", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=full,
    )


def error_line(proc: subprocess.CompletedProcess, prog: str = "tools/convert") -> str:
    """The one error line a failed command printed; no traceback allowed."""
    lines = [line for line in proc.stderr.splitlines() if line.startswith(f"{prog}: error:")]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert len(lines) == 1, proc.stderr[-3000:]
    return lines[0]
