"""Benchmark the household web app: the bridge's memory with and without it, and its pages' speed.

In: nothing (or ``--rounds N``).  Out: the resident memory (VmRSS, and its peak VmHWM) of
``facegate bridge`` serving only the daemon's socket (``web.enabled: false``) and serving the
web app, each next to the same daemon on the committed NUAA replay (tests/household.py); then
the app's pages timed as a browser would fetch them over HTTPS (p50 and max of N rounds), an
enrollment of five photos, and the memory after all of it (the report page loads matplotlib).

    .venv/bin/python tests/benchmarks/bench_web.py [--rounds 20]

A script, not a pytest test: timings on a shared machine are not assertions.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from household import VISITOR, HouseholdDoor, frames, make_replay

from edge.manifest import default_cache_dir


def rss_mb(pid: int) -> tuple[float, float]:
    fields = dict(
        line.split(":", 1)
        for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if ":" in line
    )
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def bridge_only_rss(model_dir: Path) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        door = HouseholdDoor(Path(tmp), model_dir)
        data = yaml.safe_load(door.yaml.read_text())
        data["web"]["enabled"] = False
        door.yaml.write_text(yaml.safe_dump(data))
        daemon = door._start("run", "--mock-gpio", "--replay", str(make_replay(door.tmp)), "--loop")
        sock = door.tmp / "bridge.sock"
        door._wait(sock.exists, daemon, "the daemon's socket")
        bridge = door._start("bridge")
        time.sleep(5.0)
        out = rss_mb(bridge.pid)
        door.stop()
        return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=20)
    args = ap.parse_args()
    import httpx

    model_dir = default_cache_dir()
    plain = bridge_only_rss(model_dir)
    with tempfile.TemporaryDirectory() as tmp:
        door = HouseholdDoor(Path(tmp), model_dir).start()
        try:
            bridge = door.procs[1]
            started = rss_mb(bridge.pid)
            client = httpx.Client(
                base_url=door.url, verify=str(door.web_dir / "tls.crt"), timeout=120
            )
            page = client.get("/login").text
            token = re.search(r'name="login_csrf" value="([^"]+)"', page)
            assert token
            client.post("/login", data={"login_csrf": token.group(1), "password": door.password})
            csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/enroll").text)
            assert csrf
            t0 = time.perf_counter()
            files = [
                ("photos", (p.name, p.read_bytes(), "image/jpeg")) for p in frames(VISITOR, "01")
            ]
            r = client.post("/enroll", data={"name": VISITOR, "csrf": csrf.group(1)}, files=files)
            enroll_s = time.perf_counter() - t0
            assert r.status_code == 200, r.text[-500:]
            time.sleep(3.0)  # a few attempts of the enrolled visitor reach the log
            timings: dict[str, list[float]] = {}
            for path in (
                "/",
                "/status/panel",
                "/people",
                "/review",
                "/report?period=all",
                "/report/plot/all/roc.png",
            ):
                for _ in range(args.rounds):
                    t = time.perf_counter()
                    assert client.get(path).status_code == 200, path
                    timings.setdefault(path, []).append(time.perf_counter() - t)
            after = rss_mb(bridge.pid)
        finally:
            door.stop()
    print(f"bridge without the web app:  RSS {plain[0]:.0f} MB (peak {plain[1]:.0f} MB)")
    at_start = f"RSS {started[0]:.0f} MB at start"
    print(
        f"bridge with the web app:     {at_start}, {after[0]:.0f} MB after every page (peak {after[1]:.0f} MB)"
    )
    print(
        f"enroll 5 photos (upload, daemon's checks and embedding, save): {enroll_s * 1000:.0f} ms"
    )
    for path, ts in timings.items():
        ms = np.array(ts) * 1000
        print(
            f"GET {path:28s} first {ms[0]:7.1f} ms   p50 {np.median(ms):6.1f} ms   max {ms.max():7.1f} ms"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
