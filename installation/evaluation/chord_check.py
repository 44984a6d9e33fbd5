"""python -m installation.evaluation.chord_check: how well the chord recogniser (installation/music/chords.py, the chord
control's truth in training) agrees with POP909's chord annotations.

    python -m installation.evaluation.chord_check                 # every 9th song (101 songs)
    python -m installation.evaluation.chord_check --every 1 --out reports/chord_check.json

For each song: its MIDI read with the pedal (what is heard), the recogniser's chord per 0.25 s frame, and the
annotated chord (``chords/NNN.txt``, MIDI time) at each frame's middle. Frames annotated ``N`` or with a
quality the parser does not know are left out. Figures: root agreement, root and third (major/minor family)
agreement, exact pitch-class set agreement; and the harmonic rhythm of both (median chord length, share of 2-s
blocks holding a change).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from installation.music import chords as K
from installation.music import events as E

REPO = Path(__file__).resolve().parents[2]
MINOR_FAMILY = {"min", "min7", "dim", "hdim7", "dim7", "min6", "min9", "minmaj7"}


def _rhythm(frames: np.ndarray, frame_s: float) -> tuple[list[float], list[bool]]:
    """Chord lengths (s) and, per 2-s block, whether it holds a change, of a frame sequence (0 = no chord)."""
    change = np.flatnonzero(frames[1:] != frames[:-1]) + 1
    bounds = np.r_[0, change, len(frames)]
    lengths = [(b - a) * frame_s for a, b in zip(bounds[:-1], bounds[1:]) if frames[a] != 0]
    per_block = int(round(2.0 / frame_s))
    blocks = [bool(((change > i) & (change < i + per_block)).any()) for i in range(0, len(frames) - per_block, per_block)]
    return lengths, blocks


def check(root: Path, every: int = 9) -> dict:
    pop = root / "music" / "pop909"
    n = root_ok = third_ok = exact = 0
    got_len, got_blocks, ref_len, ref_blocks, songs = [], [], [], [], 0
    for f in sorted((pop / "midis").glob("*.mid"))[::every]:
        label_file = pop / "chords" / f"{f.stem}.txt"
        if not label_file.is_file():
            continue
        try:
            notes = E.load_notes(f)
        except E.MidiFileError:
            continue
        frames = K.recognise(notes)
        ref = np.zeros(len(frames), np.int64)
        for line in label_file.read_text().splitlines():
            parts = line.split()
            if len(parts) < 3:
                continue
            a, b, lab = float(parts[0]), float(parts[1]), parts[2]
            p = K.parse_label(lab)
            t = np.arange(a + K.FRAME_S / 2, b, K.FRAME_S)
            i = (t / K.FRAME_S).astype(int)
            i = i[i < len(frames)]
            if p is not None:
                ref[i] = p[2]
            for j in i:
                if p is None or frames[j] == 0:
                    continue
                r, q, m = p
                gr, gq = K.NAMES[int(np.flatnonzero(K.MASKS == frames[j])[0])]
                n += 1
                root_ok += gr == r
                third_ok += gr == r and ((gq in MINOR_FAMILY) == (q in MINOR_FAMILY))
                exact += frames[j] == m
        for frames_, lens, blocks in ((frames, got_len, got_blocks), (ref, ref_len, ref_blocks)):
            ln, bl = _rhythm(frames_, K.FRAME_S)
            lens += ln
            blocks += bl
        songs += 1
    return {
        "songs": songs, "frames": n, "frame_s": K.FRAME_S, "change_penalty": K.CHANGE_PENALTY,
        "root_agreement": round(root_ok / max(n, 1), 4),
        "root_and_third_agreement": round(third_ok / max(n, 1), 4),
        "exact_pitch_class_set_agreement": round(exact / max(n, 1), 4),
        "median_chord_s": {"recognised": round(float(np.median(got_len)), 2), "annotated": round(float(np.median(ref_len)), 2)},
        "blocks_2s_with_a_change": {"recognised": round(float(np.mean(got_blocks)), 3),
                                    "annotated": round(float(np.mean(ref_blocks)), 3)},
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m installation.evaluation.chord_check", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--every", type=int, default=9, help="every k-th POP909 song")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    if not (args.data / "music" / "pop909" / "chords").is_dir():
        print(f"error: --data {args.data}: no music/pop909/chords there; pass the shared data folder", file=sys.stderr)
        return 2
    res = check(args.data, args.every)
    res["command"] = "python -m installation.evaluation.chord_check " + " ".join(sys.argv[1:] if argv is None else argv)
    print(json.dumps(res, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
