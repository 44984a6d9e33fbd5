"""The paper's own FI sample images as an extra check of the image side (reported, never trained on).

    python -m installation.training.fi_check --models exported_models

``../shared/data/seed_samples/images/train/<emotion>/`` holds 15 FI images (You et al. 2016), three per
emotion word, labelled by FI. Each word has a Russell quadrant (data README): amusement and excitement
Q1 (pleasant, lively), anger Q2 (unpleasant, lively), sadness Q3 (unpleasant, calm), contentment Q4
(pleasant, calm). The runtime path (ImageEncoder + ImageEmotion of a models folder) reads each picture; the
check counts the pictures whose valence and whose arousal fall on their word's side of 0.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from installation import manifest
from installation.errors import UserError
from installation.image.emotion import ImageEmotion
from installation.image.encoder import ImageEncoder
from installation.image.preprocess import load_rgb

REPO = Path(__file__).resolve().parents[2]
QUADRANT_SIGNS = {"amusement": (1, 1), "excitement": (1, 1), "anger": (-1, 1), "sadness": (-1, -1),
                  "contentment": (1, -1)}


def check(models: Path, data: Path) -> dict:
    m = manifest.load(models)
    enc, emo = ImageEncoder(m), ImageEmotion(m)
    rows = []
    for word, (sv, sa) in QUADRANT_SIGNS.items():
        for f in sorted((data / "seed_samples" / "images" / "train" / word).glob("*.jpg")):
            v, a = (float(x) for x in emo.read(enc, [load_rgb(f)])[1][0])
            rows.append({"image": f.name, "word": word, "valence": round(v, 3), "arousal": round(a, 3),
                         "valence_side_right": bool(np.sign(v) == sv), "arousal_side_right": bool(np.sign(a) == sa)})
    by_word = {w: {"valence": round(float(np.mean([r["valence"] for r in rows if r["word"] == w])), 3),
                   "arousal": round(float(np.mean([r["arousal"] for r in rows if r["word"] == w])), 3)}
               for w in QUADRANT_SIGNS}
    return {"images": len(rows), "valence_side_right": sum(r["valence_side_right"] for r in rows),
            "arousal_side_right": sum(r["arousal_side_right"] for r in rows), "by_word": by_word, "rows": rows}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m installation.training.fi_check", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", type=Path, default=REPO / "exported_models")
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    args = ap.parse_args(argv)
    if not (args.data / "seed_samples" / "images" / "train").is_dir():
        print(f"error: --data {args.data}: no seed_samples/images/train folder there", file=sys.stderr)
        return 2
    try:
        res = check(args.models, args.data)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({k: v for k, v in res.items() if k != "rows"}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
