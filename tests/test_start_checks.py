"""Everything a user configures is checked at start: one ``error:`` line naming the option, exit status 2,
and nothing started. Each case ran, or failed late, before these checks."""
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args, timeout=120):
    t = time.monotonic()
    r = subprocess.run([sys.executable, str(REPO / "run_installation.py"), *args], cwd=REPO, capture_output=True,
                       text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    r.seconds = time.monotonic() - t
    return r


def refused_at_start(r, *needles):
    """One line, status 2, and nothing else printed: no log line of anything that started."""
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), (r.returncode, r.stderr[-3000:])
    for n in needles:
        assert n in lines[0], lines[0]


def read_only_folder(tmp_path) -> Path:
    """A folder this process cannot write into: /sys for root (chmod does not stop root), else a chmod 555 one."""
    if os.geteuid() == 0:
        return Path("/sys")
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o555)
    return d


@pytest.mark.parametrize("args, needle", [
    (["--temperature", "nan"], "--temperature"),
    (["--temperature", "-1"], "--temperature"),
    (["--top-p", "2"], "--top-p"),
    (["--seed", "9" * 400], "--seed"),
    (["--lookahead-ms", "inf"], "--lookahead-ms"),
    (["--max-polyphony", "0"], "--max-polyphony"),
])
def test_play_refuses_bad_numbers(args, needle):
    refused_at_start(run_cli("play", *args, "--duration", "20"), needle)


@pytest.mark.parametrize("args, needle", [
    (["--temperature", "nan"], "--temperature"),
    (["--log-max-mb", "inf"], "--log-max-mb"),
    (["--top-p", "2"], "--top-p"),
])
def test_kiosk_refuses_bad_numbers(args, needle):
    refused_at_start(run_cli("kiosk", *args, "--duration", "20"), needle)


def test_play_refuses_an_unwritable_record_file_before_playing(tmp_path):
    r = run_cli("play", "--source", str(REPO / "installation" / "artworks"), "--duration", "30",
                "--record", str(read_only_folder(tmp_path) / "take.mid"))
    refused_at_start(r, "--record", "take.mid")
    assert r.seconds < 25                       # refused, not played for 30 s and then lost


def test_play_refuses_a_folder_as_record_file(tmp_path):
    refused_at_start(run_cli("play", "--duration", "20", "--record", str(tmp_path)), "--record")


def test_render_refuses_a_read_only_folder(tmp_path):
    refused_at_start(run_cli("render", str(REPO / "installation" / "artworks"), "--out",
                             str(read_only_folder(tmp_path))), "--out")


@pytest.mark.parametrize("make, needle", [
    (lambda d: ["--models", str(d / "no-models")], "manifest.json"),
    (lambda d: ["--attract", str(d)], "attract"),                                  # an empty folder
    (lambda d: ["--log-file", str(d)], "log_file"),                                # a folder
    (lambda d: ["--log-file", str(d / "no" / "such" / "k.jsonl")], "log_file"),
    (lambda d: ["--source", str(d)], "source"),                                    # an empty folder
    (lambda d: ["--decoder", "transformer", "--models", str(gru_only_models(d))], "decoder"),
])
def test_kiosk_refuses_what_its_children_would_crash_on(tmp_path, make, needle):
    r = run_cli("kiosk", *make(tmp_path), "--status-port", "0", "--duration", "20")
    refused_at_start(r, needle)
    assert r.seconds < 15


def gru_only_models(d):
    import json
    import shutil
    m = d / "gru-models"
    shutil.copytree(REPO / "exported_models", m, ignore=shutil.ignore_patterns("transformer*"))
    data = json.loads((m / "manifest.json").read_text())
    data.pop("decoders", None)
    (m / "manifest.json").write_text(json.dumps(data))
    return m


def test_a_bad_emotion_map_in_a_patch_is_refused_by_play_render_and_kiosk(tmp_path):
    patch = tmp_path / "bad-map.toml"
    patch.write_text('[emotion_map.corners.q1]\ndensity = 1000\n')
    for cmd in (["play", "--duration", "20"], ["render", str(REPO / "installation" / "artworks"), "--out",
                                               str(tmp_path / "o")],
                ["kiosk", "--status-port", "0", "--duration", "20"]):
        refused_at_start(run_cli(*cmd, "--patch", str(patch)), "emotion_map")


def test_a_config_file_with_play_options_says_why_the_kiosk_has_none(tmp_path):
    cfg = tmp_path / "k.toml"
    cfg.write_text('record = "take.mid"\n')
    refused_at_start(run_cli("kiosk", "--config", str(cfg)), "'record' is a play option")


def test_ports_without_a_midi_system_does_not_suggest_record():
    env = dict(os.environ, JACK_DEFAULT_SERVER="itm-no-such-server", JACK_NO_START_SERVER="1")
    r = subprocess.run([sys.executable, str(REPO / "run_installation.py"), "ports", "--midi-api", "jack"], cwd=REPO,
                       capture_output=True, text=True, timeout=60, env=env, stdin=subprocess.DEVNULL)
    refused_at_start(r, "JACK")
    assert "--record" not in r.stderr


def test_every_option_has_help_without_test_jargon():
    for cmd in ("play", "render", "kiosk", "ports"):
        r = run_cli(cmd, "--help")
        assert r.returncode == 0
        import re
        opts = re.findall(r"^  (--[a-z-]+)( [A-Z_{][^ ]*)?( +(.*))?$", r.stdout, re.M)
        assert opts
        for flag, _meta, _gap, text in opts:
            if flag == "--help":
                continue
            assert text.strip() or _next_line_is_help(r.stdout, flag), f"{cmd} {flag}: no help"
        low = r.stdout.lower()
        assert "(tests)" not in low and "kill test" not in low, r.stdout


def _next_line_is_help(text: str, flag: str) -> bool:
    """argparse puts the help on the next line when the option is long."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("  " + flag):
            return i + 1 < len(lines) and lines[i + 1].startswith(" " * 10) and bool(lines[i + 1].strip())
    return False


def test_the_kiosk_check_run_catches_a_wrong_port(jack_server):
    """docs/KIOSK.md's check (--duration 5) exited 0 with a port that does not exist (16.10)."""
    r = run_cli("kiosk", "--midi-api", "jack", "--port", "no-such-synth", "--status-port", "0", "--duration", "5")
    lines = r.stderr.strip().splitlines()          # the MIDI API line, then the error: nothing started
    assert r.returncode == 2 and lines[-1].startswith("error: --port no-such-synth"), r.stderr[-3000:]
    assert "Traceback" not in r.stderr and len(lines) <= 2 and r.seconds < 15, r.stderr[-3000:]


def test_the_kiosk_check_run_catches_broken_models(tmp_path):
    import shutil
    models = tmp_path / "models"
    shutil.copytree(REPO / "exported_models", models)
    step = models / "decoder_step.onnx"
    step.write_bytes(step.read_bytes()[:1000])                  # truncated, as a failed copy leaves it
    r = run_cli("kiosk", "--models", str(models), "--status-port", "0", "--duration", "5")
    refused_at_start(r, "decoder_step.onnx")


def test_play_reads_the_same_config_file_as_the_kiosk(tmp_path):
    """One schema (16.4): play --config takes the kiosk's file; the kiosk-only keys are the kiosk's, and the
    command line overrides the file."""
    cfg = tmp_path / "both.toml"
    cfg.write_text(f'source = "{REPO / "installation" / "artworks" / "03_coffee_cup.jpg"}"\n'
                   'duration = 60\nseed = 3\nhours = ["10:00-18:00"]\nstatus_port = 8080\n'
                   f'record = "{tmp_path / "take.mid"}"\n')
    env = dict(os.environ, JACK_DEFAULT_SERVER=f"itm-none-{os.getpid()}", JACK_NO_START_SERVER="1")
    r = subprocess.run([sys.executable, str(REPO / "run_installation.py"), "play", "--config", str(cfg),
                        "--duration", "2"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "source: image 03_coffee_cup.jpg" in r.stderr and "playing for 2 s" in r.stderr, r.stderr[-3000:]
    assert (tmp_path / "take.mid").stat().st_size > 0
