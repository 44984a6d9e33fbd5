"""The README's setup commands ("Hear it: JACK and FluidSynth"), run as written from a non-interactive shell.

The block is read from README.md itself, so the text and this test cannot drift apart. It runs in a fresh
folder (with the repository's run_installation.py and installation/ linked in), under ``bash -e`` with stdin
from /dev/null, against a private JACK server name (JACK_DEFAULT_SERVER), so nothing meets another JACK
server on the machine. The one change: the kiosk gets a free --status-port instead of 8080. Then it checks
that each command did what the text says: FluidSynth stayed up with its audio on the playback ports, `ports`
listed fluidsynth-midi:midi_00, play and the kiosk played to it, render wrote MIDI and --audio WAV files.
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.realtime_parts import SOUNDFONT, wav_rms

REPO = Path(__file__).resolve().parents[1]
HEADING = "## Hear it: JACK and FluidSynth"


def readme_block() -> list[str]:
    text = (REPO / "README.md").read_text()
    section = text[text.index(HEADING):]
    block = next(b for b in re.findall(r"```sh\n(.*?)```", section, re.S) if b.startswith("jackd "))  # not apt
    return [line for line in block.splitlines() if line.strip()]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not (shutil.which("jackd") and shutil.which("fluidsynth") and SOUNDFONT.is_file()),
                    reason="needs jackd2, fluidsynth and fluid-soundfont-gm (bash .ci/run installs them)")
def test_the_readme_setup_commands_do_what_the_text_says(tmp_path):
    lines = readme_block()
    assert any(line.startswith("fluidsynth ") for line in lines)
    script = ["trap 'jobs -p > jobs.txt' EXIT"]        # the background jobs, to stop them (jackd leaves our session)
    for line in lines:
        if " kiosk " in line:
            line = line.split("#")[0].rstrip() + f" --status-port {free_port()}"
        if line.startswith("python "):               # each command's output, to check below
            n = len(script)
            line = f"{line} > out{n}.txt 2>&1 || {{ s=$?; cat out{n}.txt; exit $s; }}"
            script.append(f"echo '### {n}' >&2")
        script.append(line)
    (tmp_path / "setup.sh").write_text("\n".join(script) + "\n")
    (tmp_path / "run_installation.py").symlink_to(REPO / "run_installation.py")
    (tmp_path / "installation").symlink_to(REPO / "installation")
    server = f"itm-readme-{os.getpid()}"
    env = dict(os.environ, JACK_DEFAULT_SERVER=server, JACK_NO_START_SERVER="1",
               PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    log = open(tmp_path / "setup.log", "w")          # a file, not a pipe: the background jobs keep it open
    proc = subprocess.Popen(["bash", "-e", "setup.sh"], cwd=tmp_path, env=env, stdin=subprocess.DEVNULL,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        proc.wait(timeout=400)
        out = (tmp_path / "setup.log").read_text()
        assert proc.returncode == 0, out[-4000:]
        outs = {int(p.stem[3:]): p.read_text() for p in tmp_path.glob("out*.txt")}
        text = [outs[k] for k in sorted(outs)]
        ports, play, render, render_audio, kiosk = text
        # FluidSynth is still up (the script ended long ago for a job stopped or killed by stdin), its MIDI
        # input is listed, and its audio outputs feed the playback ports (-j)
        lsp = subprocess.run(["jack_lsp", "-s", server, "-c"], capture_output=True, text=True, env=env).stdout
        assert "fluidsynth-midi:midi_00" in lsp, lsp
        assert re.search(r"fluidsynth-midi:left\n\s+system:playback_1", lsp), lsp
        assert "fluidsynth-midi:midi_00" in ports
        for name, text_ in (("play", play), ("kiosk", kiosk)):
            assert "fluidsynth-midi:midi_00" in text_, (name, text_[-3000:])
            assert " ERROR " not in text_, (name, text_[-3000:])
            assert "Traceback" not in text_, (name, text_[-3000:])
        sent = re.search(r"(\d+) MIDI messages sent", play)
        assert sent and int(sent.group(1)) > 50, play[-2000:]
        artworks = sorted(p.stem for p in (REPO / "installation" / "artworks").glob("*.jpg"))
        assert sorted(p.stem for p in (tmp_path / "midi").glob("*.mid")) == artworks, render
        wavs = sorted((tmp_path / "audio").glob("*.wav"))
        assert [p.stem for p in wavs] == artworks, render_audio
        assert all(wav_rms(w) > 0.005 for w in wavs)
        assert "6 images: 6 rendered now" in render, render
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        jobs = tmp_path / "jobs.txt"
        pids = [int(p) for p in jobs.read_text().split()] if jobs.exists() else []
        for sig in (signal.SIGTERM, signal.SIGKILL):     # jackd and fluidsynth, started by the script
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            time.sleep(1.0)
        log.close()
