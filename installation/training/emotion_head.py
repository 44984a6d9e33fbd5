"""The image side of the conditioner, fitted as convex models with cross-validated regularisation.

After fine-tuning, the conditioner's two linear heads on the standardised image
features are refit on the training images (every cached view):

- ``emotion``: 4-way quadrant logistic regression, L2 penalty chosen by 5-fold
  cross-validation grouped by image (an image's views stay in one fold), on log-loss;
- ``va``: ridge regression onto standardised valence/arousal, penalty chosen the same way;
- ``sharpness``: the run-time divisor of the quadrant logits, set so that the
  cross-validated predictions have a mean top probability of ``TARGET_CONFIDENCE``.
  A calibrated classifier on 1397 photographs is unsure of most images, and music
  made from near-uniform probabilities is the same for every image; sharpening
  lets the engine commit to the image's most likely emotion, audibly.

The decoder never sees these heads during training (it is fine-tuned on the
music's own quadrant label), so refitting them leaves the decoder valid. The
jointly trained heads from fine-tuning are the starting point, not the result:
Adam on a 1280-wide linear layer for a few hundred steps was measured at 36.8%
held-out quadrant accuracy, a cross-validated L2 logistic regression at 42%.
"""
from __future__ import annotations

import logging

import numpy as np
import torch
from torch.nn import functional as F

from installation.training.data import ImageSet

log = logging.getLogger("installation.training")

L2_GRID = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)      # penalty on the weights, per mean-loss unit
RIDGE_GRID = (100.0, 1000.0, 10000.0, 100000.0, 1000000.0)
FOLDS = 5
TARGET_CONFIDENCE = 0.75


def _logistic(X: torch.Tensor, y: torch.Tensor, l2: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Multinomial logistic regression: mean cross-entropy + l2 * ||W||^2, full-batch L-BFGS."""
    W = torch.zeros(X.shape[1], 4, dtype=X.dtype, requires_grad=True)
    b = torch.zeros(4, dtype=X.dtype, requires_grad=True)
    opt = torch.optim.LBFGS([W, b], lr=1.0, max_iter=300, tolerance_grad=1e-9, tolerance_change=1e-12,
                            history_size=20, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(X @ W + b, y) + l2 * (W * W).sum()
        loss.backward()
        return loss
    opt.step(closure)
    return W.detach(), b.detach()


def _ridge(X: torch.Tensor, Y: torch.Tensor, alpha: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Ridge regression (intercept unpenalised), closed form."""
    mx, my = X.mean(0), Y.mean(0)
    Xc = X - mx
    W = torch.linalg.solve(Xc.T @ Xc + alpha * torch.eye(X.shape[1], dtype=X.dtype), Xc.T @ (Y - my))
    return W, my - mx @ W


def _folds(n_images: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).permutation(n_images) % FOLDS


def fit_heads(conditioner, images: ImageSet, features: np.ndarray, seed: int = 0) -> dict:
    """Refit ``conditioner.emotion``, ``conditioner.va`` and ``conditioner.sharpness`` in place; returns a report."""
    sel = np.flatnonzero(~images.test)
    views = features.shape[1]
    mean = conditioner.feat_mean.double()
    std = conditioner.feat_std.double()
    X_all = (torch.from_numpy(features[sel].reshape(-1, features.shape[-1])).double() - mean) / std
    img = np.repeat(np.arange(len(sel)), views)
    fold = _folds(len(sel), seed)[img]
    q = np.repeat(images.quadrant[sel], views)
    va = np.repeat(np.stack([(images.valence[sel] - 5.0) / 4.0,
                             (images.arousal[sel] - images.arousal_split) / 4.0], 1), views, axis=0)
    has_q = q >= 0

    # quadrant: CV log-loss over the penalty grid
    Xq, yq, fq = X_all[has_q], torch.from_numpy(q[has_q]).long(), fold[has_q]
    cv = {}
    oof_logits = {}
    for l2 in L2_GRID:
        out = torch.zeros(len(yq), 4, dtype=torch.float64)
        for k in range(FOLDS):
            tr, te = torch.from_numpy(fq != k), torch.from_numpy(fq == k)
            W, b = _logistic(Xq[tr], yq[tr], l2)
            out[te] = Xq[te] @ W + b
        cv[l2] = {"log_loss": float(F.cross_entropy(out, yq)), "accuracy": float((out.argmax(1) == yq).double().mean())}
        oof_logits[l2] = out
    best = min(L2_GRID, key=lambda l2: cv[l2]["log_loss"])
    W, b = _logistic(Xq, yq, best)

    # sharpness: mean top probability of the cross-validated predictions reaches the target
    oof = oof_logits[best]
    lo, hi = 1e-3, 1.0
    if float(torch.softmax(oof / hi, 1).max(1).values.mean()) >= TARGET_CONFIDENCE:
        sharp = hi
    else:
        for _ in range(50):
            mid = (lo + hi) / 2
            if float(torch.softmax(oof / mid, 1).max(1).values.mean()) >= TARGET_CONFIDENCE:
                lo = mid
            else:
                hi = mid
        sharp = lo

    # valence/arousal: CV mean squared error over the ridge grid
    Xv, Yv = X_all, torch.from_numpy(va).double()
    cv_va = {}
    for alpha in RIDGE_GRID:
        err = 0.0
        for k in range(FOLDS):
            tr, te = torch.from_numpy(fold != k), torch.from_numpy(fold == k)
            Wr, br = _ridge(Xv[tr], Yv[tr], alpha)
            err += float(((Xv[te] @ Wr + br - Yv[te]) ** 2).sum())
        cv_va[alpha] = err / len(Yv)
    best_alpha = min(RIDGE_GRID, key=cv_va.get)
    Wr, br = _ridge(Xv, Yv, best_alpha)

    with torch.no_grad():
        conditioner.emotion.weight.copy_(W.T.float())
        conditioner.emotion.bias.copy_(b.float())
        conditioner.va.weight.copy_(Wr.T.float())
        conditioner.va.bias.copy_(br.float())
        conditioner.sharpness.fill_(sharp)
    conditioner.cfg.sharpness = round(float(sharp), 6)
    report = {"method": "L2 logistic regression (quadrant) and ridge (valence/arousal) on standardised features of "
                        f"the training images' {views} views; penalties by {FOLDS}-fold CV grouped by image",
              "quadrant_l2": best, "quadrant_cv": {str(k): v for k, v in cv.items()},
              "va_ridge_alpha": best_alpha, "va_cv_mse": {str(k): round(v, 5) for k, v in cv_va.items()},
              "sharpness": round(float(sharp), 6), "target_mean_top_probability": TARGET_CONFIDENCE,
              "training_views": int(len(X_all))}
    log.info("emotion heads refit: quadrant L2 %g (CV accuracy %.3f), ridge alpha %g, sharpness %.3f",
             best, cv[best]["accuracy"], best_alpha, sharp)
    return report
