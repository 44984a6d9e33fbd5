"""Fit the emotion map's numbers on the labelled music: what each quadrant's music does.

Every EMOPIA training clip (performed piano with its sustain pedal; VGMIDI's game-music
arrangements, flat in velocity, are left out of this fit) is cut into time windows
of the length a scene plays (``SCENE_S``, 30 s, the evaluation's piece; hop 10 s), and
each quadrant's corner gets the windows' mean density (averaged in the control's log
code), velocity, pitch and share of major, and their spreads. Time windows, not
windows of a fixed number of events: a fixed-event window over-samples dense passages
(a dense passage packs more such windows into each second), so the old fit on 192-event
windows asked 10-11 notes/s of the aroused quadrants where their real 30 s pieces play
8-9. The result is written as the TOML data file emotion_map.toml beside the
models (``python -m installation.training emotion-map``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from installation.measures.music_features import windows
from installation.mood import controls as C
from installation.mood.emotion_map import CORNERS, EmotionMap
from installation.music import analysis, events as E
from installation.training import data as D
from installation.training.data import MusicCorpus, WindowSampler

HEADER = """\
# The emotion map: valence/arousal -> what the music is asked to play (installation/mood/emotion_map.py).
# Fitted on the labelled training music by `python -m installation.training emotion-map`
# ({windows} {what}). Each corner is the mean
# of that quadrant's music; between corners every value is interpolated bilinearly, so the map is
# continuous. A patch can override any key here in its [emotion_map] table.
#
#   density      note-ons per second        velocity   mean MIDI velocity
#   pitch        mean MIDI pitch            major_share share of windows in a major key (reported; the
#                                                       mode itself follows [mode]: major when valence >= threshold)
#   *_spread     how much that quadrant's pieces vary (SD over windows of about 30 s: density in log2(1 + notes/s),
#                velocity, pitch); each scene draws its targets around the value with this spread times `variety`
#   contrast     1 = the data's contrast; 1.5 = every control 50% further from the centre of the square
#   variety      1 = pieces vary as much as the real music of their quadrant; 0 = every piece asks the mean
#   key_change   on a change of mode: "parallel" (C major -> C minor) or "relative" (C major -> A minor)
"""


VARIETY = 0.5            # the shipped share of each quadrant's spread (see fit)
SPREAD_EVENTS = 768      # spreads are measured on windows of about a 30 s piece (768 events), not the 192 of a control


def _measure(corpus: MusicCorpus, seq_len: int, windows: int, seed: int):
    rows = corpus.select(split="train", labelled=True, stretch=1.0)
    sampler = WindowSampler(corpus, rows, seq_len, transpose=0)
    rng = np.random.default_rng(seed)
    parts = [sampler.sample(rng, 512) for _ in range(max(1, windows // 512))]
    return np.concatenate([p[2] for p in parts]), np.concatenate([p[3] for p in parts]).astype(np.float64)


def fit(corpus: MusicCorpus, seq_len: int = 192, windows: int = 8192, seed: int = 5) -> EmotionMap:
    q, c = _measure(corpus, seq_len, windows, seed)
    lq, lc = _measure(corpus, SPREAD_EVENTS, windows // 2, seed + 1)
    corners = {}
    for k, name in enumerate(CORNERS):
        m = q == k
        dens = m & (c[:, C.FLAGS + 1] == 0)
        loud = m & (c[:, C.FLAGS + 2] == 0)
        reg = m & (c[:, C.FLAGS + 3] == 0)
        key = m & (c[:, C.FLAGS + 0] == 0)
        corners[name] = {
            "density": round(C.density_value(c[dens, C.DENSITY].mean()), 2) if dens.any() else 4.0,
            "velocity": round(float(c[loud, C.LOUDNESS].mean() * 32 + 64), 1) if loud.any() else 64.0,
            "pitch": round(float(c[reg, C.REGISTER].mean() * 12 + 64), 1) if reg.any() else 64.0,
            "major_share": round(float(c[key, C.KEY + 12].mean()), 3) if key.any() else 0.5,
        }
        lm = lq == k
        for name_, col, flag, scale in (("density_spread", C.DENSITY, 1, 4.0), ("velocity_spread", C.LOUDNESS, 2, 32.0),
                                        ("pitch_spread", C.REGISTER, 3, 12.0)):
            ok = lm & (lc[:, C.FLAGS + flag] == 0)
            corners[name][name_] = round(float(lc[ok, col].std() * scale), 3) if ok.sum() > 1 else 0.0
    # variety 0.5: half the real spread, a compromise between pieces as varied as real music (1) and the
    # clearest emotion (0: every piece asks its quadrant's mean); EVALUATION.md measures all three
    return EmotionMap.from_dict({"corners": corners, "mode": {}, "contrast": 1.0, "variety": VARIETY},
                                "fitted emotion map"), len(q)


SCENE_S = 30.0           # the time window: the length a scene plays (and the evaluation's piece)
HOP_S = 10.0


def time_windows(root: Path, seconds: float = SCENE_S, hop: float = HOP_S, sources: tuple[str, ...] = ("emopia",),
                 limit: int | None = None):
    """(quadrant, density notes/s, mean velocity, mean pitch, major 0/1) of every time window of the labelled
    training music (``limit``: at most that many pieces a quadrant, a quick check); windows with fewer than 8
    notes are left out, unreadable files skipped."""
    rows, taken = [], {}
    for p in D.list_music(Path(root)):
        if p.quadrant < 0 or p.split != "train" or p.source not in sources:
            continue
        if limit is not None:
            if taken.get(p.quadrant, 0) >= limit:
                continue
            taken[p.quadrant] = taken.get(p.quadrant, 0) + 1
        try:
            notes = E.load_notes(Path(root) / p.rel)
        except E.MidiFileError:
            continue
        for w, secs in windows(notes, seconds, hop, max_windows=1000):
            if len(w) < 8:
                continue
            _, mode, _ = analysis.estimate_key(w)
            rows.append((p.quadrant, len(w) / secs, np.mean([n.velocity for n in w]), np.mean([n.pitch for n in w]),
                         float(mode == "major")))
    return np.array(rows, np.float64)


def fit_time_windows(root: Path, seconds: float = SCENE_S, limit: int | None = None) -> tuple[EmotionMap, int]:
    """The emotion map from time windows (see the module's docstring)."""
    w = time_windows(root, seconds, limit=limit)
    corners = {}
    for k, name in enumerate(CORNERS):
        m = w[w[:, 0] == k]
        code = C.density_code(m[:, 1])
        corners[name] = {"density": round(C.density_value(code.mean()), 2), "velocity": round(float(m[:, 2].mean()), 1),
                         "pitch": round(float(m[:, 3].mean()), 1), "major_share": round(float(m[:, 4].mean()), 3),
                         "density_spread": round(float((code * 4).std()), 3),
                         "velocity_spread": round(float(m[:, 2].std()), 3),
                         "pitch_spread": round(float(m[:, 3].std()), 3)}
    return EmotionMap.from_dict({"corners": corners, "mode": {}, "contrast": 1.0, "variety": VARIETY},
                                "fitted emotion map"), len(w)


def write_time_windows(root: Path, path: Path, seconds: float = SCENE_S, limit: int | None = None) -> EmotionMap:
    emap, n = fit_time_windows(root, seconds, limit)
    path.write_text(to_toml(emap, n, what=f"time windows of {seconds:.0f} s, hop {HOP_S:.0f} s, of EMOPIA train"))
    return emap


def to_toml(emap: EmotionMap, windows: int, seq_len: int | None = None, what: str | None = None) -> str:
    d = emap.to_dict()
    lines = [HEADER.format(windows=windows, what=what or f"windows of {seq_len} events"), f"contrast = {d['contrast']}", f"variety = {d['variety']}",
             "", "[mode]",
             f"threshold = {d['mode']['threshold']}", f"hysteresis = {d['mode']['hysteresis']}",
             f'key_change = "{d["mode"]["key_change"]}"', ""]
    notes = {"Q1": "happy / excited (valence +1, arousal +1)", "Q2": "tense / angry (valence -1, arousal +1)",
             "Q3": "sad / depressed (valence -1, arousal -1)", "Q4": "calm / content (valence +1, arousal -1)"}
    for q, c in d["corners"].items():
        lines += [f"[corners.{q}]   # {notes[q]}"] + [f"{k} = {v}" for k, v in c.items()] + [""]
    return "\n".join(lines)


def write(corpus: MusicCorpus, path: Path, seq_len: int = 192) -> EmotionMap:
    emap, n = fit(corpus, seq_len)
    path.write_text(to_toml(emap, n, what=f"windows of {seq_len} events of EMOPIA train and VGMIDI labelled"))
    return emap
