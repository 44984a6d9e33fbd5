"""The kiosk takes --source like play: a folder plays as a slideshow, through the real kiosk
(supervisor, sender and thinker processes, a JACK receiver)."""
import shutil
from pathlib import Path

from kiosk_parts import Kiosk, playing
from realtime_parts import count_note_ons

REPO = Path(__file__).resolve().parents[1]


def test_kiosk_plays_a_folder_given_as_source(jack_server, midi_receiver, tmp_path):
    folder = tmp_path / "pictures"
    folder.mkdir()
    shutil.copy(REPO / "installation" / "artworks" / "03_coffee_cup.jpg", folder)
    with Kiosk("--port", midi_receiver.port_name, "--source", str(folder), "--seed", "2") as k:
        h = k.wait_health(lambda h: playing(h) and h.get("picture"), timeout=90)
        assert h["picture"] == "03_coffee_cup.jpg" and h["camera"] == "slideshow", h
        assert midi_receiver.wait_until(lambda got: count_note_ons(got) >= 5, timeout=30), k.output()[-3000:]
