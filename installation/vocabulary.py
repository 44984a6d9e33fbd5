"""The music model's event vocabulary: one table of event ids that training, the runtime and the manifest share.

The ground floor: it imports nothing of the project, so mood/ (measuring controls), the manifest (checking an
exported model's vocabulary) and music/ (encoding and decoding, installation/music/events.py) read the same table.

The vocabulary is Performance RNN's (Oore et al. 2018), 388 events, and the sustain pedal (390 in all):

    index      event        meaning
    0..127     NOTE_ON      start pitch p (index = p)
    128..255   NOTE_OFF     end pitch p   (index = 128 + p)
    256..355   TIME_SHIFT   advance time by (k + 1) * 10 ms, k = index - 256 (10 ms .. 1 s)
    356..387   VELOCITY     set the velocity for following note-ons, bin b = index - 356
    388, 389   PEDAL        sustain pedal (CC64) down, up

Velocity bins are 4 MIDI steps wide: bin b covers velocities 4b+1 .. 4b+4 and
decodes to its middle (4b + 3, at most 127).
"""
from __future__ import annotations

import numpy as np

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
    ("PEDAL", 2 * NUM_PITCHES + NUM_TIME_SHIFTS + NUM_VELOCITY_BINS, 2),
)
NOTE_ON, NOTE_OFF, TIME_SHIFT, VELOCITY, PEDAL = (r[1] for r in RANGES)
PEDAL_DOWN, PEDAL_UP = PEDAL, PEDAL + 1         # 388, 389
VOCAB_SIZE = RANGES[-1][1] + RANGES[-1][2]      # 390
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
            if name == "PEDAL":
                return ("PEDAL_DOWN", "PEDAL_UP")[k]
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


def full_vocabulary(logits: np.ndarray) -> np.ndarray:
    """(N, V0) logits of a model with an older, smaller vocabulary (a prefix of this one: 388 events, before the
    pedal) -> (N, VOCAB_SIZE), the new events at -inf so they are never sampled."""
    n, v = logits.shape
    if v == VOCAB_SIZE:
        return logits
    out = np.full((n, VOCAB_SIZE), -np.inf, np.float32)
    out[:, :v] = logits
    return out
