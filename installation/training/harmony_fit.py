"""Fit the harmony model (installation/mood/harmony.py) on POP909's chord, key and beat annotations.

    python -m installation.training.harmony_fit [--data ../shared/data/music/pop909] [--out exported_models/harmony.json]

Seconds on one CPU core. Each annotated chord becomes a function against the local key (root degree
0-11 above the tonic, quality folded to maj, min, dim, aug, sus2, sus4, 7, maj7, min7; the bass note
dropped), per mode; repeats of a function are merged, so a chord lasts until the harmony changes. 'N'
(no chord), a key change, or a function too rare to model (under ``--min-count`` in its mode) ends a
phrase. Fitted: function trigram counts per mode (the runtime smooths them), and chord lengths in beats
(1-8) by tempo band, beat in the bar and previous length. The file also records the data's figures and
the same figures measured on plans drawn from the fitted model (``plans``), printed at the end.
"""
from __future__ import annotations

import argparse
import bisect
import collections
import json
import random
import statistics
import sys
import time
from pathlib import Path

from installation.mood import harmony as H
from installation.music import chords as K
from installation.music.events import load_notes
from installation.theory import pitch_class

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "music" / "pop909"
OUT = H.DEFAULT_FILE
FOLD = {"maj": "maj", "maj6": "maj", "min": "min", "min6": "min", "minmaj7": "min", "dim": "dim",   # label -> plan
        "dim7": "dim", "hdim7": "dim", "aug": "aug", "sus2": "sus2", "sus4": "sus4",   # (sus4(b7) reads as sus4)
        "7": "7", "maj7": "maj7", "min7": "min7"}
TRIAD = {"7": "maj", "maj7": "maj", "min7": "min"}          # for the moves at triad level (the figures)


def parse_label(label: str) -> tuple[int, str] | None:
    """'E:min7/b7' -> (4, 'min7'): music/chords.py's reading of a POP909 label, its quality folded to the
    plan's (``FOLD``); 'N' or a quality not folded -> None."""
    p = K.parse_label(label)
    q = None if p is None else FOLD.get(p[1])
    return None if q is None else (p[0], q)


def read_song(folder: Path, name: str):
    """(raw chords [(start, end, label)], beats [(time, downbeat)], keys [(start, end, tonic, minor)])."""
    chords = []
    for line in (folder / "chords" / name).read_text().splitlines():
        if line.strip():
            s, e, lab = line.split("\t")
            chords.append((float(s), float(e), lab.strip()))
    beats = []
    for line in (folder / "beats" / name).read_text().splitlines():
        if line.strip():
            parts = line.split()
            beats.append((float(parts[0]), float(parts[2]) > 0.5))
    keys = []
    for line in (folder / "keys" / name).read_text().splitlines():
        if line.strip():
            s, e, lab = line.split("\t")
            root, mode = lab.strip().split(":")
            keys.append((float(s), float(e), pitch_class(root), mode == "min"))
    if len(beats) < 8 or not chords or not keys:
        raise ValueError("too few beats, chords or keys")
    return chords, beats, keys


def key_at(keys, t: float):
    for s, e, tonic, minor in keys:
        if s - 1e-6 <= t < e:
            return tonic, minor
    return min(keys, key=lambda k: min(abs(t - k[0]), abs(t - k[1])))[2:]


def beat_pos(times: list[float], t: float) -> float:
    """Fractional beat index of time t (linear between beats, extrapolated by the edge intervals)."""
    i = min(max(bisect.bisect_right(times, t) - 1, 0), len(times) - 2)
    return i + (t - times[i]) / (times[i + 1] - times[i])


def change_figures(segments) -> dict:
    """Median chord length (s) and the share of 2-s blocks holding a chord change, for a list of pieces,
    each a list of (start, end) of successive chords (one piece's chords contiguous or with gaps)."""
    lengths, blocks, changed = [], 0, 0
    for piece in segments:
        if not piece:
            continue
        lengths += [e - s for s, e in piece]
        starts = sorted(s for s, _ in piece)[1:]
        t, end = piece[0][0], piece[-1][1]
        while t + 2.0 <= end:
            i = bisect.bisect_right(starts, t)
            blocks += 1
            changed += i < len(starts) and starts[i] <= t + 2.0
            t += 2.0
    return {"median_chord_s": round(statistics.median(lengths), 3), "chords": len(lengths),
            "blocks_2s": blocks, "share_2s_blocks_with_change": round(changed / max(blocks, 1), 4)}


def top_moves(pairs: collections.Counter, k: int = 8) -> list[list]:
    total = sum(pairs.values())
    return [[f"{H.function_name(*a)}->{H.function_name(*b)}", round(c / total, 4)] for (a, b), c in pairs.most_common(k)]


def load_corpus(folder: Path):
    songs, skipped = [], []
    for path in sorted((folder / "chords").glob("*.txt")):
        try:
            songs.append((path.name, *read_song(folder, path.name)))
        except (OSError, ValueError, UnicodeDecodeError, KeyError, IndexError) as exc:
            skipped.append(f"{path.name}: {exc}")
            print(f"skipped {path.name}: {exc}", file=sys.stderr)
    return songs, skipped


def phrases(songs):
    """Per song: its tempo (bpm) and its phrases, each a list of folded chords
    dict(start, end, beats, pos, degree, quality, minor), repeats merged."""
    out = []
    for name, chords, beats, keys in songs:
        ibi = statistics.median(b[0] - a[0] for a, b in zip(beats, beats[1:]))
        downs = [i for i, (_, d) in enumerate(beats) if d]
        bpm = 60.0 / ibi
        times = [b[0] for b in beats]
        song, cur, last_key = [], [], None
        for s, e, lab in chords:
            f = parse_label(lab)
            key = key_at(keys, s) if f is not None else None
            if f is None or key != last_key:
                if cur:
                    song.append(cur)
                cur, last_key = [], key
                if f is None:
                    continue
            tonic, minor = key
            degree, quality = (f[0] - tonic) % 12, f[1]
            if cur and (cur[-1]["degree"], cur[-1]["quality"]) == (degree, quality):
                cur[-1]["end"] = e
                continue
            cur.append(dict(start=s, end=e, degree=degree, quality=quality, minor=minor))
        if cur:
            song.append(cur)
        for ph in song:
            for c in ph:
                b0, b1 = beat_pos(times, c["start"]), beat_pos(times, c["end"])
                c["beats"] = min(max(int(round(b1 - b0)), 1), H.MAX_BEATS)
                i = int(round(b0))
                last = max((d for d in downs if d <= i), default=None)
                c["pos"] = (i - last) % 4 if last is not None else i % 4
        out.append((name, bpm, song))
    return out


def fit(folder: Path, min_count: int = 30, bands: int = 3) -> dict:
    t_start = time.time()
    songs, skipped = load_corpus(folder)
    corpus = phrases(songs)
    # the data's own figures, raw labels (repeats of the same label merged, 'N' left out) and folded
    raw_pieces, raw_beats = [], []
    for name, chords, beats, keys in songs:
        piece = []
        for s, e, lab in chords:
            if piece and piece[-1][2] == lab:
                piece[-1][1] = e
            else:
                piece.append([s, e, lab])
        raw_pieces.append([(s, e) for s, e, lab in piece if lab != "N"])
        times = [b[0] for b in beats]
        raw_beats += [beat_pos(times, e) - beat_pos(times, s) for s, e, lab in piece if lab != "N"]
    figures = {"raw_labels": change_figures(raw_pieces) | {"median_chord_beats": round(statistics.median(raw_beats), 2)}}
    folded = [[(c["start"], c["end"]) for ph in song for c in ph] for _, _, song in corpus]
    figures["folded_functions"] = change_figures(folded) | {
        "median_chord_beats": statistics.median(c["beats"] for _, _, s in corpus for ph in s for c in ph)}

    # succession: per mode, functions with at least min_count chords
    counts = {False: collections.Counter(), True: collections.Counter()}
    for _, _, song in corpus:
        for ph in song:
            for c in ph:
                counts[c["minor"]][(c["degree"], c["quality"])] += 1
    modes, moves = {}, {}
    for minor, mode in ((False, "major"), (True, "minor")):
        funcs = [f for f, n in counts[minor].most_common() if n >= min_count]
        idx = {f: i for i, f in enumerate(funcs)}
        uni, bi, tri = [0] * len(funcs), collections.defaultdict(collections.Counter), collections.defaultdict(collections.Counter)
        pairs, triads = collections.Counter(), collections.Counter()
        for _, _, song in corpus:
            for ph in song:
                if not ph or ph[0]["minor"] != minor:
                    continue
                a = b = H.BOS
                for c in ph:
                    f = idx.get((c["degree"], c["quality"]))
                    if f is None:                     # too rare: the phrase starts again after it
                        a = b = H.BOS
                        continue
                    uni[f] += 1
                    bi[b][f] += 1
                    tri[(a, b)][f] += 1
                    a, b = b, f
                for x, y in zip(ph, ph[1:]):
                    pairs[(x["degree"], x["quality"]), (y["degree"], y["quality"])] += 1
                    tx, ty = (x["degree"], TRIAD.get(x["quality"], x["quality"])), (y["degree"], TRIAD.get(y["quality"], y["quality"]))
                    if tx != ty:
                        triads[tx, ty] += 1
        covered = sum(counts[minor][f] for f in funcs) / sum(counts[minor].values())
        modes[mode] = {"functions": [f"{d}:{q}" for d, q in funcs], "names": [H.function_name(d, q) for d, q in funcs],
                       "unigram": uni, "bigram": {str(k): dict(v) for k, v in bi.items()},
                       "trigram": {f"{a},{b}": dict(v) for (a, b), v in tri.items()},
                       "chords": sum(counts[minor].values()), "coverage": round(covered, 4)}
        moves[mode] = {"folded": top_moves(pairs), "triads": top_moves(triads)}
    figures["moves"] = moves

    # harmonic rhythm: lengths by tempo band, beat in the bar, previous length
    tempi = sorted(bpm for _, bpm, _ in corpus)
    q = lambda x: tempi[min(int(round(x * (len(tempi) - 1))), len(tempi) - 1)]
    edges = [round(q(i / bands), 2) for i in range(1, bands)]
    table = collections.defaultdict(lambda: [0] * H.MAX_BEATS)
    by_band = collections.defaultdict(list)
    for _, bpm, song in corpus:
        band = sum(bpm >= e for e in edges)
        for ph in song:
            prev = 0
            for c in ph:
                for key in ((band, c["pos"], prev), (band, c["pos"], -1), (band, -1, -1)):
                    table[key][c["beats"] - 1] += 1
                by_band[band].append((c["beats"], c["end"] - c["start"]))
                prev = c["beats"]
    figures["rhythm_by_tempo_band"] = [
        {"band": b, "bpm": [round(([tempi[0]] + edges)[b], 1), round((edges + [tempi[-1]])[b], 1)],
         "median_beats": statistics.median(x for x, _ in by_band[b]),
         "mean_beats": round(statistics.fmean(x for x, _ in by_band[b]), 3),
         "median_s": round(statistics.median(s for _, s in by_band[b]), 3), "chords": len(by_band[b])}
        for b in range(bands)]
    model = {
        "format": 1,
        "what": "POP909 chord succession (function trigram counts per mode) and harmonic rhythm "
                "(chord length in beats by tempo band, beat in bar, previous length); see installation/mood/harmony.py",
        "qualities": {q: list(iv) for q, (iv, _) in H.QUALITIES.items()},
        "fold": FOLD,
        "modes": modes,
        "rhythm": {"lengths": list(range(1, H.MAX_BEATS + 1)), "bar_beats": 4, "tempo_edges": edges,
                   "tempo_quantiles": [round(q(0.05 + 0.9 * i / 18), 2) for i in range(19)],
                   "table": {",".join(map(str, k)): v for k, v in sorted(table.items())}},
        "data": {"songs": len(songs), "skipped": skipped, "phrases": sum(len(s) for _, _, s in corpus),
                 "figures": figures},
        "fit": {"command": "python -m installation.training.harmony_fit", "min_count": min_count,
                "seconds": None},
    }
    model["fit"]["seconds"] = round(time.time() - t_start, 1)
    return model


# --- arousal: EMOPIA's harmonic rhythm by quadrant, through music/chords.py's recogniser ----------------

PENALTIES = (0.2, 0.3, 0.4, 0.5, 0.6)


def chord_segments(notes, penalty: float) -> list[tuple[float, float]]:
    """(start, end) of the chords music/chords.py's recogniser hears in ``notes`` with ``penalty`` per change."""
    return K.segments(K.recognise(notes, penalty=penalty)) if notes else []


def emopia_rhythm(pop909: Path, emopia: Path, annotated: dict) -> dict:
    """The recogniser's change penalty chosen on POP909's MIDI (every 9th song) against its annotations,
    then EMOPIA's median chord length and 2-s change share per quadrant (notes as heard, pedal applied)."""
    songs = []
    for path in sorted((pop909 / "midis").glob("*.mid"))[::9]:
        try:
            songs.append(load_notes(path, sustain=False))
        except ValueError as exc:
            print(f"skipped {path.name}: {exc}", file=sys.stderr)
    trials = {}
    for penalty in PENALTIES:
        f = change_figures([chord_segments(n, penalty) for n in songs])
        trials[penalty] = f
    target_m, target_s = annotated["median_chord_s"], annotated["share_2s_blocks_with_change"]
    penalty = min(trials, key=lambda p: abs(trials[p]["median_chord_s"] - target_m) / target_m
                  + abs(trials[p]["share_2s_blocks_with_change"] - target_s))
    quadrants, skipped = collections.defaultdict(list), []
    for path in sorted((emopia / "midis").glob("*.mid")):
        try:
            quadrants[path.name[:2]].append(chord_segments(load_notes(path, sustain=True), penalty))
        except ValueError as exc:
            skipped.append(path.name)
            print(f"skipped {path.name}: {exc}", file=sys.stderr)
    return {"frame_s": K.FRAME_S, "penalty": penalty, "pop909_songs": len(songs),
            "pop909_check": {str(p): f for p, f in trials.items()},
            "quadrants": {q: change_figures(v) | {"clips": len(v)} for q, v in sorted(quadrants.items())},
            "high_arousal": change_figures(quadrants["Q1"] + quadrants["Q2"]),
            "low_arousal": change_figures(quadrants["Q3"] + quadrants["Q4"]), "skipped": skipped}


CORNERS = {"Q1": (False, 1.0), "Q2": (True, 1.0), "Q3": (True, -1.0), "Q4": (False, -1.0)}   # minor, arousal


def plan_share(model: H.HarmonyModel, minor: bool, bpm: float, n: int = 60, seconds: float = 120.0) -> float:
    """The share of 2-s blocks with a chord change in n plans at a beat of ``bpm``."""
    pieces = []
    for i in range(n):
        segs = H.HarmonyPlan(model, i % 12, minor, 0.0, seed=7000 + i, bpm=bpm).ahead(0.0, seconds)
        pieces.append([(a[0], b[0]) for a, b in zip(segs, segs[1:])])
    return change_figures(pieces)["share_2s_blocks_with_change"]


def arousal_tempo(model: H.HarmonyModel, emopia: dict) -> dict:
    """Per mode, the beat (bpm) at arousal -1 and +1 whose plans hold a chord change in as many 2-s blocks
    as EMOPIA's clips of the corner's quadrant (major: Q4 and Q1; minor: Q3 and Q2): the figure the
    listening measure's chroma self-similarity of 2-s blocks sees. Bisection over 30-200 bpm."""
    out = {"major": [0.0, 0.0], "minor": [0.0, 0.0]}
    for q, (minor, arousal) in CORNERS.items():
        target = emopia["quadrants"][q]["share_2s_blocks_with_change"]
        lo, hi = 30.0, 200.0
        for _ in range(12):
            mid = (lo + hi) / 2
            if plan_share(model, minor, mid) < target:
                lo = mid                         # too few changes: faster
            else:
                hi = mid
        out["minor" if minor else "major"][0 if arousal < 0 else 1] = round((lo + hi) / 2, 1)
    return out


def measure_plans(model: H.HarmonyModel, n: int = 400, seconds: float = 180.0, seed: int = 0,
                  major_share: float = 0.6) -> dict:
    """The data's figures measured on plans: n plans, arousal spread evenly over -1..1 (so the beat
    spans POP909's song tempi), random keys, a share of them major."""
    rng = random.Random(seed)
    pieces, beats, pairs, triads = [], [], {False: collections.Counter(), True: collections.Counter()}, \
        {False: collections.Counter(), True: collections.Counter()}
    for i in range(n):
        arousal = -1.0 + 2.0 * (i + 0.5) / n
        minor = rng.random() >= major_share
        tonic = rng.randrange(12)
        plan = H.HarmonyPlan(model, tonic, minor, arousal, seed=seed * 100003 + i)
        segs = plan.ahead(0.0, seconds)
        piece = [(s, e) for (s, _), (e, _) in zip(segs, segs[1:])]
        pieces.append(piece)
        beats += [(e - s) / plan.beat_s for s, e in piece]
        fn = [((c.root - tonic) % 12, c.quality) for _, c in segs]
        for a, b in zip(fn, fn[1:]):
            pairs[minor][a, b] += 1
            ta, tb = (a[0], TRIAD.get(a[1], a[1])), (b[0], TRIAD.get(b[1], b[1]))
            if ta != tb:
                triads[minor][ta, tb] += 1
    out = change_figures(pieces) | {"median_chord_beats": statistics.median(beats), "plans": n, "seconds": seconds,
                                    "seed": seed}
    out["moves"] = {m: {"folded": top_moves(pairs[minor]), "triads": top_moves(triads[minor])}
                    for minor, m in ((False, "major"), (True, "minor"))}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DATA, help="POP909 folder (chords/, beats/, keys/)")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--min-count", type=int, default=30, help="a function rarer than this in its mode ends a phrase")
    ap.add_argument("--emopia", type=Path, default=DATA.parent / "emopia", help="EMOPIA folder (midis/): "
                    "the harmonic rhythm by quadrant, which sets the beat by arousal")
    args = ap.parse_args(argv)
    if not (args.data / "chords").is_dir():
        print(f"--data {args.data}: no chords/ folder (POP909 with its annotations)", file=sys.stderr)
        return 2
    model = fit(args.data, args.min_count)
    songs = model["data"]["songs"]
    major_share = model["modes"]["major"]["chords"] / (model["modes"]["major"]["chords"] + model["modes"]["minor"]["chords"])
    fitted = H.HarmonyModel(model)
    model["plans"] = measure_plans(fitted, major_share=major_share)          # at POP909's song tempi
    if (args.emopia / "midis").is_dir():
        t = time.time()
        emo = emopia_rhythm(args.data, args.emopia, model["data"]["figures"]["raw_labels"])
        model["emopia"] = emo
        model["rhythm"]["arousal_tempo"] = arousal_tempo(fitted, emo)
        fitted = H.HarmonyModel(model)
        model["plans_by_quadrant"] = {
            q: change_figures([[(a[0], b[0]) for a, b in zip(segs, segs[1:])]
                               for segs in (H.HarmonyPlan(fitted, i % 12, minor, arousal, seed=i).ahead(0.0, 180.0)
                                            for i in range(100))])
            for q, (minor, arousal) in CORNERS.items()}
        model["fit"]["emopia_seconds"] = round(time.time() - t, 1)
    args.out.write_text(json.dumps(model, separators=(",", ":")) + "\n", encoding="utf-8")
    f = model["data"]["figures"]
    print(f"{songs} songs, {model['data']['phrases']} phrases, fitted in {model['fit']['seconds']} s -> {args.out} "
          f"({args.out.stat().st_size / 1e3:.0f} kB)")
    print(json.dumps({"data": f, "plans": model["plans"], "emopia": model.get("emopia"),
                      "arousal_tempo": model["rhythm"].get("arousal_tempo"),
                      "plans_by_quadrant": model.get("plans_by_quadrant"),
                      "functions": {m: len(model["modes"][m]["functions"]) for m in ("major", "minor")},
                      "coverage": {m: model["modes"][m]["coverage"] for m in ("major", "minor")}}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
