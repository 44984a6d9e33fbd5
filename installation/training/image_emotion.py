"""The picture read as continuous valence and arousal: ridge regression on image features, exported to ONNX.

    python -m installation.training.image_emotion --data ../shared/data --cache .cache/prep --out exported_models

Targets are the Emotion6 ratings, centred on the quadrant split and scaled:
``v = (V - 5) / 4``, ``a = (A - median A) / 4`` (median over all 1650 images: 5.0).
The held-out images (``stable_percent(rel) < 15``, installation.training.data)
are never used to choose anything; they are scored once at the end.

Model: ridge regression from standardised feature blocks, one penalty per target.
Each block other than the embedding is multiplied by a block weight before the
fit (a group ridge: a weight w divides that block's penalty by w^2), so a handful
of colour statistics are not drowned by 1280 CNN features. Penalties and block
weights are chosen by 5-fold cross-validation on the training images, grouped by
image (an image's six cached views stay in one fold), on the mean squared error
of the out-of-fold centre-view predictions. The fit uses all six views of every
training image as rows (augmentation).

Calibration (the ``valence_arousal`` output): ``z`` is the ridge prediction,
0 = the quadrant split. ``z`` is divided by ``pos`` where it is positive and by
``neg`` where it is negative, then clipped to [-1, 1]; ``pos`` and ``neg`` are the
97.5th percentiles of the positive and of the (magnitudes of the) negative
out-of-fold centre-view predictions of the training images. The map is monotone
and keeps 0, so rank order (Spearman) and which side of the split an image falls
on are the ridge's own; the training images span [-1, 1] with about 2.5% clipped
on each side. Out-of-fold predictions are used because in-sample ridge predictions
are wider than what unseen images get.

With a tuned encoder (installation.training.emotion_tune: an output ``tuned_va``, the reading of an
emotion-tuned branch), the ``+tuned`` variants blend it in: ``(1 - b) * ridge + b * tuned_va`` per target,
``b`` in 0, 0.05, ... 1 by the lowest squared error on the validation slice (fold 0 of the training images,
which the branch was not trained on and where the ridge's out-of-fold predictions come from folds 1-4),
calibrated on the blended validation predictions. The exported feature set is the one with the best summed
Spearman on that slice, the one place where every variant is out-of-sample.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from installation.errors import UserError
from installation.image import image_stats
from installation.image.preprocess import load_rgb, training_views
from installation.manifest import file_sha256
from installation.training.data import ImageSet, load_emotion6

log = logging.getLogger("installation.training.image_emotion")

REPO = Path(__file__).resolve().parents[2]
ALPHAS = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0, 10000.0, 30000.0, 100000.0)
BLOCK_WEIGHTS = {"stats": (3.0, 10.0, 30.0, 100.0), "mid": (1.0, 2.0, 4.0, 8.0, 16.0, 32.0),
                 "embedding": (1.0,)}
FOLDS = 5
CAL_PERCENTILE = 97.5
BOOTSTRAP = 2000
TARGETS = ("valence", "arousal")


# --- data -----------------------------------------------------------------------

def limited(images: ImageSet, limit: int | None) -> tuple[ImageSet, np.ndarray]:
    """The pipeline's quick-check slice (every k-th image, as installation.training.pipeline) and its rows."""
    keep = np.arange(len(images.rel))
    if limit is not None:
        k = max(1, len(images.rel) // limit)
        keep = np.arange(0, len(images.rel), k)[:limit]
    sub = ImageSet([images.rel[i] for i in keep], images.valence[keep], images.arousal[keep],
                   images.quadrant[keep], images.test[keep], images.arousal_split)
    return sub, keep


def targets(images: ImageSet) -> np.ndarray:
    """(n, 2) float64: (V - 5) / 4 and (A - median) / 4."""
    return np.stack([(images.valence - 5.0) / 4.0, (images.arousal - images.arousal_split) / 4.0], 1).astype(np.float64)


CACHE_KEYS = {"embedding": "embedding", "mid": "features_mid", "tuned": "tuned_va"}


def encoder_blocks(images: ImageSet, keep: np.ndarray, cache: Path, work: Path, data: Path,
                   encoder: Path, backbone: str, threads: int = 1) -> dict[str, np.ndarray]:
    """{"embedding": (n, 6, D), "mid": (n, 6, D2)[, "tuned": (n, 6, 2)]}: the encoder's outputs for the six
    cached views of each image ("tuned": the tuned branch's valence/arousal, installation.training.emotion_tune).

    Read from ``features_all_<backbone>.npz`` in ``cache`` or ``work`` when one was made by the same encoder
    for the same images (rows are taken from a full-set file for a slice); else computed into ``work``."""
    import onnxruntime as ort

    digest = file_sha256(encoder)
    name = f"features_all_{backbone}.npz"
    everything = load_emotion6(data).rel
    sliced = f"features_all_{backbone}_{len(images.rel)}.npz"
    for f in (cache / name, work / name, work / sliced):
        if f.exists():
            z = np.load(f, allow_pickle=True)
            if str(z["encoder_sha256"]) != digest:
                continue
            rel = list(z["rel"])
            if rel == images.rel:
                return {k: z[f] for k, f in CACHE_KEYS.items() if f in z}
            if rel == everything:
                return {k: z[f][keep] for k, f in CACHE_KEYS.items() if f in z}
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    sess = ort.InferenceSession(str(encoder), opts, providers=["CPUExecutionProvider"])
    outs = [o.name for o in sess.get_outputs()]
    if "features_mid" not in outs:
        raise UserError(f"{encoder} has no 'features_mid' output; re-export it "
                        "(python -m installation.training prepare) with this version")
    wanted = {"embedding": "embedding", "mid": "features_mid", "tuned": "tuned_va"}
    wanted = {k: v for k, v in wanted.items() if v in outs}
    got = {k: [] for k in wanted}
    t0 = time.time()
    for i, rel in enumerate(images.rel):
        res = sess.run(list(wanted.values()), {"image": np.stack(training_views(load_rgb(data / rel)))})
        for k, r in zip(wanted, res):
            got[k].append(r)
        if i % 200 == 0:
            log.info("encoder features: %d/%d images, %.0f s", i, len(images.rel), time.time() - t0)
    out = {k: np.stack(v).astype(np.float32) for k, v in got.items()}
    work.mkdir(parents=True, exist_ok=True)
    np.savez(work / (name if len(images.rel) == len(everything) else sliced),
             **{CACHE_KEYS[k]: v for k, v in out.items()}, rel=np.array(images.rel, dtype=object),
             encoder_sha256=digest)
    return out


def stats_block(images: ImageSet, data: Path, work: Path) -> np.ndarray:
    """(n, 6, S) colour/texture statistics of the same six views the embedding cache holds (cached)."""
    out = work / f"stats_{len(images.rel)}.npz"
    if out.exists():
        z = np.load(out, allow_pickle=True)
        if list(z["rel"]) == images.rel and list(z["names"]) == list(image_stats.NAMES):
            return z["stats"]
    rows = []
    for rel in images.rel:
        views = training_views(load_rgb(data / rel))
        rows.append([image_stats.window_stats(np.ascontiguousarray(v.transpose(1, 2, 0)).astype(np.uint8))
                     for v in views])
    stats = np.asarray(rows, np.float32)
    work.mkdir(parents=True, exist_ok=True)
    np.savez(out, stats=stats, rel=np.array(images.rel, dtype=object), names=np.array(image_stats.NAMES))
    return stats


# --- the model ------------------------------------------------------------------

@dataclass
class Fit:
    """A fitted linear model on named, standardised, weighted feature blocks, with its calibration."""
    blocks: tuple[str, ...]
    block_weights: dict[str, float]
    mean: dict[str, np.ndarray]
    std: dict[str, np.ndarray]
    W: np.ndarray                        # (sum D, 2)
    b: np.ndarray                        # (2,)
    alphas: tuple[float, float]
    pos: np.ndarray = field(default_factory=lambda: np.ones(2))
    neg: np.ndarray = field(default_factory=lambda: np.ones(2))
    blend: np.ndarray | None = None      # (2,): share of the tuned branch's reading (feats["tuned"]) per target

    def design(self, feats: dict[str, np.ndarray]) -> np.ndarray:
        return np.concatenate([(feats[k] - self.mean[k]) / self.std[k] * self.block_weights[k]
                               for k in self.blocks], -1)

    def raw(self, feats: dict[str, np.ndarray]) -> np.ndarray:
        z = self.design(feats) @ self.W + self.b
        if self.blend is not None:
            z = (1.0 - self.blend) * z + self.blend * feats["tuned"]
        return z

    @property
    def inputs(self) -> tuple[str, ...]:
        return self.blocks + (("tuned",) if self.blend is not None else ())

    def calibrate(self, z: np.ndarray) -> np.ndarray:
        return np.clip(np.where(z > 0, z / self.pos, z / self.neg), -1.0, 1.0)

    def predict(self, feats: dict[str, np.ndarray]) -> np.ndarray:
        return self.calibrate(self.raw(feats))


def standardiser(block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    flat = block.reshape(-1, block.shape[-1]).astype(np.float64)
    return flat.mean(0), np.maximum(flat.std(0), 1e-6)


def folds_of(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).permutation(n) % FOLDS


def image_rows(feats: dict[str, np.ndarray], blocks, weights, mean, std) -> np.ndarray:
    """(n, 6, d) blocks -> (n, sum d): standardised, weighted, averaged over the views."""
    return np.concatenate([((feats[b] - mean[b]) / std[b]).mean(1) * weights[b] for b in blocks], -1)


def cross_validate(feats: dict[str, np.ndarray], y: np.ndarray, blocks: tuple[str, ...],
                   grid: list[dict[str, float]], fold: np.ndarray) -> dict:
    """Out-of-fold centre-view predictions for every (block weights, penalty): {(grid index, alpha): (n, 2)}.

    Ridge in its dual form on the training images' view-averaged rows: the kernel of weighted blocks is the
    weighted sum of per-block kernels, so each weight setting costs one n x n eigendecomposition.
    Standardisation is refit inside each fold, so nothing leaks from the left-out images."""
    n = len(y)
    oof = {(g, a): np.zeros((n, 2)) for g in range(len(grid)) for a in ALPHAS}
    for k in range(FOLDS):
        tr, te = fold != k, fold == k
        K, Kt = {}, {}
        for b in blocks:
            m, s = standardiser(feats[b][tr])
            X = ((feats[b][tr] - m) / s).mean(1)
            mu = X.mean(0)
            X -= mu
            Xte = (feats[b][te][:, 0] - m) / s - mu
            K[b], Kt[b] = X @ X.T, Xte @ X.T
        ym = y[tr].mean(0)
        for g, w in enumerate(grid):
            ev, U = np.linalg.eigh(sum(w[b] ** 2 * K[b] for b in blocks))
            kt = sum(w[b] ** 2 * Kt[b] for b in blocks)
            proj = U.T @ (y[tr] - ym)
            for a in ALPHAS:
                oof[(g, a)][te] = kt @ (U @ (proj / (np.maximum(ev, 0) + a)[:, None])) + ym
    return oof


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(x, y).statistic)


def bootstrap_ci(x: np.ndarray, y: np.ndarray, n: int = BOOTSTRAP, seed: int = 0) -> tuple[float, float]:
    """95% percentile interval of Spearman's rho over images resampled with replacement."""
    from scipy.stats import rankdata

    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(x), size=(n, len(x)))
    rx = rankdata(x[idx], axis=1)
    ry = rankdata(y[idx], axis=1)
    rx -= rx.mean(1, keepdims=True)
    ry -= ry.mean(1, keepdims=True)
    r = (rx * ry).sum(1) / np.sqrt((rx * rx).sum(1) * (ry * ry).sum(1) + 1e-300)
    lo, hi = np.percentile(r, [2.5, 97.5])
    return float(lo), float(hi)


def score(pred: np.ndarray, y: np.ndarray) -> dict:
    """Held-out figures for (n, 2) predictions against (n, 2) targets."""
    out = {}
    for j, name in enumerate(TARGETS):
        rho = spearman(pred[:, j], y[:, j])
        lo, hi = bootstrap_ci(pred[:, j], y[:, j])
        side = y[:, j] != 0
        agree = float(np.mean(np.sign(pred[side, j]) == np.sign(y[side, j]))) if side.any() else float("nan")
        out[name] = {"spearman": round(rho, 4), "ci95": [round(lo, 4), round(hi, 4)], "sign_agreement": round(agree, 4)}
    return out


@dataclass(frozen=True)
class Variant:
    """A feature set: the blocks; the first has weight 1, the others' weights are chosen by CV (BLOCK_WEIGHTS)."""
    name: str
    blocks: tuple[str, ...]
    tuned: bool = False                  # blended with the tuned encoder branch's reading (encoder output tuned_va)

    @property
    def needs(self) -> tuple[str, ...]:
        return self.blocks + (("tuned",) if self.tuned else ())

    def grid(self) -> list[dict[str, float]]:
        import itertools

        extra = self.blocks[1:]
        return [{self.blocks[0]: 1.0, **dict(zip(extra, ws))}
                for ws in itertools.product(*[BLOCK_WEIGHTS[b] for b in extra])]


def select(feats: dict[str, np.ndarray], y: np.ndarray, variant: Variant, fold: np.ndarray) -> list[dict]:
    """Grouped CV over penalties and block weights, per target (lowest out-of-fold MSE of centre views)."""
    grid = variant.grid()
    oof = cross_validate(feats, y, variant.blocks, grid, fold)
    best = []
    for j in range(2):
        key = min(oof, key=lambda k: float(((oof[k][:, j] - y[:, j]) ** 2).mean()))
        best.append({"weights": grid[key[0]], "alpha": float(key[1]),
                     "cv_mse": float(((oof[key][:, j] - y[:, j]) ** 2).mean()),
                     "cv_spearman": spearman(oof[key][:, j], y[:, j]), "oof": oof[key][:, j]})
    return best


def fit(feats: dict[str, np.ndarray], y: np.ndarray, blocks: tuple[str, ...], weights: tuple[dict, dict],
        alphas: tuple[float, float], oof: np.ndarray) -> Fit:
    """The final ridge on all training images (view-averaged rows), one penalty and weight set per target;
    calibration from the out-of-fold predictions. Both targets share the design of valence's block weights
    (a block weight is a column scaling, so target 2's coefficients are rescaled into it)."""
    mean, std = {}, {}
    for b in blocks:
        mean[b], std[b] = standardiser(feats[b])
    d = sum(len(mean[b]) for b in blocks)
    W, c = np.zeros((d, 2)), np.zeros(2)
    for j in range(2):
        X = image_rows(feats, blocks, weights[j], mean, std)
        mu = X.mean(0)
        Xc = X - mu
        yc = y[:, j] - y[:, j].mean()
        if d > len(Xc):                                    # dual form: n x n
            Wj = Xc.T @ np.linalg.solve(Xc @ Xc.T + alphas[j] * np.eye(len(Xc)), yc)
        else:
            Wj = np.linalg.solve(Xc.T @ Xc + alphas[j] * np.eye(d), Xc.T @ yc)
        scale = np.concatenate([np.full(len(mean[b]), weights[j][b] / weights[0][b]) for b in blocks])
        W[:, j], c[j] = Wj * scale, y[:, j].mean() - mu @ Wj
    model = Fit(tuple(blocks), dict(weights[0]), mean, std, W, c, tuple(alphas))
    pos = [np.percentile(oof[oof[:, j] > 0, j], CAL_PERCENTILE) if (oof[:, j] > 0).any() else 1.0 for j in range(2)]
    neg = [np.percentile(-oof[oof[:, j] < 0, j], CAL_PERCENTILE) if (oof[:, j] < 0).any() else 1.0 for j in range(2)]
    model.pos, model.neg = np.maximum(np.array(pos), 1e-6), np.maximum(np.array(neg), 1e-6)
    return model


# --- export -----------------------------------------------------------------------

INPUT_NAMES = {"embedding": "embedding", "stats": "stats", "mid": "features_mid", "tuned": "tuned_va"}


def export_onnx(model: Fit, path: Path) -> dict:
    """image_emotion.onnx: the blocks as named inputs -> 'valence_arousal' (N, 2) in [-1, 1]; checked against numpy."""
    import onnxruntime as ort
    import torch

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            for b in model.blocks:
                self.register_buffer(f"m_{b}", torch.tensor(model.mean[b], dtype=torch.float32))
                self.register_buffer(f"s_{b}", torch.tensor(model.block_weights[b] / model.std[b], dtype=torch.float32))
            self.register_buffer("W", torch.tensor(model.W, dtype=torch.float32))
            self.register_buffer("b", torch.tensor(model.b, dtype=torch.float32))
            self.register_buffer("pos", torch.tensor(1.0 / model.pos, dtype=torch.float32))
            self.register_buffer("neg", torch.tensor(1.0 / model.neg, dtype=torch.float32))
            if model.blend is not None:
                self.register_buffer("blend", torch.tensor(model.blend, dtype=torch.float32))

        def forward(self, *xs):
            x = torch.cat([(x - getattr(self, f"m_{b}")) * getattr(self, f"s_{b}") for x, b in zip(xs, model.blocks)], -1)
            z = x @ self.W + self.b
            if model.blend is not None:
                z = (1.0 - self.blend) * z + self.blend * xs[-1]
            return torch.clamp(torch.where(z > 0, z * self.pos, z * self.neg), -1.0, 1.0)

    path.parent.mkdir(parents=True, exist_ok=True)
    names = [INPUT_NAMES[b] for b in model.inputs]
    dims = {**{b: len(model.mean[b]) for b in model.blocks}, "tuned": 2}
    dummy = tuple(torch.randn(2, dims[b]) for b in model.inputs)
    torch.onnx.export(Net().eval(), dummy, str(path), input_names=names, output_names=["valence_arousal"],
                      dynamic_axes={**{n: {0: "batch"} for n in names}, "valence_arousal": {0: "batch"}},
                      opset_version=17, dynamo=False)
    rng = np.random.default_rng(1)
    feats = {b: (model.mean[b] + model.std[b] * rng.standard_normal((16, dims[b]))).astype(np.float32)
             for b in model.blocks}
    feats["tuned"] = (0.3 * rng.standard_normal((16, 2))).astype(np.float32)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {INPUT_NAMES[b]: feats[b] for b in model.inputs})[0]
    err = float(np.abs(got - model.predict(feats)).max())
    if err > 1e-4:
        raise RuntimeError(f"{path}: ONNX differs from the numpy model by {err}")
    return {"inputs": {INPUT_NAMES[b]: ["batch", dims[b]] for b in model.inputs},
            "outputs": {"valence_arousal": ["batch", 2]}, "parity_max_abs_err": err}


# --- the whole run ------------------------------------------------------------------

VARIANTS = {v.name: v for v in (
    Variant("embedding", ("embedding",)),
    Variant("embedding+stats", ("embedding", "stats")),
    Variant("embedding+mid", ("embedding", "mid")),
    Variant("embedding+mid+stats", ("embedding", "mid", "stats")),
    Variant("stats", ("stats",)),
    Variant("mid+stats", ("mid", "stats")),
    Variant("embedding+mid+stats+tuned", ("embedding", "mid", "stats"), tuned=True),
    Variant("embedding+mid+tuned", ("embedding", "mid"), tuned=True),
)}
VAL_FOLD_SEED = 0                        # fold 0 of folds_of(training images, 0): the tuned branch's validation slice
BLENDS = np.round(np.arange(0.0, 1.0001, 0.05), 2)


def choose_blend(ridge_val: np.ndarray, tuned_val: np.ndarray, y_val: np.ndarray) -> np.ndarray:
    """(2,) share of the tuned reading per target: the lowest mean squared error of
    (1 - b) * ridge + b * tuned on the validation slice (where both are out-of-sample)."""
    return np.array([min(BLENDS, key=lambda b: float((((1 - b) * ridge_val[:, j] + b * tuned_val[:, j]
                                                         - y_val[:, j]) ** 2).mean())) for j in range(2)])


def run(args) -> dict:
    """Fit every variant whose inputs are available, pick on the validation slice, score on held-out, export."""
    t0 = time.time()
    images, keep = limited(load_emotion6(args.data), args.limit_images)
    work = args.work
    feats = encoder_blocks(images, keep, args.cache, work, args.data, args.encoder, args.backbone)
    feats["stats"] = stats_block(images, args.data, work)
    y = targets(images)
    tr, te = ~images.test, images.test
    train = {k: v[tr] for k, v in feats.items()}
    ytr, yte = y[tr], y[te]
    fold = folds_of(int(tr.sum()), args.seed)

    report = {"data": {"train_images": int(tr.sum()), "test_images": int(te.sum()), "views_per_image": 6,
                       "arousal_split": float(images.arousal_split)}, "variants": {}}
    val = folds_of(int(tr.sum()), VAL_FOLD_SEED) == 0
    if "tuned" in feats:
        tv = train["tuned"][val][:, 0]
        report["tuned_branch_alone"] = {"val_slice_spearman": [round(spearman(tv[:, j], ytr[val, j]), 4) for j in range(2)],
                                        "heldout_centre": score(feats["tuned"][te][:, 0], yte)}
        log.info("tuned branch alone: %s", json.dumps(report["tuned_branch_alone"]))
    wanted = [v for v in args.variants.split(",")]
    chosen, fits, selected = None, {}, {}
    for name in wanted:
        v = VARIANTS[name]
        if not all(b in feats for b in v.needs):
            continue
        if v.blocks not in selected:
            selected[v.blocks] = select(train, ytr, v, fold)
        pt = selected[v.blocks]
        oof = np.stack([pt[0]["oof"], pt[1]["oof"]], 1)
        blend = None
        if v.tuned:                      # blend on the validation slice; calibrate on its blended predictions
            blend = choose_blend(oof[val], train["tuned"][val][:, 0], ytr[val])
            val_pred = (1 - blend) * oof[val] + blend * train["tuned"][val][:, 0]
            model = fit(train, ytr, v.blocks, (pt[0]["weights"], pt[1]["weights"]),
                        (pt[0]["alpha"], pt[1]["alpha"]), val_pred)
            model.blend = blend
        else:
            val_pred = oof[val]
            model = fit(train, ytr, v.blocks, (pt[0]["weights"], pt[1]["weights"]),
                        (pt[0]["alpha"], pt[1]["alpha"]), oof)
        test_feats = {b: feats[b][te] for b in model.inputs}
        centre = model.predict({b: f[:, 0] for b, f in test_feats.items()})
        mean6 = model.calibrate(np.mean([model.raw({b: f[:, i] for b, f in test_feats.items()}) for i in range(6)], 0))
        val_rho = [spearman(val_pred[:, j], ytr[val, j]) for j in range(2)]
        entry = {"blocks": list(model.inputs),
                 "alpha": {t: pt[j]["alpha"] for j, t in enumerate(TARGETS)},
                 "block_weights": {t: pt[j]["weights"] for j, t in enumerate(TARGETS)},
                 "cv": {t: {"mse": round(pt[j]["cv_mse"], 5), "spearman": round(pt[j]["cv_spearman"], 4)}
                        for j, t in enumerate(TARGETS)},
                 "val_slice_spearman": {t: round(val_rho[j], 4) for j, t in enumerate(TARGETS)},
                 "calibration": {"pos": model.pos.round(5).tolist(), "neg": model.neg.round(5).tolist()},
                 "heldout_centre": score(centre, yte), "heldout_mean_of_6_views": score(mean6, yte)}
        if blend is not None:
            entry["tuned_share"] = {t: float(blend[j]) for j, t in enumerate(TARGETS)}
        report["variants"][name] = entry
        fits[name] = model
        log.info("%-26s CV rho V %.3f A %.3f | val slice V %.3f A %.3f | held-out centre V %.3f %s A %.3f %s", name,
                 pt[0]["cv_spearman"], pt[1]["cv_spearman"], *val_rho,
                 entry["heldout_centre"]["valence"]["spearman"], entry["heldout_centre"]["valence"]["ci95"],
                 entry["heldout_centre"]["arousal"]["spearman"], entry["heldout_centre"]["arousal"]["ci95"])
        key = sum(val_rho)
        if name in args.export_from.split(",") and (chosen is None or key > chosen[1] + args.min_cv_gain):
            chosen = (name, key)
    if chosen is None:
        raise UserError("no variant to export: --export-from names none of the fitted --variants")
    name = chosen[0]
    model = fits[name]
    info = export_onnx(model, args.out / "image_emotion.onnx")
    entry = {"file": "image_emotion.onnx", **info, "sha256": file_sha256(args.out / "image_emotion.onnx"), "opset": 17,
             "bytes": (args.out / "image_emotion.onnx").stat().st_size,
             "feature_set": name, "stats_names": list(__import__("installation.image.image_stats", fromlist=["NAMES"]).NAMES)
             if "stats" in model.blocks else [],
             "targets": "((V - 5) / 4, (A - median A) / 4) of Emotion6, 0 = the quadrant split",
             "calibration": f"z / pos where z > 0, z / neg where z < 0, clipped to [-1, 1]; pos, neg = the "
                            f"{CAL_PERCENTILE}th percentiles of |out-of-sample centre-view predictions| of the "
                            "training images on each side (ridge alone: out-of-fold, all training images; blended "
                            "with tuned_va: the validation slice)",
             "alpha": report["variants"][name]["alpha"], "block_weights": report["variants"][name]["block_weights"],
             "calibration_values": report["variants"][name]["calibration"],
             "selection": f"ridge penalties and block weights: {FOLDS}-fold CV on training images grouped by image "
                          "(MSE of centre views); the tuned branch's share and the feature set: the validation "
                          "slice (fold 0 of the training images, which the branch was not trained on); "
                          "held-out images only scored",
             "metrics": {"heldout": report["variants"][name]["heldout_centre"]},
             "arousal_split": float(images.arousal_split), "encoder_sha256": file_sha256(args.encoder)}
    if model.blend is not None:
        entry["tuned_share"] = report["variants"][name]["tuned_share"]
    report["chosen"] = name
    report["manifest_entry"] = entry
    report["seconds"] = round(time.time() - t0, 1)
    (args.out / "image_emotion_report.json").write_text(json.dumps(report, indent=2) + "\n")
    if args.manifest:
        add_to_manifest(args.out / "manifest.json", entry)
    log.info("exported %s (%s) to %s in %.0f s", entry["file"], name, args.out, report["seconds"])
    return report


def add_to_manifest(path: Path, entry: dict) -> None:
    """Add (or replace) the image_emotion entry of an existing manifest.json."""
    if not path.exists():
        log.info("no %s: manifest not updated", path)
        return
    data = json.loads(path.read_text())
    data["models"]["image_emotion"] = entry
    path.write_text(json.dumps(data, indent=2) + "\n")


def parse(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m installation.training.image_emotion", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data", help="the shared data folder")
    ap.add_argument("--cache", type=Path, default=REPO / ".cache" / "prep",
                    help="the prepare step's cache (features_<backbone>.npz is read when present)")
    ap.add_argument("--work", type=Path, default=REPO / ".cache" / "image_emotion",
                    help="where this step caches image statistics (and features it has to compute)")
    ap.add_argument("--out", type=Path, default=REPO / "exported_models", help="where image_emotion.onnx goes")
    ap.add_argument("--encoder", type=Path, default=None, help="encoder ONNX (default: OUT/encoder.onnx)")
    ap.add_argument("--backbone", default="efficientnet_lite0", choices=["efficientnet_lite0", "resnet18"])
    ap.add_argument("--variants", default=",".join(VARIANTS), help="feature sets to fit and score")
    ap.add_argument("--export-from", default="embedding,embedding+stats,embedding+mid,embedding+mid+stats,"
                                              "embedding+mid+stats+tuned,embedding+mid+tuned",
                    help="variants that may be exported (the best summed Spearman of valence and arousal on the "
                         "validation slice, fold 0 of the training images, wins)")
    ap.add_argument("--min-cv-gain", type=float, default=0.0, help="a later variant must beat by this much")
    ap.add_argument("--no-manifest", dest="manifest", action="store_false", help="do not touch OUT/manifest.json")
    ap.add_argument("--limit-images", type=int, default=None, help="use only N images (a quick pipeline check)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    args.encoder = args.encoder or args.out / "encoder.onnx"
    return args


def main(argv=None) -> int:
    args = parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for what, p in (("data folder", args.data), ("encoder", args.encoder)):
        if not p.exists():
            print(f"error: {what} {p} not found; pass --data/--out/--encoder", file=sys.stderr)
            return 2
    bad = [v for v in args.variants.split(",") if v not in VARIANTS]
    if bad:
        print(f"error: --variants: unknown {bad}; choose from {sorted(VARIANTS)}", file=sys.stderr)
        return 2
    try:
        import torch
        torch.set_num_threads(1)
    except ImportError:
        pass
    try:
        report = run(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({k: report[k] for k in ("chosen",)} |
                     {"variants": {n: {"heldout_centre": e["heldout_centre"], "heldout_mean_of_6_views":
                                       e["heldout_mean_of_6_views"]} for n, e in report["variants"].items()}},
                     indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
