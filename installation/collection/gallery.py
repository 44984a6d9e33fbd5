"""The listening gallery: ``OUT/index.html``, a static page that opens from the folder.

For each work: a thumbnail, its title, alt text, the mood in words, the key, and (with --audio) an
audio player, plus its MIDI file. Made for visitors who use a screen reader or only a keyboard: one
``h1``, an ``h2`` per work, header/main/footer landmarks, a skip link, native controls only (each
labelled with its work's title), a visible focus ring, no autoplay and nothing loaded until asked
(``preload="none"``). Nothing is fetched from outside the folder: no fonts, scripts or styles from
elsewhere, and a Content-Security-Policy that forbids it.
"""
from __future__ import annotations

from html import escape
from pathlib import Path

from installation.collection.store import write_if_changed

MIME = {"opus": 'audio/ogg; codecs="opus"', "flac": "audio/flac", "wav": "audio/wav"}

STYLE = """
:root { color-scheme: light dark; --fg: #1a1a1a; --bg: #fdfdfb; --muted: #4a4a4a; --ring: #1d4ed8; }
@media (prefers-color-scheme: dark) { :root { --fg: #f2f2f2; --bg: #151515; --muted: #c8c8c8; --ring: #93c5fd; } }
body { font: 1.05rem/1.5 system-ui, sans-serif; color: var(--fg); background: var(--bg); margin: 0 auto;
       max-width: 72rem; padding: 0 1rem 2rem; }
a { color: inherit; }
:focus-visible { outline: 3px solid var(--ring); outline-offset: 3px; }
.skip { position: absolute; left: -100vw; }
.skip:focus { position: static; display: inline-block; margin: .5rem 0; }
ul.works { list-style: none; padding: 0; display: grid; gap: 1.5rem;
           grid-template-columns: repeat(auto-fill, minmax(18rem, 1fr)); }
article { border: 1px solid var(--muted); border-radius: .5rem; padding: 1rem; }
article h2 { font-size: 1.2rem; margin: 0 0 .5rem; }
img { max-width: 100%; height: auto; display: block; border-radius: .25rem; }
dl { display: grid; grid-template-columns: auto 1fr; gap: .1rem .75rem; }
dt { font-weight: 600; }
dd { margin: 0; }
audio { width: 100%; }
.muted { color: var(--muted); }
"""

CSP = "default-src 'none'; img-src 'self' file:; media-src 'self' file:; style-src 'unsafe-inline'"


def write(out: Path, rows: list[dict]) -> bool:
    """Write OUT/index.html for the catalogue's rows (failed works are left out); True if it changed."""
    return write_if_changed(out / "index.html", page(rows).encode())


def page(rows: list[dict]) -> str:
    works = [r for r in rows if r.get("status") == "ok"]
    items = "\n".join(_work(i, r) for i, r in enumerate(works, 1))
    skipped = sum(r.get("status") == "skipped" for r in rows)
    missing = len(rows) - len(works) - skipped
    note = f" {missing} could not be rendered and are listed in the catalogue." if missing else ""
    note += f" {skipped} other files were not images; the catalogue lists them." if skipped else ""
    if any(r.get("audio") for r in works):
        note += "\nPlayers start only when you press play."
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<title>Listening gallery: {len(works)} works</title>
<style>{STYLE}</style>
</head>
<body>
<a class="skip" href="#works">Skip to the works</a>
<header>
<h1>Listening gallery</h1>
<p>Music made for each work from the mood of the picture: {len(works)} works.{note}</p>
</header>
<main id="works" tabindex="-1">
<ul class="works">
{items}
</ul>
</main>
<footer>
<p class="muted">The data behind this page: <a href="catalogue.csv">catalogue (CSV)</a>,
<a href="catalogue.jsonl">catalogue (JSON Lines)</a>.</p>
</footer>
</body>
</html>
"""


def _work(i: int, r: dict) -> str:
    title = escape(str(r.get("title") or r.get("image")))
    tid = f"work-{i}"
    thumb = ""
    if r.get("thumbnail"):
        thumb = f'<img src="{escape(_url(r["thumbnail"]))}" alt="{escape(str(r.get("alt_text") or ""))}" loading="lazy">'
    facts = [("Mood", r.get("mood") or "unknown"), ("Key", r.get("key") or "any key")]
    if r.get("duration_s") not in (None, ""):
        s = round(float(r["duration_s"]))
        facts.append(("Length", f"{s // 60}:{s % 60:02d}"))
    dl = "".join(f"<dt>{escape(k)}</dt><dd>{escape(str(v))}</dd>" for k, v in facts)
    audio = ""
    files = list(r.get("audio") or [])                # a list: file names may hold spaces
    if files:
        sources = "".join(f'<source src="{escape(_url(f))}" type="{escape(MIME[Path(f).suffix[1:]], quote=True)}">'
                          for f in sorted(files, key=lambda f: list(MIME).index(Path(f).suffix[1:])))
        audio = (f'<audio controls preload="none" aria-label="Play the music for {title}">{sources}'
                 f'<a href="{escape(_url(files[0]))}">Download the music for {title}</a></audio>')
    midi = ""
    if r.get("midi"):
        midi = f'<p><a href="{escape(_url(r["midi"]))}">MIDI file of {title}</a></p>'
    return (f'<li><article aria-labelledby="{tid}">\n<h2 id="{tid}">{title}</h2>\n{thumb}\n'
            f"<dl>{dl}</dl>\n{audio}\n{midi}\n</article></li>")


def _url(rel: str) -> str:
    """A path inside OUT as a relative URL (each part percent-encoded)."""
    from urllib.parse import quote
    return "/".join(quote(part) for part in Path(rel).parts)
