"""The catalogue: one row per file of the collection, ``OUT/catalogue.csv`` and its JSON Lines twin ``OUT/catalogue.jsonl``.

What a museum's web team can put online, and nothing of the machine: the image's name inside the
collection (not its absolute path) and its bytes' sha256, the files made from it, the mood read from it
and the mood used (after any --valence/--arousal), the key, density and loudness (mean MIDI velocity)
asked of the decoder, the music's duration, the decoder, the models' sha256, the seed; for a failed image
its error, for a skipped file why. Which host, node and process did the work stays in the private journal
(``OUT/.collection/``, not for publishing). In the CSV a text cell that a spreadsheet would run as a
formula (beginning with = + - @, a tab or a carriage return) gets a leading apostrophe. Both files are
rewritten only when their content changes.
"""
from __future__ import annotations

import csv
import io
import json
import re
import socket
from pathlib import Path

from installation.collection.store import write_if_changed
from installation.errors import UserError

COLUMNS = (
    "image", "image_sha256", "status", "error", "title", "alt_text",
    "midi", "audio", "thumbnail",
    "image_valence", "image_arousal", "valence", "arousal", "mood", "key", "density", "velocity",
    "duration_s", "audio_lufs", "audio_peak_dbfs", "events",
    "decoder", "models_sha256", "seed", "work_key",
)


def mood_words(valence: float | None, arousal: float | None) -> str:
    """Valence/arousal (-1..1) in words, e.g. 'calm, content' or 'tense, agitated'."""
    if valence is None or arousal is None:
        return ""
    v, a = float(valence), float(arousal)
    near = 0.15
    if abs(v) < near and abs(a) < near:
        return "even, neutral"
    if abs(a) < near:
        words = "warm, pleasant" if v > 0 else "sombre, uneasy"
    elif abs(v) < near:
        words = "lively, alert" if a > 0 else "quiet, still"
    else:
        words = {(True, True): "happy, excited", (False, True): "tense, agitated",
                 (False, False): "sad, gloomy", (True, False): "calm, content"}[(v > 0, a > 0)]
    return ("very " + words) if max(abs(v), abs(a)) > 0.6 else words


def title_of(stem: str) -> str:
    """A readable title from a file stem: '05_chelsea_the_cat' -> 'Chelsea the cat'."""
    t = re.sub(r"^\d+[\s_\-.]*", "", stem) or stem
    t = re.sub(r"[\s_\-]+", " ", t).strip()
    return t[:1].upper() + t[1:]


def row(rec: dict) -> dict:
    """A journal record as a catalogue row (every column, in order; absent values empty; audio a list)."""
    files = rec.get("files", {})
    r = dict(rec, image=rec.get("rel") or Path(str(rec.get("image", ""))).name, midi=files.get("mid", ""),
             audio=[files[k] for k in ("flac", "opus", "wav") if k in files], thumbnail=files.get("thumb", ""),
             mood=mood_words(rec.get("valence"), rec.get("arousal")), error=public_error(rec.get("error")))
    return {c: ("" if r.get(c) is None else r.get(c)) for c in COLUMNS}


_PATH = re.compile(r"(?<![\w.~])(?:[A-Za-z]:)?(?:/[^/\s:'\",;()]+)+/?")
_ADDR = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b|\bpid[=: ]+\d+|\b(?:node|worker)[_ ]id[=: ]+[0-9a-f]{16,}",
                   re.IGNORECASE)


def public_error(error: str | None) -> str | None:
    """An error without the machine in it: absolute paths become their last part; addresses, pids and the
    host name go."""
    if not error:
        return error
    text = _PATH.sub(lambda m: Path(m.group(0)).name or "/", str(error))
    text = _ADDR.sub("…", text)
    host = socket.gethostname()
    return re.sub(rf"(?<![\w.-]){re.escape(host)}(?![\w-])", "this machine", text) if host else text


def csv_cell(v):
    """A value as a CSV cell: a list joined with '; '; a text a spreadsheet would run as a formula escaped."""
    if isinstance(v, list):
        v = "; ".join(map(str, v))
    if isinstance(v, str) and v[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + v
    return v


def write(out: Path, rows: list[dict]) -> bool:
    """Write catalogue.csv and catalogue.jsonl (only if changed); True if either was written."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows({k: csv_cell(v) for k, v in r.items()} for r in rows)
    jsonl = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    a = write_if_changed(out / "catalogue.csv", buf.getvalue().encode())
    b = write_if_changed(out / "catalogue.jsonl", jsonl.encode())
    return a or b


def read_captions(path: Path) -> dict[str, dict]:
    """A museum's own titles and alt texts: a CSV with columns image (file name), title, alt."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"--captions {path}: cannot read it ({exc})") from None
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or "image" not in reader.fieldnames:
        raise UserError(f"--captions {path}: a CSV with a header line naming the columns image, title, alt")
    return {Path(r["image"]).name: {"title": (r.get("title") or "").strip(), "alt": (r.get("alt") or "").strip()}
            for r in reader if r.get("image")}
