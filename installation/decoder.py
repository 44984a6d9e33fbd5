"""Where a number becomes events: the ONNX conditioner and step decoder, and a performer that samples.

    embedding --conditioner--> cond (C), h0 (L, N, H), valence/arousal (2), quadrant probabilities (4)
    event, hidden, cond --decoder_step--> logits (388), hidden'

A ``Performer`` is one running voice: it holds the hidden state and the last
event and samples one event at a time (temperature, top-p, its own seeded RNG).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from installation import events as E
from installation.manifest import Manifest
from installation.onnx_session import open_session
from installation.sampling import sample

PRIMER = E.TIME_SHIFT          # the first input event: a 10 ms pause, neutral in loudness and pitch


@dataclass(frozen=True)
class Conditioning:
    """What the music model takes from images: per row, cond, h0 and predicted valence/arousal."""
    cond: np.ndarray            # (N, C)
    h0: np.ndarray              # (L, N, H)
    valence_arousal: np.ndarray  # (N, 2), standardised: >0 means positive valence / high arousal
    quadrant_probs: np.ndarray   # (N, 4), Q1..Q4: the image's emotion as the music model hears it


class MusicDecoder:
    """The two ONNX graphs of the music model."""

    def __init__(self, manifest: Manifest, *, threads: int = 1, providers: list[str] | None = None):
        self.conditioner, _ = open_session(manifest.path("conditioner"), threads=threads, providers=providers,
                                           what="conditioner")
        self.stepper, self.provider = open_session(manifest.path("decoder_step"), threads=threads,
                                                   providers=providers, what="step decoder")
        cfg = manifest.model_config
        self.layers, self.hidden, self.cond_dim = cfg["layers"], cfg["hidden"], cfg["cond_dim"]

    def condition(self, embeddings: np.ndarray) -> Conditioning:
        cond, h0, va, p = self.conditioner.run(None, {"embedding": np.asarray(embeddings, np.float32)})
        return Conditioning(cond, h0, va, p)

    def step(self, events: np.ndarray, hidden: np.ndarray, cond: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """events (N,) int64, hidden (L, N, H), cond (N, C) -> logits (N, V), hidden (L, N, H)."""
        logits, hidden = self.stepper.run(None, {"event": events, "hidden": hidden, "cond": cond})
        return logits, hidden


class Performer:
    """One voice sampled event by event from the step decoder."""

    def __init__(self, decoder: MusicDecoder, *, seed: int | None = None, temperature: float = 1.0, top_p: float = 0.95):
        self.decoder = decoder
        self.rng = np.random.default_rng(seed)
        self.temperature, self.top_p = temperature, top_p
        self.hidden: np.ndarray | None = None
        self.last = np.array([PRIMER], np.int64)

    def prime(self, h0: np.ndarray, mix: float = 1.0) -> None:
        """Set the hidden state to the scene's h0 (mix=1), or move it part of the way (a phrase re-prime)."""
        h0 = np.asarray(h0, np.float32).reshape(self.decoder.layers, 1, self.decoder.hidden)
        if self.hidden is None or mix >= 1.0:
            self.hidden = h0.copy()
        else:
            self.hidden = ((1.0 - mix) * self.hidden + mix * h0).astype(np.float32)

    def next(self, cond: np.ndarray) -> int:
        """Sample the next event under conditioning vector ``cond`` (C,)."""
        logits, self.hidden = self.decoder.step(self.last, self.hidden, np.asarray(cond, np.float32).reshape(1, -1))
        self.last = sample(logits, self.rng, self.temperature, self.top_p)
        return int(self.last[0])
