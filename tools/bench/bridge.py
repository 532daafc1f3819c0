"""The MQTT bridge's cost to the door, and its speed: one run, with and without it.

Replays the committed NUAA samples (attempts with empty frames between them, repeated)
through ``facegate run`` as systemd runs it, first without the bridge, then with
``mqtt.enabled``, ``facegate bridge`` and a local Mosquitto (Debian's, on 127.0.0.1), and
prints the daemon's frames per second both ways and, for every decision, the latency from the
decision (its ``unix_time``) to its event arriving at an MQTT subscriber: p50 and p99.

    python -m tools.bench.bridge [--repeat 8]
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from edge.cli import setup_logging
from edge.config import load_config
from tools import nuaa, replay
from tools.bench.daemon import run_daemon
from tools.demo import DEMO_CONFIG, ENROLLED, SAMPLES


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _broker(work: Path) -> tuple[subprocess.Popen[bytes], int]:
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    port = _free_port()
    conf = work / "mosquitto.conf"
    conf.write_text(
        f"user root\npersistence false\nallow_anonymous true\nlistener {port} 127.0.0.1\n"
    )
    proc = subprocess.Popen(
        [exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("mosquitto did not start")


class Latencies:
    """Subscribes to the door's events and keeps receive time minus decision time."""

    def __init__(self, port: int, topic: str) -> None:
        import paho.mqtt.client as mqtt

        self.ms: list[float] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench")
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(topic, qos=1)
        self.client.loop_start()

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        body = json.loads(msg.payload)
        if isinstance(body.get("time"), (int, float)):
            with self._lock:
                self.ms.append(1000 * (time.time() - body["time"]))

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("-c", "--config", default=str(DEMO_CONFIG))
    ap.add_argument("--repeat", type=int, default=8, help="times the sample attempts are replayed")
    args = ap.parse_args(argv)
    setup_logging(30)
    work = Path(tempfile.mkdtemp(prefix="facegate-bridge-bench-"))
    config = replay.replay_config(load_config(args.config), work)
    people, attempts = nuaa.split(SAMPLES, ENROLLED)
    replay.enroll_all(config, people)
    blank = nuaa.write_blank(work / "blank.jpg")
    # Two seconds of an empty porch first: the bridge has connected before the first decision.
    frames = [blank] * 240 + nuaa.playlist(attempts * args.repeat, blank, gap_frames=30)
    src = work / "replay"
    src.mkdir()
    for i, f in enumerate(frames):
        (src / f"{i:06d}.jpg").symlink_to(f)
    raw = yaml.safe_load(Path(args.config).read_text()) or {}
    raw["gallery"] = {"path": config.gallery.path}
    raw["log"] = {"decisions": config.log.decisions}
    raw["camera"] = {"fps": 120.0}  # the top of the config's range: throughput, not pacing
    # Short tracks, so that each attempt is decided and the next one starts after its gap.
    raw["policy"] = {**raw.get("policy", {}), "lockout_attempts": 1000, "track_timeout_s": 0.15}
    broker, port = _broker(work)
    mqtt = {
        "enabled": True,
        "door_id": "bench",
        "socket": str(work / "bridge.sock"),
        "host": "127.0.0.1",
        "port": port,
    }
    try:
        results = {}
        for label, extra in (("without the bridge", {}), ("with the bridge", {"mqtt": mqtt})):
            conf = work / "bench.yaml"
            conf.write_text(yaml.safe_dump({**raw, **extra}))
            bridge = watch = None
            if extra:
                watch = Latencies(port, "facegate/bench/event")
                bridge = subprocess.Popen(
                    [sys.executable, "-m", "edge", "-c", str(conf), "bridge"],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            run = run_daemon(conf, src)
            results[label] = (run.wall, run.frames, run.decisions)
            if bridge is not None and watch is not None:
                time.sleep(1.0)  # the last events' way to the subscriber
                bridge.terminate()
                bridge.wait(timeout=20)
                watch.close()
                ms = np.array(watch.ms)
            wall, n, decisions = results[label]
            print(
                f"daemon {label}: {n} frames in {wall:.1f} s wall (with start-up) = "
                f"{n / wall:.1f} fps; {decisions} decisions"
            )
        base = results["without the bridge"]
        with_b = results["with the bridge"]
        print(
            f"frame rate with / without the bridge: {(with_b[1] / with_b[0]) / (base[1] / base[0]):.3f}"
        )
        if len(ms):
            print(
                f"decision -> MQTT event: {len(ms)} events of {with_b[2]} decisions; "
                f"p50 {np.percentile(ms, 50):.1f} ms, p99 {np.percentile(ms, 99):.1f} ms, max {ms.max():.1f} ms"
            )
    finally:
        broker.terminate()
        broker.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
