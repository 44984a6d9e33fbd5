"""Descriptive statistics of a performance: what a listener would notice first.

Plain numpy on ``events.Note`` lists, so the runtime, the training report and
the evaluation all describe music the same way.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from installation.music.events import Note
from installation.theory import MAJOR_PROFILE, MINOR_PROFILE, PITCH_NAMES  # noqa: F401 (its users import them here)


def pitch_class_histogram(notes: list[Note]) -> np.ndarray:
    """Share of sounding time per pitch class (12,), summing to 1 (zeros if no notes)."""
    h = np.zeros(12)
    for n in notes:
        h[n.pitch % 12] += n.end - n.start
    return h / h.sum() if h.sum() > 0 else h


def key_correlations(h: np.ndarray) -> np.ndarray:
    """Correlation of a pitch-class histogram with every key profile: (2, 12), rows major/minor, columns tonic."""
    return np.array([[float(np.corrcoef(h, np.roll(prof, tonic))[0, 1]) for tonic in range(12)]
                     for prof in (MAJOR_PROFILE, MINOR_PROFILE)])


def estimate_key(notes: list[Note]) -> tuple[int, str, float]:
    """Krumhansl-Schmuckler: (tonic 0..11, 'major' | 'minor', correlation)."""
    h = pitch_class_histogram(notes)
    if h.sum() == 0:
        return 0, "major", 0.0
    r = np.nan_to_num(key_correlations(h), nan=-2.0)                 # a flat histogram correlates with nothing
    mode, tonic = np.unravel_index(int(np.argmax(r)), r.shape)     # the first best: major before minor, low tonic first
    return int(tonic), ("major", "minor")[mode], float(r[mode, tonic])


@dataclass(frozen=True)
class PerformanceStats:
    notes: int
    seconds: float
    note_density: float        # note onsets per second
    mean_velocity: float
    mean_pitch: float          # register, MIDI pitch (60 = middle C)
    polyphony: float           # mean number of sounding notes while any sounds
    mean_ioi: float            # mean inter-onset interval between distinct onsets (s)
    key: str                   # e.g. 'A minor'
    major: bool

    def to_dict(self) -> dict:
        return asdict(self)


def describe(notes: list[Note], seconds: float | None = None) -> PerformanceStats:
    """Statistics of one performance (``seconds``: its length, default the last note's end)."""
    if not notes:
        return PerformanceStats(0, seconds or 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, "none", False)
    starts = np.array([n.start for n in notes])
    ends = np.array([n.end for n in notes])
    total = seconds or float(ends.max())
    onsets = np.unique(np.round(starts, 2))
    ioi = float(np.diff(onsets).mean()) if len(onsets) > 1 else 0.0
    grid = np.arange(0.0, float(ends.max()), 0.05)
    sounding = ((starts[None, :] <= grid[:, None]) & (ends[None, :] > grid[:, None])).sum(1)
    poly = float(sounding[sounding > 0].mean()) if (sounding > 0).any() else 0.0
    tonic, mode, _ = estimate_key(notes)
    return PerformanceStats(
        notes=len(notes), seconds=total, note_density=len(notes) / max(total, 1e-9),
        mean_velocity=float(np.mean([n.velocity for n in notes])),
        mean_pitch=float(np.mean([n.pitch for n in notes])), polyphony=poly, mean_ioi=ioi,
        key=f"{PITCH_NAMES[tonic]} {mode}", major=mode == "major")
