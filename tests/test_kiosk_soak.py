"""A short soak (KIOSK_SOAK_S, default 75 s after a 20 s warm-up): resident memory flat, threads and file
descriptors steady, nothing restarted, no note left sounding. The hour-long run is bench/bench_kiosk.py --soak."""
import os
import time

from kiosk_parts import NO_CAMERA, Kiosk, playing, soak
from realtime_parts import count_note_ons

SOAK_S = float(os.environ.get("KIOSK_SOAK_S", "95"))


def test_soak(jack_server, midi_receiver):
    with Kiosk("--port", midi_receiver.port_name, "--source", NO_CAMERA, "--slide-seconds", "6") as k:
        k.wait_health(playing)
        assert midi_receiver.wait_until(lambda got: count_note_ons(got) >= 5, timeout=30)
        res = soak(k, SOAK_S, every=2.0, warmup=20.0)
        h = k.health()
        assert k.stop() == 0
    time.sleep(0.3)
    report = "\n".join(f"{r}: {v}" for r, v in res.items())
    print(report)
    assert h["restarts"] == 0 and h["last_error"] is None, h
    for role, r in res.items():
        # A leak of 60 KiB/s is 200 MiB/hour (e.g. one kept thumbnail per heartbeat); warm-up noise stays under it.
        assert r["rss_mib_per_hour"] < 200, report
        assert r["threads"][2] <= r["threads"][0] + 1 and r["threads"][1] <= r["threads"][0] + 2, report
        assert r["fds"][2] <= r["fds"][0] + 2, report
    assert midi_receiver.unmatched_note_ons() == [], "a note left sounding"
    assert count_note_ons(midi_receiver.received()) > 20 * SOAK_S / 10
