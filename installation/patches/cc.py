"""Emotion as MIDI CC: valence, arousal and scene changes, smoothed, so a synth's filter follows the picture.

``EmotionCC.update(now, valence, arousal, scene_id)`` returns the CC messages to
send now: each value goes through a one-pole smoother (time constant per CC),
is mapped from -1..1 to the CC's range, and is sent only when it changes, at
most ``rate_hz`` times a second. A scene CC sends 127 at a scene change and 0
``pulse_s`` later (a trigger a DAW can map to anything).
"""
from __future__ import annotations

import math

from installation.patches.patch import Controls

CONTROL_CHANGE = 0xB0


class OnePole:
    """A one-pole low-pass in continuous time: the output moves 63% of the way to the input in ``tau`` s."""

    def __init__(self, tau: float):
        self.tau = tau
        self.value: float | None = None
        self._t: float | None = None

    def update(self, t: float, x: float) -> float:
        if self.value is None or self.tau <= 0:
            self.value = x
        else:
            dt = max(0.0, t - self._t)
            self.value += (x - self.value) * (1.0 - math.exp(-dt / self.tau))
        self._t = t
        return self.value


def to_cc(x: float, lo: int, hi: int) -> int:
    """-1..1 (clipped) to lo..hi (hi may be below lo: reversed), rounded."""
    x = max(-1.0, min(1.0, x))
    return int(round(lo + (hi - lo) * (x + 1.0) / 2.0))


class EmotionCC:
    """The CC part of a patch: keeps one smoother and the last sent value per CC."""

    def __init__(self, controls: Controls):
        self.controls = controls
        self.min_gap = 1.0 / controls.rate_hz
        self._smooth = [OnePole(c.smoothing_s) for c in controls.cc]
        self._last = [None] * len(controls.cc)          # last value sent
        self._last_t = [-math.inf] * len(controls.cc)
        self._pulse_end = [None] * len(controls.cc)
        self._scene: int | None = None

    def update(self, now: float, valence: float | None, arousal: float | None,
               scene_id: int | None) -> list[tuple[int, int, int]]:
        out = []
        changed = scene_id is not None and self._scene is not None and scene_id != self._scene
        if scene_id is not None:
            self._scene = scene_id
        for i, c in enumerate(self.controls.cc):
            status = CONTROL_CHANGE | (c.channel - 1)
            if c.source == "scene":
                if changed:
                    self._pulse_end[i] = now + c.pulse_s
                    out.append((status, c.number, 127))
                    self._last[i], self._last_t[i] = 127, now
                elif self._pulse_end[i] is not None and now >= self._pulse_end[i]:
                    self._pulse_end[i] = None
                    out.append((status, c.number, 0))
                    self._last[i], self._last_t[i] = 0, now
                continue
            x = valence if c.source == "valence" else arousal
            if x is None:
                continue
            y = self._smooth[i].update(now, float(x))
            v = to_cc(y, c.range[0], c.range[1])
            if v != self._last[i] and now - self._last_t[i] >= self.min_gap:
                out.append((status, c.number, v))
                self._last[i], self._last_t[i] = v, now
        return out
