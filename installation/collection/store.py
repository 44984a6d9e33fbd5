"""What a collection job leaves on disk, written so that a killed run never leaves a half-written file as done.

- ``write_atomic``: a temporary file in the same folder, fsync'd, then ``os.replace``d onto its name;
- ``write_if_changed``: the same, but nothing is touched when the file already holds those bytes
  (so a second run of a finished job rewrites nothing);
- ``Journal``: ``OUT/.collection/journal.jsonl``, one JSON record per image result, appended and
  fsync'd after the image's files are in place; a torn last line (a kill mid-write) is ignored;
- ``lock``: one writer per output folder (``flock``), so two runs cannot interleave.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Iterator

from installation.errors import UserError

log = logging.getLogger(__name__)

STATE_DIR = ".collection"


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one, never a part."""
    name = path.name if len(path.name.encode("utf-8", "surrogateescape")) <= 100 else \
        hashlib.sha256(path.name.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    tmp = path.with_name(f".{name}.tmp-{os.getpid()}")         # under 255 bytes, whatever the name's length
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_if_changed(path: Path, data: bytes) -> bool:
    """``write_atomic`` unless ``path`` already holds exactly ``data``; True when written."""
    try:
        if path.stat().st_size == len(data) and path.read_bytes() == data:
            return False
    except OSError:
        pass
    write_atomic(path, data)
    return True


class Journal:
    """The append-only record of finished images: the last record for an output name wins."""

    def __init__(self, out: Path):
        self.path = out / STATE_DIR / "journal.jsonl"
        self.open_tail = False            # the last line was torn (no newline): the next record starts a new one

    def load(self) -> dict[str, dict]:
        """name -> its latest complete record. Lines that do not parse (a torn write) are skipped."""
        latest: dict[str, dict] = {}
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return latest
        lines = data.splitlines()
        self.open_tail = bool(data) and not data.endswith(b"\n")
        torn = 0
        for line in lines:
            try:
                rec = json.loads(line)
                latest[rec["name"]] = rec
            except (ValueError, KeyError, TypeError):
                torn += 1
        if torn:
            log.warning("%s: %d unreadable line(s) skipped (a run was killed while writing); "
                        "their images are rendered again", self.path, torn)
        return latest

    def append(self, records: list[dict]) -> None:
        """Add records and fsync: after this returns they survive a crash."""
        if not records:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = b"".join(json.dumps(r, sort_keys=True).encode() + b"\n" for r in records)
        if self.open_tail:                # else the first record would be glued to the torn line, and lost
            data = b"\n" + data
        self.open_tail = True                 # until the whole write is known to be on disk (a full disk tears it)
        with open(self.path, "ab") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        self.open_tail = False


@contextlib.contextmanager
def lock(out: Path) -> Iterator[None]:
    """Hold ``OUT/.collection/lock`` for the run; a second run on the same folder stops with one line."""
    import fcntl

    state = out / STATE_DIR
    state.mkdir(parents=True, exist_ok=True)
    with open(state / "lock", "a+b") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(f"--out {out}: another render is writing this folder; wait for it, "
                            "or choose another --out") from None
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
