"""Where a frame becomes a number: the ONNX image encoder on onnxruntime."""
from __future__ import annotations

import numpy as np

from installation.errors import UserError
from installation.manifest import Manifest
from installation.onnx_session import open_session
from installation.image.preprocess import CROP, RESIZE_SHORTER, prepare


class ImageEncoder:
    """RGB frames -> (N, D) float32 embeddings (ImageNet CNN features after global pooling)."""

    def __init__(self, manifest: Manifest, *, threads: int = 1, providers: list[str] | None = None):
        pre = manifest.data.get("preprocessing", {})
        if pre.get("crop") != CROP or pre.get("resize_shorter_side") != RESIZE_SHORTER:
            raise UserError(f"{manifest.folder / 'manifest.json'}: the encoder expects other preprocessing than this "
                            "runtime's; re-export the encoder")
        self.session, self.provider = open_session(manifest.path("encoder"), threads=threads,
                                                   providers=providers, what="image encoder")
        self.input = self.session.get_inputs()[0].name
        outputs = manifest.io("encoder")["outputs"]
        self.dim = int(outputs["embedding"][1])
        # pooled earlier stages (encoders exported since the image-emotion model; None for older ones)
        self.mid_dim = int(outputs["features_mid"][1]) if "features_mid" in outputs else None
        self.outputs = [o.name for o in self.session.get_outputs()]
        self.backbone = manifest.io("encoder").get("backbone", "?")

    def embed(self, frames: list[np.ndarray]) -> np.ndarray:
        """RGB uint8 images of any size -> embeddings, one row per image."""
        batch = np.stack([prepare(f) for f in frames])
        return self.session.run(["embedding"], {self.input: batch})[0]

    def encode(self, frames: list[np.ndarray]) -> dict[str, np.ndarray]:
        """RGB uint8 images -> every encoder output by name, from one pass: ``embedding`` (N, D), and in
        encoders exported since the image-emotion model ``features_mid`` (N, D2) and, in a tuned encoder
        (installation.training.emotion_tune), ``tuned_va`` (N, 2): the emotion-tuned branch's reading."""
        batch = np.stack([prepare(f) for f in frames])
        return dict(zip(self.outputs, self.session.run(self.outputs, {self.input: batch})))
