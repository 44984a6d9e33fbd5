"""What the staff console's history costs: a week of event log (a minute line a minute, a scene every 5 minutes,
a restart a day, state changes) read back, summarised for 24 hours and 7 days, and drawn.

    python bench/bench_console.py [--runs 5]

Prints the log's size and the median and worst of each step (seconds, on this machine, in this process:
in the kiosk it runs on a worker thread of the supervisor, at most once per 10 s)."""
from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from installation.kiosk import history          # noqa: E402
from installation.kiosk.eventlog import EventLog  # noqa: E402


def week_of_log(path: Path, now: float) -> int:
    t0 = now - 7 * 86400
    lines = []

    def add(t, event, **f):
        lines.append(json.dumps({"t": dt.datetime.fromtimestamp(t).astimezone().isoformat(timespec="milliseconds"),
                                 "event": event, **f}))
    add(t0, "kiosk", value="started")
    add(t0 + 1, "state", value="playing")
    for i in range(7 * 24 * 60):
        t = t0 + 60 * (i + 1)
        add(t, "minute", s=60.0, state="playing", notes=300 + i % 97, lateness_p99_ms=0.1 + (i % 13) / 100,
            valence=round((i % 200) / 100 - 1, 3), arousal=round((i % 150) / 75 - 1, 3))
        if i % 5 == 0:
            add(t + 1, "scene", scene=i // 5, picture=f"{i % 24:02d}_artwork.jpg", valence=0.1, arousal=-0.2)
        if i % 1440 == 700:
            add(t + 2, "program", program="thinker", old="running", new="starting",
                reason="restart after killed by signal 9; pid 4242", restarts=i // 1440 + 1)
            add(t + 2, "state", value="recovering")
            add(t + 4, "state", value="playing")
    path.write_text("\n".join(lines) + "\n")
    return len(lines)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "kiosk.jsonl"
        now = time.time()
        n = week_of_log(path, now)
        events = EventLog(str(path), 64, 0)
        steps = {"read": [], "summary 24 h": [], "summary 7 d": [], "charts": []}
        for _ in range(args.runs):
            t = time.perf_counter()
            recs = history.records(events, now - 7 * 86400 - 60)
            steps["read"].append(time.perf_counter() - t)
            t = time.perf_counter()
            day = history.summary(recs, now, 24)
            steps["summary 24 h"].append(time.perf_counter() - t)
            t = time.perf_counter()
            week = history.summary(recs, now, 168)
            steps["summary 7 d"].append(time.perf_counter() - t)
            t = time.perf_counter()
            html = history.charts(day, week)
            steps["charts"].append(time.perf_counter() - t)
        events.close()
        print(f"a week of event log: {n} lines, {path.stat().st_size / 1e6:.2f} MB; charts {len(html) / 1e3:.0f} kB "
              f"of HTML; {len(week['restarts'])} restarts")
        for k, v in steps.items():
            print(f"{k:>13}: median {statistics.median(v) * 1e3:7.1f} ms, worst {max(v) * 1e3:7.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
