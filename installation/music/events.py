"""Performance events: the music model's vocabulary, and MIDI <-> events.

This one module is shared by training and the runtime, so the two cannot
disagree about what an index means.

The vocabulary (Performance RNN's 388 events and the sustain pedal, 390 in all) is
installation/vocabulary.py's table; this module re-exports its names.

``load_performance`` reads the keys (note lengths as the fingers hold them)
and the pedal (CC64 >= 64 is down, intervals in seconds) apart; encoding keeps
them apart (pedal events where the pedal changes); decoding applies the pedal to
note lengths (``sustain=True``: what a listener hears). All non-drum channels
are merged and times are quantised to 10 ms.
Decoding follows note-seq's policy: orphan note-offs are ignored, zero-length
notes are dropped, a key is held at most ``max_note_s`` (the pedal may sound it
on), and notes still open at the end are closed there.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

# the vocabulary is the ground floor's (installation/vocabulary.py: mood/ and the manifest read it too); its names
# stay importable from here (``E.NOTE_ON``, ``E.describe``) for training, evaluation and the tests
from installation.vocabulary import (  # noqa: F401
    NOTE_OFF, NOTE_ON, NUM_PITCHES, NUM_TIME_SHIFTS, NUM_VELOCITY_BINS, PEDAL, PEDAL_DOWN, PEDAL_UP, RANGES,
    STEPS_PER_SECOND, TIME_SHIFT, VELOCITY, VELOCITY_BIN_WIDTH, VOCAB_SIZE, bin_to_velocity, describe,
    velocity_to_bin, vocabulary_spec,
)


# --- notes ------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Note:
    """One sounding note: pitch 0..127, velocity 1..127, start and end in seconds."""
    pitch: int
    velocity: int
    start: float
    end: float


class MidiFileError(ValueError):
    """A MIDI file that cannot be read; the message names the file."""


def load_notes(path: str | Path, *, sustain: bool = True) -> list[Note]:
    """Read a MIDI file into notes (seconds), with the sustain pedal applied.

    Raises MidiFileError, naming the file, when it cannot be parsed.
    """
    return notes_from_messages(_file_messages(path), sustain=sustain)


def load_performance(path: str | Path) -> tuple[list[Note], list[tuple[float, float]]]:
    """Read a MIDI file into the keys (notes as held, no pedal applied) and the sustain pedal's
    down intervals (start, end) in seconds, all channels' merged.

    Raises MidiFileError, naming the file, when it cannot be parsed.
    """
    messages = _file_messages(path)
    return notes_from_messages(messages, sustain=False), pedal_from_messages(messages)


def _file_messages(path: str | Path) -> list[tuple[float, object]]:
    """A MIDI file's (seconds, message) pairs, tracks merged; MidiFileError, naming the file, when mido cannot
    parse it."""
    import mido  # local: keeps `import installation.music.events` light for the hot path

    try:
        return list(_timed_messages(mido.MidiFile(path, clip=True)))
    except Exception as exc:  # mido raises many kinds on bad bytes
        raise MidiFileError(f"{path}: cannot parse MIDI ({type(exc).__name__}: {exc})") from None


def pedal_from_messages(messages: Iterable[tuple[float, object]]) -> list[tuple[float, float]]:
    """The sustain pedal's down intervals (start, end), the union over non-drum channels."""
    down: dict[int, float] = {}
    spans = []
    last = 0.0
    for t, msg in messages:
        last = max(last, t)
        ch = getattr(msg, "channel", None)
        if ch is None or ch == 9 or msg.type != "control_change" or msg.control != 64:
            continue
        if msg.value >= 64:
            down.setdefault(ch, t)
        elif ch in down:
            spans.append((down.pop(ch), t))
    spans += [(t, last) for t in down.values()]
    return merge_intervals(spans)


def merge_intervals(spans: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    """Sorted, overlapping or touching intervals merged; empty ones dropped."""
    out: list[list[float]] = []
    for a, b in sorted((float(a), float(b)) for a, b in spans if b > a):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


def apply_pedal(notes: Sequence[Note], pedal: Sequence[tuple[float, float]]) -> list[Note]:
    """What a listener hears: a key released while the pedal is down sounds on until the pedal
    lifts, or until the same pitch is struck again."""
    pedal = merge_intervals(pedal)
    if not pedal:
        return sorted(notes, key=lambda n: (n.start, n.pitch))
    starts = np.array([a for a, _ in pedal])
    by_pitch: dict[int, list[float]] = {}
    for n in notes:
        by_pitch.setdefault(n.pitch, []).append(n.start)
    for v in by_pitch.values():
        v.sort()
    out = []
    for n in notes:
        end = n.end
        i = int(np.searchsorted(starts, n.end, side="right")) - 1
        if i >= 0 and pedal[i][0] <= n.end < pedal[i][1]:
            end = pedal[i][1]
            restrikes = by_pitch[n.pitch]
            j = int(np.searchsorted(restrikes, n.start, side="right"))
            if j < len(restrikes) and restrikes[j] < end:
                end = max(n.end, restrikes[j])
        out.append(Note(n.pitch, n.velocity, n.start, end))
    out.sort(key=lambda n: (n.start, n.pitch))
    return out


def _timed_messages(mid) -> Iterator[tuple[float, object]]:
    t = 0.0
    for msg in mid:                       # mido merges tracks and applies the tempo map
        t += msg.time
        if not msg.is_meta:
            yield t, msg


def notes_from_messages(messages: Iterable[tuple[float, object]], *, sustain: bool = True) -> list[Note]:
    """(time in seconds, mido message) pairs -> notes. Drum channel 10 is skipped."""
    notes: list[Note] = []
    open_: dict[tuple[int, int], list[tuple[float, int]]] = {}   # (ch, pitch) -> [(start, vel)]
    held: dict[tuple[int, int], list[tuple[float, int]]] = {}    # released keys held by the pedal
    pedal = {}

    def close(key, start_vel, t):
        start, vel = start_vel
        if t > start:
            notes.append(Note(key[1], vel, start, t))

    last = 0.0
    for t, msg in messages:
        last = max(last, t)
        ch = getattr(msg, "channel", None)
        if ch is None or ch == 9:
            continue
        if msg.type == "note_on" and msg.velocity > 0:
            key = (ch, msg.note)
            for sv in held.pop(key, []):           # re-striking a held key ends the old note
                close(key, sv, t)
            open_.setdefault(key, []).append((t, msg.velocity))
        elif msg.type == "note_off" or (msg.type == "note_on" and msg.velocity == 0):
            key = (ch, msg.note)
            stack = open_.get(key)
            if not stack:
                continue                           # orphan note-off
            sv = stack.pop(0)
            if sustain and pedal.get(ch, False):
                held.setdefault(key, []).append(sv)
            else:
                close(key, sv, t)
        elif msg.type == "control_change" and msg.control == 64 and sustain:
            down = msg.value >= 64
            if pedal.get(ch, False) and not down:
                for key in [k for k in held if k[0] == ch]:
                    for sv in held.pop(key):
                        close(key, sv, t)
            pedal[ch] = down
    for table in (open_, held):                    # close what is still sounding at the end
        for key, stack in table.items():
            for sv in stack:
                close(key, sv, last)
    notes.sort(key=lambda n: (n.start, n.pitch))
    return notes


# --- notes -> events ----------------------------------------------------------

def notes_to_events(notes: Sequence[Note], *, pedal: Sequence[tuple[float, float]] = (), stretch: float = 1.0,
                    transpose: int = 0) -> np.ndarray:
    """Encode notes (and the pedal's down intervals) as an int16 event array; times are multiplied by ``stretch``.

    Notes transposed outside 0..127 are dropped. At one time step, note-offs
    come first, then a pedal lift, note-ons, and a pedal press: a re-struck
    pitch is closed and opened again, and a re-pedal (up and down at once)
    catches the new notes. The pedal is written only where it changes: intervals
    that touch after quantisation are one.
    """
    points = []   # (step, order, pitch, velocity): order 0 = off, 1 = pedal up, 2 = on, 3 = pedal down
    steps = merge_intervals((int(round(a * stretch * STEPS_PER_SECOND)), int(round(b * stretch * STEPS_PER_SECOND)))
                            for a, b in pedal)
    for a, b in steps:
        points.append((int(a), 3, 0, 0))
        points.append((int(b), 1, 0, 0))
    for n in notes:
        p = n.pitch + transpose
        if not 0 <= p < NUM_PITCHES:
            continue
        on = int(round(n.start * stretch * STEPS_PER_SECOND))
        off = int(round(n.end * stretch * STEPS_PER_SECOND))
        if off <= on:
            off = on + 1                              # keep very short notes audible
        points.append((on, 2, p, n.velocity))
        points.append((off, 0, p, 0))
    points.sort()
    out: list[int] = []
    step, vel_bin = 0, -1
    for t, order, p, v in points:
        gap = t - step
        while gap > 0:
            k = min(gap, NUM_TIME_SHIFTS)
            out.append(TIME_SHIFT + k - 1)
            gap -= k
        step = t
        if order == 2:
            b = velocity_to_bin(v)
            if b != vel_bin:
                out.append(VELOCITY + b)
                vel_bin = b
            out.append(NOTE_ON + p)
        elif order == 0:
            out.append(NOTE_OFF + p)
        else:
            out.append(PEDAL_DOWN if order == 3 else PEDAL_UP)
    return np.asarray(out, dtype=np.int16)


# --- events -> notes ----------------------------------------------------------

@dataclass(frozen=True, slots=True)
class NoteEvent:
    """What one performance event asks for: at ``time`` seconds, start or end ``pitch``."""
    time: float
    on: bool
    pitch: int
    velocity: int


@dataclass(frozen=True, slots=True)
class PedalEvent:
    """What a pedal event asks for: at ``time`` seconds, the sustain pedal down or up (CC64)."""
    time: float
    down: bool


class EventStream:
    """Turns performance events, one at a time, into timed note-ons and note-offs.

    This is where a number becomes a note. It keeps only the clock and the
    current velocity; which notes are open is the caller's business (the
    live scheduler keeps its own open-note table).
    """

    def __init__(self, start: float = 0.0, velocity: int = 64):
        self.time = start
        self.velocity = velocity

    def feed(self, index: int) -> NoteEvent | PedalEvent | None:
        """Advance by one event; returns a note-on/off, a pedal change, or None for time/velocity events."""
        i = int(index)
        if NOTE_ON <= i < NOTE_ON + NUM_PITCHES:
            return NoteEvent(self.time, True, i - NOTE_ON, self.velocity)
        if NOTE_OFF <= i < NOTE_OFF + NUM_PITCHES:
            return NoteEvent(self.time, False, i - NOTE_OFF, 0)
        if TIME_SHIFT <= i < TIME_SHIFT + NUM_TIME_SHIFTS:
            self.time += (i - TIME_SHIFT + 1) / STEPS_PER_SECOND
        elif VELOCITY <= i < VELOCITY + NUM_VELOCITY_BINS:
            self.velocity = bin_to_velocity(i - VELOCITY)
        elif i in (PEDAL_DOWN, PEDAL_UP):
            return PedalEvent(self.time, i == PEDAL_DOWN)
        else:
            raise ValueError(f"event index {i} is outside the vocabulary 0..{VOCAB_SIZE - 1}")
        return None


def events_to_performance(events: Iterable[int], *, max_note_s: float = 5.0
                          ) -> tuple[list[Note], list[tuple[float, float]]]:
    """Decode events to the keys (notes as held, each at most ``max_note_s``) and the pedal's down intervals:
    orphan offs ignored, zero-length notes dropped, notes and a pedal still down at the end closed there."""
    stream = EventStream()
    open_: dict[int, list[tuple[float, int]]] = {}
    notes: list[Note] = []
    pedal: list[tuple[float, float]] = []
    down: float | None = None

    def close(p, start, vel, t):
        end = min(t, start + max_note_s)
        if end > start:
            notes.append(Note(p, vel, start, end))

    for e in events:
        ne = stream.feed(e)
        if ne is None:
            continue
        if isinstance(ne, PedalEvent):
            if ne.down and down is None:
                down = ne.time
            elif not ne.down and down is not None:
                pedal.append((down, ne.time))
                down = None
        elif ne.on:
            open_.setdefault(ne.pitch, []).append((ne.time, ne.velocity))
        elif open_.get(ne.pitch):
            start, vel = open_[ne.pitch].pop(0)
            close(ne.pitch, start, vel, ne.time)
    for p, stack in open_.items():
        for start, vel in stack:
            close(p, start, vel, stream.time)
    if down is not None:
        pedal.append((down, stream.time))
    notes.sort(key=lambda n: (n.start, n.pitch))
    return notes, merge_intervals(pedal)


def events_to_notes(events: Iterable[int], *, max_note_s: float = 5.0, sustain: bool = True) -> list[Note]:
    """Decode events to notes: orphan offs ignored, zero-length notes dropped, keys held at most
    ``max_note_s``, notes open at the end closed there; with ``sustain`` the pedal lengthens them
    (what a listener hears)."""
    notes, pedal = events_to_performance(events, max_note_s=max_note_s)
    return apply_pedal(notes, pedal) if sustain else notes


def notes_to_midi(notes: Sequence[Note], path: str | Path, *, program: int = 0, channel: int = 0,
                  pedal: Sequence[tuple[float, float]] = ()) -> None:
    """Write notes, and the sustain pedal as CC64 127/0, to a type-0 MIDI file (1 tick = 1 ms: midi_file.write)."""
    from installation.midi import midi_file

    ms = lambda t: int(round(t * 1000))
    points = []      # (tick, order, bytes); order: 0 note off, 1 pedal up, 2 note on, 3 pedal down (as notes_to_events)
    for n in notes:
        points.append((ms(n.start), 2, (0x90 | channel, n.pitch, n.velocity)))
        points.append((ms(n.end), 0, (0x80 | channel, n.pitch, 0)))
    for a, b in merge_intervals(pedal):
        points.append((ms(a), 3, (0xB0 | channel, 64, 127)))
        points.append((ms(b), 1, (0xB0 | channel, 64, 0)))
    points.sort()
    midi_file.write([(0.0, (0xC0 | channel, program))] + [(tick / 1000, m) for tick, _, m in points], path)


def events_to_midi(events: Iterable[int], path: str | Path, **kw) -> None:
    """Decode events and write them as a MIDI file: the keys as held, and the pedal as CC64."""
    notes, pedal = events_to_performance(events)
    notes_to_midi(notes, path, pedal=pedal, **kw)
