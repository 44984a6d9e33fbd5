"""Every kiosk stop is clean: no traceback, every note released, and a patch's MIDI clock gets its Stop.
The finding: AttributeError: 'RemoteScheduler' object has no attribute 'is_running' on every stop, and so
no clock Stop with the ableton-live patch."""
import signal

import pytest

from kiosk_parts import NO_CAMERA, Kiosk, playing
from realtime_parts import MidiReceiver, count_note_ons


@pytest.mark.parametrize("how", ["sigterm", "sighup", "duration"])
def test_kiosk_stop_sends_clock_stop_without_a_traceback(jack_server, how):
    with MidiReceiver(client_name="clock-rx", timing=True) as rx:
        extra = ["--duration", "12"] if how == "duration" else []
        with Kiosk("--port", rx.port_name, "--source", NO_CAMERA, "--patch", "ableton-live", *extra) as k:
            k.wait_health(playing)
            assert rx.wait_until(lambda m: count_note_ons(m) >= 5 and (0xFA,) in m, timeout=30), k.output()[-2000:]
            if how in ("sigterm", "sighup"):             # SIGHUP: its terminal closed, stopped in order too
                k.proc.send_signal(signal.SIGTERM if how == "sigterm" else signal.SIGHUP)
            assert k.proc.wait(30) == 0
            out = k.output()
        got = rx.received()
        assert (0xFC,) in got, "no clock Stop"
        assert got.index((0xFC,)) > max(i for i, m in enumerate(got) if m == (0xFA,))
        assert rx.unmatched_note_ons() == []
    assert "Traceback" not in out and "AttributeError" not in out, out[-3000:]
