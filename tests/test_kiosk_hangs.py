"""A hung child (SIGSTOP) is handled like a dead one: its notes are silenced at once, then it is restarted.

Real processes on a real JACK server, heard by an independent receiver. The aims (silence
within 1 s, music back within 2.5 s) are measured in bench/bench_faults.py; the bounds here
are generous so that a loaded machine cannot make this test flaky."""
import os
import signal
import time

import pytest

from kiosk_parts import NO_CAMERA, Kiosk, first_note_on_after, open_notes_at, playing, silence_after
from realtime_parts import count_note_ons


@pytest.mark.parametrize("role", ["thinker", "sender"])
def test_a_hung_child_is_silenced_then_restarted(jack_server, midi_receiver, role):
    with Kiosk("--port", midi_receiver.port_name, "--source", NO_CAMERA, "--seed", "6") as k:
        k.wait_health(playing)
        assert midi_receiver.wait_until(lambda got: count_note_ons(got) >= 5, timeout=30), k.output()
        pid = k.pids()[role]
        assert midi_receiver.wait_until(lambda got: bool(open_notes_at([(0, m) for m in got], 1)), timeout=20)
        t_stop = time.perf_counter()
        os.kill(pid, signal.SIGSTOP)
        try:
            time.sleep(6.0)
        finally:
            try:
                os.kill(pid, signal.SIGCONT)          # if it is still there (it should have been killed)
            except ProcessLookupError:
                pass
        msgs = list(midi_receiver.messages)
        assert open_notes_at(msgs, t_stop), "the test must stop it while a note sounds"
        quiet = silence_after(msgs, t_stop)
        assert quiet is not None and quiet < 2.5, (quiet, k.output()[-8000:], [(round(a - t_stop, 3), m) for a, m in msgs if a > t_stop - 0.5][:60])
        back = first_note_on_after(msgs, t_stop + quiet)
        assert back is not None and back - t_stop < 6.0, ("no music after the hang", k.output()[-3000:])
        h = k.wait_health(playing, timeout=30)
        assert h["restarts"] == 1 and role in str(h["last_error"]) and "stalled" in str(h["last_error"]), h
        assert k.stop() == 0
        out = k.output()
    time.sleep(0.3)
    assert midi_receiver.unmatched_note_ons() == [], "a note left sounding"
    assert "Traceback" not in out, out[-3000:]
