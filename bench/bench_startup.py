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

Each run ends with SIGTERM (``--duration`` s after the spawn): the time from
the signal to the arrival of the last all-sound-off (CC120, sent after every
note-off and CC123) at the receiver, and the notes left sounding (note-ons
without their note-off) are recorded.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import common
import live

MARKS = {"source": "source:", "output": "output:", "playing": "playing"}


def _s(x) -> str:
    return "-" if x is None else f"{x:.3f} s"


def one_run(models: str | None, video, seed: int, duration: float) -> dict:
    """Spawn `play`, send it SIGTERM ``duration`` s later; times are perf_counter (CLOCK_MONOTONIC)."""
    with common.ReceiverProcess() as rx:
        cmd = [sys.executable, str(common.REPO / "run_installation.py"), "play", "--midi-api", "jack",
               "--port", rx.port_name, "--source", str(video), "--duration", str(duration + 30), "--seed", str(seed)]
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
        time.sleep(max(0.0, t_spawn + duration - time.perf_counter()))
        t_sig = time.perf_counter()
        p.send_signal(signal.SIGTERM)
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
    # SIGTERM -> silence: the all-sound-off (CC120) that ends the shutdown, and notes left open
    cc120 = [t for t, m in received if len(m) == 3 and m[0] & 0xF0 == 0xB0 and m[1] == 120 and t >= t_sig]
    out["sigterm_to_all_sound_off_s"] = (cc120[-1] - t_sig) if cc120 else None
    open_notes: dict = {}
    for _, m in received:
        if len(m) == 3 and m[0] & 0xF0 in (0x80, 0x90):
            key = (m[0] & 0x0F, m[1])
            if m[0] & 0xF0 == 0x90 and m[2] > 0:
                open_notes[key] = open_notes.get(key, 0) + 1
            elif open_notes.get(key):
                open_notes[key] -= 1
    out["notes_left_sounding"] = sum(open_notes.values())
    for key, text in MARKS.items():
        hit = next((t for t, l in lines if text in l), None)
        out[f"to_{key}_line_s"] = None if hit is None else hit - t_spawn
    return out


def main() -> None:
    ap = common.parser(__doc__)
    ap.add_argument("--runs", type=int, default=6, help="the first is reported apart as 'first run'")
    ap.add_argument("--duration", type=float, default=4.0, help="seconds from spawn to SIGTERM")
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
    res["sigterm_to_all_sound_off_ms"] = common.summary(
        [r["sigterm_to_all_sound_off_s"] for r in rows if r["sigterm_to_all_sound_off_s"] is not None], 1000)
    res["notes_left_sounding"] = sum(r["notes_left_sounding"] for r in rows)
    print(common.line("SIGTERM -> last all-sound-off at the receiver", res["sigterm_to_all_sound_off_ms"]))
    print(f"notes left sounding after SIGTERM, all runs: {res['notes_left_sounding']}")
    res["aim_shutdown"] = {"what": "SIGTERM -> note-offs, CC123, CC120 within 50 ms",
                           "met": res["sigterm_to_all_sound_off_ms"].get("max", 1e9) <= 50
                           and res["notes_left_sounding"] == 0}
    res["aim"] = {"what": "start -> first note <= 3 s", "met": res["to_first_note_s"]["max"] <= 3.0}
    print(f"aim <= 3 s: {'met' if res['aim']['met'] else 'NOT met'} (worst {res['to_first_note_s']['max']:.2f} s)")
    common.write_result("startup", res, args.out)


if __name__ == "__main__":
    main()
