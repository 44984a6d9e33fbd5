"""Control guidance: a decoder that leans harder into what it is asked (classifier-free guidance).

The decoder was trained with control dropout, so it knows two distributions at
every step: the next event given all the controls, and given the controls with
some groups unset. Guidance samples from

    logits = cond + w * (cond - free)

where ``free`` is the same decoder with the guided groups (default: the key)
unset. w = 0 is the plain decoder; w > 0 exaggerates exactly what the controls
change, and nothing else (Ho & Salimans 2022, applied here to musical controls).

It costs a second decoder step per event: the wrapper runs both branches as one
batch of two rows, each with its own state, both fed the sampled event.

``GuidedDecoder`` has the decoder interface (initial, step, blend, take, row), so
the Performer, the generator and the offline render use it unchanged.
"""
from __future__ import annotations

import numpy as np

from installation.mood import controls as C

GROUP_SPANS = {"key": (C.KEY, 14), "density": (C.DENSITY, 1), "loudness": (C.LOUDNESS, 1),
               "register": (C.REGISTER, 1), "emotion": (C.EMOTION, 2), "chord": (C.CHORD, 12)}
FLAG_OF = {**{g: C.FLAGS + i for i, g in enumerate(C.GROUPS)}, "chord": C.CHORD_FLAG}


def without(controls: np.ndarray, groups: tuple[str, ...]) -> np.ndarray:
    """The controls with these groups unset (values 0, flag 1)."""
    c = np.array(controls, np.float32, copy=True)
    for g in groups:
        a, n = GROUP_SPANS[g]
        c[..., a:a + n] = 0.0
        c[..., FLAG_OF[g]] = 1.0
    return c


class GuidedDecoder:
    """Wraps a step decoder; its state is the two branches' states stacked along the batch."""

    def __init__(self, decoder, weight: float, groups: tuple[str, ...] = ("key",)):
        if weight < 0:
            raise ValueError(f"guidance weight {weight}: must be >= 0")
        for g in groups:
            if g not in GROUP_SPANS:
                raise ValueError(f"guidance group {g!r}: one of {', '.join(GROUP_SPANS)}")
        self.inner, self.weight, self.groups = decoder, float(weight), tuple(groups)
        self.kind = decoder.kind
        self.provider = getattr(decoder, "provider", None)

    def _both(self, controls: np.ndarray) -> np.ndarray:
        c = np.asarray(controls, np.float32)
        c = c.reshape(1, -1) if c.ndim == 1 else c
        if c.shape[1] < C.CONTROL_DIM:                   # the window controls alone: the rest unset
            c = np.concatenate([c, np.tile(C.unset()[c.shape[1]:], (len(c), 1))], 1)
        return np.concatenate([c, without(c, self.groups)])

    def initial(self, controls: np.ndarray):
        return self.inner.initial(self._both(controls))

    def step(self, events: np.ndarray, state, controls: np.ndarray):
        n = len(events)
        logits, state = self.inner.step(np.concatenate([events, events]), state, self._both(controls))
        cond, free = logits[:n], logits[n:]
        both = np.isfinite(cond) & np.isfinite(free)     # a model of a smaller vocabulary: -inf in both
        return cond + self.weight * np.subtract(cond, free, out=np.zeros_like(cond), where=both), state

    def blend(self, state, target, mix: float):
        return self.inner.blend(state, target, mix)

    def take(self, state, rows: np.ndarray):
        rows = np.asarray(rows)
        if rows.dtype == bool:
            rows = np.flatnonzero(rows)
        n = self._rows(state)
        return self.inner.take(state, np.concatenate([rows, rows + n]))

    def row(self, state, i: int):
        n = self._rows(state)
        return self.inner.take(state, np.array([i, i + n]))

    def _rows(self, state) -> int:
        return self.inner.batch_of(state) // 2
