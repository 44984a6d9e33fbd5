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

The shipped conditioner's reading is scored beside it as the baseline:
valence = p(Q1) + p(Q4) - p(Q2) - p(Q3), arousal = p(Q1) + p(Q2) - p(Q3) - p(Q4).
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from installation.training.data import ImageSet, load_emotion6

log = logging.getLogger("installation.training.image_emotion")

REPO = Path(__file__).resolve().parents[2]
ALPHAS = (30.0, 100.0, 300.0, 1000.0, 3000.0, 10000.0, 30000.0, 100000.0)
BLOCK_WEIGHTS = (1.0, 3.0, 10.0, 30.0)
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


def embedding_block(images: ImageSet, keep: np.ndarray, cache: Path, work: Path, data: Path,
                    encoder: Path, backbone: str) -> np.ndarray:
    """(n, 6, D) encoder features: rows of the prepare step's cache when it holds them, else computed."""
    from installation.training.features import cache_features

    full = cache / f"features_{backbone}.npz"
    if full.exists():
        z = np.load(full, allow_pickle=True)
        everything = load_emotion6(data).rel
        if list(z["rel"]) == everything:
            log.info("embedding features from %s", full)
            return z["features"][keep]
    suffix = "" if len(keep) == len(load_emotion6(data).rel) else f"_limit{len(keep)}"
    return cache_features(encoder, data, images.rel, work / f"features_{backbone}{suffix}.npz")


def stats_block(images: ImageSet, data: Path, work: Path) -> np.ndarray:
    """(n, 6, S) colour/texture statistics of the same six views the embedding cache holds (cached)."""
    from installation import image_stats
    from installation.preprocess import load_rgb, training_views

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

    def design(self, feats: dict[str, np.ndarray]) -> np.ndarray:
        return np.concatenate([(feats[k] - self.mean[k]) / self.std[k] * self.block_weights[k]
                               for k in self.blocks], -1)

    def raw(self, feats: dict[str, np.ndarray]) -> np.ndarray:
        return self.design(feats) @ self.W + self.b

    def calibrate(self, z: np.ndarray) -> np.ndarray:
        return np.clip(np.where(z > 0, z / self.pos, z / self.neg), -1.0, 1.0)

    def predict(self, feats: dict[str, np.ndarray]) -> np.ndarray:
        return self.calibrate(self.raw(feats))


def standardiser(block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    flat = block.reshape(-1, block.shape[-1]).astype(np.float64)
    return flat.mean(0), np.maximum(flat.std(0), 1e-6)


class RidgePath:
    """Ridge fits of one design for many penalties at once, through one eigendecomposition."""

    def __init__(self, X: np.ndarray, Y: np.ndarray):
        self.mx, self.my = X.mean(0), Y.mean(0)
        Xc = X - self.mx
        self.s, self.V = np.linalg.eigh(Xc.T @ Xc)
        self.proj = self.V.T @ (Xc.T @ (Y - self.my))          # (d, 2)

    def coef(self, alpha: float) -> tuple[np.ndarray, np.ndarray]:
        W = self.V @ (self.proj / (self.s + alpha)[:, None])
        return W, self.my - self.mx @ W


def _design(feats, blocks, weights, mean, std, rows=None):
    parts = []
    for k in blocks:
        f = feats[k] if rows is None else feats[k][rows]
        parts.append((f - mean[k]) / std[k] * weights[k])
    return np.concatenate(parts, -1)


def folds_of(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).permutation(n) % FOLDS


def cross_validate(feats: dict[str, np.ndarray], y: np.ndarray, blocks: tuple[str, ...],
                   weights: dict[str, float], fold: np.ndarray) -> dict:
    """Out-of-fold centre-view predictions for every penalty: {alpha: (n, 2)}.

    Standardisation is refit inside each fold, so nothing leaks from the left-out images."""
    n, views = len(y), feats[blocks[0]].shape[1]
    oof = {a: np.zeros((n, 2)) for a in ALPHAS}
    for k in range(FOLDS):
        tr, te = fold != k, fold == k
        mean, std = {}, {}
        for b in blocks:
            mean[b], std[b] = standardiser(feats[b][tr])
        X = _design(feats, blocks, weights, mean, std, tr).reshape(-1, sum(len(mean[b]) for b in blocks))
        path = RidgePath(X, np.repeat(y[tr], views, axis=0))
        Xte = _design({b: feats[b][te][:, 0] for b in blocks}, blocks, weights, mean, std)
        for a in ALPHAS:
            W, c = path.coef(a)
            oof[a][te] = Xte @ W + c
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
    """A feature set: which blocks, and which block weights to try for the non-embedding blocks."""
    name: str
    blocks: tuple[str, ...]


def select(feats: dict[str, np.ndarray], y: np.ndarray, variant: Variant, fold: np.ndarray) -> dict:
    """Grouped CV over penalties (per target) and block weights; -> the best settings and their CV figures."""
    extra = list(variant.blocks[1:])                 # the first block has weight 1
    grids = [dict(zip(extra, ws)) for ws in np.array(np.meshgrid(*[BLOCK_WEIGHTS] * len(extra))).reshape(len(extra), -1).T] \
        if extra else [{}]
    best = None
    for g in grids:
        weights = {variant.blocks[0]: 1.0, **{k: float(v) for k, v in g.items()}}
        oof = cross_validate(feats, y, variant.blocks, weights, fold)
        mse = {a: ((oof[a] - y) ** 2).mean(0) for a in ALPHAS}
        for j in range(2):
            a = min(ALPHAS, key=lambda a: mse[a][j])
            cand = {"weights": weights, "alpha": a, "cv_mse": float(mse[a][j]),
                    "cv_spearman": spearman(oof[a][:, j], y[:, j]), "oof": oof[a][:, j]}
            if best is None:
                best = [None, None]
            if best[j] is None or cand["cv_mse"] < best[j]["cv_mse"]:
                best[j] = cand
    return {"per_target": best}


def fit(feats: dict[str, np.ndarray], y: np.ndarray, blocks: tuple[str, ...], weights: tuple[dict, dict],
        alphas: tuple[float, float], oof: np.ndarray) -> Fit:
    """The final fit on all training images (all views); calibration from the out-of-fold predictions.

    When the two targets chose different block weights, valence's weights are used for the shared design
    and each target keeps its own penalty (the ONNX model is one linear layer)."""
    views = feats[blocks[0]].shape[1]
    mean, std = {}, {}
    for b in blocks:
        mean[b], std[b] = standardiser(feats[b])
    W = np.zeros((sum(len(mean[b]) for b in blocks), 2))
    c = np.zeros(2)
    for j in range(2):
        X = _design(feats, blocks, weights[j], mean, std).reshape(-1, W.shape[0])
        path = RidgePath(X, np.repeat(y[:, j:j + 1], views, axis=0))
        Wj, cj = path.coef(alphas[j])
        # express target j in the design of weights[0] (block weights are per-column scalings)
        scale = np.concatenate([np.full(len(mean[b]), weights[j][b] / weights[0][b]) for b in blocks])
        W[:, j], c[j] = Wj[:, 0] * scale, cj[0]
    model = Fit(blocks, weights[0], mean, std, W, c, alphas)
    pos = np.array([np.percentile(oof[oof[:, j] > 0, j], CAL_PERCENTILE) if (oof[:, j] > 0).any() else 1.0
                    for j in range(2)])
    neg = np.array([np.percentile(-oof[oof[:, j] < 0, j], CAL_PERCENTILE) if (oof[:, j] < 0).any() else 1.0
                    for j in range(2)])
    model.pos, model.neg = np.maximum(pos, 1e-6), np.maximum(neg, 1e-6)
    return model


# --- baseline ---------------------------------------------------------------------

def conditioner_baseline(conditioner: Path, emb_centre: np.ndarray) -> dict[str, np.ndarray]:
    """The shipped conditioner's quadrant probabilities and its own valence/arousal head, on centre views."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(conditioner), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    out = dict(zip(names, sess.run(None, {"embedding": emb_centre.astype(np.float32)})))
    p = out["quadrant_probs"]
    qp = np.stack([p[:, 0] + p[:, 3] - p[:, 1] - p[:, 2], p[:, 0] + p[:, 1] - p[:, 2] - p[:, 3]], 1)
    return {"quadrant_probs": qp, "va_head": out["valence_arousal"]}


# --- export -----------------------------------------------------------------------

INPUT_NAMES = {"embedding": "embedding", "stats": "stats", "mid": "features_mid"}


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

        def forward(self, *xs):
            x = torch.cat([(x - getattr(self, f"m_{b}")) * getattr(self, f"s_{b}") for x, b in zip(xs, model.blocks)], -1)
            z = x @ self.W + self.b
            return torch.clamp(torch.where(z > 0, z * self.pos, z * self.neg), -1.0, 1.0)

    path.parent.mkdir(parents=True, exist_ok=True)
    names = [INPUT_NAMES[b] for b in model.blocks]
    dims = {b: len(model.mean[b]) for b in model.blocks}
    dummy = tuple(torch.randn(2, dims[b]) for b in model.blocks)
    torch.onnx.export(Net().eval(), dummy, str(path), input_names=names, output_names=["valence_arousal"],
                      dynamic_axes={**{n: {0: "batch"} for n in names}, "valence_arousal": {0: "batch"}},
                      opset_version=17, dynamo=False)
    rng = np.random.default_rng(1)
    feats = {b: (model.mean[b] + model.std[b] * rng.standard_normal((16, dims[b]))).astype(np.float32)
             for b in model.blocks}
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {INPUT_NAMES[b]: feats[b] for b in model.blocks})[0]
    err = float(np.abs(got - model.predict(feats)).max())
    if err > 1e-4:
        raise RuntimeError(f"{path}: ONNX differs from the numpy model by {err}")
    return {"inputs": {INPUT_NAMES[b]: ["batch", dims[b]] for b in model.blocks},
            "outputs": {"valence_arousal": ["batch", 2]}, "parity_max_abs_err": err}


# --- the whole run ------------------------------------------------------------------

VARIANTS = {
    "embedding": Variant("embedding", ("embedding",)),
    "embedding+stats": Variant("embedding+stats", ("embedding", "stats")),
    "stats": Variant("stats", ("stats",)),
    "embedding+mid": Variant("embedding+mid", ("embedding", "mid")),
    "embedding+mid+stats": Variant("embedding+mid+stats", ("embedding", "mid", "stats")),
}


def run(args) -> dict:
    """Fit every variant whose blocks are available, pick by CV, score on held-out, export the chosen one."""
    t0 = time.time()
    images, keep = limited(load_emotion6(args.data), args.limit_images)
    work = args.work
    feats = {"embedding": embedding_block(images, keep, args.cache, work, args.data, args.encoder, args.backbone)}
    feats["stats"] = stats_block(images, args.data, work)
    if args.mid is not None:
        z = np.load(args.mid, allow_pickle=True)
        if list(z["rel"]) != load_emotion6(args.data).rel:
            raise SystemExit(f"error: {args.mid} is not a cache of the Emotion6 images in load_emotion6 order")
        feats["mid"] = np.concatenate([z[k] for k in args.mid_keys.split(",")], -1)[keep].astype(np.float32)
    y = targets(images)
    tr, te = ~images.test, images.test
    train = {k: v[tr] for k, v in feats.items()}
    ytr, yte = y[tr], y[te]
    fold = folds_of(int(tr.sum()), args.seed)

    report = {"data": {"train_images": int(tr.sum()), "test_images": int(te.sum()), "views_per_image": 6,
                       "arousal_split": float(images.arousal_split)}, "variants": {}}
    base = conditioner_baseline(args.conditioner, feats["embedding"][te][:, 0])
    report["baseline"] = {k: score(v, yte) for k, v in base.items()}
    log.info("baseline (shipped conditioner): %s", json.dumps(report["baseline"]))

    wanted = [v for v in args.variants.split(",")]
    chosen, fits = None, {}
    for name in wanted:
        v = VARIANTS[name]
        if not all(b in feats for b in v.blocks):
            continue
        sel = select(train, ytr, v, fold)
        pt = sel["per_target"]
        oof = np.stack([pt[0]["oof"], pt[1]["oof"]], 1)
        model = fit(train, ytr, v.blocks, (pt[0]["weights"], pt[1]["weights"]), (pt[0]["alpha"], pt[1]["alpha"]), oof)
        test_feats = {b: feats[b][te] for b in v.blocks}
        centre = model.predict({b: f[:, 0] for b, f in test_feats.items()})
        mean6 = model.calibrate(np.mean([model.raw({b: f[:, i] for b, f in test_feats.items()}) for i in range(6)], 0))
        entry = {"blocks": list(v.blocks),
                 "alpha": {t: pt[j]["alpha"] for j, t in enumerate(TARGETS)},
                 "block_weights": {t: pt[j]["weights"] for j, t in enumerate(TARGETS)},
                 "cv": {t: {"mse": round(pt[j]["cv_mse"], 5), "spearman": round(pt[j]["cv_spearman"], 4)}
                        for j, t in enumerate(TARGETS)},
                 "calibration": {"pos": model.pos.round(5).tolist(), "neg": model.neg.round(5).tolist()},
                 "heldout_centre": score(centre, yte), "heldout_mean_of_6_views": score(mean6, yte)}
        report["variants"][name] = entry
        fits[name] = model
        log.info("%-22s CV rho V %.3f A %.3f | held-out centre V %.3f %s A %.3f %s", name,
                 pt[0]["cv_spearman"], pt[1]["cv_spearman"],
                 entry["heldout_centre"]["valence"]["spearman"], entry["heldout_centre"]["valence"]["ci95"],
                 entry["heldout_centre"]["arousal"]["spearman"], entry["heldout_centre"]["arousal"]["ci95"])
        cv_key = pt[0]["cv_spearman"] + pt[1]["cv_spearman"]
        if name in args.export_from.split(",") and (chosen is None or cv_key > chosen[1] + args.min_cv_gain):
            chosen = (name, cv_key)
    if chosen is None:
        raise SystemExit("error: no variant to export; check --variants and --export-from")
    name = chosen[0]
    model = fits[name]
    info = export_onnx(model, args.out / "image_emotion.onnx")
    from installation.training.backbones import sha256
    entry = {"file": "image_emotion.onnx", **info, "sha256": sha256(args.out / "image_emotion.onnx"), "opset": 17,
             "bytes": (args.out / "image_emotion.onnx").stat().st_size,
             "feature_set": name, "stats_names": list(__import__("installation.image_stats", fromlist=["NAMES"]).NAMES)
             if "stats" in model.blocks else [],
             "targets": "((V - 5) / 4, (A - median A) / 4) of Emotion6, 0 = the quadrant split",
             "calibration": f"z / pos where z > 0, z / neg where z < 0, clipped to [-1, 1]; pos, neg = the "
                            f"{CAL_PERCENTILE}th percentiles of |out-of-fold centre-view predictions| of the "
                            "training images on each side",
             "alpha": report["variants"][name]["alpha"], "block_weights": report["variants"][name]["block_weights"],
             "calibration_values": report["variants"][name]["calibration"],
             "selection": f"{FOLDS}-fold CV on training images grouped by image (MSE of centre views); "
                          "held-out images only scored",
             "metrics": {"heldout": report["variants"][name]["heldout_centre"],
                         "baseline_conditioner_quadrant_probs": report["baseline"]["quadrant_probs"]},
             "arousal_split": float(images.arousal_split)}
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
    ap.add_argument("--conditioner", type=Path, default=None, help="conditioner ONNX for the baseline (default: OUT/...)")
    ap.add_argument("--backbone", default="efficientnet_lite0", choices=["efficientnet_lite0", "resnet18"])
    ap.add_argument("--mid", type=Path, default=None, help="a cache of pooled mid-depth features (experiments)")
    ap.add_argument("--mid-keys", default="b14_192,b15_320")
    ap.add_argument("--variants", default="embedding,embedding+stats,stats")
    ap.add_argument("--export-from", default="embedding,embedding+stats",
                    help="variants that may be exported (the best summed CV Spearman wins)")
    ap.add_argument("--min-cv-gain", type=float, default=0.0, help="a later variant must beat by this much")
    ap.add_argument("--no-manifest", dest="manifest", action="store_false", help="do not touch OUT/manifest.json")
    ap.add_argument("--limit-images", type=int, default=None, help="use only N images (a quick pipeline check)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    args.encoder = args.encoder or args.out / "encoder.onnx"
    args.conditioner = args.conditioner or args.out / "conditioner.onnx"
    return args


def main(argv=None) -> int:
    args = parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for what, p in (("data folder", args.data), ("encoder", args.encoder), ("conditioner", args.conditioner)):
        if not p.exists():
            print(f"error: {what} {p} not found; pass --data/--out/--encoder/--conditioner", file=sys.stderr)
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
    report = run(args)
    print(json.dumps({k: report[k] for k in ("chosen", "baseline")} |
                     {"variants": {n: {"heldout_centre": e["heldout_centre"], "heldout_mean_of_6_views":
                                       e["heldout_mean_of_6_views"]} for n, e in report["variants"].items()}},
                     indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
