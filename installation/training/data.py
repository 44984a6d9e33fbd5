"""Training data: music as event arrays with Russell quadrants, images with valence/arousal.

Label mapping (../shared/data/README.md):
    quadrant  V  A   EMOPIA  VGMIDI (v, a)  Emotion6 (V, A on 1-9)
    Q1        +  +   Q1      (+1, +1)       V > 5, A > median
    Q2        -  +   Q2      (-1, +1)       V < 5, A > median
    Q3        -  -   Q3      (-1, -1)       V < 5, A <= median
    Q4        +  -   Q4      (+1, -1)       V > 5, A <= median
Emotion6 images with V exactly 5 have no quadrant (they are not paired).

Splits:
    EMOPIA        the official clip splits (split/{train,val,test}_clip.csv).
    other music   a stable hash of the relative path: 5% validation, the rest training.
    Emotion6      held out for testing when sha1(relative path) mod 100 < 15 (about 15%);
                  the rest train the model.
"""
from __future__ import annotations

import csv
import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from installation.errors import UserError
from installation.mood import controls as C
from installation.music import chords as K, events as E

log = logging.getLogger(__name__)

STRETCHES = (0.95, 1.0, 1.05)          # tempo augmentation, encoded once at preparation
NO_PEDAL_SOURCES = ("vgmidi_labelled", "vgmidi_unlabelled")   # arrangements written without a pedal (see encode_corpus)


def stable_percent(rel: str) -> int:
    """0..99 from the sha1 of a relative path: a split rule that survives reordering."""
    return int(hashlib.sha1(rel.encode()).hexdigest(), 16) % 100


def quadrant_of(valence_positive: bool, arousal_high: bool) -> int:
    """0..3 for Q1..Q4."""
    return {(True, True): 0, (False, True): 1, (False, False): 2, (True, False): 3}[(valence_positive, arousal_high)]


# --- music ------------------------------------------------------------------------


def start_command(data: Path) -> None:
    """A training or evaluation command begins: logging to stderr, and the shared data folder must be there."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not data.is_dir():
        raise UserError(f"data folder {data} not found; pass --data PATH/TO/shared/data")

@dataclass
class Piece:
    """One MIDI file: where it is from, its split and quadrant (-1: unlabelled)."""
    rel: str
    source: str
    split: str
    quadrant: int


def list_music(root: Path, pop909: bool = False) -> list[Piece]:
    """Every MIDI file of every music set, labelled and split; with ``pop909``, POP909's 909 quantised
    arrangements too (unlabelled: pre-training only)."""
    pieces: list[Piece] = []
    emo = root / "music" / "emopia"
    split_of = {}
    for split in ("train", "val", "test"):
        with open(emo / "split" / f"{split}_clip.csv") as f:
            for row in csv.DictReader(f):
                split_of[row["clip_name"]] = split
    for p in sorted((emo / "midis").glob("*.mid")):
        q = int(p.name[1]) - 1                               # file-name prefix Q1..Q4
        pieces.append(Piece(str(p.relative_to(root)), "emopia", split_of.get(p.name, "train"), q))

    vg = root / "music" / "vgmidi"
    with open(vg / "vgmidi_labelled.csv") as f:
        for row in csv.DictReader(f):
            rel = str((vg / row["midi"]).relative_to(root))
            q = quadrant_of(int(row["valence"]) > 0, int(row["arousal"]) > 0)
            pieces.append(Piece(rel, "vgmidi_labelled", "val" if stable_percent(rel) < 5 else "train", q))
    for p in sorted((vg / "unlabelled").rglob("*.mid")):
        rel = str(p.relative_to(root))
        pieces.append(Piece(rel, "vgmidi_unlabelled", "val" if stable_percent(rel) < 5 else "train", -1))
    for p in sorted((root / "music" / "classical_piano" / "midis").rglob("*.mid")):
        rel = str(p.relative_to(root))
        pieces.append(Piece(rel, "classical_piano", "val" if stable_percent(rel) < 5 else "train", -1))
    if pop909:
        for p in sorted((root / "music" / "pop909" / "midis").glob("*.mid")):
            rel = str(p.relative_to(root))
            pieces.append(Piece(rel, "pop909", "val" if stable_percent(rel) < 5 else "train", -1))
    return pieces


@dataclass
class MusicCorpus:
    """All event sequences in one array; row i of ``index`` is (start, length, piece, stretch)."""
    tokens: np.ndarray                  # int16, all sequences back to back
    index: np.ndarray                   # (n, 4) int64: start, length, piece number, stretch number
    pieces: list[Piece]
    skipped: list[str] = field(default_factory=list)
    chords: np.ndarray | None = None    # int16 beside tokens: the chord in force after each event (12-bit mask)

    def pedal_known(self, piece: int) -> bool:
        """Whether the piece's pedal is in the data (VGMIDI's arrangements have none: the loss ignores the pedal)."""
        return self.pieces[piece].source not in NO_PEDAL_SOURCES

    def select(self, *, split: str, labelled: bool | None = None, stretch: float | None = None) -> np.ndarray:
        """Row numbers of sequences in a split (optionally only labelled, or one stretch)."""
        rows = []
        for i, (_, n, p, s) in enumerate(self.index):
            piece = self.pieces[p]
            if piece.split != split or n < 2:
                continue
            if labelled is not None and (piece.quadrant >= 0) != labelled:
                continue
            if stretch is not None and STRETCHES[s] != stretch:
                continue
            rows.append(i)
        return np.asarray(rows, dtype=np.int64)


def encode_corpus(root: Path, pieces: list[Piece], progress=None, one_stretch: tuple[str, ...] = ()) -> MusicCorpus:
    """Parse every piece (skipping unreadable files, by name) and encode each tempo stretch (only the
    unstretched one for the sources named in ``one_stretch``: POP909 is quantised, and a third of the size).

    The keys and the sustain pedal are encoded apart (pedal events), except for the sources in
    NO_PEDAL_SOURCES: their notes are encoded as heard, with no pedal events, and training hides the
    pedal events from their loss, so their silence on the pedal is not learnt as "never pedal".
    Each event carries the chord in force (installation/music/chords.py, recognised from the heard notes)."""
    chunks, chord_chunks, index, skipped, at = [], [], [], [], 0
    it = pieces if progress is None else progress(pieces, desc="encode MIDI", unit="file")
    for pi, piece in enumerate(it):
        try:
            keys, pedal = E.load_performance(root / piece.rel)
            heard = E.apply_pedal(keys, pedal)
            if piece.source in NO_PEDAL_SOURCES:
                keys, pedal = heard, []
            notes = keys
        except E.MidiFileError as exc:
            log.warning("skipped %s", exc)
            skipped.append(piece.rel)
            continue
        if not notes:
            log.warning("skipped %s: no notes", piece.rel)
            skipped.append(piece.rel)
            continue
        for si, s in enumerate(STRETCHES):
            if piece.source in one_stretch and s != 1.0:
                continue
            ev = E.notes_to_events(notes, pedal=pedal, stretch=s)
            chunks.append(ev)
            chord_chunks.append(K.event_chords(ev, heard, stretch=s))
            index.append((at, len(ev), pi, si))
            at += len(ev)
    tokens = np.concatenate(chunks).astype(np.int16) if chunks else np.zeros(0, np.int16)
    chords = np.concatenate(chord_chunks).astype(np.int16) if chunks else np.zeros(0, np.int16)
    return MusicCorpus(tokens, np.asarray(index, dtype=np.int64).reshape(-1, 4), pieces, skipped, chords)


def save_corpus(c: MusicCorpus, path: Path) -> None:
    meta = np.array([(p.rel, p.source, p.split, p.quadrant) for p in c.pieces], dtype=object)
    chords = c.chords if c.chords is not None else np.zeros_like(c.tokens)
    np.savez(path, tokens=c.tokens, index=c.index, meta=meta, skipped=np.array(c.skipped, dtype=object),
             chords=chords, vocab=np.array(E.VOCAB_SIZE))


def load_corpus(path: Path) -> MusicCorpus:
    """A cache written by save_corpus; one from an older vocabulary (no pedal, no chords) is refused."""
    z = np.load(path, allow_pickle=True)
    if "chords" not in z.files or int(z.get("vocab", 0)) != E.VOCAB_SIZE:
        raise ValueError(f"{path}: an event cache of an older vocabulary (no pedal or chords); "
                         "delete it and run `python -m installation.training prepare-music`")
    pieces = [Piece(r, s, sp, int(q)) for r, s, sp, q in z["meta"]]
    return MusicCorpus(z["tokens"], z["index"], pieces, list(z["skipped"]), z["chords"])


# --- images ----------------------------------------------------------------------

@dataclass
class ImageSet:
    """Emotion6 images with continuous V/A, quadrant (-1: none) and split."""
    rel: list[str]
    valence: np.ndarray
    arousal: np.ndarray
    quadrant: np.ndarray
    test: np.ndarray                    # bool: held out
    arousal_split: float


def load_emotion6(root: Path) -> ImageSet:
    base = root / "images" / "emotion6"
    rows = []
    with open(base / "ground_truth.txt") as f:
        next(f)
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) >= 3 and parts[0]:
                rows.append((parts[0], float(parts[1]), float(parts[2])))
    rel = [f"images/emotion6/images/{r[0]}" for r in rows]
    v = np.array([r[1] for r in rows], np.float32)
    a = np.array([r[2] for r in rows], np.float32)
    mid = float(np.median(a))
    q = np.array([-1 if vi == 5.0 else quadrant_of(vi > 5.0, ai > mid) for vi, ai in zip(v, a)], np.int64)
    test = np.array([stable_percent(r) < 15 for r in rel])
    return ImageSet(rel, v, a, q, test, mid)


# --- batches ---------------------------------------------------------------------

class WindowSampler:
    """Random training windows of T+1 events, with random transposition.

    Windows shorter than T+1 (short phrases) are padded; padded targets are -100
    (ignored by the loss).
    """

    def __init__(self, corpus: MusicCorpus, rows: np.ndarray, seq_len: int, transpose: int = 3):
        self.c, self.rows, self.T, self.transpose = corpus, rows, seq_len, transpose
        lengths = corpus.index[rows, 1].astype(np.float64)
        self.p = lengths / lengths.sum()

    def quadrants(self, picks: np.ndarray) -> np.ndarray:
        return np.array([self.c.pieces[self.c.index[r, 2]].quadrant for r in picks], np.int64)

    def sample(self, rng: np.random.Generator, batch: int):
        """-> (inputs (B, T) int64, targets (B, T) int64, quadrants (B,) (-1: unlabelled), controls (B, K)).

        The controls are measured on the whole window, after transposition, with emotion
        set from the piece's quadrant where it has one (installation/mood/controls.py); the chord is unset."""
        return self.sample_steps(rng, batch)[:4]

    def sample_steps(self, rng: np.random.Generator, batch: int):
        """sample() and, per step, the chord in force after each input event (B, T, 13) and whether each
        window's pedal is known (B,) bool."""
        picks = self.rows[rng.choice(len(self.rows), size=batch, p=self.p)]
        x = np.zeros((batch, self.T + 1), np.int64)
        chords = np.zeros((batch, self.T + 1), np.int64)
        valid = np.zeros((batch, self.T + 1), bool)
        for b, r in enumerate(picks):
            start, n = self.c.index[r, 0], self.c.index[r, 1]
            off = rng.integers(0, max(1, n - self.T))
            sl = slice(start + off, start + min(n, off + self.T + 1))
            w = self.c.tokens[sl].astype(np.int64)
            k = int(rng.integers(-self.transpose, self.transpose + 1))
            w2 = transpose_window(w, k)
            x[b, :len(w)] = w2
            if self.c.chords is not None:
                chords[b, :len(w)] = C.rotate_masks(self.c.chords[sl], k if w2 is not w else 0)
            valid[b, :len(w)] = True
        y = np.where(valid[:, 1:], x[:, 1:], -100)
        q = self.quadrants(picks)
        ctrl = C.set_emotion(C.measure(x, valid), quadrant_va(q), q >= 0)
        pedal = np.array([self.c.pedal_known(self.c.index[r, 2]) for r in picks], bool)
        return x[:, :-1], y, q, ctrl, C.chord_codes_of_masks(chords[:, :-1]), pedal

    def fixed(self, batch: int, seed: int = 1234):
        """A fixed set of windows (no transposition) for validation and test losses."""
        return self.fixed_steps(batch, seed)[:4]

    def fixed_steps(self, batch: int, seed: int = 1234):
        """fixed() with the per-step chords and the pedal flags of sample_steps()."""
        rng = np.random.default_rng(seed)
        keep, self.transpose = self.transpose, 0
        try:
            return self.sample_steps(rng, batch)
        finally:
            self.transpose = keep


QUADRANT_VA = np.array([[1, 1], [-1, 1], [-1, -1], [1, -1]], np.float32)    # Q1..Q4 -> (valence, arousal)


def quadrant_va(q: np.ndarray) -> np.ndarray:
    """Quadrants (B,) 0..3 (-1: none) -> valence/arousal signs (B, 2) (zeros for none)."""
    q = np.asarray(q)
    return np.where((q >= 0)[:, None], QUADRANT_VA[np.maximum(q, 0)], 0).astype(np.float32)


def transpose_window(w: np.ndarray, k: int) -> np.ndarray:
    """Shift note-on/off events by k semitones, or return w unchanged if a pitch would leave 0..127."""
    if k == 0:
        return w
    notes = w < E.TIME_SHIFT
    pitch = w[notes] % E.NUM_PITCHES
    if pitch.size and (pitch.min() + k < 0 or pitch.max() + k > 127):
        return w
    out = w.copy()
    out[notes] += k
    return out
