"""Patches: the shipped ones load; a mistake in a patch is one line naming the file and the key, exit status 2."""
import subprocess
import sys
from pathlib import Path

import pytest

from installation.errors import UserError
from installation.patches import available_patches, load_patch, parse_patch

REPO = Path(__file__).resolve().parents[1]


def test_the_shipped_patches_load_and_explain_themselves():
    names = available_patches()
    assert {"gm-piano", "ableton-live", "mono-synth", "visuals"} <= set(names)
    for name in names:
        p = load_patch(name)
        assert p.name == name
        text = (REPO / "patches" / f"{name}.toml").read_text()
        assert text.startswith("#") and text.count("\n#") >= 3, f"{name}: no comment block at its top"
    assert load_patch(None).name == "gm-piano"                       # the default
    assert load_patch(None).layers[0].program == 1
    assert load_patch(REPO / "patches" / "mono-synth.toml").shaping.mono


@pytest.mark.parametrize("toml, key, what", [
    ("[shaping]\ntranspose = 3\nvelocity_curv = 2\n", "shaping.velocity_curv", "unknown key"),
    ("colour = 'red'\n", "colour", "unknown key"),
    ("[shaping]\nmono = 'yes'\n", "shaping.mono", "true or false"),
    ("[[layer]]\nchannel = 17\n", "layer[1].channel", "out of range 1..16"),
    ("[[layer]]\nchannel = 1\n[[layer]]\nprogram = 0\n", "layer[2].program", "out of range 1..128"),
    ("[shaping]\npitch_range = [60, 40]\n", "shaping.pitch_range", "low end is above"),
    ("[shaping]\nscale = 'H major'\n", "shaping.scale", "ROOT MODE"),
    ("[[cc]]\nsource = 'valence'\nnumber = 120\n", "cc[1].number", "out of range 0..119"),
    ("[[cc]]\nsource = 'joy'\nnumber = 1\n", "cc[1].source", "not one of"),
    ("[clock]\nmin_bpm = 120\nmax_bpm = 90\n", "clock.max_bpm", "below"),
    ("[osc]\nport = '9000'\n", "osc.port", "whole number"),
    ("[output]\npedal = 'on'\n", "output.pedal", "true or false"),
    ("[output]\npedal_cc = 11\n", "output.pedal_cc", "out of range 64..69"),
    ("emotion_map = 3\n", "emotion_map", "must be a table"),
    ("[shaping\n", "not valid TOML", ""),
])
def test_a_bad_patch_is_one_line_naming_file_and_key(tmp_path, toml, key, what):
    f = tmp_path / "mine.toml"
    f.write_text(toml)
    with pytest.raises(UserError) as err:
        load_patch(f)
    msg = str(err.value)
    assert str(f) in msg and key in msg and what in msg and "\n" not in msg, msg


def test_emotion_map_is_kept_as_a_plain_table(tmp_path):
    p = parse_patch({"emotion_map": {"tempo": {"low": 0.8, "high": 1.2}}})
    assert p.emotion_map == {"tempo": {"low": 0.8, "high": 1.2}}


def test_the_cli_refuses_a_bad_patch_before_starting(tmp_path):
    f = tmp_path / "bad.toml"
    f.write_text("[[layer]]\nchannel = 1\nvoices = 'middle'\n")
    for cmd in (["play", "--duration", "1"], ["render", "x.jpg", "--out", str(tmp_path / "o")]):
        r = subprocess.run([sys.executable, str(REPO / "run_installation.py"), *cmd, "--patch", str(f)],
                           cwd=REPO, capture_output=True, text=True, timeout=60)
        assert r.returncode == 2, r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: patch ") and "layer[1].voices" in lines[0], r.stderr
        assert "Traceback" not in r.stderr
        assert not (tmp_path / "o").exists()                       # nothing was half done
    r = subprocess.run([sys.executable, str(REPO / "run_installation.py"), "play", "--patch", "no-such-patch"],
                       cwd=REPO, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "gm-piano" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_a_missing_soundfont_is_one_line_before_anything_runs(tmp_path):
    for cmd in (["play", "--synth", "--duration", "1"], ["render", str(REPO / "installation" / "artworks"),
                                                          "--out", str(tmp_path / "o"), "--audio"]):
        r = subprocess.run([sys.executable, str(REPO / "run_installation.py"), *cmd, "--soundfont", "/no/such.sf2"],
                           cwd=REPO, capture_output=True, text=True, timeout=60)
        assert r.returncode == 2 and r.stderr.strip().splitlines()[-1].startswith("error: SoundFont /no/such.sf2"), r.stderr
        assert "Traceback" not in r.stderr and not (tmp_path / "o").exists()
