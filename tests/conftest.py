"""Shared fixtures. Real parts (JACK, receiver, FluidSynth) come from realtime_parts.

Under CI (the environment variable ``CI`` set, as CI services set it) a skip is a failure: a missing jackd,
FluidSynth, Chromium, package or ``../shared/data`` must not pass quietly. Only the skips in ``ALLOWED_IN_CI``
stay skips there, each for the reason it gives.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from realtime_parts import FluidSynthJack, JackServer, MidiReceiver, MissingTool

REPO = Path(__file__).resolve().parent.parent

# Skips CI allows: a pattern of the skip's reason -> why it is no defect of the machine CI runs on.
ALLOWED_IN_CI = {
    r"aalink \(optional, GPL\)": "Ableton Link's package is GPL-3.0 and optional (.ci/run tries to install it)",
    r"this machine has a sound card": "the WAV fallback is for machines without a sound card; CI has none, "
                                      "a workstation may",
    r"too close to midnight": "a closing time must fit inside the test's day",
    r"cannot mount a tmpfs": "a full disk is made with a tmpfs, which only root (or a privileged container) can "
                             "mount; the issue asks for it where one can be mounted",
    r"an ALSA sequencer is reachable here": "the no-MIDI-system fallback is met only where ALSA is absent; its "
                                            "JACK case runs everywhere",
    r"not a git checkout": "the check is about the git checkout; a source tarball has none",
}


def _forbidden_in_ci(reason: str) -> bool:
    return bool(os.environ.get("CI")) and not any(re.search(p, reason) for p in ALLOWED_IN_CI)


def _skip_reason(report) -> str:
    lr = report.longrepr
    return lr[2] if isinstance(lr, tuple) and len(lr) == 3 else str(lr)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A test's skip (pytest.skip, importorskip, skipif, a fixture's skip) fails under CI unless allowed."""
    report = yield
    if report.skipped and not hasattr(report, "wasxfail") and _forbidden_in_ci(_skip_reason(report)):
        report.outcome = "failed"
        report.longrepr = f"skipped under CI, where it must run: {_skip_reason(report)}"
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector):
    """A whole module's skip (importorskip at the top) fails under CI unless allowed."""
    report = yield
    if report.skipped and _forbidden_in_ci(_skip_reason(report)):
        report.outcome = "failed"
        report.longrepr = f"skipped under CI, where it must run: {_skip_reason(report)}"
    return report


# The everyday subset is `pytest -m "not slow"`; the whole suite (`python -m pytest`, `bash .ci/run`) runs all.
# A test is slow when it needs a JACK server, FluidSynth, Chromium, Ray or training, or plays for a long time:
# every test of the files below, and any other test that takes one of the fixtures below.
SLOW_FILES = {
    # JACK (the kiosk's processes, play's sender, an independent receiver)
    "test_camera_no_frames.py", "test_engine_live.py", "test_jack_restart.py", "test_kiosk_hangs.py",
    "test_kiosk_live.py", "test_kiosk_runtime_folder.py", "test_kiosk_soak.py", "test_kiosk_source.py",
    "test_kiosk_stop.py", "test_play_sender.py", "test_scene_change_live.py", "test_status_hardening.py",
    "test_pedal_release.py",
    # FluidSynth, Chromium, Ray
    "test_play_synth.py", "test_patches_live.py", "test_patches_render.py", "test_readme_setup.py",
    "test_collection.py", "test_kiosk_browser.py", "test_collection_gallery.py", "test_collection_ray.py",
    "test_collection_hostile.py",
    "test_kiosk_truth.py", "test_deploy_display.py", "test_kiosk_network.py", "test_play_signals.py",
    # training (torch), and a package built and installed
    "test_training_pipeline.py", "test_transformer.py", "test_shipped_models.py", "test_image_emotion.py",
    "test_gpu_training.py", "test_package.py",
}
SLOW_FIXTURES = {"jack_server", "midi_receiver", "fluidsynth"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.name in SLOW_FILES or SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


def started(thing, skipped: str):
    """``thing`` started, or the test skipped (naming what is missing, then ``skipped``) where a tool is absent."""
    try:
        thing.start()
    except MissingTool as exc:
        pytest.skip(f"{exc}: {skipped}")
    return thing


@pytest.fixture(scope="session")
def jack_server():
    """A private JACK dummy server for the whole session; JACK_DEFAULT_SERVER points at it."""
    server = started(JackServer(), "real-MIDI tests skipped")
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
    synth = started(FluidSynthJack(tmp_path / "fluidsynth.wav"), "FluidSynth test skipped")
    yield synth
    synth.stop()


@pytest.fixture
def shared_data() -> Path:
    """The shared data folder ../shared/data next to the repository."""
    path = (REPO.parent / "shared" / "data").resolve()
    if not path.is_dir():
        pytest.skip("../shared/data is absent: data-dependent test skipped")
    return path
