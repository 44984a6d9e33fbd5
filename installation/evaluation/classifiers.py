"""The two judges: a music-emotion classifier and an image-music emotion-correspondence classifier.

Neither ever sees generated music: both train on real labelled music (EMOPIA's
train split and the VGMIDI labelled phrases) and Emotion6 training images only.

MusicEmotionClassifier
    Standardised music features (``music_features``) -> L2-regularised logistic
    regression, one per target: valence (+/-), arousal (high/low), quadrant (Q1..Q4).
    Classes are weighted to balance; C is picked from a small grid on EMOPIA's
    validation split.

CorrespondenceClassifier (the paper's "same emotion or not" judge)
    Image embedding and music features in, P(same quadrant) out. It is factorised:
    an image branch (standardise, PCA 64, logistic regression -> 4 quadrant
    probabilities, trained on all 6 cached views of each training image), a music branch (the quadrant model above) and a logistic
    regression on the two probability vectors, their outer product and their dot
    product. Branch outputs for the training pairs are cross-fitted (5 folds,
    grouped by image / by piece), so the pair model learns from out-of-sample
    probabilities, as it will meet them. An end-to-end MLP on the raw concatenated
    features (the paper's form) was tried and validated lower (about 54% vs 57%).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from installation.measures import music_features as MF

C_GRID = (0.01, 0.1, 1.0)
TARGETS = ("valence", "arousal", "quadrant")


def _lr(C: float, balanced: bool = True):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=3000,
                                                              class_weight="balanced" if balanced else None))


def targets_of(quadrant: np.ndarray) -> dict[str, np.ndarray]:
    """Quadrant 0..3 -> the three targets (valence 1 = positive, arousal 1 = high)."""
    q = np.asarray(quadrant)
    return {"valence": ((q == 0) | (q == 3)).astype(int), "arousal": (q <= 1).astype(int), "quadrant": q.astype(int)}


@dataclass
class Fitted:
    model: object
    C: float
    val_accuracy: float


class MusicEmotionClassifier:
    """Three logistic regressions on music features; ``exclude`` drops feature names (ablations)."""

    def __init__(self, exclude: tuple[str, ...] = (), c_grid=C_GRID):
        self.cols = np.array([i for i, n in enumerate(MF.FEATURE_NAMES) if n not in set(exclude)])
        self.exclude = tuple(exclude)
        self.c_grid = tuple(c_grid)
        self.fitted: dict[str, Fitted] = {}

    def fit(self, X, quadrant, X_val=None, quadrant_val=None) -> "MusicEmotionClassifier":
        X = np.asarray(X)[:, self.cols]
        ys = targets_of(quadrant)
        yv = targets_of(quadrant_val) if X_val is not None else None
        Xv = np.asarray(X_val)[:, self.cols] if X_val is not None else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for t in TARGETS:
                best = None
                for C in (self.c_grid if Xv is not None else (self.c_grid[len(self.c_grid) // 2],)):
                    m = _lr(C).fit(X, ys[t])
                    acc = float(m.score(Xv, yv[t])) if Xv is not None else float("nan")
                    if best is None or acc > best.val_accuracy:
                        best = Fitted(m, C, acc)
                self.fitted[t] = best
        return self

    def predict_proba(self, X) -> dict[str, np.ndarray]:
        """-> valence (n,) P(positive), arousal (n,) P(high), quadrant (n, 4)."""
        X = np.asarray(X)[:, self.cols]
        return {"valence": self.fitted["valence"].model.predict_proba(X)[:, 1],
                "arousal": self.fitted["arousal"].model.predict_proba(X)[:, 1],
                "quadrant": self.fitted["quadrant"].model.predict_proba(X)}

    def predict(self, X) -> dict[str, np.ndarray]:
        p = self.predict_proba(X)
        return {"valence": (p["valence"] > 0.5).astype(int), "arousal": (p["arousal"] > 0.5).astype(int),
                "quadrant": p["quadrant"].argmax(1)}

    def accuracy(self, X, quadrant) -> dict[str, float]:
        pred, ys = self.predict(X), targets_of(quadrant)
        return {t: float(np.mean(pred[t] == ys[t])) for t in TARGETS}


# --- correspondence -------------------------------------------------------------------

def _image_branch(C: float = 1e-3, pca: int = 64, seed: int = 0):
    """Chosen by 5-fold grouped CV on the training images (PCA 32/64/128, C 1e-3/1e-2, with or without
    class weights): 64 components, C = 1e-3, natural class priors."""
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), PCA(pca, random_state=seed),
                         LogisticRegression(C=C, max_iter=3000))


def _crossfit(make, X, y, groups, folds: int = 5) -> np.ndarray:
    """Out-of-fold class probabilities (folds grouped so one image/piece stays in one fold)."""
    from sklearn.model_selection import GroupKFold

    P = np.zeros((len(X), 4))
    for tr, te in GroupKFold(folds).split(X, y, groups):
        P[te] = make().fit(X[tr], y[tr]).predict_proba(X[te])
    return P


def pair_features(p_img: np.ndarray, p_mus: np.ndarray) -> np.ndarray:
    """(n, 4) and (n, 4) quadrant probabilities -> (n, 25) pair features."""
    outer = (p_img[:, :, None] * p_mus[:, None, :]).reshape(len(p_img), -1)
    return np.hstack([p_img, p_mus, outer, (p_img * p_mus).sum(1, keepdims=True)])


def balanced_pairs(img_q: np.ndarray, mus_q: np.ndarray, n: int, rng: np.random.Generator):
    """n (image, music, same) triples: half same-quadrant, half another quadrant chosen uniformly."""
    by_q = [np.flatnonzero(mus_q == q) for q in range(4)]
    ok = [q for q in range(4) if len(by_q[q])]
    a = rng.integers(0, len(img_q), n)
    same = rng.random(n) < 0.5
    b = np.empty(n, np.int64)
    for i in range(n):
        q = int(img_q[a[i]])
        if same[i] and q in ok:
            b[i] = rng.choice(by_q[q])
        else:
            same[i] = False
            b[i] = rng.choice(by_q[rng.choice([c for c in ok if c != q])])
    return a, b, same.astype(int)


class CorrespondenceClassifier:
    def __init__(self, seed: int = 0, pairs: int = 40000):
        self.seed, self.pairs = seed, pairs

    def fit(self, img_emb, img_q, img_groups, music: MusicEmotionClassifier, mus_X, mus_q, mus_groups):
        from sklearn.linear_model import LogisticRegression

        img_emb, img_q = np.asarray(img_emb), np.asarray(img_q)
        mus_X, mus_q = np.asarray(mus_X), np.asarray(mus_q)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            Pi = _crossfit(lambda: _image_branch(seed=self.seed), img_emb, img_q, img_groups)
            cols = music.cols
            C = music.fitted["quadrant"].C
            Pm = _crossfit(lambda: _lr(C), mus_X[:, cols], mus_q, mus_groups)
            self.image = _image_branch(seed=self.seed).fit(img_emb, img_q)
            self.music = music
            a, b, y = balanced_pairs(img_q, mus_q, self.pairs, np.random.default_rng(self.seed))
            self.pair = LogisticRegression(C=1.0, max_iter=3000).fit(pair_features(Pi[a], Pm[b]), y)
        self.image_cv_accuracy = float(np.mean(Pi.argmax(1) == img_q))
        return self

    def image_quadrant_proba(self, img_emb) -> np.ndarray:
        return self.image.predict_proba(np.asarray(img_emb))

    def match_proba(self, img_emb, mus_X) -> np.ndarray:
        """P(same emotion) for row-aligned images and music windows."""
        p_img = self.image_quadrant_proba(img_emb)
        p_mus = self.music.predict_proba(mus_X)["quadrant"]
        return self.pair.predict_proba(pair_features(p_img, p_mus))[:, 1]

    def validate(self, img_emb, img_q, mus_X, mus_q, n: int = 4000, seed: int = 1) -> float:
        """Accuracy on balanced pairs of held-out images and held-out music."""
        a, b, y = balanced_pairs(np.asarray(img_q), np.asarray(mus_q), n, np.random.default_rng(seed))
        p_img = self.image_quadrant_proba(img_emb)[a]
        p_mus = self.music.predict_proba(np.asarray(mus_X)[b])["quadrant"]
        pred = self.pair.predict_proba(pair_features(p_img, p_mus))[:, 1] > 0.5
        return float(np.mean(pred == y))
