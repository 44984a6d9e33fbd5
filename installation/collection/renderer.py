"""A worker's side of a collection: the models, loaded once, and the batched render of a list of images.

``Renderer.render(items)`` decodes each image from its bytes (a corrupt one becomes a failed
``Outcome`` and the rest go on), reads the mood of the good ones, directs each as plain ``render``
does, samples all their performances together (one decoder step for the whole batch) and returns
each image's files as bytes: the MIDI file, the normalised audio in each format asked, a
thumbnail. The driver writes them; a worker writes nothing, so a worker may be on another machine.
No Ray here: ``--workers 1`` runs this in the driver's own process.
"""
from __future__ import annotations

import logging
import os
import socket
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from installation import manifest as M
from installation.collection.job import Item, Settings, models_sha256
from installation.errors import UserError
from installation.image import header
from installation.image.emotion import ImageEmotion
from installation.image.encoder import ImageEncoder
from installation.music import events as E
from installation.music.decoder import open_decoder
from installation.music.render import RenderSettings, directions, generate, harmony_plans
from installation.patches.audio import encode, synthesize
from installation.patches.loudness import normalise
from installation.patches.routing import route_events_to_midi

log = logging.getLogger(__name__)

MAX_IMAGE_BYTES = 200 << 20          # a bigger "image" is refused before decoding
THUMB_WIDTH = 320
FULL_PIXELS = 40_000_000             # larger images are read at half size (the models see 256 px; a worker stays under 1 GiB)


@dataclass
class Outcome:
    """One image's result, or its error. Files travel as bytes: {"mid": b"...", "flac": b"...", ...}."""
    index: int
    name: str
    error: str | None = None
    files: dict[str, bytes] = field(default_factory=dict, repr=False)
    row: dict = field(default_factory=dict)          # the catalogue's fields this worker knows
    events: int = 0


class ImageError(ValueError):
    """An image that cannot be decoded."""


def decode_image(data: bytes, label: str) -> np.ndarray:
    """Image bytes -> read-only RGB uint8, or ImageError naming the file."""
    import cv2

    if not data:
        raise ImageError(f"{label}: empty file")
    if len(data) > MAX_IMAGE_BYTES:
        raise ImageError(f"{label}: {len(data) >> 20} MiB, more than {MAX_IMAGE_BYTES >> 20} MiB")
    try:
        w, h = header.check(data, label)            # the pixels it declares, before any is decoded
    except header.HeaderError as exc:
        raise ImageError(str(exc)) from None
    flags = cv2.IMREAD_REDUCED_COLOR_2 if w * h > FULL_PIXELS else cv2.IMREAD_COLOR   # a JPEG scan: decoded at half size
    try:
        bgr = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    except cv2.error:
        bgr = None
    if bgr is None:
        raise ImageError(f"{label}: not an image or corrupt")
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB, dst=bgr)      # in place: a 108 MP scan is held once
    rgb.flags.writeable = False
    return rgb


def thumbnail(rgb: np.ndarray, width: int = THUMB_WIDTH) -> bytes:
    """A small JPEG of the image for the gallery."""
    import cv2

    h, w = rgb.shape[:2]
    s = min(1.0, width / w)
    small = cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 82])
    return buf.tobytes() if ok else b""


class Renderer:
    """The models of one worker process, and the render of batches of images with them."""

    def __init__(self, settings: Settings, where: dict | None = None):
        self.s = settings
        folder = Path(settings.models)
        if models_sha256(folder) != settings.models_sha256:
            raise UserError(f"{socket.gethostname()}: the models in {folder} differ from the driver's; "
                            "install the same models at the same path on every node")
        models = M.load(folder)
        self.templates = models.key_templates
        self.enc = ImageEncoder(models, threads=1)
        self.feel = ImageEmotion(models, threads=1)
        self.dec = open_decoder(models, kind=settings.decoder, threads=1, guidance=settings.guidance)
        self.where = {"node": "local", "host": socket.gethostname(), "pid": os.getpid(), **(where or {})}

    def render(self, items: list[Item]) -> list[Outcome]:
        """Render a batch; every item gets an Outcome, in order."""
        t0, c0 = time.perf_counter(), time.process_time()
        outs = [Outcome(it.index, it.name) for it in items]
        frames, good = [], []
        for it, o in zip(items, outs):
            try:
                frames.append(decode_image(it.data, it.label))
                good.append(o)
            except ImageError as exc:
                o.error = str(exc)
        if good:
            try:
                self._render_good(frames, [items[outs.index(o)] for o in good], good)
            except Exception as exc:             # noqa: BLE001 - the whole batch failed: say so on each image
                log.exception("a batch of %d images failed", len(good))
                for o in good:
                    o.error, o.files = f"render failed: {type(exc).__name__}: {exc}", {}
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        for o in outs:
            o.row.update(self.where, batch_wall_s=round(wall, 3), batch_cpu_s=round(cpu, 3), batch_size=len(items))
        return outs

    def _render_good(self, frames: list[np.ndarray], items: list[Item], outs: list[Outcome]) -> None:
        s = self.s
        va = np.concatenate([self.feel.read(self.enc, frames[i:i + 16])[1] for i in range(0, len(frames), 16)])
        keys = [it.key for it in items]
        ds = directions(va, keys, s.steering, s.emotion_map, self.templates, s.seed)
        rs = RenderSettings(seconds=s.seconds, seed=s.seed, temperature=s.temperature, top_p=s.top_p,
                            batch=max(1, s.batch), workers=s.threads)
        seqs = generate(self.dec, np.stack([d.controls for d in ds]), keys, rs,
                        harmony_plans(Path(s.models), ds, keys, s.seed))     # the chords asked, as live
        with tempfile.TemporaryDirectory(prefix="collection-") as tmp:
            for o, it, rgb, v, d, seq in zip(outs, items, frames, va, ds, seqs):
                try:
                    self._files(o, Path(tmp) / "piece.mid", seq)
                except Exception as exc:         # noqa: BLE001 - this image alone failed
                    o.error, o.files = f"{type(exc).__name__}: {exc}", {}
                    continue
                t = d.targets
                o.events = len(seq)
                o.row.update(image_valence=round(float(v[0]), 4), image_arousal=round(float(v[1]), 4),
                             valence=round(d.valence, 4), arousal=round(d.arousal, 4),
                             key=str(t.key) if t.key else "", density=_r(t.density), velocity=_r(t.velocity),
                             events=len(seq), width=rgb.shape[1], height=rgb.shape[0], asked=d.describe())
                o.files["thumb"] = thumbnail(rgb)

    def _files(self, o: Outcome, mid: Path, seq: np.ndarray) -> None:
        """The MIDI file (and audio) of one performance, as bytes in ``o.files``."""
        import mido

        s = self.s
        if s.patch is None:
            notes = E.events_to_notes(seq)
            E.notes_to_midi(notes, mid)
            length = max((round(n.end * 1000) for n in notes), default=0) / 1000   # the file's last tick (1 ms)
        else:
            route_events_to_midi(seq, mid, s.patch)
            length = mido.MidiFile(mid).length          # the patch moves and stretches notes: read it back
        o.files["mid"] = mid.read_bytes()
        o.row["duration_s"] = round(length, 3)
        if s.audio:
            raw = synthesize(mid, soundfont=s.soundfont, rate=s.rate, gain=s.synth_gain)
            n = normalise(raw, s.rate, s.loudness_lufs, s.peak_dbfs)
            for fmt in s.audio:
                o.files[fmt] = encode(n.audio, s.rate, fmt)
            o.row.update(audio_seconds=round(len(raw) / s.rate, 3), audio_lufs=_r(n.lufs, 2),
                         audio_peak_dbfs=_r(n.peak_dbfs, 2), audio_gain_db=_r(n.gain_db, 2))


def _r(x, nd: int = 3):
    """Rounded for the catalogue; None for nothing, or for silence's -inf (JSON has no infinity)."""
    import math
    return None if x is None or not math.isfinite(float(x)) else round(float(x), nd)
