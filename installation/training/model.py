"""The music model: a GRU over performance events, steered by musical controls (the paper's Model 1, plus
Performance RNN's control signals).

    controls[:24] (per window) --ctrl-->  cond (C)   tanh(W2 relu(W1 controls)): what is asked for, fed at every step
                               --init-->  h0 (L, N, H)  the GRU's initial state, tanh(W' cond)
    controls[24:37] (per step)            the chord in force (12 pitch classes, unset flag), fed at every step
    event_t, h_t, controls  --step-->  logits over the 390 events, h_{t+1}

The controls (installation/mood/controls.py: key histogram and mode, density, loudness,
register, valence/arousal, each with an "unset" flag) are measured from the
training music itself, so all the music trains them. Emotion reaches the music
through them: the emotion map turns valence/arousal into control targets, and
the valence/arousal themselves are a control group too. Training uses ``nn.GRU``
over whole windows; export uses ``step`` (the same weights, one explicit GRU
cell per layer), which is what the runtime runs event by event.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

from installation.mood.controls import CONTROL_DIM, WINDOW_DIM
from installation.music.events import VOCAB_SIZE


@dataclass
class ModelConfig:
    control_dim: int = CONTROL_DIM  # the control vector (installation/mood/controls.py)
    cond_dim: int = 128          # conditioning vector fed at every step
    embed_dim: int = 128         # event embedding
    hidden: int = 320            # GRU width
    layers: int = 2              # GRU depth
    dropout: float = 0.1         # between GRU layers
    vocab: int = VOCAB_SIZE

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def step_dim(self) -> int:
        """Controls given per step beside the event (the chord group); 0 for a model of the 24 window controls."""
        return self.control_dim - WINDOW_DIM


class MusicModel(nn.Module):
    """GRU language model over events, conditioned on controls at every step and through h0."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.ctrl = nn.Sequential(nn.Linear(min(cfg.control_dim, WINDOW_DIM), cfg.cond_dim), nn.ReLU(),
                                  nn.Linear(cfg.cond_dim, cfg.cond_dim), nn.Tanh())
        self.init = nn.Linear(cfg.cond_dim, cfg.layers * cfg.hidden)
        self.embed = nn.Embedding(cfg.vocab, cfg.embed_dim)
        self.gru = nn.GRU(cfg.embed_dim + cfg.cond_dim + cfg.step_dim, cfg.hidden, cfg.layers,
                          batch_first=True, dropout=cfg.dropout if cfg.layers > 1 else 0.0)
        self.head = nn.Linear(cfg.hidden, cfg.vocab)

    def _window(self, controls: torch.Tensor) -> torch.Tensor:
        return controls[..., :min(self.cfg.control_dim, WINDOW_DIM)]

    def initial(self, controls: torch.Tensor) -> torch.Tensor:
        """controls (N, K) -> h0 (L, N, H) (from the window controls)."""
        h0 = torch.tanh(self.init(self.ctrl(self._window(controls))))
        return h0.view(-1, self.cfg.layers, self.cfg.hidden).transpose(0, 1).contiguous()

    def forward(self, events: torch.Tensor, controls: torch.Tensor, h0: torch.Tensor | None = None):
        """events (N, T) int, controls (N, K) or per step (N, T, K) -> logits (N, T, V), h (L, N, H).
        Per step, the window groups are read at the first step. h0 defaults to initial(controls)."""
        T = events.shape[1]
        first = controls[:, 0] if controls.dim() == 3 else controls
        cond = self.ctrl(self._window(first))
        if h0 is None:
            h0 = torch.tanh(self.init(cond)).view(-1, self.cfg.layers, self.cfg.hidden).transpose(0, 1).contiguous()
        x = self.embed(events)
        parts = [x, cond[:, None, :].expand(-1, T, -1)]
        if self.cfg.step_dim:
            per = controls if controls.dim() == 3 else controls[:, None, :].expand(-1, T, -1)
            parts.append(per[..., WINDOW_DIM:self.cfg.control_dim])
        y, h = self.gru(torch.cat(parts, dim=-1), h0)
        return self.head(y), h

    def step(self, event: torch.Tensor, h: torch.Tensor, controls: torch.Tensor):
        """One event for a batch: event (N,), h (L, N, H), controls (N, K) -> logits (N, V), h'.

        The GRU cell is written out (PyTorch's equations, same weights) so the
        exported graph is plain MatMul/Sigmoid/Tanh and easy to check.
        """
        parts = [self.embed(event), self.ctrl(self._window(controls))]
        if self.cfg.step_dim:
            parts.append(controls[:, WINDOW_DIM:self.cfg.control_dim])
        x = torch.cat(parts, dim=-1)
        hs = []
        for layer in range(self.cfg.layers):
            w_ih = getattr(self.gru, f"weight_ih_l{layer}")
            w_hh = getattr(self.gru, f"weight_hh_l{layer}")
            b_ih = getattr(self.gru, f"bias_ih_l{layer}")
            b_hh = getattr(self.gru, f"bias_hh_l{layer}")
            hp = h[layer]
            gi = F.linear(x, w_ih, b_ih)
            gh = F.linear(hp, w_hh, b_hh)
            i_r, i_z, i_n = gi.chunk(3, dim=-1)
            h_r, h_z, h_n = gh.chunk(3, dim=-1)
            r = torch.sigmoid(i_r + h_r)
            z = torch.sigmoid(i_z + h_z)
            n = torch.tanh(i_n + r * h_n)
            x = (1 - z) * n + z * hp
            hs.append(x)
        return self.head(x), torch.stack(hs)
