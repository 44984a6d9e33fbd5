"""Which events are possible now: a note-off only for a pitch that sounds, a note-on only for one that does not.

The decoder spends probability on impossible events: a note-off of a pitch that is
not sounding (ignored when decoded), and a note-on of a pitch already sounding
(decoded as a second, stacked note, so one of the two is never ended and hangs to
the note cap). Real music, encoded, never has either: a re-struck key is ended
before it is struck again. ``NoteState`` follows the sampled events of each row of
a batch and masks those events (logit -inf), so sampling renormalises over what is
possible (no hanging notes). Likewise the pedal: a press only while it is
up, a lift only while it is down.
"""
from __future__ import annotations

import numpy as np

from installation.music import events as E

_ON = slice(E.NOTE_ON, E.NOTE_ON + E.NUM_PITCHES)
_OFF = slice(E.NOTE_OFF, E.NOTE_OFF + E.NUM_PITCHES)


class NoteState:
    """The pitches sounding in each row of a batch, as its own events say."""

    def __init__(self, rows: int):
        self.sounding = np.zeros((rows, E.NUM_PITCHES), bool)
        self.pedal = np.zeros(rows, bool)

    def mask(self, logits: np.ndarray) -> np.ndarray:
        """A copy of (N, V) logits with the impossible note and pedal events at -inf."""
        out = np.array(logits, np.float64, copy=True)
        out[:, _ON][self.sounding] = -np.inf
        out[:, _OFF][~self.sounding] = -np.inf
        if out.shape[1] > E.PEDAL_UP:
            out[self.pedal, E.PEDAL_DOWN] = -np.inf
            out[~self.pedal, E.PEDAL_UP] = -np.inf
        return out

    def update(self, events: np.ndarray) -> None:
        """Follow one sampled event per row."""
        ev = np.asarray(events, np.int64)
        rows = np.arange(len(ev))
        on = ev < E.NOTE_ON + E.NUM_PITCHES
        off = (ev >= E.NOTE_OFF) & (ev < E.NOTE_OFF + E.NUM_PITCHES)
        self.sounding[rows[on], ev[on] - E.NOTE_ON] = True
        self.sounding[rows[off], ev[off] - E.NOTE_OFF] = False
        self.pedal[ev == E.PEDAL_DOWN] = True
        self.pedal[ev == E.PEDAL_UP] = False

    def take(self, rows: np.ndarray) -> "NoteState":
        """The state of some rows (a boolean mask or indices), as a new NoteState."""
        s = NoteState(0)
        s.sounding = self.sounding[rows].copy()
        s.pedal = self.pedal[rows].copy()
        return s

    def repeat(self, k: int) -> "NoteState":
        """Each row k times (row i -> rows i*k .. i*k+k-1): candidates that start from one state."""
        s = NoteState(0)
        s.sounding = np.repeat(self.sounding, k, axis=0)
        s.pedal = np.repeat(self.pedal, k)
        return s
