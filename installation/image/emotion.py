"""The picture read as continuous valence and arousal, at run time (onnxruntime, no torch).

``ImageEmotion`` runs ``exported_models/image_emotion.onnx``: encoder embeddings
and, when the model was fitted with them, the encoder's pooled earlier stages
(``features_mid``, ImageEncoder.encode) and the colour/texture statistics of
the frames (installation.image.image_stats) -> (N, 2) float32 valence and arousal in
[-1, 1]. 0 is the Emotion6 quadrant split (valence rating 5, arousal the median
rating); the training images span about [-1, 1] (see
installation/training/image_emotion.py for the calibration). Positive valence
is pleasant, positive arousal lively.

    emotion = ImageEmotion(manifest.load())
    emb, va = emotion.read(encoder, frames)     # one encoder pass; emb also serves scene tracking; va (N, 2)

A tuned encoder (installation.training.emotion_tune) also gives ``tuned_va``, the reading of its
emotion-tuned branch, which the model blends with its ridge on the other inputs.
"""
from __future__ import annotations

import logging

import numpy as np

from installation.image import image_stats
from installation.errors import UserError
from installation.manifest import Manifest, file_sha256
from installation.onnx_session import open_session

NAME = "image_emotion"
log = logging.getLogger(__name__)


class ImageEmotion:
    """Embeddings (+ frames) -> (N, 2) valence/arousal in [-1, 1]."""

    def __init__(self, manifest: Manifest, *, threads: int = 1, providers: list[str] | None = None):
        if NAME not in manifest.data.get("models", {}):
            raise UserError(f"{manifest.folder / 'manifest.json'}: no entry for the {NAME} model; export it with "
                            "`python -m installation.training.image_emotion`")
        path = manifest.path(NAME)
        if not path.is_file():
            raise UserError(f"model file missing: {path} (listed in manifest.json); restore it with git or re-export")
        if file_sha256(path) != manifest.io(NAME)["sha256"]:
            raise UserError(f"{path}: sha256 does not match manifest.json; the file was altered or truncated "
                            "(git checkout it again, or re-export it)")
        self.session, self.provider = open_session(path, threads=threads, providers=providers, what="image emotion")
        self.inputs = [i.name for i in self.session.get_inputs()]
        io = manifest.io(NAME)
        self.dims = {k: int(v[1]) for k, v in io["inputs"].items()}
        names = tuple(io.get("stats_names", ()))
        if "stats" in self.inputs and names != image_stats.NAMES:
            raise UserError(f"{path}: fitted on image statistics {list(names)}, this runtime computes "
                            f"{list(image_stats.NAMES)}; re-export it with this version")
        self.feature_set = io.get("feature_set", "?")
        if self.needs_tuned and "tuned_va" not in manifest.io("encoder")["outputs"]:
            raise UserError(f"{path}: fitted on a tuned encoder's 'tuned_va' output, which "
                            f"{manifest.path('encoder')} does not give; restore the encoder that goes with it "
                            "(git checkout exported_models) or refit with `python -m installation.training.image_emotion`")
        fitted_on = io.get("encoder_sha256")
        if fitted_on and fitted_on != manifest.io("encoder").get("sha256"):
            log.warning("image emotion: fitted on the features of another encoder file (%s...); if the encoder's "
                        "weights changed, refit it with `python -m installation.training.image_emotion`", fitted_on[:12])

    @property
    def needs_frames(self) -> bool:
        """Whether predict() needs the frames themselves (for their colour statistics)."""
        return "stats" in self.inputs

    @property
    def needs_mid(self) -> bool:
        """Whether predict() needs the encoder's ``features_mid`` (ImageEncoder.encode)."""
        return "features_mid" in self.inputs

    @property
    def needs_tuned(self) -> bool:
        """Whether predict() needs the tuned encoder's ``tuned_va`` (ImageEncoder.encode)."""
        return "tuned_va" in self.inputs

    def predict(self, embeddings: np.ndarray, frames: list[np.ndarray] | None = None,
                features_mid: np.ndarray | None = None, tuned_va: np.ndarray | None = None) -> np.ndarray:
        """(N, D) embeddings of ``frames`` (RGB uint8, any size), their (N, D2) ``features_mid`` and
        (N, 2) ``tuned_va`` -> (N, 2) float32 valence, arousal in [-1, 1]."""
        emb = np.ascontiguousarray(embeddings, dtype=np.float32)
        if emb.ndim != 2 or emb.shape[1] != self.dims["embedding"]:
            raise ValueError(f"expected embeddings of shape (N, {self.dims['embedding']}), got {emb.shape}")
        feed = {"embedding": emb}
        if self.needs_mid:
            d = self.dims["features_mid"]
            if features_mid is None or np.shape(features_mid) != (len(emb), d):
                raise ValueError(f"the {self.feature_set} model needs features_mid of shape ({len(emb)}, {d}) "
                                 f"from ImageEncoder.encode, got {None if features_mid is None else np.shape(features_mid)}")
            feed["features_mid"] = np.ascontiguousarray(features_mid, dtype=np.float32)
        if self.needs_tuned:
            if tuned_va is None or np.shape(tuned_va) != (len(emb), 2):
                raise ValueError(f"the {self.feature_set} model needs tuned_va of shape ({len(emb)}, 2) "
                                 f"from ImageEncoder.encode, got {None if tuned_va is None else np.shape(tuned_va)}")
            feed["tuned_va"] = np.ascontiguousarray(tuned_va, dtype=np.float32)
        if self.needs_frames:
            if frames is None or len(frames) != len(emb):
                raise ValueError(f"the {self.feature_set} model needs the {len(emb)} frames beside their embeddings")
            feed["stats"] = image_stats.stats_batch(frames)
        return self.session.run(None, feed)[0]

    def read(self, encoder, frames: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Frames -> (embeddings (N, D), valence/arousal (N, 2)): one encoder pass, then this model."""
        out = encoder.encode(frames)
        emb = out["embedding"]
        return emb, self.predict(emb, frames if self.needs_frames else None, out.get("features_mid"), out.get("tuned_va"))
