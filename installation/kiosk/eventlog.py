"""Structured state log: one JSON line per state change, to a rotated file, and as a readable line to stderr.

    {"t": "2026-11-25T10:00:00.123+01:00", "event": "scene", "scene": 3, "valence": 0.41, "arousal": -0.2, ...}

Lines are written from the supervisor's loop, its port-panic thread and the status server's thread (never
from a MIDI thread); the handler's lock keeps them whole. A line at WARNING or above carries ``"level"``.
The newest records are also kept in memory (``recent``): the staff console's history when there is no file,
and the lines written since it last read the file. The file (``--log-file``) is what persists across restarts: rotated at
``max_mb``, ``backups`` kept, so it is bounded; kiosk.history reads it back.
"""
from __future__ import annotations

import collections
import datetime as dt
import json
import logging
import logging.handlers

log = logging.getLogger("installation.kiosk")
KEEP = 20_000            # records kept in memory without a file: a week of minute lines and state changes (8 MB)
KEEP_WITH_FILE = 2_000   # with a file: what was written since the console last read it (every 5 minutes)


class _Rotating(logging.handlers.RotatingFileHandler):
    """With no backups kept, Python's handler would never shorten the file: here it starts again, so a file
    is bounded by ``max_mb`` whatever ``backups`` says."""

    def doRollover(self):
        super().doRollover()
        if self.backupCount == 0 and self.stream is not None:
            self.stream.truncate(0)


class EventLog:
    def __init__(self, path: str | None, max_mb: float = 10.0, backups: int = 5):
        self.path, self.backups = path, backups
        self.recent: collections.deque = collections.deque(maxlen=KEEP_WITH_FILE if path else KEEP)
        self._handler = None
        if path:
            self._handler = _Rotating(path, maxBytes=int(max_mb * 1024 * 1024),
                                                                 backupCount=backups, encoding="utf-8")
            self._handler.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, event: str, level: int = logging.INFO, quiet: bool = False, **fields) -> dict:
        """One state change: a JSON line in the file, a readable line on stderr at ``level``
        (errors at ERROR, trouble at WARNING, so a journal's filters see them; ``quiet``: at DEBUG)."""
        rec = {"t": dt.datetime.now().astimezone().isoformat(timespec="milliseconds"), "event": event}
        if level >= logging.WARNING:
            rec["level"] = logging.getLevelName(level).lower()
        rec.update(fields)
        self.recent.append(rec)
        log.log(logging.DEBUG if quiet else level, "%s %s", event, " ".join(f"{k}={v}" for k, v in fields.items()))
        if self._handler is not None:
            self._handler.handle(logging.makeLogRecord({"msg": json.dumps(rec), "levelno": level,
                                                        "levelname": logging.getLevelName(level)}))
        return rec

    def close(self) -> None:
        if self._handler is not None:
            self._handler.close()
