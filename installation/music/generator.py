"""The generator thread: samples events ahead of playback and hands timed MIDI messages to the scheduler.

Music time ``m`` (seconds of performance, as the model counts it) maps to the
engine clock as ``due = t0 + offset + m * tempo_scale``. The generator keeps
at most ``lookahead_s`` of music queued, sleeping on the scene timeline so a
new scene wakes it at once.

- Conditioning glides (scene.Crossfade) toward each new scene entry.
- Live sources: a scene change discards what is queued but not yet due (the
  scheduler closes sounding notes) and generation resumes from now under the
  new scene, so the change is heard within the detection delay plus ~50 ms.
  The change is a phrase end, not a cut: the notes sounding at the cut end
  there, the model is told so (their note-offs) and rests ``entry_breath_s``
  (a breath), and the new phrase starts under the new scene's state and a
  conditioning that glides into its key; a longer rest the model starts it
  with is shortened so its first note comes within ``entry_gap_s``.
- Logs tell the time the music does: a new scene's line is written once its
  first note is due (heard), with the delay from the frame that showed it.
- Phrase re-priming: after ``phrase_s`` of music, at the next moment with no
  note sounding, the hidden state is pulled part of the way back to the
  scene's h0, so long runs do not drift into noodling.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import numpy as np

from installation.mood.controls import CHORD, chord_code
from installation.music import events as E
from installation.music.decoder import Performer
from installation.image.scene import Crossfade
from installation.image.vision import SceneTimeline, scene_line

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GeneratorConfig:
    lookahead_s: float = 0.75      # music queued ahead of playback
    tempo_scale: float = 1.0       # > 1 plays slower (stretches time), < 1 faster
    channel: int = 0               # MIDI channel 0..15
    crossfade_s: float = 2.0       # glide of the conditioning to a new scene
    phrase_s: float = 20.0         # re-prime after this much music, at a rest
    reprime_mix: float = 0.6       # how far the hidden state moves back to h0 at a re-prime
    scene_mix: float = 0.5         # how far it moves to the new scene's h0 at a scene change
    discard_margin_s: float = 0.05  # live scene change: keep what is due within this
    entry_gap_s: float = 0.15      # live scene change: the new scene's first note comes within this of the cut
    entry_breath_s: float = 0.04   # live scene change: the old phrase ends at the cut, then a rest this long at least


class GeneratorThread:
    """Owns a Performer; writes (due, message) pairs into the scheduler."""

    def __init__(self, performer: Performer, scheduler, timeline: SceneTimeline, cfg: GeneratorConfig, *,
                 stop: threading.Event, clock=time.perf_counter, on_error=None, shaper=None):
        self.p, self.scheduler, self.timeline, self.cfg = performer, scheduler, timeline, cfg
        self.shaper = shaper           # a patch's NoteRouter: note -> messages (None: one channel, as generated)
        self.tempo_scale = cfg.tempo_scale
        self._tempo_request: float | None = None
        self.stop_event, self.clock, self.on_error = stop, clock, on_error
        self.fade = Crossfade(cfg.crossfade_s)
        self.stream = E.EventStream()
        self.sounding: set[int] = set()
        self.pedal_down = False          # the sustain pedal as sent (CC64)
        self.scene_id = -1
        self.t0 = 0.0
        self.offset = 0.0              # clock shift applied after a live discard
        self.events_generated = 0
        self.scene_changes: list[tuple[float, float]] = []   # (clock time of the change, due time of the first new note)
        self._pending_change: float | None = None
        self._entry_deadline = 0.0     # music time by which the new scene's first note must come
        self._last_prime = 0.0
        self._version = 0
        self._heard: list = []         # [entry, due of its first note or None]: new scenes not yet logged
        self.plan = None               # a HarmonyPlan (mood/harmony) in music time: restarted at a new scene or key
        self.chords = None             # a patch's chord layer (patches.routing.ChordPlayer), pushed with the notes
        self._thread = threading.Thread(target=self._run, name="generator", daemon=True)

    # --- time -----------------------------------------------------------------
    def due(self, m: float) -> float:
        # to the microsecond: after a tempo change the same music time comes out a few 1e-16 s apart, and the
        # scheduler (due, then push order) would then swap the notes of one chord (seen under a jittery clock)
        return round(self.t0 + self.offset + m * self.tempo_scale, 6)

    def music_at(self, t: float) -> float:
        """The music time sounding at clock time t (for controls that follow the playback)."""
        return (t - self.t0 - self.offset) / self.tempo_scale

    def set_tempo_scale(self, scale: float) -> None:
        """Ask for a new tempo scale (any thread; e.g. an incoming MIDI clock). Music generated from
        now on is due at the new rate, continuing from the last generated event without a jump."""
        self._tempo_request = float(scale)

    def _apply_tempo(self) -> None:
        new, self._tempo_request = self._tempo_request, None
        if new is None or new == self.tempo_scale:
            return
        m = self.stream.time
        self.offset += m * (self.tempo_scale - new)       # due(m) stays where it was
        self.tempo_scale = new

    def music_time(self) -> float:
        return self.stream.time

    def start(self, t0: float) -> None:
        self.t0 = t0
        self._thread.start()

    def join(self, timeout: float) -> None:
        if self._thread.is_alive():
            self._thread.join(timeout)

    # --- the loop -------------------------------------------------------------
    def _run(self) -> None:
        try:
            entry = None
            while entry is None and not self.stop_event.is_set():
                entry = self.timeline.at(0.0, timeout=0.1)
            if entry is None:
                return
            self._enter(entry, first=True)
            while not self.stop_event.is_set():
                if self._heard:
                    self._log_heard()
                if self._tempo_request is not None:
                    self._apply_tempo()
                ahead = self.due(self.stream.time) - self.clock()
                if ahead > self.cfg.lookahead_s:
                    self._version = self.timeline.wait_newer(self._version, min(ahead - self.cfg.lookahead_s, 0.05))
                    if self.timeline.live:
                        self._follow_live()
                    continue
                if not self.timeline.live:
                    e = self.timeline.at(self.stream.time, timeout=0.5)
                    if e is None:
                        continue
                    if e is not entry:
                        entry = e
                        self._enter(e)
                else:
                    self._follow_live()
                self._one_event()
        except Exception as exc:
            log.exception("generator thread failed: %s", exc)
            if self.on_error:
                self.on_error(exc)

    def _follow_live(self) -> None:
        e = self.timeline.at(0.0, timeout=0)
        if e is not None and e.scene_id != self.scene_id:
            now = self.clock()
            cut = now + self.cfg.discard_margin_s
            self.scheduler.discard_after(cut)
            if self.chords is not None:
                self.chords.reset()                     # the scheduler closes what the chord layer sounds
            # resume the music clock at the cut: later events are due from there
            m_cut = self.stream.time
            self.offset = cut - (self.t0 + m_cut * self.tempo_scale)
            ended = sorted(self.sounding)
            self.sounding.clear()
            if self.shaper is not None:
                self.shaper.reset()                     # the scheduler closes what sounds
            pedal_was_down, self.pedal_down = self.pedal_down, False
            if pedal_was_down:                          # the old phrase's pedal lifts at the cut
                pedal = getattr(self.shaper, "pedal", None)
                msgs = pedal(m_cut, False) if pedal else [(0xB0 | self.cfg.channel, 64, 0)]
                self.scheduler.push([(round(cut, 6), m) for m in msgs])
            self._pending_change = now
            self._entry_deadline = m_cut + self.cfg.entry_gap_s / self.tempo_scale
            self._enter(e)
            self._end_phrase(ended, pedal_was_down)
        elif e is not None and e.t > getattr(self, "_live_t", -1):
            self._live_t = e.t
            self.fade.set(self.stream.time, e.cond)
            self._follow_harmony(e, False)

    def _enter(self, e, first: bool = False) -> None:
        """Start following scene entry e (a new scene, or a new smoothed value of the same one)."""
        new_scene = e.scene_id != self.scene_id
        self.fade.set(self.stream.time, e.cond, immediate=first)
        if first:
            self.p.prime(e.h0)
            self._last_prime = self.stream.time
        elif new_scene:
            self.p.prime(e.h0, mix=self.cfg.scene_mix)
        self.scene_id = e.scene_id
        self._scene_h0 = e.h0
        self._follow_harmony(e, first or new_scene)
        if first or new_scene:
            self._heard.append([e, None])

    def _follow_harmony(self, e, new_scene: bool) -> None:
        """A new scene (or a new key in the same scene) starts a new harmony plan at once, at the music time now."""
        key = getattr(getattr(e.direction, "targets", None), "key", None) if self.plan is not None else None
        if key is not None and (new_scene or self.plan.key != (key.tonic, key.minor)):
            self.plan.restart(self.stream.time, key.tonic, key.minor, float(e.valence_arousal[1]))

    def _log_heard(self) -> None:
        """Log each new scene whose first note is due by now, with the delay from the frame that showed it."""
        while self._heard and self._heard[0][1] is not None and self._heard[0][1] <= self.clock():
            e, due = self._heard.pop(0)
            seen = self.t0 + e.seen_t if self.timeline.live else self.due(e.seen_t)
            log.info("%s%s; heard %.0f ms after it was seen", scene_line(e), self._scale_note(),
                     (due - seen) * 1e3)

    def _scale_note(self) -> str:
        """What a patch's scale makes of the key the model was asked for: the scene line names what is heard."""
        patch = getattr(self.shaper, "patch", None) or getattr(getattr(self.shaper, "router", None), "patch", None)
        scale = getattr(getattr(patch, "shaping", None), "scale", None)
        return f" (played in {scale}: the patch's scale)" if scale else ""

    def _end_phrase(self, ended: list[int], pedal: bool = False) -> None:
        """Live scene change: the model and the stream hear the old phrase end as the scheduler plays it
        (the notes in ``ended`` released at the cut, and the pedal lifted), then a breath of ``entry_breath_s``.
        Each told event takes one decoder step whose own sample is dropped."""
        steps = int(round(self.cfg.entry_breath_s / self.tempo_scale * E.STEPS_PER_SECOND))
        told = [E.NOTE_OFF + p for p in ended] + ([E.PEDAL_UP] if pedal else [])
        told += [E.TIME_SHIFT + min(steps, E.NUM_TIME_SHIFTS) - 1] if steps else []
        for ev in told:
            self.p.next(self.fade.value(self.stream.time))
            self.p.last = np.array([ev], np.int64)
            if ev == E.PEDAL_UP:
                self.p.notes.update(self.p.last)        # the mask hears the lift too
            self.stream.feed(ev)

    def _shorten_entry_rest(self, ev: int, m: float) -> int:
        """After a live scene change, a rest that would delay the new scene's first note past the entry
        deadline is shortened (down to 10 ms steps), and the model is told the shorter rest it played."""
        allowed = max(1, int(round((self._entry_deadline - m) * E.STEPS_PER_SECOND)))
        if ev - E.TIME_SHIFT + 1 <= allowed:
            return ev
        ev = E.TIME_SHIFT + allowed - 1
        self.p.last = np.array([ev], np.int64)
        return ev

    def chord_code_at(self, m: float) -> np.ndarray:
        """The chord control (13,) at music time m: the harmony plan's chord (``self.plan``, mood/harmony.py), or unset."""
        plan = getattr(self, "plan", None)
        chord = plan.chord_at(m) if plan is not None else None
        return chord_code(chord.pcs if chord is not None else None)

    def controls_at(self, m: float) -> np.ndarray:
        """The control vector at music time m: the scene's (gliding) controls, the chord in force written in."""
        c = np.array(self.fade.value(m), np.float32, copy=True)
        if c.shape[-1] >= CHORD + 13:
            c[CHORD:CHORD + 13] = self.chord_code_at(m)
        return c

    def _one_event(self) -> None:
        m = self.stream.time
        has_plan = getattr(self, "plan", None) is not None
        ev = self.p.next(self.controls_at(m), chord_at=self.chord_code_at if has_plan else None, now=m)
        self.events_generated += 1
        if self._pending_change is not None and E.TIME_SHIFT <= ev < E.TIME_SHIFT + E.NUM_TIME_SHIFTS:
            ev = self._shorten_entry_rest(ev, m)
        note = self.stream.feed(ev)
        if self.chords is not None:
            self.scheduler.push(self.chords.until(self.stream.time, self.due))
        if note is None:
            since = m - self._last_prime
            at_rest = not self.sounding or since >= 2 * self.cfg.phrase_s    # pedal-heavy music rarely rests
            if (at_rest and since >= self.cfg.phrase_s
                    and E.TIME_SHIFT <= ev < E.TIME_SHIFT + E.NUM_TIME_SHIFTS):
                self.p.prime(self._scene_h0, mix=self.cfg.reprime_mix)     # a rest after a phrase
                self._last_prime = m
            return
        ch = self.cfg.channel
        if isinstance(note, E.PedalEvent):
            if note.down == self.pedal_down:
                return                                  # no change: nothing to send
            self.pedal_down = note.down
            due = self.due(note.time)
            pedal = getattr(self.shaper, "pedal", None)          # a patch's router (may drop or remap it)
            msgs = pedal(note.time, note.down) if pedal else [(0xB0 | ch, 64, 127 if note.down else 0)]
            self.scheduler.push([(due, m) for m in msgs])
            return
        if note.on:
            msg = (0x90 | ch, note.pitch, max(1, note.velocity))
            self.sounding.add(note.pitch)
            for h in self._heard:
                if h[1] is None:
                    h[1] = self.due(note.time)
            if self._pending_change is not None:
                self.scene_changes.append((self._pending_change, self.due(note.time)))
                self._pending_change = None
        else:
            if note.pitch not in self.sounding:
                return                                  # orphan note-off: nothing to end
            msg = (0x80 | ch, note.pitch, 0)
            self.sounding.discard(note.pitch)
        due = self.due(note.time)
        if self.shaper is None:
            self.scheduler.push([(due, msg)])
        else:
            self.scheduler.push([(due, m) for m in self.shaper.note(note.time, note.on, note.pitch, msg[2], due)])
