"""Training: pre-train the decoder on all music, then fine-tune on emotion-matched image-music pairs.

Phase "pretrain": every music window (EMOPIA, VGMIDI labelled and unlabelled,
classical piano), with no emotion (uniform quadrant probabilities).
Phase "finetune": labelled music only (EMOPIA train, VGMIDI labelled), each
window conditioned on its own quadrant mixed toward uniform by a random
amount; at the same time the image side learns the quadrant and the
valence/arousal of Emotion6 training images (random crops/mirrors; a warm
start only: ``emotion_head`` refits those heads convexly afterwards). Image and
music meet in the quadrant space: an image's emotion selects music of that
emotion (the paper's pairing by label, with the image side factored through
an emotion classifier, so the decoder learns from clean labels).

Both phases: Adam, gradient clipping, validation every ``eval_every`` steps,
early stopping after ``patience`` evaluations without improvement, and a
resumable checkpoint (model, optimiser, step, RNG states, best loss) after
each evaluation. Seeded: the same command gives the same model on the same
machine and thread count.
"""
from __future__ import annotations

import copy
import json
import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from installation.training.data import ImageSet, MusicCorpus, WindowSampler
from installation.training.emotion_head import fit_heads
from installation.training.model import ModelConfig, MusicModel

log = logging.getLogger(__name__)


@dataclass
class PhaseConfig:
    steps: int = 600             # optimiser steps at most (early stopping may end sooner)
    batch: int = 64              # windows per step
    seq_len: int = 256           # events per window
    lr: float = 2e-3             # Adam learning rate, cosine-decayed to lr/10
    eval_every: int = 100        # steps between validations (and checkpoints)
    patience: int = 3            # evaluations without improvement before stopping
    va_weight: float = 0.5       # weight of the valence/arousal loss (finetune only)
    null_image_p: float = 0.1    # finetune: share of windows shown no emotion (keeps the prior usable)


@dataclass
class TrainConfig:
    seed: int = 7
    threads: int = 2
    device: str = "auto"         # "auto" (CUDA when present), "cpu" or "cuda"
    model: ModelConfig = None
    pretrain: PhaseConfig = None
    finetune: PhaseConfig = None

    def __post_init__(self):
        self.model = self.model or ModelConfig()
        self.pretrain = self.pretrain or PhaseConfig()
        self.finetune = self.finetune or PhaseConfig(steps=300, lr=1e-3, eval_every=50, patience=3)


class Pairing:
    """Finds a training image of a given quadrant, and the image's standardised V/A targets."""

    def __init__(self, images: ImageSet, features: np.ndarray, use_test: bool = False):
        self.features = features
        sel = images.test if use_test else ~images.test
        self.by_q = [np.flatnonzero(sel & (images.quadrant == q)) for q in range(4)]
        self.va = np.stack([(images.valence - 5.0) / 4.0, (images.arousal - images.arousal_split) / 4.0], 1).astype(np.float32)

    def draw_any(self, rng: np.random.Generator, n: int):
        """n random training images with a quadrant, in random views: features, V/A targets, quadrants."""
        q = rng.integers(0, 4, n)
        f, va, _ = self.draw(rng, q)
        return f, va, q

    def draw(self, rng: np.random.Generator, quadrants: np.ndarray, views: bool = True):
        idx = np.array([rng.choice(self.by_q[q]) for q in quadrants])
        v = rng.integers(0, self.features.shape[1], len(idx)) if views else np.zeros(len(idx), int)
        return self.features[idx, v], self.va[idx], idx


def _device_of(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def resolve_device(name: str) -> torch.device:
    """'auto': CUDA when torch sees a GPU, else the CPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: torch sees no CUDA GPU (a CPU-only torch build, or no driver); use --device cpu")
    return torch.device(name)


def nll(model: MusicModel, cond_in: torch.Tensor, x: torch.Tensor, y: torch.Tensor, *, probs: bool) -> float:
    """Mean negative log-likelihood per event (nats) of fixed windows, conditioned on image
    features (probs=False) or on quadrant probabilities (probs=True)."""
    model.eval()
    dev = _device_of(model)
    with torch.no_grad():
        tot, n = 0.0, 0
        for i in range(0, len(x), 32):
            c, xb, yb = cond_in[i:i + 32].to(dev), x[i:i + 32].to(dev), y[i:i + 32].to(dev)
            logits = model.forward_probs(c, xb) if probs else model(c, xb)
            tot += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), yb.reshape(-1),
                                   ignore_index=-100, reduction="sum").item()
            n += int((yb != -100).sum())
    model.train()
    return tot / max(n, 1)


def label_probs(q: np.ndarray, lam: np.ndarray | float = 1.0) -> torch.Tensor:
    """Quadrant labels -> probabilities: lam * one-hot + (1 - lam) * uniform."""
    lam = np.broadcast_to(np.asarray(lam, np.float32), q.shape)[:, None]
    onehot = np.eye(4, dtype=np.float32)[q]
    return torch.from_numpy(lam * onehot + (1 - lam) * 0.25)


def run_phase(name: str, model: MusicModel, cfg: PhaseConfig, train: WindowSampler, val_batch, run_dir: Path,
              pairing: Pairing | None, seed: int, progress=None) -> dict:
    """Train one phase with early stopping; returns its history. Resumes from run_dir/<name>.pt."""
    ckpt_path = run_dir / f"{name}.pt"
    dev = _device_of(model)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    state = {"step": 0, "best": math.inf, "best_step": 0, "bad": 0, "history": [], "best_model": None}
    if ckpt_path.exists():
        ck = torch.load(ckpt_path, map_location=dev, weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        rng.bit_generator.state = ck["rng"]
        torch.set_rng_state(ck["torch_rng"])
        state = ck["state"]
        log.info("%s: resumed at step %d (best val %.4f)", name, state["step"], state["best"])
        if state.get("done"):
            model.load_state_dict(state["best_model"])
            return state

    vx, vy, vprobs = val_batch
    steps = range(state["step"], cfg.steps)
    bar = progress(steps, desc=name, initial=state["step"], total=cfg.steps) if progress else steps
    t0, tokens = time.time(), 0
    for step in bar:
        lr = cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / cfg.steps)))
        for g in opt.param_groups:
            g["lr"] = lr
        x, y, q = train.sample(rng, cfg.batch)
        if pairing is None:                          # pretraining: no emotion (uniform probabilities)
            p = label_probs(np.zeros(cfg.batch, np.int64), 0.0)
        else:                                        # the music's own quadrant, mixed toward uniform
            lam = rng.uniform(0.0, 1.0, cfg.batch)
            lam[rng.random(cfg.batch) < cfg.null_image_p] = 0.0
            p = label_probs(q, lam)
        logits = model.forward_probs(p.to(dev), torch.from_numpy(x).to(dev))
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), torch.from_numpy(y).to(dev).reshape(-1),
                               ignore_index=-100)
        if pairing is not None:                      # the image side: emotion of training images
            f, va, qi = pairing.draw_any(rng, cfg.batch)
            q_logits, va_pred = model.conditioner.heads(torch.from_numpy(f).to(dev))
            loss = loss + cfg.va_weight * (F.cross_entropy(q_logits, torch.from_numpy(qi).to(dev))
                                           + F.mse_loss(va_pred, torch.from_numpy(va).to(dev)))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        tokens += int((y != -100).sum())
        state["step"] = step + 1
        if progress:
            bar.set_postfix(loss=f"{loss.item():.3f}", tok_s=f"{tokens / (time.time() - t0):.0f}")
        if state["step"] % cfg.eval_every == 0 or state["step"] == cfg.steps:
            v = nll(model, vprobs, vx, vy, probs=True)
            state["history"].append({"step": state["step"], "train_loss": round(loss.item(), 4), "val_nll": round(v, 4)})
            log.info("%s step %d: train %.4f val %.4f", name, state["step"], loss.item(), v)
            if v < state["best"]:
                state.update(best=v, best_step=state["step"], bad=0, best_model=copy.deepcopy(model.state_dict()))
            else:
                state["bad"] += 1
            stop = state["bad"] >= cfg.patience or state["step"] == cfg.steps
            state["done"] = stop
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "rng": rng.bit_generator.state,
                        "torch_rng": torch.get_rng_state(), "state": state}, ckpt_path)
            if stop:
                if state["bad"] >= cfg.patience:
                    log.info("%s: early stop at step %d (best %.4f at %d)", name, state["step"], state["best"], state["best_step"])
                break
    model.load_state_dict(state["best_model"])
    return state


def train(cfg: TrainConfig, corpus: MusicCorpus, images: ImageSet, features: np.ndarray, run_dir: Path,
          progress=None) -> tuple[MusicModel, dict]:
    """Both phases; returns the best model and a summary (config, histories, NLLs)."""
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(asdict(cfg), indent=2))
    model = MusicModel(cfg.model)
    train_feats = features[~images.test].reshape(-1, features.shape[-1])
    model.conditioner.feat_mean.copy_(torch.from_numpy(train_feats.mean(0)))
    model.conditioner.feat_std.copy_(torch.from_numpy(train_feats.std(0) + 1e-3))
    dev = resolve_device(cfg.device)
    log.info("training on %s", dev if dev.type == "cpu" else f"{dev} ({torch.cuda.get_device_name(dev)})")
    model.to(dev)
    # pretrain: all music, no emotion (uniform quadrant probabilities); validate on held-out windows of every set
    P = cfg.pretrain
    pre_train = WindowSampler(corpus, corpus.select(split="train"), P.seq_len)
    vx, vy, _ = WindowSampler(corpus, corpus.select(split="val", stretch=1.0), P.seq_len).fixed(256)
    vx, vy = torch.from_numpy(vx), torch.from_numpy(vy)
    pre = run_phase("pretrain", model, P, pre_train, (vx, vy, label_probs(np.zeros(len(vx), np.int64), 0.0)),
                    run_dir, None, cfg.seed, progress)

    # finetune: labelled music paired with same-quadrant training images
    Fc = cfg.finetune
    pairing = Pairing(images, features)
    ft_train = WindowSampler(corpus, corpus.select(split="train", labelled=True), Fc.seq_len)
    fx, fy, fq = WindowSampler(corpus, corpus.select(split="val", labelled=True, stretch=1.0), Fc.seq_len).fixed(256)
    fine = run_phase("finetune", model, Fc, ft_train, (torch.from_numpy(fx), torch.from_numpy(fy), label_probs(fq)),
                     run_dir, pairing, cfg.seed + 1, progress)
    summary = {"pretrain": {k: pre[k] for k in ("best", "best_step", "history")},
               "finetune": {k: fine[k] for k in ("best", "best_step", "history")}}
    model.cpu()                                     # the rest is small, and exact on the CPU
    # the image side: refit the emotion heads convexly, with cross-validated penalties
    summary["emotion_head"] = fit_heads(model.conditioner, images, features, seed=cfg.seed)
    summary["nll"] = test_nll(model, corpus, images, features, Fc.seq_len)
    return model, summary


def test_nll(model: MusicModel, corpus: MusicCorpus, images: ImageSet, features: np.ndarray, seq_len: int) -> dict:
    """Validation and test NLL per event (nats) on EMOPIA's official splits, conditioned on the music's
    own quadrant label, on a same-quadrant image (train images for val, held-out images for test), on an
    image of the opposite quadrant, and on no emotion (uniform): the gaps show what emotion tells the model."""
    out = {}
    for split, use_test in (("val", False), ("test", True)):
        rows = np.array([r for r in corpus.select(split=split, labelled=True, stretch=1.0)
                         if corpus.pieces[corpus.index[r, 2]].source == "emopia"], dtype=np.int64)
        pairing = Pairing(images, features, use_test=use_test)
        if len(rows) == 0 or any(len(b) == 0 for b in pairing.by_q):
            continue                                    # a tiny pipeline-check slice may lack some
        x, y, q = WindowSampler(corpus, rows, seq_len).fixed(256, seed=4321)
        rng = np.random.default_rng(5)
        same, _, _ = pairing.draw(rng, q, views=False)
        other, _, _ = pairing.draw(rng, (q + 2) % 4, views=False)     # opposite quadrant
        x, y = torch.from_numpy(x), torch.from_numpy(y)
        out[split] = {
            "true_label": round(nll(model, label_probs(q), x, y, probs=True), 4),
            "matched_image": round(nll(model, torch.from_numpy(same), x, y, probs=False), 4),
            "opposite_quadrant_image": round(nll(model, torch.from_numpy(other), x, y, probs=False), 4),
            "no_emotion": round(nll(model, label_probs(q, 0.0), x, y, probs=True), 4),
        }
    return out
