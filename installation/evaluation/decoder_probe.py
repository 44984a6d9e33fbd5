"""The decoder alone: music made when the decoder is *told* a quadrant, with no image in between.

The shipped conditioner turns an image into quadrant probabilities ``p`` and
then ``cond = tanh(W p + b)``, ``h0 = tanh(W' cond + b')``. Reading ``W, b, W', b'``
from ``conditioner.onnx`` lets us give the step decoder an exact one-hot ``p``
for each quadrant and judge the music it makes. This separates the two halves
of the chain: how well an image's emotion is read (the image side) and how
well a known emotion is played (the decoder).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from installation.decoder import Conditioning


class ToldQuadrant:
    """Conditioning for given quadrant probabilities, computed from the conditioner's own weights."""

    def __init__(self, conditioner_onnx: Path, layers: int, hidden: int):
        import onnx
        from onnx import numpy_helper

        init = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(conditioner_onnx)).graph.initializer}
        missing = {"proj.weight", "proj.bias", "init.weight", "init.bias"} - set(init)
        if missing:
            raise ValueError(f"{conditioner_onnx}: no {', '.join(sorted(missing))}; not an emotion-bottleneck conditioner")
        self.proj_w, self.proj_b = init["proj.weight"], init["proj.bias"]
        self.init_w, self.init_b = init["init.weight"], init["init.bias"]
        self.layers, self.hidden = layers, hidden

    def condition(self, p: np.ndarray) -> Conditioning:
        """(N, 4) quadrant probabilities -> the Conditioning the decoder would get from an image with them."""
        p = np.asarray(p, np.float32)
        cond = np.tanh(p @ self.proj_w.T + self.proj_b).astype(np.float32)
        h0 = np.tanh(cond @ self.init_w.T + self.init_b).astype(np.float32)
        h0 = np.ascontiguousarray(h0.reshape(len(p), self.layers, self.hidden).transpose(1, 0, 2))
        va = np.zeros((len(p), 2), np.float32)
        return Conditioning(cond, h0, va, p)


class ToldDecoder:
    """A MusicDecoder whose ``condition`` takes quadrant probabilities instead of image embeddings
    (what ``render.generate`` needs: ``condition`` and ``step``)."""

    def __init__(self, decoder, told: ToldQuadrant):
        self.decoder, self.told = decoder, told

    def condition(self, p: np.ndarray) -> Conditioning:
        return self.told.condition(p)

    def step(self, events, hidden, cond):
        return self.decoder.step(events, hidden, cond)
