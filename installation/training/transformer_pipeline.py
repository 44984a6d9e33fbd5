"""``python -m installation.training train|export --decoder transformer``: the Transformer's own steps.

train   the same data and phases as the GRU (installation/training/train.py: pretrain on all music
        under its measured controls, finetune on labelled music with emotion), the same losses,
        early stopping and resumable checkpoints; writes <run>/model.pt and <run>/summary.json
        (default run folder: runs/transformer).
export  <out>/transformer_step.onnx, a parity check against torch (after the window wraps), and
        <out>/transformer_manifest.json: the manifest entry ``transformer_step`` (file, sha256,
        I/O, config) with the training figures; also merged into <out>/manifest.json (decoders.transformer).
"""
from __future__ import annotations

import json
import logging
import platform
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from installation.training import data as D

log = logging.getLogger("installation.training")

REPO = Path(__file__).resolve().parents[2]
DEFAULTS = {"pretrain_steps": 900, "finetune_steps": 400, "batch": 32, "seq_len": 256, "layers": 4,
            "run": REPO / "runs" / "transformer"}     # --options left unset take these


def config(args):
    from installation.training.train import PhaseConfig, TrainConfig
    from installation.training.transformer import TransformerConfig

    warmup = getattr(args, "warmup", 0) or 0
    pre = PhaseConfig(steps=args.pretrain_steps, batch=args.batch, seq_len=args.seq_len, lr=1e-3,
                      eval_every=args.eval_every or 100, warmup=warmup)
    fine = PhaseConfig(steps=args.finetune_steps, batch=args.batch, seq_len=args.seq_len,
                       lr=getattr(args, "finetune_lr", None) or 5e-4,
                       eval_every=getattr(args, "finetune_eval_every", None) or args.eval_every or 50, warmup=warmup // 4)
    model = TransformerConfig(d_model=args.d_model, layers=args.layers, heads=args.heads, window=args.window)
    if args.seq_len > args.window:
        raise ValueError(f"--seq-len {args.seq_len} exceeds --window {args.window}: train on windows no longer "
                         "than the run-time window")
    snap = getattr(args, "snapshot_dir", None)
    return TrainConfig(seed=args.seed, threads=args.threads, device=args.device, model=model, pretrain=pre, finetune=fine,
                       snapshot_dir=str(snap) if snap else None)


def run_training(cfg, corpus: D.MusicCorpus, run_dir: Path, progress=None):
    """Both phases, as train.train does for the GRU; returns (model, summary)."""
    from installation.training.train import resolve_device, run_phases
    from installation.training.transformer import TransformerMusicModel, count_parameters

    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(asdict(cfg), indent=2))
    model = TransformerMusicModel(cfg.model)
    dev = resolve_device(cfg.device)
    log.info("training the Transformer (%d parameters) on %s", count_parameters(model), dev)
    model.to(dev)
    summary = run_phases(model, cfg, corpus, run_dir, progress)
    summary["parameters"] = count_parameters(model)
    summary["window_nll"] = window_nll(model, corpus, min(2 * cfg.finetune.seq_len, cfg.model.window))
    if dev.type == "cuda":
        summary["device"] = torch.cuda.get_device_name(dev)
    return model.cpu(), summary


def window_nll(model, corpus: D.MusicCorpus, seq_len: int) -> dict:
    """Validation NLL on windows of ``seq_len`` events (longer than training's) with every control true, under
    the model's run-time window and under the training length: does ALiBi carry past the training length?"""
    from installation.training.train import nll

    rows = corpus.select(split="val", labelled=True, stretch=1.0)
    if len(rows) == 0:
        return {}
    x, y, _, ctrl = D.WindowSampler(corpus, rows, seq_len).fixed(64, seed=99)
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


def time_budget(cfg, minutes: float, finetune_share: float) -> dict:
    """On a GPU: each phase runs for its share of ``minutes`` of wall time (its cosine following the clock,
    learning_rate in train.py) unless early stopping or its step count ends it first; 8% is kept for the
    validations, the final figures and start-up."""
    total = 0.92 * minutes * 60
    cfg.pretrain.max_seconds = round(total * (1 - finetune_share), 1)
    cfg.finetune.max_seconds = round(total * finetune_share, 1)
    log.info("time budget %.1f min: pretrain %.0f s, finetune %.0f s", minutes, cfg.pretrain.max_seconds,
             cfg.finetune.max_seconds)
    return {"minutes": minutes, "pretrain_s": cfg.pretrain.max_seconds, "finetune_s": cfg.finetune.max_seconds}


def fit_budget(cfg, corpus: D.MusicCorpus, run_dir: Path, minutes: float) -> dict:
    """Set both phases' step counts so that training takes about ``minutes`` here and now: a few timed
    steps measure this machine's seconds per step; the steps are shared 2:1 between pretraining and
    finetuning, with 10% kept for validations and the final figures. A resumed run keeps the step
    counts it started with (its learning-rate schedule depends on them)."""
    import torch.nn.functional as F

    from installation.training.train import train_controls
    from installation.training.transformer import TransformerMusicModel

    saved = run_dir / "config.json"
    if saved.is_file() and any((run_dir / f"{p}.pt").is_file() for p in ("pretrain", "finetune")):
        old = json.loads(saved.read_text())
        cfg.pretrain.steps, cfg.finetune.steps = old["pretrain"]["steps"], old["finetune"]["steps"]
        return {"resumed": True, "pretrain_steps": cfg.pretrain.steps, "finetune_steps": cfg.finetune.steps}
    torch.set_num_threads(cfg.threads)
    m = TransformerMusicModel(cfg.model)
    opt = torch.optim.Adam(m.parameters(), lr=1e-4)
    sampler = D.WindowSampler(corpus, corpus.select(split="train"), cfg.pretrain.seq_len)
    rng = np.random.default_rng(0)
    times = []
    for i in range(4):
        t0 = time.time()
        x, y, _, ctrl = sampler.sample(rng, cfg.pretrain.batch)
        c = train_controls(ctrl, rng, cfg.pretrain, False)[:, :m.cfg.control_dim]
        logits, _ = m(torch.from_numpy(x), torch.from_numpy(np.ascontiguousarray(c)))
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


def train(args) -> None:
    """Train the Transformer; writes <run>/model.pt and <run>/summary.json."""
    from tqdm import tqdm

    from installation.training.pipeline import _images, _paths, corpus_summary

    music_path, _, _ = _paths(args)
    corpus = D.load_corpus(music_path)
    cfg = config(args)
    from installation.training.train import resolve_device

    budget = None
    if getattr(args, "budget_min", None):
        if getattr(args, "wall_budget", False) or resolve_device(cfg.device).type == "cuda":
            budget = time_budget(cfg, args.budget_min, args.finetune_share)
        else:
            budget = fit_budget(cfg, corpus, args.run, args.budget_min)
    t0 = time.time()
    model, summary = run_training(cfg, corpus, args.run, progress=tqdm)
    summary["timings"]["total_s_this_process"] = round(time.time() - t0, 1)
    summary["config"] = asdict(cfg)
    # a GPU machine gets the event cache, not ../shared/data: the image counts are then left out
    have_images = (args.data / "images" / "emotion6" / "ground_truth.txt").is_file()
    summary["data"] = corpus_summary(corpus, _images(args) if have_images else None)
    summary["threads"] = torch.get_num_threads()
    summary["budget"] = budget
    torch.save({"model": model.state_dict(), "config": cfg.model.to_dict()}, args.run / "model.pt")
    (args.run / "summary.json").write_text(json.dumps(summary, indent=2))
    log.info("Transformer NLL per event: %s; longer windows: %s", json.dumps(summary["nll"]),
             json.dumps(summary["window_nll"]))


def parity_controls(corpus: D.MusicCorpus, n: int = 4) -> np.ndarray:
    """Real control vectors for the parity check: labelled validation windows (with emotion), one unset."""
    from installation.mood import controls as C

    rows = corpus.select(split="val", labelled=True, stretch=1.0)
    if len(rows) == 0:
        rows = corpus.select(split="train", stretch=1.0)
    _, _, _, ctrl = D.WindowSampler(corpus, rows, 256).fixed(n - 1, seed=5)
    return np.ascontiguousarray(np.concatenate([ctrl, C.unset()[None]])[:, :C.WINDOW_DIM]).astype(np.float32)


def export(args) -> dict:
    """Export <run>/model.pt to <out>/transformer_step.onnx, check parity, write <out>/transformer_manifest.json."""
    from installation.manifest import file_sha256
    from installation.training.export import _git_commit
    from installation.training.pipeline import _paths
    from installation.training.transformer import TransformerConfig, TransformerMusicModel
    from installation.training.transformer_export import check, export_step, parity

    model_path = args.run / "model.pt"
    if not model_path.is_file():
        raise FileNotFoundError(f"{model_path} not found: train it first with "
                                f"`python -m installation.training train --decoder transformer --run {args.run}`")
    ck = torch.load(model_path, map_location="cpu", weights_only=False)
    summary = json.loads((args.run / "summary.json").read_text())
    cfg = TransformerConfig(**ck["config"])
    if getattr(args, "window", None) and args.window != cfg.window:
        # the window is the run-time ring's length; ALiBi's biases are the same for any window, so a model
        # may be exported with another (window_nll in summary.json compares them on validation music)
        log.info("exporting with a %d-event window (trained with %d)", args.window, cfg.window)
        cfg.window = args.window
    model = TransformerMusicModel(cfg)
    model.load_state_dict(ck["model"])
    model.eval()
    out = args.out
    entry = export_step(model, out)
    music_path, _, _ = _paths(args)
    corpus = D.load_corpus(music_path)
    result = parity(model, out / entry["file"], parity_controls(corpus))
    check(result)
    log.info("Transformer parity: %s", result)
    entry.update(sha256=file_sha256(out / entry["file"]), bytes=(out / entry["file"]).stat().st_size,
                 parity=result, parameters=summary.get("parameters"))
    doc = {
        "format": 1,
        "note": "the Transformer decoder's manifest entry; merge models.transformer_step into manifest.json",
        "git_commit": _git_commit(Path(__file__).resolve().parents[2]),
        "exported_with": {"torch": torch.__version__, "python": platform.python_version()},
        "models": {"transformer_step": entry},
        "decoders": {"transformer": {"models": ["transformer_step"], "runtime": "installation.music.transformer_decoder.open_transformer"}},
        "key_templates": summary.get("key_templates"),
        "training": {"command": "python -m installation.training train --decoder transformer",
                     "config": summary.get("config"), "timings": summary.get("timings"),
                     "threads": summary.get("threads"), "device": summary.get("device", "cpu"),
                     "budget": summary.get("budget"), "data": summary.get("data"),
                     "history": {k: summary[k] for k in ("pretrain", "finetune") if k in summary}},
        "metrics": {"nll_per_event_nats": summary.get("nll"), "window_nll": summary.get("window_nll"),
                    "onnx_torch_parity": result},
    }
    # the GRU's NLL windows are 192 events long: the same windows, for a like-for-like comparison
    from installation.training.train import test_nll
    doc["metrics"]["nll_per_event_nats_192_event_windows"] = test_nll(model, corpus, 192)
    (out / "transformer_manifest.json").write_text(json.dumps(doc, indent=2) + "\n")
    merge_into_manifest(out, doc)
    log.info("exported the Transformer to %s", out)
    return doc


def merge_into_manifest(out: Path, doc: dict) -> None:
    """List the Transformer in <out>/manifest.json beside the GRU (when the GRU's manifest is there), with
    its control-guidance weight chosen by the same rule as the GRU's (installation/training/report.py)."""
    path = out / "manifest.json"
    if not path.is_file():
        return
    from installation.manifest import Manifest
    from installation.training.report import choose_guidance

    m = json.loads(path.read_text())
    entry = doc["models"]["transformer_step"]
    if m.get("decoders", {}).get("transformer", {}).get("critic"):
        # the old critic learnt the previous Transformer's phrases: not carried over to a new one
        log.warning("the Transformer's critic (%s) was fitted against the previous Transformer and is no longer "
                    "listed: refit it with `python -m installation.training.critic_fit --decoder transformer --rounds 2`",
                    m["decoders"]["transformer"]["critic"].get("file"))
    m["models"]["transformer_step"] = entry
    m.setdefault("decoders", {})["transformer"] = {"files": ["transformer_step"], "config": entry["config"],
                                                   "training": doc.get("training"), "metrics": doc.get("metrics")}
    m["decoders"]["transformer"]["guidance"] = choose_guidance(Manifest(out, m), kind="transformer", n=12)
    path.write_text(json.dumps(m, indent=2) + "\n")
