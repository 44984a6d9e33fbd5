"""Sampling by phrases with a critic: K candidates of each phrase in one batch, the best one kept.

Shared by the offline render (many rows) and the live Performer (one row), so both choose
alike. Row i's candidates are rows i*K .. i*K+K-1 of the batch; each draws its own uniform
per step from the caller's RNG, in a fixed order, so a seeded run picks the same music.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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
                  events: int, temperature: float, top_p: float, legal: bool = True) -> tuple[np.ndarray, Voices]:
    """``candidates`` candidate phrases of ``events`` events for each of N rows; returns the best phrase of each row
    (N, events) and the rows' new standing. ``draw()`` gives the (N * candidates,) uniforms of one step."""
    n = len(v.last)
    idx = np.repeat(np.arange(n), candidates)
    c = v.take(decoder, idx)
    ctl = np.ascontiguousarray(np.asarray(controls, np.float32).reshape(n, -1)[idx])
    out = np.empty((n * candidates, events), np.int64)
    state, ev = c.state, c.last
    for j in range(events):
        logits, state = decoder.step(ev, state, ctl)
        if legal:
            logits = c.notes.mask(logits)
        ev = sample(logits, None, temperature, top_p, u=draw())
        c.notes.update(ev)
        out[:, j] = ev
    best, clock, _ = choose(critic, out, c.clock, ctl, candidates)
    return out[best], Voices(decoder.take(state, best), ev[best], c.notes.take(best), clock)
