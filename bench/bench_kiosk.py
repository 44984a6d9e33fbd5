"""Kiosk mode: send error with the two-process layout, kill-to-silence, and a soak.

1. Send error (sender process): the kiosk plays with a 48 s video of the artworks
   as its camera (embedded at 4 frames/s by the thinker) to a JACK port read by a
   receiver in a process of its own; the sender's own lateness p99 (its scheduler's
   tick minus due, over its last 4096 messages) as the kiosk's /health reports it at
   the end. The sender at normal priority, and with SCHED_FIFO 10 (the default,
   --sender-priority).
2. Kill-to-silence: SIGKILL the thinker, the sender, or both, each while a note
   sounds; per kill, the receiver's time from the kill until no note sounds, and
   until the next note-on (music again). The receiver is in this process (idle
   otherwise, so its callback is not held up by a busy GIL).
3. Soak: the kiosk plays the attract slideshow for --soak-seconds; every 10 s the
   resident memory, threads and file descriptors of the supervisor and both
   children; the RSS slope (least squares, after a 60 s warm-up); notes left
   sounding at the end.

    python bench/bench_kiosk.py [--send-seconds 60] [--kills 5] [--soak-seconds 3600] [--quick]
"""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np

import common
import live
from kiosk_parts import NO_CAMERA, Kiosk, first_note_on_after, open_notes_at, playing, silence_after, soak
from realtime_parts import JackServer, MidiReceiver, count_note_ons


def send_error(video: Path, seconds: float, seed: int, priority: int = 0) -> dict:
    with common.ReceiverProcess() as rx:
        with Kiosk("--port", rx.port_name, "--source", str(video), "--seed", str(seed),
                   "--sender-priority", str(priority)) as k:
            k.wait_health(playing)
            time.sleep(seconds)
            h = k.health()
            assert k.stop() == 0, k.output()[-2000:]
        received = rx.finish()
    return {"seconds": seconds, "sender_priority": priority, "sent": h["sent"], "received": len(received),
            "sender_lateness_p99_ms": h["lateness_p99_ms"],
            "fps": h["fps"], "events_per_s": h["events_per_s"], "restarts": h["restarts"]}


def kills(n: int, seed: int) -> dict:
    out = {}
    with MidiReceiver(client_name="bench-kill-rx") as rx:
        with Kiosk("--port", rx.port_name, "--source", NO_CAMERA, "--seed", str(seed)) as k:
            k.wait_health(playing)
            for roles in (("thinker",), ("sender",), ("thinker", "sender")):
                times = []
                for _ in range(n):
                    k.wait_health(playing, timeout=60)
                    base = count_note_ons(rx.received())
                    assert rx.wait_until(lambda got: count_note_ons(got) >= base + 3, timeout=30)
                    assert rx.wait_until(lambda got: bool(open_notes_at([(0, m) for m in got], 1)), timeout=20)
                    pids = k.pids()
                    t_kill = time.perf_counter()
                    for role in roles:
                        os.kill(pids[role], signal.SIGKILL)
                    times.append(t_kill)
                    time.sleep(6.0)
                msgs = list(rx.messages)
                quiet = [silence_after(msgs, t) for t in times]
                back = [(first_note_on_after(msgs, t + (q or 0)) or np.nan) - t for t, q in zip(times, quiet)]
                out["+".join(roles)] = {
                    "kills": n, "never_silent": sum(q is None for q in quiet),
                    "silence_ms_each": [None if q is None else round(q * 1e3, 1) for q in quiet],
                    "sounding_at_kill": [len(open_notes_at(msgs, t)) for t in times],
                    "kill_to_silence_ms": common.summary([q for q in quiet if q is not None], 1e3),
                    "kill_to_music_s": common.summary([b for b in back if b == b]),
                }
                print(f"--- SIGKILL {'+'.join(roles)} x{n}: " + common.line("silence", out["+".join(roles)]["kill_to_silence_ms"]))
                print(common.line("  music again", out["+".join(roles)]["kill_to_music_s"], "s"))
            out["panic_log"] = [line for line in k.output().splitlines() if " panic " in line or "error" in line]
            assert k.stop() == 0
        time.sleep(0.3)
        out["unmatched_at_end"] = len(rx.unmatched_note_ons())
    return out


def soak_run(seconds: float) -> dict:
    with MidiReceiver(client_name="bench-soak-rx") as rx:
        with Kiosk("--port", rx.port_name, "--source", NO_CAMERA, "--slide-seconds", "20") as k:
            k.wait_health(playing)
            res = soak(k, seconds, every=10.0, warmup=min(60.0, seconds / 4))
            h = k.health()
            assert k.stop() == 0
        time.sleep(0.3)
        return {"seconds": seconds, "processes": res, "restarts": h["restarts"], "last_error": h["last_error"],
                "notes_played": count_note_ons(rx.received()), "unmatched_at_end": len(rx.unmatched_note_ons()),
                "lateness_p99_ms_at_end": h["lateness_p99_ms"]}


def main() -> None:
    ap = common.parser(__doc__)
    ap.add_argument("--send-seconds", type=float, default=60.0)
    ap.add_argument("--kills", type=int, default=5, help="kills of each kind")
    ap.add_argument("--soak-seconds", type=float, default=3600.0)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--skip", default="", help="comma-separated parts to skip: send, kill, soak")
    args = common.parse(ap, send_seconds=10.0, kills=1, soak_seconds=60.0)
    skip = set(filter(None, args.skip.split(",")))
    res = {"benchmark": "kiosk", "machine": common.machine(), "busy_at_start": common.warn_if_busy()}
    video = live.bench_video(common.RESULTS / "artworks_48s_640x480.avi")
    with JackServer(rate=48000, period=64):
        if "send" not in skip:
            r = res["send"] = {"normal": send_error(video, args.send_seconds, args.seed, priority=0),
                               "fifo": send_error(video, args.send_seconds, args.seed, priority=10)}
            for name in ("normal", "fifo"):
                print(f"send error, sender at {name} priority: p99 {r[name]['sender_lateness_p99_ms']} ms "
                      f"({r[name]['sent']} sent, {r[name]['received']} received)")
        if "kill" not in skip:
            res["kill"] = kills(args.kills, args.seed)
        if "soak" not in skip:
            s = res["soak"] = soak_run(args.soak_seconds)
            for role, v in s["processes"].items():
                print(f"--- soak {role}: RSS {v['rss_mib_first']:.1f} -> {v['rss_mib_last']:.1f} MiB "
                      f"(slope {v['rss_mib_per_hour']:+.2f} MiB/h), threads {v['threads']}, fds {v['fds']}")
            print(f"    notes {s['notes_played']}, left sounding {s['unmatched_at_end']}, restarts {s['restarts']}")
    common.write_result("kiosk", res, args.out)


if __name__ == "__main__":
    main()
