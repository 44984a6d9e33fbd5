"""Control guidance: a decoder that leans harder into what it is asked (classifier-free guidance).

The decoder was trained with control dropout, so it knows two distributions at
every step: the next event given all the controls, and given the controls with
some groups unset. Guidance samples from

    logits = cond + w * (cond - free)

where ``free`` is the same decoder with the guided groups (default: the key)
unset. w = 0 is the plain decoder; w > 0 exaggerates exactly what the controls
change, and nothing else (Ho & Salimans 2022, applied here to musical controls).

The pseudo-group ``mode`` guides the mode alone: ``free`` is asked the *parallel*
key (C minor for C major: the same tonic, the other mode's template), so only what
tells major from minor (the third, sixth and seventh) is exaggerated, not the tonic
and the fifth both modes share. Guiding the whole key over-weights the tonic (issue 14:
35% of the sounding time against real music's 24%) and freezes the harmony.
It costs a second decoder step per event: the wrapper runs both branches as one
batch of two rows, each with its own state, both fed the sampled event.

``GuidedDecoder`` has the decoder interface (initial, step, blend, take, row), so
the Performer, the generator and the offline render use it unchanged.
"""
from __future__ import annotations

import numpy as np

from installation.mood import controls as C

GROUP_SPANS = {"key": (C.KEY, 14), "density": (C.DENSITY, 1), "loudness": (C.LOUDNESS, 1),
               "register": (C.REGISTER, 1), "emotion": (C.EMOTION, 2)}
MODE = "mode"                  # guide the mode alone (against the parallel key)


def parallel(controls: np.ndarray, templates: np.ndarray) -> np.ndarray:
    """The controls with each asked key replaced by its parallel key (same tonic, other mode); unset keys stay."""
    c = np.array(controls, np.float32, copy=True).reshape(-1, C.CONTROL_DIM)
    t = np.asarray(templates, np.float64)
    rolls = np.stack([[np.roll(t[m], k) for k in range(12)] for m in (0, 1)])     # (mode, tonic, 12)
    for row in c:
        if row[C.FLAGS + 0] > 0.5:
            continue
        minor = int(row[C.KEY + 13] > row[C.KEY + 12])
        tonic = int(np.argmax(rolls[minor] @ row[C.KEY:C.KEY + 12]))
        row[C.KEY:C.KEY + 12] = rolls[1 - minor, tonic]
        row[C.KEY + 12], row[C.KEY + 13] = float(minor), float(1 - minor)
    return c.reshape(np.shape(controls))


def without(controls: np.ndarray, groups: tuple[str, ...]) -> np.ndarray:
    """The controls with these groups unset (values 0, flag 1)."""
    c = np.array(controls, np.float32, copy=True)
    for g in groups:
        a, n = GROUP_SPANS[g]
        c[..., a:a + n] = 0.0
        c[..., C.FLAGS + C.GROUPS.index(g)] = 1.0
    return c


class GuidedDecoder:
    """Wraps a step decoder; its state is the two branches' states stacked along the batch."""

    def __init__(self, decoder, weight: float, groups: tuple[str, ...] = ("key",), templates: np.ndarray | None = None):
        if weight < 0:
            raise ValueError(f"guidance weight {weight}: must be >= 0")
        for g in groups:
            if g not in GROUP_SPANS and g != MODE:
                raise ValueError(f"guidance group {g!r}: one of {', '.join(GROUP_SPANS)}, {MODE}")
        if MODE in groups and len(groups) > 1:
            raise ValueError(f"guidance group {MODE!r} guides the mode alone; do not combine it with other groups")
        self.inner, self.weight, self.groups = decoder, float(weight), tuple(groups)
        self.templates = C.default_templates() if templates is None else np.asarray(templates, np.float64)
        self.kind = decoder.kind
        self.provider = getattr(decoder, "provider", None)

    def _both(self, controls: np.ndarray) -> np.ndarray:
        c = np.asarray(controls, np.float32).reshape(-1, C.CONTROL_DIM)
        free = parallel(c, self.templates) if self.groups == (MODE,) else without(c, self.groups)
        return np.concatenate([c, free])

    def initial(self, controls: np.ndarray):
        return self.inner.initial(self._both(controls))

    def step(self, events: np.ndarray, state, controls: np.ndarray):
        n = len(events)
        logits, state = self.inner.step(np.concatenate([events, events]), state, self._both(controls))
        cond, free = logits[:n], logits[n:]
        return cond + self.weight * (cond - free), state

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
