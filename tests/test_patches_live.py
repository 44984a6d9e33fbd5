"""Patches in the live engine: a real engine process on a real JACK server, heard by an independent
receiver (rtmidi), an OSC server (python-osc) and FluidSynth, all in this test process. Nothing is mocked."""
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import rtmidi

from installation.image.capture import bundled_artworks
from realtime_parts import MidiReceiver, count_note_ons, wav_rms

REPO = Path(__file__).resolve().parents[1]


def start_engine(*args):
    cmd = [sys.executable, str(REPO / "run_installation.py"), "play", "--midi-api", "jack", *args]
    return subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(proc, timeout=90):
    try:
        out, _ = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, out


def write_patch(tmp_path, text, name="test.toml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cc_value(x):
    return int(round(127 * (max(-1.0, min(1.0, x)) + 1) / 2))


ROUTED = """
[[layer]]
channel = 1
program = 1
[[layer]]
channel = 2
program = 34
voices = "lowest"
transpose = -12
mono = true
[[cc]]
source = "valence"
number = 20
channel = 3
smoothing_s = 0.5
[[cc]]
source = "scene"
number = 22
channel = 3
[clock]
send = true
min_bpm = 120
max_bpm = 120
"""


def test_channels_programs_cc_and_clock_out(jack_server, tmp_path):
    patch = write_patch(tmp_path, ROUTED)
    with MidiReceiver(client_name="patch-rx", timing=True) as rx:
        code, out = finish(start_engine("--port", rx.port_name, "--patch", str(patch), "--source",
                                        str(bundled_artworks()), "--slide-seconds", "2", "--seed", "3",
                                        "--duration", "6"))
        time.sleep(0.3)
        timed = list(rx.messages)
    assert code == 0, out
    msgs = [m for _, m in timed]
    notes = [m for m in msgs if len(m) == 3 and m[0] & 0xE0 == 0x80]
    first_note = msgs.index(next(m for m in msgs if m[0] & 0xF0 == 0x90))
    # program changes (GM 1 piano, 34 fingered bass) before the first note
    assert (0xC0, 0) in msgs[:first_note] and (0xC1, 33) in msgs[:first_note]
    # notes on channels 1 and 2 only; the bass layer is mono; every note ends
    assert {m[0] & 0x0F for m in notes} == {0, 1}, out
    sounding, most = set(), 0
    for m in notes:
        if m[0] == 0x91 and m[2] > 0:
            sounding.add(m[1])
            most = max(most, len(sounding))
        elif m[0] in (0x81, 0x91):
            sounding.discard(m[1])
    assert most == 1
    assert count_note_ons(msgs) >= 10
    assert rx.unmatched_note_ons() == []
    # valence as CC 20 on channel 3: starts at the first scene's valence, stays within the scenes' range
    valences = [float(v) for v in re.findall(r"valence ([+-]\d\.\d\d)", out)]
    assert len(valences) >= 2, out
    cc20 = [m[2] for m in msgs if m[:2] == (0xB2, 20)]
    assert len(cc20) >= 2
    assert abs(cc20[0] - cc_value(valences[0])) <= 1
    assert all(cc_value(min(valences)) - 1 <= v <= cc_value(max(valences)) + 1 for v in cc20)
    assert len(set(cc20)) == len(cc20) or all(a != b for a, b in zip(cc20, cc20[1:]))    # only on change
    # scene changes as a 127 pulse, then 0, on CC 22
    cc22 = [m[2] for m in msgs if m[:2] == (0xB2, 22)]
    assert cc22[:2] == [127, 0], cc22
    # the clock: start first, stop last, 24 ticks per quarter note at 120 bpm within 1%
    rt = [(t, m[0]) for t, m in timed if m[0] >= 0xF8]
    kinds = [k for _, k in rt]
    assert kinds[0] == 0xFA and kinds[-1] == 0xFC and kinds.count(0xFA) == 1, kinds[:3]
    ticks = [t for t, k in rt if k == 0xF8]
    assert len(ticks) >= 5 * 48
    # the tempo: the mean tick interval over the run (JACK delivers MIDI once per period, so single intervals
    # are quantized); the ticks' jitter is timing, measured by bench/bench_clock.py (BENCHMARKS.md)
    expected = 60 / (120 * 24)
    mean = (ticks[-1] - ticks[0]) / (len(ticks) - 1)
    assert abs(mean - expected) < 0.01 * expected, mean


class ClockSender:
    """A MIDI clock master (a DAW stand-in): a JACK port 'clock-src' sending 24 ppqn, whose tempo can change."""

    def __init__(self, bpm):
        self.bpm = bpm
        self.out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, "clock-master")
        self.out.open_virtual_port("clock-src")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        nxt = time.perf_counter()
        self.out.send_message([0xFA])
        while not self._stop.is_set():
            while time.perf_counter() < nxt:
                time.sleep(min(0.002, max(0.0, nxt - time.perf_counter() - 0.001)))
            self.out.send_message([0xF8])
            nxt += 60.0 / (self.bpm * 24)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(2)
        self.out.send_message([0xFC])
        self.out.close_port()
        self.out.delete()


FOLLOW = """
[[layer]]
channel = 1
[clock]
follow_port = "clock-src"
reference_bpm = 120
"""


def onsets(rx):
    return [(t, m[1]) for t, m in rx.messages if len(m) == 3 and m[0] == 0x90 and m[2] > 0]


def test_following_an_incoming_clock_stretches_the_performance(jack_server, tmp_path):
    """Two seeded runs from the same images: one under a steady 120 bpm clock, one whose clock drops to
    60 bpm. The same notes come in the same order; after the drop (and one beat) they come twice as slowly."""
    patch = write_patch(tmp_path, FOLLOW)
    runs = []
    for drop in (False, True):
        with ClockSender(120) as clock, MidiReceiver(client_name="follow-rx") as rx:
            p = start_engine("--port", rx.port_name, "--patch", str(patch), "--source", str(bundled_artworks()),
                             "--slide-seconds", "3", "--seed", "7", "--duration", "9" if drop else "6",
                             "--lookahead-ms", "300")
            assert rx.wait_until(lambda got: count_note_ons(got) >= 1, timeout=60), "no music"
            t_drop = None
            if drop:
                time.sleep(2.5)
                t_drop = time.perf_counter()
                clock.bpm = 60
            code, out = finish(p)
            time.sleep(0.2)
            assert code == 0, out
            runs.append((onsets(rx), t_drop, out))
    (a, _, _), (b, t_drop, out) = runs
    assert re.search(r"clock in: (59\.[5-9]|60\.[0-5]) bpm", out), out                 # the tempo changed
    n = min(len(a), len(b))
    assert n >= 12 and [p for _, p in a[:n]] == [p for _, p in b[:n]], "not the same notes"
    before = [i for i in range(n) if b[i][0] < t_drop]
    after = [i for i in range(n) if b[i][0] > t_drop + 1.0]             # within a beat at 60 bpm
    assert len(before) >= 4 and len(after) >= 4, (len(before), len(after))
    # the behaviour: after the drop the same notes take twice as long, before it as long (bounds wide enough for
    # a loaded machine, and 1.5x is neither)
    ratio = lambda i, j: (b[j][0] - b[i][0]) / (a[j][0] - a[i][0])
    assert 0.8 < ratio(before[0], before[-1]) < 1.25, ratio(before[0], before[-1])
    assert 1.7 < ratio(after[0], after[-1]) < 2.4, ratio(after[0], after[-1])


def test_osc_out_and_knobs_and_osc_in_steer_arousal(jack_server, tmp_path):
    from pythonosc.dispatcher import Dispatcher
    from pythonosc.osc_server import ThreadingOSCUDPServer
    from pythonosc.udp_client import SimpleUDPClient

    got, lock = [], threading.Lock()

    def on_any(address, *args):
        with lock:
            got.append((address, args))
    d = Dispatcher()
    d.set_default_handler(on_any)
    server = ThreadingOSCUDPServer(("127.0.0.1", 0), d)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    in_port = free_udp_port()
    patch = write_patch(tmp_path, f"""
[[layer]]
channel = 1
[[cc]]
source = "arousal"
number = 21
channel = 1
smoothing_s = 0
[osc]
port = {server.server_address[1]}
[input]
midi_port = "knobs-src"
arousal_cc = 1
osc_port = {in_port}
weight = 1.0
""")
    knobs = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, "controller")
    knobs.open_virtual_port("knobs-src")
    try:
        with MidiReceiver(client_name="osc-rx") as rx:
            p = start_engine("--port", rx.port_name, "--patch", str(patch), "--source", str(bundled_artworks()),
                             "--seed", "5", "--duration", "9")
            try:
                assert rx.wait_until(lambda m: count_note_ons(m) >= 3, timeout=60), "no music"
                knobs.send_message([0xB0, 1, 127])                   # the knob all the way up: arousal +1
                assert rx.wait_until(lambda m: (0xB0, 21, 127) in m, timeout=5), "the knob did not steer arousal"
                time.sleep(1.5)                                          # OSC values are smoothed (0.5 s)
                SimpleUDPClient("127.0.0.1", in_port).send_message("/itm/input/arousal", -1.0)
                assert rx.wait_until(lambda m: (0xB0, 21, 0) in m, timeout=5), "OSC input did not steer arousal"
            finally:
                code, out = finish(p)
            time.sleep(0.3)
            midi_pitches = [pitch for _, pitch, _ in rx.notes_on()]
    finally:
        knobs.close_port()
        knobs.delete()
        server.shutdown()
        server.server_close()
    assert code == 0, out
    with lock:
        osc = list(got)
    notes = [args for a, args in osc if a == "/itm/note"]
    osc_pitches = [pitch for pitch, vel in notes if vel > 0]
    n = min(len(midi_pitches), len(osc_pitches))
    assert n >= 10 and osc_pitches[:n - 3] == midi_pitches[:n - 3]      # every note, in order (the end may be cut)
    arousal = [args[0] for a, args in osc if a == "/itm/arousal"]
    assert arousal and all(-1.0 <= x <= 1.0 for x in arousal)
    assert min(arousal) < -0.5 and max(arousal) > 0.5                    # it followed the hand both ways
    assert any(a == "/itm/scene" for a, _ in osc)


def test_synth_plays_inside_the_process(jack_server, tmp_path):
    pytest.importorskip("fluidsynth", reason="pyfluidsynth is not installed (pip install -r requirements-audio.txt)")
    wav = tmp_path / "synth.wav"
    code, out = finish(start_engine("--synth", "--audio-driver", f"file:{wav}", "--patch", "gm-piano",
                                    "--source", str(bundled_artworks()), "--seed", "2", "--duration", "4"))
    assert code == 0, out
    assert "FluidSynth in this process" in out
    assert wav_rms(wav) > 0.003, "the in-process synth's audio is silent"
