"""The steps of ``python -m installation.training``: prepare, train, export, image-emotion."""
from __future__ import annotations

import json
import logging
from dataclasses import asdict

import numpy as np
from tqdm import tqdm

from installation.training import data as D

log = logging.getLogger("installation.training")


def _paths(args):
    suffix = "" if args.limit_files is None else f"_limit{args.limit_files}"
    suffix += "_pop909" if getattr(args, "pop909", False) else ""
    isuffix = "" if args.limit_images is None else f"_limit{args.limit_images}"
    return (args.cache / f"music{suffix}.npz",
            args.cache / f"features_{args.backbone}{isuffix}.npz",
            args.out / "encoder.onnx")


def _images(args) -> D.ImageSet:
    images = D.load_emotion6(args.data)
    if args.limit_images is not None:               # a quick pipeline check: keep every k-th image
        k = max(1, len(images.rel) // args.limit_images)
        keep = np.arange(0, len(images.rel), k)[: args.limit_images]
        images = D.ImageSet([images.rel[i] for i in keep], images.valence[keep], images.arousal[keep],
                            images.quadrant[keep], images.test[keep], images.arousal_split)
    return images


def prepare(args) -> None:
    """Export the encoder, encode all MIDI into events, and cache the image features."""
    from installation.training.backbones import build
    from installation.training.export import export_encoder
    from installation.training.features import cache_features

    _, feat_path, enc_path = _paths(args)
    args.cache.mkdir(parents=True, exist_ok=True)
    net, info = build(args.backbone, args.weights)
    info.update(export_encoder(net, enc_path))
    (args.cache / "encoder_info.json").write_text(json.dumps(info, indent=2))
    log.info("encoder %s exported to %s (parity %.2e)", args.backbone, enc_path, info["parity_max_abs_err"])
    prepare_music(args)
    images = _images(args)
    feats = cache_features(enc_path, args.data, images.rel, feat_path, progress=tqdm)
    log.info("image features %s: %s", feat_path, feats.shape)


def prepare_music(args) -> None:
    """Encode all MIDI into the event cache only (``prepare-music``: the encoder ONNX is left alone)."""
    music_path, _, _ = _paths(args)
    args.cache.mkdir(parents=True, exist_ok=True)
    pieces = D.list_music(args.data, pop909=getattr(args, "pop909", False))
    if args.limit_files is not None:
        by_src: dict[str, list] = {}
        for p in pieces:
            by_src.setdefault(p.source, []).append(p)
        pieces = [p for ps in by_src.values() for p in ps[:: max(1, len(ps) // args.limit_files)][: args.limit_files]]
    def cached_pieces():
        try:
            return [p.rel for p in D.load_corpus(music_path).pieces]
        except ValueError:                      # an older vocabulary's cache: encode again
            return None

    if music_path.exists() and cached_pieces() == [p.rel for p in pieces]:
        log.info("event cache %s is up to date", music_path)
    else:
        corpus = D.encode_corpus(args.data, pieces, progress=tqdm, one_stretch=("pop909",))
        D.save_corpus(corpus, music_path)
        log.info("encoded %d files into %d events (%d skipped: %s)", len(pieces) - len(corpus.skipped),
                 len(corpus.tokens), len(corpus.skipped), ", ".join(corpus.skipped) or "none")


def _seconds(minutes):
    return None if minutes is None else 60.0 * minutes


def _config(args):
    from installation.training.model import ModelConfig
    from installation.training.train import PhaseConfig, TrainConfig

    patience = getattr(args, "patience", 3)
    pre = PhaseConfig(steps=args.pretrain_steps, batch=args.batch, seq_len=args.seq_len,
                      lr=getattr(args, "pretrain_lr", 2e-3), eval_every=args.eval_every or 100, patience=patience,
                      max_seconds=_seconds(getattr(args, "pretrain_minutes", None)))
    fine = PhaseConfig(steps=args.finetune_steps, batch=args.batch, seq_len=args.seq_len,
                       lr=getattr(args, "gru_finetune_lr", 1e-3), eval_every=args.eval_every or 50, patience=patience,
                       max_seconds=_seconds(getattr(args, "finetune_minutes", None)))
    warm = getattr(args, "warm_start", None)
    return TrainConfig(seed=args.seed, threads=args.threads, device=args.device,
                       model=ModelConfig(hidden=args.hidden, layers=args.layers),
                       pretrain=pre, finetune=fine, warm_start=str(warm) if warm else None)


def train(args) -> None:
    """Pretrain and finetune; writes runs/<name>/model.pt (best weights + config) and summary.json."""
    if getattr(args, "decoder", "gru") == "transformer":
        from installation.training import transformer_pipeline
        return transformer_pipeline.train(args)
    import torch

    from installation.training.train import train as run

    music_path, _, _ = _paths(args)
    corpus = D.load_corpus(music_path)
    images = _images(args)
    cfg = _config(args)
    import time
    t0 = time.time()
    model, summary = run(cfg, corpus, args.run, progress=tqdm)
    summary["seconds"] = round(time.time() - t0)            # this invocation (a resumed run counts its last part)
    import sys
    summary["command"] = "python -m installation.training " + " ".join(sys.argv[1:])
    warm = args.run / "warm_start.json"
    if warm.is_file():
        summary["warm_start"] = json.loads(warm.read_text())
    summary["config"] = asdict(cfg)
    summary["data"] = corpus_summary(corpus, images)
    torch.save({"model": model.state_dict(), "config": cfg.model.to_dict()}, args.run / "model.pt")
    (args.run / "summary.json").write_text(json.dumps(summary, indent=2))
    log.info("NLL per event: %s", json.dumps(summary["nll"]))


def corpus_summary(corpus: D.MusicCorpus, images: D.ImageSet | None) -> dict:
    """Counts for the manifest and model card (``images`` None: the music alone)."""
    files: dict[str, dict[str, int]] = {}
    for p in corpus.pieces:
        files.setdefault(p.source, {}).setdefault(p.split, 0)
        files[p.source][p.split] += 1
    one = corpus.index[corpus.index[:, 3] == D.STRETCHES.index(1.0)]
    out = {
        "music_files": files,
        "music_events_unstretched": int(one[:, 1].sum()),
        "skipped_files": corpus.skipped,
        "tempo_stretches": list(D.STRETCHES),
        "transpose_semitones": 3,
    }
    if images is None:
        return out
    out["emotion6_images"] = ( {"train": int((~images.test).sum()), "test": int(images.test.sum()),
                            "arousal_split_median": images.arousal_split,
                            "per_quadrant_test": [int(((images.quadrant == q) & images.test).sum()) for q in range(4)]})
    return out


def export(args) -> None:
    if getattr(args, "decoder", "gru") == "transformer":
        from installation.training import transformer_pipeline
        transformer_pipeline.export(args)
        return
    from installation.training.export import export_all

    export_all(args)


def image_emotion(args) -> None:
    """Fit the image -> valence/arousal model (installation/training/image_emotion.py) and add it to the manifest."""
    from installation.training import image_emotion as IE

    argv = ["--data", str(args.data), "--cache", str(args.cache), "--out", str(args.out),
            "--work", str(args.cache / "image_emotion"), "--backbone", args.backbone]
    if args.limit_images is not None:
        argv += ["--limit-images", str(args.limit_images)]
    IE.run(IE.parse(argv))


def emotion_map(args) -> None:
    """Refit the emotion map on time windows of the labelled training music and write it beside the models
    (emotion_map.toml and the manifest's emotion_map entry); the decoders are untouched."""
    from installation.training.emotion_map_fit import write_time_windows

    path = args.out / "emotion_map.toml"
    emap = write_time_windows(args.data, path, limit=getattr(args, "limit_files", None))
    man = args.out / "manifest.json"
    if man.is_file():
        d = json.loads(man.read_text())
        d["emotion_map"] = emap.to_dict()
        man.write_text(json.dumps(d, indent=2) + "\n")
    log.info("emotion map written to %s", path)
