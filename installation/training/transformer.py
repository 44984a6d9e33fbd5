"""The music model, Transformer version (the paper's Model 2): a decoder-only Transformer over the
same 388 performance events, steered by the same musical controls as the GRU.

    controls (K) --ctrl--> cond (D)
    sequence = [prefix, e_0, e_1, ...]     prefix = sink(cond): the conditioning, always attended
                                           e_t    = embed(event_t) + mix(cond): live steering at every step
    pre-LayerNorm blocks (causal self-attention with ALiBi, then a GELU MLP), LayerNorm, head -> logits

Positions: ALiBi (Press et al. 2022). A query at position i sees a key at
position j <= i with the bias ``-slope_h * (i - j)`` added to its score, so only
distances matter and a performance may run for hours: the runtime keeps each
cached event's integer position and subtracts integers, never an angle of a
large float position. The prefix has no position: it gets a learnt bias per
head and layer instead, the same at every step (an attention sink), so the
window never drops the conditioning.

The window: every event attends to at most ``window`` earlier events (and to
itself and the prefix). Training windows are no longer than that, so training
and the runtime's ring buffer of ``window`` slots compute the same function
(``forward(..., windowed)`` is the reference the incremental ``step`` is tested
against).

The prefix is a function of the controls alone (it attends only to itself), so
``step`` recomputes it from the *current* controls alongside the new event, as
a second row through the same weights: a control change steers the whole model
at once, as the GRU's per-step conditioning does, and the ring stores events only.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

from installation.mood.controls import WINDOW_DIM
from installation.music.events import VOCAB_SIZE

MASKED = -1e9                    # the score of a key that may not be seen (finite: no NaN in softmax)


@dataclass
class TransformerConfig:
    control_dim: int = WINDOW_DIM   # the 24 per-window controls (installation/mood/controls.py; no chord yet)
    d_model: int = 192           # width of every token's vector
    layers: int = 4              # Transformer blocks
    heads: int = 6               # attention heads per block (head width d_model / heads = 32)
    ff_mult: int = 4             # MLP hidden width = ff_mult * d_model
    dropout: float = 0.1         # on the residual branches (training only; none on attention weights: 15% of a CPU step)
    window: int = 512            # events each event may attend to (the runtime's ring-buffer slots)
    vocab: int = VOCAB_SIZE

    def to_dict(self) -> dict:
        return asdict(self)


def alibi_slopes(heads: int) -> torch.Tensor:
    """ALiBi's geometric slopes 2^(-8 h / H), h = 1..H: steep heads look near, shallow ones far."""
    return torch.tensor([2.0 ** (-8.0 * (h + 1) / heads) for h in range(heads)])


class Block(nn.Module):
    """One pre-LayerNorm Transformer block. Attention scores take an additive bias (ALiBi, sink, mask)."""

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        D, self.H = cfg.d_model, cfg.heads
        self.dh = D // cfg.heads
        self.ln1, self.ln2 = nn.LayerNorm(D), nn.LayerNorm(D)
        self.qkv = nn.Linear(D, 3 * D)
        self.out = nn.Linear(D, D)
        self.mlp = nn.Sequential(nn.Linear(D, cfg.ff_mult * D), nn.GELU(), nn.Linear(cfg.ff_mult * D, D))
        self.sink_bias = nn.Parameter(torch.zeros(cfg.heads))       # score bias of the prefix, per head
        self.drop = nn.Dropout(cfg.dropout)

    def split(self, x: torch.Tensor):
        """(N, S, D) -> q, k, v each (N, H, S, dh)."""
        N, S, _ = x.shape
        return self.qkv(self.ln1(x)).view(N, S, 3, self.H, self.dh).permute(2, 0, 3, 1, 4).unbind(0)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """x (N, S, D), bias (H, S, S) added to the scores."""
        N, S, D = x.shape
        q, k, v = self.split(x)
        # the bias in the scores' own dtype (bf16 under a GPU's autocast; a no-op in fp32)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.unsqueeze(0).to(q.dtype))
        x = x + self.drop(self.out(y.transpose(1, 2).reshape(N, S, D)))
        return x + self.drop(self.mlp(self.ln2(x)))

    def mix_out(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The block's residual update given the attention result y (N, H, 1, dh) of x (N, 1, D)."""
        N = x.shape[0]
        x = x + self.out(y.transpose(1, 2).reshape(N, 1, -1))
        return x + self.mlp(self.ln2(x))


class TransformerMusicModel(nn.Module):
    """Decoder-only Transformer language model over events, conditioned by a prefix and at every step."""

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.cfg = cfg
        D = cfg.d_model
        self.ctrl = nn.Sequential(nn.Linear(cfg.control_dim, D), nn.ReLU(), nn.Linear(D, D), nn.Tanh())
        self.sink = nn.Linear(D, D)                  # cond -> the prefix token
        self.mix = nn.Linear(D, D)                   # cond -> added to every event's embedding
        self.embed = nn.Embedding(cfg.vocab, D)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.layers))
        self.ln_f = nn.LayerNorm(D)
        self.head = nn.Linear(D, cfg.vocab)
        self.register_buffer("slopes", alibi_slopes(cfg.heads), persistent=False)
        self.apply(self._init)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)

    def inputs(self, events: torch.Tensor, controls: torch.Tensor):
        """-> prefix (N, 1, D), event inputs (N, T, D)."""
        cond = self.ctrl(controls)
        return self.sink(cond)[:, None, :], self.embed(events) + self.mix(cond)[:, None, :]

    def bias(self, T: int, block: Block) -> torch.Tensor:
        """(H, T+1, T+1) score bias over [prefix, e_0..e_{T-1}]: ALiBi, causal, windowed; the prefix
        sees only itself and every event sees the prefix with the block's sink bias."""
        dev = self.slopes.device
        i = torch.arange(T, device=dev)
        dist = (i[:, None] - i[None, :]).float()                                 # (T, T)
        seen = (dist >= 0) & (dist <= self.cfg.window)
        ev = torch.where(seen, -self.slopes[:, None, None] * dist, torch.full_like(dist, MASKED))  # (H, T, T)
        H = self.cfg.heads
        top = torch.cat([torch.zeros(H, 1, 1, device=dev), torch.full((H, 1, T), MASKED, device=dev)], dim=2)
        rest = torch.cat([block.sink_bias[:, None, None].expand(H, T, 1), ev], dim=2)
        return torch.cat([top, rest], dim=1)

    def forward(self, events: torch.Tensor, controls: torch.Tensor):
        """events (N, T) int, controls (N, K) -> logits (N, T, V), None (the GRU's signature, no state)."""
        prefix, x = self.inputs(events, controls)
        x = torch.cat([prefix, x], dim=1)
        T = events.shape[1]
        for block in self.blocks:
            x = block(x, self.bias(T, block))
        return self.head(self.ln_f(x[:, 1:])), None

    # --- incremental decoding (what is exported) ------------------------------------------
    def step(self, event: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, slot_pos: torch.Tensor,
             pos: torch.Tensor, controls: torch.Tensor):
        """One event for a batch against a ring buffer of W cached events.

        event (N,) int64; keys, values: per block (a sequence, or an (L, ...) tensor), the cached events'
        keys and values (N, H, W, dh);
        slot_pos (N, W) int64: each slot's event position (-1: empty); pos (N,) int64: this event's
        position; controls (N, K).
        -> logits (N, V), new_keys, new_values (L, N, H, dh): this event's entries, which the caller
        writes into slot ``pos % W`` (installation/music/transformer_decoder.py).

        Nothing about the cached events is recomputed: the cost is one event (and the prefix, a second
        row through the same weights) against W slots, whatever the position.
        """
        N = event.shape[0]
        prefix, x = self.inputs(event[:, None], controls)                 # (N, 1, D) each
        dist = (pos[:, None] - slot_pos).to(torch.float32)                # (N, W), exact: small integers
        seen = (slot_pos >= 0) & (dist >= 1) & (dist <= self.cfg.window)
        ring_bias = torch.where(seen[:, None, None, :], -self.slopes[None, :, None, None] * dist[:, None, None, :],
                                torch.full_like(dist[:, None, None, :], MASKED))  # (N, H, 1, W)
        scale = 1.0 / math.sqrt(self.cfg.d_model // self.cfg.heads)
        W = self.cfg.window
        new_k, new_v = [], []
        for layer, block in enumerate(self.blocks):
            both = torch.cat([prefix, x], dim=0)                           # (2N, 1, D): one pass over the weights
            q, k, v = block.split(both)                                    # (2N, H, 1, dh)
            qx = q[N:] * scale
            kp, kx, vp, vx = k[:N], k[N:], v[:N], v[N:]
            # the prefix attends to itself only: its attention output is its own value (the last
            # block's prefix output is never used)
            if layer < len(self.blocks) - 1:
                prefix = block.mix_out(prefix, vp)
            # the event attends to [prefix, ring, itself]; scores apart, so the ring is never copied
            s = torch.cat([(qx * kp).sum(-1, keepdim=True) + block.sink_bias[None, :, None, None],
                           qx @ keys[layer].transpose(-1, -2) + ring_bias,
                           (qx * kx).sum(-1, keepdim=True)], dim=3)                # (N, H, 1, 1+W+1)
            p = torch.softmax(s, dim=-1)
            y = p[..., :1] * vp + p[..., 1:W + 1] @ values[layer] + p[..., W + 1:] * vx   # (N, H, 1, dh)
            x = block.mix_out(x, y)
            new_k.append(kx[:, :, 0])
            new_v.append(vx[:, :, 0])
        return self.head(self.ln_f(x[:, 0])), torch.stack(new_k), torch.stack(new_v)

    def cache_shape(self, n: int) -> tuple[int, ...]:
        """The ring buffer's shape for n rows: (L, N, H, W, dh)."""
        c = self.cfg
        return c.layers, n, c.heads, c.window, c.d_model // c.heads
