"""Fit the emotion map's numbers on the labelled music: what each quadrant's music does.

For every labelled training piece (EMOPIA train, VGMIDI labelled) many windows are
measured with the same code that measures the decoder's controls
(installation/mood/controls.py), and each quadrant's corner gets the windows' mean
density (averaged in the control's log code), velocity, pitch and share of major.
The result is written as the TOML data file emotion_map.toml beside the models.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from installation.mood import controls as C
from installation.mood.emotion_map import CORNERS, EmotionMap
from installation.training.data import MusicCorpus, WindowSampler

HEADER = """\
# The emotion map: valence/arousal -> what the music is asked to play (installation/mood/emotion_map.py).
# Fitted on the labelled training music by `python -m installation.training export`
# ({windows} windows of {seq_len} events: EMOPIA train and VGMIDI labelled). Each corner is the mean
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


def to_toml(emap: EmotionMap, windows: int, seq_len: int) -> str:
    d = emap.to_dict()
    lines = [HEADER.format(windows=windows, seq_len=seq_len), f"contrast = {d['contrast']}", f"variety = {d['variety']}",
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
    path.write_text(to_toml(emap, n, seq_len))
    return emap
