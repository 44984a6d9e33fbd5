"""play --synth on machines without a sound card: it still gives sound, and says where.

- No sound card and no JACK server: the sound goes to a WAV file in the current folder, named in the log.
- A JACK server: FluidSynth plays through it, its audio outputs connected to the playback ports.
"""
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from realtime_parts import SOUNDFONT, wav_rms

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not SOUNDFONT.is_file(), reason="needs fluid-soundfont-gm (bash .ci/run installs it)")


def play_synth(cwd, env, seconds="5"):
    return subprocess.Popen([sys.executable, str(REPO / "run_installation.py"), "play", "--synth", "--duration", seconds,
                             "--source", str(REPO / "installation" / "artworks"), "--seed", "1"],
                            cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def test_no_sound_card_and_no_jack_writes_a_wav_and_says_where(tmp_path):
    if Path("/dev/snd").exists():
        pytest.skip("this machine has a sound card: --synth plays to it")
    env = dict(os.environ, JACK_DEFAULT_SERVER=f"itm-none-{os.getpid()}", JACK_NO_START_SERVER="1")
    proc = play_synth(tmp_path, env)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out[-3000:]
    wavs = list(tmp_path.glob("installation-*.wav"))
    assert len(wavs) == 1, out[-3000:]
    assert str(wavs[0].resolve()) in out                        # the log says where the sound went
    assert wav_rms(wavs[0]) > 0.005                              # and it is music, not silence


def test_with_jack_the_synth_is_heard_on_the_playback_ports(jack_server, tmp_path):
    """FluidSynth's audio feeds the playback ports, and it is music: what those ports are fed, recorded by
    an independent JACK client (jack_rec) while the notes play, is above silence."""
    if shutil.which("jack_rec") is None:
        pytest.skip("jack_rec is missing (Debian: it comes with jackd2)")
    proc = play_synth(tmp_path, dict(os.environ), seconds="12")
    connected, take = "", tmp_path / "heard" / "playback.wav"
    take.parent.mkdir()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            lsp = subprocess.run(["jack_lsp", "-s", jack_server.name, "-c"], capture_output=True, text=True).stdout
            m = re.search(r"^system:playback_1\n((?:\s+.+\n)+)", lsp, re.M)
            if m:
                connected = m.group(1)
                break
            time.sleep(0.3)
        sources = [line.strip() for line in connected.splitlines() if line.strip()]
        if sources:                                              # 5 s of what the playback port is fed
            rec = subprocess.run(["jack_rec", "-f", str(take), "-d", "5", "-b", "16", *sources],
                                 capture_output=True, text=True, timeout=30,
                                 env=dict(os.environ, JACK_DEFAULT_SERVER=jack_server.name))
            assert rec.returncode == 0, rec.stderr[-2000:]
    finally:
        out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out[-3000:]
    assert sources, out[-3000:]                                  # FluidSynth's audio feeds the playback port
    assert wav_rms(take) > 0.003, (wav_rms(take), out[-2000:])  # and it plays music, not silence
    assert not list(tmp_path.glob("*.wav"))


def test_the_fallback_takes_are_not_left_untracked_in_the_repository():
    """play's fallback .mid (and --synth's .wav) land in the current folder: git ignores them (16.10)."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    for name in ("installation-20260101-120000.mid", "installation-20260101-120000.wav"):
        r = subprocess.run(["git", "check-ignore", "-q", name], cwd=REPO)
        assert r.returncode == 0, name
