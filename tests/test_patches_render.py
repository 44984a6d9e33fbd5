"""render --patch and render --audio through the real CLI and real FluidSynth (pyfluidsynth)."""
import shutil
import subprocess
import sys
from pathlib import Path

import mido
import numpy as np
import pytest

from installation.image.capture import bundled_artworks
from realtime_parts import read_wav

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args, timeout=240):
    return subprocess.run([sys.executable, str(REPO / "run_installation.py"), *args], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


def timed_messages(path):
    t, out = 0.0, []
    for m in mido.MidiFile(path):
        t += m.time
        if not m.is_meta:
            out.append((t, m))
    return out


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    pytest.importorskip("fluidsynth", reason="pyfluidsynth is not installed (pip install -r requirements-audio.txt)")
    d = tmp_path_factory.mktemp("render")
    img = next(p for p in sorted(bundled_artworks().glob("*.jpg")) if "starry" in p.name)
    shutil.copy(img, d / img.name)
    r = run_cli("render", str(d / img.name), "--out", str(d / "out"), "--seconds", "8", "--seed", "4",
                "--patch", "mono-synth", "--audio")
    assert r.returncode == 0, r.stderr
    return d / "out" / (img.stem + ".mid"), d / "out" / (img.stem + ".wav")


def test_render_with_a_patch_shapes_the_file(rendered):
    mid, _ = rendered
    msgs = timed_messages(mid)
    ons = [m for _, m in msgs if m.type == "note_on" and m.velocity > 0]
    assert len(ons) >= 8
    assert all(36 <= m.note <= 60 and m.note % 12 in {9, 11, 0, 2, 4, 5, 7} for m in ons)   # C2-C4, A minor
    assert all(60 <= m.velocity <= 120 for m in ons)
    sounding = 0
    for _, m in msgs:                                         # mono: never two notes at once
        if m.type == "note_on" and m.velocity > 0:
            sounding += 1
            assert sounding == 1
        elif m.type in ("note_on", "note_off"):
            sounding -= 1
    assert sounding == 0


def test_render_audio_lasts_as_long_as_the_midi_and_sounds_where_notes_do(rendered):
    mid, wav = rendered
    audio, rate = read_wav(wav)
    length = mido.MidiFile(mid).length
    assert abs(audio.shape[0] / rate - (length + 1.0)) < 0.01            # the MIDI's length + 1 s of release
    # loudness where notes sound: every 50 ms window inside a note is clearly above silence
    msgs = timed_messages(mid)
    spans, start = [], None
    for t, m in msgs:
        if m.type == "note_on" and m.velocity > 0:
            start = t
        elif m.type in ("note_on", "note_off") and start is not None:
            spans.append((start, t))
            start = None
    win = int(0.05 * rate)
    rms = []
    for a, b in spans:
        for s in np.arange(a + 0.02, b - 0.05, 0.05):                    # skip the attack's first 20 ms
            x = audio[int(s * rate): int(s * rate) + win]
            rms.append(float(np.sqrt(np.mean(x ** 2))))
    assert len(rms) >= 10
    assert min(rms) > 0.002, sorted(rms)[:5]                              # about -54 dBFS: really sounding
    silence = audio[int((length + 0.9) * rate):]                          # and it is not noise everywhere
    assert float(np.sqrt(np.mean(silence ** 2))) < min(rms)


def test_flac_too(rendered, tmp_path):
    soundfile = pytest.importorskip("soundfile")
    from installation.patches.audio import encode, synthesize
    from installation.patches.loudness import normalise
    mid, wav = rendered
    audio = normalise(synthesize(mid, rate=48000), 48000, -16.0, -1.0).audio     # as render --audio flac does
    (tmp_path / "x.flac").write_bytes(encode(audio, 48000, "flac"))
    data, rate = soundfile.read(str(tmp_path / "x.flac"))
    ref, _ = read_wav(wav)
    assert rate == 48000 and data.shape == ref.shape
    assert np.max(np.abs(data - ref)) < 1e-3                              # the same sound, losslessly
