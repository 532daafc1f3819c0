"""Benchmark tools/report on synthetic decision logs: speed and memory at 200k and 1M decisions.

In: nothing (or ``--sizes 200000 1000000``, ``--keep DIR``).  Out: for each
size, a synthetic log in the daemon's schema (a live decisions.jsonl plus
gzipped rotated parts, NUAA-style sources so every record is labelled), the
report run on it in a fresh child process, and its wall time, records/s and
peak RSS (resource.getrusage in the child).  Memory should stay flat: the
report keeps a few bytes per decision in typed columns, never the records.

    .venv/bin/python tests/benchmarks/bench_report.py

A script, not a pytest test: writing and reading a million decisions is too slow for the suite.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
ENROLLED = ["0001", "0002", "0003", "0004", "0005"]
STRANGERS = ["0006", "0007", "0008", "0009", "0010"]
PARTS = 5  # 4 rotated .gz files + the live log
T0 = 1_704_067_200.0  # 2024-01-01T00:00:00Z


def _line(
    i: int,
    t: float,
    kind: int,
    subj: str,
    score: float,
    second_score: float,
    reason: str,
    best: str,
    second: str,
) -> str:
    unlock = reason == "accepted"
    person = best if reason in ("accepted", "unknown_face", "ambiguous") else None
    folder = "ImposterRaw" if kind == 2 else "ClientRaw"
    sources = ",".join(
        f'"/data/nuaa/{folder}/{subj}/{subj}_00_00_01_{i % 500 + f}.jpg"' for f in range(5)
    )
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"
    return (
        f'{{"schema":1,"event_id":"{i:016x}","time":"{stamp}","unix_time":{t:.4f},'
        f'"decision":"{"unlock" if unlock else "deny"}","reason":"{reason}",'
        f'"person":{json.dumps(person)},"best":"{best}","best_score":{score:.4f},'
        f'"second":"{second}","second_score":{second_score:.4f},"threshold":0.6,"min_margin":0.1,'
        f'"frames_used":5,"frames_matched":{4 if unlock else 1},"track_id":{i % 9973},'
        f'"quality":{{"face_px":141.0,"sharpness":88.1,"brightness":120.5,"contrast":40.2,"yaw":3.1,'
        f'"pitch":-2.0,"roll":1.2}},"liveness":null,"model_sha256":"{"f" * 64}","camera":"picamera2:0",'
        f'"sources":[{sources}],"snapshot":"/var/lib/facegate/snapshots/2024-01-01/{i:016x}.jpg"}}\n'
    )


def _reason(quality: float, s: float, s2: float) -> str:
    """The daemon's reason (threshold 0.6, min_margin 0.1): a few poor or locked-out attempts, else the scores."""
    if quality < 0.05:
        return "low_quality"
    if quality < 0.06:
        return "locked_out"
    if s >= 0.6 and s - s2 >= 0.1:
        return "accepted"
    if s >= 0.6:
        return "ambiguous"
    return "unknown_face"


def generate(n: int, directory: Path, seed: int = 0) -> Path:
    """A log of n decisions over ~26 weeks: 60% genuine, 30% strangers, 10% photo attacks."""
    rng = np.random.default_rng(seed)
    kind = rng.choice(3, size=n, p=[0.6, 0.3, 0.1])  # 0 genuine, 1 stranger, 2 attack
    who = rng.integers(0, 5, size=n)
    mean = np.array([0.74, 0.30, 0.52])[kind]
    score = np.clip(rng.normal(mean, 0.09), -1, 1).round(4)
    second = np.clip(score - np.abs(rng.normal(0.3, 0.12, size=n)), -1, 1).round(4)
    quality = rng.random(n)
    t = T0 + np.sort(rng.random(n)) * 26 * 7 * 86400
    names = [f"subject{s}" for s in ENROLLED]
    directory.mkdir(parents=True, exist_ok=True)
    live = directory / "decisions.jsonl"
    bounds = np.linspace(0, n, PARTS + 1).astype(int)
    for part in range(PARTS):
        number = PARTS - 1 - part  # oldest part gets the highest number
        path = live if number == 0 else directory / f"decisions.jsonl.{number}.gz"
        with open(path, "wb") if number == 0 else gzip.open(path, "wb", compresslevel=1) as out:
            lines: list[str] = []
            for i in range(bounds[part], bounds[part + 1]):
                k = int(kind[i])
                subj = ENROLLED[who[i]] if k != 1 else STRANGERS[who[i]]
                best = f"subject{subj}" if k != 1 else names[who[i]]
                other = names[(who[i] + 1) % 5]
                s, s2 = float(score[i]), float(second[i])
                reason = _reason(float(quality[i]), s, s2)
                lines.append(_line(i, float(t[i]), k, subj, s, s2, reason, best, other))
                if len(lines) == 10_000:
                    out.write("".join(lines).encode())
                    lines.clear()
            out.write("".join(lines).encode())
    return live


def child(log: Path, out: Path) -> None:
    """Run the report in this process and print its figures as JSON (the parent reads the last line)."""
    from tools.report.__main__ import main

    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    code = main(
        [
            str(log),
            "--labels-from-sources",
            "nuaa",
            "--enrolled",
            ",".join(ENROLLED),
            "--outdir",
            str(out),
            "--quiet",
        ]
    )
    wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"code": code, "wall": wall, "baseline_kb": baseline, "peak_kb": peak}))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--sizes", type=int, nargs="+", default=[200_000, 1_000_000])
    ap.add_argument("--keep", type=Path, help="keep the logs and reports in this folder")
    ap.add_argument("--child", nargs=2, type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--generate", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(*args.child)
        return 0
    if args.generate:
        generate(int(args.generate[0]), Path(args.generate[1]))
        return 0
    work = args.keep or Path(tempfile.mkdtemp(prefix="facegate-bench-report-"))
    results = []
    for n in args.sizes:
        d = work / f"n{n}"
        t = time.perf_counter()
        # In child processes: Linux carries a parent's peak RSS into a forked
        # child's ru_maxrss, so this process must stay small for the figures to be the report's own.
        subprocess.run([sys.executable, __file__, "--generate", str(n), str(d / "log")], check=True)
        log = d / "log" / "decisions.jsonl"
        size = sum(p.stat().st_size for p in (d / "log").iterdir())
        print(
            f"{n:>9,} decisions: generated in {time.perf_counter() - t:.1f} s ({size / 1e6:.0f} MB on disk, "
            f"{PARTS - 1} rotated parts gzipped)",
            flush=True,
        )
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        proc = subprocess.run(
            [sys.executable, __file__, "--child", str(log), str(d / "report")],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=env,
        )
        if proc.returncode != 0:
            print(proc.stderr[-3000:], file=sys.stderr)
            return 1
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        if r["code"] != 0:
            print(proc.stderr[-3000:], file=sys.stderr)
            return 1
        results.append((n, r))
        print(
            f"{n:>9,} decisions: report in {r['wall']:.1f} s = {n / r['wall']:,.0f} records/s; "
            f"peak RSS {r['peak_kb'] / 1024:.0f} MB (after imports {r['baseline_kb'] / 1024:.0f} MB)",
            flush=True,
        )
    if len(results) > 1:
        (n0, a), (n1, b) = results[0], results[-1]
        print(
            f"peak RSS {a['peak_kb'] / 1024:.0f} MB at {n0:,} vs {b['peak_kb'] / 1024:.0f} MB at {n1:,}: "
            f"{(b['peak_kb'] - a['peak_kb']) / 1024:+.0f} MB for {n1 - n0:,} more decisions "
            f"({(b['peak_kb'] - a['peak_kb']) * 1024 / max(n1 - n0, 1):.0f} bytes each)"
        )
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
