"""A small in-product critic: of several candidate phrases, play the one that sounds most real and most as asked.

The paper's closing idea: its correspondence classifier "could be further explored to
play a discriminator role". Here each phrase (``phrase_events`` events) is sampled as
``candidates`` rows of one batch from the same state; the critic scores each candidate
and the best is played (its state kept, the others dropped). The score is

    realism  the logit of a logistic regression trained to tell real phrases (EMOPIA train)
             from the shipped decoder's own, on the standardised features and their squares (a
             quadratic boundary, so a phrase can be too thick as well as too thin; critic.json,
             fitted by installation/training/critic_fit.py)
    + mood_weight * (key fit - density miss - loudness miss), against what the controls ask

Phrase features (``phrase_features``) need only the events and which notes sound when the
phrase starts, so they cost about 0.1 ms a candidate. Everything is seeded by the caller's
RNG: the same seed picks the same candidates.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from installation.mood import controls as C
from installation.music import events as E

FEATURE_NAMES = ("log_density", "sounding_mean", "sounding_end", "longest_held", "repeat_share", "pitch_sd",
                 "chord_size", "velocity_sd", "pitch_range", "net_onsets", "log_shift", "top_pc_share", "pc_continuity",
                 "pedal_share", "pedal_changes", "velocity_mid_share", "short_share", "onset_cluster", "pc_drift")
# every feature phrase_features computes; a critic file names the ones it was fitted on (an older critic: a prefix)
FILE = "critic.json"                 # the GRU's; another decoder's critic is critic_<kind>.json (file_for)


def file_for(kind: str) -> str:
    """The critic file of a decoder kind: each decoder's critic is fitted against its own phrases."""
    return FILE if kind == "gru" else f"critic_{kind}.json"


def phrase_features(ev: np.ndarray, sounding0: np.ndarray, held0: np.ndarray,
                    prev_pc: np.ndarray | None = None, pedal0: bool = False) -> tuple[np.ndarray, dict]:
    """One phrase -> (features in FEATURE_NAMES order, extras for the mood score).

    ``sounding0`` (128,) bool: the pitches sounding when the phrase starts; ``held0`` (128,): how long each has
    sounded by then (s); ``prev_pc`` (12,): the last phrase's note-on pitch-class counts (harmonic continuity:
    real music moves between chords, ours tends to stand still); ``pedal0``: the pedal is down at the start.
    Returns also the state at the end (sounding, held, pc, pedal) for the next phrase.
    """
    s = np.array(sounding0, bool, copy=True)
    onset = np.where(s, -np.asarray(held0, np.float64), 0.0)
    n_s = int(s.sum())
    t = area = pedal_time = 0.0
    vel = 64
    pedal, pedal_changes = bool(pedal0), 0
    on_p, on_v, on_t, shifts = [], [], [], []
    offs = short = 0
    for e in np.asarray(ev).tolist():
        if e < E.NOTE_OFF:
            if not s[e]:
                s[e] = True
                onset[e] = t
                n_s += 1
            on_p.append(e)
            on_v.append(vel)
            on_t.append(t)
        elif e < E.TIME_SHIFT:
            if s[e - E.NOTE_OFF]:
                s[e - E.NOTE_OFF] = False
                n_s -= 1
                offs += 1
                short += t - onset[e - E.NOTE_OFF] < 0.04
        elif e < E.VELOCITY:
            d = (e - E.TIME_SHIFT + 1) / E.STEPS_PER_SECOND
            area += n_s * d
            t += d
            pedal_time += d * pedal
            shifts.append(d)
        elif e < E.PEDAL:
            vel = E.bin_to_velocity(e - E.VELOCITY)
        else:
            down = e == E.PEDAL_DOWN
            pedal_changes += down != pedal
            pedal = down
    dur = max(t, 0.05)
    p = np.array(on_p, float)
    held = np.where(s, t - onset, 0.0)
    pc = np.bincount(np.array(on_p, int) % 12, minlength=12).astype(float)
    cont = 0.0
    if prev_pc is not None and pc.std() > 0 and np.std(prev_pc) > 0:
        cont = float(np.corrcoef(pc, prev_pc)[0, 1])
    half = len(on_p) // 2
    drift = 0.0
    if half >= 2:
        a = np.bincount(np.array(on_p[:half]) % 12, minlength=12).astype(float)
        b = np.bincount(np.array(on_p[half:]) % 12, minlength=12).astype(float)
        drift = 1.0 - float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
    ot = np.array(on_t)
    v = np.array(on_v)
    x = np.array([
        np.log2(1 + len(p) / dur),
        area / t if t > 0 else float(n_s),
        float(n_s),
        float(held.max()) if n_s else 0.0,
        float(np.mean(p[1:] == p[:-1])) if len(p) > 1 else 0.0,
        float(p.std()) if len(p) > 1 else 0.0,
        len(p) / max(1, len(set(on_t))),
        float(np.std(on_v)) if len(on_v) > 1 else 0.0,
        float(p.max() - p.min()) if len(p) else 0.0,
        (len(p) - offs) / max(1, len(ev)),
        float(np.mean(np.log(shifts))) if shifts else 0.0,
        float(pc.max() / pc.sum()) if len(p) else 0.0,
        cont,
        pedal_time / t if t > 0 else float(pedal),
        pedal_changes / dur,
        float(np.mean((v >= 48) & (v <= 80))) if len(v) else 0.0,
        short / max(1, offs),
        float(np.mean(np.diff(ot) < 0.018)) if len(ot) > 1 else 0.0,
        drift,
    ])
    return x, {"pitches": p, "velocities": np.array(on_v, float), "seconds": t, "sounding": s, "held": held, "pc": pc,
               "pedal": pedal}


def expand(z: np.ndarray) -> np.ndarray:
    """Standardised features -> the critic's inputs: each feature and its square, clipped to +-6 SD."""
    z = np.clip(z, -6.0, 6.0)
    return np.concatenate([z, z * z], axis=-1)


def mood_fit(extra: dict, controls: np.ndarray) -> float:
    """How well a phrase plays what the controls ask: key fit (correlation of its note-on pitch classes with the
    asked histogram) minus the density miss (log2 scale) and the loudness miss (per 16 velocity steps)."""
    c = np.asarray(controls, np.float64)
    p, v = extra["pitches"], extra["velocities"]
    score = 0.0
    if c[C.FLAGS + 0] < 0.5 and len(p) >= 3:
        h = np.bincount(p.astype(int) % 12, minlength=12).astype(float)
        want = c[C.KEY:C.KEY + 12]
        if h.std() > 0 and want.std() > 0:
            score += float(np.corrcoef(h, want)[0, 1])
    if c[C.FLAGS + 1] < 0.5 and extra["seconds"] > 0.2:
        score -= abs(np.log2(1 + len(p) / extra["seconds"]) - 4 * c[C.DENSITY])
    if c[C.FLAGS + 2] < 0.5 and len(v):
        score -= abs(v.mean() - (c[C.LOUDNESS] * 32 + 64)) / 16
    return score


@dataclass(frozen=True)
class Critic:
    """The fitted realism scorer and how the candidates are drawn."""
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    candidates: int = 4
    phrase_events: int = 48
    mood_weight: float = 1.0
    features: tuple = FEATURE_NAMES              # the features it was fitted on (the first ones of FEATURE_NAMES)

    def realism(self, x: np.ndarray) -> float:
        """The logit that a phrase with features x (all of FEATURE_NAMES) is real."""
        x = np.asarray(x)[:len(self.features)]
        return float(expand((x - self.mean) / self.scale) @ self.coef + self.intercept)

    def score(self, x: np.ndarray, extra: dict, controls: np.ndarray) -> float:
        return self.realism(x) + self.mood_weight * mood_fit(extra, controls)

    def to_dict(self) -> dict:
        return {"features": list(self.features), "mean": self.mean.tolist(), "scale": self.scale.tolist(),
                "coef": self.coef.tolist(), "intercept": self.intercept, "candidates": self.candidates,
                "phrase_events": self.phrase_events, "mood_weight": self.mood_weight}

    @classmethod
    def from_dict(cls, d: dict, where: str = FILE) -> "Critic":
        names = list(d.get("features", []))
        if not names or names != list(FEATURE_NAMES[:len(names)]):
            raise ValueError(f"{where}: its features are not this critic's ({', '.join(FEATURE_NAMES)}); refit it")
        k, n = int(d.get("candidates", 4)), int(d.get("phrase_events", 48))
        if not 1 <= k <= 16 or not 4 <= n <= 512:
            raise ValueError(f"{where}: candidates {k} (1..16) or phrase_events {n} (4..512) out of range")
        coef = np.asarray(d["coef"], float)
        if coef.shape != (2 * len(names),):
            raise ValueError(f"{where}: {coef.size} coefficients; its {len(names)} features need {2 * len(names)}; refit it")
        return cls(np.asarray(d["mean"], float), np.asarray(d["scale"], float), coef,
                   float(d["intercept"]), k, n, float(d.get("mood_weight", 1.0)), tuple(names))


def candidates_of(decoder, asked: int | None) -> int:
    """How many candidates each phrase gets: ``asked``, else the decoder's critic's default, else 1."""
    critic = getattr(decoder, "critic", None)
    k = (critic.candidates if critic is not None else 1) if asked is None else int(asked)
    if k > 1 and critic is None:
        raise ValueError(f"{k} candidates asked, but these models have no critic (critic.json)")
    return max(1, k)


def load(path: str | Path) -> Critic:
    return Critic.from_dict(json.loads(Path(path).read_text()), str(path))


class NoteClock:
    """Per row: which pitches sound and how long each has sounded (what ``phrase_features`` starts from)."""

    def __init__(self, rows: int):
        self.sounding = np.zeros((rows, E.NUM_PITCHES), bool)
        self.held = np.zeros((rows, E.NUM_PITCHES))
        self.pc = np.zeros((rows, 12))                 # the last phrase's note-on pitch-class counts
        self.pedal = np.zeros(rows, bool)              # the sustain pedal is down

    def take(self, rows) -> "NoteClock":
        c = NoteClock(0)
        c.sounding, c.held, c.pc = self.sounding[rows].copy(), self.held[rows].copy(), self.pc[rows].copy()
        c.pedal = self.pedal[rows].copy()
        return c


def choose(critic: Critic, phrases: np.ndarray, clock: NoteClock, controls: np.ndarray, k: int
           ) -> tuple[np.ndarray, NoteClock, np.ndarray]:
    """Candidates (N*k, P) events (row i's candidates at i*k .. i*k+k-1), their start clock (N*k rows) and
    controls (N*k, K) -> (index of the best candidate of each row (N,) in 0..N*k-1, the clock after it (N rows),
    the scores (N*k,)). Ties go to the first candidate."""
    n = len(phrases)
    scores = np.empty(n)
    ends_s, ends_h, ends_pc = np.empty((n, E.NUM_PITCHES), bool), np.empty((n, E.NUM_PITCHES)), np.empty((n, 12))
    ends_p = np.empty(n, bool)
    for r in range(n):
        x, extra = phrase_features(phrases[r], clock.sounding[r], clock.held[r], clock.pc[r], clock.pedal[r])
        scores[r] = critic.score(x, extra, controls[r])
        ends_s[r], ends_h[r], ends_pc[r], ends_p[r] = extra["sounding"], extra["held"], extra["pc"], extra["pedal"]
    best = scores.reshape(-1, k).argmax(1) + np.arange(0, n, k)
    out = NoteClock(0)
    out.sounding, out.held, out.pc, out.pedal = ends_s[best], ends_h[best], ends_pc[best], ends_p[best]
    return best, out, scores
