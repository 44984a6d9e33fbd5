"""Musical shaping of single notes, and voice limiting (mono, polyphony) with its own note table.

Pure functions and small objects, no threads and no clock: the live generator
and the offline render run the same code, so a file matches what was played.
"""
from __future__ import annotations

from collections import deque
from typing import Iterable

# A voice event: ("on", key, pitch, velocity) or ("off", key, pitch, 0). ``key`` identifies the
# performance note that caused it, so each note-on is matched with exactly one note-off.
VoiceEvent = tuple[str, int, int, int]


def fold_pitch(p: int, lo: int, hi: int, mode: str) -> int | None:
    """A pitch inside [lo, hi]: as is, folded by octaves ("fold"), or None ("drop", or no octave fits)."""
    if lo <= p <= hi:
        return p
    if mode != "fold":
        return None
    while p < lo:
        p += 12
    while p > hi:
        p -= 12
    return p if lo <= p <= hi else None


def constrain_to_scale(p: int, pitch_classes: Iterable[int] | None, mode: str = "snap") -> int | None:
    """The pitch if its pitch class is in the scale; else the nearest scale note (down on a tie) or None."""
    if pitch_classes is None:
        return p
    pcs = frozenset(pitch_classes)
    if p % 12 in pcs:
        return p
    if mode != "snap":
        return None
    for d in range(1, 12):
        for q in (p - d, p + d):
            if 0 <= q <= 127 and q % 12 in pcs:
                return q
    return None


def shape_velocity(v: int, curve: float = 1.0, lo: int = 1, hi: int = 127, scale: float = 1.0) -> int:
    """A velocity through a power curve ((v/127) ** curve) into [lo, hi], times ``scale``; 1..127."""
    x = (max(1, min(127, v)) / 127.0) ** curve
    out = (lo + (hi - lo) * x) * scale
    return max(1, min(127, int(round(out))))


class DensityLimit:
    """At most ``per_second`` note-ons in any one-second window (0: no limit)."""

    def __init__(self, per_second: float):
        self.per_second = per_second
        self._times: deque[float] = deque()

    def room(self, t: float) -> bool:
        """Whether a note-on at ``t`` would be allowed (nothing is counted)."""
        if self.per_second <= 0:
            return True
        while self._times and self._times[0] <= t - 1.0:
            self._times.popleft()
        return len(self._times) < self.per_second

    def allow(self, t: float) -> bool:
        """Count a note-on at ``t`` if there is room for it; False: it must not sound."""
        if not self.room(t):
            return False
        if self.per_second > 0:
            self._times.append(t)
        return True

    def reset(self) -> None:
        self._times.clear()


class VoiceLimiter:
    """Mono with last-note priority, or a polyphony limit that releases the oldest note.

    Keyed by the performance note (``key``): ``on``/``off`` return the voice events
    to play. Mono: a new note first ends the sounding one; when the sounding note
    is released while earlier ones are still held, the latest of those sounds again
    (a mono synth's last-note priority), so there is never more than one note.
    Polyphony: a note beyond ``max_polyphony`` first ends the oldest; a stolen note
    does not come back and its own release is then ignored.
    """

    def __init__(self, max_polyphony: int = 0, mono: bool = False):
        self.max_polyphony = 1 if mono else max_polyphony
        self.mono = mono
        self.held: dict[int, tuple[int, int]] = {}      # key -> (pitch, velocity), in press order (mono)
        self.active: dict[int, tuple[int, int]] = {}    # key -> (pitch, velocity) sounding, oldest first

    def on(self, key: int, pitch: int, velocity: int) -> list[VoiceEvent]:
        out: list[VoiceEvent] = []
        if key in self.held or key in self.active:     # the same key again: end it first
            out += self.off(key, resume=False)
        if self.mono:
            self.held[key] = (pitch, velocity)
            for k, (p, _) in list(self.active.items()):
                out.append(("off", k, p, 0))
                del self.active[k]
        elif self.max_polyphony and len(self.active) >= self.max_polyphony:
            k, (p, _) = next(iter(self.active.items()))
            out.append(("off", k, p, 0))
            del self.active[k]
        self.active[key] = (pitch, velocity)
        out.append(("on", key, pitch, velocity))
        return out

    def off(self, key: int, resume: bool = True) -> list[VoiceEvent]:
        out: list[VoiceEvent] = []
        self.held.pop(key, None)
        if key in self.active:
            p, _ = self.active.pop(key)
            out.append(("off", key, p, 0))
            if self.mono and resume and self.held and not self.active:
                k, (p2, v2) = next(reversed(self.held.items()))
                self.active[k] = (p2, v2)
                out.append(("on", k, p2, v2))
        return out

    def reset(self) -> None:
        self.held.clear()
        self.active.clear()
