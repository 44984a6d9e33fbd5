"""The kiosk's pictures: a camera that may come and go, with the bundled artworks as attract mode;
or, when ``--source`` names a folder or an image, that slideshow.

``CameraWithAttract`` is a live FrameSource. Its capture thread opens the camera
(an index, a stream URL, or a video file standing in for one), reads frames at
most ``fps`` a second into a latest-value slot, and when a read fails re-opens
it with growing waits (up to 2 s). ``frame_at`` gives:

- the newest camera frame while frames come;
- the last one for ``timeout_s`` after they stop (the scene, and the music, stay);
- then the attract slideshow, until the camera gives frames again.

Frames live in memory only: nothing here writes a picture anywhere.
"""
from __future__ import annotations

import logging
import threading
import time
from pathlib import Path


from installation.image.capture import (Frame, FrameSource, ImageSource, open_video_capture, _is_image, _slideshow,
                                       _to_rgb, bundled_artworks)

log = logging.getLogger(__name__)


class CameraWithAttract(FrameSource):
    live = True

    def __init__(self, camera: str, attract: str | Path | None = None, *, timeout_s: float = 10.0,
                 slide_seconds: float = 20.0, fps: float = 15.0, clock=time.monotonic):
        self.target: int | str = int(camera) if str(camera).strip().isdigit() else str(camera)
        self.timeout_s, self.period, self.clock = timeout_s, 1.0 / fps, clock
        self.show = _slideshow(Path(attract).expanduser() if attract else bundled_artworks(), slide_seconds)
        self.name = f"camera {self.target}" if isinstance(self.target, int) else f"camera {Path(str(self.target)).name}"
        self.description = f"{self.name}, else {self.show.description}"
        # --source naming a folder or an image: that slideshow is the picture, with no camera to wait for
        self.still: ImageSource | None = None
        path = Path(str(self.target)).expanduser() if isinstance(self.target, str) else None
        if path is not None and path.is_dir():
            self.still = _slideshow(path, slide_seconds)
        elif path is not None and path.is_file() and _is_image(path):
            self.still = ImageSource([path], slide_seconds, f"image {path.name}")
        if self.still is not None:
            self.name, self.description = self.still.description, self.still.description
        self._started_at: float | None = None
        self._lock = threading.Lock()
        self._frame: Frame | None = None
        self._frame_t = -1e300
        self._attract_since: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.frames = 0
        self.latest: Frame | None = None      # what frame_at gave last (the display shows it)

    def start(self) -> None:
        if self.still is not None:
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="camera", daemon=True)
            self._thread.start()

    def _open(self):
        return open_video_capture(self.target)

    def _run(self) -> None:
        cap, failures, started = None, 0, self.clock()
        next_read = self.clock()
        while not self._stop.is_set():
            if cap is None:
                cap = self._open()
                if cap is None:
                    failures += 1
                    self._stop.wait(min(2.0, 0.1 * 2 ** failures))
                    continue
            ok, bgr = cap.read()
            if not ok:
                cap.release()
                cap = self._open()                  # a video file standing in for a camera loops here
                ok, bgr = cap.read() if cap is not None else (False, None)
                if not ok:                          # opens, but gives no frame: wait before the next try
                    if cap is not None:
                        cap.release()
                    cap = None
                    failures += 1
                    if failures == 1:
                        log.warning("%s opens but gives no frame; trying again with a growing wait (up to 2 s)",
                                    self.name)
                    self._stop.wait(min(2.0, 0.1 * 2 ** failures))
                    continue
            failures = 0
            now = self.clock()
            frame = Frame(_to_rgb(bgr), f"{self.name} @ {now - started:.1f} s", self.frames)
            with self._lock:
                self._frame, self._frame_t = frame, now
            self.frames += 1
            next_read = max(next_read + self.period, now)
            self._stop.wait(max(0.0, next_read - self.clock()))
        if cap is not None:
            cap.release()

    @property
    def state(self) -> str:
        """'camera' (frames coming), 'held' (none for a moment: the last scene stays) or 'attract';
        'slideshow' when the source is a folder or an image."""
        if self.still is not None:
            return "slideshow"
        with self._lock:
            age = self.clock() - self._frame_t
        if age < max(1.0, 4 * self.period):
            return "camera"
        return "held" if age < self.timeout_s else "attract"

    def frame_at(self, t: float) -> Frame:
        if self.still is not None:
            now = self.clock()
            if self._started_at is None:
                self._started_at = now
            self.latest = self.still.frame_at(now - self._started_at)
            return self.latest
        self.start()
        now = self.clock()
        with self._lock:
            frame, age = self._frame, now - self._frame_t
        if frame is not None and age < self.timeout_s:
            self._attract_since = None
            self.latest = frame
            return frame
        if self._attract_since is None:
            self._attract_since = now
        self.latest = self.show.frame_at(now - self._attract_since)
        return self.latest

    def next(self) -> bool:
        """Staff asked for the next picture of the slideshow (or of the attract folder while it plays), now:
        its timeline jumps to the start of the next slide. False while a live camera gives the picture."""
        now = self.clock()
        if self.still is not None and self._started_at is not None:
            show, t = self.still, now - self._started_at
        elif self.still is None and self._attract_since is not None and self.state == "attract":
            show, t = self.show, now - self._attract_since
        else:
            return False
        step = show.slide_seconds - t % show.slide_seconds + 1e-3
        if self.still is not None:
            self._started_at -= step
        else:
            self._attract_since -= step
        return True

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
