"""Export to ONNX: the image encoder, the conditioner and the one-step decoder, with parity checks."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from installation.music.sampling import sample
from installation.training.backbones import AllOutputs

OPSET = 17


def export_encoder(net: torch.nn.Module, path: Path) -> dict:
    """(N, 3, 224, 224) float32 0..255 RGB 'image' -> (N, D) 'embedding' and (N, D2) 'features_mid'
    (pooled earlier stages, backbones.Normalized.forward_all); checks ORT against torch on both."""
    import onnxruntime as ort

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


def git_commit(repo: Path) -> str:
    import subprocess

    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo,
                               capture_output=True, text=True).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except Exception:
        return "unknown"
