"""midi_io with real parts: a JACK dummy server, rtmidi receivers, FluidSynth."""
from __future__ import annotations

import logging
import os
import threading
import time

import mido
import pytest
import rtmidi

from installation.midi import midi_io
from installation.errors import UserError
from installation.midi.midi_io import MidiOut, NoMidiSystem, Recorder, RecordOnly
from realtime_parts import FluidSynthJack, MidiReceiver, wav_rms

NO_ALSA = not os.path.exists("/dev/snd/seq")


def jack_destinations() -> list[str]:
    """Names of the JACK MIDI ports one can send to, as a fresh client sees them."""
    lister = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, "test-lister")
    try:
        return lister.get_ports()
    finally:
        lister.delete()


def note_pairs(n: int, channel: int = 0) -> list[tuple[int, int, int]]:
    """n note-on/note-off pairs on distinct pitches: 2n messages."""
    out = []
    for i in range(n):
        out.append((0x90 | channel, 36 + i % 60, 1 + i % 127))
        out.append((0x80 | channel, 36 + i % 60, 0))
    return out


def send_until(out: MidiOut, condition, timeout: float = 10.0) -> bool:
    """Keep sending a filler (CC7, volume) until ``condition()`` holds (the watchdog runs at 1 Hz)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out.send((0xB0, 7, 100))
        if condition():
            return True
        time.sleep(0.05)
    return False


# --- API choice ------------------------------------------------------------------------

def test_unknown_or_uncompiled_api_is_a_one_line_user_error():
    with pytest.raises(UserError, match=r"--midi-api 'foo'.*choose one of: .*jack") as err:
        midi_io.choose_api("foo")
    assert "\n" not in str(err.value)
    missing = next((a for a in midi_io.API_NAMES if a not in midi_io.compiled_apis()), None)
    if missing:
        with pytest.raises(UserError, match=f"--midi-api '{missing}' is not available"):
            midi_io.choose_api(missing)


def test_auto_api_falls_back_to_jack_when_it_answers(jack_server, caplog):
    caplog.set_level(logging.INFO, logger="installation.midi.midi_io")
    expected = "jack" if NO_ALSA else "alsa"
    assert midi_io.choose_api(None) == expected
    assert f"MIDI API: {expected}" in caplog.text
    assert midi_io.choose_api("JACK") == "jack"


def test_list_ports_sees_receiver_and_virtual_output(jack_server, midi_receiver):
    out = MidiOut("jack", virtual_name="itm-listed")
    out.open()
    try:
        ports = midi_io.list_ports("jack")
    finally:
        out.close()
    assert midi_receiver.port_name in ports["outputs"]
    assert out.port_name in ports["inputs"]
    assert out.port_name not in midi_io.list_ports("jack")["inputs"]     # closed means gone


# --- finding ports ---------------------------------------------------------------------

def test_find_port_exact_then_substring_then_none_or_many(jack_server):
    with MidiReceiver("pad"), MidiReceiver("xpad"), MidiReceiver("Strings", port="keys"), \
            MidiReceiver("Pad"):
        names = jack_destinations()
        assert {"pad:in", "xpad:in", "Strings:keys", "Pad:in"} <= set(names)
        assert midi_io.find_port(names, "pad:in") == "pad:in"          # exact beats all others
        assert midi_io.find_port(names, "Pad:in") == "Pad:in"
        assert midi_io.find_port(names, "XPAD") == "xpad:in"           # substring, any case
        assert midi_io.find_port(names, "strings:KEYS") == "Strings:keys"
        with pytest.raises(UserError) as none:
            midi_io.find_port(names, "organ")
        msg = str(none.value)
        assert "no MIDI output port matches 'organ'" in msg
        assert "pad:in" in msg and "Strings:keys" in msg and "--port" in msg and "--virtual-port" in msg
        assert "\n" not in msg
        with pytest.raises(UserError, match=r"'PAD:IN' is ambiguous; it matches: ") as many:
            midi_io.find_port(names, "PAD:IN")
        listed = str(many.value).split("matches: ")[1].split(". Use")[0].split(", ")
        assert sorted(listed) == ["Pad:in", "pad:in", "xpad:in"]
        assert "--port" in str(many.value) and "\n" not in str(many.value)


# --- MidiOut ---------------------------------------------------------------------------

def test_constructing_midi_out_opens_nothing(jack_server, midi_receiver):
    threads = threading.active_count()
    out = MidiOut("jack", port_query=midi_receiver.port_name, client_name="itm-lazy")
    assert threading.active_count() == threads
    assert not any(p.startswith("itm-lazy") for p in jack_server.ports())
    assert out.send((0x90, 60, 100)) is False
    out.close()                                      # closing an unopened output is fine


def test_midi_out_connects_and_messages_arrive_in_order(jack_server, midi_receiver):
    out = MidiOut("jack", port_query="test-receiver")          # a substring of 'test-receiver:in'
    out.open()
    try:
        assert out.port_name == midi_receiver.port_name
        assert "connected" in out.describe()
        messages = note_pairs(200)
        assert all(out.send(m) for m in messages)
        assert midi_receiver.wait_for(len(messages))
    finally:
        out.close()
    assert midi_receiver.received() == messages
    assert midi_receiver.unmatched_note_ons() == []
    assert out.send((0x90, 60, 1)) is False          # closed


def test_unknown_port_is_a_user_error_and_leaves_nothing_open(jack_server, midi_receiver):
    out = MidiOut("jack", port_query="no-such-synth", client_name="itm-missing")
    with pytest.raises(UserError, match="no MIDI output port matches 'no-such-synth'.*test-receiver:in"):
        out.open()
    assert not any(p.startswith("itm-missing") for p in jack_server.ports())


def test_virtual_port_that_the_receiver_connects_to(jack_server):
    threads = threading.active_count()
    out = MidiOut("jack", virtual_name="itm-virtual")
    out.open()
    try:
        assert out.port_name == "image-to-music:itm-virtual"
        assert threading.active_count() == threads + 1                 # on JACK: a watchdog for the server
        with MidiReceiver("virtual-listener", source=out.port_name) as rx:
            messages = note_pairs(20, channel=3)
            assert all(out.send(m) for m in messages)
            assert rx.wait_for(len(messages))
            assert rx.received() == messages
    finally:
        out.close()


def test_send_never_raises_on_bad_messages(jack_server, midi_receiver):
    out = MidiOut("jack", port_query=midi_receiver.port_name)
    out.open()
    try:
        assert out.send(()) is False
        assert out.send((0x90, 60, 100, 5)) is False
        assert out.send((0x90, 61, 100)) is True
        assert midi_receiver.wait_for(1)
    finally:
        out.close()
    assert midi_receiver.received() == [(0x90, 61, 100)]


def test_all_sound_off_sends_cc123_and_cc120_per_channel(jack_server, midi_receiver):
    out = MidiOut("jack", port_query=midi_receiver.port_name)
    out.open()
    try:
        assert out.all_sound_off([0, 1, 9])
        assert midi_receiver.wait_for(6)
    finally:
        out.close()
    assert midi_receiver.received() == [(0xB0, 123, 0), (0xB0, 120, 0), (0xB1, 123, 0),
                                        (0xB1, 120, 0), (0xB9, 123, 0), (0xB9, 120, 0)]


def test_reconnects_when_the_receiver_comes_back(jack_server, caplog):
    caplog.set_level(logging.INFO, logger="installation.midi.midi_io")
    first = MidiReceiver("comeback").open()
    out = MidiOut("jack", port_query="comeback:in")
    out.open()
    try:
        assert out.send((0x90, 60, 100)) and out.send((0x80, 60, 0))
        assert first.wait_for(2)
        first.close()                                                  # the synth quits
        assert send_until(out, lambda: not out.connected), "the loss was never noticed"
        assert out.send((0x90, 61, 100)) is False                     # and nothing raised

        with MidiReceiver("comeback") as second:                       # the synth is back
            assert second.port_name == "comeback:in"
            assert send_until(out, lambda: out.connected), "never reconnected"
            messages = note_pairs(30)
            assert all(out.send(m) for m in messages)
            assert second.wait_until(lambda got: got[-len(messages):] == messages)
            assert all(m[0] == 0xB0 for m in second.received()[:-len(messages)])   # just fillers
    finally:
        out.close()
    assert caplog.text.count("'comeback:in' is gone") == 1
    assert caplog.text.count("'comeback:in' is back; reconnected") == 1


# --- recording ----------------------------------------------------------------------------

def test_recorder_writes_a_midi_file_mido_reads_back(tmp_path):
    rec = Recorder()
    sent = [(100.000, (0x90, 60, 90)), (100.2513, (0x90, 64, 80)), (100.5004, [0x80, 60, 0]),
            (101.0037, (0x80, 64, 0)), (101.2, (0xB0, 64, 127))]
    for t, m in sent:
        rec.add(t, m)
    assert len(rec) == 5
    path = tmp_path / "take.mid"
    rec.write(path)

    got, t = [], 0.0
    for msg in mido.MidiFile(path):               # mido applies the tempo: msg.time in seconds
        t += msg.time
        if not msg.is_meta:
            got.append((t, tuple(msg.bytes())))
    assert [m for _, m in got] == [tuple(m) for _, m in sent]
    for (t_got, _), (t_sent, _) in zip(got, sent):
        assert t_got == pytest.approx(t_sent - 100.0, abs=0.0011)


def test_recorder_reports_an_unwritable_path_as_user_error(tmp_path):
    rec = Recorder()
    rec.add(0.0, (0x90, 60, 90))
    with pytest.raises(UserError, match="--record .*missing-dir"):
        rec.write(tmp_path / "missing-dir" / "take.mid")


# --- open_output: the product's fallbacks ---------------------------------------------------

def test_open_output_without_port_creates_the_default_virtual_port(jack_server):
    sink, description = midi_io.open_output("jack", None, None, None)
    try:
        assert isinstance(sink, MidiOut)
        assert sink.port_name == "image-to-music:image-to-music"
        assert "virtual port" in description
    finally:
        sink.close()


def test_open_output_connects_to_a_named_port(jack_server, midi_receiver):
    sink, description = midi_io.open_output("jack", "test-receiver", None, None)
    try:
        assert sink.send((0x90, 70, 1))
        assert midi_receiver.wait_for(1)
        assert "test-receiver:in" in description
    finally:
        sink.close()


@pytest.fixture
def no_jack(monkeypatch):
    """Point JACK at a server that does not exist (and must not be started)."""
    monkeypatch.setenv("JACK_DEFAULT_SERVER", f"absent-{os.getpid()}")
    monkeypatch.setenv("JACK_NO_START_SERVER", "1")


@pytest.mark.parametrize("api", ["jack", pytest.param(None, marks=pytest.mark.skipif(
    not NO_ALSA, reason="an ALSA sequencer is reachable here"))])
def test_no_midi_system_falls_back_to_record_only(no_jack, api, tmp_path, caplog):
    with pytest.raises(NoMidiSystem) as err:
        midi_io.open_output(api, None, None, None)
    assert "--record" in str(err.value) and "\n" not in str(err.value)

    caplog.set_level(logging.WARNING, logger="installation.midi.midi_io")
    sink, description = midi_io.open_output(api, "some-synth", None, tmp_path / "out.mid")
    assert isinstance(sink, RecordOnly)
    assert sink.send((0x90, 60, 100)) is True
    assert "recording to" in description and "out.mid only" in description
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "no MIDI system reachable" in warnings[0].getMessage()
    assert "--port 'some-synth' ignored" in warnings[0].getMessage()


# --- a real synth -----------------------------------------------------------------------------

def play_into(synth: FluidSynthJack, messages) -> None:
    """Connect a MidiOut to the synth, send the messages 0.1 s apart, let them ring."""
    out = MidiOut("jack", port_query=synth.port_name, client_name="itm-to-synth")
    out.open()
    try:
        time.sleep(0.2)
        for m in messages:
            assert out.send(m)
            time.sleep(0.1)
        time.sleep(0.5)
    finally:
        out.close()
    synth.stop()


def test_fluidsynth_renders_notes_sent_through_midi_out(fluidsynth, tmp_path):
    chord = [(0x90, p, 110) for p in (48, 60, 64, 67)] + [(0x80, p, 0) for p in (48, 60, 64, 67)]
    play_into(fluidsynth, chord)
    loud = wav_rms(fluidsynth.wav_path)

    with FluidSynthJack(tmp_path / "control.wav") as quiet_synth:      # the control: no notes
        play_into(quiet_synth, [])
    quiet = wav_rms(quiet_synth.wav_path)

    assert loud > 0.005, f"FluidSynth rendered silence (rms {loud:.2e})"
    assert quiet < loud / 20, f"no-notes control is not quiet (rms {quiet:.2e} vs {loud:.2e})"
