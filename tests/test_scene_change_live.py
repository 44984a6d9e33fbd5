"""A new picture is heard, people walking past are not a new picture.

- Live, with a real JACK server and an independent receiver: a live source
  (like a camera) switches to a very different artwork; the new scene's first
  note arrives within a generous 3 s (the speed itself, about 0.2 s, is measured
  in bench/bench_scene_change.py), the old phrase has ended when it comes, and
  the scene's log line is written when that note is due, not before.
- Generated videos (tests/media.py) through the engine's vision thread: figures
  walking and standing in front of one picture change no scene; the same
  figures with the picture changing under them change exactly one, at the cut.
"""
from __future__ import annotations

import logging
import re
import time

import pytest

from installation import manifest
from installation.engine import Engine, EngineConfig
from installation.image.capture import Frame, FrameSource, VideoFileSource, bundled_artworks
from installation.image.preprocess import load_rgb
from installation.midi.sender_config import SenderConfig
from installation.midi.sender_process import SenderProcess
from media import make_people_video
from realtime_parts import is_note_on
from vision_parts import scene_changes


def artwork(word: str):
    return load_rgb(next(p for p in sorted(bundled_artworks().glob("*.jpg")) if word in p.name))


class Switching(FrameSource):
    """A live source: picture ``a`` until clock time ``switch_at`` (set once started), then ``b``."""

    live = True

    def __init__(self, a, b):
        self.a, self.b = a, b
        self.switch_at = float("inf")
        self._n = 0

    def frame_at(self, t: float) -> Frame:
        self._n += 1
        after = time.perf_counter() >= self.switch_at
        return Frame(self.b if after else self.a, "b" if after else "a", self._n)


class Stamped(logging.Handler):
    """Keeps (time.perf_counter() at emit, message) of every record."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.lines: list[tuple[float, str]] = []

    def emit(self, record):
        self.lines.append((time.perf_counter(), record.getMessage()))


def test_a_new_picture_is_heard_within_3_s_as_a_phrase_end(jack_server, midi_receiver):
    """As `play` runs: the engine here, its notes through the sender process to the receiver."""
    source = Switching(artwork("starry"), artwork("hubble"))
    sender = SenderProcess(SenderConfig(port=midi_receiver.port_name, midi_api="jack", log_level="warning"))
    sender.start()
    handler = Stamped()
    gen_log = logging.getLogger("installation.music.generator")
    gen_log.addHandler(handler)
    old_level = gen_log.level
    gen_log.setLevel(logging.INFO)
    try:
        eng = Engine(manifest.load(None), source, EngineConfig(seed=3), scheduler=sender.scheduler)
        sender.wait_ready(30)
        try:
            eng.start()
            source.switch_at = eng.t0 + 3.0
            eng.wait(3.0 + 3.5)
        finally:
            eng.stop()
    finally:
        assert sender.stop() == 0
        gen_log.removeHandler(handler)
        gen_log.setLevel(old_level)
    assert eng.failure is None, eng.failure
    time.sleep(0.2)
    switch = source.switch_at
    changes = eng.generator.scene_changes
    assert len(changes) == 1, changes                      # one new picture, one change
    acted, due = changes[0]
    assert switch <= acted
    msgs = list(midi_receiver.messages)
    first_new = next(((t, m) for t, m in msgs if t >= due - 0.002 and is_note_on(m)), None)
    assert first_new is not None, "no note after the scene change reached the receiver"
    assert first_new[0] - switch < 3.0, f"heard {first_new[0] - switch:.2f} s after the switch"
    # the old phrase has ended when the new one starts: nothing from before still sounds
    sounding = set()
    for t, m in msgs:
        if t >= first_new[0]:
            break
        if is_note_on(m):
            sounding.add((m[0] & 0x0F, m[1]))
        elif len(m) == 3 and (m[0] & 0xF0 == 0x80 or m[0] & 0xF0 == 0x90):
            sounding.discard((m[0] & 0x0F, m[1]))
    before = [m for t, m in msgs if t < switch and is_note_on(m)]
    assert before, "nothing was playing before the switch"
    assert sounding == set(), f"old notes still sounding at the new scene's first note: {sounding}"
    # the scene line is written when its first note is due, with the delay it had
    lines = [(t, s) for t, s in handler.lines if s.startswith("scene 1 ")]
    assert len(lines) == 1, handler.lines
    t_line, text = lines[0]
    assert due <= t_line <= due + 1.0, (t_line - due, text)
    heard_ms = float(re.search(r"heard (\d+) ms after", text).group(1))
    assert 0 < heard_ms < 3000, text
    assert midi_receiver.unmatched_note_ons() == []


def vision_changes(path, seconds: float) -> list[float]:
    """Media times of the scene changes the engine's vision thread finds in a video file (timeline)."""
    source = VideoFileSource(path)
    source.open()
    try:
        return scene_changes(manifest.load(None), source, seconds, timeout_s=120)[0]
    finally:
        source.close()


@pytest.mark.parametrize("seed", [0, 2])
def test_people_walking_past_a_picture_change_no_scene(tmp_path, seed):
    video = make_people_video(tmp_path / "people.avi", artwork("starry"), seconds=20.0, seed=seed)
    assert vision_changes(video, 20.0) == []


def test_the_picture_changing_behind_people_is_one_scene_change(tmp_path):
    video = make_people_video(tmp_path / "cut.avi", artwork("starry"), seconds=12.0, seed=0,
                              then=artwork("coffee"), cut_s=6.0)
    changes = vision_changes(video, 12.0)
    assert len(changes) == 1 and 6.0 <= changes[0] <= 6.5, changes
