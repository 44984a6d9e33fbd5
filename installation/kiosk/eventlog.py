"""Structured state log: one JSON line per state change, to a rotated file, and as a readable line to stderr.

    {"t": "2026-11-25T10:00:00.123+01:00", "event": "scene", "scene": 3, "valence": 0.41, "arousal": -0.2, ...}

Lines are written from the supervisor's loop and its port-panic thread (never from a MIDI thread);
the handler's lock keeps them whole.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import logging.handlers

log = logging.getLogger("installation.kiosk")


class EventLog:
    def __init__(self, path: str | None, max_mb: float = 10.0, backups: int = 5):
        self._handler = None
        if path:
            self._handler = logging.handlers.RotatingFileHandler(path, maxBytes=int(max_mb * 1024 * 1024),
                                                                 backupCount=backups, encoding="utf-8")
            self._handler.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, event: str, level: int = logging.INFO, **fields) -> dict:
        """One state change: a JSON line in the file, a readable line on stderr at ``level``
        (errors at ERROR, trouble at WARNING, so a journal's filters see them)."""
        rec = {"t": dt.datetime.now().astimezone().isoformat(timespec="milliseconds"), "event": event, **fields}
        log.log(level, "%s %s", event, " ".join(f"{k}={v}" for k, v in fields.items()))
        if self._handler is not None:
            self._handler.handle(logging.makeLogRecord({"msg": json.dumps(rec), "levelno": level,
                                                        "levelname": logging.getLevelName(level)}))
        return rec

    def close(self) -> None:
        if self._handler is not None:
            self._handler.close()
