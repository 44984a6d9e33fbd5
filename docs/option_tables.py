"""The docs' option tables, made from the one declaration of each option (installation/kiosk/config.py, opt()).

    python docs/option_tables.py            # rewrite every table between its markers in docs/*.md
    python docs/option_tables.py --check    # exit 1 naming each table that is not current (tests/test_docs_agree.py)

A table stands between ``<!-- options: COMMANDS -->`` and ``<!-- /options -->``; COMMANDS is play, kiosk
or render, or several comma-separated: the options any of them takes, with a column saying which.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
MARKED = re.compile(r"(<!-- options: ([a-z, ]+) -->\n)(.*?)(<!-- /options -->)", re.S)


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _range(f) -> str:
    if f.metadata["choices"]:
        return ", ".join(f"`{c}`" for c in f.metadata["choices"])
    if f.metadata["range"]:
        from installation.settings import MAX_INT
        lo, hi, lo_open = f.metadata["range"]
        if hi >= MAX_INT:
            return f"{lo:g} or more"
        return f"above {lo:g}, at most {hi:g}" if lo_open else f"{lo:g} to {hi:g}"
    return ""


def _default(f) -> str:
    d = f.default
    if d is None or d == ():
        return "–"
    return f"`{d}`"


def table(commands: list[str]) -> str:
    """The Markdown table of the options ``commands`` take, in the declaration's order."""
    from installation.kiosk import config as C
    rows = ["| option | " + ("commands | " if len(commands) > 1 else "") + "default | range or choices | meaning |",
            "|---|" + ("---|" if len(commands) > 1 else "") + "---|---|---|"]
    for name, f in C._FIELDS.items():
        takes = [c for c in commands if c in f.metadata["commands"]]
        if not takes:
            continue
        flag = "`--" + name.replace("_", "-") + "`"
        rows.append(f"| {flag} | " + (f"{', '.join(takes)} | " if len(commands) > 1 else "")
                    + f"{_default(f)} | {_range(f)} | {_cell(f.metadata['help'])} |")
    return "\n".join(rows) + "\n"


def rewritten(text: str) -> str:
    return MARKED.sub(lambda m: m.group(1) + table([c.strip() for c in m.group(2).split(",")]) + m.group(4), text)


def stale() -> list[str]:
    """The docs whose tables are not what the declarations make now."""
    return [str(p.relative_to(REPO)) for p in sorted((REPO / "docs").glob("*.md"))
            if rewritten(p.read_text()) != p.read_text()]


def main(argv: list[str]) -> int:
    if "--check" in argv:
        bad = stale()
        for doc in bad:
            print(f"{doc}: an option table is not current; run python docs/option_tables.py", file=sys.stderr)
        return 1 if bad else 0
    for p in sorted((REPO / "docs").glob("*.md")):
        text = p.read_text()
        if rewritten(text) != text:
            p.write_text(rewritten(text))
            print(f"wrote {p.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
