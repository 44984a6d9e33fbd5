"""Which events are possible now: a note-off only for a pitch that sounds, a note-on only for one that does not.

The decoder spends probability on impossible events: a note-off of a pitch that is
not sounding (ignored when decoded), and a note-on of a pitch already sounding
(decoded as a second, stacked note, so one of the two is never ended and hangs to
the note cap). Real music, encoded, never has either: a re-struck key is ended
before it is struck again. ``NoteState`` follows the sampled events of each row of
a batch and masks those events (logit -inf), so sampling renormalises over what is
possible (no hanging notes). Likewise the pedal: a press only while it is
up, a lift only while it is down.

The pedal changes with the harmony, as a pianist's does (legato pedalling): given the chord
control each step asks (``mask(logits, chord)``), a row whose chord changes while its pedal is down
lifts it there (the lift is forced: every other event masked), so the last chord stops ringing into
the next. ``REPRESS_S``: the pedal then goes down again that long after the lift, at the first step
at or after it (forced too, unless the row pressed it already); None leaves the re-press to the model.
Only a lift while down and a press while up are ever forced, so each press still gets its lift.
"""
from __future__ import annotations

import numpy as np

from installation.music import events as E

_ON = slice(E.NOTE_ON, E.NOTE_ON + E.NUM_PITCHES)
_OFF = slice(E.NOTE_OFF, E.NOTE_OFF + E.NUM_PITCHES)
LIFT_AT_CHORD = True          # lift a pedal held down when the asked chord changes
REPRESS_S: float | None = 0.15   # then press it again this long after (None: the model's own press)


class NoteState:
    """The pitches sounding in each row of a batch, as its own events say. ``lift_at_chord`` (None: ``LIFT_AT_CHORD``)
    and ``repress_s`` (False: ``REPRESS_S``): the pedal at a chord change, as the module's docstring says."""

    def __init__(self, rows: int, lift_at_chord: bool | None = None, repress_s: float | None | bool = False):
        self.sounding = np.zeros((rows, E.NUM_PITCHES), bool)
        self.pedal = np.zeros(rows, bool)
        self.lift_at_chord = LIFT_AT_CHORD if lift_at_chord is None else bool(lift_at_chord)
        repress_s = REPRESS_S if repress_s is False else repress_s
        self.repress_steps = None if repress_s is None else max(0, int(round(repress_s * E.STEPS_PER_SECOND)))
        self.chord: np.ndarray | None = None            # (N, 13): the chord control asked at the last step
        self.since_lift = np.full(rows, -1, np.int64)   # 10 ms steps since a forced lift awaiting its re-press (-1: none)

    def mask(self, logits: np.ndarray, chord: np.ndarray | None = None) -> np.ndarray:
        """A copy of (N, V) logits with the impossible note and pedal events at -inf. ``chord``: the (N, 13)
        chord control asked at this step; where it changed since the last step and the pedal is down, only
        the lift is left (and ``repress_s`` after a forced lift, only the press). Notes the chord asked."""
        out = np.array(logits, np.float64, copy=True)
        out[:, _ON][self.sounding] = -np.inf
        out[:, _OFF][~self.sounding] = -np.inf
        if out.shape[1] > E.PEDAL_UP:
            out[self.pedal, E.PEDAL_DOWN] = -np.inf
            out[~self.pedal, E.PEDAL_UP] = -np.inf
            if self.lift_at_chord and chord is not None:
                self._force_pedal(out, np.asarray(chord))
        return out

    def _force_pedal(self, out: np.ndarray, chord: np.ndarray) -> None:
        if self.repress_steps is not None:
            due = (self.since_lift >= self.repress_steps) & ~self.pedal
            if due.any():
                out[due] = np.where(np.arange(out.shape[1]) == E.PEDAL_DOWN, out[due], -np.inf)
                self.since_lift[due] = -1
        if self.chord is not None and len(self.chord) == len(chord):
            lift = (chord != self.chord).any(axis=1) & self.pedal
            if lift.any():
                out[lift] = np.where(np.arange(out.shape[1]) == E.PEDAL_UP, out[lift], -np.inf)
                if self.repress_steps is not None:
                    self.since_lift[lift] = 0
        self.chord = np.array(chord, np.float32, copy=True)

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
        if self.repress_steps is not None:
            waiting = self.since_lift >= 0
            self.since_lift[waiting & (ev == E.PEDAL_DOWN)] = -1          # pressed by the model: nothing to force
            shift = (ev >= E.TIME_SHIFT) & (ev < E.TIME_SHIFT + E.NUM_TIME_SHIFTS) & waiting
            self.since_lift[shift] += ev[shift] - E.TIME_SHIFT + 1

    def take(self, rows: np.ndarray) -> "NoteState":
        """The state of some rows (a boolean mask or indices), as a new NoteState."""
        s = self._like()
        s.sounding = self.sounding[rows].copy()
        s.pedal = self.pedal[rows].copy()
        s.chord = None if self.chord is None else self.chord[rows].copy()
        s.since_lift = self.since_lift[rows].copy()
        return s

    def repeat(self, k: int) -> "NoteState":
        """Each row k times (row i -> rows i*k .. i*k+k-1): candidates that start from one state."""
        s = self._like()
        s.sounding = np.repeat(self.sounding, k, axis=0)
        s.pedal = np.repeat(self.pedal, k)
        s.chord = None if self.chord is None else np.repeat(self.chord, k, axis=0)
        s.since_lift = np.repeat(self.since_lift, k)
        return s

    def _like(self) -> "NoteState":
        s = NoteState(0, self.lift_at_chord, None)
        s.repress_steps = self.repress_steps
        return s
