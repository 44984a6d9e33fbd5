"""Real labelled music as feature windows, and the held-out images with their embeddings.

Music: EMOPIA (official clip splits; quadrant from the file-name prefix) and the
VGMIDI labelled phrases (valence/arousal +-1), listed by ``training.data.list_music``.
Each file is read with the sustain pedal, encoded to events and decoded back
(``notes_to_events`` -> ``events_to_notes``), exactly as generated music is decoded,
then cut into 30 s windows. When the training's event cache (.cache/prep/music.npz)
is present its events are reused; otherwise the MIDI files are parsed (unreadable
files are skipped by name).

Images: Emotion6 held-out images (sha1 rule in ``training.data``) that have a quadrant.
Embeddings come from the training feature cache when it was made by the same
encoder file as the models under test (view 0 = the runtime's centre crop);
otherwise they are computed here with the shipped encoder.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from installation.image.preprocess import load_rgb, training_views
from installation.measures import music_features as MF
from installation.music import events as E
from installation.training import data as D

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
EVENT_CACHE = REPO / ".cache" / "prep" / "music.npz"
FEATURE_CACHE = REPO / ".cache" / "prep" / "features_efficientnet_lite0.npz"


@dataclass
class MusicWindows:
    """One row per 30 s window of a labelled real piece."""
    X: np.ndarray                 # (n, F) features
    quadrant: np.ndarray          # (n,) 0..3
    piece: np.ndarray             # (n,) piece number (windows of one piece share it)
    rel: list[str]                # per piece
    source: list[str]             # per piece
    split: list[str]              # per piece
    raw: list[MF.Raw]             # per window
    skipped: list[str] = field(default_factory=list)

    @property
    def valence(self) -> np.ndarray:
        return (self.quadrant == 0) | (self.quadrant == 3)

    @property
    def arousal(self) -> np.ndarray:
        return self.quadrant <= 1

    def rows(self, *, source: str | None = None, split: str | None = None) -> np.ndarray:
        keep = np.array([(source is None or self.source[p] == source) and (split is None or self.split[p] == split)
                         for p in self.piece], bool)
        return np.flatnonzero(keep)

    def subset(self, rows: np.ndarray) -> "MusicWindows":
        return MusicWindows(self.X[rows], self.quadrant[rows], self.piece[rows], self.rel, self.source, self.split,
                            [self.raw[i] for i in rows], self.skipped)


def _cached_events(pieces: list[D.Piece], cache: Path | None) -> dict[str, np.ndarray]:
    if cache is None or not Path(cache).is_file():
        return {}
    try:
        c = D.load_corpus(Path(cache))
    except Exception as exc:                       # a stale or partial cache is not fatal
        log.warning("event cache %s unreadable (%s); parsing MIDI instead", cache, exc)
        return {}
    s1 = D.STRETCHES.index(1.0)
    want = {p.rel for p in pieces}
    out = {}
    for start, n, pi, si in c.index:
        rel = c.pieces[pi].rel
        if si == s1 and rel in want:
            out[rel] = c.tokens[start:start + n]
    return out


def load_music(root: Path, *, sources=("emopia", "vgmidi_labelled"), event_cache: Path | None = EVENT_CACHE,
               limit_per_split: int | None = None) -> MusicWindows:
    """Feature windows of every labelled piece of ``sources`` (all splits)."""
    pieces = [p for p in D.list_music(Path(root)) if p.source in sources and p.quadrant >= 0]
    if limit_per_split is not None:                # a quick slice: every k-th piece of each (source, split)
        groups: dict[tuple, list] = {}
        for p in pieces:
            groups.setdefault((p.source, p.split), []).append(p)
        pieces = [p for g in groups.values() for p in g[:: max(1, len(g) // limit_per_split)][:limit_per_split]]
    cached = _cached_events(pieces, event_cache)
    X, quad, pid, raw, rels, srcs, splits, skipped = [], [], [], [], [], [], [], []
    for p in pieces:
        ev = cached.get(p.rel)
        if ev is None:
            try:
                ev = E.notes_to_events(E.load_notes(Path(root) / p.rel))
            except E.MidiFileError as exc:
                log.warning("skipped %s", exc)
                skipped.append(p.rel)
                continue
        notes = E.events_to_notes(ev)
        k = len(rels)
        got = 0
        for wnotes, secs in MF.windows(notes):
            d = MF.describe(wnotes, secs)
            if d is None:
                continue
            X.append(d[0])
            raw.append(d[1])
            quad.append(p.quadrant)
            pid.append(k)
            got += 1
        if got == 0:
            skipped.append(p.rel)
            continue
        rels.append(p.rel)
        srcs.append(p.source)
        splits.append(p.split)
    return MusicWindows(np.array(X), np.array(quad, np.int64), np.array(pid, np.int64), rels, srcs, splits, raw, skipped)


# --- images --------------------------------------------------------------------------

@dataclass
class HeldOutImages:
    rel: list[str]
    valence: np.ndarray           # Emotion6 ground truth, 1..9
    arousal: np.ndarray
    quadrant: np.ndarray          # 0..3
    arousal_split: float
    embedding: np.ndarray         # (n, D) centre-crop embeddings (what the runtime uses)

    @property
    def valence_positive(self) -> np.ndarray:
        return self.valence > 5.0

    @property
    def arousal_high(self) -> np.ndarray:
        return self.arousal > self.arousal_split


EVAL_CACHE = REPO / ".cache" / "evaluation"


def cached_features(images: D.ImageSet, encoder_sha256: str | None, cache: Path | None) -> np.ndarray | None:
    """A feature cache (n, 6, D) if it holds exactly these images for this encoder, else None."""
    if cache is None or not Path(cache).is_file():
        return None
    try:
        z = np.load(cache, allow_pickle=True)
        if list(z["rel"]) != list(images.rel):
            return None
        if encoder_sha256 is not None and str(z["encoder_sha256"]) != encoder_sha256:
            log.info("feature cache %s was made by another encoder; not used", cache)
            return None
        return z["features"]
    except Exception as exc:
        log.warning("feature cache %s unreadable (%s)", cache, exc)
        return None


def image_features(root: Path, images: D.ImageSet, encoder, encoder_sha256: str,
                   caches: tuple[Path | None, ...] = (FEATURE_CACHE,), eval_cache: Path | None = EVAL_CACHE,
                   batch: int = 4) -> tuple[np.ndarray, str]:
    """Every Emotion6 image in the training's 6 views (view 0 = the runtime's centre crop), (n, 6, D).

    Taken from the first cache made by this encoder for these images (the training's
    .cache/prep, then the evaluation's own); otherwise computed here with the shipped
    encoder and ``preprocess.training_views`` (what training does) and saved to
    ``eval_cache``, so a clean clone and a cached run describe the images identically.
    """
    own = Path(eval_cache) / f"image_features_{encoder_sha256[:16]}.npz" if eval_cache is not None else None
    for c in (*caches, own):
        f = cached_features(images, encoder_sha256, c)
        if f is not None:
            return f, str(c)
    log.info("embedding %d images x 6 views with the shipped encoder (a few minutes, once)", len(images.rel))
    out = []
    for i in range(0, len(images.rel), batch):
        views = []
        for rel in images.rel[i:i + batch]:
            views += training_views(load_rgb(Path(root) / rel))
        f = encoder.session.run(None, {encoder.input: np.stack(views)})[0]
        out.append(f.reshape(-1, 6, f.shape[-1]))
    feats = np.concatenate(out).astype(np.float32)
    if own is not None:
        own.parent.mkdir(parents=True, exist_ok=True)
        np.savez(own, features=feats, rel=np.array(images.rel, dtype=object), encoder_sha256=encoder_sha256)
    return feats, "computed with the shipped encoder"


def held_out_images(images: D.ImageSet, feats: np.ndarray, limit: int | None = None) -> HeldOutImages:
    """Held-out Emotion6 images with a quadrant (at most ``limit``, spread over the list), centre-crop embeddings."""
    idx = np.flatnonzero(images.test & (images.quadrant >= 0))
    if limit is not None:
        idx = np.unique(idx[np.linspace(0, len(idx) - 1, min(limit, len(idx))).round().astype(int)])
    return HeldOutImages([images.rel[i] for i in idx], images.valence[idx], images.arousal[idx],
                         images.quadrant[idx], images.arousal_split, np.asarray(feats[idx, 0], np.float32))


def training_images(images: D.ImageSet, feats: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(embeddings, quadrants, image number) of every view of every training image with a quadrant."""
    idx = np.flatnonzero(~images.test & (images.quadrant >= 0))
    f = feats[idx]
    return (f.reshape(-1, f.shape[-1]), np.repeat(images.quadrant[idx], f.shape[1]),
            np.repeat(np.arange(len(idx)), f.shape[1]))
