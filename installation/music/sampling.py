"""Sampling the next event from logits: temperature, top-p (nucleus), a seeded RNG.

Plain numpy, batched, shared by the live engine, offline render and the
export parity check (torch and ONNX logits go through this same code).

Top-p keeps some events always (``KEEP``): the velocity bins, the 10 and 20 ms time
shifts and the pedal. Each of these is one choice among many close ones (32 velocity
bins; a chord's notes struck 10 ms apart or at once), so the nucleus, cut over all 390
events, dropped their tails: velocities bunched in the middle (issue 22: 76% in 48-80
against real 52%) and chords were struck too seldom as spread chords. Kept, they are
drawn from the model's own distribution; every other event is truncated as before.
"""
from __future__ import annotations

import numpy as np

from installation.music import events as E


def _keep_mask() -> np.ndarray:
    k = np.zeros(E.VOCAB_SIZE, bool)
    k[E.VELOCITY:E.VELOCITY + E.NUM_VELOCITY_BINS] = True
    k[E.TIME_SHIFT:E.TIME_SHIFT + 2] = True
    k[E.PEDAL:E.PEDAL + 2] = True
    return k


KEEP = _keep_mask()


def sample(logits: np.ndarray, rng: np.random.Generator | None, temperature: float = 1.0, top_p: float = 1.0,
           u: np.ndarray | None = None, keep: np.ndarray | None | bool = True) -> np.ndarray:
    """(N, V) logits -> (N,) int64 event indices.

    temperature 0 means greedy (argmax). top_p < 1 keeps the smallest set of
    most likely events whose probability reaches top_p. The uniform draws come
    from ``rng`` (one per row), or are given as ``u`` (e.g. one RNG per row, so
    a row's music does not depend on what else is in the batch). ``keep``: events top-p never drops
    (True: ``KEEP``, for logits over the whole vocabulary; None or False: none).
    """
    logits = np.asarray(logits, dtype=np.float64)
    if temperature <= 0:
        return logits.argmax(axis=-1)
    z = logits / temperature
    z -= z.max(axis=-1, keepdims=True)
    p = np.exp(z)                                       # unnormalised: the thresholds scale by the row total
    if top_p < 1.0:
        total = p.sum(axis=-1, keepdims=True)
        sorted_p = np.sort(p, axis=-1)[:, ::-1]
        cum = np.cumsum(sorted_p, axis=-1)
        kept = ((cum - sorted_p) < top_p * total).sum(axis=-1)      # always >= 1: the most likely event
        cutoff = sorted_p[np.arange(len(p)), kept - 1]
        if keep is True:
            keep = KEEP if p.shape[-1] == len(KEEP) else None
        inside = p >= cutoff[:, None]
        p = np.where(inside | keep if keep is not None and keep is not False else inside, p, 0.0)
    u = rng.random(p.shape[0]) if u is None else np.asarray(u, dtype=np.float64)
    cum = np.cumsum(p, axis=-1)
    idx = (cum < (u * cum[:, -1])[:, None]).sum(axis=-1)
    return np.minimum(idx, p.shape[-1] - 1).astype(np.int64)
