"""The encoder's last blocks tuned for valence and arousal: a branch that shares the frozen trunk.

    OMP_NUM_THREADS=1 nice -n 10 python -m installation.training.emotion_tune --start 14 --name b14

The exported encoder keeps its ImageNet path untouched (the embedding drives scene tracking, whose
cosine thresholds were set on it) and gains one output: ``tuned_va`` (N, 2), read by a copy of
EfficientNet-Lite0's blocks ``start``..15 (initialised from ImageNet, then trained) on the trunk's
activation after block ``start - 1``, globally pooled, and a linear layer. One encoder pass per frame:
the branch adds only its own blocks.

Training (on CPU, from installation.training.emotion_cache's activations of block 10, ten views per image):

- images: the Emotion6 training images (held-out images, ``stable_percent(rel) < 15``, are never read
  here); of these, fold 0 of image_emotion.folds_of (about 280 images) is the validation slice: the branch
  is not trained on it; it picks the epoch, and image_emotion.py blends and calibrates on it;
- targets: ((V - 5) / 4, (A - median) / 4), each standardised for the loss (mean squared error), so
  arousal's smaller spread weighs as much as valence's;
- augmentation: each epoch sees one of the ten cached views of each image (crops at three scales and
  mirror images), and the blocks' own stochastic depth (drop-connect, as in ImageNet training) and
  dropout before the linear layer; batch-norm statistics stay frozen (ImageNet's);
- AdamW: ``lr`` for the linear layer, ``lr / 10`` for the blocks, cosine decay, weight decay 1e-4;
- optionally (``--aux-words W``) a second linear layer learns the raters' 7 emotion-word distribution
  (cross-entropy, weight W); it is not exported.

The state with the best validation score (sum of the Spearman correlations of valence and arousal on
view 0, the runtime's view) is kept: ``.cache/emotion_tune/<name>/branch.pt`` with its history.
"""
from __future__ import annotations

import argparse
import copy
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from installation.manifest import file_sha256
from installation.training.backbones import efficientnet_lite0
from installation.training.data import load_emotion6
from installation.training.emotion_cache import load_cache
from installation.training.export import OPSET
from installation.training.image_emotion import folds_of, targets

log = logging.getLogger("installation.training.emotion_tune")

REPO = Path(__file__).resolve().parents[2]
LAST_BLOCK = 15
WORDS = ("anger", "disgust", "fear", "joy", "sadness", "surprise", "neutral")


def word_distributions(data: Path, rel: list[str]) -> np.ndarray:
    """(n, 7) Emotion6's distribution of the raters' emotion words (WORDS order) for the images ``rel``."""
    base = data / "images" / "emotion6"
    dist = {}
    with open(base / "ground_truth.txt") as f:
        next(f)
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) >= 10 and parts[0]:
                dist[f"images/emotion6/images/{parts[0]}"] = [float(x) for x in parts[3:10]]
    d = np.array([dist[r] for r in rel], np.float32)
    return d / np.maximum(d.sum(1, keepdims=True), 1e-6)


class Branch(nn.Module):
    """Blocks ``start``..15 of EfficientNet-Lite0 (and, with ``conv_head``, its 1x1 head conv to 1280),
    global average pooling, dropout and a linear layer to (valence, arousal)."""

    def __init__(self, eff, start: int, conv_head: bool, dropout: float = 0.2):
        super().__init__()
        self.start, self.n_total = start, len(eff._blocks)
        self.blocks = nn.ModuleList(copy.deepcopy(b) for b in eff._blocks[start:])
        self.conv_head = conv_head
        if conv_head:
            self.head_conv, self.head_bn = copy.deepcopy(eff._conv_head), copy.deepcopy(eff._bn1)
            dim = eff._conv_head.out_channels
        else:
            dim = eff._blocks[-1]._block_args.output_filters
        self.swish = copy.deepcopy(eff._swish)
        self.drop_connect = eff._global_params.drop_connect_rate or 0.0
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(dim, 2)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.aux = nn.Linear(dim, len(WORDS))         # training only (not exported): the raters' emotion words

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        for i, block in enumerate(self.blocks):
            rate = self.drop_connect * float(self.start + i) / self.n_total if self.training else 0.0
            x = block(x, drop_connect_rate=rate)
        if self.conv_head:
            x = self.swish(self.head_bn(self.head_conv(x)))
        return x.mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.dropout(self.pooled(x)))

    def both(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Training: (valence/arousal, logits of the 7 emotion words) from one pass (``aux`` head)."""
        h = self.dropout(self.pooled(x))
        return self.out(h), self.aux(h)

    def train(self, mode: bool = True):
        """Training mode for dropout and drop-connect; batch norm keeps ImageNet's statistics."""
        super().train(mode)
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eval()
        return self


class TunedEncoder(nn.Module):
    """The exported encoder: image -> (embedding, features_mid, tuned_va) in one pass; the ImageNet path
    (embedding, features_mid) is the original's, the branch forks after block ``start - 1``."""

    def __init__(self, net, branch: Branch, y_mean: np.ndarray, y_std: np.ndarray):
        super().__init__()
        self.net, self.branch = net, branch
        self.dim, self.mid_dim = net.dim, net.mid_dim
        self.register_buffer("y_mean", torch.tensor(y_mean, dtype=torch.float32))
        self.register_buffer("y_std", torch.tensor(y_std, dtype=torch.float32))

    def forward(self, image: torch.Tensor):
        eff = self.net.features.net
        x = image * self.net.scale - self.net.shift
        x = eff._swish(eff._bn0(eff._conv_stem(x)))
        mids, fork = [], None
        for idx, block in enumerate(eff._blocks):
            if idx == self.branch.start:
                fork = x
            x = block(x, drop_connect_rate=0.0)
            if idx in (7, 10):
                mids.append(x.mean(dim=(2, 3)))
        emb = eff._swish(eff._bn1(eff._conv_head(x))).mean(dim=(2, 3))
        tuned = self.branch(fork) * self.y_std + self.y_mean
        return emb, torch.cat(mids, 1), tuned


def frozen_until(eff, block10: np.ndarray, start: int, batch: int = 256) -> np.ndarray:
    """Run the frozen blocks 11..start-1 on cached block-10 activations (n, V, C, H, W) float16."""
    if start == 11:
        return block10
    n, v = block10.shape[:2]
    flat = block10.reshape(n * v, *block10.shape[2:])
    out = []
    with torch.no_grad():
        for i in range(0, len(flat), batch):
            x = torch.from_numpy(flat[i:i + batch].astype(np.float32))
            for block in eff._blocks[11:start]:
                x = block.eval()(x, drop_connect_rate=0.0)
            out.append(x.numpy().astype(np.float16))
    o = np.concatenate(out)
    return o.reshape(n, v, *o.shape[1:])


def spearman_cols(p: np.ndarray, y: np.ndarray) -> list[float]:
    from scipy.stats import spearmanr

    return [float(spearmanr(p[:, j], y[:, j]).statistic) for j in range(y.shape[1])]


def predict(branch: Branch, X: np.ndarray, batch: int = 128) -> np.ndarray:
    branch.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(X), batch):
            out.append(branch(torch.from_numpy(X[i:i + batch].astype(np.float32))).numpy())
    return np.concatenate(out)


def train(args) -> dict:
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    images = load_emotion6(args.data)
    y_all = targets(images)
    tr = np.flatnonzero(~images.test)                 # held-out images: not loaded below
    fold = folds_of(len(tr), 0)
    fit_idx, val_idx = tr[fold != 0], tr[fold == 0]
    if args.all_training:
        fit_idx = tr
    cache = load_cache(args.cache, images.rel)
    net, info = efficientnet_lite0()
    eff = net.features.net
    saved = args.cache / f"frozen_until_{args.start}_training_images.npy"   # blocks 11..start-1 run once
    if saved.exists():
        X = np.load(saved)
    else:
        X = frozen_until(eff, cache["block10"][tr], args.start)
        np.save(saved, X)
    pos = {int(i): k for k, i in enumerate(tr)}
    Xfit, Xval = X[[pos[i] for i in fit_idx]], X[[pos[i] for i in val_idx]][:, 0]
    yfit, yval = y_all[fit_idx], y_all[val_idx]
    y_mean, y_std = yfit.mean(0), yfit.std(0)
    branch = Branch(eff, args.start, args.conv_head, args.dropout)
    heads = ("out.", "aux.")
    params = [{"params": [p for n, p in branch.named_parameters() if not n.startswith(heads)], "lr": args.lr / 10},
              {"params": [p for n, p in branch.named_parameters() if n.startswith(heads)], "lr": args.lr}]
    opt = torch.optim.AdamW(params, weight_decay=1e-4)
    steps = args.epochs * int(np.ceil(len(fit_idx) / args.batch))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + np.cos(np.pi * min(s, steps) / steps)))
    yt = torch.from_numpy(((yfit - y_mean) / y_std).astype(np.float32))
    words = torch.from_numpy(word_distributions(args.data, [images.rel[i] for i in fit_idx]))
    best, history, t0 = None, [], time.time()
    for epoch in range(1, args.epochs + 1):
        branch.train()
        order = rng.permutation(len(fit_idx))
        view = rng.integers(0, Xfit.shape[1], len(fit_idx))
        losses = []
        for i in range(0, len(order), args.batch):
            b = order[i:i + args.batch]
            x = torch.from_numpy(Xfit[b, view[b]].astype(np.float32))
            if args.aux_words > 0:
                va, logits = branch.both(x)
                loss = ((va - yt[b]) ** 2).mean() \
                    - args.aux_words * (words[b] * torch.log_softmax(logits, 1)).sum(1).mean()
            else:
                loss = ((branch(x) - yt[b]) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
        pv = predict(branch, Xval)
        rho = spearman_cols(pv, yval)
        history.append({"epoch": epoch, "train_loss": round(float(np.mean(losses)), 4),
                        "val_spearman": [round(r, 4) for r in rho], "seconds": round(time.time() - t0, 1)})
        log.info("epoch %d loss %.4f val rho V %.3f A %.3f (%.0f s)", epoch, np.mean(losses), *rho, time.time() - t0)
        if args.all_training or best is None or sum(rho) > best[0]:
            best = (sum(rho), epoch, copy.deepcopy(branch.state_dict()), pv)
    branch.load_state_dict(best[2])
    out = args.work / args.name
    out.mkdir(parents=True, exist_ok=True)
    summary = {"name": args.name, "start": args.start, "conv_head": args.conv_head, "dropout": args.dropout,
               "aux_words": args.aux_words,
               "epochs": args.epochs, "batch": args.batch, "lr": args.lr, "seed": args.seed,
               "all_training": args.all_training, "best_epoch": best[1],
               "fit_images": len(fit_idx), "val_images": len(val_idx), "views": int(Xfit.shape[1]),
               "y_mean": y_mean.tolist(), "y_std": y_std.tolist(), "history": history,
               "seconds": round(time.time() - t0, 1), "machine": machine(),
               "command": "python -m installation.training.emotion_tune " + " ".join(sys.argv[1:]),
               "weights": {k: info[k] for k in ("weights_file", "weights_sha256")}}
    torch.save({"state": branch.state_dict(), "summary": summary}, out / "branch.pt")
    np.savez(out / "val_predictions.npz", rel=np.array([images.rel[i] for i in val_idx], dtype=object),
             pred=best[3] * y_std + y_mean)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def machine() -> str:
    """Where the training ran, in words: CPU count, torch threads, the load average at the end."""
    import os
    import platform

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"{platform.machine()} CPU, {os.cpu_count()} cores, no GPU, torch threads {torch.get_num_threads()}, "
            f"load average at the end {load}")


def load_branch(path: Path) -> tuple[Branch, dict]:
    """A trained branch (branch.pt) on freshly loaded ImageNet weights, and its training summary."""
    ck = torch.load(path, map_location="cpu", weights_only=False)
    s = ck["summary"]
    net, _ = efficientnet_lite0()
    branch = Branch(net.features.net, s["start"], s["conv_head"], s["dropout"])
    branch.load_state_dict(ck["state"])
    return branch.eval(), s


def export_tuned_encoder(branch_path: Path, path: Path) -> dict:
    """encoder.onnx with the tuned branch: 'image' -> 'embedding', 'features_mid', 'tuned_va';
    ONNX checked against torch on all three (and the embedding against the untuned network)."""
    import onnxruntime as ort

    branch, s = load_branch(branch_path)
    net, info = efficientnet_lite0()
    enc = TunedEncoder(net, branch, np.array(s["y_mean"]), np.array(s["y_std"])).eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    names = ["embedding", "features_mid", "tuned_va"]
    x = torch.rand(2, 3, 224, 224) * 255
    torch.onnx.export(enc, (x,), str(path), input_names=["image"], output_names=names,
                      dynamic_axes={"image": {0: "batch"}, **{n: {0: "batch"} for n in names}},
                      opset_version=OPSET, dynamo=False)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = torch.rand(3, 3, 224, 224) * 255
    with torch.no_grad():
        ref = [t.numpy() for t in enc(x)]
        plain = net(x).numpy()
    got = sess.run(names, {"image": x.numpy()})
    err = {n: float(np.abs(g - r).max()) for n, g, r in zip(names, got, ref)}
    err["embedding_vs_untuned_network"] = float(np.abs(got[0] - plain).max())
    if max(err.values()) > 1e-3:
        raise RuntimeError(f"{path}: ONNX encoder differs from torch: {err}")
    return {"inputs": {"image": ["batch", 3, 224, 224]},
            "outputs": {"embedding": ["batch", net.dim], "features_mid": ["batch", net.mid_dim], "tuned_va": ["batch", 2]},
            "backbone": info["backbone"],
            "weights": {k: info.get(k) for k in ("weights_file", "weights_sha256", "weights_source")},
            "parity_max_abs_err": max(err.values()), "parity": err,
            "tuned_branch": {k: s.get(k) for k in ("start", "conv_head", "aux_words", "best_epoch", "epochs", "lr", "batch", "dropout",
                                               "seed", "fit_images", "val_images", "views", "all_training",
                                               "seconds", "command", "machine")}}


def export_to(branch_path: Path, out: Path) -> dict:
    """Write OUT/encoder.onnx (the tuned encoder) and replace the encoder entry of OUT/manifest.json."""
    path = out / "encoder.onnx"
    entry = export_tuned_encoder(branch_path, path)
    entry = {"file": path.name, **entry, "sha256": file_sha256(path), "opset": OPSET, "bytes": path.stat().st_size,
             "export_command": f"python -m installation.training.emotion_tune --export {branch_path} --out {out}"}
    man = out / "manifest.json"
    if man.exists():
        data = json.loads(man.read_text())
        data["models"]["encoder"] = entry
        man.write_text(json.dumps(data, indent=2) + "\n")
    log.info("tuned encoder written to %s (parity %s)", path, entry["parity"])
    return entry


def parse(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m installation.training.emotion_tune", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--cache", type=Path, default=REPO / ".cache" / "emotion_trunk", help="emotion_cache's folder")
    ap.add_argument("--work", type=Path, default=REPO / ".cache" / "emotion_tune")
    ap.add_argument("--name", default="branch")
    ap.add_argument("--start", type=int, default=14, help="first tuned block (11..15)")
    ap.add_argument("--conv-head", action="store_true", help="also tune the 1x1 head conv (1280 channels)")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3, help="the linear layers' rate; the blocks get a tenth")
    ap.add_argument("--dropout", type=float, default=0.2)
    ap.add_argument("--aux-words", type=float, default=0.0,
                    help="weight of an auxiliary loss: cross-entropy to the raters' 7 emotion-word distribution")
    ap.add_argument("--all-training", action="store_true",
                    help="train on the validation slice too (keeps the last epoch)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--export", type=Path, default=None, metavar="BRANCH_PT",
                    help="instead of training: export this trained branch (branch.pt) into OUT/encoder.onnx "
                         "and the encoder entry of OUT/manifest.json")
    ap.add_argument("--out", type=Path, default=REPO / "exported_models")
    args = ap.parse_args(argv)
    if not 11 <= args.start <= LAST_BLOCK:
        ap.error("--start must be 11..15")
    return args


def main(argv=None) -> int:
    args = parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(1)
    if args.export is not None:
        if not args.export.is_file():
            print(f"error: --export {args.export}: no such file (train a branch first)", file=sys.stderr)
            return 2
        export_to(args.export, args.out)
        return 0
    try:
        train(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
