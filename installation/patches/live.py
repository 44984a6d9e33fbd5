"""A patch at work in the live engine: the control thread (CC, OSC, clock out) and the inputs.

Threads and ports: the scheduler stays the only thread that touches the MIDI
port. The control thread computes CC values and clock ticks and *pushes* them
to the scheduler as timed messages (ticks ahead of time, ``clock_ahead_s``;
CCs due at once), so they are sent at their due times with the scheduler's
precision and go into a --record file like the notes. (A scene change discards
only queued notes, see ``Scheduler.discard_after``, so the clock keeps running.)
OSC is UDP, not the port: the control thread sends it itself, the shaped
performance's notes when they sound (it wakes for each), values at ``[osc] rate_hz``, the harmony's
chord (``/chord``) when the chord sounding changes. The harmony plan is the generator's (``generator.plan``):
``[chord_layer]`` plays it through the generator (``generator.chords``, pushed with the notes), and a
chord held on ``[input] chord_port`` or sent by OSC holds it.

    runtime = PatchRuntime(patch, scheduler, timeline, api=..., clock=...)
    generator = GeneratorThread(..., scheduler, ..., shaper=runtime.shaper)
    runtime.attach(generator)               # playback time, tempo scale (clock in)
    runtime.start(t0) ... runtime.stop() ... runtime.close(sink)
"""
from __future__ import annotations

import heapq
import logging
import threading
import time

from installation.patches.cc import EmotionCC, OnePole
from installation.patches.clock import ClockIn, ClockOut
from installation.patches.inputs import EmotionInput
from installation.patches.osc import OscOut
from installation.patches.patch import Patch
from installation.patches.routing import ChordPlayer, NoteRouter
from installation.ratelimit import LogLimiter

log = logging.getLogger(__name__)


class _LiveShaper:
    """What the generator calls for each note: the patch's router, plus a copy of the shaped
    performance for OSC, sent when it sounds (dropped again when a scene change cuts the queue)."""

    def __init__(self, router: NoteRouter, runtime: "PatchRuntime"):
        self.router, self._r = router, runtime

    def note(self, t, on, pitch, velocity, due=None):
        msgs = self.router.note(t, on, pitch, velocity, due)
        if due is not None and self.router.performance:
            self._r._notes_pushed(due, self.router.performance)
        return msgs

    def pedal(self, t, down):
        """The sustain pedal, as the patch sends it (``NoteRouter.pedal``)."""
        return self.router.pedal(t, down)

    def reset(self) -> None:
        """A live scene change: the scheduler dropped the queued notes and closes what sounds."""
        self.router.reset()
        self._r._notes_discarded(self._r.clock() + 0.05)


class PatchRuntime:
    """Runs a patch's controls next to the engine."""

    def __init__(self, patch: Patch, scheduler, timeline, *, api: str | None = None,
                 clock=time.perf_counter, stop: threading.Event | None = None,
                 tick_s: float = 0.01, clock_ahead_s: float = 0.1):
        self.patch, self.scheduler, self.timeline, self.api, self.clock = patch, scheduler, timeline, api, clock
        self.tick_s, self.clock_ahead_s = tick_s, clock_ahead_s
        self.router = NoteRouter(patch)
        self.cc = EmotionCC(patch.controls) if patch.controls.cc else None
        self.clock_out = ClockOut(patch.clock.min_bpm, patch.clock.max_bpm, patch.clock.smoothing_s) \
            if patch.clock.send else None
        self.osc = None
        if patch.osc is not None:
            self.osc = OscOut(patch.osc.host, patch.osc.port, patch.osc.prefix)
        self.input = EmotionInput(patch.input, api, patch.osc.prefix if patch.osc else "/itm") \
            if patch.input is not None else None
        self.clock_in: ClockIn | None = None
        self.link = None
        self.generator = None
        self.plan = None                  # the generator's harmony plan (installation.mood.harmony), if any
        self._osc_chord = None
        self._warn = LogLimiter(log, every_s=10.0)
        self.base_tempo_scale = 1.0
        self._logged_bpm: float | None = None
        self.valence: float | None = None
        self.arousal: float | None = None
        self._osc_smooth = (OnePole(0.5), OnePole(0.5))
        self._osc_last_t = -1e9
        self._osc_scene = None
        self._notes: list[tuple[float, int, tuple]] = []
        self._seq = 0
        self._lock = threading.Lock()
        self._stop = stop or threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = 0.0

    # --- wiring ---
    @property
    def shaper(self):
        """What the generator hands each note to."""
        return _LiveShaper(self.router, self) if self.osc is not None and self.patch.osc.notes else self.router

    def attach(self, generator) -> None:
        self.generator = generator
        self.base_tempo_scale = generator.tempo_scale
        self.plan = getattr(generator, "plan", None)
        if self.plan is None:
            if self.patch.chord_layer is not None or (self.input is not None and self.patch.input.chord_port):
                log.warning("patch %s: no harmony plan (exported_models/harmony.json missing): "
                            "[chord_layer] stays silent and held chords are not taken", self.patch.name)
            return
        if self.patch.chord_layer is not None:
            generator.chords = ChordPlayer(self.patch.chord_layer, self.plan)
        if self.input is not None:
            self.input.chord.plan = self.plan

    def open_inputs(self) -> None:
        """Open the MIDI/OSC inputs and the clock input (UserError if a port is missing). Before start()."""
        if self.input is not None:
            self.input.open()
        c = self.patch.clock
        if c.follow_port is not None:
            # lazy: rtmidi, only when the patch follows a MIDI clock (the thinker process opens no MIDI otherwise)
            from installation.midi import midi_io
            self.clock_in = ClockIn(self.api or midi_io.choose_api(None), c.follow_port, self._on_tempo).open()
        if c.link:
            # lazy: asyncio and aalink, only when the patch asks for Ableton Link
            from installation.patches.link import LinkTempo
            self.link = LinkTempo(c.reference_bpm, self._on_tempo)

    def _on_tempo(self, bpm: float) -> None:
        """An incoming clock (or Link) set a tempo: the performance's time stretches to it."""
        if self.generator is None:
            return
        scale = self.base_tempo_scale * self.patch.clock.reference_bpm / bpm
        self.generator.set_tempo_scale(scale)
        big = self._logged_bpm is None or abs(bpm - self._logged_bpm) > 0.02 * self._logged_bpm
        log.log(logging.INFO if big else logging.DEBUG, "clock in: %.1f bpm, tempo scale %.3f", bpm, scale)
        if big:
            self._logged_bpm = bpm

    # --- the control thread ---
    def start(self, t0: float) -> None:
        self._t0 = t0
        now = self.clock()
        first = [(now, m) for m in self.router.start_messages()]
        if self.clock_out is not None:
            first += self.clock_out.start(t0)
        if first:
            self.scheduler.push(first)
        self._thread = threading.Thread(target=self._run, name="patch-controls", daemon=True)
        self._thread.start()

    def _emotion(self, now: float):
        """The picture's valence, arousal and scene at what is sounding now, blended with the hand's."""
        v = a = scene = label = None
        tl = self.timeline
        if tl is not None:
            m = self.generator.music_at(now) if self.generator is not None else now - self._t0
            e = tl.at(0.0 if tl.live else max(0.0, m), timeout=0)
            hand_in = False
            if e is not None:
                v, a = float(e.valence_arousal[0]), float(e.valence_arousal[1])
                scene, label = e.scene_id, e.label
                hand_in = bool(getattr(getattr(e, "direction", None), "hand", False))
        if self.input is not None and not (tl is not None and hand_in):   # the conductor blended it already
            v, a = self.input.blend(v, a)
        return v, a, scene, label

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                now = self.clock()
                v, a, scene, label = self._emotion(now)
                self.valence, self.arousal = v, a
                out = []
                if self.cc is not None:
                    out += [(now, m) for m in self.cc.update(now, v, a, scene)]
                if self.clock_out is not None:
                    self.clock_out.set_arousal(now, a)
                    out += self.clock_out.ticks_until(now + self.clock_ahead_s)
                if out:
                    self.scheduler.push(out)
                if self.input is not None:
                    self.input.chord.update(now)
                if self.osc is not None:
                    self._send_osc(now, v, a, scene, label)
                self._stop.wait(self._sleep_for(now))
        except Exception as exc:                # controls are not worth stopping the music for
            log.exception("patch control thread failed: %s", exc)

    def _sleep_for(self, now: float) -> float:
        wait = self.tick_s
        with self._lock:
            if self._notes:
                wait = min(wait, max(0.0, self._notes[0][0] - self.clock()))
        return wait

    def _send_osc(self, now, v, a, scene, label) -> None:
        o = self.patch.osc
        if o.values and now - self._osc_last_t >= 1.0 / o.rate_hz:
            self._osc_last_t = now
            if v is not None:
                self.osc.send("/valence", self._osc_smooth[0].update(now, v))
            if a is not None:
                self.osc.send("/arousal", self._osc_smooth[1].update(now, a))
            if scene is not None and scene != self._osc_scene:
                self._osc_scene = scene
                self.osc.send("/scene", int(scene), str(label))
        m = self.generator.music_at(now) if self.generator is not None and now >= self._t0 else -1.0
        if o.chords and self.plan is not None and m >= 0:
            try:
                chord = self.plan.chord_at(m)           # the chord sounding: behind the generator's frontier
            except Exception as exc:                    # noqa: BLE001  visuals are not worth the CCs and the clock
                self._warn("/chord not sent: %s", exc)
            else:
                if chord != self._osc_chord:
                    self._osc_chord = chord
                    self.osc.chord(chord)
        if o.notes:
            due = []
            with self._lock:
                while self._notes and self._notes[0][0] <= now:
                    due.append(heapq.heappop(self._notes)[2])
            for on, pitch, vel in due:
                self.osc.note(pitch, vel if on else 0)

    def _notes_pushed(self, due: float, notes) -> None:
        with self._lock:
            for n in notes:
                heapq.heappush(self._notes, (due, self._seq, n))
                self._seq += 1

    def _notes_discarded(self, t: float) -> None:
        with self._lock:
            self._notes = [x for x in self._notes if x[0] <= t]
            heapq.heapify(self._notes)

    # --- stopping ---
    def stop(self) -> None:
        """Stop the control thread and the inputs (before the scheduler stops)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(1.0)
        for part in (self.input, self.clock_in, self.link):
            if part is not None:
                try:
                    part.close()
                except Exception as exc:
                    log.warning("closing %s: %s", type(part).__name__, exc)

    def close(self, sink, scheduler_alive: bool) -> None:
        """After the scheduler stopped: clock STOP straight to the port (no other thread sends now)."""
        if self.clock_out is not None and self.clock_out.running and not scheduler_alive:
            self.clock_out.stop(self.clock())
            try:
                sink.send((0xFC,))
            except Exception as exc:
                log.warning("clock stop not sent: %s", exc)
