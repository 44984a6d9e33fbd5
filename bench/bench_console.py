"""What the staff console costs and how fast it acts.

    python bench/bench_console.py [--runs 5] [--live 10]

History: a week of event log (a minute line a minute, a scene every 5 minutes, a restart a day, state changes)
read back, summarised for 24 hours and 7 days, and drawn; the median and worst of each step (in this process:
in the kiosk it runs on a worker thread of the supervisor).

``--live N``: a real kiosk on a private JACK server, heard by an independent receiver, paused and resumed N
times while notes sound: the HTTP round trip of POST /control/pause, the time from sending it to the last
note-off at the receiver, note-ons heard during 2.4 s of pause (from 0.1 s after the answer), and the time from sending resume to the first
note-on."""
from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import common  # noqa: F401,E402  (sys.path: the repository and tests/)
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


def live(cycles: int) -> None:
    import http.client
    import os
    from kiosk_parts import NO_CAMERA, Kiosk, first_note_on_after, open_notes_at, playing, silence_after
    from realtime_parts import JackServer, MidiReceiver, count_note_ons, is_note_on
    token = "bench-console-token"

    def post(k, action):
        c = http.client.HTTPConnection("127.0.0.1", k.status_port, timeout=10)
        try:
            c.request("POST", f"/control/{action}", headers={"Authorization": f"Bearer {token}"})
            r = c.getresponse()
            r.read()
            return r.status
        finally:
            c.close()

    jack = JackServer(name=f"itm-console-{os.getpid()}").start()
    rx = MidiReceiver(client_name="console-bench-rx").open()
    k = Kiosk("--port", rx.port_name, "--source", NO_CAMERA, "--seed", "7", "--status-token", token)
    rows = {"pause HTTP round trip": [], "pause -> silence at the receiver": [], "resume -> first note-on": []}
    heard_paused = 0
    try:
        k.start()
        k.wait_health(playing, token=token, timeout=120)
        for _ in range(cycles):
            time.sleep(2.0)                      # a rule of the test: rate limit 10 in 10 s, and music between
            assert rx.wait_until(lambda got: bool(open_notes_at([(0, m) for m in got], 1)), timeout=20)
            t0 = time.perf_counter()
            assert post(k, "pause") == 200
            t_resp = time.perf_counter()
            rows["pause HTTP round trip"].append(t_resp - t0)
            time.sleep(2.5)
            msgs = list(rx.messages)
            quiet = silence_after(msgs, t0)
            rows["pause -> silence at the receiver"].append(float("nan") if quiet is None else quiet)
            # paused: from 0.1 s after the answer (the thinker takes it a few ms after the supervisor answers)
            heard_paused += sum(at > t_resp + 0.1 and is_note_on(m) for at, m in msgs)
            t1 = time.perf_counter()
            assert post(k, "resume") == 200
            rx.wait_until(lambda got: first_note_on_after(list(rx.messages), t1) is not None, timeout=10)
            back = first_note_on_after(list(rx.messages), t1)
            rows["resume -> first note-on"].append(float("nan") if back is None else back - t1)
        print(f"{cycles} pause/resume cycles on a real kiosk; {count_note_ons(rx.received())} note-ons heard; "
              f"note-ons heard while paused: {heard_paused}; stuck notes at the end: ", end="")
    finally:
        k.stop()
        time.sleep(0.3)
        print(len(rx.unmatched_note_ons()))
        rx.close()
        jack.stop()
    for name, v in rows.items():
        print(f"{name:>33}: median {statistics.median(v) * 1e3:7.1f} ms, worst {max(v) * 1e3:7.1f} ms")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--live", type=int, default=0, help="pause/resume cycles on a real kiosk (0: none)")
    args = ap.parse_args()
    if args.live:
        live(args.live)
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
