"""The note grid at an independent JACK receiver, in every mode, with a busy loop on the other core.

Every mode plays the same 48 s video of the artworks (640x480, embedded at 4
frames/s) for --seconds, while a `python -c "while True: pass"` holds a core:

- `play`            run_installation.py play --port RX (notes through the sender process)
- `play --synth`    the same with FluidSynth in the sender process, its audio to JACK
- `kiosk`           run_installation.py kiosk --port RX (supervisor, thinker, sender)
- `in-process`      the old single-process path, for comparison: the Engine with its own
                    Scheduler in this script's process (bench/live.py), to the same receiver

Each sender logs (due, clock at the send call, status) for every message (ITM_SEND_LOG,
installation/midi/sender.py). The receiver is python-rtmidi on JACK in a process of its
own (bench/receiver_proc.py) and stamps every arrival with time.perf_counter (one clock
for all processes). Note messages are matched in order (JACK keeps it). Reported, per mode:

- send error:   send call - due (what the sender controls)
- arrival:      receiver arrival - due
- grid error:   |arrival - due - median(arrival - due)|: how far a note is from where the
                grid puts it, once the constant latency is taken out (what a listener hears)
- transport:    arrival - send call (JACK: an event written now is delivered at the start of
                the next period of 64 frames = 1.33 ms; python-rtmidi cannot stamp a frame)

`--synth` has no MIDI to receive: its synth is inside the sender. Its send error is the
error at FluidSynth's note calls; FluidSynth then renders in blocks of 64 samples.

    python bench/bench_grid.py [--seconds 60] [--modes play,synth,kiosk,in-process] [--no-busy]
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import common
import live
from realtime_parts import JackServer

PERIOD_S = 64 / 48000


def _is_note(status: int) -> bool:
    return status & 0xE0 == 0x80


def figures(sends: np.ndarray, received: list) -> dict:
    """Match the note messages of a send log (due, sent, status) to the receiver's arrivals, in order."""
    if sends.shape[1] < 5:                                 # an in-process log: (due, sent, status) only
        raise ValueError("a send log with the message bytes is needed")
    due, sent, status = sends[:, 0], sends[:, 1], sends[:, 2].astype(int)
    err = sent - due
    late = np.flatnonzero(err > 0.0005)
    pushed = sends[:, 5] if sends.shape[1] > 5 else np.full(len(sends), np.nan)
    in_time = pushed <= due                # queued at the sender before it was due (the generator kept up); NaN:
                                           # made in the sender (a scene change's note-offs, a panic): not counted
    out = {"messages_sent": int(len(sends)), "send_error_ms": common.summary(err, 1e3),
           "sends_over_0_5ms": int(len(late)),
           "queued_after_due": int((pushed > due).sum()),
           "send_error_queued_in_time_ms": common.summary(err[in_time], 1e3),
           "late_sends": [{"at_s": round(float(due[i] - due[0]), 3), "status": int(status[i]),
                           "late_ms": round(float(err[i]) * 1e3, 2),
                           "queued_ms_before_due": round(float(due[i] - pushed[i]) * 1e3, 2)}
                          for i in late[:20]]}
    notes = np.array([_is_note(s) for s in status], dtype=bool)
    out["note_send_error_ms"] = common.summary((sent - due)[notes], 1e3)
    if received is None:
        return out
    log = [row for row in live.sender_log(sends) if _is_note(row[2][0])]
    arrivals = live.match_arrivals(log, received)
    ok = np.array([a is not None for a in arrivals], dtype=bool)
    nd = np.array([d for d, _, _ in log])[ok]
    ns = np.array([s for _, s, _ in log])[ok]
    ta = np.array([a for a in arrivals if a is not None])
    n = len(ta)
    a_err = ta - nd
    grid = np.abs(a_err - np.median(a_err))
    out.update({
        "notes_sent": len(log), "notes_received": sum(1 for _, m in received if m and _is_note(m[0])),
        "notes_matched": int(n),
        "arrival_minus_due_ms": common.summary(a_err, 1e3),
        "grid_error_ms": common.summary(grid, 1e3),
        "transport_ms": common.summary(ta - ns, 1e3),
        "grid_over_0_5ms": int((grid > 0.0005).sum()),
    })
    # The part JACK's period puts there whatever the sender does: a message sent at a uniformly random
    # moment waits U(0, period) for its cycle. The same deviation for the sends of this run, if each had
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


def coinciding(sends: np.ndarray, stalls: list) -> int:
    """How many sends more than 0.5 ms late were due during a stall of the probe (or within 1 ms of one)."""
    late = sends[(sends[:, 1] - sends[:, 0]) > 0.0005]
    return int(sum(1 for due, sent in late[:, :2] if any(a - 0.001 <= sent and due <= b + 0.001 for a, b in stalls)))


def run_play(video: Path, seconds: float, seed: int, rx_port: str | None, log_path: str, synth: bool) -> str:
    cmd = [sys.executable, str(common.REPO / "run_installation.py"), "play", "--midi-api", "jack",
           "--source", str(video), "--duration", str(seconds), "--seed", str(seed)]
    cmd += ["--synth", "--audio-driver", "jack"] if synth else ["--port", rx_port]
    p = subprocess.run(cmd, cwd=common.REPO, capture_output=True, text=True, timeout=seconds + 120,
                       env=dict(os.environ, ITM_SEND_LOG=log_path))
    if p.returncode != 0:
        raise RuntimeError(f"play exited {p.returncode}: {p.stderr[-2000:]}")
    return p.stderr


def run_kiosk(video: Path, seconds: float, seed: int, rx_port: str, log_path: str) -> str:
    from kiosk_parts import Kiosk, playing
    with Kiosk("--port", rx_port, "--camera", str(video), "--seed", str(seed),
               env={"ITM_SEND_LOG": log_path}) as k:
        k.wait_health(playing)
        time.sleep(seconds)
        assert k.stop() == 0, k.output()[-2000:]
        return k.output()


def run_in_process(video: Path, seconds: float, seed: int, rx_port: str) -> np.ndarray:
    """The single-process path (the Engine and its Scheduler in this process), logged like the sender."""
    from installation.midi import midi_io
    from installation.image.capture import VideoFileSource
    from installation.engine import EngineConfig
    sink = midi_io.MidiOut("jack", rx_port)
    sink.open()
    source = VideoFileSource(video)
    source.open()
    eng = live.timed_engine(common.load_models(None), source, sink, EngineConfig(seed=seed))
    eng.start()
    eng.wait(seconds)
    eng.stop()
    sink.close()
    if eng.failure:
        raise RuntimeError(f"engine failed: {eng.failure!r}")
    return np.array([(d, s, *m[:3], *(-1,) * (3 - len(m[:3]))) for d, s, m in eng.scheduler.send_log], dtype=float)


def main() -> None:
    ap = common.parser(__doc__)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--modes", default="play,synth,kiosk,in-process")
    ap.add_argument("--no-busy", action="store_true", help="no busy loop on the other core")
    args = ap.parse_args()
    seconds = 10.0 if args.quick else args.seconds
    modes = [m for m in args.modes.split(",") if m]
    busy = None if args.no_busy else subprocess.Popen([sys.executable, "-c", "while True: pass"])
    res = {"benchmark": "grid", "machine": common.machine(), "busy_at_start": common.warn_if_busy(),
           "busy_loop": busy is not None, "seconds": seconds, "modes": {}}
    video = live.bench_video(common.RESULTS / "artworks_48s_640x480.avi")
    try:
        with JackServer(rate=48000, period=64):
            for mode in modes:
                with tempfile.TemporaryDirectory() as tmp:
                    log_path = os.path.join(tmp, "sends.npy")
                    sends = None
                    with common.ReceiverProcess(f"grid-rx-{mode}") as rx, Probe() as probe:
                        if mode == "in-process":
                            sends = run_in_process(video, seconds, args.seed, rx.port_name)
                        elif mode == "kiosk":
                            run_kiosk(video, seconds, args.seed, rx.port_name, log_path)
                        else:
                            run_play(video, seconds, args.seed, rx.port_name, log_path, synth=mode == "synth")
                        received = rx.finish()
                        platform = probe.finish()
                    sends = np.load(log_path) if sends is None else sends
                    r = res["modes"][mode] = figures(sends, None if mode == "synth" else received)
                    r["platform_probe"] = {k: v for k, v in platform.items() if k != "stalls"}
                    r["late_sends_during_a_probe_stall"] = coinciding(sends, platform["stalls"])
                    print(f"    platform: a SCHED_FIFO thread that only sleeps woke > 1 ms late {platform['over_1ms']} "
                          f"times (max {platform['max_ms']:.1f} ms); {r['late_sends_during_a_probe_stall']} of "
                          f"{r['sends_over_0_5ms']} late sends fell in one of those stalls")
                    print(common.line(f"{mode}: send error", r["send_error_ms"]))
                    print(f"    {r['queued_after_due']} messages reached the sender after their due time")
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
