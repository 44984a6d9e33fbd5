"""Progress of a long run: images done of total, rate, time left.

On a terminal it is one bar redrawn in place (at most 5 times a second); in a log (stderr not a
terminal) it is a log line every ``every_s`` seconds and one at the end. The rate counts only the
images rendered in this run, not those found done.
"""
from __future__ import annotations

import logging
import sys
import time

log = logging.getLogger("installation")


def _clock(seconds: float) -> str:
    s = int(max(0, seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class Progress:
    """Counts images as they finish and shows it: ``update(n)``, then ``close()``."""

    def __init__(self, total: int, already: int = 0, *, stream=None, every_s: float = 30.0,
                 tty: bool | None = None, clock=time.monotonic):
        self.total, self.already, self.done = total, already, 0
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.every_s, self.clock = every_s, clock
        self.start = self._last = clock()

    def rate(self) -> float:
        """Images per minute in this run so far."""
        dt = self.clock() - self.start
        return 60.0 * self.done / dt if dt > 0 else 0.0

    def line(self) -> str:
        n = self.already + self.done
        r = self.rate()
        left = (self.total - n) / r * 60 if r > 0 else None
        eta = "--:--" if left is None else _clock(left)
        return f"{n}/{self.total} images, {r:.1f}/min, {eta} left"

    def update(self, n: int = 1) -> None:
        self.done += n
        now = self.clock()
        if self.tty:
            if now - self._last >= 0.2 or self.already + self.done >= self.total:
                self._draw()
                self._last = now
        elif now - self._last >= self.every_s:
            log.info("progress: %s", self.line())
            self._last = now

    def _draw(self) -> None:
        n = self.already + self.done
        width = 30
        fill = int(width * n / self.total) if self.total else width
        self.stream.write(f"\r[{'#' * fill}{'.' * (width - fill)}] {self.line()}  ")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self._draw()
            self.stream.write("\n")
            self.stream.flush()
        else:
            log.info("progress: %s (%.0f s)", self.line(), self.clock() - self.start)
