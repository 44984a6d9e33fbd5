"""The image-feature cache: every Emotion6 image, in 6 views, through the exported ONNX encoder, once.

Features are computed with the very ONNX file the runtime loads, on the very
preprocessing the runtime uses (installation.image.preprocess), so training sees
exactly what the installation will see. Training never re-runs the CNN.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from installation.image.preprocess import load_rgb, training_views
from installation.manifest import file_sha256

log = logging.getLogger(__name__)


def cache_features(encoder_onnx: Path, root: Path, rel_paths: list[str], out: Path, progress=None, batch: int = 12) -> np.ndarray:
    """-> (n_images, 6, D) float32, also saved to ``out`` (reused when it exists for the same encoder)."""
    import onnxruntime as ort

    digest = file_sha256(encoder_onnx)
    if out.exists():
        z = np.load(out, allow_pickle=True)
        if str(z["encoder_sha256"]) == digest and list(z["rel"]) == rel_paths:
            return z["features"]
    opts = ort.SessionOptions()
    sess = ort.InferenceSession(str(encoder_onnx), opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    feats = []
    it = range(0, len(rel_paths), batch // 6 or 1)
    step = max(1, batch // 6)
    it = range(0, len(rel_paths), step)
    if progress is not None:
        it = progress(it, desc="image features", unit=f"x{step} img")
    for i in it:
        views = []
        for rel in rel_paths[i:i + step]:
            views += training_views(load_rgb(root / rel))
        f = sess.run(None, {name: np.stack(views)})[0]
        feats.append(f.reshape(-1, 6, f.shape[-1]))
    features = np.concatenate(feats).astype(np.float32)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, features=features, rel=np.array(rel_paths, dtype=object), encoder_sha256=digest)
    return features
