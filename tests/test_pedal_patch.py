"""A patch sends the performance's sustain pedal, drops it, or moves it to another switch controller;
a bad pedal setting is one line and exit status 2 before anything starts."""
import subprocess
import sys
from pathlib import Path

import mido
import pytest

from installation.music import events as E
from installation.patches import load_patch, parse_patch
from installation.patches.routing import NoteRouter, route_events_to_midi

REPO = Path(__file__).resolve().parents[1]


def test_the_pedal_goes_out_on_every_layers_channel_on_the_patchs_controller():
    two = {"layer": [{"channel": 1}, {"channel": 2, "voices": "lowest"}, {"channel": 2}]}
    assert NoteRouter(parse_patch(two)).pedal(0.0, True) == [(0xB0, 64, 127), (0xB1, 64, 127)]
    assert NoteRouter(parse_patch(two)).pedal(0.0, False) == [(0xB0, 64, 0), (0xB1, 64, 0)]
    moved = NoteRouter(parse_patch({"output": {"pedal_cc": 69}, "layer": [{"channel": 5}]}))
    assert moved.pedal(1.0, True) == [(0xB4, 69, 127)]
    assert NoteRouter(parse_patch({"output": {"pedal": False}})).pedal(1.0, True) == []
    assert NoteRouter(load_patch(None)).pedal(0.0, True) == [(0xB0, 64, 127)]      # the default: on, CC 64


def test_the_cli_refuses_a_bad_pedal_setting_in_one_line(tmp_path):
    f = tmp_path / "pedal.toml"
    f.write_text("[output]\npedal_cc = 127\n")
    r = subprocess.run([sys.executable, str(REPO / "run_installation.py"), "play", "--duration", "1", "--patch", str(f)],
                       cwd=REPO, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "output.pedal_cc: 127 is out of range 64..69" in lines[0] and str(f) in lines[0], r.stderr


@pytest.mark.xfail(not hasattr(E, "PEDAL_DOWN"), raises=AttributeError, strict=True,
                   reason="the vocabulary has no pedal events yet (branch realism): runs once it has")
@pytest.mark.parametrize("pedal, expected", [(True, [(64, 127), (64, 0), (64, 127), (64, 0)]), (False, [])])
def test_a_rendered_file_keeps_the_pedal_and_lifts_it_at_the_end(tmp_path, pedal, expected):
    shift = E.TIME_SHIFT + 49                                         # half a second
    events = [E.PEDAL_DOWN, E.NOTE_ON + 60, shift, E.NOTE_OFF + 60, shift, E.PEDAL_UP, shift,
              E.PEDAL_DOWN, E.NOTE_ON + 62, shift, E.NOTE_OFF + 62, shift]          # ends with the pedal down
    path = tmp_path / "out.mid"
    route_events_to_midi(events, path, parse_patch({"output": {"pedal": pedal}}))
    got = [(m.control, m.value) for m in mido.MidiFile(path) if m.type == "control_change" and m.control == 64]
    assert got == expected
