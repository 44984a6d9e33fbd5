"""The report's figures (matplotlib, Agg backend: no display needed)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from installation.evaluation import quality as QUAL
from installation.image.preprocess import load_rgb
from installation.measures import music_features as MF
from installation.music import events as E
from installation.music.analysis import PITCH_NAMES

QLABELS = ("Q1 happy", "Q2 tense", "Q3 sad", "Q4 calm")
QCOLORS = ("#e6a817", "#c8323c", "#3b6fb6", "#3f9a5a")


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path: Path, dpi: int, title: str | None = None) -> None:
    """Write a finished figure (with its title over all panels, if given) and free it."""
    if title is not None:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    _plt().close(fig)


def confusion(counts: np.ndarray, path: Path) -> None:
    """Rows: the image's quadrant (Emotion6); columns: the music classifier's quadrant (+ 'none')."""
    plt = _plt()
    counts = np.asarray(counts)
    cols = QLABELS + (("none",) if counts.shape[1] == 5 and counts[:, 4].any() else ())
    counts = counts[:, :len(cols)]
    share = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(5.6 + 0.6 * (len(cols) - 4), 4.8))
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(share.shape[0]):
        for j in range(share.shape[1]):
            ax.text(j, i, f"{share[i, j]:.0%}\n({counts[i, j]})", ha="center", va="center", fontsize=9,
                    color="white" if share[i, j] > 0.55 else "black")
    ax.set_xticks(range(len(cols)), cols)
    ax.set_yticks(range(4), QLABELS)
    ax.set_xlabel("music classifier's quadrant (generated piece)")
    ax.set_ylabel("image's quadrant (Emotion6 ground truth)")
    diag = np.trace(counts[:, :4]) / max(counts.sum(), 1)
    ax.set_title(f"Quadrant agreement {diag:.1%} (row shares, piece counts)", fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    _save(fig, path, 130)


def valence_scatter(img_valence: np.ndarray, p_valence: np.ndarray, img_q: np.ndarray, rc: dict, path: Path) -> None:
    """Image valence (x) against the music's P(positive valence) (y): pieces faint, image means solid."""
    plt = _plt()
    n, K = p_valence.shape
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    rng = np.random.default_rng(0)
    for q in range(4):
        m = img_q == q
        if not m.any():
            continue
        jitter = rng.uniform(-0.04, 0.04, (m.sum(), K))
        ax.scatter((img_valence[m, None] + jitter).ravel(), p_valence[m].ravel(), s=6, alpha=0.18, color=QCOLORS[q])
        ax.scatter(img_valence[m], p_valence[m].mean(1), s=18, alpha=0.9, color=QCOLORS[q], label=QLABELS[q],
                   edgecolors="white", linewidths=0.4)
    ax.axvline(5.0, color="grey", lw=0.8, ls="--")
    ax.axhline(0.5, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("image valence (Emotion6 ground truth, 1-9)")
    ax.set_ylabel("music valence: classifier P(positive)")
    ax.set_ylim(-0.02, 1.02)
    lo, hi = rc["ci95"]
    ax.set_title(f"Spearman rho = {rc['value']:.2f} [95% CI {lo:.2f}, {hi:.2f}]; shuffled {rc['shuffled']:.2f}  "
                 f"(dots: image means of {K} pieces)", fontsize=9)
    ax.legend(fontsize=8, loc="upper left", title="image quadrant", title_fontsize=8)
    _save(fig, path, 130)


def quality(gen_X, gen_raw, real_X, real_raw, path: Path, rows: list[dict] | None = None) -> None:
    """Distributions of a few features: generated pieces against EMOPIA test windows."""
    plt = _plt()
    oa = {r["feature"]: r["overlap"] for r in rows or []}
    panels = [("note density (notes/s)", gen_X[:, MF.column("note_density")], real_X[:, MF.column("note_density")]),
              ("polyphony", gen_X[:, MF.column("polyphony_mean")], real_X[:, MF.column("polyphony_mean")]),
              ("velocity per note", QUAL._pooled(gen_raw, "velocities"), QUAL._pooled(real_raw, "velocities")),
              ("log10 IOI per onset (s)", np.log10(QUAL._pooled(gen_raw, "iois")), np.log10(QUAL._pooled(real_raw, "iois"))),
              ("register (mean pitch)", gen_X[:, MF.column("pitch_mean")], real_X[:, MF.column("pitch_mean")])]
    fig, axes = plt.subplots(2, 3, figsize=(11, 6.2))
    keys = ("note density (notes/s)", "polyphony (mean sounding notes)", "velocity per note", "log IOI per onset",
            "register (mean pitch)")
    for ax, (title, g, r), key in zip(axes.ravel(), panels, keys):
        if key == "velocity per note":                   # the 32 velocity bins: finer bins would alias
            bins = QUAL.VELOCITY_EDGES
            lo, hi = bins[0], bins[-1]
        else:
            lo, hi = np.quantile(np.concatenate([g, r]), [0.005, 0.995])
            bins = np.linspace(lo, hi, 31)
        ax.hist(np.clip(r, lo, hi), bins, density=True, alpha=0.5, color="#555555", label="real (EMOPIA test)")
        ax.hist(np.clip(g, lo, hi), bins, density=True, alpha=0.5, color="#d0731d", label="generated")
        ax.set_title(title + (f"  (OA {oa[key]:.2f})" if key in oa else ""), fontsize=10)
        ax.set_yticks([])
    ax = axes.ravel()[-1]
    g, r = QUAL._pch(gen_raw, gen_X)[0], QUAL._pch(real_raw, real_X)[0]
    x = np.arange(12)
    ax.bar(x - 0.2, r, 0.4, color="#555555", alpha=0.7, label="real (EMOPIA test)")
    ax.bar(x + 0.2, g, 0.4, color="#d0731d", alpha=0.7, label="generated")
    ax.set_xticks(x, PITCH_NAMES, fontsize=7)
    key = "pitch-class histogram (absolute)"
    ax.set_title("pitch-class histogram" + (f"  (OA {oa[key]:.2f})" if key in oa else ""), fontsize=10)
    axes.ravel()[0].legend(fontsize=8)
    _save(fig, path, 110)


def piano_roll(ax, notes, seconds: float, color: str) -> None:
    """Notes as horizontal bars (time x pitch), alpha by velocity."""
    for n in notes:
        if n.start >= seconds:
            continue
        ax.add_patch(_rect(n.start, n.pitch - 0.45, min(n.end, seconds) - n.start, 0.9, color, 0.25 + 0.75 * n.velocity / 127))
    ax.set_xlim(0, seconds)
    pitches = [n.pitch for n in notes] or [60]
    ax.set_ylim(min(pitches) - 2, max(pitches) + 2)
    ax.set_yticks([])
    ax.tick_params(labelsize=7)


def listening_rolls(rows, path: Path, seconds: float, title: str) -> None:
    """One piano roll per row, with the sustain pedal shaded under it and the chord asked at each change written
    above. ``rows``: (caption, keys (notes as held), pedal intervals, [(start s, chord name)], colour)."""
    plt = _plt()
    fig, axes = plt.subplots(len(rows), 1, figsize=(12, 2.3 * len(rows)), squeeze=False)
    for ax, (caption, keys, pedal, chords, color) in zip(axes[:, 0], rows):
        pitches = [n.pitch for n in keys] or [60]
        lo, hi = min(pitches) - 4, max(pitches) + 6
        for a, b in pedal:                                  # the pedal: a band at the bottom
            ax.add_patch(_rect(a, lo, min(b, seconds) - a, 2.2, "#777777", 0.45))
        for t, name in chords:
            if t < seconds:
                ax.axvline(t, color="#999999", lw=0.6, ls=":")
                ax.text(t + 0.05, hi - 1.5, name, fontsize=7, va="top")
        piano_roll(ax, keys, seconds, color)
        ax.set_ylim(lo, hi)
        ax.set_title(caption, fontsize=8, loc="left")
    axes[-1, 0].set_xlabel("seconds (bars: keys as held; grey band: sustain pedal down; dotted: the chord asked)")
    _save(fig, path, 90, title)


def _rect(x, y, w, h, color, alpha):
    from matplotlib.patches import Rectangle
    return Rectangle((x, y), w, h, facecolor=color, edgecolor="none", alpha=alpha)


def picture_rows(rows, path: Path, seconds: float, title: str) -> None:
    """One row per picture: the image, then the piano roll of its music and what was asked.
    ``rows``: (RGB image, notes, caption, colour)."""
    plt = _plt()
    fig, axes = plt.subplots(len(rows), 2, figsize=(11, 1.9 * len(rows)), gridspec_kw={"width_ratios": [1, 4]},
                             squeeze=False)
    for (img, notes, caption, color), (a0, a1) in zip(rows, axes):
        a0.imshow(img)
        a0.axis("off")
        piano_roll(a1, notes, seconds, color)
        a1.set_title(caption, fontsize=8, loc="left")
    axes[-1, 1].set_xlabel("seconds")
    _save(fig, path, 90, title)


def pictures_for_people(data: Path, held, held_va, seqs, K: int, seconds: float, out: Path, per_quadrant: int = 3,
                        asked: list[str] | None = None) -> list[Path]:
    """For each quadrant, a few held-out images beside the piano rolls of their first piece
    (written to the report folder only: Emotion6 images may not be redistributed)."""
    paths = []
    for q in range(4):
        idx = np.flatnonzero(held.quadrant == q)[:per_quadrant]
        rows = []
        for i in idx:
            img = load_rgb(Path(data) / held.rel[i])
            v, a = held_va[i]
            rows.append((img, E.events_to_notes(seqs[i * K]),
                         f"{held.rel[i].split('/')[-2]}/{held.rel[i].split('/')[-1]}: rated V {held.valence[i]:.1f} "
                         f"A {held.arousal[i]:.1f}; read valence {v:+.2f}, arousal {a:+.2f}"
                         + (f" -> asked {asked[i]}" if asked else ""), QCOLORS[q]))
        if rows:
            p = out / f"pictures_Q{q + 1}.png"
            picture_rows(rows, p, seconds, f"{QLABELS[q]}: held-out images and the music made for them")
            paths.append(p)
    return paths
