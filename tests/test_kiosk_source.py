"""The kiosk takes --source like play: a folder plays as a slideshow, through the real kiosk
(supervisor, sender and thinker processes, a JACK receiver)."""
import shutil
import subprocess
import sys
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


def test_a_source_file_that_is_not_there_refuses_the_start(tmp_path):
    """Before, `kiosk --source holiday.mp4` warned and played the attract folder: a typo would have left a gallery
    playing the bundled artworks for weeks. A camera may come later; a file that is not there is a mistake."""
    conf = tmp_path / "kiosk.toml"
    conf.write_text('source = "holiday.mp4"\n')
    for args in (["--source", "holiday.mp4"], ["--config", str(conf)], ["--camera", str(tmp_path / "clip.mp4")]):
        r = subprocess.run([sys.executable, str(REPO / "run_installation.py"), "kiosk", *args, "--status-port", "0",
                            "--duration", "5"], cwd=REPO, capture_output=True, text=True, timeout=120,
                           stdin=subprocess.DEVNULL)
        lines = [ln for ln in r.stderr.strip().splitlines() if "--camera is the older name" not in ln]
        assert r.returncode == 2 and len(lines) == 1, (args, r.returncode, r.stderr[-2000:])
        assert lines[0].startswith("error: source: ") and "no such file or folder" in lines[0], lines[0]
