"""The systemd unit: valid, notify-typed, fail-secure on any exit, and hardened."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[2] / "systemd" / "facegate.service"


def settings() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            out.setdefault(k.strip(), []).append(v.strip())
    return out


def test_unit_is_notify_with_watchdog_restart_and_relay_off_after_any_exit():
    s = settings()
    assert s["Type"] == ["notify"] and s["Restart"] == ["on-failure"]
    assert int(s["WatchdogSec"][0]) > 0
    assert any(v.endswith(" relay-off") for v in s["ExecStopPost"])
    assert s["User"] == ["facegate"] and set(s["SupplementaryGroups"][0].split()) == {
        "gpio",
        "video",
    }
    for key in ("NoNewPrivileges", "PrivateTmp", "ProtectHome"):
        assert s[key] == ["yes"], key
    assert s["ProtectSystem"] == ["strict"] and s["StateDirectory"] and s["LogsDirectory"]


@pytest.fixture
def analyzable(tmp_path) -> Path:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed on this machine")
    # verify checks that ExecStart's program exists: point it at one that does.
    true = shutil.which("true")
    assert true is not None
    text = re.sub(r"/opt/facegate/venv/bin/facegate", true, UNIT.read_text())
    p = tmp_path / "facegate.service"
    p.write_text(text)
    return p


def test_systemd_analyze_verify(analyzable):
    proc = subprocess.run(
        ["systemd-analyze", "verify", str(analyzable)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert "facegate.service" not in proc.stderr, proc.stderr  # no warnings about our unit


def test_security_exposure_is_low(analyzable):
    proc = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", str(analyzable)],
        capture_output=True,
        text=True,
    )
    m = re.search(r"Overall exposure level for facegate.service: ([0-9.]+)", proc.stdout)
    assert m, proc.stdout[-500:] + proc.stderr
    assert float(m.group(1)) <= 2.0


def test_install_script_installs_the_tested_versions():
    """install.sh pins what it installs to constraints.txt, the versions CI ran with."""
    from pathlib import Path

    script = (Path(__file__).resolve().parents[2] / "systemd" / "install.sh").read_text()
    pip_lines = [
        line
        for line in script.splitlines()
        if 'pip" install' in line and "--upgrade pip" not in line
    ]
    assert pip_lines and all('-c "$src/constraints.txt"' in line for line in pip_lines)
