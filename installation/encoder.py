"""Where a frame becomes a number: the ONNX image encoder on onnxruntime."""
from __future__ import annotations

import numpy as np

from installation.manifest import Manifest
from installation.onnx_session import open_session
from installation.preprocess import prepare


class ImageEncoder:
    """RGB frames -> (N, D) float32 embeddings (ImageNet CNN features after global pooling)."""

    def __init__(self, manifest: Manifest, *, threads: int = 1, providers: list[str] | None = None):
        self.session, self.provider = open_session(manifest.path("encoder"), threads=threads,
                                                   providers=providers, what="image encoder")
        self.input = self.session.get_inputs()[0].name
        self.dim = int(manifest.io("encoder")["outputs"]["embedding"][1])
        self.backbone = manifest.io("encoder").get("backbone", "?")

    def embed(self, frames: list[np.ndarray]) -> np.ndarray:
        """RGB uint8 images of any size -> embeddings, one row per image."""
        batch = np.stack([prepare(f) for f in frames])
        return self.session.run(None, {self.input: batch})[0]
