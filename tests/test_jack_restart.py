"""A JACK server that dies and comes back: the engine notices at once, says so, and plays again by itself.

Real parts only: a private jackd that the test SIGKILLs and starts again under the same
name, an independent rtmidi receiver before and after, `play` and the kiosk as real processes."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from installation.image.capture import bundled_artworks
from kiosk_parts import NO_CAMERA, Kiosk, playing
from realtime_parts import JackServer, MidiReceiverProcess, count_note_ons

REPO = Path(__file__).resolve().parents[1]
BACK_WITHIN_S = 15.0          # generous: the aim (3 s) is measured in bench/bench_faults.py, not asserted here


def kill_jack(server: JackServer) -> None:
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait(5)
    server.stop()                       # restores JACK_DEFAULT_SERVER for the next start


def test_play_reconnects_after_a_jack_restart(tmp_path):
    name = f"itm-restart-{os.getpid()}"
    server = JackServer(name=name).start()
    rx = MidiReceiverProcess("restart-rx").open()
    proc = subprocess.Popen([sys.executable, str(REPO / "run_installation.py"), "play", "--midi-api", "jack",
                             "--port", "restart-rx:in", "--source", str(bundled_artworks()), "--seed", "4"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    rx2 = None
    try:
        assert rx.wait_until(lambda m: count_note_ons(m) >= 3, timeout=60), "no music"
        kill_jack(server)
        rx.close()
        time.sleep(5.0)
        server = JackServer(name=name).start()
        rx2 = MidiReceiverProcess("restart-rx").open()
        assert rx2.wait_until(lambda m: count_note_ons(m) >= 3, timeout=BACK_WITHIN_S), "silent after JACK returned"
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
        time.sleep(0.3)
        assert proc.returncode == 0, out[-3000:]
        assert rx2.unmatched_note_ons() == [], "a note left sounding"
    finally:
        if proc.poll() is None:
            proc.kill()
            out, _ = proc.communicate()
        if rx2 is not None:
            rx2.close()
        server.stop()
    assert "MIDI server is gone" in out and "MIDI server is back" in out, out[-3000:]
    assert "Traceback" not in out


def test_kiosk_health_tells_the_truth_through_a_jack_restart():
    name = f"itm-restart-k-{os.getpid()}"
    server = JackServer(name=name).start()
    rx = MidiReceiverProcess("restart-krx").open()
    rx2 = None
    k = Kiosk("--port", "restart-krx:in", "--source", NO_CAMERA).start()
    try:
        k.wait_health(playing)
        assert rx.wait_until(lambda m: count_note_ons(m) >= 3, timeout=30), k.output()[-2000:]
        assert k.health()["port_connected"] is True
        kill_jack(server)
        rx.close()
        h = k.wait_health(lambda h: h["port_connected"] is False, timeout=5)
        assert h["state"] == "waiting-for-port", h             # not "playing" while nothing can be heard
        assert h["restarts"] == 0, h                            # the sender waits for the server: no restart
        time.sleep(4.0)
        server = JackServer(name=name).start()
        rx2 = MidiReceiverProcess("restart-krx").open()
        assert rx2.wait_until(lambda m: count_note_ons(m) >= 3, timeout=BACK_WITHIN_S), (k.health(), k.output()[-3000:])
        # the notes heard reach /health with the sender's next heartbeats: wait for them, don't race them
        h = k.wait_health(lambda h: h["port_connected"] is True and playing(h) and h["last_note_age_s"] is not None
                          and h["last_note_age_s"] < 5, timeout=10)
        assert k.stop() == 0
        time.sleep(0.3)
        assert rx2.unmatched_note_ons() == [], "a note left sounding"
    finally:
        k.stop()
        out = k.output()
        k._out.close()
        if rx2 is not None:
            rx2.close()
        server.stop()
    assert "Traceback" not in out, out[-3000:]
