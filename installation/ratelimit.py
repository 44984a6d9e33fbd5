"""Rate limits for what comes from outside: a token bucket, and a log line that says so at most every few seconds.

Hostile input (OSC, MIDI in, HTTP) must never flood the log or take the CPU from the music:

    bucket = TokenBucket(rate=200, burst=50)      # packets per second
    if not bucket.take():
        drops += 1                                # over the rate: dropped unread

    warn = LogLimiter(log, every_s=10)
    warn("OSC in: packet from %s rejected: %s", addr, reason)   # first one now; the rest counted,
                                                                # summed up in the next line allowed
"""
from __future__ import annotations

import logging
import threading
import time


class TokenBucket:
    """``take()`` is True at most ``rate`` times a second on average, ``burst`` at once. Thread-safe."""

    def __init__(self, rate: float, burst: float, clock=time.monotonic):
        self.rate, self.burst, self._clock = float(rate), float(burst), clock
        self._tokens, self._t = float(burst), clock()
        self._lock = threading.Lock()

    def take(self, n: float = 1.0) -> bool:
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._t) * self.rate)
            self._t = now
            if self._tokens >= n:
                self._tokens -= n
                return True
            return False


class LogLimiter:
    """A callable that logs one line at most every ``every_s`` seconds; the lines it held back are counted
    and the next line that goes out says how many. Never raises. Thread-safe."""

    def __init__(self, logger: logging.Logger, every_s: float = 10.0, level: int = logging.WARNING,
                 clock=time.monotonic):
        self.logger, self.every_s, self.level, self._clock = logger, every_s, level, clock
        self._next = -float("inf")
        self.suppressed = 0
        self._lock = threading.Lock()

    def __call__(self, msg: str, *args) -> bool:
        """Log ``msg % args`` if allowed now; returns True if it went out."""
        with self._lock:
            now = self._clock()
            if now < self._next:
                self.suppressed += 1
                return False
            held, self.suppressed = self.suppressed, 0
            self._next = now + self.every_s
        try:
            if held:
                msg = msg + " (and %d more like it held back)"
                args = (*args, held)
            self.logger.log(self.level, msg, *args)
        except Exception:       # noqa: BLE001  a log line is never worth a crash
            pass
        return True
