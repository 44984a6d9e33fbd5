"""Musical quality beside emotion: do generated pieces look like real ones, feature by feature?

For each feature, the overlapping area (OA, 0..1) of the generated pieces'
distribution and held-out real music's (EMOPIA test windows), after Yang & Lerch
(2018). The same OA between EMOPIA's test and train windows is given as the
real-vs-real reference: two samples of real music do not overlap perfectly
either, so a generated OA is read against it.
"""
from __future__ import annotations

import numpy as np

from installation.evaluation import metrics as MET
from installation.measures import music_features as MF
from installation.measures.music_features import column
from installation.music.analysis import PITCH_NAMES

# (label, how to get values from (features X, raws), fixed edges or number of shared bins)
SCALARS = (
    ("note density (notes/s)", "note_density"),
    ("polyphony (mean sounding notes)", "polyphony_mean"),
    ("mean velocity per piece", "velocity_mean"),
    ("velocity spread per piece (std)", "velocity_std"),
    ("log mean IOI per piece", "log_ioi_mean"),
    ("register (mean pitch)", "pitch_mean"),
    ("pitch range (p5-p95)", "pitch_range"),
    ("log note duration", "log_dur_mean"),
)
VELOCITY_EDGES = np.arange(0.5, 128.5, 4.0)                  # the 32 velocity bins
LOG_IOI_EDGES = np.linspace(np.log(0.01), np.log(4.0), 31)   # 10 ms .. 4 s


def _pooled(raws: list[MF.Raw], attr: str) -> np.ndarray:
    vals = [getattr(r, attr) for r in raws if len(getattr(r, attr))]
    return np.concatenate(vals) if vals else np.zeros(0)


def _pch(raws: list[MF.Raw], X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    absolute = np.mean([r.pch for r in raws], axis=0)
    relative = X[:, :12].mean(0)                               # rotated to each piece's estimated tonic
    return absolute, relative


def compare(gen_X: np.ndarray, gen_raw: list[MF.Raw], real_X: np.ndarray, real_raw: list[MF.Raw],
            ref_X: np.ndarray | None = None, ref_raw: list[MF.Raw] | None = None, bins: int = 20) -> list[dict]:
    """Rows of {feature, generated mean, real mean, OA generated-vs-real, OA real-vs-real reference}."""
    rows = []

    def add(name, g, r, f, gm, rm, ref=None):
        rows.append({"feature": name, "generated": gm, "real": rm, "overlap": f(g, r),
                     "reference_overlap": f(ref, r) if ref is not None else float("nan")})

    ga, gr = _pch(gen_raw, gen_X)
    ra, rr = _pch(real_raw, real_X)
    fa, fr = (_pch(ref_raw, ref_X) if ref_X is not None else (None, None))
    add("pitch-class histogram (absolute)", ga, ra, MET.histogram_overlap, _top(ga), _top(ra), fa)
    add("pitch-class histogram (key-relative)", gr, rr, MET.histogram_overlap, f"{gr[0]:.3f} on tonic", f"{rr[0]:.3f} on tonic", fr)
    for label, name in SCALARS:
        c = MF.column(name)
        g, r = gen_X[:, c], real_X[:, c]
        ref = ref_X[:, c] if ref_X is not None else None
        edges = MET.common_bins(g, r, bins, 0.01, 0.99)
        add(label, g, r, lambda a, b, e=edges: MET.overlap_area(a, b, e), float(np.mean(g)), float(np.mean(r)), ref)
    for label, attr, edges, tf in (("velocity per note", "velocities", VELOCITY_EDGES, lambda v: v),
                                    ("log IOI per onset", "iois", LOG_IOI_EDGES, np.log)):
        g, r = tf(_pooled(gen_raw, attr)), tf(_pooled(real_raw, attr))
        ref = tf(_pooled(ref_raw, attr)) if ref_raw is not None else None
        add(label, g, r, lambda a, b, e=edges: MET.overlap_area(a, b, e), float(np.mean(g)) if len(g) else float("nan"),
            float(np.mean(r)), ref)
    return rows


def _top(pch: np.ndarray) -> str:
    order = np.argsort(-pch)[:3]
    return " ".join(f"{PITCH_NAMES[i]}" for i in order)


PER_QUADRANT = (("note density", "note_density"), ("mean velocity", "velocity_mean"),
                ("register", "pitch_mean"), ("major-minor r", "key_mode"), ("polyphony", "polyphony_mean"))


def per_quadrant(X: np.ndarray, quadrant: np.ndarray) -> dict[str, dict[str, float]]:
    """Means of a few telling features per quadrant (quadrant -1 rows are ignored)."""
    out = {}
    for q in range(4):
        m = quadrant == q
        out[f"Q{q + 1}"] = {"n": int(m.sum()), **{label: float(np.mean(X[m, MF.column(name)])) if m.any() else float("nan")
                                                   for label, name in PER_QUADRANT}}
    return out


GAP_FEATURES = (("mean velocity", "velocity_mean"), ("note density", "note_density"),
                ("major-minor r", "key_mode"), ("register", "pitch_mean"))


def gaps(X: np.ndarray, positive: np.ndarray, groups: np.ndarray | None = None, *, resamples: int = 1000,
         seed: int = 0) -> dict[str, list[float]]:
    """Mean feature of the ``positive`` rows minus the others, with a 95% bootstrap interval.

    ``groups`` (e.g. the image of each generated piece) are resampled whole; rows with NaN are skipped.
    Used for valence (positive vs negative) and arousal (high vs low) gaps, generated vs real.
    """
    X, positive = np.asarray(X, float), np.asarray(positive, bool)
    groups = np.arange(len(X)) if groups is None else np.asarray(groups)
    ug, inv = np.unique(groups, return_inverse=True)
    out = {}
    for label, name in GAP_FEATURES:
        v = X[:, column(name)]
        ok = np.isfinite(v)
        s = np.bincount(inv[ok], v[ok], len(ug))
        c = np.bincount(inv[ok], minlength=len(ug))
        gmean = np.where(c > 0, s / np.maximum(c, 1), np.nan)
        gpos = np.zeros(len(ug), bool)
        gpos[inv] = positive

        def stat(idx, gmean=gmean, gpos=gpos):
            a, b = gmean[idx][gpos[idx]], gmean[idx][~gpos[idx]]
            a, b = a[np.isfinite(a)], b[np.isfinite(b)]
            return float(a.mean() - b.mean()) if len(a) and len(b) else float("nan")
        est, lo, hi = MET.bootstrap_ci(stat, len(ug), resamples=resamples, seed=seed)
        out[label] = [est, lo, hi]
    return out
