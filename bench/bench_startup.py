"""Start-up time to the first note, and peak resident memory, of `run_installation.py play` as a real process.

Each run: time.perf_counter() just before the process is spawned; the first
note-on's arrival at an independent JACK MIDI receiver (its own process,
perf_counter = CLOCK_MONOTONIC, the same clock) ends the interval. The
process's own log lines (stderr, stamped here as they arrive) split it into:
interpreter + imports + opening the source (``source:`` line), opening the
MIDI output (``output:``), loading and checking the models and starting the
threads (``playing``; the first note is due 0.25 s later by design,
EngineConfig.start_delay_s). Peak RSS is ru_maxrss from os.wait4 on that one
process (the kernel's high-water mark, VmHWM, at exit).
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import numpy as np

import common
import live

MARKS = {"source": "source:", "output": "output:", "playing": "playing"}


def _s(x) -> str:
    return "-" if x is None else f"{x:.3f} s"


def one_run(models: str | None, video, seed: int, duration: float) -> dict:
    with common.ReceiverProcess() as rx:
        cmd = [sys.executable, str(common.REPO / "run_installation.py"), "play", "--midi-api", "jack",
               "--port", rx.port_name, "--source", str(video), "--duration", str(duration), "--seed", str(seed)]
        if models:
            cmd += ["--models", models]
        lines: list[tuple[float, str]] = []
        t_spawn = time.perf_counter()
        p = subprocess.Popen(cmd, cwd=common.REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

        def read():
            for ln in p.stderr:
                lines.append((time.perf_counter(), ln.rstrip()))
        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        reader.join(5)
        received = rx.finish()
    if p.returncode != 0:
        raise RuntimeError(f"play exited {p.returncode}: " + "\n".join(l for _, l in lines[-10:]))
    ons = common.note_ons(received)
    out = {"command": " ".join(cmd), "peak_rss_mib": ru.ru_maxrss / 1024,
           "cpu_user_s": ru.ru_utime, "cpu_sys_s": ru.ru_stime,
           "to_first_note_s": (ons[0][0] - t_spawn) if ons else None, "note_ons": len(ons)}
    for key, text in MARKS.items():
        hit = next((t for t, l in lines if text in l), None)
        out[f"to_{key}_line_s"] = None if hit is None else hit - t_spawn
    return out


def main() -> None:
    ap = common.parser(__doc__)
    ap.add_argument("--runs", type=int, default=6, help="the first is reported apart as 'first run'")
    ap.add_argument("--duration", type=float, default=4.0)
    args = ap.parse_args()
    runs = 2 if args.quick else args.runs
    busy = common.warn_if_busy()
    from realtime_parts import JackServer

    common.load_models(args.models)          # fail early on a bad folder
    video = live.bench_video(common.RESULTS / "artworks_48s_640x480.avi")
    rows = []
    with JackServer(rate=48000, period=64):
        for i in range(runs):
            r = one_run(args.models, video, seed=i, duration=args.duration)
            rows.append(r)
            marks = ", ".join(f"{k} line {_s(r[f'to_{k}_line_s'])}" for k in MARKS)
            print(f"run {i + 1}: first note {_s(r['to_first_note_s'])} ({marks}); peak RSS {r['peak_rss_mib']:.0f} MiB")
    res = {"benchmark": "startup", "machine": common.machine(), "busy_at_start": busy,
           "models": common.models_label(args.models), "video": video.name, "runs": rows,
           "to_first_note_s": common.summary([r["to_first_note_s"] for r in rows]),
           "to_first_note_s_after_first": common.summary([r["to_first_note_s"] for r in rows[1:]]),
           "peak_rss_mib": common.summary([r["peak_rss_mib"] for r in rows])}
    for k in ("source", "output", "playing"):
        res[f"to_{k}_line_s"] = common.summary([r[f"to_{k}_line_s"] for r in rows if r[f"to_{k}_line_s"] is not None])
    print(common.line("start -> first note-on at the receiver", res["to_first_note_s"], "s"))
    for k in ("source", "output", "playing"):
        print(common.line(f"  start -> '{MARKS[k]}' log line", res[f"to_{k}_line_s"], "s"))
    print(common.line("peak RSS", res["peak_rss_mib"], "MiB"))
    res["aim"] = {"what": "start -> first note <= 3 s", "met": res["to_first_note_s"]["max"] <= 3.0}
    print(f"aim <= 3 s: {'met' if res['aim']['met'] else 'NOT met'} (worst {res['to_first_note_s']['max']:.2f} s)")
    common.write_result("startup", res, args.out)


if __name__ == "__main__":
    main()
