"""The music model: an image-conditioned GRU over performance events (the paper's Model 1).

    image features (D)  --Conditioner-->  cond (C)      the conditioning vector
                                          h0 (L, N, H)   the GRU's initial hidden state
                                          va (2)         predicted valence/arousal (an auxiliary head)

    event_t, h_t, cond  --Decoder.step-->  logits over the 388 events, h_{t+1}

Beyond the paper, ``cond`` is fed at every step (concatenated to the event
embedding), so a running performance can be steered to a new scene by
changing ``cond`` without a restart. Training uses ``nn.GRU`` over whole
windows; export uses ``step`` (the same weights, one explicit GRU cell per
layer), which is what the runtime runs event by event.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

from installation.events import VOCAB_SIZE


@dataclass
class ModelConfig:
    feature_dim: int = 1280      # image embedding size (1280 EfficientNet-Lite0, 512 ResNet-18)
    cond_dim: int = 128          # conditioning vector fed at every step
    embed_dim: int = 128         # event embedding
    hidden: int = 512            # GRU width
    layers: int = 2              # GRU depth
    dropout: float = 0.1         # between GRU layers and on features
    vocab: int = VOCAB_SIZE

    def to_dict(self) -> dict:
        return asdict(self)


class Conditioner(nn.Module):
    """Image features -> (cond, h0, va). Feature standardisation lives inside (buffers)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.register_buffer("feat_mean", torch.zeros(cfg.feature_dim))
        self.register_buffer("feat_std", torch.ones(cfg.feature_dim))
        self.drop = nn.Dropout(cfg.dropout)
        self.proj = nn.Linear(cfg.feature_dim, cfg.cond_dim)
        self.init = nn.Linear(cfg.cond_dim, cfg.layers * cfg.hidden)
        self.va = nn.Linear(cfg.cond_dim, 2)

    def forward(self, features: torch.Tensor):
        x = (features - self.feat_mean) / self.feat_std
        cond = torch.tanh(self.proj(self.drop(x)))
        h0 = torch.tanh(self.init(cond)).view(-1, self.cfg.layers, self.cfg.hidden).transpose(0, 1).contiguous()
        return cond, h0, self.va(cond)


class Decoder(nn.Module):
    """GRU language model over events, conditioned at every step."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab, cfg.embed_dim)
        self.gru = nn.GRU(cfg.embed_dim + cfg.cond_dim, cfg.hidden, cfg.layers,
                          batch_first=True, dropout=cfg.dropout if cfg.layers > 1 else 0.0)
        self.head = nn.Linear(cfg.hidden, cfg.vocab)

    def forward(self, events: torch.Tensor, h0: torch.Tensor, cond: torch.Tensor):
        """events (N, T) int, h0 (L, N, H), cond (N, C) -> logits (N, T, V), h (L, N, H)."""
        x = self.embed(events)
        x = torch.cat([x, cond[:, None, :].expand(-1, x.shape[1], -1)], dim=-1)
        y, h = self.gru(x, h0)
        return self.head(y), h

    def step(self, event: torch.Tensor, h: torch.Tensor, cond: torch.Tensor):
        """One event for a batch: event (N,), h (L, N, H), cond (N, C) -> logits (N, V), h'.

        The GRU cell is written out (PyTorch's equations, same weights) so the
        exported graph is plain MatMul/Sigmoid/Tanh and easy to check.
        """
        x = torch.cat([self.embed(event), cond], dim=-1)
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


class MusicModel(nn.Module):
    """Conditioner and decoder together, as trained and checkpointed."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.conditioner = Conditioner(cfg)
        self.decoder = Decoder(cfg)

    def forward(self, features: torch.Tensor, events: torch.Tensor):
        cond, h0, va = self.conditioner(features)
        logits, _ = self.decoder(events, h0, cond)
        return logits, va
