"""Shared fixtures. Real parts (JACK, receiver, FluidSynth) come from realtime_parts."""
from __future__ import annotations

from pathlib import Path

import pytest

from realtime_parts import FluidSynthJack, JackServer, MidiReceiver, MissingTool

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def jack_server():
    """A private JACK dummy server for the whole session; JACK_DEFAULT_SERVER points at it."""
    server = JackServer()
    try:
        server.start()
    except MissingTool as exc:
        pytest.skip(f"{exc}: real-MIDI tests skipped")
    yield server
    server.stop()


@pytest.fixture
def midi_receiver(jack_server):
    """An rtmidi receiver with the JACK input port 'test-receiver:in'."""
    with MidiReceiver() as receiver:
        yield receiver


@pytest.fixture
def fluidsynth(jack_server, tmp_path):
    """A running FluidSynth (JACK MIDI in, WAV out at ``.wav_path``); stopped at teardown."""
    synth = FluidSynthJack(tmp_path / "fluidsynth.wav")
    try:
        synth.start()
    except MissingTool as exc:
        pytest.skip(f"{exc}: FluidSynth test skipped")
    yield synth
    synth.stop()


@pytest.fixture
def shared_data() -> Path:
    """The shared data folder ../shared/data next to the repository."""
    path = (REPO.parent / "shared" / "data").resolve()
    if not path.is_dir():
        pytest.skip("../shared/data is absent: data-dependent test skipped")
    return path
