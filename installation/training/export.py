"""Export to ONNX: the image encoder, the conditioner and the one-step decoder, with parity checks."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger(__name__)

OPSET = 17


def export_encoder(net: torch.nn.Module, path: Path) -> dict:
    """(N, 3, 224, 224) float32 0..255 RGB 'image' -> (N, D) 'embedding' and (N, D2) 'features_mid'
    (pooled earlier stages, backbones.Normalized.forward_all); checks ORT against torch on both."""
    import onnxruntime as ort

    from installation.training.backbones import AllOutputs

    path.parent.mkdir(parents=True, exist_ok=True)
    full = AllOutputs(net).eval()
    x = torch.rand(2, 3, 224, 224) * 255
    torch.onnx.export(full, (x,), str(path), input_names=["image"], output_names=["embedding", "features_mid"],
                      dynamic_axes={"image": {0: "batch"}, "embedding": {0: "batch"}, "features_mid": {0: "batch"}},
                      opset_version=OPSET, dynamo=False)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = torch.rand(3, 3, 224, 224) * 255
    with torch.no_grad():
        ref = net(x).numpy()
        ref_all = [t.numpy() for t in full(x)]
    got = sess.run(None, {"image": x.numpy()})
    err = float(max(np.abs(got[0] - ref).max(), *(np.abs(g - r).max() for g, r in zip(got, ref_all))))
    if err > 1e-3:
        raise RuntimeError(f"{path}: ONNX encoder differs from torch by {err}")
    return {"inputs": {"image": ["batch", 3, 224, 224]},
            "outputs": {"embedding": ["batch", net.dim], "features_mid": ["batch", net.mid_dim]},
            "parity_max_abs_err": err}


class _Step(torch.nn.Module):
    def __init__(self, decoder):
        super().__init__()
        self.decoder = decoder

    def forward(self, event, hidden, cond):
        return self.decoder.step(event, hidden, cond)


def export_music_model(model, out: Path) -> dict:
    """conditioner.onnx: embedding -> cond, h0, valence_arousal; decoder_step.onnx: one event."""
    model.eval()
    cfg = model.cfg
    f = torch.randn(2, cfg.feature_dim)
    torch.onnx.export(model.conditioner, (f,), str(out / "conditioner.onnx"), input_names=["embedding"],
                      output_names=["cond", "h0", "valence_arousal", "quadrant_probs"],
                      dynamic_axes={"embedding": {0: "batch"}, "cond": {0: "batch"}, "h0": {1: "batch"},
                                    "valence_arousal": {0: "batch"}, "quadrant_probs": {0: "batch"}},
                      opset_version=OPSET, dynamo=False)
    ev = torch.tensor([1, 300])
    h = torch.zeros(cfg.layers, 2, cfg.hidden)
    c = torch.zeros(2, cfg.cond_dim)
    torch.onnx.export(_Step(model.decoder), (ev, h, c), str(out / "decoder_step.onnx"),
                      input_names=["event", "hidden", "cond"], output_names=["logits", "hidden_out"],
                      dynamic_axes={"event": {0: "batch"}, "hidden": {1: "batch"}, "cond": {0: "batch"},
                                    "logits": {0: "batch"}, "hidden_out": {1: "batch"}},
                      opset_version=OPSET, dynamo=False)
    return {
        "conditioner": {"inputs": {"embedding": ["batch", cfg.feature_dim]},
                        "outputs": {"cond": ["batch", cfg.cond_dim], "h0": [cfg.layers, "batch", cfg.hidden],
                                    "valence_arousal": ["batch", 2], "quadrant_probs": ["batch", 4]}},
        "decoder_step": {"inputs": {"event": ["batch"], "hidden": [cfg.layers, "batch", cfg.hidden],
                                    "cond": ["batch", cfg.cond_dim]},
                         "outputs": {"logits": ["batch", cfg.vocab], "hidden_out": [cfg.layers, "batch", cfg.hidden]}},
    }


def parity(model, out: Path, features: np.ndarray, steps: int = 200, seed: int = 3) -> dict:
    """Run torch and ONNX side by side for ``steps`` events from real image features.

    1. Teacher-forced on the same events: the largest logit difference.
    2. Sampled with the same seed through installation.sampling: the two sequences must agree.
    """
    import onnxruntime as ort

    from installation.sampling import sample

    so = ort.SessionOptions()
    cond_s = ort.InferenceSession(str(out / "conditioner.onnx"), so, providers=["CPUExecutionProvider"])
    step_s = ort.InferenceSession(str(out / "decoder_step.onnx"), so, providers=["CPUExecutionProvider"])
    feats = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))
    model.eval()
    with torch.no_grad():
        torch_out = model.conditioner(feats)
    onnx_out = cond_s.run(None, {"embedding": feats.numpy()})
    max_err = float(max(np.abs(o - t.numpy()).max() for o, t in zip(onnx_out, torch_out)))
    c_t, h_t = torch_out[0], torch_out[1]
    c_o, h_o = onnx_out[0], onnx_out[1]

    rng_t, rng_o = np.random.default_rng(seed), np.random.default_rng(seed)
    ev_t = ev_o = np.full(len(feats), 355, np.int64)          # start with a 1 s time shift
    seq_t, seq_o = [], []
    h_tt, h_oo = h_t, h_o
    forced_h_o = h_o
    with torch.no_grad():
        for _ in range(steps):
            lt, h_tt = model.decoder.step(torch.from_numpy(ev_t), h_tt, c_t)
            lo_forced, forced_h_o = step_s.run(None, {"event": ev_t, "hidden": forced_h_o, "cond": c_o})
            max_err = max(max_err, float(np.abs(lo_forced - lt.numpy()).max()))
            lo, h_oo = step_s.run(None, {"event": ev_o, "hidden": h_oo, "cond": c_o})
            ev_t = sample(lt.numpy(), rng_t, 1.0, 0.95)
            ev_o = sample(lo, rng_o, 1.0, 0.95)
            seq_t.append(ev_t)
            seq_o.append(ev_o)
    same = bool(np.array_equal(np.stack(seq_t), np.stack(seq_o)))
    return {"steps": steps, "batch": int(len(feats)), "max_abs_logit_err": max_err, "same_sampled_sequence": same, "seed": seed}


def _git_commit(repo: Path) -> str:
    import subprocess

    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo,
                               capture_output=True, text=True).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except Exception:
        return "unknown"


def export_all(args) -> dict:
    """Export the trained run to args.out, check parity, write manifest.json and MODEL_CARD.md."""
    import json
    import platform

    from installation import events, preprocess
    from installation.training.backbones import sha256
    from installation.training.model import ModelConfig, MusicModel
    from installation.training.pipeline import _images, _paths
    from installation.training.report import quadrant_report, write_model_card

    out = args.out
    ck = torch.load(args.run / "model.pt", map_location="cpu", weights_only=False)
    summary = json.loads((args.run / "summary.json").read_text())
    model = MusicModel(ModelConfig(**ck["config"]))
    model.load_state_dict(ck["model"])
    model.eval()
    io = export_music_model(model, out)

    _, feat_path, enc_path = _paths(args)
    images = _images(args)
    feats = np.load(feat_path, allow_pickle=True)["features"]
    test_idx = np.flatnonzero(images.test)
    check = parity(model, out, feats[test_idx[:4], 0])
    if check["max_abs_logit_err"] > 1e-4 or not check["same_sampled_sequence"]:
        raise RuntimeError(f"ONNX and torch disagree: {check}")
    log.info("parity: %s", check)

    enc_info = json.loads((args.cache / "encoder_info.json").read_text())
    enc_io = {k: enc_info[k] for k in ("inputs", "outputs")}
    models = {
        "encoder": {"file": enc_path.name, **enc_io, "backbone": enc_info["backbone"],
                    "weights": {k: enc_info.get(k) for k in ("weights_file", "weights_sha256", "weights_source")},
                    "parity_max_abs_err": enc_info["parity_max_abs_err"]},
        "conditioner": {"file": "conditioner.onnx", **io["conditioner"]},
        "decoder_step": {"file": "decoder_step.onnx", **io["decoder_step"]},
    }
    for name, m in models.items():
        m["sha256"] = sha256(out / m["file"])
        m["opset"] = OPSET
        m["bytes"] = (out / m["file"]).stat().st_size
    # the image-emotion model (python -m installation.training.image_emotion) is fitted separately: keep its entry
    previous = json.loads((out / "manifest.json").read_text()).get("models", {}) if (out / "manifest.json").exists() else {}
    emo = previous.get("image_emotion")
    if emo and (out / emo["file"]).is_file() and sha256(out / emo["file"]) == emo["sha256"]:
        models["image_emotion"] = emo
    manifest = {
        "format": 1,
        "git_commit": _git_commit(Path(__file__).resolve().parents[2]),
        "exported_with": {"torch": torch.__version__, "python": platform.python_version()},
        "models": models,
        "vocabulary": events.vocabulary_spec(),
        "preprocessing": preprocess.SPEC,
        "model_config": ck["config"],
        "emotion": {"valence_arousal_output": "standardised Emotion6 ratings: ((V - 5) / 4, (A - median A) / 4)",
                    "arousal_median": float(images.arousal_split)},
        "training": {"command": "python -m installation.training all", "data": summary["data"],
                     "config": summary["config"], "emotion_head": summary.get("emotion_head"),
                     "history": {k: summary[k] for k in ("pretrain", "finetune")}},
        "metrics": {"nll_per_event_nats": summary["nll"], "onnx_torch_parity": check},
    }
    # what music the held-out images of each quadrant get, through the runtime's own path
    report = quadrant_report(out, manifest, images, feats[:, 0])
    manifest["metrics"]["generated_by_quadrant"] = report
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    write_model_card(out / "MODEL_CARD.md", manifest)
    log.info("exported to %s", out)
    return manifest
