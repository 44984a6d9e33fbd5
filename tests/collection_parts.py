"""Shared by the collection tests: the render command line, a folder of artworks, the catalogue and journal."""
from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from pathlib import Path

from installation.image.capture import bundled_artworks

REPO = Path(__file__).resolve().parents[1]


def _interruptible() -> None:
    """In the child before exec: SIGINT back to its default. A test suite started in the background by a
    non-interactive shell inherits SIGINT ignored, and Python then installs no KeyboardInterrupt handler,
    so a test's Ctrl-C would go unheard (CI: the whole job finished, 'assert 18 < 18')."""
    import signal
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def render(*args, env=None, timeout=300, wait=True):
    """`run_installation.py render ARGS`: the finished run, or (wait=False) the running process."""
    cmd = [sys.executable, str(REPO / "run_installation.py"), "render", *map(str, args)]
    if not wait:                                   # a process the test may Ctrl-C (SIGINT) like a person would
        return subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
                                preexec_fn=_interruptible)
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout, env=env)


def artworks_folder(folder: Path, count: int | None = None, variants: int = 1) -> Path:
    """The first ``count`` bundled artworks (all: None) copied into ``folder``; with ``variants`` > 1 each also
    as mirrored and smaller copies (other bytes, so other works): a job long enough that a test can stop it
    half-way on a loaded machine, where six images may all be done before the signal lands."""
    import cv2
    folder.mkdir(parents=True, exist_ok=True)
    for p in sorted(bundled_artworks().glob("*.jpg"))[:count]:
        shutil.copy(p, folder / p.name)
        img = cv2.imread(str(p))
        for v in range(1, variants):
            copy = cv2.resize(cv2.flip(img, v % 2), None, fx=1.0 - 0.1 * v, fy=1.0 - 0.1 * v)
            cv2.imwrite(str(folder / f"{p.stem}_v{v}.jpg"), copy)
    return folder


def catalogue_rows(out: Path) -> list[dict]:
    with open(out / "catalogue.csv", newline="") as f:
        return list(csv.DictReader(f))


def journal_lines(out: Path) -> int:
    """How many records the run has made durable so far."""
    journal = out / ".collection" / "journal.jsonl"
    return journal.read_bytes().count(b"\n") if journal.exists() else 0


def journal_records(out: Path) -> list[dict]:
    """The journal's complete records (the private side: where each image was made, by which host and process)."""
    import json
    journal = out / ".collection" / "journal.jsonl"
    return [json.loads(line) for line in journal.read_bytes().splitlines()] if journal.exists() else []
