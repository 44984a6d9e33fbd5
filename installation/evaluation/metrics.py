"""The evaluation's statistics, as small pure functions with hand-checkable answers.

Conventions: one row per image; an image with K generated pieces carries a (n, K)
array, and per-image figures average over its K pieces, so every interval resamples
images (the unit the aims are about), not pieces.
"""
from __future__ import annotations

from typing import Callable

import numpy as np


def agreement(a, b) -> float:
    """Share of positions where labels agree; ``b`` may be (n,) or (n, K) against (n,) ``a``."""
    a, b = np.asarray(a), np.asarray(b)
    if a.size == 0:
        return float("nan")
    if b.ndim == a.ndim + 1:
        a = a[:, None]
    return float(np.mean(a == b))


def chance_agreement(a, b, classes=None) -> float:
    """Agreement expected if the two labelings were independent with their own marginal
    frequencies: sum over classes of p_a(c) * p_b(c)."""
    a, b = np.asarray(a).ravel(), np.asarray(b).ravel()
    if a.size == 0 or b.size == 0:
        return float("nan")
    classes = np.union1d(a, b) if classes is None else np.asarray(classes)
    pa = np.array([(a == c).mean() for c in classes])
    pb = np.array([(b == c).mean() for c in classes])
    return float((pa * pb).sum())


def majority_baseline(train_labels, test_labels) -> float:
    """Accuracy of always answering the training set's most frequent class."""
    vals, counts = np.unique(np.asarray(train_labels), return_counts=True)
    return float(np.mean(np.asarray(test_labels) == vals[counts.argmax()]))


def rank(x) -> np.ndarray:
    """Ranks 1..n, ties sharing their average rank."""
    x = np.asarray(x, dtype=float)
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x))
    sx = x[order]
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and sx[j + 1] == sx[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(x, y) -> float:
    """Spearman's rank correlation (Pearson's r of average ranks); NaN when either side is constant."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) != len(y):
        raise ValueError(f"spearman: lengths differ ({len(x)} vs {len(y)})")
    if len(x) < 2:
        return float("nan")
    rx, ry = rank(x), rank(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    den = np.sqrt((rx ** 2).sum() * (ry ** 2).sum())
    return float((rx * ry).sum() / den) if den > 0 else float("nan")


def bootstrap_ci(stat: Callable[[np.ndarray], float], n: int, *, resamples: int = 2000, seed: int = 0,
                 level: float = 0.95) -> tuple[float, float, float]:
    """(estimate, low, high): ``stat(idx)`` on all n items, and the percentile interval of
    ``stat`` over ``resamples`` resamples of item indices with replacement.

    Resamples where the statistic is undefined (NaN) are left out; NaNs throughout if
    there are no items or the statistic is never defined.
    """
    if n == 0:
        return float("nan"), float("nan"), float("nan")
    est = float(stat(np.arange(n)))
    rng = np.random.default_rng(seed)
    vals = np.array([stat(rng.integers(0, n, n)) for _ in range(resamples)], float)
    vals = vals[np.isfinite(vals)]
    if vals.size == 0:
        return est, float("nan"), float("nan")
    a = (1 - level) / 2
    return est, float(np.quantile(vals, a)), float(np.quantile(vals, 1 - a))


def shuffled(stat: Callable[[np.ndarray], float], n: int, *, permutations: int = 500, seed: int = 0,
             level: float = 0.95) -> tuple[float, float, float]:
    """The control: ``stat(perm)`` where image i is paired with the music of image perm[i].

    Returns the mean over random permutations and the central ``level`` range.
    """
    if n == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    vals = np.array([stat(rng.permutation(n)) for _ in range(permutations)], float)
    vals = vals[np.isfinite(vals)]
    if vals.size == 0:
        return float("nan"), float("nan"), float("nan")
    a = (1 - level) / 2
    return float(vals.mean()), float(np.quantile(vals, a)), float(np.quantile(vals, 1 - a))


def permutation_p(observed: float, stat: Callable[[np.ndarray], float], n: int, *, permutations: int = 500,
                  seed: int = 0) -> float:
    """One-sided p-value: the share of shuffled pairings scoring at least ``observed`` (add-one smoothed)."""
    rng = np.random.default_rng(seed)
    vals = np.array([stat(rng.permutation(n)) for _ in range(permutations)], float)
    return float((1 + np.sum(vals >= observed - 1e-12)) / (1 + len(vals)))


def icc1(values) -> float:
    """Intra-class correlation ICC(1) of an (n groups, K) array (one-way ANOVA):
    (MSB - MSW) / (MSB + (K - 1) MSW). Here: how much of the variation in a music
    feature comes from *which image* the K pieces were made for (1 = all of it;
    about 0 = none, the pieces of one image differ as much as pieces of different images)."""
    x = np.asarray(values, float)
    n, k = x.shape
    if n < 2 or k < 2:
        return float("nan")
    means = x.mean(1)
    msb = k * ((means - x.mean()) ** 2).sum() / (n - 1)
    msw = ((x - means[:, None]) ** 2).sum() / (n * (k - 1))
    den = msb + (k - 1) * msw
    return float((msb - msw) / den) if den > 0 else float("nan")


# --- distribution overlap (musical quality) ---------------------------------------------

def common_bins(a, b, bins: int = 30, lo_q: float = 0.0, hi_q: float = 1.0) -> np.ndarray:
    """Shared bin edges spanning both samples (quantiles lo_q..hi_q of the pooled values)."""
    pooled = np.concatenate([np.ravel(a), np.ravel(b)]).astype(float)
    lo, hi = np.quantile(pooled, lo_q), np.quantile(pooled, hi_q)
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    return np.linspace(lo, hi, bins + 1)


def overlap_area(a, b, bins: int | np.ndarray = 30) -> float:
    """Overlapping area of two samples' normalised histograms on shared bins, in [0, 1]
    (Yang & Lerch 2018 use the overlap of distributions): 1 = identical, 0 = disjoint.
    Values outside explicit edges are counted in the end bins."""
    a, b = np.ravel(np.asarray(a, float)), np.ravel(np.asarray(b, float))
    if a.size == 0 or b.size == 0:
        return float("nan")
    edges = common_bins(a, b, bins) if np.isscalar(bins) else np.asarray(bins, float)
    ha = np.histogram(np.clip(a, edges[0], edges[-1]), edges)[0] / a.size
    hb = np.histogram(np.clip(b, edges[0], edges[-1]), edges)[0] / b.size
    return float(np.minimum(ha, hb).sum())


def histogram_overlap(p, q) -> float:
    """Overlap of two discrete distributions (e.g. pitch-class histograms): sum of min(p, q)
    after normalising each to sum 1."""
    p, q = np.asarray(p, float), np.asarray(q, float)
    if p.sum() <= 0 or q.sum() <= 0:
        return float("nan")
    return float(np.minimum(p / p.sum(), q / q.sum()).sum())
