"""A camera that opens but gives no frames: the thinker's CPU share (moved here from
tests/test_camera_no_frames.py, which asserts the behaviour: attract mode plays, one log line).

The kiosk runs on a private JACK server (dummy driver) with an independent receiver, its camera a real empty
video file that opens and gives no frame; for comparison, the same kiosk with a camera that does not exist
(attract mode from the start). Per run: the thinker's CPU time (utime + stime from /proc) over the window,
as a share of one core. A capture thread spinning on the empty camera took 90% of a core (47% on a loaded
machine) before the fix. Writes bench/results/bench_camera_no_frames.json.

    OMP_NUM_THREADS=1 nice -n 10 python bench/bench_camera_no_frames.py [--seconds 20] [--runs 3]
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import cv2

import common
from kiosk_parts import NO_CAMERA, Kiosk, playing
from realtime_parts import JackServer, MidiReceiver


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100.0          # utime + stime, in clock ticks of 10 ms


def share(camera: str, seconds: float) -> float:
    with MidiReceiver(client_name="bench-noframes-rx") as rx:
        with Kiosk("--port", rx.port_name, "--source", camera) as k:
            k.wait_health(lambda h: playing(h) and h["camera"] == "attract", timeout=60)
            pid = k.pids()["thinker"]
            c0, t0 = cpu_seconds(pid), time.monotonic()
            time.sleep(seconds)
            used = (cpu_seconds(pid) - c0) / (time.monotonic() - t0)
            assert k.stop() == 0, k.output()[-2000:]
    return used


def main() -> int:
    ap = common.parser(__doc__, seconds=20.0)
    ap.add_argument("--runs", type=int, default=3)
    args = common.parse(ap, seconds=5.0, runs=1)
    seconds, runs = args.seconds, args.runs
    result = {"machine": common.machine(), "seconds": seconds}
    with tempfile.TemporaryDirectory() as tmp, JackServer():
        empty = Path(tmp) / "empty.avi"
        cv2.VideoWriter(str(empty), cv2.VideoWriter_fourcc(*"MJPG"), 10, (320, 240)).release()
        for name, camera in (("empty camera", str(empty)), ("no camera (attract)", NO_CAMERA)):
            shares = [share(camera, seconds) for _ in range(runs)]
            result[name] = common.summary(shares, 100.0)
            print(common.line(f"thinker CPU, {name}", result[name], "% of a core"))
    common.write_result("bench_camera_no_frames", result, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
