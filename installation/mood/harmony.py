"""A harmony that moves: which chord, and when, in the asked key and mode, learnt from POP909.

The model (``exported_models/harmony.json``, fitted by ``python -m installation.training.harmony_fit``)
holds two tables, per mode, in functions: a chord is a root degree against the local tonic (0-11) and a
quality folded to a small set (maj, min, dim, aug, sus2, sus4, 7, maj7, min7):

- succession: counts of function trigrams (a Markov chain of order 2, Witten-Bell smoothed, backing off
  to order 1 and 0; the start of a phrase is a context of its own), with the repeat of a chord removed;
- harmonic rhythm: chord length in beats (1-8), conditioned on the previous length, the beat in the bar
  where the chord starts, and the song's tempo band.

Arousal and mode set the beat, which also picks the tempo band of the rhythm table: POP909 has no
emotion labels, so the fit measures EMOPIA's harmonic rhythm by quadrant (chords recognised from its
notes) and finds, per mode, the beat at arousal -1 and +1 whose plans change chord as often as EMOPIA's
clips of that corner (major: Q4, Q1; minor: Q3, Q2); linear in between.

    model = HarmonyModel.load()                         # exported_models/harmony.json
    plan = HarmonyPlan(model, key_tonic=9, minor=True, arousal=0.3, seed=1)
    plan.chord_at(12.5)                                 # Chord(root=5, quality='maj', pcs=..., name='F')
    plan.ahead(10.0, 14.0)                              # [(9.7, Chord Am), (11.3, Chord F), ...]
    plan.restart(20.0, 2, False, -0.5)                  # a scene change: D major from t = 20 s on, at once
    plan.hold(recognise({0, 4, 7}))                     # a live chord holds the harmony ...
    plan.hold(None)                                     # ... until released

In the engine the generator owns the plan (``generator.plan``, made by ``engine.open_harmony`` from the
models folder's harmony.json): it restarts it at each new scene, or a new key, at its music time
(``GeneratorThread._follow_harmony``), and its frontier asks ``chord_at(stream time)`` (the chord control,
and ``[chord_layer]``'s ``ChordPlayer.until``); OSC reads ``chord_at(playback time)``, behind it; a chord
input calls ``hold``, which takes effect from the furthest time asked.

Times are the caller's (the generator's music time, seconds). A plan is extended lazily as it is asked
further, keeps about a minute behind the furthest time asked, and is safe to share between threads (the
generator asks it, a chord layer and OSC read it, a MIDI input holds it). Plain Python: no numpy needed.
"""
from __future__ import annotations

import bisect
import json
import math
import random
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable

from installation.theory import CHORD_QUALITIES, spell

DEFAULT_FILE = Path(__file__).resolve().parents[2] / "exported_models" / "harmony.json"

# the folded qualities (installation/theory.py's table, which music/chords.py's recogniser also reads):
# intervals above the root, and the suffix of the chord's name
FOLDED = ("maj", "min", "dim", "aug", "sus2", "sus4", "7", "maj7", "min7")
QUALITIES: dict[str, tuple[tuple[int, ...], str]] = {q: CHORD_QUALITIES[q] for q in FOLDED}
ROMAN = ("I", "bII", "II", "bIII", "III", "IV", "#IV", "V", "bVI", "VI", "bVII", "VII")
BOS = -1                      # the context at the start of a phrase (a plan's start, a restart)
MAX_BEATS = 8
HISTORY_S = 60.0              # how far behind the furthest time asked a plan keeps its chords


@dataclass(frozen=True)
class Chord:
    """A chord: root pitch class (0-11), folded quality, its pitch classes, and a name such as 'Am7' (the root
    spelt in the key it was named in: G#m7 in E major; the name does not take part in equality)."""
    root: int
    quality: str
    pcs: frozenset[int]
    name: str = field(compare=False)

    @staticmethod
    def of(root: int, quality: str, key: tuple[int, bool] | None = None) -> "Chord":
        """The chord on ``root``; ``key`` (tonic pitch class, minor) spells its name."""
        intervals, suffix = QUALITIES[quality]
        root %= 12
        return Chord(root, quality, frozenset((root + i) % 12 for i in intervals), spell(root, key) + suffix)

    def spelt(self, key: tuple[int, bool] | None) -> "Chord":
        """The same chord named in ``key``."""
        return replace(self, name=spell(self.root, key) + QUALITIES[self.quality][1])


def recognise(pcs: Iterable[int], bass: int | None = None, key: tuple[int, bool] | None = None) -> Chord | None:
    """The chord a set of pitch classes (e.g. keys held on a keyboard) sounds as: the best template by
    notes matched minus notes missing and extra (the bass note breaks ties). Its ``pcs`` are the ones
    played, so whoever follows it follows what was played; ``key`` (tonic, minor) spells its name. None
    for an empty set."""
    played = frozenset(int(p) % 12 for p in pcs)
    if not played:
        return None
    best, best_score = None, -math.inf
    for root in sorted(played):
        for q, (intervals, _) in QUALITIES.items():
            tpl = {(root + i) % 12 for i in intervals}
            score = 2 * len(tpl & played) - len(tpl - played) - len(played - tpl) + (0.5 if root == bass else 0)
            score -= 0.1 * len(intervals) / 4           # the plain triad before its seventh, when equal
            if score > best_score:
                best, best_score = (root, q), score
    c = Chord.of(*best, key=key)
    if c.pcs == played:
        return c
    if len(played) < 3:                                 # one or two keys: the named chord's notes
        return c
    return Chord(c.root, c.quality, played, c.name)


def function_name(degree: int, quality: str) -> str:
    """A function as a Roman numeral: (7, 'maj') -> 'V', (2, 'min') -> 'ii', (10, 'maj') -> 'bVII'."""
    r = ROMAN[degree % 12]
    acc, num = (r[0], r[1:]) if r[0] in "b#" else ("", r)
    if quality in ("min", "dim", "min7"):
        num = num.lower()
    suffix = {"maj": "", "min": "", "dim": "o", "aug": "+", "sus2": "sus2", "sus4": "sus4", "7": "7",
              "maj7": "maj7", "min7": "7"}[quality]
    return acc + num + suffix


class _Chain:
    """One mode's succession model: Witten-Bell interpolation of orders 2, 1, 0, without repeats."""

    def __init__(self, m: dict):
        self.functions: list[tuple[int, str]] = [(int(d), q) for d, q in (f.split(":") for f in m["functions"])]
        self.index = {f: i for i, f in enumerate(self.functions)}
        n = len(self.functions)
        uni = [float(c) for c in m["unigram"]]
        total = sum(uni)
        self.p0 = [c / total for c in uni]
        self.bi = {int(a): {int(b): c for b, c in row.items()} for a, row in m["bigram"].items()}
        self.tri = {tuple(int(x) for x in ab.split(",")): {int(b): c for b, c in row.items()}
                    for ab, row in m["trigram"].items()}
        self._cache: dict[tuple[int, int], tuple[list[int], list[float]]] = {}
        self.n = n

    @staticmethod
    def _mix(row: dict[int, float] | None, lower: list[float]) -> list[float]:
        if not row:
            return lower
        count = sum(row.values())
        lam = count / (count + len(row))
        out = [(1 - lam) * p for p in lower]
        for k, c in row.items():
            out[k] += lam * c / count
        return out

    def dist(self, a: int, b: int) -> tuple[list[int], list[float]]:
        """(function ids, cumulative probabilities) after the context (a, b); b is never repeated."""
        key = (a, b)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        p = self._mix(self.tri.get(key), self._mix(self.bi.get(b), self.p0))
        if b >= 0:
            p = list(p)
            p[b] = 0.0
        ids = [i for i, x in enumerate(p) if x > 0]
        total = sum(p[i] for i in ids)
        cum, acc = [], 0.0
        for i in ids:
            acc += p[i] / total
            cum.append(acc)
        cum[-1] = 1.0
        self._cache[key] = (ids, cum)
        return ids, cum


class HarmonyModel:
    """The fitted tables (see the module's docstring)."""

    def __init__(self, data: dict, path: Path | None = None):
        if data.get("format") != 1:
            raise ValueError(f"{path or 'harmony model'}: unknown format {data.get('format')!r}")
        self.data, self.path = data, path
        self.chains = {False: _Chain(data["modes"]["major"]), True: _Chain(data["modes"]["minor"])}
        r = data["rhythm"]
        self.lengths: list[int] = list(r["lengths"])
        self.tempo_edges: list[float] = list(r["tempo_edges"])     # bpm edges between the tempo bands
        self.tempo_quantiles: list[float] = list(r["tempo_quantiles"])  # song tempi at quantiles 0.05 ... 0.95
        # (band, position, previous length) -> cumulative over lengths, with back-off mixed in at load
        self._rhythm: dict[tuple[int, int, int], list[float]] = {}
        table = {tuple(int(x) for x in k.split(",")): v for k, v in r["table"].items()}
        probs: dict[tuple[int, int, int], list[float]] = {}
        for key in sorted(table, key=lambda k: (k[1] != -1) + (k[2] != -1)):     # back-off levels first
            band, pos, prev = key
            lower = probs.get((band, pos, -1)) if prev != -1 else probs.get((band, -1, -1)) if pos != -1 else None
            probs[key] = _blend(table[key], lower)
            self._rhythm[key] = _cumulative(probs[key])
        self.bar_beats = int(r.get("bar_beats", 4))
        self.arousal_tempo: dict | None = r.get("arousal_tempo")      # {"major": [bpm at -1, at +1], "minor": ...}

    @classmethod
    def load(cls, path: str | Path | None = None) -> "HarmonyModel":
        """From a file, or a models folder holding harmony.json (None: the shipped one)."""
        p = Path(path) if path is not None else DEFAULT_FILE
        if p.is_dir():
            p = p / "harmony.json"
        return cls(json.loads(p.read_text(encoding="utf-8")), p)

    def tempo(self, arousal: float, minor: bool = False) -> float:
        """Beats per minute for an arousal in -1..1. Fitted with EMOPIA (``arousal_tempo``): per mode, linear
        from the beat whose plans change chord as EMOPIA's low-arousal quadrant does (minor: Q3, major: Q4)
        to the high one's (Q2, Q1). Otherwise POP909's song tempo at quantile 0.05 (-1) to 0.95 (+1)."""
        a = min(1.0, max(-1.0, float(arousal)))
        if self.arousal_tempo:
            lo, hi = self.arousal_tempo["minor" if minor else "major"]
            return lo + (a + 1.0) / 2.0 * (hi - lo)
        q = (a + 1.0) / 2.0
        qs = self.tempo_quantiles
        x = q * (len(qs) - 1)
        i = min(int(x), len(qs) - 2)
        return qs[i] + (x - i) * (qs[i + 1] - qs[i])

    def band(self, bpm: float) -> int:
        return bisect.bisect_right(self.tempo_edges, bpm)

    def rhythm(self, band: int, pos: int, prev: int) -> list[float]:
        for key in ((band, pos, prev), (band, pos, -1), (band, -1, -1)):
            cum = self._rhythm.get(key)
            if cum is not None:
                return cum
        raise KeyError(f"harmony model: no rhythm for tempo band {band}")


def _blend(counts: list[float], lower: list[float] | None) -> list[float]:
    """Witten-Bell: a context's counts mixed with its back-off's distribution."""
    if lower is None:
        return counts
    n, types = sum(counts), sum(1 for c in counts if c > 0)
    lt = sum(lower)
    lam = n / (n + types) if n else 0.0
    return [lam * c / max(n, 1e-9) + (1 - lam) * lc / lt for c, lc in zip(counts, lower)]


def _cumulative(p: list[float]) -> list[float]:
    total = sum(p)
    out, acc = [], 0.0
    for x in p:
        acc += x / total
        out.append(acc)
    out[-1] = 1.0
    return out


@dataclass
class _State:
    tonic: int = 0
    minor: bool = False
    arousal: float = 0.0
    beat_s: float = 0.8
    band: int = 1
    ctx: tuple[int, int] = (BOS, BOS)
    prev_len: int = 0           # beats of the last chord (0: a phrase starts)
    pos: int = 0                # the beat in the bar where the next chord starts


class HarmonyPlan:
    """A chord plan in a key, drawn from the model; see the module's docstring."""

    def __init__(self, model: HarmonyModel, key_tonic: int = 0, minor: bool = False, arousal: float = 0.0,
                 rng=None, seed: int | None = None, t: float = 0.0, bpm: float | None = None):
        self.model = model
        # each restart (and each release of a held chord) draws from its own stream, seeded from the plan's
        # seed and the restart's number: the same asks give the same plan, however far readers looked ahead
        if rng is None or not hasattr(rng, "random"):
            seeder = random.Random(seed if rng is None else rng)
        else:
            seeder = rng                          # random.Random or numpy's Generator
        self._next_seed = lambda: int(seeder.random() * 2**53)
        self._random = random.random
        self._lock = threading.Lock()
        self._starts: list[float] = []
        self._chords: list[Chord] = []
        self._end = t                # the plan is drawn up to here
        self._asked = t              # the furthest time asked
        self._held: Chord | None = None
        self._s = _State()
        self.version = 0             # bumped by restart() and hold(): readers that cache the plan look again
        self.restart(t, key_tonic, minor, arousal, bpm=bpm)

    # --- reading ---
    def chord_at(self, t: float) -> Chord:
        """The chord in force at time t (the held chord, from when it was taken, while one is held)."""
        with self._lock:
            if t > self._asked:
                self._asked = t
            if self._held is None:
                while self._end <= t or not self._starts:
                    self._extend()
            i = bisect.bisect_right(self._starts, t) - 1
            return self._chords[max(i, 0)]

    def ahead(self, t0: float, t1: float) -> list[tuple[float, Chord]]:
        """The chords sounding in [t0, t1): the one in force at t0 (with its own start) and those starting
        before t1, as (start, chord)."""
        with self._lock:
            if self._held is None:
                while self._end <= t1:
                    self._extend()
            i = max(bisect.bisect_right(self._starts, t0) - 1, 0)
            j = bisect.bisect_left(self._starts, t1)
            return list(zip(self._starts[i:max(j, i + 1)], self._chords[i:max(j, i + 1)]))

    def next_change(self, t: float) -> float:
        """The time of the first chord change after t (inf while a chord is held)."""
        with self._lock:
            if self._held is not None and self._starts[-1] <= t:
                return math.inf
            while self._end <= t:
                self._extend()
            i = bisect.bisect_right(self._starts, t)
            if i < len(self._starts):
                return self._starts[i]
            return self._end

    @property
    def key(self) -> tuple[int, bool]:
        return self._s.tonic, self._s.minor

    @property
    def held(self) -> Chord | None:
        return self._held

    @property
    def beat_s(self) -> float:
        return self._s.beat_s

    # --- changing ---
    def restart(self, t: float, key_tonic: int, minor: bool, arousal: float = 0.0, bpm: float | None = None) -> None:
        """A scene change: from t on, a new plan in the new key (its first chord begins at t). ``bpm`` sets the
        beat instead of arousal (for measurements)."""
        with self._lock:
            self.version += 1
            self._random = random.Random(self._next_seed()).random
            self._truncate(t)
            s = self._s
            s.tonic, s.minor, s.arousal = int(key_tonic) % 12, bool(minor), float(arousal)
            bpm = float(bpm) if bpm else self.model.tempo(s.arousal, s.minor)
            s.beat_s, s.band = 60.0 / bpm, self.model.band(bpm)
            s.ctx, s.prev_len, s.pos = (BOS, BOS), 0, 0
            self._end = t
            if self._held is not None:
                self._held = self._held.spelt((s.tonic, s.minor))
                if self._chords and self._chords[-1] == self._held:
                    self._chords[-1] = self._held           # held on: not struck again, named in the new key
                self._append(t, self._held)
            self._asked = max(self._asked, t)

    def hold(self, chord: Chord | None) -> None:
        """A live chord (MIDI keyboard, OSC) becomes the harmony from the furthest time asked, until
        ``hold(None)``; then the plan goes on from there, in its key, after the held chord."""
        with self._lock:
            t = self._asked
            if chord is not None:
                chord = chord.spelt((self._s.tonic, self._s.minor))      # named in the plan's key
                if self._held == chord:
                    return
                self.version += 1
                self._held = chord
                self._truncate(t)
                self._append(t, chord)
                self._end = t
                return
            if self._held is None:
                return
            held, self._held = self._held, None
            self.version += 1
            self._random = random.Random(self._next_seed()).random
            s = self._s
            f = self.model.chains[s.minor].index.get(((held.root - s.tonic) % 12, held.quality))
            s.ctx = (BOS, BOS if f is None else f)
            s.prev_len, s.pos = 0, 0
            self._end = max(self._end, t)

    # --- inside ---
    def _truncate(self, t: float) -> None:
        i = bisect.bisect_left(self._starts, t)
        del self._starts[i:], self._chords[i:]

    def _append(self, t: float, chord: Chord, phrase: bool = False) -> None:
        if not phrase and self._chords and self._chords[-1] == chord and self._starts[-1] <= t:
            return                                  # the same chord goes on: no change
        self._starts.append(t)
        self._chords.append(chord)

    def _extend(self) -> None:
        """Draw the next chord and its length; it starts at the plan's end."""
        s, m, r = self._s, self.model, self._random
        chain = m.chains[s.minor]
        ids, cum = chain.dist(*s.ctx)
        f = ids[min(bisect.bisect_left(cum, r()), len(ids) - 1)]
        degree, quality = chain.functions[f]
        cum = m.rhythm(s.band, s.pos, s.prev_len)
        beats = m.lengths[min(bisect.bisect_left(cum, r()), len(cum) - 1)]
        self._append(self._end, Chord.of(s.tonic + degree, quality, (s.tonic, s.minor)), phrase=s.prev_len == 0)   # a new phrase: struck anew
        self._end += beats * s.beat_s
        s.ctx, s.prev_len, s.pos = (s.ctx[1], f), beats, (s.pos + beats) % m.bar_beats
        if self._starts[0] < self._asked - HISTORY_S and len(self._starts) > 64:
            k = bisect.bisect_left(self._starts, self._asked - HISTORY_S)
            del self._starts[:k - 1], self._chords[:k - 1]
