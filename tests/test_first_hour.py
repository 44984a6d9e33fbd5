"""The first hour of a new user (issue 24, items 15-17): the log says how to hear a virtual port, and that
command makes it heard; `--audio` and `--synth` name every missing piece of the audio extra at the start;
a normal stop is not logged as a lost peer; `--help` gives the defaults."""
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from realtime_parts import wav_rms

REPO = Path(__file__).resolve().parents[1]
ART = REPO / "installation" / "artworks"
NO_JACK = {"JACK_DEFAULT_SERVER": f"itm-none-{os.getpid()}", "JACK_NO_START_SERVER": "1"}


def run(args, cwd, env=None, timeout=180):
    return subprocess.run([sys.executable, str(REPO / "run_installation.py"), *args], cwd=cwd,
                          env=dict(os.environ, **(env or {})), capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def hide(folder: Path, *modules: str) -> str:
    """A PYTHONPATH folder in which importing each of ``modules`` fails as a missing package does."""
    for m in modules:
        top = m.split(".")[0]
        (folder / top).mkdir(parents=True, exist_ok=True)
        (folder / top / "__init__.py").write_text(f"raise ModuleNotFoundError(\"No module named '{top}'\", "
                                                   f"name={top!r})\n")
    return os.pathsep.join([str(folder), str(REPO)])


def test_render_audio_without_scipy_says_so_in_one_line_before_rendering(tmp_path):
    """Before: `--synth needs FluidSynth ... pip install pyfluidsynth`, then every image failed on scipy."""
    out = tmp_path / "out"
    r = run(["render", str(ART / "03_coffee_cup.jpg"), "--out", str(out), "--seconds", "3", "--audio"], tmp_path,
            env={"PYTHONPATH": hide(tmp_path / "shim", "scipy")})
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, r.stderr[-3000:]
    assert lines[0].startswith("error: --audio ") and "scipy" in lines[0], lines
    assert "requirements-audio.txt" in lines[0] and "pyfluidsynth" not in lines[0], lines
    assert not list(out.rglob("*.mid")), "it rendered before saying what is missing"


def test_every_missing_package_of_the_extra_is_named_at_once(tmp_path):
    r = run(["render", str(ART / "03_coffee_cup.jpg"), "--out", str(tmp_path / "out"), "--audio", "flac"], tmp_path,
            env={"PYTHONPATH": hide(tmp_path / "shim", "scipy", "soundfile", "fluidsynth")})
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, r.stderr[-3000:]
    assert all(p in lines[0] for p in ("pyfluidsynth", "scipy", "soundfile", "requirements-audio.txt")), lines
    r = run(["play", "--synth", "--duration", "2", "--source", str(ART / "03_coffee_cup.jpg")], tmp_path,
            env={"PYTHONPATH": hide(tmp_path / "shim2", "fluidsynth"), **NO_JACK})
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and lines[-1].startswith("error: --synth ") and "pyfluidsynth" in lines[-1], lines
    assert "scipy" not in lines[-1]                                      # --synth does not need it


def test_a_normal_stop_is_not_logged_as_a_lost_peer(tmp_path):
    """Before: every `play` that ended normally logged `WARNING play gone ... waiting for the next one`."""
    r = run(["play", "--duration", "3", "--source", str(ART / "03_coffee_cup.jpg"), "--record",
             str(tmp_path / "take.mid")], tmp_path, env=NO_JACK)
    assert r.returncode == 0, r.stderr[-3000:]
    assert re.search(r"stopped after [\d.]+ s: \d+ events generated", r.stderr), r.stderr[-3000:]
    assert " gone" not in r.stderr and "waiting for the next one" not in r.stderr, r.stderr[-3000:]


def test_help_gives_the_defaults():
    from installation.cli import build_parser
    subs = build_parser()._subparsers._group_actions[0].choices
    want = {"render": {"--seconds": "30", "--batch": "64", "--seed": "render: 0"},
            "play": {"--late-policy": "send", "--seed": "a new one each run", "--motion-weight": "0"},
            "kiosk": {"--late-policy": "send"}}
    for command, options in want.items():
        helps = {s: a.help for a in subs[command]._actions for s in a.option_strings}
        for option, default in options.items():
            assert re.search(rf"\(default:? [^)]*{re.escape(default)}", helps[option]), (command, option, helps[option])


def test_a_virtual_port_log_gives_the_command_that_makes_it_heard(jack_server, fluidsynth, tmp_path):
    """`play --virtual-port` is heard by nothing; its log line gives the jack_connect command, with the real
    port names. Running that command makes FluidSynth play: its audio is above silence."""
    name = f"first-hour-{os.getpid()}"
    proc = subprocess.Popen([sys.executable, str(REPO / "run_installation.py"), "play", "--midi-api", "jack",
                             "--virtual-port", name, "--duration", "10", "--source", str(ART), "--seed", "1"],
                            cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    lines = []
    try:
        for line in proc.stderr:
            lines.append(line)
            if "MIDI out:" in line:
                break
        out = "".join(lines)
        m = re.search(r"a synth is connected to it: (jack_connect .+?) \(or start with --port", out)
        assert m, out[-3000:]
        assert m.group(1).split()[1:] == [f"image-to-music:{name}", fluidsynth.port_name], m.group(1)
        done = subprocess.run(["bash", "-c", m.group(1)], capture_output=True, text=True, timeout=20,
                              env=dict(os.environ, JACK_DEFAULT_SERVER=jack_server.name))
        assert done.returncode == 0, done.stderr
        rest, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, (out + rest)[-3000:]
    time.sleep(0.5)
    fluidsynth.stop()                                           # writes the WAV's header
    assert wav_rms(fluidsynth.wav_path) > 0.003, (wav_rms(fluidsynth.wav_path), fluidsynth.output[-1000:])


def test_the_connect_command_names_the_ports_as_each_midi_system_wants_them():
    """ALSA (no sequencer here to run it): aconnect takes the client:port numbers rtmidi's names end in; a
    FluidSynth is preferred to other ports; with no synth there, a placeholder the shell refuses."""
    from installation.midi.midi_io import connect_command
    ours = "image-to-music:gallery 128:0"
    synths = ["Midi Through:Midi Through Port-0 14:0", "FLUID Synth (4242):Synth input port (4242:0) 129:0"]
    assert connect_command("alsa", ours, synths) == "aconnect 128:0 129:0"
    assert connect_command("alsa", ours, []) == "aconnect 128:0 <synth-client:port>"
    assert connect_command("jack", "image-to-music:x y", ["a:in", "fluidsynth-midi:midi_00"]) == \
        "jack_connect 'image-to-music:x y' fluidsynth-midi:midi_00"
