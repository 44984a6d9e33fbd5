"""Logging for every process (play, the kiosk's supervisor, its thinker, the sender): one line a record, through
a queue, so that a thread that logs never waits for the terminal."""
from __future__ import annotations

import atexit
import logging
import logging.handlers
import os
import queue
import sys


def _private_stderr():
    """A stream on a duplicate of file descriptor 2: the MIDI probes silence fd 2 for a moment
    (libjack prints to it), and the log thread must not lose a line written in that moment."""
    try:
        return os.fdopen(os.dup(sys.stderr.fileno()), "w", buffering=1, encoding=sys.stderr.encoding or "utf-8",
                         errors="backslashreplace")
    except (AttributeError, OSError, ValueError):      # no real file descriptor (e.g. captured output)
        return sys.stderr


def _readable(d: dict) -> str:
    """A figures dict as a log reads it: 'sent 255, send_failed 0, lateness_p99 1.68 ms'."""
    parts = []
    for k, v in d.items():
        if isinstance(v, float) and ("lateness" in k or k.endswith("_s")):
            parts.append(f"{k} {v * 1000:.2f} ms")
        elif isinstance(v, float):
            parts.append(f"{k} {v:.3g}")
        else:
            parts.append(f"{k} {v}")
    return ", ".join(parts)


class _NoRawDicts(logging.Filter):
    """A log line whose argument is a dict of figures (the scheduler's stop line) shows them readably."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(a, dict) for a in record.args):
            record.args = tuple(_readable(a) if isinstance(a, dict) else a for a in record.args)
        elif isinstance(record.args, dict) and "%s" in str(record.msg):   # logging unpacks one dict argument
            record.msg, record.args = str(record.msg) % _readable(record.args), None
        return True


def setup_logging(level: str) -> None:
    """Log through a queue: threads that log never wait for the terminal (stderr)."""
    q: queue.SimpleQueue = queue.SimpleQueue()
    handler = logging.StreamHandler(_private_stderr())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(message)s", "%H:%M:%S"))
    listener = logging.handlers.QueueListener(q, handler)
    _LISTENERS.append(listener)
    root = logging.getLogger()
    front = logging.handlers.QueueHandler(q)
    front.addFilter(_NoRawDicts())                   # before the queue handler formats the message
    root.handlers[:] = [front]
    root.setLevel(level.upper())
    listener.start()
    atexit.register(stop_logging)


_LISTENERS: list[logging.handlers.QueueListener] = []


def stop_logging() -> None:
    """Write out every queued log line and stop the log threads (again: nothing)."""
    while _LISTENERS:
        listener = _LISTENERS.pop()
        listener.stop()
        for h in listener.handlers:
            h.flush()
