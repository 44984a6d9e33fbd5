"""A collection job: which images, which settings, which models, and each image's work key.

The work key of an image is the sha256 of its bytes, its output name and seed key, every setting
that changes the music or the sound, and the models' sha256. A result recorded in the journal under
the same key is reused: same image bytes + same settings + same models => nothing to do.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from installation.errors import UserError
from installation.image.capture import IMAGE_EXTENSIONS
from installation.manifest import file_sha256
from installation.music.render import output_paths
from installation.settings import generation

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
    steering: object                     # mood.conductor.Steering
    emotion_map: object                  # mood.emotion_map.EmotionMap, resolved (patch laid over it)
    patch: object | None                 # patches.patch.Patch, or None (plain piano MIDI)
    temperature: float = generation("temperature")     # installation/settings.py
    top_p: float = generation("top_p")
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
    name: str                            # output stem: OUT/<name>.mid (unique in the job; fits any file system)
    key: str                             # seeds its RNG: the file stem, as plain `render` always did
    rel: str = ""                        # what the catalogue calls it: its path inside the folder given

    def work_key(self, fingerprint: str) -> str:
        return hashlib.sha256(f"{self.sha256}|{self.name}|{self.key}|{fingerprint}".encode()).hexdigest()


@dataclass(frozen=True)
class Skipped:
    """A file of the collection that is not rendered, and why (a line in the log, a row in the catalogue)."""
    rel: str
    why: str


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


def shown(name: str) -> str:
    """A file name as a log line shows it: a newline, tab or other control character escaped, so that one
    file is one line whatever its name."""
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in name)


MAX_STEM_BYTES = 200          # OUT/<stem>-<sha8>.jpg.tmp and the like stay under the 255-byte limit of a name


def fit_name(stem: str, limit: int = MAX_STEM_BYTES) -> str:
    """``stem``, or when its UTF-8 is longer than ``limit`` bytes a readable prefix and 10 hex digits of its
    sha256 (so that two long names stay two names)."""
    raw = stem.encode("utf-8", "surrogateescape")
    if len(raw) <= limit:
        return stem
    prefix = raw[:limit - 11].decode("utf-8", "ignore").rstrip()
    return f"{prefix}~{hashlib.sha256(raw).hexdigest()[:10]}"


def find_images(args: list[str | Path]) -> tuple[list[tuple[Path, str]], list[Skipped]]:
    """The images named by the arguments, folders expanded (sorted by name, not recursive), as (path to read,
    name in the collection); and every other entry of those folders with the reason it is not rendered.
    Nothing is opened here: a FIFO, a device or a link loop is known from ``lstat``/``stat``. A link is
    followed only to a regular file inside the folder it is in (not to /etc, not to another collection).
    Hidden entries (``.name``) are left out without a word, as before."""
    import stat as st

    found: list[tuple[Path, str]] = []
    skipped: list[Skipped] = []
    for arg in args:
        path = Path(arg).expanduser()
        if path.is_dir():
            root = path.resolve()
            entries = sorted(e for e in path.iterdir() if not e.name.startswith("."))
            before = len(found)
            for e in entries:
                if e.name == "captions.csv":        # the folder's own titles and alt texts (options._folder_captions)
                    continue
                why = _why_not(e, root, IMAGE_EXTENSIONS, st)
                if why:
                    skipped.append(Skipped(e.name, why))
                else:
                    found.append((e.resolve(), e.name))
            if len(found) == before:
                raise UserError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in folder {path}")
        elif path.is_file():
            found.append((path, path.name))         # named by the user: taken as given
        elif path.exists() or path.is_symlink():
            raise UserError(f"{path}: not an image file nor a folder (a FIFO, a device or a broken link)")
        else:
            raise UserError(f"no such image or folder: {path}")
    return found, skipped


def _why_not(e: Path, root: Path, extensions, st) -> str | None:
    """Why a folder's entry is not rendered, or None for an image to render."""
    try:
        mode = e.lstat().st_mode
        if st.S_ISLNK(mode):
            try:
                target = e.resolve(strict=True)
            except RuntimeError:
                return "a symbolic link that loops"
            except OSError as exc:
                return "a symbolic link that loops" if exc.errno == 40 else "a broken symbolic link"
            if target.parent != root and root not in target.parents:
                return "a link to outside the collection folder (not followed)"
            mode = target.stat().st_mode
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if st.S_ISDIR(mode):
        return "a folder, not an image (folders inside are not searched)"
    if not st.S_ISREG(mode):
        kind = "a FIFO" if st.S_ISFIFO(mode) else "a device" if st.S_ISCHR(mode) or st.S_ISBLK(mode) else \
            "a socket" if st.S_ISSOCK(mode) else "not a regular file"
        return f"{kind}, not an image file (never opened)"
    if e.suffix.lower() not in extensions:
        return f"not a supported image type ({e.suffix or 'no extension'}; render takes {', '.join(extensions)})"
    return None


def open_regular(path: Path):
    """A regular file opened for reading, without blocking and checked before any read: a file swapped for a
    FIFO or a device after it was listed is refused (OSError), not waited on or read for ever."""
    import stat as st

    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    if not st.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(f"{path.name}: not a regular file")
    return os.fdopen(fd, "rb")


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open_regular(path) as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def list_images(paths: list[tuple[Path, str]] | list[Path]) -> list[Image]:
    """The job's images with their sha256 and unique output names that fit (hashing reads every file once)."""
    pairs = [p if isinstance(p, tuple) else (Path(p), Path(p).name) for p in paths]
    names = [fit_name(p.stem) for p in output_paths([Path(rel) for _, rel in pairs], Path("."))]
    out = []
    for i, ((p, rel), name) in enumerate(zip(pairs, names)):
        try:
            sha = sha256_of(p)
        except OSError as exc:
            sha = f"unreadable: {exc.strerror or exc}"
        out.append(Image(i, p, sha, name, Path(rel).stem, rel))
    return out
