"""The README's commands, the docs' examples and --help agree: every option a document shows on a
`run_installation.py` command line exists on that command, and every key of the example kiosk config is an
option of the kiosk."""
import re
import shlex
from pathlib import Path

import pytest

from installation.cli import build_parser

REPO = Path(__file__).resolve().parents[1]
MANUAL = ["README.md", "docs/PLAY.md", "docs/ENGINE.md", "docs/RENDER.md", "docs/TRAINING.md", "docs/IMAGE_EMOTION.md",
          "docs/KIOSK.md", "docs/PATCHES.md", "docs/OPTIONS.md"]
DOCS = MANUAL + ["deploy/image-to-music.service"]


def options_of(command: str) -> set[str]:
    sub = build_parser()._subparsers._group_actions[0].choices[command]
    return {s for a in sub._actions for s in a.option_strings}


def command_lines():
    for doc in DOCS:
        for line in (REPO / doc).read_text().splitlines():
            for m in re.finditer(r"run_installation\.py(?: (play|render|ports|kiosk))?((?: [^`|#]*)?)", line):
                yield doc, m.group(1) or "play", m.group(2), line


@pytest.mark.parametrize("doc, command, rest, line", list(command_lines()))
def test_every_option_in_the_docs_exists(doc, command, rest, line):
    known = options_of(command)
    for flag in re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", rest):
        assert flag in known, f"{doc}: {command} has no {flag}: {line.strip()}"


def test_the_example_config_keys_are_kiosk_options():
    from installation.kiosk import config as C
    known = options_of("kiosk")
    for key in C.read_toml(REPO / "deploy" / "kiosk.example.toml"):
        assert "--" + key.replace("_", "-") in known, key


PATH_OPTIONS = {"--source", "--captions", "--config", "--emotion-map", "--soundfont", "--models"}


def sh_lines(doc: str):
    for block in re.findall(r"```sh\n(.*?)```", (REPO / doc).read_text(), re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.split(r"\s#\s", " " + line, maxsplit=1)[0].strip()      # the comment after a command
            if line:
                yield line


@pytest.mark.parametrize("doc", MANUAL)
def test_every_file_a_documented_command_reads_exists_or_is_marked_as_a_placeholder(doc):
    """Pasted into a script, a documented command either works or fails at once: a file it reads is in the
    repository (or made by a command before it, or by an install step of the same document: cp, mkdir, tee),
    or written as a <placeholder> the shell refuses; no bare capitalised stand-ins (a pasted HEAD_IP made
    `ray start` retry for 5 minutes)."""
    made = set()
    for line in sh_lines(doc):
        words = shlex.split(re.sub(r"<([\w./-]+)>", r"'<\1>'", line))       # keep <...> as one word
        for w in words:
            assert not re.fullmatch(r"[A-Z][A-Z0-9]*_[A-Z0-9_]*(:\d+)?", w), f"unmarked placeholder {w}: {line}"
        if "run_installation.py" not in words:
            continue
        rest = words[words.index("run_installation.py") + 1:]
        command = rest.pop(0) if rest and rest[0] in ("play", "render", "ports", "kiosk") else "play"
        sub = build_parser()._subparsers._group_actions[0].choices[command]
        takes = {s: a.nargs != 0 for a in sub._actions for s in a.option_strings}
        reads, i = [], 0
        while i < len(rest):
            w = rest[i]
            if w.startswith("--"):
                name = w.split("=")[0]
                if takes.get(name) and "=" not in w:
                    if name in PATH_OPTIONS:
                        reads.append(rest[i + 1])
                    if name in ("--out", "--record"):
                        made.add(rest[i + 1].rstrip("/"))
                    i += 1
            elif command == "render":
                reads.append(w)
            i += 1
        for path in reads:
            installed = re.search(rf"\b(cp|mkdir|tee)\b[^\n`]*{re.escape(path)}", (REPO / doc).read_text())
            assert path.startswith("<") or (REPO / path).exists() or path.rstrip("/") in made or installed, \
                f"{doc}: {path} is neither in the repository nor a <placeholder>: {line}"


def test_the_option_tables_are_made_from_the_declarations():
    """docs/OPTIONS.md's table is what docs/option_tables.py makes from each option's one declaration now: an
    option added, renamed, or given another default, range or help makes this fail until the table is rewritten."""
    import runpy
    tables = runpy.run_path(str(REPO / "docs" / "option_tables.py"))
    assert "<!-- options: " in (REPO / "docs" / "OPTIONS.md").read_text()
    assert tables["stale"]() == [], "run python docs/option_tables.py"
