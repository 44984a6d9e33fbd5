"""Frames come in: a camera, a video file or stream, one image, or a folder of images.

Every source gives RGB uint8 frames through one call, ``frame_at(t)``:

- timeline sources (files: images, folders, videos) are deterministic: the frame
  shown at media time ``t`` seconds; slideshows and videos loop;
- live sources (cameras, URLs) give their newest frame and ignore ``t``. Each
  runs its own capture thread that overwrites a latest-value slot, so stale
  frames are dropped, never queued.

``open_source`` turns the ``--source`` option into a source; this module is the
only place where OpenCV's BGR pixels become RGB.
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import stat
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import cv2
import numpy as np

from installation.errors import UserError
from installation.image import header
from installation.slot import LatestSlot

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
SOURCE_HELP = "--source takes a camera index, a video file or URL, an image, or a folder of images"
FIRST_FRAME_TIMEOUT_S = 10.0   # a live source that gives no frame this long after starting is an error
_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


@dataclass(frozen=True)
class Frame:
    """One picture: RGB uint8 pixels of shape (H, W, 3), read-only."""

    image: np.ndarray
    label: str   # the file name, or e.g. 'camera 0 @ 12.3 s'
    index: int   # which image of a slideshow; the frame number of a video or camera


class FrameSource:
    """Something that gives frames: ``frame_at(t)`` and ``close()``."""

    live: bool = False      # True: real time only (cameras, streams); False: a deterministic timeline
    description: str = ""   # for people, e.g. "camera 0" or "slideshow of 6 images in artworks/ (20 s each)"

    def start(self) -> None:
        """Begin capturing (live sources); timeline sources have nothing to start."""

    def frame_at(self, t: float) -> Frame:
        """The frame shown at media time ``t`` seconds (timeline), or the newest frame (live)."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the file, device or thread. Safe to call twice."""

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.description}>"


def _to_rgb(bgr: np.ndarray) -> np.ndarray:
    """OpenCV's BGR pixels as a read-only RGB array: the one colour conversion."""
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    rgb.flags.writeable = False
    return rgb


@contextlib.contextmanager
def _opencv_quiet() -> Iterator[None]:
    """Silence OpenCV's own stderr warnings (e.g. "can't open camera by index") for a moment."""
    old = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(old)


def _read_bgr(path: Path, flags: int = cv2.IMREAD_COLOR) -> np.ndarray | None:
    """Decode an image file to BGR uint8, or None when it is missing, empty, not a regular file, not an
    image or declares more than header.MAX_PIXELS (a FIFO or a device is never read, a bomb never decoded)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)      # a FIFO would block a plain open
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read()
        header.check(data, str(path))
    except (OSError, header.HeaderError):
        return None
    finally:
        os.close(fd)
    try:
        return cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    except cv2.error:
        return None


def read_image(path: str | Path) -> np.ndarray:
    """An image file as read-only RGB uint8; UserError naming the file if it cannot be read."""
    bgr = _read_bgr(Path(path))
    if bgr is None:
        raise UserError(f"cannot read image {path}: not an image or corrupt")
    return _to_rgb(bgr)


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def _images_in(folder: Path) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name (hidden files left out)."""
    return sorted(p for p in folder.iterdir() if p.is_file() and _is_image(p) and not p.name.startswith("."))


def bundled_artworks() -> Path:
    """The folder of public-domain artworks shipped with the package (see its PROVENANCE.md)."""
    return Path(__file__).resolve().parents[1] / "artworks"


def iter_images(paths_or_folders: Iterable[str | Path]) -> list[Path]:
    """Image files named by the arguments, folders expanded (sorted by name), in argument order."""
    images: list[Path] = []
    for item in paths_or_folders:
        path = Path(item).expanduser()
        if path.is_dir():
            found = _images_in(path)
            if not found:
                raise UserError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in folder {path}")
            images.extend(found)
        elif path.is_file():
            images.append(path)
        else:
            raise UserError(f"no such image or folder: {path}")
    if not images:
        raise UserError("no images given: name image files or folders of images")
    return images



def open_video_capture(target) -> cv2.VideoCapture | None:
    """An opened OpenCV capture of a camera index, stream URL or file, or None (OpenCV's own noise silenced)."""
    with _opencv_quiet():
        cap = cv2.VideoCapture(target)
    if cap.isOpened():
        return cap
    cap.release()
    return None

class ImageSource(FrameSource):
    """A slideshow of image files (one file: a still picture) on a looping timeline.

    Image ``floor(t / slide_seconds) % n`` is shown at time ``t``. Images are
    decoded when they come up, so a large folder costs no memory.
    """

    live = False

    def __init__(self, paths: list[Path], slide_seconds: float, description: str) -> None:
        if not paths:
            raise ValueError("ImageSource needs at least one image")
        if not slide_seconds > 0:
            raise ValueError(f"slide_seconds must be positive, got {slide_seconds}")
        self.paths = list(paths)
        self.slide_seconds = float(slide_seconds)
        self.description = description
        self._current: Frame | None = None

    def frame_at(self, t: float) -> Frame:
        index = math.floor(t / self.slide_seconds) % len(self.paths)
        if self._current is None or self._current.index != index:
            path = self.paths[index]
            bgr = _read_bgr(path)
            if bgr is None:
                if self._current is None:
                    raise UserError(f"cannot read image {path}: not an image or corrupt")
                log.warning("cannot read image %s any more: showing %s instead", path, self._current.label)
                return self._current
            self._current = Frame(_to_rgb(bgr), path.name, index)
        return self._current


class VideoFileSource(FrameSource):
    """A video file on a looping timeline: frame ``floor(t * fps)`` (modulo its length) at time ``t``.

    Frames are decoded in order; going backwards or looping re-opens the file
    and decodes forward again, so a given ``t`` always gives the same frame.
    Call ``frame_at`` from one thread.
    """

    live = False

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fps = 0.0
        self.frame_count = 0   # 0: unknown until the end is reached
        self.description = f"video {path.name}"
        self._cap: cv2.VideoCapture | None = None
        self._next = 0                    # number of the frame the next read returns
        self._current: Frame | None = None

    def open(self) -> None:
        """Open the file and read its frame rate and length; UserError if it is not a readable video."""
        self._rewind()
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        if not (math.isfinite(fps) and 0 < fps <= 1000):
            log.warning("video %s does not say its frame rate: assuming 25 fps", self.path)
            fps = 25.0
        self.fps = fps
        count = self._cap.get(cv2.CAP_PROP_FRAME_COUNT)
        self.frame_count = int(count) if math.isfinite(count) and count > 0 else 0
        if self._decode_up_to(0) is None:
            raise UserError(f"cannot read video {self.path}: no frame could be decoded")
        length = f", {self.frame_count / fps:.1f} s" if self.frame_count else ""
        self.description = f"video {self.path.name} ({fps:.1f} fps{length}, looping)"

    def _rewind(self) -> None:
        if self._cap is not None:
            self._cap.release()
        with _opencv_quiet():
            self._cap = cv2.VideoCapture(str(self.path))
        if not self._cap.isOpened():
            self._cap.release()
            self._cap = None
            raise UserError(f"cannot open video {self.path}: not a video file OpenCV can read")
        self._next = 0

    def _decode_up_to(self, index: int) -> Frame | None:
        """Read forward to frame ``index``; None (and the true length learnt) if the file ends first."""
        while self._next < index:
            if not self._cap.grab():
                break
            self._next += 1
        ok, bgr = self._cap.read() if self._next == index else (False, None)
        if not ok:
            if self._next == 0:
                return None
            self.frame_count = self._next
            return None
        self._current = Frame(_to_rgb(bgr), f"{self.path.name} @ {index / self.fps:.1f} s", index)
        self._next += 1
        return self._current

    def frame_at(self, t: float) -> Frame:
        if self._cap is None:
            self.open()
        index = math.floor(t * self.fps)
        for _ in range(3):   # running off the end teaches the true length; a second time means the file changed
            if self.frame_count:
                index %= self.frame_count
            if self._current is not None and self._current.index == index:
                return self._current
            if index < self._next:
                self._rewind()
            frame = self._decode_up_to(index)
            if frame is not None:
                return frame
            if self._next == 0:
                break
        raise UserError(f"cannot read video {self.path} any more: was it changed or removed?")

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


def _redact(url: str) -> str:
    """A URL without its user:password part, fit for logs."""
    return re.sub(r"(://)[^/@]*@", r"\1***@", url)


class LiveSource(FrameSource):
    """A camera (by index) or a network stream (by URL), read by its own capture thread.

    Nothing is opened in the constructor: ``open()`` opens the device,
    ``start()`` (or the first ``frame_at``) starts the thread, ``close()`` stops it.
    The thread overwrites a latest-value slot; after a read failure it waits
    (growing backoff, up to 5 s) and re-opens the device or stream.
    """

    live = True

    def __init__(self, target: int | str) -> None:
        self.target = target
        self.description = f"camera {target}" if isinstance(target, int) else f"stream {_redact(target)}"
        self.slot: LatestSlot[Frame] = LatestSlot()
        self._cap: cv2.VideoCapture | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _cannot_open(self) -> UserError:
        if isinstance(self.target, int):
            return UserError(
                f"camera {self.target} cannot be opened; list cameras with 'v4l2-ctl --list-devices' "
                "or use --source FILE|FOLDER"
            )
        return UserError(f"cannot open stream {_redact(self.target)}: check the URL and that the stream is running")

    def _open_capture(self) -> cv2.VideoCapture | None:
        return open_video_capture(self.target)

    def open(self) -> None:
        """Open the camera or stream now; UserError if it cannot be opened."""
        if self._cap is None:
            self._cap = self._open_capture()
            if self._cap is None:
                raise self._cannot_open()

    def start(self) -> None:
        """Open if needed and start the capture thread (once)."""
        if self._thread is not None:
            return
        self.open()
        self._thread = threading.Thread(target=self._run, name=f"capture {self.description}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        started = time.monotonic()
        number = 0
        failures = 0
        while not self._stop.is_set():
            ok, bgr = self._cap.read() if self._cap is not None else (False, None)
            if ok:
                failures = 0
                label = f"{self.description} @ {time.monotonic() - started:.1f} s"
                self.slot.put(Frame(_to_rgb(bgr), label, number))
                number += 1
                continue
            failures += 1
            if failures == 1:
                log.warning("%s gave no frame; re-opening it until it does", self.description)
            if self._stop.wait(min(5.0, 0.1 * 2 ** failures)):
                break
            if self._cap is not None:
                self._cap.release()
            self._cap = self._open_capture()
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def frame_at(self, t: float) -> Frame:
        """The newest frame (``t`` is ignored); waits for the first one after starting."""
        self.start()
        frame, version = self.slot.get()
        if version == 0:
            frame, version = self.slot.wait_newer(0, FIRST_FRAME_TIMEOUT_S)
        if frame is None:
            raise UserError(f"{self.description} opened but gave no frame in {FIRST_FRAME_TIMEOUT_S:.0f} s; "
                            "check the device, or use --source FILE|FOLDER")
        return frame

    def close(self) -> None:
        self._stop.set()
        if self._thread is None:
            if self._cap is not None:
                self._cap.release()
                self._cap = None
            return
        self._thread.join(timeout=5.0)
        if self._thread.is_alive():
            log.warning("%s: capture thread still blocked in a read after 5 s; leaving it to exit", self.description)


def _count(items: list, noun: str) -> str:
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"


def _slideshow(folder: Path, slide_seconds: float) -> ImageSource:
    """The readable images of ``folder`` as a slideshow; unreadable ones are skipped with a warning."""
    readable = []
    for path in _images_in(folder):
        # A reduced decode checks the whole file at a fraction of the cost of a full one.
        if _read_bgr(path, cv2.IMREAD_REDUCED_COLOR_8) is None:
            log.warning("skipping %s: not an image or corrupt", path)
        else:
            readable.append(path)
    if not readable:
        raise UserError(f"no readable images ({', '.join(IMAGE_EXTENSIONS)}) in folder {folder}")
    name = folder.name or str(folder)
    return ImageSource(
        readable, slide_seconds,
        f"slideshow of {_count(readable, 'image')} in {name}/ ({slide_seconds:g} s each)",
    )


def open_source(spec: str | None, *, slide_seconds: float = 20.0) -> FrameSource:
    """The frame source named by ``--source``: camera index, video file or URL, image, folder; None: camera 0
    or, without a camera, the bundled artworks. Cameras and videos are opened here; threads start on first use."""
    if not slide_seconds > 0:
        raise UserError(f"--slide-seconds must be a positive number of seconds (got {slide_seconds})")
    if spec is None:
        camera = LiveSource(0)
        try:
            camera.open()
            return camera
        except UserError:
            show = _slideshow(bundled_artworks(), slide_seconds)
            log.warning("no camera found: playing the bundled artworks (%s, %g s each)",
                        _count(show.paths, "image"), slide_seconds)
            return show
    spec = spec.strip()
    if spec.isdigit():
        camera = LiveSource(int(spec))
        camera.open()
        return camera
    if _URL.match(spec):
        stream = LiveSource(spec)
        stream.open()
        return stream
    path = Path(spec).expanduser()
    if path.is_dir():
        return _slideshow(path, slide_seconds)
    if path.is_file() and _is_image(path):
        if _read_bgr(path, cv2.IMREAD_REDUCED_COLOR_8) is None:
            raise UserError(f"cannot read image {path}: not an image or corrupt")
        return ImageSource([path], slide_seconds, f"image {path.name}")
    if path.is_file():
        video = VideoFileSource(path)
        video.open()
        return video
    raise UserError(f"no such file or folder: {spec} ({SOURCE_HELP})")
