"""Realism: could a listener take this music for real piano playing?

Two measures on 30 s pieces, real and generated treated alike (keys and pedal -> events ->
``events_to_notes``, so the 10 ms grid, the velocity bins and the 5 s cap on a held key
apply to both, and the sustain pedal lengthens the notes as a listener hears them):

- **a real-vs-generated classifier**: logistic regression on the realism features
  below together with the emotion judges' 46 note features (music_features.py),
  trained and scored with stratified k-fold cross-validation; its out-of-fold
  ROC AUC is the figure (0.5: the two cannot be told apart; 1: always told apart);
  a gradient-boosted classifier (``separability_gb``) on the same rows beside it, a
  stronger listener that finds what a linear boundary misses;
- **per-feature gaps**: the mean of each realism feature, generated against real.

The realism features (one value per piece):

    sounding          mean notes sounding while any sounds (50 ms grid)
    density           note-ons per second
    chroma_self_sim   mean correlation (Pearson) of the pitch-class vectors of successive 2 s blocks
    tonic_share       share of sounding time on the estimated key's tonic
    log_dur           mean log note length (s)
    held_to_cap       share of notes that last to the 5 s cap of ``events_to_notes`` (hanging notes)
    velocity_sd       spread of note velocities
    log_ioi           mean log inter-onset interval between chords (onsets within 30 ms grouped)
    repeat_share      share of successive notes (in onset order) that repeat the same pitch
    pitch_sd          spread of pitches
    chord_size        mean notes per onset (simultaneous onsets)
    long_notes        share of notes sounding over 5 s (the pedal's long resonance)
    short_notes       share of notes under 40 ms (clicks, not notes), of those that end inside the piece
    velocity_mid      share of note velocities in 48-80 (a touch bunched in the middle)
    onsets_18ms       share of successive onsets 1-18 ms apart (a chord struck: its notes spread a little)
    pc_transition_entropy  conditional entropy (bits) of the next note-on's pitch class given the last one's
                      (onset order, pitch order within an onset): harmonic variety
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from installation.measures import music_features as MF
from installation.music import analysis
from installation.music.events import Note

BLOCK_S = 2.0                # chroma blocks
CAP_S = 5.0                  # events_to_notes' note cap
REALISM_NAMES = ("sounding", "density", "chroma_self_sim", "tonic_share", "log_dur", "held_to_cap", "velocity_sd",
                 "log_ioi", "repeat_share", "pitch_sd", "chord_size", "long_notes", "short_notes", "velocity_mid",
                 "onsets_18ms", "pc_transition_entropy")


def pc_transition_entropy(pitch_classes: np.ndarray) -> float:
    """H(next | last) in bits over successive pitch classes; NaN under two notes."""
    pc = np.asarray(pitch_classes, int)
    if len(pc) < 2:
        return float("nan")
    M = np.zeros((12, 12))
    np.add.at(M, (pc[:-1], pc[1:]), 1)
    rows = M.sum(1, keepdims=True)
    nz = M > 0
    return float(-(M[nz] / M.sum() * np.log2((M / np.maximum(rows, 1))[nz])).sum())


def chroma_self_similarity(notes: list[Note], seconds: float, block: float = BLOCK_S) -> float:
    """Mean Pearson correlation of the duration-weighted pitch-class vectors of successive ``block``-s blocks
    (pairs where both blocks sound); NaN when fewer than two blocks sound. Centred, so two blocks that share
    no pitch class score below 0, and the measure is not inflated by every vector being non-negative."""
    nb = max(1, int(np.ceil(seconds / block)))
    ch = np.zeros((nb, 12))
    for n in notes:
        a, b = n.start, min(n.end, seconds)
        k = int(a // block)
        while a < b and k < nb:
            e = min(b, (k + 1) * block)
            ch[k, n.pitch % 12] += e - a
            a, k = e, k + 1
    c = ch - ch.mean(1, keepdims=True)
    norm = np.linalg.norm(c, axis=1)
    ok = (norm[:-1] > 0) & (norm[1:] > 0)
    if not ok.any():
        return float("nan")
    r = (c[:-1] * c[1:]).sum(1)[ok] / (norm[:-1] * norm[1:])[ok]
    return float(r.mean())


def tonic_share(notes: list[Note]) -> float:
    """Share of sounding time on the tonic of the Krumhansl-Schmuckler key estimate."""
    h = analysis.pitch_class_histogram(notes)
    if h.sum() == 0:
        return float("nan")
    tonic, _, _ = analysis.estimate_key(notes)
    return float(h[tonic])


def sounding_mean(start: np.ndarray, end: np.ndarray, seconds: float, step: float = 0.05) -> float:
    grid = np.arange(0.0, seconds, step)
    s = ((start[None, :] <= grid[:, None]) & (end[None, :] > grid[:, None])).sum(1)
    return float(s[s > 0].mean()) if (s > 0).any() else 0.0


def features(notes: list[Note], seconds: float) -> np.ndarray:
    """The realism features of one piece, in REALISM_NAMES order (NaN where a value is undefined)."""
    if not notes:
        return np.full(len(REALISM_NAMES), np.nan)
    pitch, vel, start, end, dur, groups, ioi = MF.note_arrays(notes)
    order = np.lexsort((pitch, start))
    seq = pitch[order]
    gap = np.diff(np.sort(start))
    true_dur = end - start
    return np.array([
        sounding_mean(start, end, seconds),
        len(notes) / seconds,
        chroma_self_similarity(notes, seconds),
        tonic_share(notes),
        float(np.log(dur).mean()),
        float((dur >= CAP_S - 0.011).mean()),
        float(vel.std()),
        float(np.log(ioi).mean()) if len(ioi) else float("nan"),
        float((seq[1:] == seq[:-1]).mean()) if len(seq) > 1 else float("nan"),
        float(pitch.std()),
        len(notes) / len(groups),
        float((true_dur > CAP_S).mean()),
        float((true_dur[end < seconds - 1e-6] < 0.04).mean()) if (end < seconds - 1e-6).any() else float("nan"),
        float(((vel >= 48) & (vel <= 80)).mean()),
        float(((gap > 1e-6) & (gap <= 0.018)).mean()) if len(gap) else float("nan"),
        pc_transition_entropy(seq.astype(int) % 12),
    ])


def describe_all(pieces: list[list[Note]], seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """(realism features (n, R), emotion-judge features (n, F)) of pieces of ``seconds``; rows that cannot be
    described (too few notes) are NaN."""

    R = np.full((len(pieces), len(REALISM_NAMES)), np.nan)
    F = np.full((len(pieces), len(MF.FEATURE_NAMES)), np.nan)
    for i, notes in enumerate(pieces):
        notes = MF.clip(notes, seconds)
        R[i] = features(notes, seconds)
        d = MF.describe(notes, seconds)
        if d is not None:
            F[i] = d[0]
    return R, F


@dataclass
class Separability:
    """How well a classifier tells real from generated, out of fold."""
    auc: float
    ci95: tuple[float, float]
    real: int
    generated: int
    folds: int


def auc(y: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC (Mann-Whitney, ties counted half)."""
    y = np.asarray(y, bool)
    pos, neg = score[y], score[~y]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    from scipy.stats import rankdata

    r = rankdata(np.concatenate([pos, neg]))
    return float((r[:len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def separability(real: np.ndarray, gen: np.ndarray, *, folds: int = 5, seed: int = 0,
                 resamples: int = 1000) -> Separability:
    """Out-of-fold AUC of an L2 logistic regression telling generated (1) from real (0) rows.

    Rows with a NaN are dropped; features are standardised inside each fold. The interval
    is a bootstrap over the out-of-fold scores.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return _out_of_fold(real[np.isfinite(real).all(1)], gen[np.isfinite(gen).all(1)],
                        lambda: make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000)),
                        folds, seed, resamples)


def separability_gb(real: np.ndarray, gen: np.ndarray, *, folds: int = 5, seed: int = 0) -> Separability:
    """As ``separability`` with a gradient-boosted tree classifier (scikit-learn's HistGradientBoosting: NaNs allowed,
    no scaling needed); out-of-fold AUC, bootstrap interval."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    return _out_of_fold(real, gen, lambda: HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05,
                                                                          random_state=seed), folds, seed, 1000)


def _out_of_fold(real: np.ndarray, gen: np.ndarray, make_classifier, folds: int, seed: int,
                 resamples: int) -> Separability:
    """Out-of-fold AUC of a fresh ``make_classifier()`` per fold, with a bootstrap interval over its scores."""
    from sklearn.model_selection import StratifiedKFold

    X = np.concatenate([real, gen])
    y = np.r_[np.zeros(len(real), int), np.ones(len(gen), int)]
    k = int(min(folds, len(real), len(gen)))
    if k < 2:
        return Separability(float("nan"), (float("nan"), float("nan")), len(real), len(gen), 0)
    oof = np.zeros(len(y))
    for tr, te in StratifiedKFold(k, shuffle=True, random_state=seed).split(X, y):
        clf = make_classifier()
        clf.fit(X[tr], y[tr])
        oof[te] = clf.predict_proba(X[te])[:, 1]
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(resamples):
        i = rng.integers(0, len(y), len(y))
        if 0 < y[i].sum() < len(i):
            boots.append(auc(y[i], oof[i]))
    lo, hi = (np.quantile(boots, [0.025, 0.975]) if boots else (np.nan, np.nan))
    return Separability(auc(y, oof), (float(lo), float(hi)), len(real), len(gen), k)


def gaps(real_R: np.ndarray, gen_R: np.ndarray) -> dict[str, dict[str, float]]:
    """Per realism feature: real mean, generated mean, their difference and ratio."""
    out = {}
    for j, name in enumerate(REALISM_NAMES):
        r, g = np.nanmean(real_R[:, j]), np.nanmean(gen_R[:, j])
        out[name] = {"real": float(r), "generated": float(g), "difference": float(g - r),
                     "ratio": float(g / r) if r else float("nan")}
    return out


def single_feature_auc(real_R: np.ndarray, gen_R: np.ndarray) -> dict[str, float]:
    """How well each realism feature alone tells the two apart: max(AUC, 1 - AUC), 0.5 = not at all."""
    out = {}
    for j, name in enumerate(REALISM_NAMES):
        r, g = real_R[:, j], gen_R[:, j]
        r, g = r[np.isfinite(r)], g[np.isfinite(g)]
        a = auc(np.r_[np.zeros(len(r), bool), np.ones(len(g), bool)], np.r_[r, g])
        out[name] = float(max(a, 1 - a))
    return out
