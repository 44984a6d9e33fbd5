"""How well any image model can agree with Emotion6's mean ratings: the ceiling, from rating spreads.

    python -m installation.training.emotion_ceiling --data ../shared/data

Emotion6's ``ground_truth.txt`` gives each image's *mean* valence and arousal (1-9 SAM scales) over its
raters, not the single ratings, so a split-half reliability cannot be computed from the file. The classical
test-theory estimate from the rating spreads is used instead: with ``k`` raters per image whose ratings of
one image spread with standard deviation ``sd``, a mean rating carries error variance ``sd^2 / k``, and

- reliability of the mean rating  R = 1 - (sd^2 / k) / Var(mean ratings across images);
- the ceiling, the correlation of a perfect model (the raters' true mean) with the observed means: sqrt(R);
- one rater's agreement with the true mean: sqrt(r1), r1 = T / (T + sd^2), T = Var(means) - sd^2 / k;
- one rater's agreement with the observed mean of the *others* (what a "split" of one gives):
  r1 * sqrt(R_{k-1}) / sqrt(r1) = sqrt(r1 * R_{k-1}).

The per-rater spreads are not in the file: they are taken over the range that picture-rating norms on the
same SAM scales report (IAPS, Lang, Bradley & Cuthbert 2008: per-picture SDs about 1.5-1.8 for valence and
2.0-2.4 for arousal), with k = 15 raters per image (Peng et al. 2015), and k = 10 and 20 as a sensitivity
check. Pearson-based; Spearman ceilings are close to these for near-normal ratings.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from installation.training.data import load_emotion6

REPO = Path(__file__).resolve().parents[2]
SPREADS = {"valence": (1.5, 1.65, 1.8), "arousal": (2.0, 2.2, 2.4)}
RATERS = (10, 15, 20)


def ceiling(var_means: float, sd: float, k: int) -> dict:
    """Reliability of a k-rater mean, the ceiling sqrt(R), and one rater's agreement with the truth and others."""
    err = sd * sd / k
    true = max(var_means - err, 0.0)
    rel = true / var_means
    r1 = true / (true + sd * sd)
    rel_others = true / (true + sd * sd / (k - 1))
    return {"reliability": round(rel, 3), "ceiling_r": round(float(np.sqrt(rel)), 3),
            "one_rater_vs_true_mean": round(float(np.sqrt(r1)), 3),
            "one_rater_vs_others_mean": round(float(np.sqrt(r1 * rel_others)), 3)}


def estimate(data: Path, test_only: bool = False) -> dict:
    images = load_emotion6(data)
    pick = images.test if test_only else np.ones(len(images.rel), bool)
    out = {"images": int(pick.sum()), "raters_assumed": 15, "per_rater_sd_assumed": SPREADS, "targets": {}}
    for name, vals in (("valence", images.valence[pick]), ("arousal", images.arousal[pick])):
        var = float(np.var(vals, ddof=1))
        out["targets"][name] = {"sd_of_means": round(float(np.sqrt(var)), 3),
                                "by_spread": {f"sd={sd}": {f"k={k}": ceiling(var, sd, k) for k in RATERS}
                                              for sd in SPREADS[name]}}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m installation.training.emotion_ceiling", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--held-out", action="store_true", help="the held-out images' spread of means only")
    args = ap.parse_args(argv)
    if not (args.data / "images" / "emotion6" / "ground_truth.txt").is_file():
        print(f"error: --data {args.data}: no images/emotion6/ground_truth.txt there", file=sys.stderr)
        return 2
    print(json.dumps(estimate(args.data, args.held_out), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
