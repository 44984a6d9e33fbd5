"""The package: `pip install .` (pyproject.toml) into a fresh virtual environment gives an `image-to-music`
command that runs from a folder outside the repository, with the shipped models, patches and artworks."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import mido

REPO = Path(__file__).resolve().parents[1]
LEFT_OUT = shutil.ignore_patterns(".git", "build", "*.egg-info", "__pycache__", ".cache", ".pytest_cache",
                                  ".hypothesis", "runs", "reports", "installation-*")


def test_pip_install_gives_a_command_that_plays_and_renders_outside_the_checkout(tmp_path):
    src = tmp_path / "src"                           # a copy: an in-tree build would leave build/ in the checkout
    shutil.copytree(REPO, src, ignore=LEFT_OUT)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps",
           "--disable-pip-version-check"]
    subprocess.run([*pip, str(src)], check=True, cwd=tmp_path)
    shutil.rmtree(src)                               # nothing may be read from the source any more
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    cmd = str(venv / "bin" / "image-to-music")
    elsewhere = tmp_path / "gallery"
    elsewhere.mkdir()

    helped = subprocess.run([cmd, "play", "--help"], cwd=elsewhere, env=env, capture_output=True, text=True)
    assert helped.returncode == 0, helped.stderr
    assert "usage: image-to-music play" in helped.stdout and "--port" in helped.stdout

    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import installation; print(installation.__file__)"],
                           cwd=elsewhere, env=env, capture_output=True, text=True, check=True).stdout
    assert str(venv) in where and str(REPO) not in where

    image = elsewhere / "cat.jpg"
    shutil.copy(REPO / "installation" / "artworks" / "05_chelsea_the_cat.jpg", image)
    done = subprocess.run([cmd, "render", str(image), "--out", "out", "--seconds", "5", "--seed", "1",
                           "--patch", "mono-synth"], cwd=elsewhere, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    notes = [m for m in mido.MidiFile(elsewhere / "out" / "cat.mid") if m.type == "note_on" and m.velocity > 0]
    assert notes, done.stderr
    # the bundled mono-synth patch shaped them: C2-C4 (36-60), in A minor
    assert all(36 <= m.note <= 60 and m.note % 12 in (9, 11, 0, 2, 4, 5, 7) for m in notes), done.stderr
