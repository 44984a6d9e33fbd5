"""Chords recognised from the notes themselves: the chord control's truth in training (a small rule-based
recogniser, as chorder is; no model).

    notes (pedal applied) -> frames of FRAME_S -> each frame's duration-weighted pitch-class profile
    -> cosine against chord templates (maj, min, dim, aug, sus2/sus4, 7, maj7, min7, m7b5, dim7),
       a small prior for the plain triads
    -> Viterbi with a penalty per change: the chord sequence that best explains the profiles while
       changing seldom (POP909 measures a chord lasting about 1.8 s)

A chord is a 12-bit pitch-class mask (bit p = pitch class p); 0 means no chord (a silent frame).
``installation/evaluation``'s chord check measures this recogniser against POP909's annotations; the harmony fit
(``installation/training/harmony_fit.py``) reads POP909's labels with ``parse_label`` and measures EMOPIA's
harmonic rhythm with ``recognise`` and ``segments``. The qualities are installation/theory.py's.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from installation import vocabulary as V
from installation.theory import CHORD_QUALITIES, pitch_class

FRAME_S = 0.25            # frame length of the recogniser (seconds)
CHANGE_PENALTY = 0.5      # Viterbi: score given up per chord change (cosine units)

PRIORS = {                # quality (installation/theory.py's CHORD_QUALITIES) -> prior added to the cosine
    "maj": 0.0, "min": 0.0, "dim": -0.06, "aug": -0.08, "sus4": -0.06, "sus2": -0.06, "7": -0.03, "maj7": -0.03,
    "min7": -0.03, "hdim7": -0.05, "dim7": -0.06,
}
QUALITIES = {q: (CHORD_QUALITIES[q][0], prior) for q, prior in PRIORS.items()}   # quality -> (intervals, prior)


def mask_of(pcs) -> int:
    m = 0
    for p in pcs:
        m |= 1 << (int(p) % 12)
    return m


def pcs_of(mask: int) -> frozenset[int]:
    return frozenset(p for p in range(12) if (int(mask) >> p) & 1)


def _templates():
    names, masks, priors = [], [], []
    for q, (iv, prior) in QUALITIES.items():
        for root in range(12):
            m = mask_of((root + i) for i in iv)
            if m in masks:                                  # sus2 on C = sus4 on G; dim7 and aug repeat
                continue
            names.append((root, q))
            masks.append(m)
            priors.append(prior)
    vec = np.array([[(m >> p) & 1 for p in range(12)] for m in masks], np.float64)
    vec /= np.linalg.norm(vec, axis=1, keepdims=True)
    return names, np.array(masks, np.int64), vec, np.array(priors)


NAMES, MASKS, _VEC, _PRIOR = _templates()


def profiles(notes: Sequence, end: float | None = None, frame_s: float = FRAME_S) -> np.ndarray:
    """(F, 12) duration-weighted pitch-class profiles of frames of ``frame_s`` seconds."""
    end = max([n.end for n in notes], default=0.0) if end is None else end
    F = max(1, int(np.ceil(end / frame_s)))
    prof = np.zeros((F, 12))
    for n in notes:
        a, b = n.start / frame_s, min(n.end, end) / frame_s
        i, j = int(a), min(int(np.ceil(b)), F)
        for f in range(i, j):
            ov = min(b, f + 1) - max(a, f)
            if ov > 0:
                prof[f, n.pitch % 12] += ov
    return prof


def recognise(notes: Sequence, end: float | None = None, *, frame_s: float = FRAME_S,
              penalty: float = CHANGE_PENALTY) -> np.ndarray:
    """The chord of each frame, as 12-bit masks (F,) int64 (0: no note sounds)."""
    prof = profiles(notes, end, frame_s)
    norm = np.linalg.norm(prof, axis=1, keepdims=True)
    empty = norm[:, 0] == 0
    score = (prof / np.where(norm > 0, norm, 1)) @ _VEC.T + _PRIOR        # (F, S)
    F, S = score.shape
    back = np.zeros((F, S), np.int64)
    total = score[0].copy()
    for f in range(1, F):
        best = int(total.argmax())
        stay = total
        move = total[best] - penalty
        back[f] = np.where(stay >= move, np.arange(S), best)
        total = np.maximum(stay, move) + score[f]
    path = np.empty(F, np.int64)
    path[-1] = int(total.argmax())
    for f in range(F - 1, 0, -1):
        path[f - 1] = back[f, path[f]]
    out = MASKS[path]
    out[empty] = 0
    return out


def masks_at(times: np.ndarray, frames: np.ndarray, frame_s: float = FRAME_S) -> np.ndarray:
    """The chord mask in force at each time (seconds): the frame it falls in (past the end: the last)."""
    i = np.clip((np.asarray(times, np.float64) / frame_s).astype(np.int64), 0, max(len(frames) - 1, 0))
    return frames[i] if len(frames) else np.zeros(len(i), np.int64)


def event_chords(events: np.ndarray, notes: Sequence, stretch: float = 1.0, frame_s: float = FRAME_S) -> np.ndarray:
    """For each event of a sequence encoded from ``notes`` (times multiplied by ``stretch``), the chord in force
    once it has happened (the stream time after it, in the notes' own time): (T,) int16 masks."""
    ev = np.asarray(events, np.int64)
    shift = np.where((ev >= V.TIME_SHIFT) & (ev < V.TIME_SHIFT + V.NUM_TIME_SHIFTS), ev - V.TIME_SHIFT + 1, 0)
    t = np.cumsum(shift) / V.STEPS_PER_SECOND / stretch
    frames = recognise(notes, end=float(t[-1]) if len(t) else 0.0, frame_s=frame_s)
    return masks_at(t, frames, frame_s).astype(np.int16)


def segments(frames: np.ndarray, frame_s: float = FRAME_S) -> list[tuple[float, float]]:
    """(start, end) in seconds of the chords in a frame sequence from ``recognise``: runs of one chord, a rest
    (frames of no chord) held by the chord before it, the silence before the first chord left out."""
    f = np.asarray(frames)
    sounding = np.flatnonzero(f)
    if not len(sounding):
        return []
    held = f[np.maximum.accumulate(np.where(f != 0, np.arange(len(f)), 0))][sounding[0]:]
    bounds = np.r_[0, np.flatnonzero(held[1:] != held[:-1]) + 1, len(held)] + sounding[0]
    return [(float(a * frame_s), float(b * frame_s)) for a, b in zip(bounds[:-1], bounds[1:])]


# --- POP909's chord labels (for measuring the recogniser) ------------------------------------

_LABEL_QUALITIES = {q: iv for q, (iv, _) in CHORD_QUALITIES.items()} | {
    "maj6": (0, 4, 7, 9), "min6": (0, 3, 7, 9), "9": (0, 4, 7, 10), "maj9": (0, 4, 7, 11), "min9": (0, 3, 7, 10),
    "minmaj7": (0, 3, 7, 11), "": (0, 4, 7),
}


def parse_label(label: str) -> tuple[int, str, int] | None:
    """'E:min7', 'G:maj/3', 'C:sus4(b7)' -> (root, quality, mask); None for 'N' or a quality not known."""
    label = label.strip()
    root_s, _, rest = label.partition(":")
    try:
        root = pitch_class(root_s)
    except ValueError:
        return None
    quality = rest.split("/")[0].split("(")[0]
    iv = _LABEL_QUALITIES.get(quality)
    if iv is None:
        return None
    return root, quality, mask_of(root + i for i in iv)
