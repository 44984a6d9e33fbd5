"""A collection job: which images, which settings, which models, and each image's work key.

The work key of an image is the sha256 of its bytes, its output name and seed key, every setting
that changes the music or the sound, and the models' sha256. A result recorded in the journal under
the same key is reused: same image bytes + same settings + same models => nothing to do.
"""
from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from installation.manifest import file_sha256

FORMAT_VERSION = 1           # bump when the output of the same settings changes
MAX_BATCH_BYTES = 32 << 20   # image bytes in one batch at most: what one worker holds in Ray's object store


@dataclass(frozen=True)
class Settings:
    """Everything a worker needs to render an image, the same on every node (pickled to Ray actors)."""
    models: str                          # the models folder (the same path on every node of a cluster)
    models_sha256: str                   # what that folder must hold (checked by each worker)
    decoder: str                         # "gru" | "transformer", resolved
    guidance: float | None
    seconds: float
    seed: int
    temperature: float
    top_p: float
    steering: object                     # mood.conductor.Steering
    emotion_map: object                  # mood.emotion_map.EmotionMap, resolved (patch laid over it)
    patch: object | None                 # patches.patch.Patch, or None (plain piano MIDI)
    audio: tuple[str, ...] = ()          # formats among "wav", "flac", "opus"; () = MIDI only
    soundfont: str | None = None
    synth_gain: float = 0.5
    loudness_lufs: float = -16.0         # audio normalised to this integrated loudness ...
    peak_dbfs: float = -1.0              # ... unless its peak would pass this
    rate: int = 48000                    # audio sample rate (Opus needs 48 kHz)
    batch: int = 64                      # images decoded together in one worker
    threads: int = 1                     # decoding threads in a worker (plain `render`: one per core, as before)

    def fingerprint(self) -> str:
        """sha256 of everything that changes an image's outputs (not where or how batched: results do not
        depend on it)."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
             if f.name not in ("models", "batch", "threads")}
        if self.patch is not None:
            d["patch"] = dataclasses.replace(self.patch, path=None)
        if self.soundfont:
            d["soundfont"] = file_sha256(Path(self.soundfont))
        d["version"] = FORMAT_VERSION
        return hashlib.sha256(repr(sorted(d.items())).encode()).hexdigest()


@dataclass(frozen=True)
class Image:
    """One image of the job: where it is, its bytes' sha256, its output name and its seed key."""
    index: int
    path: Path
    sha256: str
    name: str                            # output stem: OUT/<name>.mid (unique in the job)
    key: str                             # seeds its RNG: the file stem, as plain `render` always did

    def work_key(self, fingerprint: str) -> str:
        return hashlib.sha256(f"{self.sha256}|{self.name}|{self.key}|{fingerprint}".encode()).hexdigest()


@dataclass
class Item:
    """What a worker gets for one image: its bytes travel with it (no shared file system needed)."""
    index: int
    name: str
    key: str
    label: str                           # the path, for messages
    data: bytes = field(repr=False, default=b"")


def models_sha256(folder: Path) -> str:
    """One sha256 for the models: their manifests name each ONNX file's sha256 (checked at load)."""
    h = hashlib.sha256()
    for name in ("manifest.json", "transformer_manifest.json", "emotion_map.toml"):
        p = folder / name
        if p.is_file():
            h.update(name.encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def list_images(paths: list[Path]) -> list[Image]:
    """The job's images with their sha256 and unique output names (hashing reads every file once)."""
    from installation.music.render import output_paths

    names = [p.stem for p in output_paths(paths, Path("."))]
    out = []
    for i, (p, name) in enumerate(zip(paths, names)):
        try:
            sha = file_sha256(p)
        except OSError as exc:
            sha = f"unreadable: {exc.strerror or exc}"
        out.append(Image(i, p, sha, name, p.stem))
    return out

