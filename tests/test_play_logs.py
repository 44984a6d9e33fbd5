"""What play's log says is so: one line about the GPU providers, the decoder named, the patch's
forced scale said, and no raw Python dict at the stop."""
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_the_log_of_a_short_play_is_plain(tmp_path):
    env = dict(os.environ, JACK_DEFAULT_SERVER=f"itm-none-{os.getpid()}", JACK_NO_START_SERVER="1")
    r = subprocess.run([sys.executable, str(REPO / "run_installation.py"), "play", "--patch", "mono-synth",
                        "--duration", "3", "--source", str(REPO / "installation" / "artworks" / "03_coffee_cup.jpg")],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr[-3000:]
    log = r.stderr
    assert sum(1 for line in log.splitlines() if re.search(r"onnxruntime|ExecutionProvider", line)) <= 1, log   # was 8
    assert re.search(r"music model: the (GRU|Transformer) decoder", log), log
    assert "every note is moved into A minor" in log, log
    scene = next(line for line in log.splitlines() if " scene 0 at " in line)
    assert "(played in A minor: the patch's scale)" in scene, scene             # the key heard, not only the one asked
    assert not re.search(r"\{'\w+': ", log), log                                 # no raw dict
    assert re.search(r"stopped after [\d.]+ s: \d+ events generated, \d+ MIDI messages sent", log), log


def test_a_model_error_while_starting_is_the_last_line_on_its_own(tmp_path):
    """Issue 16.7: the error came mixed into later log lines, once glued to one without a newline."""
    from test_start_checks import gru_only_models
    models = gru_only_models(tmp_path)
    env = dict(os.environ, JACK_DEFAULT_SERVER=f"itm-none-{os.getpid()}", JACK_NO_START_SERVER="1")
    r = subprocess.run([sys.executable, str(REPO / "run_installation.py"), "play", "--models", str(models),
                        "--decoder", "transformer", "--duration", "5",
                        "--source", str(REPO / "installation" / "artworks" / "03_coffee_cup.jpg")],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    lines = r.stderr.rstrip("\n").splitlines()
    assert r.returncode == 2, r.stderr[-3000:]
    errors = [i for i, line in enumerate(lines) if "error:" in line]
    assert errors == [len(lines) - 1] and lines[-1].startswith("error: "), r.stderr[-3000:]
    assert "transformer" in lines[-1]
