"""The systemd unit: valid, notify-typed, fail-secure on any exit, and hardened."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[2] / "systemd" / "facegate.service"
BRIDGE_UNIT = UNIT.with_name("facegate-bridge.service")


def settings(unit: Path = UNIT) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in unit.read_text().splitlines():
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


def test_the_bridge_runs_apart_from_the_relay_with_the_network_and_hardened():
    s = settings(BRIDGE_UNIT)
    assert s["User"] == ["facegate-bridge"] and s["Group"] == ["facegate-bridge"]
    assert "SupplementaryGroups" not in s  # not in gpio: it cannot touch the relay
    assert s["ExecStart"][0].endswith(" bridge")
    assert "PrivateNetwork" not in s and "AF_INET" in s["RestrictAddressFamilies"][0]
    for key in ("NoNewPrivileges", "PrivateTmp", "ProtectHome", "PrivateDevices"):
        assert s[key] == ["yes"], key
    assert s["CapabilityBoundingSet"] == [""]
    daemon = settings()
    assert daemon["PrivateNetwork"] == ["yes"] and daemon["RestrictAddressFamilies"] == ["AF_UNIX"]


@pytest.fixture(params=[UNIT, BRIDGE_UNIT], ids=["daemon", "bridge"])
def analyzable(tmp_path, request) -> Path:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed on this machine")
    # verify checks that ExecStart's program exists: point it at one that does.
    true = shutil.which("true")
    assert true is not None
    text = re.sub(r"/opt/facegate/venv/bin/facegate", true, request.param.read_text())
    p = tmp_path / request.param.name
    p.write_text(text)
    return p


def test_systemd_analyze_verify(analyzable):
    proc = subprocess.run(
        ["systemd-analyze", "verify", str(analyzable)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert analyzable.name not in proc.stderr, proc.stderr  # no warnings about our unit


def test_security_exposure_is_low(analyzable):
    proc = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", str(analyzable)],
        capture_output=True,
        text=True,
    )
    m = re.search(
        rf"Overall exposure level for {re.escape(analyzable.name)}: ([0-9.]+)", proc.stdout
    )
    assert m, proc.stdout[-500:] + proc.stderr
    # The bridge needs the network, which costs it some points; it is still "OK".
    assert float(m.group(1)) <= (2.0 if analyzable.name == "facegate.service" else 3.5)


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


def test_the_bridge_may_open_more_descriptors_than_the_web_server_ever_holds():
    from edge.web.server import BACKLOG, LIMIT_CONCURRENCY, MAX_CONNECTIONS

    (limit,) = settings(BRIDGE_UNIT)["LimitNOFILE"]
    assert int(limit) >= 2 * (MAX_CONNECTIONS + LIMIT_CONCURRENCY + BACKLOG) + 1024
