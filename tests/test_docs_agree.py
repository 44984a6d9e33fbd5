"""The README's commands, the docs' examples and --help agree (issue 16, "Done when"): every option a
document shows on a `run_installation.py` command line exists on that command, and every key of the
example kiosk config is an option of the kiosk."""
import re
from pathlib import Path

import pytest

from installation.cli import build_parser

REPO = Path(__file__).resolve().parents[1]
DOCS = ["README.md", "docs/KIOSK.md", "docs/PATCHES.md", "deploy/image-to-music.service"]


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
