"""The steps of ``python -m installation.training``: prepare, train, export, image-emotion, emotion-map.

One pipeline for either decoder (``--decoder gru|transformer``): the same data, phases, losses, early stopping
and resumable checkpoints (installation/training/train.py); the decoder's config picks the model, its defaults
(DEFAULTS) and what ``export`` writes:

gru          decoder_init.onnx + decoder_step.onnx, parity, the emotion map, adherence, manifest.json and
             MODEL_CARD.md (default run folder: runs/shipped)
transformer  transformer_step.onnx, a parity check past the window's wrap, transformer_manifest.json (the manifest
             entry ``transformer_step`` with the training figures), merged into manifest.json beside the GRU
             when that is there (default run folder: runs/transformer)
"""
from __future__ import annotations

import json
import logging
import platform
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
from tqdm import tqdm

from installation.image import preprocess
from installation.manifest import Manifest, file_sha256
from installation.mood import controls as C
from installation.mood.emotion_map import load as load_emotion_map
from installation.music import events
from installation.training import data as D, image_emotion as IE
from installation.training.emotion_map_fit import write_time_windows
from installation.training.features import cache_features
from installation.training.report import choose_guidance, export_report, write_model_card

log = logging.getLogger("installation.training")

REPO = Path(__file__).resolve().parents[2]
DEFAULTS = {   # --options left unset take the decoder's
    "gru": {"pretrain_steps": 1600, "finetune_steps": 1200, "batch": 48, "seq_len": 192, "layers": 2,
            "pretrain_lr": 2e-3, "finetune_lr": 1e-3, "run": REPO / "runs" / "shipped"},
    "transformer": {"pretrain_steps": 900, "finetune_steps": 400, "batch": 32, "seq_len": 256, "layers": 4,
                    "pretrain_lr": 1e-3, "finetune_lr": 5e-4, "run": REPO / "runs" / "transformer"},
}


def _paths(args):
    suffix = "" if args.limit_files is None else f"_limit{args.limit_files}"
    suffix += "_pop909" if args.pop909 else ""
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
    # lazy: torch, only for the steps that train or export
    from installation.training.backbones import build
    from installation.training.export import export_encoder
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
    pieces = D.list_music(args.data, pop909=args.pop909)
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


def config(args):
    """The TrainConfig of the options: the decoder's model config and the two phases."""
    # lazy: torch, only for the steps that train or export
    from installation.training.model import ModelConfig
    from installation.training.train import PhaseConfig, TrainConfig
    from installation.training.transformer import TransformerConfig

    transformer = args.decoder == "transformer"
    warmup = args.warmup or 0
    pre = PhaseConfig(steps=args.pretrain_steps, batch=args.batch, seq_len=args.seq_len, lr=args.pretrain_lr,
                      eval_every=args.eval_every or 100, patience=args.patience, warmup=warmup,
                      max_seconds=_seconds(args.pretrain_minutes))
    fine = PhaseConfig(steps=args.finetune_steps, batch=args.batch, seq_len=args.seq_len, lr=args.finetune_lr,
                       eval_every=args.finetune_eval_every or args.eval_every or 50, patience=args.patience,
                       warmup=warmup // 4, max_seconds=_seconds(args.finetune_minutes))
    if transformer:
        model = TransformerConfig(d_model=args.d_model, layers=args.layers, heads=args.heads, window=args.window)
        if args.seq_len > args.window:
            raise ValueError(f"--seq-len {args.seq_len} exceeds --window {args.window}: train on windows no longer "
                             "than the run-time window")
        if args.warm_start:
            raise ValueError("--warm-start starts the GRU from its exported ONNX weights: not for --decoder transformer")
    else:
        model = ModelConfig(hidden=args.hidden, layers=args.layers)
    return TrainConfig(seed=args.seed, threads=args.threads, device=args.device, model=model, pretrain=pre,
                       finetune=fine, warm_start=str(args.warm_start) if args.warm_start else None,
                       snapshot_dir=str(args.snapshot_dir) if args.snapshot_dir else None)


def train(args) -> None:
    """Pretrain and finetune the decoder; writes <run>/model.pt (best weights + config) and <run>/summary.json."""
    import torch

    # lazy: torch, only for the steps that train or export
    from installation.training import train as T

    cfg = config(args)                                  # bad options fail before the cache is read
    music_path, _, _ = _paths(args)
    corpus = D.load_corpus(music_path)
    budget = None
    if args.budget_min:
        if args.wall_budget or T.resolve_device(cfg.device).type == "cuda":
            budget = T.time_budget(cfg, args.budget_min, args.finetune_share)
        else:
            budget = T.fit_budget(cfg, corpus, args.run, args.budget_min)
    t0 = time.time()
    model, summary = T.train(cfg, corpus, args.run, progress=tqdm)
    summary["seconds"] = round(time.time() - t0)            # this invocation (a resumed run counts its last part)
    summary["timings"]["total_s_this_process"] = round(time.time() - t0, 1)
    summary["command"] = "python -m installation.training " + " ".join(sys.argv[1:])
    warm = args.run / "warm_start.json"
    if warm.is_file():
        summary["warm_start"] = json.loads(warm.read_text())
    summary["config"] = asdict(cfg)
    # a GPU machine gets the event cache, not ../shared/data: the image counts are then left out
    have_images = (args.data / "images" / "emotion6" / "ground_truth.txt").is_file()
    summary["data"] = corpus_summary(corpus, _images(args) if have_images else None)
    summary["threads"] = torch.get_num_threads()
    summary["budget"] = budget
    torch.save({"model": model.state_dict(), "config": cfg.model.to_dict()}, args.run / "model.pt")
    (args.run / "summary.json").write_text(json.dumps(summary, indent=2))
    log.info("NLL per event: %s%s", json.dumps(summary["nll"]),
             f"; longer windows: {json.dumps(summary['window_nll'])}" if "window_nll" in summary else "")


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


def _trained(args, window: int | None = None):
    """The run's best model (eval mode), its checkpoint and summary.json; ``window``: the Transformer's ring
    length at run time, when it is exported with another than it was trained with."""
    import torch

    # lazy: torch, only for the steps that train or export
    from installation.training.model import ModelConfig
    from installation.training.train import build
    from installation.training.transformer import TransformerConfig

    model_path = args.run / "model.pt"
    if not model_path.is_file():
        raise FileNotFoundError(f"{model_path} not found: train it first with "
                                f"`python -m installation.training train --decoder {args.decoder} --run {args.run}`")
    ck = torch.load(model_path, map_location="cpu", weights_only=False)
    cfg = (TransformerConfig if args.decoder == "transformer" else ModelConfig)(**ck["config"])
    if window and window != cfg.window:
        # ALiBi's biases are the same for any window, so a model may be exported with another
        # (window_nll in summary.json compares them on validation music)
        log.info("exporting with a %d-event window (trained with %d)", window, cfg.window)
        cfg.window = window
    model = build(cfg)
    model.load_state_dict(ck["model"])
    model.eval()
    return model, ck, json.loads((args.run / "summary.json").read_text())


def _provenance() -> dict:
    import torch

    # lazy: torch, only for the steps that train or export
    from installation.training.export import git_commit
    return {"git_commit": git_commit(REPO),
            "exported_with": {"torch": torch.__version__, "python": platform.python_version()}}


def export(args) -> dict:
    """Export the trained run to args.out as the decoder's ONNX graphs, check parity, write the manifest."""
    return export_transformer(args) if args.decoder == "transformer" else export_gru(args)


def image_emotion(args) -> None:
    """Fit the image -> valence/arousal model (installation/training/image_emotion.py) and add it to the manifest."""
    argv = ["--data", str(args.data), "--cache", str(args.cache), "--out", str(args.out),
            "--work", str(args.cache / "image_emotion"), "--backbone", args.backbone]
    if args.limit_images is not None:
        argv += ["--limit-images", str(args.limit_images)]
    IE.run(IE.parse(argv))


def emotion_map(args) -> None:
    """Refit the emotion map on time windows of the labelled training music and write it beside the models
    (emotion_map.toml and the manifest's emotion_map entry); the decoders are untouched."""
    path = args.out / "emotion_map.toml"
    emap = write_time_windows(args.data, path, limit=args.limit_files)
    man = args.out / "manifest.json"
    if man.is_file():
        d = json.loads(man.read_text())
        d["emotion_map"] = emap.to_dict()
        man.write_text(json.dumps(d, indent=2) + "\n")
    log.info("emotion map written to %s", path)


def export_gru(args) -> dict:
    """Export the trained run to args.out, check parity, fit the emotion map, measure adherence,
    and write manifest.json and MODEL_CARD.md. The image-emotion model (installation/training/image_emotion.py)
    is fitted on its own; its manifest entry is kept."""
    # lazy: torch, only for the steps that train or export
    from installation.training.export import OPSET, export_music_model, parity
    out = args.out
    model, ck, summary = _trained(args)
    io = export_music_model(model, out)

    music_path, _, enc_path = _paths(args)
    corpus = D.load_corpus(music_path)
    images = _images(args)
    rows = corpus.select(split="val", stretch=1.0)
    _, _, _, ctrl, chords, _ = D.WindowSampler(corpus, rows, 192).fixed_steps(4, seed=99)
    ctrl[:, C.CHORD:C.CHORD + 13] = chords[:, 0]          # a chord asked, as the run time asks it
    check = parity(model, out, ctrl)
    if check["max_abs_logit_err"] > 1e-4 or not check["same_sampled_sequence"]:
        raise RuntimeError(f"ONNX and torch disagree: {check}")
    log.info("parity: %s", check)
    emap_path = out / "emotion_map.toml"
    if emap_path.is_file() and not args.refit_emotion_map:
        # its inputs are the music's own figures (density, velocity, pitch, mode of EMOPIA's time windows), not the
        # decoder: a new decoder keeps it (``python -m installation.training emotion-map`` refits it alone)
        emap = load_emotion_map(emap_path)
        log.info("emotion map kept: %s", emap_path)
    else:
        emap = write_time_windows(args.data, emap_path, limit=args.limit_files)
        log.info("emotion map fitted and written to %s", emap_path)

    # kept from the manifest being replaced, when their files are unchanged: the encoder (the image-emotion
    # step may re-export it) and the image-emotion model (python -m installation.training.image_emotion)
    previous = json.loads((out / "manifest.json").read_text()).get("models", {}) if (out / "manifest.json").exists() else {}
    models = {
        "decoder_init": {"file": "decoder_init.onnx", **io["decoder_init"]},
        "decoder_step": {"file": "decoder_step.onnx", **io["decoder_step"]},
    }
    info_path = args.cache / "encoder_info.json"
    if info_path.is_file():                      # `prepare` exported the encoder: describe it afresh
        enc_info = json.loads(info_path.read_text())
        models["encoder"] = {"file": enc_path.name, **{k: enc_info[k] for k in ("inputs", "outputs")},
                             "backbone": enc_info["backbone"],
                             "weights": {k: enc_info.get(k) for k in ("weights_file", "weights_sha256", "weights_source")},
                             "parity_max_abs_err": enc_info["parity_max_abs_err"]}
    elif "encoder" not in previous:
        raise FileNotFoundError(f"{info_path}: no encoder description; run `python -m installation.training prepare`")
    for name in ("encoder", "image_emotion", "transformer_step"):
        e = previous.get(name)
        if e and (out / e["file"]).is_file() and file_sha256(out / e["file"]) == e.get("sha256"):
            models[name] = e
    models = {k: models[k] for k in ("encoder", "image_emotion", "decoder_init", "decoder_step", "transformer_step")
              if k in models}
    for name, m in models.items():
        m["sha256"] = file_sha256(out / m["file"])
        m.setdefault("opset", OPSET)
        m["bytes"] = (out / m["file"]).stat().st_size
    manifest = {
        "format": 2,
        **_provenance(),
        "models": models,
        "decoders": {"gru": {"files": ["decoder_init", "decoder_step"], "config": ck["config"]}},
        "default_decoder": "gru",
        "vocabulary": events.vocabulary_spec(),
        "preprocessing": preprocess.SPEC,
        "model_config": ck["config"],
        "controls": {"dim": C.CONTROL_DIM, "groups": list(C.GROUPS),
                     "layout": "key 0-13 (histogram 12, major, minor), density 14, loudness 15, register 16, "
                               "emotion 17-18 (valence, arousal), unset flags 19-23 (one per group); "
                               "chord 24-35 (binary pitch classes of the chord in force, written at every step), "
                               "its unset flag 36",
                     "window_dim": C.WINDOW_DIM, "chord": C.CHORD, "chord_flag": C.CHORD_FLAG,
                     "key_templates": summary["key_templates"]},
        "emotion_map": emap.to_dict(),
        "emotion": {"valence_arousal": "each in [-1, 1]; 0 = the quadrant split (Emotion6: V = 5; A = the median)",
                    "arousal_median": float(images.arousal_split)},
        "training": {"command": summary.get("command", "python -m installation.training all"), "data": summary["data"],
                     "warm_start": summary.get("warm_start"),
                     "config": summary["config"],
                     "history": {k: summary[k] for k in ("pretrain", "finetune")},
                     "seconds": summary.get("seconds")},
        "metrics": {"nll_per_event_nats": summary["nll"], "onnx_torch_parity": check},
    }
    if "transformer_step" in models:              # the Transformer (export --decoder transformer) stays listed
        old_dec = json.loads((out / "manifest.json").read_text()).get("decoders", {})
        if "transformer" in old_dec:
            manifest["decoders"]["transformer"] = old_dec["transformer"]
    if (out / "critic.json").is_file():
        log.warning("%s was fitted against the previous decoder and is not listed in the new manifest: refit it with "
                    "`python -m installation.training.critic_fit --rounds 2`", out / "critic.json")
    manifest["metrics"].update(export_report(out, manifest, pieces=args.report_pieces))
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    write_model_card(out / "MODEL_CARD.md", manifest)
    log.info("exported to %s", out)
    return manifest


def parity_controls(corpus: D.MusicCorpus, n: int = 4) -> np.ndarray:
    """Real control vectors for the parity check: labelled validation windows (with emotion), one unset."""
    rows = corpus.select(split="val", labelled=True, stretch=1.0)
    if len(rows) == 0:
        rows = corpus.select(split="train", stretch=1.0)
    _, _, _, ctrl = D.WindowSampler(corpus, rows, 256).fixed(n - 1, seed=5)
    return np.ascontiguousarray(np.concatenate([ctrl, C.unset()[None]])[:, :C.WINDOW_DIM]).astype(np.float32)


def export_transformer(args) -> dict:
    """Export <run>/model.pt to <out>/transformer_step.onnx, check parity, write <out>/transformer_manifest.json."""
    # lazy: torch, only for the steps that train or export
    from installation.training.train import test_nll
    from installation.training.transformer_export import check, export_step, parity

    model, _, summary = _trained(args, window=args.window)
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
        **_provenance(),
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
