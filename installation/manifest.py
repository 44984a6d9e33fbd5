"""The exported models' manifest: what the runtime loads, checked before anything plays.

``exported_models/manifest.json`` names each ONNX file with its sha256, its
input/output names and shapes, the event vocabulary and the preprocessing.
``load()`` refuses files that are missing or altered, and a vocabulary that
differs from this runtime's, each with a one-line error; the image encoder
checks the preprocessing when it opens (installation/image/encoder.py: the
preprocessing is image/'s, a floor above this one).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from installation import vocabulary
from installation.errors import UserError

# A checkout's top-level exported_models/; an installed package has them beside its modules (pyproject.toml).
_INSTALLED = Path(__file__).resolve().parent / "exported_models"
DEFAULT_DIR = _INSTALLED if _INSTALLED.is_dir() else Path(__file__).resolve().parents[1] / "exported_models"
MODELS = ("encoder", "image_emotion", "decoder_init", "decoder_step")


@dataclass(frozen=True)
class Manifest:
    """The parsed manifest and the folder it came from."""
    folder: Path
    data: dict

    def path(self, name: str) -> Path:
        return self.folder / self.data["models"][name]["file"]

    def io(self, name: str) -> dict:
        return self.data["models"][name]

    @property
    def model_config(self) -> dict:
        return self.data["model_config"]

    @property
    def decoders(self) -> list[str]:
        """The decoders these models offer, e.g. ["gru", "transformer"]."""
        return list(self.data.get("decoders", {"gru": {}}))

    @property
    def default_decoder(self) -> str:
        return self.data.get("default_decoder", "gru")

    @property
    def key_templates(self):
        """The mean major and minor pitch-class histograms on C (2, 12) the decoder learnt, or None."""
        import numpy as np
        t = self.data.get("controls", {}).get("key_templates")
        return None if t is None else np.array([t["major"], t["minor"]], np.float64)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load(folder: str | Path | None = None, *, verify: bool = True) -> Manifest:
    """Read and check ``folder/manifest.json`` (default: the repo's exported_models/)."""
    folder = Path(folder) if folder is not None else DEFAULT_DIR
    mpath = folder / "manifest.json"
    if not mpath.is_file():
        raise UserError(f"models missing: {mpath} not found; use --models DIR with an exported model folder, "
                        "or re-create it with `python -m installation.training all`")
    try:
        data = json.loads(mpath.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"{mpath}: not a readable manifest ({exc}); restore it with `git checkout {mpath.name}`") from None
    m = Manifest(folder, data)
    for name in MODELS:
        if name not in data.get("models", {}):
            raise UserError(f"{mpath}: no entry for the {name} model; re-export the models")
        p = m.path(name)
        if not p.is_file():
            raise UserError(f"model file missing: {p} (listed in {mpath.name}); restore it with git or re-export")
        if verify and file_sha256(p) != data["models"][name]["sha256"]:
            raise UserError(f"{p}: sha256 does not match {mpath.name}; the file was altered or truncated "
                            "(git lfs/checkout it again, or re-export the models)")
    vocab = data.get("vocabulary", {})
    ranges, mine = vocab.get("ranges") or [], vocabulary.vocabulary_spec()["ranges"]
    # an older vocabulary that is a prefix of this one (388 events, before the pedal) still plays: its decoders'
    # logits are padded with -inf (installation/music/decoder.py)
    if not ranges or ranges != mine[:len(ranges)] or vocab.get("size") != ranges[-1]["first"] + ranges[-1]["size"]:
        raise UserError(f"{mpath}: the models' event vocabulary differs from this runtime's "
                        f"({vocab.get('size')} vs {vocabulary.VOCAB_SIZE} events); use models exported by this version")
    return m
