"""Training: pre-train the decoder on all music under its own controls, then fine-tune on labelled music with emotion.

Every window carries its true controls, measured from its own notes after
transposition (installation/mood/controls.py: key histogram and mode, density,
loudness, register), with control dropout so that any group can be left unset.

Phase "pretrain": every music window (EMOPIA, VGMIDI labelled and unlabelled,
classical piano); the emotion group is unset.
Phase "finetune": labelled music only (EMOPIA train, VGMIDI labelled); the
emotion group carries the piece's valence/arousal signs, scaled by a random
amount in [0.25, 1] (images give graded emotion), and is dropped like the others.

The image side is no longer trained here: installation/training/image_emotion.py
fits the image -> valence/arousal model on its own, and the emotion map
(installation/mood/emotion_map.py) turns valence/arousal into control targets.

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

from installation.mood import controls as C
from installation.music import events as E
from installation.training.data import MusicCorpus, WindowSampler
from installation.training.model import ModelConfig, MusicModel
from installation.training.shards import save_shards
from installation.training.transformer import TransformerConfig, TransformerMusicModel
from installation.training.warm_start import warm_start

log = logging.getLogger(__name__)


@dataclass
class PhaseConfig:
    steps: int = 600             # optimiser steps at most (early stopping may end sooner)
    batch: int = 64              # windows per step
    seq_len: int = 256           # events per window
    lr: float = 2e-3             # Adam learning rate, cosine-decayed to lr/10
    eval_every: int = 100        # steps between validations (and checkpoints)
    patience: int = 3            # evaluations without improvement before stopping
    drop_group_p: float = 0.15   # control dropout: each group unset with this probability
    drop_all_p: float = 0.05     # ... and every group at once with this one
    emotion_min: float = 0.25    # finetune: emotion = label signs * U(emotion_min, 1)
    warmup: int = 0              # steps of linear learning-rate warm-up (a large model on a GPU)
    max_seconds: float | None = None  # a wall-time budget: the cosine follows elapsed time too, and the phase
                                      # validates and stops when it is spent (GPU runs on a lease)


@dataclass
class TrainConfig:
    seed: int = 7
    threads: int = 2
    device: str = "auto"         # "auto" (CUDA when present), "cpu" or "cuda"
    amp: bool = True             # on CUDA: forward and loss under bf16 autocast (the CPU always trains in fp32)
    snapshot_dir: str | None = None  # also write each phase's best weights here, fp16 in files under 15 MiB
    warm_start: str | None = None    # a folder of exported GRU ONNX models to start from (training/warm_start.py)
    model: ModelConfig = None
    pretrain: PhaseConfig = None
    finetune: PhaseConfig = None

    def __post_init__(self):
        self.model = self.model or ModelConfig()
        self.pretrain = self.pretrain or PhaseConfig()
        self.finetune = self.finetune or PhaseConfig(steps=300, lr=1e-3, eval_every=50, patience=3)


def _device_of(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def resolve_device(name: str) -> torch.device:
    """'auto': CUDA when torch sees a GPU, else the CPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: torch sees no CUDA GPU (a CPU-only torch build, or no driver); use --device cpu")
    return torch.device(name)


def fit_controls(model, c: torch.Tensor) -> torch.Tensor:
    """Per-step controls (N, T, 37) as the model takes them: all of them (the GRU), or the window groups of the
    first step for a model of fewer controls (the Transformer as shipped: 24)."""
    dim = getattr(model.cfg, "control_dim", C.CONTROL_DIM)
    if c.dim() == 3 and dim < C.CONTROL_DIM:
        return c[:, 0, :dim]
    return c[:, :dim] if c.dim() == 2 and c.shape[1] > dim else c


def pedal_mask(model, pedal_known: torch.Tensor | None) -> torch.Tensor | None:
    """(N, 1, V) bool: the pedal events of windows whose source has no pedal (hidden from the loss)."""
    V = model.cfg.vocab
    if pedal_known is None or V <= E.PEDAL or bool(pedal_known.all()):
        return None
    m = torch.zeros(len(pedal_known), 1, V, dtype=torch.bool, device=pedal_known.device)
    m[~pedal_known, :, E.PEDAL:E.PEDAL + 2] = True
    return m


def masked_logits(model, x, c, pedal_known=None):
    logits, _ = model(x, fit_controls(model, c))
    m = pedal_mask(model, pedal_known)
    return logits if m is None else logits.masked_fill(m, float("-inf"))


def nll(model: MusicModel, controls: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
        pedal_known: torch.Tensor | None = None) -> float:
    """Mean negative log-likelihood per event (nats) of fixed windows under given controls (per window or
    per step); ``pedal_known`` (N,) False hides the pedal events of a window (a source without pedal)."""
    model.eval()
    dev = _device_of(model)
    with torch.no_grad():
        tot, n = 0.0, 0
        for i in range(0, len(x), 32):
            c, xb, yb = controls[i:i + 32].to(dev), x[i:i + 32].to(dev), y[i:i + 32].to(dev)
            pk = None if pedal_known is None else pedal_known[i:i + 32].to(dev)
            logits = masked_logits(model, xb, c, pk)
            tot += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), yb.reshape(-1),
                                   ignore_index=-100, reduction="sum").item()
            n += int((yb != -100).sum())
    model.train()
    return tot / max(n, 1)


def train_controls(ctrl: np.ndarray, rng: np.random.Generator, cfg: PhaseConfig, emotion: bool,
                   chords: np.ndarray | None = None) -> np.ndarray:
    """The controls a training window is shown: its true ones, emotion graded (finetune) or unset
    (pretrain), then control dropout. With ``chords`` (B, T, 13): per step (B, T, 37), the window's
    groups at every step beside the chord in force, the chord unset in a share of windows too."""
    c = ctrl.copy()
    if emotion:
        c[:, C.EMOTION:C.EMOTION + 2] *= rng.uniform(cfg.emotion_min, 1.0, (len(c), 1)).astype(np.float32)
    else:
        c[:, C.EMOTION:C.EMOTION + 2] = 0.0
        c[:, C.FLAGS + 4] = 1.0
    c = C.drop(c, rng, cfg.drop_group_p, cfg.drop_all_p)
    if chords is None:
        return c
    ch = chords.copy()
    gone = rng.random(len(c)) < cfg.drop_group_p + cfg.drop_all_p
    ch[gone] = C.chord_code(None)
    T = ch.shape[1]
    return np.concatenate([np.repeat(c[:, None, :C.CHORD], T, axis=1), ch], axis=-1).astype(np.float32)


def learning_rate(cfg: PhaseConfig, step: int, elapsed: float) -> float:
    """Linear warm-up, then a cosine from lr to lr/10 over the steps, or over the time budget when that
    runs out first."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    done = step / cfg.steps
    if cfg.max_seconds:
        done = max(done, elapsed / cfg.max_seconds)
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(done, 1.0))))


def batches(train: WindowSampler, rng: np.random.Generator, cfg: PhaseConfig, emotion: bool, ahead: int = 0):
    """Endless training batches (inputs, targets, shown controls); with ``ahead`` > 0 a thread prepares that
    many in advance (a GPU step must not wait on numpy). The same rng is drawn in the same order either way."""
    def one():
        x, y, _, ctrl, chords, pedal = train.sample_steps(rng, cfg.batch)
        return x, y, train_controls(ctrl, rng, cfg, emotion, chords), pedal

    if ahead <= 0:
        while True:
            yield one()
    import queue
    import threading

    q: queue.Queue = queue.Queue(maxsize=ahead)
    stop = threading.Event()

    def fill():
        while not stop.is_set():
            item = one()
            while not stop.is_set():
                try:
                    q.put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue

    t = threading.Thread(target=fill, name="batches", daemon=True)
    t.start()
    try:
        while True:
            yield q.get()
    finally:
        stop.set()
        t.join(timeout=5)


def run_phase(name: str, model: MusicModel, cfg: PhaseConfig, train: WindowSampler, val_batch, run_dir: Path,
              emotion: bool, seed: int, progress=None, amp: bool = False, snapshot=None) -> dict:
    """Train one phase with early stopping; returns its history. Resumes from run_dir/<name>.pt.
    ``amp``: bf16 autocast (CUDA); ``snapshot(name, state_dict)``: called with each new best."""
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

    vx, vy, vctrl, *rest = val_batch                   # (x, y, controls[, pedal known per window])
    vpedal = rest[0] if rest else None
    steps = range(state["step"], cfg.steps)
    bar = progress(steps, desc=name, initial=state["step"], total=cfg.steps) if progress else steps
    t0, tokens = time.time(), 0
    feed = batches(train, rng, cfg, emotion, ahead=8 if dev.type == "cuda" else 0)
    for step in bar:
        lr = learning_rate(cfg, step, time.time() - t0)
        for g in opt.param_groups:
            g["lr"] = lr
        x, y, c, pk = next(feed)
        c = torch.from_numpy(c).to(dev)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
            logits = masked_logits(model, torch.from_numpy(x).to(dev), c, torch.from_numpy(pk).to(dev))
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(),
                                   torch.from_numpy(y).to(dev).reshape(-1), ignore_index=-100)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        tokens += int((y != -100).sum())
        state["step"] = step + 1
        if progress and (dev.type == "cpu" or step % 25 == 0):      # .item() waits for the GPU
            bar.set_postfix(loss=f"{loss.item():.3f}", tok_s=f"{tokens / (time.time() - t0):.0f}")
        out_of_time = bool(cfg.max_seconds) and time.time() - t0 >= cfg.max_seconds
        if state["step"] % cfg.eval_every == 0 or state["step"] == cfg.steps or out_of_time:
            v = nll(model, vctrl, vx, vy, vpedal)
            seconds = time.time() - t0
            state["history"].append({"step": state["step"], "train_loss": round(loss.item(), 4), "val_nll": round(v, 4),
                                     "seconds": round(seconds, 1), "tokens_per_s": round(tokens / seconds)})
            log.info("%s step %d: train %.4f val %.4f (%.0f s, %.0f tokens/s, lr %.2e)", name, state["step"],
                     loss.item(), v, seconds, tokens / seconds, lr)
            if v < state["best"]:
                state.update(best=v, best_step=state["step"], bad=0, best_model=copy.deepcopy(model.state_dict()))
                if snapshot:
                    snapshot(name, state["best_model"])
            else:
                state["bad"] += 1
            stop = state["bad"] >= cfg.patience or state["step"] == cfg.steps or out_of_time
            state["done"] = stop
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "rng": rng.bit_generator.state,
                        "torch_rng": torch.get_rng_state(), "state": state}, ckpt_path)
            if stop:
                if state["bad"] >= cfg.patience:
                    log.info("%s: early stop at step %d (best %.4f at %d)", name, state["step"], state["best"], state["best_step"])
                elif out_of_time:
                    log.info("%s: time budget of %.0f s spent at step %d", name, cfg.max_seconds, state["step"])
                break
    feed.close()
    model.load_state_dict(state["best_model"])
    return state


def steps_of(ctrl: np.ndarray, chords: np.ndarray) -> np.ndarray:
    """Window controls (B, 37) and per-step chords (B, T, 13) -> per-step controls (B, T, 37)."""
    T = chords.shape[1]
    return np.concatenate([np.repeat(ctrl[:, None, :C.CHORD], T, axis=1), chords], axis=-1).astype(np.float32)


def _val(x, y, c, pedal):
    return torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(c), torch.from_numpy(pedal)


def _no_emotion(ctrl: np.ndarray) -> np.ndarray:
    c = ctrl.copy()
    c[:, C.EMOTION:C.EMOTION + 2] = 0.0
    c[:, C.FLAGS + 4] = 1.0
    return c


def key_templates(corpus: MusicCorpus, rows: np.ndarray, seq_len: int, n: int = 8192, seed: int = 11) -> dict:
    """The mean pitch-class histogram of training windows in each mode, rotated to C: what the model
    learnt "major" and "minor" look like. The run time asks for a key with these."""
    sampler = WindowSampler(corpus, rows, seq_len, transpose=0)
    rng = np.random.default_rng(seed)
    hs, minors = [], []
    for _ in range(max(1, n // 512)):
        _, _, _, ctrl = sampler.sample(rng, 512)
        keep = ctrl[:, C.FLAGS] == 0
        h = ctrl[keep, C.KEY:C.KEY + 12].astype(np.float64)
        tonic, minor = C.key_of_histograms(h)
        hs.append(np.stack([np.roll(row, -t) for row, t in zip(h, tonic)]))
        minors.append(minor)
    h, minor = np.concatenate(hs), np.concatenate(minors)
    t = np.stack([h[~minor].mean(0), h[minor].mean(0)])
    return {"major": [round(float(v), 5) for v in t[0]], "minor": [round(float(v), 5) for v in t[1]],
            "windows": {"major": int((~minor).sum()), "minor": int(minor.sum())}}


def build(model_cfg):
    """The decoder a model config describes: the GRU (ModelConfig) or the Transformer (TransformerConfig)."""
    return TransformerMusicModel(model_cfg) if isinstance(model_cfg, TransformerConfig) else MusicModel(model_cfg)


def train(cfg: TrainConfig, corpus: MusicCorpus, run_dir: Path, progress=None) -> tuple[MusicModel, dict]:
    """Both phases for the decoder ``cfg.model`` describes; returns the best model and a summary (config,
    histories, NLLs, key templates, parameters; the Transformer's NLL on longer windows)."""
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(asdict(cfg), indent=2))
    model = build(cfg.model)
    if cfg.warm_start:
        warm_start(model, Path(cfg.warm_start), run_dir)
    dev = resolve_device(cfg.device)
    parameters = sum(p.numel() for p in model.parameters())
    log.info("training the %s (%d parameters) on %s", "Transformer" if hasattr(cfg.model, "window") else "GRU", parameters,
             dev if dev.type == "cpu" else f"{dev} ({torch.cuda.get_device_name(dev)})")
    model.to(dev)
    summary = run_phases(model, cfg, corpus, run_dir, progress)
    summary["parameters"] = parameters
    if hasattr(cfg.model, "window"):
        summary["window_nll"] = window_nll(model, corpus, min(2 * cfg.finetune.seq_len, cfg.model.window))
    if dev.type == "cuda":
        summary["device"] = torch.cuda.get_device_name(dev)
    return model.cpu(), summary


def time_budget(cfg: TrainConfig, minutes: float, finetune_share: float) -> dict:
    """On a GPU: each phase runs for its share of ``minutes`` of wall time (its cosine following the clock,
    learning_rate above) unless early stopping or its step count ends it first; 8% is kept for the
    validations, the final figures and start-up."""
    total = 0.92 * minutes * 60
    cfg.pretrain.max_seconds = round(total * (1 - finetune_share), 1)
    cfg.finetune.max_seconds = round(total * finetune_share, 1)
    log.info("time budget %.1f min: pretrain %.0f s, finetune %.0f s", minutes, cfg.pretrain.max_seconds,
             cfg.finetune.max_seconds)
    return {"minutes": minutes, "pretrain_s": cfg.pretrain.max_seconds, "finetune_s": cfg.finetune.max_seconds}


def fit_budget(cfg: TrainConfig, corpus: MusicCorpus, run_dir: Path, minutes: float) -> dict:
    """Set both phases' step counts so that training takes about ``minutes`` here and now: a few timed
    steps measure this machine's seconds per step; the steps are shared 2:1 between pretraining and
    finetuning, with 10% kept for validations and the final figures. A resumed run keeps the step
    counts it started with (its learning-rate schedule depends on them)."""
    saved = run_dir / "config.json"
    if saved.is_file() and any((run_dir / f"{p}.pt").is_file() for p in ("pretrain", "finetune")):
        old = json.loads(saved.read_text())
        cfg.pretrain.steps, cfg.finetune.steps = old["pretrain"]["steps"], old["finetune"]["steps"]
        return {"resumed": True, "pretrain_steps": cfg.pretrain.steps, "finetune_steps": cfg.finetune.steps}
    torch.set_num_threads(cfg.threads)
    m = build(cfg.model)
    opt = torch.optim.Adam(m.parameters(), lr=1e-4)
    sampler = WindowSampler(corpus, corpus.select(split="train"), cfg.pretrain.seq_len)
    rng = np.random.default_rng(0)
    times = []
    for i in range(4):
        t0 = time.time()
        x, y, _, ctrl = sampler.sample(rng, cfg.pretrain.batch)
        logits = masked_logits(m, torch.from_numpy(x), torch.from_numpy(train_controls(ctrl, rng, cfg.pretrain, False)))
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), torch.from_numpy(y).reshape(-1), ignore_index=-100)
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.time() - t0)
    per_step = float(np.median(times[1:]))
    steps = int(0.9 * minutes * 60 / per_step)
    cfg.pretrain.steps, cfg.finetune.steps = max(2, 2 * steps // 3), max(2, steps // 3)
    log.info("budget %.1f min at %.2f s/step: %d pretrain + %d finetune steps", minutes, per_step,
             cfg.pretrain.steps, cfg.finetune.steps)
    return {"minutes": minutes, "seconds_per_step": round(per_step, 3), "pretrain_steps": cfg.pretrain.steps,
            "finetune_steps": cfg.finetune.steps}


def run_phases(model, cfg: TrainConfig, corpus: MusicCorpus, run_dir: Path, progress=None) -> dict:
    """Pretrain and finetune any model with ``forward(events, controls)`` (the GRU, the Transformer); returns
    the summary: histories, wall time of each phase in this process, key templates and test NLLs."""
    timings = {}
    amp = cfg.amp and _device_of(model).type == "cuda"
    snapshot = None
    if cfg.snapshot_dir:
        def snapshot(name, state_dict):
            save_shards(state_dict, cfg.model.to_dict(), Path(cfg.snapshot_dir), name)
    # pretrain: all music under its own controls, no emotion; validate on held-out windows of every set
    P = cfg.pretrain
    t0 = time.time()
    pre_train = WindowSampler(corpus, corpus.select(split="train"), P.seq_len)
    vx, vy, _, vc, vch, vp = WindowSampler(corpus, corpus.select(split="val", stretch=1.0), P.seq_len).fixed_steps(256)
    pre = run_phase("pretrain", model, P, pre_train, _val(vx, vy, steps_of(_no_emotion(vc), vch), vp),
                    run_dir, False, cfg.seed, progress, amp, snapshot)
    timings["pretrain_s_this_process"] = round(time.time() - t0, 1)

    # finetune: labelled music, with its emotion as a control
    Fc = cfg.finetune
    t0 = time.time()
    ft_train = WindowSampler(corpus, corpus.select(split="train", labelled=True), Fc.seq_len)
    fx, fy, _, fc, fch, fp = WindowSampler(corpus, corpus.select(split="val", labelled=True, stretch=1.0),
                                           Fc.seq_len).fixed_steps(256)
    fine = run_phase("finetune", model, Fc, ft_train, _val(fx, fy, steps_of(fc, fch), fp),
                     run_dir, True, cfg.seed + 1, progress, amp, snapshot)
    timings["finetune_s_this_process"] = round(time.time() - t0, 1)
    summary = {"pretrain": {k: pre[k] for k in ("best", "best_step", "history")},
               "finetune": {k: fine[k] for k in ("best", "best_step", "history")}, "timings": timings}
    summary["key_templates"] = key_templates(corpus, corpus.select(split="train", stretch=1.0), Fc.seq_len)
    summary["nll"] = test_nll(model, corpus, Fc.seq_len)      # on the training device (fast on a GPU)
    return summary


def test_nll(model: MusicModel, corpus: MusicCorpus, seq_len: int) -> dict:
    """Validation and test NLL per event (nats) on EMOPIA's official splits, with every control true
    (measured from the window itself), with the musical controls but no emotion, with only the
    emotion, and with nothing set: the gaps show what the controls tell the model."""
    out = {}
    for split in ("val", "test"):
        rows = np.array([r for r in corpus.select(split=split, labelled=True, stretch=1.0)
                         if corpus.pieces[corpus.index[r, 2]].source == "emopia"], dtype=np.int64)
        if len(rows) == 0:
            continue                                    # a tiny pipeline-check slice may lack some
        x, y, _, ctrl, ch, pk = WindowSampler(corpus, rows, seq_len).fixed_steps(256, seed=4321)
        x, y, pk = torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(pk)
        only_emotion = ctrl.copy()
        only_emotion[:, :C.EMOTION] = 0.0
        only_emotion[:, C.FLAGS:C.FLAGS + 4] = 1.0
        no_chord = np.broadcast_to(C.chord_code(None), ch.shape)
        st = lambda c, chords=ch: torch.from_numpy(steps_of(c, chords))
        out[split] = {
            "all_controls": round(nll(model, st(ctrl), x, y, pk), 4),
            "all_but_chord": round(nll(model, st(ctrl, no_chord), x, y, pk), 4),
            "musical_controls_no_emotion": round(nll(model, st(_no_emotion(ctrl)), x, y, pk), 4),
            "emotion_only": round(nll(model, st(only_emotion, no_chord), x, y, pk), 4),
            "no_controls": round(nll(model, st(np.tile(C.unset(), (len(x), 1)), no_chord), x, y, pk), 4),
        }
    return out


def window_nll(model, corpus: MusicCorpus, seq_len: int) -> dict:
    """The Transformer's validation NLL on windows of ``seq_len`` events (longer than training's) with every
    control true, under its run-time window and under the training length: does ALiBi carry past the training
    length?"""
    rows = corpus.select(split="val", labelled=True, stretch=1.0)
    if len(rows) == 0:
        return {}
    x, y, _, ctrl = WindowSampler(corpus, rows, seq_len).fixed(64, seed=99)
    ctrl = np.ascontiguousarray(ctrl[:, :model.cfg.control_dim])            # its own controls (no chord)
    keep = model.cfg.window
    out = {"seq_len": seq_len}
    try:
        for w in sorted({keep, seq_len // 2}):
            model.cfg.window = w
            out[f"window_{w}"] = round(nll(model, torch.from_numpy(ctrl), torch.from_numpy(x), torch.from_numpy(y)), 4)
    finally:
        model.cfg.window = keep
    return out
