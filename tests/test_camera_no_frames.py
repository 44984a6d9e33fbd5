"""A camera that opens but gives no frames (here: a real, empty video file standing in for it): the kiosk
plays its attract mode and the log says so once. The finding: 90% CPU and about 18,000 error lines a
minute; the CPU share is bench/bench_camera_no_frames.py's."""
import time

import cv2

from kiosk_parts import Kiosk, playing
from realtime_parts import count_note_ons


def test_camera_that_gives_no_frames_does_not_spin(jack_server, midi_receiver, tmp_path):
    empty = tmp_path / "empty.avi"
    w = cv2.VideoWriter(str(empty), cv2.VideoWriter_fourcc(*"MJPG"), 10, (320, 240))
    w.release()
    cap = cv2.VideoCapture(str(empty))
    assert cap.isOpened() and not cap.read()[0], "the stand-in must open and give no frame"
    cap.release()
    with Kiosk("--port", midi_receiver.port_name, "--source", str(empty)) as k:
        k.wait_health(lambda h: playing(h) and h["camera"] == "attract", timeout=60)
        n0 = count_note_ons(midi_receiver.received())
        time.sleep(8.0)
        assert count_note_ons(midi_receiver.received()) > n0 + 10, "attract mode is silent"
        assert k.stop() == 0
        out = k.output()
    # said once, not 18,000 times a minute; the thinker's CPU share (a spinning capture thread took 90% of
    # a core) is measured by bench/bench_camera_no_frames.py (BENCHMARKS.md)
    assert out.count("gives no frame") <= 1, out[-2000:]
    assert len(out.splitlines()) < 200
