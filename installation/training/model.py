"""The music model: an image-conditioned GRU over performance events (the paper's Model 1).

    image features (D)  --Conditioner-->  p (4)          quadrant probabilities (the image's emotion)
                                          cond (C)       the conditioning vector, tanh(W p + b)
                                          h0 (L, N, H)   the GRU's initial hidden state, tanh(W' cond)
                                          va (2)         predicted valence/arousal (reported by the engine)

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
    sharpness: float = 0.5       # run time: image quadrant logits are divided by this before the softmax
    vocab: int = VOCAB_SIZE

    def to_dict(self) -> dict:
        return asdict(self)


class Conditioner(nn.Module):
    """Image features -> emotion -> (cond, h0, va, quadrant probabilities).

    The image side is an emotion classifier (quadrant logits and a valence/arousal
    regression, on standardised features); the music side sees only the quadrant
    probabilities ``p``: cond = tanh(W p + b). Training gives the decoder the music's
    own label as ``p`` (mixed toward uniform by a random amount), so it learns a
    graded response to emotion; at run time ``p`` comes from the image, sharpened
    by ``1 / sharpness`` on the logits. Uniform ``p`` is the null (no emotion).
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.register_buffer("feat_mean", torch.zeros(cfg.feature_dim))
        self.register_buffer("feat_std", torch.ones(cfg.feature_dim))
        self.register_buffer("sharpness", torch.tensor(cfg.sharpness))
        self.drop = nn.Dropout(cfg.dropout)
        self.emotion = nn.Linear(cfg.feature_dim, 4)      # quadrant logits
        self.va = nn.Linear(cfg.feature_dim, 2)           # valence/arousal
        self.proj = nn.Linear(4, cfg.cond_dim)
        self.init = nn.Linear(cfg.cond_dim, cfg.layers * cfg.hidden)

    def heads(self, features: torch.Tensor):
        """Quadrant logits and valence/arousal of images."""
        x = self.drop((features - self.feat_mean) / self.feat_std)
        return self.emotion(x), self.va(x)

    def from_probs(self, p: torch.Tensor):
        """Quadrant probabilities (N, 4) -> cond (N, C), h0 (L, N, H)."""
        cond = torch.tanh(self.proj(p))
        h0 = torch.tanh(self.init(cond)).view(-1, self.cfg.layers, self.cfg.hidden).transpose(0, 1).contiguous()
        return cond, h0

    def forward(self, features: torch.Tensor):
        logits, va = self.heads(features)
        p = torch.softmax(logits / self.sharpness, dim=-1)
        cond, h0 = self.from_probs(p)
        return cond, h0, va, p


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
        """The run-time path: images -> music logits."""
        cond, h0, _, _ = self.conditioner(features)
        logits, _ = self.decoder(events, h0, cond)
        return logits

    def forward_probs(self, p: torch.Tensor, events: torch.Tensor):
        """The training path: quadrant probabilities -> music logits."""
        cond, h0 = self.conditioner.from_probs(p)
        logits, _ = self.decoder(events, h0, cond)
        return logits
