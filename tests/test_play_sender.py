"""`play` sends through the sender process (installation/midi/sender.py), as the kiosk does.

With a real JACK server and a real receiver: the notes leave from a process of their own, a
`play` killed outright leaves no note sounding (its sender, told by the kernel, releases them),
and a sender that dies under `play` ends the performance with one error line and a silenced port.
"""
from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

from realtime_parts import PlayProcess, count_note_ons

REPO = Path(__file__).resolve().parents[1]




def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:                              # a zombie waiting for its parent is gone for our purpose
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def test_the_notes_leave_from_a_process_of_their_own(jack_server, midi_receiver):
    p = PlayProcess("--port", midi_receiver.port_name, "--duration", "4")
    pid = p.sender_pid()
    assert pid != p.proc.pid
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert b"installation.midi.sender" in cmdline and b"--for-play" in cmdline
    code, out = p.finish()
    assert code == 0, out
    assert count_note_ons(midi_receiver.received()) >= 3, out
    assert midi_receiver.unmatched_note_ons() == []
    assert not _alive(pid), "the sender outlived play"
    assert re.search(r"stopped after [\d.]+ s: \d+ events generated, [1-9]\d* MIDI messages sent", out), out


def test_play_killed_outright_leaves_no_note_sounding(jack_server, midi_receiver):
    """SIGKILL gives play no chance to say anything; its sender gets SIGTERM from the kernel (it dies with its
    parent) and releases every note. Before, the notes of a killed `play` hung at the synth."""
    p = PlayProcess("--port", midi_receiver.port_name)
    pid = p.sender_pid()
    assert midi_receiver.wait_until(lambda got: count_note_ons(got) >= 3, timeout=60), "no music"
    assert midi_receiver.wait_until(lambda got: bool(_open(got)), timeout=30), "never a note sounding"
    p.proc.kill()
    code, out = p.finish()
    assert code == -signal.SIGKILL
    assert midi_receiver.wait_until(lambda got: not _open(got), timeout=10), \
        (midi_receiver.unmatched_note_ons(), out)
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid), "the sender outlived play"


def test_a_sender_that_dies_ends_play_with_one_error_and_a_silent_port(jack_server, midi_receiver):
    p = PlayProcess("--port", midi_receiver.port_name)
    pid = p.sender_pid()
    assert midi_receiver.wait_until(lambda got: count_note_ons(got) >= 3, timeout=60), "no music"
    assert midi_receiver.wait_until(lambda got: bool(_open(got)), timeout=30), "never a note sounding"
    os.kill(pid, signal.SIGKILL)
    code, out = p.finish()
    assert code == 1, out
    assert "the MIDI sender process ended (killed by SIGKILL)" in out, out
    assert "Traceback" not in out, out
    # play opened the port itself and sent the note-offs the dead sender owed
    assert midi_receiver.wait_until(lambda got: not _open(got), timeout=10), \
        (midi_receiver.unmatched_note_ons(), out)
    assert re.search(r"port .* silenced after the sender's end", out), out


def _open(messages) -> set:
    sounding: set = set()
    for m in messages:
        if len(m) == 3 and m[0] & 0xF0 == 0x90 and m[2] > 0:
            sounding.add((m[0] & 0x0F, m[1]))
        elif len(m) == 3 and m[0] & 0xF0 in (0x80, 0x90):
            sounding.discard((m[0] & 0x0F, m[1]))
        elif len(m) == 3 and m[0] & 0xF0 == 0xB0 and m[1] in (120, 123):
            sounding = {k for k in sounding if k[0] != m[0] & 0x0F}
    return sounding
