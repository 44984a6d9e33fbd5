"""Does the decoder play what it is asked? Adherence to each musical control, measured on its own music.

One control group is set at a time (the others unset), pieces are generated
through the shipped ONNX files, and each piece is measured as a listener's
tools would: the key by Krumhansl-Schmuckler on the sounding notes
(analysis.estimate_key), the density as note-ons per second, the loudness as the
mean velocity.

    mode      asked major or minor (tonics spread over all 12): estimate has that mode   aim >= 90% of pieces
    tonic     the same pieces: estimate has the asked tonic                               aim >= 70%
    density   asked 3, 6, 10, 15 notes/s: the median piece within 25% of the target       aim: every target
    loudness  asked velocity 45, 60, 75, 90: the median piece within 8 velocity steps      aim: every target
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from installation.music import analysis
from installation.mood import controls as C
from installation.music import events as E
from installation.music.render import RenderSettings, generate

DENSITIES = (3.0, 6.0, 10.0, 15.0)
VELOCITIES = (45.0, 60.0, 75.0, 90.0)


def _pieces(decoder, targets: list[C.Targets], templates, settings: RenderSettings, tag: str):
    ctrl = np.stack([C.encode(t, templates) for t in targets])
    seqs = generate(decoder, ctrl, [f"{tag}#{i}" for i in range(len(targets))], settings)
    return [E.events_to_notes(s) for s in seqs]


def _clip(notes, seconds):
    return [n for n in notes if n.start < seconds]


def measure_key(decoder, templates, settings: RenderSettings, n: int = 48) -> dict:
    """Mode and tonic adherence: n pieces per mode, tonics spread over the 12."""
    s = settings
    out = {}
    keys = [C.Key(i % 12, minor) for minor in (False, True) for i in range(n)]
    notes = _pieces(decoder, [C.Targets(key=k) for k in keys], templates, replace(s, seed=s.seed + 101), "key")
    est = [analysis.estimate_key(_clip(x, s.seconds)) for x in notes]
    mode_ok = np.array([(m == "minor") == k.minor for (_, m, _), k in zip(est, keys)])
    tonic_ok = np.array([t == k.tonic for (t, _, _), k in zip(est, keys)])
    both_ok = mode_ok & tonic_ok
    minor = np.array([k.minor for k in keys])
    out["mode"] = {"share_with_asked_mode": float(mode_ok.mean()), "asked_major": float(mode_ok[~minor].mean()),
                   "asked_minor": float(mode_ok[minor].mean()), "pieces": len(keys), "aim": 0.9}
    out["tonic"] = {"share_with_asked_tonic": float(tonic_ok.mean()), "share_with_asked_key": float(both_ok.mean()),
                    "pieces": len(keys), "aim": 0.7}
    return out


def measure(decoder, templates, settings: RenderSettings, n: int = 48) -> dict:
    """Adherence figures; ``n`` pieces per mode and n/2 per density or loudness target."""
    s = settings
    out: dict = {"pieces_seconds": s.seconds, "seed": s.seed, "guidance": getattr(decoder, "weight", 0.0)}
    out.update(measure_key(decoder, templates, settings, n))

    # density and loudness: n/2 pieces per target
    m = max(2, n // 2)
    dens = {}
    tg = [C.Targets(density=d) for d in DENSITIES for _ in range(m)]
    notes = _pieces(decoder, tg, templates, replace(s, seed=s.seed + 202), "density")
    for j, d in enumerate(DENSITIES):
        got = np.array([len(_clip(x, s.seconds)) / s.seconds for x in notes[j * m:(j + 1) * m]])
        med = float(np.median(got))
        dens[f"{d:g}"] = {"median": round(med, 2), "relative_error": round(abs(med / d - 1), 3),
                          "within_25pct": bool(abs(med / d - 1) <= 0.25)}
    out["density"] = {"targets": dens, "pieces_per_target": m, "aim": 0.25,
                      "all_within": all(v["within_25pct"] for v in dens.values())}

    loud = {}
    tg = [C.Targets(velocity=v) for v in VELOCITIES for _ in range(m)]
    notes = _pieces(decoder, tg, templates, replace(s, seed=s.seed + 303), "loudness")
    for j, v in enumerate(VELOCITIES):
        got = np.array([np.mean([x.velocity for x in _clip(p, s.seconds)]) if _clip(p, s.seconds) else np.nan
                        for p in notes[j * m:(j + 1) * m]])
        med = float(np.nanmedian(got))
        loud[f"{v:g}"] = {"median": round(med, 1), "error": round(abs(med - v), 1), "within_8": bool(abs(med - v) <= 8)}
    out["loudness"] = {"targets": loud, "pieces_per_target": m, "aim": 8,
                       "all_within": all(v["within_8"] for v in loud.values())}
    return out
