"""The vision thread: frames -> embeddings and emotion -> scene -> controls, published on a timeline.

Each embedded frame gives a scene (SceneTracker on the embedding), the image's
valence/arousal (ImageEmotion), on live cameras its motion (MotionMeter), and
from these the conductor's direction: the control vector the decoder plays
under, and the decoder's initial state for it.

Two kinds of source, one timeline:

- live (camera, stream): look at the newest frame ``watch_fps`` times a
  second (time: the engine clock since the start); each result replaces the last.
- timeline (video file, image, folder): look at the frame shown at media times
  0, 1/watch_fps, 2/watch_fps, ... running a bounded distance ahead of the
  music, so the music at time t always hears the same frames. This is what
  makes a seeded run from a file reproducible, note for note.

Of the frames looked at, one is embedded every 1/embed_fps seconds (the
cadence), and between those, at once, any frame the cheap change signal
(scene.CutWatch: a grey thumbnail against the scene's reference) marks as a
cut or as the steady second look that confirms one. So a new picture is
confirmed about two frames after it appears, not two cadence periods.

Inference runs here, never on the MIDI thread.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np

from installation.mood.conductor import Conductor, Direction
from installation.image.encoder import ImageEncoder
from installation.errors import UserError
from installation.image.scene import CutWatch, SceneConfig, SceneTracker

log = logging.getLogger(__name__)

QUADRANT_WORDS = ("Q1 happy/excited", "Q2 tense/angry", "Q3 sad/depressed", "Q4 calm/content")


def quadrant_word(valence: float, arousal: float) -> str:
    """The Russell quadrant of an emotion, e.g. 'Q4 calm/content'."""
    return QUADRANT_WORDS[{(True, True): 0, (False, True): 1, (False, False): 2, (True, False): 3}[(valence >= 0, arousal >= 0)]]


@dataclass(frozen=True)
class SceneEntry:
    """What the music should follow from media time ``t`` on."""
    t: float
    scene_id: int
    changed: bool
    cond: np.ndarray                # the control vector (installation/mood/controls.py)
    h0: object                      # the decoder's initial state for it (batch of one)
    valence_arousal: np.ndarray     # the emotion the music follows (after overrides and motion)
    direction: Direction            # what the conductor asked for, for logs and status
    label: str
    seen_t: float = -1.0            # a new scene: when its first distant frame was shown (same time base as t)


def scene_line(e: SceneEntry) -> str:
    """The log line of a new scene (without the time it was heard)."""
    d = e.direction
    return (f"scene {e.scene_id} at {max(e.seen_t, 0.0):.1f} s: {e.label}: {quadrant_word(d.valence, d.arousal)}: "
            f"{d.describe()}")


class SceneTimeline:
    """Scene entries by media time, shared by the vision thread (writer) and the generator (reader)."""

    def __init__(self, live: bool, keep_s: float = 30.0):
        self.live = live
        self.keep_s = keep_s
        self._entries: list[SceneEntry] = []
        self._cond = threading.Condition()
        self.ended = False
        self.version = 0

    def publish(self, e: SceneEntry) -> None:
        with self._cond:
            self._entries.append(e)
            while len(self._entries) > 2 and self._entries[1].t < e.t - self.keep_s:
                self._entries.pop(0)
            self.version += 1
            self._cond.notify_all()

    def end(self) -> None:
        with self._cond:
            self.ended = True
            self._cond.notify_all()

    def latest_t(self) -> float:
        with self._cond:
            return self._entries[-1].t if self._entries else -1.0

    def at(self, t: float, timeout: float | None = None) -> SceneEntry | None:
        """The entry in force at media time t. Timeline sources wait until the vision thread has
        reached t (or ended); live sources answer at once with the newest entry (None before the first)."""
        with self._cond:
            if self.live:
                self._cond.wait_for(lambda: self._entries or self.ended, timeout)
                return self._entries[-1] if self._entries else None
            self._cond.wait_for(lambda: (self._entries and self._entries[-1].t >= t) or self.ended, timeout)
            best = None
            for e in self._entries:
                if e.t <= t + 1e-9:
                    best = e
                else:
                    break
            return best

    def wait_newer(self, version: int, timeout: float) -> int:
        with self._cond:
            self._cond.wait_for(lambda: self.version > version or self.ended, timeout)
            return self.version


class VisionThread:
    """Runs the encoder and the scene tracker; publishes to a SceneTimeline."""

    def __init__(self, source, encoder: ImageEncoder, emotion, conductor: Conductor, decoder, timeline: SceneTimeline, *,
                 embed_fps: float, scene: SceneConfig, stop: threading.Event, music_time, ahead_s: float = 4.0,
                 motion=None, clock=time.perf_counter, on_error=None):
        self.source, self.encoder, self.decoder, self.timeline = source, encoder, decoder, timeline
        self.emotion, self.conductor = emotion, conductor
        self.motion = motion                  # a MotionMeter (live cameras with --motion-weight), or None
        self.period = 1.0 / embed_fps
        self.watch_period = 1.0 / max(scene.watch_fps, embed_fps)
        self.tracker = SceneTracker(scene)
        self.watch = CutWatch(scene)
        self.fast_embeds = 0                  # frames embedded at once on the change signal, since the start
        self.stop_event = stop
        self.music_time = music_time          # callable: the generator's current music time (s)
        self.ahead_s = ahead_s
        self.clock = clock
        self.on_error = on_error
        self.embed_seconds: deque[float] = deque(maxlen=4096)  # latency of recent frames -> controls, for benchmarks
        self.embeds = 0                       # frames embedded since the start
        self._thread = threading.Thread(target=self._run, name="vision", daemon=True)
        self._t0 = 0.0
        self._last_key, self._last_emb, self._last_va = None, None, None
        self._seen_key = None                 # the frame last looked at
        self._next_embed = 0.0                # time of the next cadence embedding
        self._first_distant_t = 0.0           # time of the first distant frame of a pending change

    def start(self, t0: float) -> None:
        self._t0 = t0
        self._thread.start()

    def join(self, timeout: float) -> None:
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _look(self, t: float, frame) -> None:
        """A frame seen at ``t``: embed it on the cadence, or at once if the change signal asks."""
        key = (frame.label, frame.index)
        if t >= self._next_embed - 1e-9:
            self._next_embed += self.period
            if self._next_embed <= t:                       # fell behind: skip, do not queue
                self._next_embed = t + self.period
        elif key == self._seen_key:
            return                                          # nothing new since the last look
        else:
            self._seen_key = key
            thumb = self.watch.thumbnail(frame.image)
            if not self.watch.wants(t, thumb, self.tracker.pending):
                return
            self.fast_embeds += 1
            self._process(t, frame, thumb)
            return
        self._seen_key = key
        self._process(t, frame, self.watch.thumbnail(frame.image))

    def _process(self, t: float, frame, thumb) -> None:
        began = self.clock()
        key = (frame.label, frame.index)
        if self.timeline.live or key != self._last_key:   # a still or slide shown again is not re-embedded
            emb, va = self.emotion.read(self.encoder, [frame.image])
            self._last_emb, self._last_va = emb[0], va[0]
            self._last_key = key
        emb = self._last_emb
        if self.tracker.pending == 0:
            self._first_distant_t = t         # the first frame of a change, if this one starts one
        up = self.tracker.update(t, emb, cut=self.watch.is_cut(thumb),
                                 confirm=self.watch.confirms(thumb, self.tracker.pending))
        self.watch.embedded(t, thumb, up, self.tracker.pending)
        first = self.embeds == 0
        motion = self.motion.update(t, frame.image) if self.motion is not None else None
        d = self.conductor.direct(t, self._last_va, motion=motion, new_scene=up.changed or first)
        h0 = self.decoder.initial(d.controls[None, :])
        self.embed_seconds.append(self.clock() - began)
        self.embeds += 1
        seen = self._first_distant_t if up.changed else t
        entry = SceneEntry(t, up.scene_id, up.changed, d.controls, h0, np.array([d.valence, d.arousal], np.float32),
                           d, frame.label, seen)
        self.timeline.publish(entry)        # the generator logs the scene when its first note is due

    def _run(self) -> None:
        try:
            k = 0
            next_due = self._t0
            watch_fps = 1.0 / self.watch_period
            while not self.stop_event.is_set():
                if self.timeline.live:
                    now = self.clock()
                    if now < next_due:
                        self.stop_event.wait(next_due - now)
                        continue
                    next_due += self.watch_period
                    if next_due < now:               # fell behind: skip, do not queue
                        next_due = now + self.watch_period
                    self._look(now - self._t0, self.source.frame_at(now - self._t0))
                else:
                    t = k / watch_fps
                    if t > self.music_time() + self.ahead_s:   # far enough ahead of the music
                        self.stop_event.wait(min(self.period, 0.1))
                        continue
                    self._look(t, self.source.frame_at(t))
                    k += 1
        except UserError as exc:                     # e.g. a camera that stopped giving frames
            if self.on_error:
                self.on_error(exc)
        except Exception as exc:                     # an engine fault: stop the show cleanly
            log.exception("vision thread failed: %s", exc)
            if self.on_error:
                self.on_error(exc)
        finally:
            self.timeline.end()
