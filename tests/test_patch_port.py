"""A patch's `[output] port` is where play and the kiosk send their notes (docs/PATCHES.md), heard at an
independent JACK receiver: nothing on the command line names the port, only the patch."""
import subprocess
import sys
import time


from installation.image.capture import bundled_artworks
from kiosk_parts import NO_CAMERA, REPO, Kiosk, playing
from realtime_parts import count_note_ons


def patch_to(tmp_path, port: str):
    path = tmp_path / "to-receiver.toml"
    path.write_text(f'name = "to-receiver"\ndescription = "the receiver of the test"\n\n[output]\nport = "{port}"\n\n'
                    f'[[layer]]\nchannel = 3\n')
    return path


def test_the_kiosk_plays_to_the_port_its_patch_names(jack_server, midi_receiver, tmp_path):
    patch = patch_to(tmp_path, midi_receiver.port_name)
    with Kiosk("--patch", str(patch), "--source", NO_CAMERA, "--seed", "5") as k:
        k.wait_health(playing, timeout=60)
        assert midi_receiver.wait_until(lambda got: count_note_ons(got) >= 3, timeout=30), k.output()[-3000:]
        assert k.health()["port"] == midi_receiver.port_name
        assert k.stop() == 0
    time.sleep(0.3)
    notes = [m for m in midi_receiver.received() if len(m) == 3 and m[0] & 0xF0 == 0x90 and m[2] > 0]
    assert notes and {m[0] & 0x0F for m in notes} == {2}       # the patch's layer: channel 3
    assert midi_receiver.unmatched_note_ons() == []


def test_play_plays_to_the_port_its_patch_names(jack_server, midi_receiver, tmp_path):
    patch = patch_to(tmp_path, midi_receiver.port_name)
    r = subprocess.run([sys.executable, str(REPO / "run_installation.py"), "play", "--midi-api", "jack",
                        "--patch", str(patch), "--source", str(bundled_artworks()), "--seed", "5", "--duration", "6"],
                       cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    notes = [m for m in midi_receiver.received() if len(m) == 3 and m[0] & 0xF0 == 0x90 and m[2] > 0]
    assert len(notes) >= 3, r.stderr[-3000:]
    assert {m[0] & 0x0F for m in notes} == {2}
    assert midi_receiver.unmatched_note_ons() == []
