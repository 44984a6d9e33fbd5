"""The note grid at an independent JACK receiver, in every mode, with a busy loop on the other core.

Every mode plays the same 48 s video of the artworks (640x480, embedded at 4
frames/s) for --seconds, while a `python -c "while True: pass"` holds a core:

- `play`            play's layout (bench/live.py): the sender process on its own SenderConfig, the
                    Engine in this process sending to it, as `run_installation.py play --port RX`
- `play --synth`    the same with FluidSynth in the sender process, its audio to JACK
- `kiosk`           run_installation.py kiosk --port RX (supervisor, thinker, sender)

The receiver is python-rtmidi on JACK in a process of its own (bench/receiver_proc.py) and
stamps every arrival with time.perf_counter (one clock for all processes). The engine's
pushes (due, message) are noted on their way to the sender (live.PushLog) and matched in
order with the arrivals (JACK keeps it). Reported, per mode:

- send error:   the sender's own figures (its scheduler's tick - due: p50, p99 over its last
                4096 messages, max over all), read over the link (the kiosk: its /health)
- arrival:      receiver arrival - due
- grid error:   |arrival - due - median(arrival - due)|: how far a note is from where the
                grid puts it, once the constant latency is taken out (what a listener hears)
- period floor: the grid error JACK's period alone puts there (an event written now is
                delivered at the start of the next period of 64 frames = 1.33 ms)

`--synth` has no MIDI to receive: its synth is inside the sender; its send error is the
sender's at FluidSynth's note calls. The kiosk's thinker is a process of its own, so only
the sender's figures are reported for it.

    python bench/bench_grid.py [--seconds 60] [--modes play,synth,kiosk] [--no-busy]
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import common
import live
from realtime_parts import JackServer

PERIOD_S = 64 / 48000


def _is_note(status: int) -> bool:
    return status & 0xE0 == 0x80


def figures(stats: dict, pushes: list | None, received: list | None, pushed_late: int | None = None) -> dict:
    """The sender's figures, and the pushed note messages (due, bytes) matched to the receiver's arrivals."""
    out = live.send_error(stats)
    out["pushed_after_due"] = pushed_late
    if pushes is None or received is None:
        return out
    log = [(due, msg) for due, msg in pushes if _is_note(msg[0])]
    arrivals = live.match_arrivals(log, received)
    ok = np.array([a is not None for a in arrivals], dtype=bool)
    nd = np.array([d for d, _ in log])[ok]
    ta = np.array([a for a in arrivals if a is not None])
    a_err = ta - nd
    grid = np.abs(a_err - np.median(a_err))
    out.update({
        "notes_pushed": len(log), "notes_received": sum(1 for _, m in received if m and _is_note(m[0])),
        "notes_matched": int(len(ta)),
        "arrival_minus_due_ms": common.summary(a_err, 1e3),
        "grid_error_ms": common.summary(grid, 1e3),
        "grid_over_0_5ms": int((grid > 0.0005).sum()),
    })
    # The part JACK's period puts there whatever the sender does: a message sent at a uniformly random
    # moment waits U(0, period) for its cycle. The same deviation for the notes of this run, if each had
    # gone out exactly at its due time and arrived at the next period boundary (phase from the arrivals).
    phase = float(np.median(np.mod(ta, PERIOD_S)))
    ideal = np.ceil((nd - phase) / PERIOD_S) * PERIOD_S + phase - nd
    out["period_floor_grid_ms"] = common.summary(np.abs(ideal - np.median(ideal)), 1e3)
    return out


class Probe:
    """bench/fifo_probe.py beside a mode: when the machine held back a SCHED_FIFO thread that only sleeps."""

    def __enter__(self) -> "Probe":
        self.proc = subprocess.Popen([sys.executable, str(common.BENCH / "fifo_probe.py"), "3600"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        return self

    def finish(self) -> dict:
        import json
        out, _ = self.proc.communicate("", timeout=30)
        return json.loads(out)

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def run_play(models, video: Path, seconds: float, seed: int, rx_port: str | None, synth: bool):
    """play's layout in this process (live.play_engine): returns the sender's figures and the engine's PushLog."""
    from installation.image.capture import VideoFileSource
    synth_kw = {}
    if synth:
        from installation.midi.synth import find_soundfont
        synth_kw["synth"] = {"soundfont": str(find_soundfont(None)), "driver": "jack", "gain": 0.5}
    source = VideoFileSource(video)
    source.open()
    eng, sender = live.play_engine(models, source, live.settings(port=None if synth else rx_port, seed=seed),
                                   **synth_kw)
    stats = live.run(eng, sender, seconds)
    return stats, eng.scheduler


def run_kiosk(video: Path, seconds: float, seed: int, rx_port: str) -> dict:
    """The kiosk as it ships; the sender's figures as its /health reports them just before the stop."""
    from kiosk_parts import Kiosk, playing
    with Kiosk("--port", rx_port, "--source", str(video), "--seed", str(seed)) as k:
        k.wait_health(playing)
        time.sleep(seconds)
        h = k.health()
        assert k.stop() == 0, k.output()[-2000:]
    return {"lateness_p99": None if h["lateness_p99_ms"] is None else h["lateness_p99_ms"] / 1e3, "sent": h["sent"]}


def main() -> None:
    ap = common.parser(__doc__)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--modes", default="play,synth,kiosk")
    ap.add_argument("--no-busy", action="store_true", help="no busy loop on the other core")
    args = ap.parse_args()
    seconds = 10.0 if args.quick else args.seconds
    modes = [m for m in args.modes.split(",") if m]
    models = common.load_models(args.models)
    busy = None if args.no_busy else subprocess.Popen([sys.executable, "-c", "while True: pass"])
    res = {"benchmark": "grid", "machine": common.machine(), "busy_at_start": common.warn_if_busy(),
           "busy_loop": busy is not None, "seconds": seconds, "modes": {}}
    video = live.bench_video(common.RESULTS / "artworks_48s_640x480.avi")
    try:
        with JackServer(rate=48000, period=64):
            for mode in modes:
                log = None
                with common.ReceiverProcess(f"grid-rx-{mode}") as rx, Probe() as probe:
                    if mode == "kiosk":
                        stats = run_kiosk(video, seconds, args.seed, rx.port_name)
                    else:
                        stats, log = run_play(models, video, seconds, args.seed, rx.port_name,
                                                 synth=mode == "synth")
                    received = rx.finish()
                    platform = probe.finish()
                r = res["modes"][mode] = figures(stats, None if log is None else log.pushes, None if mode == "synth" else received,
                                                 None if log is None else log.pushed_late)
                r["platform_probe"] = {k: v for k, v in platform.items() if k != "stalls"}
                lat = r["sender_lateness_ms"]
                print(f"    platform: a SCHED_FIFO thread that only sleeps woke > 1 ms late {platform['over_1ms']} "
                      f"times (max {platform['max_ms']:.1f} ms)")
                print(f"{mode + ': send error (the sender)':<46} " + "  ".join(
                    f"{k} {v:8.3f}" for k, v in lat.items() if v is not None) + f" ms  (sent {r['sent']})")
                if log is not None:
                    print(f"    {log.pushed_late} messages pushed after their due time (the thinker behind)")
                if "grid_error_ms" in r:
                    print(common.line(f"{mode}: grid error at the receiver", r["grid_error_ms"]))
                    print(common.line(f"{mode}:   JACK period floor", r["period_floor_grid_ms"]))
    finally:
        if busy is not None:
            busy.kill()
            busy.wait()
    common.write_result("grid", res, args.out)


if __name__ == "__main__":
    main()
