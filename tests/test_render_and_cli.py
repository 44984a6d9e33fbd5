"""Offline render through the real CLI, and the one-line errors users get instead of tracebacks."""
import shutil
import subprocess
import sys
from pathlib import Path

import mido
import pytest

from installation.image.capture import bundled_artworks
from installation.music.render import output_paths

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args, timeout=180, env=None):
    return subprocess.run([sys.executable, str(REPO / "run_installation.py"), *args], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout, env=env)


def notes_of(path):
    return [(m.type, m.note, m.velocity, round(m.time, 3)) for m in mido.MidiFile(path) if m.type in ("note_on", "note_off")]


def test_output_names_are_unique():
    got = output_paths([Path("a/x.jpg"), Path("b/x.png"), Path("c/x-2.jpg"), Path("d/y.jpg")], Path("out"))
    assert [p.name for p in got] == ["x.mid", "x-2.mid", "x-2-2.mid", "y.mid"]


@pytest.fixture(scope="module")
def two_images(tmp_path_factory):
    src = sorted(bundled_artworks().glob("*.jpg"))
    assert len(src) >= 3
    d = tmp_path_factory.mktemp("imgs")
    for p in src[:3]:
        shutil.copy(p, d / p.name)
    return sorted(d.glob("*.jpg"))


def test_render_is_reproducible_and_batch_independent(two_images, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    r1 = run_cli("render", *map(str, two_images), "--out", str(a), "--seconds", "8", "--seed", "5")
    assert r1.returncode == 0, r1.stderr
    assert sorted(p.name for p in a.glob("*.mid")) == sorted(p.stem + ".mid" for p in two_images)
    # the first image alone, in a batch of one, with the same seed: the same notes
    r2 = run_cli("render", str(two_images[0]), "--out", str(b), "--seconds", "8", "--seed", "5", "--batch", "1")
    assert r2.returncode == 0, r2.stderr
    first = two_images[0].stem + ".mid"
    assert notes_of(a / first) == notes_of(b / first)
    assert len(notes_of(a / first)) > 4
    # another seed gives other music
    r3 = run_cli("render", str(two_images[0]), "--out", str(tmp_path / "c"), "--seconds", "8", "--seed", "6")
    assert r3.returncode == 0, r3.stderr
    assert notes_of(tmp_path / "c" / first) != notes_of(a / first)
    # and each file lasts about the asked length
    length = mido.MidiFile(a / first).length
    assert 6.0 <= length <= 8.0 + 5.0


def _one_line_error(r, *needles):
    assert r.returncode == 2, (r.returncode, r.stderr)
    err = [l for l in r.stderr.splitlines() if l.startswith("error:")]
    assert len(err) == 1, r.stderr
    assert "Traceback" not in r.stderr
    for n in needles:
        assert n in err[0], err[0]


def test_error_missing_image(tmp_path):
    _one_line_error(run_cli("render", str(tmp_path / "nope.jpg"), "--out", str(tmp_path)), "nope.jpg")


def test_error_corrupt_image(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg at all")
    _one_line_error(run_cli("render", str(bad), "--out", str(tmp_path / "o")), "bad.jpg")


def test_error_missing_source():
    _one_line_error(run_cli("play", "--source", "/no/such/video.mp4", "--duration", "1"), "/no/such/video.mp4")


def test_error_bad_channel():
    _one_line_error(run_cli("play", "--channel", "17", "--duration", "1"), "--channel")


def test_error_models_missing(tmp_path):
    _one_line_error(run_cli("render", str(bundled_artworks()), "--out", str(tmp_path), "--models", str(tmp_path / "m")),
                    "manifest.json")


def test_error_port_not_found(jack_server, midi_receiver):
    r = run_cli("play", "--midi-api", "jack", "--port", "no-such-synth", "--duration", "1")
    _one_line_error(r, "no-such-synth")
    assert "test-receiver" in r.stderr            # lists the ports that exist


def test_kiosk_refuses_a_bad_option_before_starting_anything():
    _one_line_error(run_cli("kiosk", "--channel", "17", "--status-port", "0"), "channel")


@pytest.mark.parametrize("args,needle", [(["--valence", "1.5"], "--valence"), (["--arousal", "-3"], "--arousal"),
                                         (["--key", "H minor"], "--key"), (["--guidance", "-1"], "--guidance")])
def test_error_bad_mood_overrides(tmp_path, args, needle):
    _one_line_error(run_cli("render", str(bundled_artworks()), "--out", str(tmp_path), *args), needle)


def test_error_bad_emotion_map(tmp_path):
    bad = tmp_path / "map.toml"
    bad.write_text("[corners.Q1]\ndensity = 'fast'\n")
    _one_line_error(run_cli("render", str(bundled_artworks()), "--out", str(tmp_path), "--emotion-map", str(bad)),
                    "map.toml")


def test_render_overrides_set_the_mood_and_pin_the_key(two_images, tmp_path):
    """--valence/--arousal replace what each image says and --key pins the key: every image is asked
    for the same emotion and key (each draws its own density/loudness/register around the emotion
    map's value), and the log says so; a minor key asked for is heard as minor in most pieces."""
    from installation.music import analysis
    from installation.music import events as E

    r = run_cli("render", *map(str, two_images), "--out", str(tmp_path), "--seconds", "30", "--seed", "2",
                "--valence", "-0.8", "--arousal", "-0.6", "--key", "D minor")
    assert r.returncode == 0, r.stderr
    asked = [l.split("; ", 1)[1] for l in r.stderr.splitlines() if ".mid:" in l and "events; " in l]
    assert len(asked) == len(two_images), asked
    assert all(a.startswith("valence -0.80, arousal -0.60") and "-> D minor," in a for a in asked), asked
    modes = [analysis.estimate_key(E.load_notes(p))[1] for p in tmp_path.glob("*.mid")]
    assert modes.count("minor") >= 2, modes


def test_render_with_the_transformer_is_reproducible_and_plays(two_images, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for out in (a, b):
        r = run_cli("render", str(two_images[0]), "--out", str(out), "--seconds", "8", "--seed", "4",
                    "--decoder", "transformer")
        assert r.returncode == 0, r.stderr
    first = two_images[0].stem + ".mid"
    assert notes_of(a / first) == notes_of(b / first) and len(notes_of(a / first)) > 4


def test_a_decoder_the_models_lack_is_one_line(tmp_path):
    import json
    d = tmp_path / "models"
    shutil.copytree(REPO / "exported_models", d)
    man = json.loads((d / "manifest.json").read_text())
    man["decoders"].pop("transformer")
    (d / "manifest.json").write_text(json.dumps(man))
    _one_line_error(run_cli("render", str(bundled_artworks()), "--out", str(tmp_path / "o"), "--models", str(d),
                            "--decoder", "transformer"), "--decoder transformer")

