"""Shared by the collection tests: the render command line, a folder of artworks, the catalogue and journal."""
from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from pathlib import Path

from installation.image.capture import bundled_artworks

REPO = Path(__file__).resolve().parents[1]


def render(*args, env=None, timeout=300, wait=True):
    """`run_installation.py render ARGS`: the finished run, or (wait=False) the running process."""
    cmd = [sys.executable, str(REPO / "run_installation.py"), "render", *map(str, args)]
    if not wait:
        return subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout, env=env)


def artworks_folder(folder: Path, count: int | None = None) -> Path:
    """The first ``count`` bundled artworks (all: None) copied into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for p in sorted(bundled_artworks().glob("*.jpg"))[:count]:
        shutil.copy(p, folder / p.name)
    return folder


def catalogue_rows(out: Path) -> list[dict]:
    with open(out / "catalogue.csv", newline="") as f:
        return list(csv.DictReader(f))


def journal_lines(out: Path) -> int:
    """How many records the run has made durable so far."""
    journal = out / ".collection" / "journal.jsonl"
    return journal.read_bytes().count(b"\n") if journal.exists() else 0
