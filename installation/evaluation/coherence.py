"""Coherence and variety of a performance: does the paper's "more coherent but less varied" hold?

    python -m installation.evaluation.coherence [--models DIR] [--pieces 24] [--seconds 60] [--out FILE.json]

Three families of numbers, each from the notes alone (``events.Note``), so real and generated music
are measured alike:

- key stability: the piece cut into 10 s windows; each window's key by Krumhansl-Schmuckler
  (analysis.estimate_key). ``key_agreement``: the share of windows in the piece's most common key;
  ``key_changes``: the share of window boundaries where the key changes; ``pc_continuity``: the mean
  correlation of consecutive windows' pitch-class histograms (a graded version of the same).
- repetition and self-similarity: ``repetition``: the share of melodic 4-grams (successive onsets'
  pitch intervals, so a transposed motif counts) that occur more than once; ``self_similarity``: the
  mean cosine similarity of every pair of 2 s segments' pitch histograms (a self-similarity matrix's
  off-diagonal mean).
- variety: ``pc_entropy``: the entropy (bits) of the piece's pitch-class distribution of onsets
  (0: one pitch class, log2 12 = 3.58: all equally); ``pc_entropy_window``: the same within 10 s
  windows, averaged; ``distinct_pitches``: how many MIDI pitches the piece uses.

Coherent = high key agreement, few key changes, high continuity, repetition and self-similarity;
varied = high entropies and many distinct pitches.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np

from installation import manifest as M
from installation.errors import UserError
from installation.mood import controls as C
from installation.music import analysis, events as E
from installation.music.decoder import GruDecoder, PRIMER, open_decoder
from installation.music.events import Note
from installation.music.sampling import sample
from installation.music.transformer_decoder import STEP, TransformerDecoder, open_transformer
from installation.training import data as D

WINDOW_S = 10.0          # key windows
SEGMENT_S = 2.0          # self-similarity segments
NGRAM = 4                # melodic n-grams for repetition (intervals between NGRAM + 1 onsets)
MIN_NOTES = 8            # a window with fewer onsets has no key


@dataclass(frozen=True)
class Coherence:
    notes: int
    key_windows: int              # 10 s windows with a key (>= MIN_NOTES onsets)
    key_agreement: float          # share of those in the piece's most common key
    key_changes: float            # share of consecutive window pairs whose keys differ
    pc_continuity: float          # mean correlation of consecutive windows' pitch-class histograms
    repetition: float             # share of melodic 4-grams that recur
    self_similarity: float        # mean cosine similarity of 2 s segments' pitch histograms
    pc_entropy: float             # bits, whole piece
    pc_entropy_window: float      # bits, mean over 10 s windows
    distinct_pitches: int

    def to_dict(self) -> dict:
        return asdict(self)


def _in(notes: list[Note], a: float, b: float) -> list[Note]:
    """Notes starting in [a, b), clipped to end by b."""
    return [Note(n.pitch, n.velocity, n.start, min(n.end, b)) for n in notes if a <= n.start < b]


def entropy_bits(counts: np.ndarray) -> float:
    c = np.asarray(counts, np.float64)
    if c.sum() <= 0:
        return 0.0
    p = c[c > 0] / c.sum()
    return float(-(p * np.log2(p)).sum())


def _pc_counts(notes: list[Note]) -> np.ndarray:
    return np.bincount([n.pitch % 12 for n in notes], minlength=12).astype(np.float64)


def repetition(notes: list[Note], n: int = NGRAM) -> float:
    """Share of melodic n-grams (pitch intervals of successive onsets, in (start, pitch) order) that recur."""
    pitches = [x.pitch for x in sorted(notes, key=lambda x: (x.start, x.pitch))]
    iv = np.diff(pitches)
    if len(iv) < n:
        return 0.0
    grams = [tuple(iv[i:i + n]) for i in range(len(iv) - n + 1)]
    counts: dict[tuple, int] = {}
    for g in grams:
        counts[g] = counts.get(g, 0) + 1
    return sum(1 for g in grams if counts[g] > 1) / len(grams)


def self_similarity(notes: list[Note], seconds: float, segment: float = SEGMENT_S) -> float:
    """Mean cosine similarity over all pairs of non-empty ``segment``-second pitch histograms (onsets)."""
    k = max(1, int(math.ceil(seconds / segment)))
    h = np.zeros((k, 128))
    for x in notes:
        i = int(x.start // segment)
        if 0 <= i < k:
            h[i, x.pitch] += 1
    h = h[h.sum(1) > 0]
    if len(h) < 2:
        return 0.0
    h /= np.linalg.norm(h, axis=1, keepdims=True)
    s = h @ h.T
    return float((s.sum() - np.trace(s)) / (len(h) * (len(h) - 1)))


def describe(notes: list[Note], seconds: float = 60.0, window: float = WINDOW_S) -> Coherence:
    """Coherence and variety of one performance of ``seconds`` (notes starting later are ignored)."""
    notes = [x for x in notes if x.start < seconds]
    keys, hists, ents = [], [], []
    for a in np.arange(0.0, seconds - 1e-9, window):
        w = _in(notes, a, a + window)
        if len(w) < MIN_NOTES:
            continue
        tonic, mode, _ = analysis.estimate_key(w)
        keys.append((tonic, mode))
        hists.append(analysis.pitch_class_histogram(w))
        ents.append(entropy_bits(_pc_counts(w)))
    if keys:
        common = max(set(keys), key=keys.count)
        agreement = keys.count(common) / len(keys)
    else:
        agreement = 0.0
    changes = float(np.mean([a != b for a, b in zip(keys, keys[1:])])) if len(keys) > 1 else 0.0
    cont = [float(np.corrcoef(a, b)[0, 1]) for a, b in zip(hists, hists[1:])]
    cont = [c for c in cont if np.isfinite(c)]
    return Coherence(
        notes=len(notes), key_windows=len(keys), key_agreement=float(agreement), key_changes=changes,
        pc_continuity=float(np.mean(cont)) if cont else 0.0,
        repetition=repetition(notes), self_similarity=self_similarity(notes, seconds),
        pc_entropy=entropy_bits(_pc_counts(notes)), pc_entropy_window=float(np.mean(ents)) if ents else 0.0,
        distinct_pitches=len({x.pitch for x in notes}))


def of_events(events, seconds: float = 60.0) -> Coherence:
    return describe(E.events_to_notes([int(e) for e in events]), seconds)


def summarise(stats: list[Coherence], resamples: int = 2000, seed: int = 0) -> dict:
    """Mean and a 95% bootstrap interval of each figure over pieces."""
    rng = np.random.default_rng(seed)
    out = {"pieces": len(stats)}
    if not stats:
        return out
    idx = rng.integers(0, len(stats), (resamples, len(stats)))
    for f in fields(Coherence):
        v = np.array([getattr(s, f.name) for s in stats], np.float64)
        boots = v[idx].mean(1)
        out[f.name] = {"mean": round(float(v.mean()), 4), "ci95": [round(float(np.percentile(boots, 2.5)), 4),
                                                                   round(float(np.percentile(boots, 97.5)), 4)]}
    return out


# --- generating pieces through any decoder (the decoder interface of installation/music/decoder.py) -----------

def perform(decoder, controls: np.ndarray, seconds: float, seed: int = 0, temperature: float = 1.0,
            top_p: float = 0.95) -> list[np.ndarray]:
    """One performance of ``seconds`` per control row (N, K), stepped as a batch; row i's RNG is seeded
    (seed, i), so a row's music does not depend on the batch."""
    controls = np.ascontiguousarray(controls, np.float32)
    n = len(controls)
    rngs = [np.random.default_rng([seed, i]) for i in range(n)]
    state = decoder.initial(controls)
    state = decoder.blend(state, state, 1.0)
    events = np.full(n, PRIMER, np.int64)
    need = int(round(seconds * E.STEPS_PER_SECOND))
    clock = np.zeros(n, np.int64)
    out: list[list[int]] = [[] for _ in range(n)]
    active = np.arange(n)
    cap = int(200 * seconds) + 64
    for _ in range(cap):
        logits, state = decoder.step(events, state, controls[active])
        events = sample(logits, None, temperature, top_p, u=np.array([rngs[r].random() for r in active]))
        for r, e in zip(active, events):
            out[r].append(int(e))
        shift = (events >= E.TIME_SHIFT) & (events < E.TIME_SHIFT + E.NUM_TIME_SHIFTS)
        clock[active] += np.where(shift, events - E.TIME_SHIFT + 1, 0)
        done = clock[active] >= need
        if done.any():
            keep = ~done
            active, events = active[keep], events[keep]
            if len(active) == 0:
                break
            state = decoder.take(state, np.flatnonzero(keep))
    return [np.asarray(o, np.int64) for o in out]


def compare(decoders: dict, controls: np.ndarray, seconds: float = 60.0, seed: int = 0) -> dict:
    """{name: summarise(...)} for each decoder, the same control rows and seeds."""
    res = {}
    for name, dec in decoders.items():
        pieces = perform(dec, controls, seconds, seed)
        res[name] = summarise([of_events(p, seconds) for p in pieces])
    return res


def _controls(n: int, seed: int = 0) -> np.ndarray:
    """n control rows: each Russell quadrant's emotion (graded), the musical groups unset (the model chooses)."""
    rng = np.random.default_rng(seed)
    va = np.array([[1, 1], [-1, 1], [-1, -1], [1, -1]], np.float32)
    rows = []
    for i in range(n):
        v, a = va[i % 4] * rng.uniform(0.5, 1.0, 2)
        rows.append(C.encode(C.Targets(valence=float(v), arousal=float(a))))
    return np.stack(rows)


def main(argv=None) -> int:
    import argparse
    import json
    import sys
    from pathlib import Path

    ap = argparse.ArgumentParser(prog="python -m installation.evaluation.coherence", description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=None, help="model folder (default: exported_models/)")
    ap.add_argument("--pieces", type=int, default=24, help="pieces per decoder (cycling the four quadrants)")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None, help="write the figures here as JSON")
    ap.add_argument("--checkpoint", action="append", default=[], metavar="NAME=PATH",
                    help="also (or instead) a training checkpoint, e.g. gru=runs/shipped/model.pt (torch)")
    ap.add_argument("--gru-models", default=None, help="take the GRU from this model folder instead")
    ap.add_argument("--no-models", action="store_true", help="only the --checkpoint decoders")
    ap.add_argument("--real", type=Path, default=None, metavar="MUSIC_NPZ",
                    help="also measure held-out real music (validation pieces of at least --seconds) from this event cache")
    args = ap.parse_args(argv)
    try:
        decoders = {} if args.no_models else load_decoders(args.models, args.gru_models)
        for spec in args.checkpoint:
            name, _, path = spec.partition("=")
            decoders[name] = torch_decoder(path)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    res = compare(decoders, _controls(args.pieces, args.seed), args.seconds, args.seed)
    if args.real:
        res["real (validation)"] = summarise([of_events(p, args.seconds) for p in real_pieces(args.real, args.pieces, args.seconds)])
    print(table(res))
    if args.out:
        args.out.write_text(json.dumps(res, indent=2) + "\n")
    return 0


def load_decoders(folder, gru_folder=None) -> dict:
    """Every decoder the model folder has: the GRU (manifest.json; or from ``gru_folder``) and the Transformer
    (its manifest entry, or transformer_manifest.json beside it before the two are merged)."""
    import json
    from pathlib import Path

    folder = Path(folder) if folder else M.DEFAULT_DIR
    out = {}
    gru_at = Path(gru_folder or folder)
    try:
        out["gru"] = open_decoder(M.load(gru_at), threads=1)
    except Exception as exc:                      # an older or partial folder: compare what there is
        try:                                      # a bare GRU export (decoder_init + decoder_step, no encoder)
            out["gru"] = GruDecoder(M.Manifest(gru_at, json.loads((gru_at / "manifest.json").read_text())), threads=1)
        except Exception:
            print(f"note: no GRU decoder from {gru_at}: {exc}")
    data = json.loads((folder / "manifest.json").read_text()) if (folder / "manifest.json").is_file() else {}
    if STEP not in data.get("models", {}) and (folder / "transformer_manifest.json").is_file():
        data = json.loads((folder / "transformer_manifest.json").read_text())
    if STEP in data.get("models", {}):
        out["transformer"] = open_transformer(M.Manifest(folder, data), threads=1)
    return out


def real_pieces(cache, n: int, seconds: float, seed: int = 0) -> list[np.ndarray]:
    """Up to n validation pieces (unstretched) with at least ``seconds`` of music, as events."""
    corpus = D.load_corpus(cache)
    rows = corpus.select(split="val", stretch=1.0)
    rng = np.random.default_rng(seed)
    out = []
    for r in rng.permutation(rows):
        start, length = corpus.index[r, 0], corpus.index[r, 1]
        ev = corpus.tokens[start:start + length].astype(np.int64)
        shift = (ev >= E.TIME_SHIFT) & (ev < E.TIME_SHIFT + E.NUM_TIME_SHIFTS)
        if np.where(shift, ev - E.TIME_SHIFT + 1, 0).sum() >= seconds * E.STEPS_PER_SECOND:
            out.append(ev)
            if len(out) == n:
                break
    return out


class TorchGru:
    """A GRU training checkpoint behind the decoder interface (torch; to compare before export)."""

    kind = "gru"

    def __init__(self, model):
        import torch
        self.torch, self.model = torch, model.eval()

    def initial(self, controls):
        with self.torch.no_grad():
            return self.model.initial(self.torch.from_numpy(np.asarray(controls, np.float32))).numpy()

    def step(self, events, state, controls):
        t = self.torch
        with t.no_grad():
            lg, h = self.model.step(t.from_numpy(np.asarray(events, np.int64)), t.from_numpy(state),
                                    t.from_numpy(np.asarray(controls, np.float32)))
        return lg.numpy(), h.numpy()

    @staticmethod
    def blend(state, target, mix):
        return np.array(target, np.float32, copy=True) if mix >= 1 else ((1 - mix) * state + mix * target).astype(np.float32)

    @staticmethod
    def take(state, rows):
        return np.ascontiguousarray(state[:, rows])


def torch_decoder(checkpoint):
    """A run's model.pt (or a phase checkpoint's best weights) as a decoder: the GRU or the Transformer."""
    import torch

    ck = torch.load(checkpoint, map_location="cpu", weights_only=False)
    weights = ck["model"] if "config" in ck else ck["state"]["best_model"]
    cfg = ck.get("config") or json_config(checkpoint)
    if "d_model" in cfg:
        # lazy: torch, only to score an unexported checkpoint
        from installation.training.transformer import TransformerConfig, TransformerMusicModel
        from installation.training.transformer_export import TorchStepper
        m = TransformerMusicModel(TransformerConfig(**cfg))
        m.load_state_dict(weights)
        dec = TorchStepper(m)
        dec.blend, dec.take = TransformerDecoder.blend, TransformerDecoder.take
        return dec
    # lazy: torch, only to score an unexported checkpoint
    from installation.training.model import ModelConfig, MusicModel
    m = MusicModel(ModelConfig(**cfg))
    m.load_state_dict(weights)
    return TorchGru(m)


def json_config(checkpoint) -> dict:
    """The model config of a phase checkpoint, from the run folder's config.json."""
    import json
    from pathlib import Path
    return json.loads((Path(checkpoint).parent / "config.json").read_text())["model"]


def table(res: dict) -> str:
    names = list(res)
    rows = [f"{'figure':<20}" + "".join(f"{n:>28}" for n in names)]
    for f in fields(Coherence):
        cells = []
        for n in names:
            d = res[n].get(f.name)
            cells.append(f"{d['mean']:.3f} [{d['ci95'][0]:.3f}, {d['ci95'][1]:.3f}]" if d else "-")
        rows.append(f"{f.name:<20}" + "".join(f"{c:>28}" for c in cells))
    return "\n".join(rows)


if __name__ == "__main__":
    raise SystemExit(main())
