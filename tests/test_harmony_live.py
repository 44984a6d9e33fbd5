"""The harmony in the live engine: a real `play` process on a real JACK server with a patch that has a
[chord_layer], OSC out and a chord input. An independent rtmidi receiver hears the notes, a UDP socket
reads /chord, and an independent rtmidi output (a keyboard stand-in) holds a chord. Nothing is mocked."""
import re
import socket
import threading
import time

import rtmidi
from pythonosc.osc_message import OscMessage

from installation.image.capture import bundled_artworks
from installation.midi.midi_io import release
from test_patches_live import finish, start_engine, write_patch

PATCH = """
[[layer]]
channel = 1
[chord_layer]
channel = 2
style = "pad"
velocity = 50
[osc]
port = {port}
notes = false
[input]
chord_port = "held-chords"
chord_release_s = 0.2
"""
HELD = (63, 67, 70)            # E flat major: a chord the plans in A (the artworks' keys) do not draw


class OscListener:
    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.messages = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                data, _ = self.sock.recvfrom(65536)
            except (socket.timeout, OSError):
                continue
            m = OscMessage(data)
            self.messages.append((time.perf_counter(), m.address, m.params))

    def chords(self):
        return [(t, p) for t, a, p in list(self.messages) if a == "/itm/chord"]

    def close(self):
        self._stop.set()
        self._thread.join(1)
        self.sock.close()


class Drained:
    """The engine's output read as it comes (a flood makes rtmidi print a line per message it drops: a pipe
    read only at the end fills up and blocks the engine's writers)."""

    def __init__(self, proc):
        self.proc, self.lines = proc, []
        self._thread = threading.Thread(target=lambda: self.lines.extend(iter(proc.stdout.readline, "")), daemon=True)
        self._thread.start()

    def finish(self, timeout=90):
        try:
            self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
        self._thread.join(5)
        return self.proc.returncode, "".join(line for line in self.lines if "queue limit reached" not in line)


def sounding_sets(messages, channel=1):
    """The pitch classes sounding on a channel after each burst of its messages (bursts: 30 ms apart),
    with the burst's time; consecutive repeats and silences dropped."""
    sounding, out, last_t = set(), [], None
    for t, m in messages:
        if len(m) != 3 or m[0] & 0x0F != channel or m[0] & 0xE0 != 0x80:
            continue
        if last_t is not None and t - last_t > 0.03 and sounding:
            pcs = frozenset(p % 12 for p in sounding)
            if not out or out[-1][1] != pcs:
                out.append((last_t, pcs))
        last_t = t
        if m[0] & 0xF0 == 0x90 and m[2] > 0:
            sounding.add(m[1])
        else:
            sounding.discard(m[1])
    return out


def test_chord_layer_osc_and_a_held_chord(jack_server, tmp_path):
    from realtime_parts import MidiReceiver
    osc = OscListener()
    keyboard = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, "harmony-keyboard")
    keyboard.open_virtual_port("held-chords")
    try:
        patch = write_patch(tmp_path, PATCH.format(port=osc.port))
        with MidiReceiver(client_name="harmony-rx") as rx:
            proc = Drained(start_engine("--port", rx.port_name, "--patch", str(patch), "--source",
                                        str(bundled_artworks()), "--slide-seconds", "4", "--seed", "3", "--duration", "13"))
            assert rx.wait_until(lambda got: any(m[0] == 0x91 and m[2] > 0 for m in got if len(m) == 3), timeout=60), \
                "no chord layer"
            time.sleep(1.5)
            for k in range(2000):                        # a flooding device: key pairs far over the input's rate
                keyboard.send_message([0x90, 24 + k % 80, 100])
                keyboard.send_message([0x80, 24 + k % 80, 0])
            time.sleep(1.5)
            t_press = time.perf_counter()
            for note in HELD:
                keyboard.send_message([0x90, note, 90])
                time.sleep(0.01)
            time.sleep(3.0)
            for note in HELD:
                keyboard.send_message([0x80, note, 0])
            t_release = time.perf_counter()
            code, out = proc.finish()
            time.sleep(0.3)
            timed = list(rx.messages)
    finally:
        osc.close()
        keyboard.close_port()
        release(keyboard)
    assert code == 0, out[-3000:]
    # every note-on, the chord layer's included, got its note-off; the layer played on channel 2
    assert rx.unmatched_note_ons() == [], out[-2000:]
    assert sum(1 for _, m in timed if len(m) == 3 and m[0] == 0x91 and m[2] == 50) >= 8
    # /chord: name, root, pitch classes; several chords, as the harmony moves
    chords = osc.chords()
    assert len(chords) >= 5, chords
    for _, (name, root, *pcs) in chords:
        assert isinstance(name, str) and 0 <= root <= 11 and root in pcs and pcs == sorted(set(pcs))
        assert all(0 <= p <= 11 for p in pcs)
    # the layer plays what /chord says, chord after chord
    def lasting(timed_sets):  # chords sounding 50 ms or more, on either side (a burst of the layer's notes is 30 ms
        out = []              # apart: a plan's chord cut by a held one 30-50 ms after it began is heard, not said)
        for (t, pcs), (t_next, _) in zip(timed_sets, timed_sets[1:] + [(float("inf"), None)]):
            if t_next - t >= 0.05 and (not out or out[-1] != pcs):
                out.append(pcs)
        return out

    heard = lasting(sounding_sets(timed))
    said = lasting([(t, frozenset(pcs)) for t, (_, _, *pcs) in chords])
    n = min(len(heard), len(said))
    assert n >= 5 and heard[:n] == said[:n], (heard, said)
    # the held chord: taken (the log), said and played within 2.5 s of the keys, kept until they are up
    assert re.search(r"chord in: (Eb|D#) \(3 7 10\) holds the harmony", out), out[-3000:]   # spelt in the key
    assert "more than 1000 messages/s; the rest dropped" in out, out[-3000:]      # the flood, said once
    held = frozenset(p % 12 for p in HELD)
    during = [(t, frozenset(pcs)) for t, (_, _, *pcs) in chords if t_press < t < t_release + 0.5]
    # heard after the look-ahead (and the rest of a critic's phrase chosen ahead), then kept while held
    first = next((t for t, pcs in during if pcs == held), None)
    assert first is not None and first - t_press < 5.0, during
    assert all(pcs == held for t, pcs in during if first <= t < t_release), during
    layer = [(t, pcs) for t, pcs in sounding_sets(timed) if t_press < t < t_release]
    assert layer and layer[-1][1] == held, layer
    # each new scene starts a new plan at once: the layer strikes its first chord with the scene (away from
    # the held chord)
    scenes = [t for t, a, p in osc.messages if a == "/itm/scene"][1:]
    free = [t for t in scenes if not t_press - 1.0 < t < t_release + 1.5]
    strikes = [t for t, m in timed if len(m) == 3 and m[0] == 0x91 and m[2] > 0]
    assert free, scenes
    for t in free:
        assert any(-0.05 < ts - t < 0.3 for ts in strikes), (t, strikes)
    # released: the plan goes on (another chord within 3 s)
    assert any(frozenset(pcs) != held for t, (_, _, *pcs) in chords if t_release < t < t_release + 3.0), chords


OSC_PATCH = """
[[layer]]
channel = 1
[chord_layer]
channel = 3
style = "bass"
octave = 2
[osc]
port = {port}
notes = false
[input]
osc_port = {inport}
"""


def test_osc_chord_hold_and_release_with_hostile_packets_between(jack_server, tmp_path):
    from realtime_parts import MidiReceiver
    from installation.patches.osc_packet import message
    from test_patches_live import free_udp_port
    osc = OscListener()
    inport = free_udp_port()
    send = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        patch = write_patch(tmp_path, OSC_PATCH.format(port=osc.port, inport=inport))
        with MidiReceiver(client_name="harmony-osc-rx") as rx:
            proc = start_engine("--port", rx.port_name, "--patch", str(patch), "--source", str(bundled_artworks()),
                                "--slide-seconds", "4", "--seed", "5", "--duration", "9")
            assert rx.wait_until(lambda got: any(m[0] == 0x92 for m in got if len(m) == 3), timeout=60), "no bass"
            time.sleep(1.0)
            for bad in (b"\x00" * 7, message("/itm/chord/hold", *range(17)), message("/itm/chord/hold", 3.5, 7),
                        message("/itm/chord/hold", 200), message("/itm/chord/hold")):
                send.sendto(bad, ("127.0.0.1", inport))
            t_hold = time.perf_counter()
            send.sendto(message("/itm/chord/hold", 63, 67, 70), ("127.0.0.1", inport))     # Eb, as notes
            time.sleep(2.5)
            send.sendto(message("/itm/chord/release"), ("127.0.0.1", inport))
            t_release = time.perf_counter()
            code, out = finish(proc)
            time.sleep(0.3)
            timed = list(rx.messages)
    finally:
        osc.close()
        send.close()
    assert code == 0, out[-3000:]
    assert rx.unmatched_note_ons() == []
    chords = osc.chords()
    during = [(t, p) for t, p in chords if t_hold < t < t_release]
    first = next((t for t, p in during if p[:2] == ["Eb", 3]), None)
    assert first is not None and first - t_hold < 5.0, during
    assert all(p[0] == "Eb" for t, p in during if t >= first)
    # the bass plays the held chord's root (E flat, octave 2) on channel 3
    bass = [(t, m[1]) for t, m in timed if len(m) == 3 and m[0] == 0x92 and m[2] > 0]
    assert any(p == 39 for t, p in bass if t_hold < t < t_release + 0.5), bass
    assert all(36 <= p < 48 for _, p in bass)
    assert any(p[0] != "Eb" for t, p in chords if t > t_release), chords
    assert "rejected" in out or "whole numbers" in out, out[-3000:]       # said, once, not a crash


def test_a_live_scene_change_starts_a_new_plan_at_the_cut(jack_server, midi_receiver):
    """A live source (a camera) switches picture: the plan restarts in the new scene's key at the cut, the chord
    layer's old chord ends there (the scheduler's discard) and the new plan's first chord is struck with the
    new scene's first notes. The engine runs here, its notes through the sender process to the receiver."""
    from installation import manifest
    from installation.engine import Engine, EngineConfig
    from installation.midi.sender_config import SenderConfig
    from installation.midi.sender_process import SenderProcess
    from installation.patches.patch import parse_patch
    from test_scene_change_live import Switching, artwork

    source = Switching(artwork("starry"), artwork("hubble"))
    sender = SenderProcess(SenderConfig(port=midi_receiver.port_name, midi_api="jack", log_level="warning"))
    sender.start()
    patch = parse_patch({"chord_layer": {"channel": 2, "style": "pad", "velocity": 44}})
    try:
        eng = Engine(manifest.load(None), source, EngineConfig(seed=4), scheduler=sender.scheduler, patch=patch)
        sender.wait_ready(30)
        try:
            eng.start()
            source.switch_at = eng.t0 + 3.0
            eng.wait(3.0 + 3.0)
            key_after = eng.timeline.at(0.0, timeout=0).direction.targets.key
            plan_key = eng.generator.plan.key
        finally:
            eng.stop()
    finally:
        assert sender.stop() == 0
    assert eng.failure is None, eng.failure
    time.sleep(0.2)
    changes = eng.generator.scene_changes
    assert len(changes) == 1, changes
    acted, due = changes[0]
    assert plan_key == (key_after.tonic, key_after.minor)                 # the plan is the new scene's
    msgs = list(midi_receiver.messages)
    layer = [(t, m) for t, m in msgs if len(m) == 3 and m[0] & 0x0F == 1 and m[0] & 0xE0 == 0x80]
    before = [t for t, m in layer if m[0] == 0x91 and m[2] > 0 and t < acted]
    assert before, "no chord layer before the change"
    # at the cut: what the layer sounded ends, and the new plan's first chord is struck with the first new notes
    sounding = {}
    for t, m in layer:
        if t > due - 0.02:
            break
        if m[0] == 0x91 and m[2] > 0:
            if t < acted:                   # the old scene's chord (the new plan's may come a little before the notes)
                sounding[m[1]] = t
        else:
            sounding.pop(m[1], None)
    assert sounding == {}, f"the old chord still sounds at the new scene's first note: {sorted(sounding)}"
    struck = [t for t, m in layer if m[0] == 0x91 and m[2] > 0 and acted <= t <= due + 0.3]
    assert struck, ("no chord struck with the new scene", acted, due, [t for t, _ in layer if t > acted][:6])
    assert midi_receiver.unmatched_note_ons() == []


def _decoder_follows_chords() -> bool:
    from installation import manifest
    from installation.mood import controls
    return getattr(controls, "CHORD", None) is not None and \
        manifest.load(None).data["model_config"]["control_dim"] >= controls.CHORD + 13


def test_the_piano_follows_a_chord_held_on_a_midi_input(jack_server, tmp_path):
    """Once the decoder learns the chord control (issue 22's retrained GRU): two seeded runs, one with E flat
    major held on the keyboard, one with E major; while held, the piano's notes favour the held chord's
    pitch classes over the other chord's."""
    if not _decoder_follows_chords():
        import pytest
        pytest.skip("the shipped decoder has no chord control yet (issue 22's retrained GRU)")
    from realtime_parts import MidiReceiver
    chords = {"Eb": (63, 67, 70), "E": (64, 68, 71)}
    share = {}
    for name, keys in chords.items():
        keyboard = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, "follow-keyboard")
        keyboard.open_virtual_port("follow-chords")
        try:
            patch = write_patch(tmp_path, "[[layer]]\nchannel = 1\n[input]\nchord_port = \"follow-chords\"\n",
                                name=f"{name}.toml")
            with MidiReceiver(client_name="follow-rx") as rx:
                proc = Drained(start_engine("--port", rx.port_name, "--patch", str(patch), "--source",
                                            str(bundled_artworks()), "--slide-seconds", "20", "--seed", "8",
                                            "--duration", "12"))
                assert rx.wait_until(lambda got: any(m[0] == 0x90 and m[2] > 0 for m in got if len(m) == 3),
                                     timeout=60), "no music"
                for note in keys:
                    keyboard.send_message([0x90, note, 90])
                t_press = time.perf_counter()
                time.sleep(8.0)
                for note in keys:
                    keyboard.send_message([0x80, note, 0])
                code, out = proc.finish()
                timed = list(rx.messages)
        finally:
            keyboard.close_port()
            release(keyboard)
        assert code == 0, out[-2000:]
        notes = [m[1] % 12 for t, m in timed if len(m) == 3 and m[0] == 0x90 and m[2] > 0 and t > t_press + 3.0]
        assert len(notes) >= 15, out[-2000:]
        share[name] = {c: sum(p in {k % 12 for k in ks} for p in notes) / len(notes) for c, ks in chords.items()}
    assert share["Eb"]["Eb"] > share["E"]["Eb"] + 0.15 and share["E"]["E"] > share["Eb"]["E"] + 0.15, share
