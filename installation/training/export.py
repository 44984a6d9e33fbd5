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


class _Init(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, controls):
        return self.model.initial(controls)


class _Step(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, event, hidden, controls):
        return self.model.step(event, hidden, controls)


def export_music_model(model, out: Path) -> dict:
    """decoder_init.onnx: controls -> h0; decoder_step.onnx: one event under controls."""
    model.eval()
    cfg = model.cfg
    c = torch.zeros(2, cfg.control_dim)
    torch.onnx.export(_Init(model), (c,), str(out / "decoder_init.onnx"), input_names=["controls"],
                      output_names=["h0"], dynamic_axes={"controls": {0: "batch"}, "h0": {1: "batch"}},
                      opset_version=OPSET, dynamo=False)
    ev = torch.tensor([1, 300])
    h = torch.zeros(cfg.layers, 2, cfg.hidden)
    torch.onnx.export(_Step(model), (ev, h, c), str(out / "decoder_step.onnx"),
                      input_names=["event", "hidden", "controls"], output_names=["logits", "hidden_out"],
                      dynamic_axes={"event": {0: "batch"}, "hidden": {1: "batch"}, "controls": {0: "batch"},
                                    "logits": {0: "batch"}, "hidden_out": {1: "batch"}},
                      opset_version=OPSET, dynamo=False)
    return {
        "decoder_init": {"inputs": {"controls": ["batch", cfg.control_dim]},
                         "outputs": {"h0": [cfg.layers, "batch", cfg.hidden]}},
        "decoder_step": {"inputs": {"event": ["batch"], "hidden": [cfg.layers, "batch", cfg.hidden],
                                    "controls": ["batch", cfg.control_dim]},
                         "outputs": {"logits": ["batch", cfg.vocab], "hidden_out": [cfg.layers, "batch", cfg.hidden]}},
    }


def parity(model, out: Path, controls: np.ndarray, steps: int = 200, seed: int = 3) -> dict:
    """Run torch and ONNX side by side for ``steps`` events under given control vectors (N, K).

    1. Teacher-forced on the same events: the largest logit difference.
    2. Sampled with the same seed through installation.music.sampling: the two sequences must agree.
    """
    import onnxruntime as ort

    from installation.music.sampling import sample

    so = ort.SessionOptions()
    init_s = ort.InferenceSession(str(out / "decoder_init.onnx"), so, providers=["CPUExecutionProvider"])
    step_s = ort.InferenceSession(str(out / "decoder_step.onnx"), so, providers=["CPUExecutionProvider"])
    c = torch.from_numpy(np.ascontiguousarray(controls, dtype=np.float32))
    model.eval()
    with torch.no_grad():
        h_t = model.initial(c)
    h_o = init_s.run(None, {"controls": c.numpy()})[0]
    max_err = float(np.abs(h_o - h_t.numpy()).max())

    rng_t, rng_o = np.random.default_rng(seed), np.random.default_rng(seed)
    ev_t = ev_o = np.full(len(c), 355, np.int64)          # start with a 1 s time shift
    seq_t, seq_o = [], []
    h_tt, h_oo, forced_h_o = h_t, h_o, h_o
    with torch.no_grad():
        for _ in range(steps):
            lt, h_tt = model.step(torch.from_numpy(ev_t), h_tt, c)
            lo_forced, forced_h_o = step_s.run(None, {"event": ev_t, "hidden": forced_h_o, "controls": c.numpy()})
            max_err = max(max_err, float(np.abs(lo_forced - lt.numpy()).max()))
            lo, h_oo = step_s.run(None, {"event": ev_o, "hidden": h_oo, "controls": c.numpy()})
            ev_t = sample(lt.numpy(), rng_t, 1.0, 0.95)
            ev_o = sample(lo, rng_o, 1.0, 0.95)
            seq_t.append(ev_t)
            seq_o.append(ev_o)
    same = bool(np.array_equal(np.stack(seq_t), np.stack(seq_o)))
    return {"steps": steps, "batch": int(len(c)), "max_abs_logit_err": max_err, "same_sampled_sequence": same, "seed": seed}


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
    """Export the trained run to args.out, check parity, fit the emotion map, measure adherence,
    and write manifest.json and MODEL_CARD.md. The image-emotion model (installation/training/image_emotion.py)
    is fitted on its own; its manifest entry is kept."""
    import json
    import platform

    from installation.mood import controls as C
    from installation.music import events
    from installation.image import preprocess
    from installation.training import data as D
    from installation.training.backbones import sha256
    from installation.training.emotion_map_fit import write_time_windows
    from installation.training.model import ModelConfig, MusicModel
    from installation.training.pipeline import _images, _paths
    from installation.training.report import export_report, write_model_card

    out = args.out
    ck = torch.load(args.run / "model.pt", map_location="cpu", weights_only=False)
    summary = json.loads((args.run / "summary.json").read_text())
    model = MusicModel(ModelConfig(**ck["config"]))
    model.load_state_dict(ck["model"])
    model.eval()
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
    if emap_path.is_file() and not getattr(args, "refit_emotion_map", False):
        # its inputs are the music's own figures (density, velocity, pitch, mode of EMOPIA's time windows), not the
        # decoder: a new decoder keeps it (``python -m installation.training emotion-map`` refits it alone)
        from installation.mood.emotion_map import load as load_emotion_map
        emap = load_emotion_map(emap_path)
        log.info("emotion map kept: %s", emap_path)
    else:
        emap = write_time_windows(args.data, emap_path, limit=getattr(args, "limit_files", None))
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
        if e and (out / e["file"]).is_file() and sha256(out / e["file"]) == e.get("sha256"):
            models[name] = e
    models = {k: models[k] for k in ("encoder", "image_emotion", "decoder_init", "decoder_step", "transformer_step")
              if k in models}
    for name, m in models.items():
        m["sha256"] = sha256(out / m["file"])
        m.setdefault("opset", OPSET)
        m["bytes"] = (out / m["file"]).stat().st_size
    manifest = {
        "format": 2,
        "git_commit": _git_commit(Path(__file__).resolve().parents[2]),
        "exported_with": {"torch": torch.__version__, "python": platform.python_version()},
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
    manifest["metrics"].update(export_report(out, manifest, pieces=getattr(args, "report_pieces", 48)))
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    write_model_card(out / "MODEL_CARD.md", manifest)
    log.info("exported to %s", out)
    return manifest
