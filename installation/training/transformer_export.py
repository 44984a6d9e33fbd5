"""Export the Transformer decoder to ONNX (one incremental step), and check it against torch.

    transformer_step.onnx
        inputs   event (N,) int64, keys_0 .. keys_{L-1}, values_0 .. values_{L-1} (N, H, W, dh) float32,
                 slot_pos (N, W) int64, pos (N,) int64, controls (N, K) float32
        outputs  logits (N, V), new_keys (L, N, H, dh), new_values (L, N, H, dh)

One input per block's keys and values (views of the runtime's (L, N, H, W, dh)
arrays, passed without a copy): a single (L, ...) input would make the graph
gather each block's slice, copying the whole cache at every event (measured:
a third of the step).

The key/value cache goes in whole; what comes out is the one new event's
entry, which the runtime writes into its ring slot in place
(installation/music/transformer_decoder.py: ``write``). Returning the whole updated
cache instead would copy L*N*H*W*dh floats twice per event for nothing.

There is no separate init graph: the conditioning prefix is computed inside
the step from the current controls, so the initial state is an empty ring
(``transformer_decoder.empty_state``).

Parity (``parity``): torch's ``step`` and the ONNX step, each on the runtime's
own ring bookkeeping, for ``window + steps`` events: logits compared on the
same (teacher-forced) events, counted after the window first wraps; and two
free-running samplings with the same seed through installation.music.sampling.sample
must give the same sequence.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from installation.music.sampling import sample
from installation.music.transformer_decoder import TransformerDecoder, empty_state, write
from installation.training.export import OPSET
from installation.training.transformer import TransformerMusicModel

STEP_FILE = "transformer_step.onnx"
OUTPUTS = ["logits", "new_keys", "new_values"]


def input_names(layers: int) -> list[str]:
    return (["event"] + [f"keys_{i}" for i in range(layers)] + [f"values_{i}" for i in range(layers)]
            + ["slot_pos", "pos", "controls"])


class _Step(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, event, *rest):
        L = self.model.cfg.layers
        keys, values, (slot_pos, pos, controls) = rest[:L], rest[L:2 * L], rest[2 * L:]
        return self.model.step(event, keys, values, slot_pos, pos, controls)


def io_spec(model: TransformerMusicModel) -> dict:
    c = model.cfg
    cache = ["batch", c.heads, c.window, c.d_model // c.heads]
    entry = [c.layers, "batch", c.heads, c.d_model // c.heads]
    kv = {f"{kind}_{i}": cache for kind in ("keys", "values") for i in range(c.layers)}
    return {"inputs": {"event": ["batch"], **kv, "slot_pos": ["batch", c.window],
                       "pos": ["batch"], "controls": ["batch", c.control_dim]},
            "outputs": {"logits": ["batch", c.vocab], "new_keys": entry, "new_values": entry}}


def export_step(model: TransformerMusicModel, out: Path) -> dict:
    """Write out/transformer_step.onnx; returns its I/O spec and config (for the manifest)."""
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    n = 2
    st = empty_state(n, model.cfg.window)
    st.slot_pos[:, :3] = np.arange(3)
    st.pos[:] = 3
    L = model.cfg.layers
    cache = [torch.zeros(model.cache_shape(n)[1:]) for _ in range(2 * L)]
    args = (torch.tensor([1, 300]), *cache, torch.from_numpy(st.slot_pos), torch.from_numpy(st.pos),
            torch.zeros(n, model.cfg.control_dim))
    names = input_names(L)
    batch = {name: {0: "batch"} for name in names}
    batch.update(logits={0: "batch"}, new_keys={1: "batch"}, new_values={1: "batch"})
    with torch.no_grad():
        torch.onnx.export(_Step(model), args, str(out / STEP_FILE), input_names=names, output_names=OUTPUTS,
                          dynamic_axes=batch, opset_version=OPSET, dynamo=False)
    return {"file": STEP_FILE, **io_spec(model), "config": model.cfg.to_dict(), "opset": OPSET}


class TorchStepper:
    """torch's ``step`` on the runtime's ring bookkeeping: the reference the ONNX step is checked against."""

    def __init__(self, model: TransformerMusicModel):
        self.model = model.eval()

    def initial(self, controls):
        return empty_state(len(controls), self.model.cfg.window)

    def step(self, events, state, controls):
        if state.keys is None:
            state.keys = np.zeros(self.model.cache_shape(state.batch), np.float32)
            state.values = np.zeros_like(state.keys)
        with torch.no_grad():
            lg, nk, nv = self.model.step(torch.from_numpy(np.asarray(events, np.int64)), torch.from_numpy(state.keys),
                                         torch.from_numpy(state.values), torch.from_numpy(state.slot_pos),
                                         torch.from_numpy(state.pos), torch.from_numpy(np.asarray(controls, np.float32)))
        write(state, nk.numpy(), nv.numpy(), np.asarray(events, np.int64))
        return lg.numpy(), state


def parity(model: TransformerMusicModel, onnx_path: Path, controls: np.ndarray, steps: int = 300, seed: int = 3,
           temperature: float = 1.0, top_p: float = 0.95) -> dict:
    """torch vs ONNX over ``window + steps`` events under controls (N, K); see the module docstring."""
    controls = np.ascontiguousarray(np.asarray(controls, np.float32)[:, :model.cfg.control_dim])   # its own controls
    W = model.cfg.window
    total = W + steps
    onnx = TransformerDecoder(onnx_path, model.cfg.to_dict(), threads=1, providers=["CPUExecutionProvider"])
    ref = TorchStepper(model)
    c = np.ascontiguousarray(controls, np.float32)
    n = len(c)
    first = np.full(n, 355, np.int64)                       # a 1 s time shift, as the GRU's check starts

    # 1. teacher-forced: the ONNX step fed torch's sampled events; logits compared at every step
    rng = np.random.default_rng(seed)
    st_t, st_o = ref.initial(c), onnx.initial(c)
    ev = first
    err_before, err_after, seq_t = 0.0, 0.0, []
    for t in range(total):
        lt, st_t = ref.step(ev, st_t, c)
        lo, st_o = onnx.step(ev, st_o, c)
        e = float(np.abs(lt - lo).max())
        if t >= W:
            err_after = max(err_after, e)
        else:
            err_before = max(err_before, e)
        ev = sample(lt, rng, temperature, top_p)
        seq_t.append(ev)

    # 2. free-running: ONNX samples on its own with the same seed; the sequence must be torch's
    rng = np.random.default_rng(seed)
    st_o = onnx.initial(c)
    ev, seq_o = first, []
    for t in range(total):
        lo, st_o = onnx.step(ev, st_o, c)
        ev = sample(lo, rng, temperature, top_p)
        seq_o.append(ev)
    seq_t, seq_o = np.stack(seq_t), np.stack(seq_o)
    same = bool(np.array_equal(seq_t, seq_o))
    wrapped = bool((st_o.pos > W).all())
    return {"window": W, "steps_after_wrap": steps, "batch": n, "seed": seed,
            "max_abs_logit_err_after_wrap": err_after, "max_abs_logit_err_before_wrap": err_before,
            "same_sampled_sequence": same, "first_divergence": None if same else int(np.argmax((seq_t != seq_o).any(1))),
            "window_wrapped": wrapped}


def check(result: dict, tol: float = 1e-4) -> None:
    """Raise if a parity result misses the bar."""
    if (result["max_abs_logit_err_after_wrap"] > tol or result["max_abs_logit_err_before_wrap"] > tol
            or not result["same_sampled_sequence"] or not result["window_wrapped"]):
        raise RuntimeError(f"ONNX and torch Transformer steps disagree: {result}")
