"""Routing: the performance's notes, shaped, to one or several layers (channels, programs).

``NoteRouter(patch)`` turns each performance note-on/off into zero or more MIDI
messages. It keeps its own tables, so each message note-on it returns is
matched by exactly one note-off, whatever mono, polyphony limits, folding or
two performance notes landing on the same output note do. The generator calls
it live (before ``scheduler.push``); ``render`` calls it offline, so a rendered
file is what the same patch plays live.

    router = NoteRouter(patch)
    router.start_messages()            # bank select + program changes, once at start
    router.note(t, True, 60, 80)       # -> [(0x90, 60, 80), (0x91, 48, 80)]
    router.note(t, False, 60, 0)       # -> [(0x80, 60, 0), (0x81, 48, 0)]
    router.pedal(t, True)              # -> [(0xB0, 64, 127), (0xB1, 64, 127)]: the sustain pedal, on each channel
    router.close_all()                 # note-offs for what still sounds (end of a file)
    router.reset()                     # forget everything (the scheduler closed it: live scene change)

``ChordPlayer(patch.chord_layer, plan)`` plays a harmony plan's chords (``[chord_layer]``) on their own
channel; the generator pushes what it returns through the same scheduler as the notes, so the
scheduler's open-note table closes them too (stop, panic, scene change).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable

from installation.patches.patch import ChordLayer, Layer, Patch
from installation.patches.shaping import (DensityLimit, VoiceLimiter, constrain_to_scale, fold_pitch,
                                          shape_velocity)
from installation.midi import midi_file
from installation.music import events as E

NOTE_OFF, NOTE_ON, CONTROL_CHANGE, PROGRAM_CHANGE = 0x80, 0x90, 0xB0, 0xC0


class _LayerVoice:
    """One layer: which notes it takes, its own transposition, range, velocity and voice limit."""

    def __init__(self, layer: Layer):
        self.layer = layer
        self.ch = layer.channel - 1
        self.limiter = VoiceLimiter(layer.max_polyphony, layer.mono)
        self.taken: set[int] = set()            # performance keys this layer took
        self.key_pitch: dict[int, int] = {}     # key -> output pitch it sounds
        self.owner: dict[int, int] = {}         # output pitch -> key that owns it now

    def wants(self, pitch: int, sounding: dict[int, int]) -> bool:
        v = self.layer.voices
        others = [p for p in sounding.values()]
        if v == "all" or not others:
            return True
        return pitch <= min(others) if v == "lowest" else pitch >= max(others)

    def on(self, key: int, pitch: int, velocity: int) -> list[tuple[int, int, int]]:
        la = self.layer
        p = fold_pitch(pitch + la.transpose, la.pitch_range[0], la.pitch_range[1], la.out_of_range)
        if p is None:
            return []
        vel = shape_velocity(velocity, scale=la.velocity_scale)
        self.taken.add(key)
        return self._play(self.limiter.on(key, p, vel))

    def off(self, key: int, resume: bool = True) -> list[tuple[int, int, int]]:
        """The release of ``key``; with ``resume`` a mono layer sounds the latest note still held again."""
        if key not in self.taken:
            return []
        self.taken.discard(key)
        return self._play(self.limiter.off(key, resume=resume))

    def _play(self, events) -> list[tuple[int, int, int]]:
        out = []
        for kind, key, p, vel in events:
            if kind == "on":
                if p in self.owner:                   # another note sounds there: end it first (retrigger)
                    prev = self.owner.pop(p)
                    self.key_pitch.pop(prev, None)
                    out.append((NOTE_OFF | self.ch, p, 0))
                self.owner[p] = key
                self.key_pitch[key] = p
                out.append((NOTE_ON | self.ch, p, vel))
            else:
                q = self.key_pitch.pop(key, None)
                if q is not None and self.owner.get(q) == key:
                    del self.owner[q]
                    out.append((NOTE_OFF | self.ch, q, 0))
        return out

    def reset(self) -> None:
        self.limiter.reset()
        self.taken.clear()
        self.key_pitch.clear()
        self.owner.clear()


class NoteRouter:
    """The whole patch's note path: shaping of the performance, then its layers."""

    def __init__(self, patch: Patch):
        self.patch = patch
        s = patch.shaping
        self.shaping = s
        self._pcs = s.scale_pitch_classes
        self._density = DensityLimit(s.max_notes_per_second)
        self._limiter = VoiceLimiter(s.max_polyphony, s.mono)
        self._sounding: dict[int, int] = {}     # key (performance pitch) -> shaped pitch, after the global limiter
        self.layers = [_LayerVoice(la) for la in patch.layers]
        self.performance: list[tuple[bool, int, int]] = []   # the last note()'s shaped notes, before the layers

    def start_messages(self) -> list[tuple[int, ...]]:
        """Bank select (CC0/CC32) and program change for each layer that sets a program."""
        out: list[tuple[int, ...]] = []
        seen = set()
        layers = list(self.patch.layers) + ([self.patch.chord_layer] if self.patch.chord_layer is not None else [])
        for la in layers:
            ch = la.channel - 1
            if la.program is None or ch in seen:
                continue
            seen.add(ch)
            if getattr(la, "bank", None) is not None:
                out += [(CONTROL_CHANGE | ch, 0, la.bank >> 7), (CONTROL_CHANGE | ch, 32, la.bank & 0x7F)]
            out.append((PROGRAM_CHANGE | ch, la.program - 1))
        return out

    def shape_pitch(self, pitch: int) -> int | None:
        s = self.shaping
        p = constrain_to_scale(pitch + s.transpose, self._pcs, s.off_scale)
        if p is None:
            return None
        p = fold_pitch(p, s.pitch_range[0], s.pitch_range[1], s.out_of_range)
        if p is not None and self._pcs is not None and p % 12 not in self._pcs:
            return None                                     # folding keeps the pitch class; this cannot happen
        return p

    def note(self, t: float, on: bool, pitch: int, velocity: int, due: float | None = None) -> list[tuple[int, int, int]]:
        """The messages for one performance note-on (``on``) or note-off at music time ``t`` (seconds).
        ``due`` (the clock time it will sound) is for wrappers that time other outputs (OSC).
        Afterwards ``performance`` holds the shaped notes (on, pitch, velocity) before the layers."""
        self.performance = []
        return self._note(t, on, pitch, velocity)

    def _note(self, t: float, on: bool, pitch: int, velocity: int) -> list[tuple[int, int, int]]:
        if on:
            out = self._note(t, False, pitch, 0) if pitch in self._limiter.held or pitch in self._limiter.active else []
            p = self.shape_pitch(pitch)
            if p is None or not self._density.allow(t):
                return out
            s = self.shaping
            vel = shape_velocity(velocity, s.velocity_curve, s.velocity_range[0], s.velocity_range[1])
            return out + self._dispatch(self._limiter.on(pitch, p, vel), t)
        # A release may sound a held note again (mono, last-note priority): that is a new note-on too,
        # so it needs room under max_notes_per_second, or the held note stays silent.
        events = self._limiter.off(pitch, resume=self._density.room(t))
        if any(kind == "on" for kind, *_ in events):
            self._density.allow(t)
        return self._dispatch(events, t)

    def _dispatch(self, events, t: float) -> list[tuple[int, int, int]]:
        out = []
        for kind, key, p, vel in events:
            self.performance.append((kind == "on", p, vel))
            if kind == "on":
                for lv in self.layers:
                    if lv.wants(p, self._sounding):
                        out += lv.on(key, p, vel)
                self._sounding[key] = p
            else:
                self._sounding.pop(key, None)
                for lv in self.layers:
                    before = len(out)
                    out += lv.off(key, resume=self._density.room(t))
                    if any(m[0] & 0xF0 == NOTE_ON for m in out[before:]):
                        self._density.allow(t)        # a layer's resumed note counts too
        return out

    def pedal(self, t: float, down: bool) -> list[tuple[int, int, int]]:
        """The messages for the performance's sustain pedal going down or up at music time ``t``: the patch's
        ``[output] pedal_cc`` (64) at 127 or 0 on every layer's channel; none with ``[output] pedal = false``.
        The scheduler holds it as it holds a note, and lifts it on every release path."""
        out = self.patch.output
        if not out.pedal:
            return []
        return [(CONTROL_CHANGE | ch, out.pedal_cc, 127 if down else 0) for ch in self.patch.channels]

    def close_all(self) -> list[tuple[int, int, int]]:
        """Note-offs for every note still sounding; then the router is empty."""
        out = [(NOTE_OFF | lv.ch, p, 0) for lv in self.layers for p in lv.owner]
        self.reset()
        return out

    def reset(self) -> None:
        """Forget every sounding note (someone else closed them, e.g. the scheduler at a scene change)."""
        self._limiter.reset()
        self._sounding.clear()
        self._density.reset()
        for lv in self.layers:
            lv.reset()


class ChordPlayer:
    """A patch's ``[chord_layer]``: the plan's chords as notes on their own channel. A pad keeps the tones
    two chords share and strikes the others; a bass strikes the root. Each pitch class sounds in one
    octave (from ``base``), so the voices move by less than an octave. A tone held ``refresh_s`` is
    struck again, or 1 s later when a chord change is near (the scheduler closes notes held past its
    ``max_note_s``, 8 s).

        player = ChordPlayer(patch.chord_layer, plan)
        scheduler.push(player.until(m, due))     # after each generated event: the changes up to music time m
        player.reset()                           # the scheduler closed what sounds (live scene change)
    """

    def __init__(self, cfg: ChordLayer, plan, refresh_s: float = 6.0):
        self.cfg, self.plan, self.refresh_s = cfg, plan, refresh_s
        self.ch = cfg.channel - 1
        self.sounding: dict[int, float] = {}      # pitch -> music time it was struck
        self._last = None                         # (start, chord) last played
        self._next = -math.inf                    # the next change to look for (music time)
        self._version = -1

    def voicing(self, chord) -> list[int]:
        base = self.cfg.base
        if self.cfg.style == "bass":
            return [base + chord.root]
        return sorted(base + pc for pc in chord.pcs)

    def until(self, m: float, due) -> list[tuple[float, tuple[int, int, int]]]:
        """(due, message) for the chord changes up to music time ``m``; ``due(t)`` is the clock time of t."""
        self.plan.chord_at(m)                     # the plan's frontier: a live chord is taken from here
        version = self.plan.version
        if m < self._next and version == self._version:
            return []
        self._version = version
        out: list[tuple[float, tuple[int, int, int]]] = []
        since = m if self._last is None else self._last[0]
        for start, chord in self.plan.ahead(since, m + 1e-9):
            if self._last is not None and (start < self._last[0] or (start, chord) == self._last):
                continue
            at = max(start, since)
            if self._last is not None and chord == self._last[1]:      # the same chord, a new phrase: struck anew
                out += [(due(at), (NOTE_OFF | self.ch, p, 0)) for p in sorted(self.sounding)]
                self.sounding.clear()
            self._strike(at, due(at), self.voicing(chord), out)
            self._last = (start, chord)
        nxt = self.plan.next_change(m)
        refresh = self.refresh_s if nxt - m > 1.5 else self.refresh_s + 1.0     # not just before a change
        old = sorted(p for p, t in self.sounding.items() if m - t >= refresh)
        if old:
            at = due(m)
            out += [(at, (NOTE_OFF | self.ch, p, 0)) for p in old]
            out += [(at, (NOTE_ON | self.ch, p, self.cfg.velocity)) for p in old]
            self.sounding.update(dict.fromkeys(old, m))
        self._next = min(nxt, min(self.sounding.values(), default=math.inf) + refresh)
        return out

    def _strike(self, t: float, at: float, pitches: list[int], out: list) -> None:
        keep = set(pitches) if self.cfg.style == "pad" else set()
        for p in sorted(self.sounding):
            if p not in keep:
                out.append((at, (NOTE_OFF | self.ch, p, 0)))
                del self.sounding[p]
        for p in pitches:
            if p not in self.sounding:
                out.append((at, (NOTE_ON | self.ch, p, self.cfg.velocity)))
                self.sounding[p] = t

    def close_all(self, at: float) -> list[tuple[float, tuple[int, int, int]]]:
        """Note-offs for what sounds (the end of a file); then the player starts afresh."""
        out = [(at, (NOTE_OFF | self.ch, p, 0)) for p in sorted(self.sounding)]
        self.reset()
        return out

    def reset(self) -> None:
        """Forget what sounds (the scheduler closed it); the chord in force is struck again at the next call."""
        self.sounding.clear()
        self._last = None
        self._next = -math.inf


def route_events_to_midi(events: Iterable[int], path: str | Path, patch: Patch, *, max_note_s: float = 8.0,
                         plan=None) -> int:
    """Offline: decode performance events, route them through the patch, write a type-0 MIDI file
    (1 tick = 1 ms; program changes at time 0; times stretched by the patch's tempo_scale). Notes still
    open at the end, or held longer than ``max_note_s`` (as the live scheduler caps them), are closed.
    The sustain pedal goes in as it is played live (``NoteRouter.pedal``), lifted at the end if still down.
    Returns the number of note-ons. Emotion CCs, OSC and clock are live-only."""
    router = NoteRouter(patch)
    stream = E.EventStream()
    timed: list[tuple[float, tuple[int, ...]]] = [(0.0, m) for m in router.start_messages()]
    opened: dict[tuple[int, int], float] = {}
    n_on = 0
    pedal_down = False

    def emit(t: float, msgs, count: bool = True) -> None:
        nonlocal n_on
        for m in msgs:
            key = (m[0] & 0x0F, m[1])
            if m[0] & 0xF0 == NOTE_ON:
                opened[key] = t
                n_on += count
            elif opened.pop(key, None) is None:
                continue                            # closed already (held too long)
            timed.append((t, m))

    # a harmony plan (the one the events were made under: the same model, key, arousal and seed draw the same
    # chords) and a [chord_layer]: the layer's notes too (not counted in what this returns)
    chords = ChordPlayer(patch.chord_layer, plan) if plan is not None and patch.chord_layer is not None else None
    stretch = patch.shaping.tempo_scale
    for ev in events:
        note = stream.feed(int(ev))
        if chords is not None:
            for due, m in chords.until(stream.time, lambda x: x * stretch):
                emit(due, [m], count=False)
        if note is None:
            continue
        now = note.time * stretch
        # close notes held too long, as the live scheduler does
        for key, t_on in list(opened.items()):
            if now - t_on > max_note_s:
                timed.append((t_on + max_note_s, (NOTE_OFF | key[0], key[1], 0)))
                del opened[key]
        if not hasattr(note, "pitch"):              # the pedal (events.PedalEvent: time, down)
            if note.down != pedal_down:
                pedal_down = note.down
                timed += [(now, m) for m in router.pedal(note.time, note.down)]
            continue
        emit(now, router.note(note.time, note.on, note.pitch, note.velocity))
    end = stream.time * stretch
    for key, t_on in opened.items():
        timed.append((min(end, t_on + max_note_s), (NOTE_OFF | key[0], key[1], 0)))
    if pedal_down:
        timed += [(end, m) for m in router.pedal(end, False)]
    timed.sort(key=lambda x: x[0])                  # stable: same-time messages keep their order

    midi_file.write(timed, path, end=end)
    return n_on
