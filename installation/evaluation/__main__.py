"""python -m installation.evaluation: score the shipped models' emotion correspondence and musical quality.

    python -m installation.evaluation                         # exported_models/, ../shared/data, K=3
    python -m installation.evaluation --limit-images 24 --k 2 # a quick run
    python -m installation.evaluation --models DIR --data DIR --out reports/my-run

Writes OUT/report.md, metrics.json, pieces.csv, confusion.png, valence_scatter.png, quality.png
(default OUT: reports/evaluation-<date>/, git-ignored).
"""
from __future__ import annotations

import argparse
import datetime
import shlex
import sys
from pathlib import Path

from installation.errors import UserError

REPO = Path(__file__).resolve().parents[2]


def parse(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m installation.evaluation", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", type=Path, default=REPO / "exported_models", help="exported model folder (manifest.json)")
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data", help="the shared data folder")
    ap.add_argument("--out", type=Path, default=None, help="report folder (default reports/evaluation-<date>/)")
    ap.add_argument("--k", type=int, default=3, help="pieces per image (default 3)")
    ap.add_argument("--limit-images", type=int, default=None, help="use only N held-out images, spread over the list")
    ap.add_argument("--seconds", type=float, default=30.0, help="music per piece (the classifiers' window is 30 s)")
    ap.add_argument("--told-pieces", type=int, default=60,
                    help="pieces per quadrant for the decoder-alone check (told that corner's valence and arousal)")
    ap.add_argument("--adherence-pieces", type=int, default=48,
                    help="pieces per mode for the adherence check (half that per density or loudness target)")
    ap.add_argument("--guidance", type=float, default=None, help="control guidance weight (default: the manifest's)")
    ap.add_argument("--decoder", default=None, choices=["gru", "transformer"], help="the decoder to evaluate (default: the manifest's)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--top-p", type=float, default=0.95)
    ap.add_argument("--batch", type=int, default=256, help="sequences generated together")
    ap.add_argument("--threads", type=int, default=2, help="onnxruntime threads")
    ap.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples")
    ap.add_argument("--permutations", type=int, default=500, help="shuffled-pair permutations")
    ap.add_argument("--no-cache", action="store_true",
                    help="ignore the training caches in .cache/prep (embed images, parse MIDI here)")
    ap.add_argument("--save-midi", action="store_true", help="also write every generated piece to OUT/midi/")
    args = ap.parse_args(argv)
    if args.out is None:
        args.out = REPO / "reports" / f"evaluation-{datetime.date.today().isoformat()}"
    if args.k < 1:
        ap.error("--k must be at least 1")
    return args


def main(argv=None) -> int:
    args = parse(argv)
    # lazy: --help and a bad option answer without loading the pipeline
    from installation.evaluation import pipeline
    from installation.training.data import start_command

    args.command_line = "python -m installation.evaluation " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    try:
        start_command(args.data)
        res = pipeline.run(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    g = res["emotion"]["generated"]
    print(f"report: {args.out / 'report.md'}")
    for k in ("quadrant_agreement", "valence_agreement", "arousal_agreement", "valence_rank_correlation", "judged_matching"):
        r = g[k]
        print(f"  {k:26s} {r['value']:.3f}  95% CI [{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}]  shuffled {r['shuffled']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
