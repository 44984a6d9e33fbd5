"""Sampling by phrases with a critic: K candidates of each phrase in one batch, the best one kept.

Shared by the offline render (many rows) and the live Performer (one row), so both choose
alike. Row i's candidates are rows i*K .. i*K+K-1 of the batch; each draws its own uniform
per step from the caller's RNG, in a fixed order, so a seeded run picks the same music.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from installation.mood import controls as C
from installation.music import events as E
from installation.music.critic import Critic, NoteClock, choose
from installation.music.legality import NoteState
from installation.music.sampling import sample


@dataclass
class Voices:
    """Where N rows stand: decoder state, last event, sounding notes (for the mask and the critic)."""
    state: object
    last: np.ndarray          # (N,) int64
    notes: NoteState
    clock: NoteClock

    def take(self, decoder, rows) -> "Voices":
        return Voices(decoder.take(self.state, rows), self.last[rows], self.notes.take(rows), self.clock.take(rows))


def sample_phrase(decoder, critic: Critic, v: Voices, controls: np.ndarray, draw, *, candidates: int,
                  events: int, temperature: float, top_p: float, legal: bool = True, chords=None,
                  t0=0.0) -> tuple[np.ndarray, Voices]:
    """``candidates`` candidate phrases of ``events`` events for each of N rows; returns the best phrase of each row
    (N, events) and the rows' new standing. ``draw()`` gives the (N * candidates,) uniforms of one step.
    ``chords(times (N * candidates,)) -> (N * candidates, 13)``: the chord control in force at each candidate's own
    music time (``t0``: the rows' time at the start, scalar or (N,)), written in at every step; None: as given."""
    n = len(v.last)
    idx = np.repeat(np.arange(n), candidates)
    c = v.take(decoder, idx)
    ctl = np.array(np.asarray(controls, np.float32).reshape(n, -1)[idx], np.float32, copy=True)
    per_step = chords is not None and ctl.shape[1] >= C.CHORD + 13
    t = np.broadcast_to(np.asarray(t0, np.float64), (n,))[idx].copy()
    out = np.empty((n * candidates, events), np.int64)
    state, ev = c.state, c.last
    for j in range(events):
        if per_step:
            ctl[:, C.CHORD:C.CHORD + 13] = chords(t)
        logits, state = decoder.step(ev, state, ctl)
        if legal:
            logits = c.notes.mask(logits, ctl[:, C.CHORD:C.CHORD + 13] if per_step else None)
        ev = sample(logits, None, temperature, top_p, u=draw())
        c.notes.update(ev)
        out[:, j] = ev
        shift = (ev >= E.TIME_SHIFT) & (ev < E.TIME_SHIFT + E.NUM_TIME_SHIFTS)
        t += np.where(shift, ev - E.TIME_SHIFT + 1, 0) / E.STEPS_PER_SECOND
    best, clock, _ = choose(critic, out, c.clock, ctl, candidates)
    return out[best], Voices(decoder.take(state, best), ev[best], c.notes.take(best), clock)
