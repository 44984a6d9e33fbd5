"""Performance events: the music model's vocabulary, and MIDI <-> events.

This one module is shared by training and the runtime, so the two cannot
disagree about what an index means.

The vocabulary is Performance RNN's (Oore et al. 2018), 388 events:

    index      event        meaning
    0..127     NOTE_ON      start pitch p (index = p)
    128..255   NOTE_OFF     end pitch p   (index = 128 + p)
    256..355   TIME_SHIFT   advance time by (k + 1) * 10 ms, k = index - 256 (10 ms .. 1 s)
    356..387   VELOCITY     set the velocity for following note-ons, bin b = index - 356

Velocity bins are 4 MIDI steps wide: bin b covers velocities 4b+1 .. 4b+4 and
decodes to its middle (4b + 3, at most 127).

Loading applies the sustain pedal (CC64 >= 64 holds notes) to note lengths,
merges all non-drum channels, and quantises times to 10 ms.
Decoding follows note-seq's policy: orphan note-offs are ignored, zero-length
notes are dropped, notes are capped at ``max_note_s`` and notes still open at
the end are closed there.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

# --- the vocabulary ---------------------------------------------------------

NUM_PITCHES = 128
NUM_TIME_SHIFTS = 100
NUM_VELOCITY_BINS = 32
STEPS_PER_SECOND = 100          # one time-shift step is 10 ms

# (name, first index, size), in index order; everything else derives from it.
RANGES = (
    ("NOTE_ON", 0, NUM_PITCHES),
    ("NOTE_OFF", NUM_PITCHES, NUM_PITCHES),
    ("TIME_SHIFT", 2 * NUM_PITCHES, NUM_TIME_SHIFTS),
    ("VELOCITY", 2 * NUM_PITCHES + NUM_TIME_SHIFTS, NUM_VELOCITY_BINS),
)
NOTE_ON, NOTE_OFF, TIME_SHIFT, VELOCITY = (r[1] for r in RANGES)
VOCAB_SIZE = RANGES[-1][1] + RANGES[-1][2]      # 388
VELOCITY_BIN_WIDTH = 4                          # 128 / 32


def velocity_to_bin(velocity: int) -> int:
    """MIDI velocity 1..127 -> bin 0..31."""
    return (min(max(int(velocity), 1), 127) - 1) // VELOCITY_BIN_WIDTH


def bin_to_velocity(b: int) -> int:
    """Bin 0..31 -> the MIDI velocity at the bin's middle."""
    return min(127, VELOCITY_BIN_WIDTH * int(b) + 3)


def describe(index: int) -> str:
    """A readable name for one event index, e.g. ``NOTE_ON(60)`` or ``TIME_SHIFT(250ms)``."""
    for name, first, size in RANGES:
        if first <= index < first + size:
            k = index - first
            if name == "TIME_SHIFT":
                return f"TIME_SHIFT({(k + 1) * 10}ms)"
            return f"{name}({k})"
    raise ValueError(f"event index {index} is outside the vocabulary 0..{VOCAB_SIZE - 1}")


def vocabulary_spec() -> dict:
    """The vocabulary as plain data, for the exported model's manifest."""
    return {
        "size": VOCAB_SIZE,
        "ranges": [{"name": n, "first": f, "size": s} for n, f, s in RANGES],
        "time_shift_ms": 1000 // STEPS_PER_SECOND,
        "velocity_bin_width": VELOCITY_BIN_WIDTH,
    }


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
    import mido  # local: keeps `import installation.music.events` light for the hot path

    path = Path(path)
    try:
        mid = mido.MidiFile(path, clip=True)
        messages = list(_timed_messages(mid))
    except Exception as exc:  # mido raises many kinds on bad bytes
        raise MidiFileError(f"{path}: cannot parse MIDI ({type(exc).__name__}: {exc})") from None
    return notes_from_messages(messages, sustain=sustain)


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

def notes_to_events(notes: Sequence[Note], *, stretch: float = 1.0, transpose: int = 0) -> np.ndarray:
    """Encode notes as an int16 event array; times are multiplied by ``stretch``.

    Notes transposed outside 0..127 are dropped. At one time step, note-offs
    come before note-ons, so a re-struck pitch is closed and opened again.
    """
    points = []   # (step, order, pitch, velocity): order 0 = off, 1 = on
    for n in notes:
        p = n.pitch + transpose
        if not 0 <= p < NUM_PITCHES:
            continue
        on = int(round(n.start * stretch * STEPS_PER_SECOND))
        off = int(round(n.end * stretch * STEPS_PER_SECOND))
        if off <= on:
            off = on + 1                              # keep very short notes audible
        points.append((on, 1, p, n.velocity))
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
        if order == 1:
            b = velocity_to_bin(v)
            if b != vel_bin:
                out.append(VELOCITY + b)
                vel_bin = b
            out.append(NOTE_ON + p)
        else:
            out.append(NOTE_OFF + p)
    return np.asarray(out, dtype=np.int16)


# --- events -> notes ----------------------------------------------------------

@dataclass(frozen=True, slots=True)
class NoteEvent:
    """What one performance event asks for: at ``time`` seconds, start or end ``pitch``."""
    time: float
    on: bool
    pitch: int
    velocity: int


class EventStream:
    """Turns performance events, one at a time, into timed note-ons and note-offs.

    This is where a number becomes a note. It keeps only the clock and the
    current velocity; which notes are open is the caller's business (the
    live scheduler keeps its own open-note table).
    """

    def __init__(self, start: float = 0.0, velocity: int = 64):
        self.time = start
        self.velocity = velocity

    def feed(self, index: int) -> NoteEvent | None:
        """Advance by one event; returns a note-on/off, or None for time/velocity events."""
        i = int(index)
        if NOTE_ON <= i < NOTE_ON + NUM_PITCHES:
            return NoteEvent(self.time, True, i - NOTE_ON, self.velocity)
        if NOTE_OFF <= i < NOTE_OFF + NUM_PITCHES:
            return NoteEvent(self.time, False, i - NOTE_OFF, 0)
        if TIME_SHIFT <= i < TIME_SHIFT + NUM_TIME_SHIFTS:
            self.time += (i - TIME_SHIFT + 1) / STEPS_PER_SECOND
        elif VELOCITY <= i < VELOCITY + NUM_VELOCITY_BINS:
            self.velocity = bin_to_velocity(i - VELOCITY)
        else:
            raise ValueError(f"event index {i} is outside the vocabulary 0..{VOCAB_SIZE - 1}")
        return None


def events_to_notes(events: Iterable[int], *, max_note_s: float = 5.0) -> list[Note]:
    """Decode events to notes: orphan offs ignored, zero-length notes dropped,
    notes capped at ``max_note_s``, notes open at the end closed there."""
    stream = EventStream()
    open_: dict[int, list[tuple[float, int]]] = {}
    notes: list[Note] = []

    def close(p, start, vel, t):
        end = min(t, start + max_note_s)
        if end > start:
            notes.append(Note(p, vel, start, end))

    for e in events:
        ne = stream.feed(e)
        if ne is None:
            continue
        if ne.on:
            open_.setdefault(ne.pitch, []).append((ne.time, ne.velocity))
        elif open_.get(ne.pitch):
            start, vel = open_[ne.pitch].pop(0)
            close(ne.pitch, start, vel, ne.time)
    for p, stack in open_.items():
        for start, vel in stack:
            close(p, start, vel, stream.time)
    notes.sort(key=lambda n: (n.start, n.pitch))
    return notes


def notes_to_midi(notes: Sequence[Note], path: str | Path, *, program: int = 0, channel: int = 0) -> None:
    """Write notes to a type-0 MIDI file (1 tick = 1 ms)."""
    import mido

    mid = mido.MidiFile(type=0, ticks_per_beat=500)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=500_000, time=0))   # 500 ticks per 0.5 s
    track.append(mido.Message("program_change", program=program, channel=channel, time=0))
    points = []
    for n in notes:
        points.append((int(round(n.start * 1000)), 1, n.pitch, n.velocity))
        points.append((int(round(n.end * 1000)), 0, n.pitch, 0))
    points.sort()
    now = 0
    for tick, order, p, v in points:
        kind = "note_on" if order else "note_off"
        track.append(mido.Message(kind, note=p, velocity=v if order else 0, channel=channel, time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=0))
    mid.save(path)


def events_to_midi(events: Iterable[int], path: str | Path, **kw) -> None:
    """Decode events and write them as a MIDI file."""
    notes_to_midi(events_to_notes(events), path, **kw)
