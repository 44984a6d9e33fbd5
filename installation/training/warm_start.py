"""Start a GRU from the shipped one: its weights read back from the exported ONNX files, checked, then widened.

The ONNX initializers carry the torch parameter names (``model.gru.weight_ih_l0`` ...). They are loaded into a
model of the shipped shape (24 controls, 388 events), whose step logits must match ONNX Runtime's to ~1e-5 on
sampled events, and then extended to the current vocabulary and controls:

- the embedding and the head get rows for the new events (the pedal): embeddings near the mean of the old ones,
  head weights small, head biases low (the pedal starts rare and is learnt);
- the GRU's first layer gets input columns for the per-step controls (the chord), zero: the extended model plays
  exactly as the shipped one until training teaches it the chord;
- the control MLP stays on the first 24 controls.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch

from installation.music.sampling import sample
from installation.training.model import ModelConfig, MusicModel

log = logging.getLogger(__name__)


def onnx_state(folder: Path) -> tuple[dict, dict]:
    """The shipped GRU's state dict (torch names) and its config, from decoder_init.onnx and decoder_step.onnx."""
    import onnx
    from onnx import numpy_helper

    state = {}
    for name in ("decoder_init.onnx", "decoder_step.onnx"):
        for init in onnx.load(str(folder / name)).graph.initializer:
            if init.name.startswith("model."):
                state[init.name[len("model."):]] = torch.from_numpy(numpy_helper.to_array(init).copy())
    config = json.loads((folder / "manifest.json").read_text())["decoders"]["gru"]["config"]
    return state, config


def check_against_onnx(model: MusicModel, folder: Path, steps: int = 64, seed: int = 0) -> float:
    """The largest |logit| difference between torch and the ONNX step graph over ``steps`` sampled events."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    init = ort.InferenceSession(str(folder / "decoder_init.onnx"), opts, providers=["CPUExecutionProvider"])
    step = ort.InferenceSession(str(folder / "decoder_step.onnx"), opts, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(3, model.cfg.control_dim)).astype(np.float32)
    model.eval()
    with torch.no_grad():
        h_t = model.initial(torch.from_numpy(c))
        h_o = init.run(None, {"controls": c})[0]
        err = float(np.abs(h_t.numpy() - h_o).max())
        ev = np.full(3, 355, np.int64)
        for _ in range(steps):
            lt, h_t = model.step(torch.from_numpy(ev), h_t, torch.from_numpy(c))
            lo, h_o = step.run(None, {"event": ev, "hidden": h_o, "controls": c})
            err = max(err, float(np.abs(lt.numpy() - lo).max()))
            ev = sample(lo, rng, 1.0, 0.95)
    return err


def extend(old: dict, old_cfg: ModelConfig, new: MusicModel, pedal_bias: float = -3.0, seed: int = 0) -> None:
    """Copy the old weights into ``new`` (a wider vocabulary and more per-step controls), in place."""
    g = torch.Generator().manual_seed(seed)
    sd = new.state_dict()
    V0, V = old_cfg.vocab, new.cfg.vocab
    for k, v in old.items():
        t = sd[k]
        if k == "embed.weight":
            t[:V0] = v
            t[V0:] = v.mean(0) + 0.1 * v.std() * torch.randn(V - V0, v.shape[1], generator=g)
        elif k == "head.weight":
            t[:V0] = v
            t[V0:] = 0.1 * v.std() * torch.randn(V - V0, v.shape[1], generator=g)
        elif k == "head.bias":
            t[:V0] = v
            t[V0:] = float(v.median()) + pedal_bias
        elif k == "gru.weight_ih_l0":
            t.zero_()
            t[:, :v.shape[1]] = v                       # [embed, cond] as before, the chord's columns 0
        else:
            t.copy_(v)
    new.load_state_dict(sd)


def warm_start(model: MusicModel, folder: Path, run_dir: Path | None = None) -> dict:
    """Load the shipped GRU from ``folder`` into ``model`` (extended); returns and records the check."""
    state, config = onnx_state(folder)
    old_cfg = ModelConfig(**config)
    old = MusicModel(old_cfg)
    old.load_state_dict(state, strict=False)            # the ONNX files hold no dropout state; all weights are there
    missing = set(old.state_dict()) - set(state)
    if missing:
        raise ValueError(f"{folder}: the ONNX files lack {sorted(missing)}")
    err = check_against_onnx(old, folder)
    if err > 1e-4:
        raise RuntimeError(f"{folder}: the weights read back from ONNX differ from ONNX Runtime by {err:.2e}")
    extend(state, old_cfg, model)
    info = {"from": str(folder), "onnx_parity_max_abs_logit_err": err, "old_config": config}
    log.info("warm start from %s (torch vs ONNX logits within %.1e)", folder, err)
    if run_dir is not None:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "warm_start.json").write_text(json.dumps(info, indent=2))
    return info
