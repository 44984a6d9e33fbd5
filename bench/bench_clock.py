"""MIDI clock out of a patch: tick timing at a receiver, while the engine plays.

`python run_installation.py play --patch <fixed 120 bpm clock>` runs as a real
process on a private JACK server (dummy driver, 48 kHz, 64-frame periods, sync
mode), playing the bundled artworks; a python-rtmidi receiver in this process
(idle meanwhile) stamps each arriving message with time.perf_counter.
Reported: the tempo from the mean tick interval (error in %), and each tick
interval's error against 60 / (bpm * 24). JACK delivers MIDI once per period,
so single intervals are quantized to 1.33 ms steps; the mean is not.
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import common

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from realtime_parts import JackServer, MidiReceiver  # noqa: E402

PATCH = """
[[layer]]
channel = 1
[clock]
send = true
min_bpm = {bpm}
max_bpm = {bpm}
"""


def main() -> None:
    ap = common.parser(__doc__, seconds=30.0)
    ap.add_argument("--bpm", type=float, default=120.0)
    args = common.parse(ap, seconds=8.0)
    busy = common.warn_if_busy()
    with tempfile.TemporaryDirectory() as d, JackServer(), MidiReceiver("clock-bench", timing=True) as rx:
        patch = Path(d) / "clock.toml"
        patch.write_text(PATCH.format(bpm=args.bpm))
        cmd = [sys.executable, str(REPO / "run_installation.py"), "play", "--midi-api", "jack", "--port",
               rx.port_name, "--patch", str(patch), "--duration", str(args.seconds), "--seed", "1"]
        r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(r.stdout + r.stderr)
        time.sleep(0.3)
        ticks = np.array([t for t, m in rx.messages if m == (0xF8,)])
    expected = 60.0 / (args.bpm * 24)
    mean = (ticks[-1] - ticks[0]) / (len(ticks) - 1)
    err = np.diff(ticks) - expected
    result = {"bpm": args.bpm, "ticks": len(ticks), "tempo_error_percent": 100 * (expected / mean - 1),
              "interval_error_ms": common.summary(np.abs(err), 1000), "machine": common.machine(), "busy": busy}
    print(f"{len(ticks)} ticks at {args.bpm:g} bpm: tempo from the mean interval off by "
          f"{result['tempo_error_percent']:+.3f}%")
    print(common.line("|tick interval - 60/(bpm*24)|", result["interval_error_ms"]))
    common.write_result("clock", result, args.out)


if __name__ == "__main__":
    main()
