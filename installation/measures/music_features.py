"""Music described by numbers: fixed-length windows of notes, and one feature vector per window.

Real and generated music go through the same path (events -> ``events_to_notes`` ->
window -> features), so quantisation to 10 ms, velocity bins and the 5 s note cap
treat both alike and a classifier cannot tell them apart by encoding artefacts.

Every feature is a rate, a share or a statistic of a distribution, never a count,
so a window's length does not leak into the label.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from installation.music import analysis
from installation.music.events import Note

WINDOW_S = 30.0          # the length the evaluation generates, and the classifiers' window
HOP_S = 10.0             # hop between training/test windows of a longer piece
MAX_WINDOWS = 6          # windows per piece at most (keeps long VGMIDI pieces from dominating)
MIN_NOTES = 8            # a window with fewer notes is not described

# Names in feature-vector order; groups let an ablation drop, e.g., every dynamics feature.
PCH_NAMES = tuple(f"pch_rel_{i}" for i in range(12))
INTERVAL_NAMES = tuple(f"vertical_ic_{i}" for i in range(1, 7))
FEATURE_NAMES = (
    PCH_NAMES
    + ("key_major_r", "key_minor_r", "key_mode", "pc_entropy")
    + ("note_density", "onset_density", "silence_share")
    + ("velocity_mean", "velocity_std", "velocity_p10", "velocity_p90", "velocity_slope")
    + ("pitch_mean", "pitch_std", "pitch_p5", "pitch_p95", "pitch_range", "bass_mean", "top_mean")
    + ("polyphony_mean", "polyphony_p90")
    + ("log_ioi_mean", "log_ioi_std", "log_ioi_median")
    + ("log_dur_mean", "log_dur_std")
    + ("melodic_step_mean", "melodic_up_share")
    + INTERVAL_NAMES
)
DYNAMICS = tuple(n for n in FEATURE_NAMES if n.startswith("velocity_"))


def windows(notes: list[Note], length: float = WINDOW_S, hop: float = HOP_S,
            max_windows: int = MAX_WINDOWS) -> list[tuple[list[Note], float]]:
    """Cut a performance into windows of ``length`` seconds, starting at its first onset.

    Returns (notes shifted to start at 0 and clipped to the window, window length) pairs.
    A piece shorter than ``length`` gives one window of its own length.
    """
    if not notes:
        return []
    t0 = min(n.start for n in notes)
    end = max(n.end for n in notes)
    span = end - t0
    starts = [t0] if span <= length else list(t0 + np.arange(0.0, span - length + 1e-9, hop))
    out = []
    for s in starts[:max_windows]:
        w = min(length, span)
        cut = [Note(n.pitch, n.velocity, n.start - s, min(n.end, s + w) - s)
               for n in notes if s <= n.start < s + w and min(n.end, s + w) > n.start]
        out.append((cut, w))
    return out


def clip(notes: list[Note], length: float = WINDOW_S) -> list[Note]:
    """Notes of the first ``length`` seconds (from time 0), ends clipped there."""
    return [Note(n.pitch, n.velocity, n.start, min(n.end, length)) for n in notes
            if n.start < length and min(n.end, length) > n.start]


@dataclass
class Raw:
    """Per-note and per-piece values the quality comparison pools (besides the feature vector)."""
    velocities: np.ndarray
    iois: np.ndarray
    pch: np.ndarray          # absolute pitch classes, duration-weighted, sums to 1


def _onset_groups(starts: np.ndarray, tol: float = 0.03) -> list[np.ndarray]:
    """Indices of notes grouped into chords: onsets within ``tol`` s of the group's first onset."""
    order = np.argsort(starts, kind="stable")
    groups, cur, first = [], [], None
    for i in order:
        if first is None or starts[i] - first > tol:
            if cur:
                groups.append(np.array(cur))
            cur, first = [i], starts[i]
        else:
            cur.append(i)
    if cur:
        groups.append(np.array(cur))
    return groups


def note_arrays(notes: list[Note]):
    """(pitch, velocity, start, end, duration (at least 10 ms), onset groups, inter-onset intervals over 0 s
    between the groups) of a list of notes."""
    pitch = np.array([n.pitch for n in notes], float)
    vel = np.array([n.velocity for n in notes], float)
    start = np.array([n.start for n in notes], float)
    end = np.array([n.end for n in notes], float)
    groups = _onset_groups(start)
    ioi = np.diff(np.array([start[g].min() for g in groups]))
    return pitch, vel, start, end, np.maximum(end - start, 0.01), groups, ioi[ioi > 0]


def describe(notes: list[Note], seconds: float) -> tuple[np.ndarray, Raw] | None:
    """One window -> (feature vector in FEATURE_NAMES order, raw values); None if too few notes."""
    if len(notes) < MIN_NOTES or seconds <= 0:
        return None
    pitch, vel, start, end, dur, groups, ioi = note_arrays(notes)
    pch = analysis.pitch_class_histogram(notes)
    r = analysis.key_correlations(pch)                  # (major/minor, tonic); notes >= MIN_NOTES, so pch sums to 1
    r_major, r_minor = float(r[0].max()), float(r[1].max())
    tonic = int(np.unravel_index(int(np.argmax(r)), r.shape)[1])     # estimate_key's tonic
    pch_rel = np.roll(pch, -tonic)
    nz = pch[pch > 0]
    entropy = float(-(nz * np.log2(nz)).sum())

    log_ioi = np.log(ioi) if len(ioi) else np.array([0.0])

    grid = np.arange(0.0, seconds, 0.05)
    sounding = ((start[None, :] <= grid[:, None]) & (end[None, :] > grid[:, None])).sum(1)
    active = sounding[sounding > 0]
    silence = float((sounding == 0).mean()) if len(grid) else 0.0

    bass = np.array([pitch[g].min() for g in groups])
    top = np.array([pitch[g].max() for g in groups])
    steps = np.diff(top)
    vert = np.zeros(6)
    for g in groups:
        ps = np.unique(pitch[g].astype(int))
        for i in range(len(ps)):
            for j in range(i + 1, len(ps)):
                ic = (ps[j] - ps[i]) % 12
                ic = min(ic, 12 - ic)
                if ic:
                    vert[ic - 1] += 1
    vert = vert / vert.sum() if vert.sum() else vert
    slope = float(np.polyfit(start / max(seconds, 1e-9), vel, 1)[0]) if np.ptp(start) > 0 else 0.0

    x = np.concatenate([
        pch_rel,
        [r_major, r_minor, r_major - r_minor, entropy],
        [len(notes) / seconds, len(groups) / seconds, silence],
        [vel.mean(), vel.std(), np.percentile(vel, 10), np.percentile(vel, 90), slope],
        [pitch.mean(), pitch.std(), np.percentile(pitch, 5), np.percentile(pitch, 95),
         np.percentile(pitch, 95) - np.percentile(pitch, 5), bass.mean(), top.mean()],
        [active.mean() if len(active) else 0.0, np.percentile(active, 90) if len(active) else 0.0],
        [log_ioi.mean(), log_ioi.std(), np.median(log_ioi)],
        [np.log(dur).mean(), np.log(dur).std()],
        [np.abs(steps).mean() if len(steps) else 0.0, (steps > 0).mean() if len(steps) else 0.5],
        vert,
    ]).astype(np.float64)
    assert len(x) == len(FEATURE_NAMES)
    return x, Raw(vel, ioi, pch)


def column(name: str) -> int:
    return FEATURE_NAMES.index(name)
