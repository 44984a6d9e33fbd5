"""Options declared once (mido's SPECS): ``opt()`` makes a dataclass field that carries the option's default,
help, the commands that take it, and its range or choices. The command line (kiosk/cli_options.py), the TOML
file, the checks at start (kiosk/config.py, where every option is declared) and the docs' option tables
(docs/option_tables.py) are all made from those fields.

The generation options are declared here, on the ground floor, because the engine (EngineConfig), render's
sampler (music/render.RenderSettings) and a collection's job (collection/job.Settings) take their defaults
from the same declaration as the command line: ``generation(name)`` gives each class its field.
"""
from __future__ import annotations

import dataclasses

PLAY_KIOSK, ALL, KIOSK = ("play", "kiosk"), ("play", "kiosk", "render"), ("kiosk",)
MAX_INT = 2 ** 63 - 1                   # any whole number beyond this in a setting is a mistake


def opt(default, help: str, *, commands=PLAY_KIOSK, least=None, above=None, most=None, choices=None):
    """One option, declared once: its default, help, the commands that take it (the same name and meaning in
    each), and its range (``least`` or ``above``, ``most``) or ``choices``."""
    return dataclasses.field(default=default, metadata={"help": help, "commands": commands, "choices": choices,
                                                        "range": None if most is None else (
                                                            least if above is None else above, most, above is not None)})


GENERATION = {
    "seed": dict(default=None, help="sampling seed (0 or more): a run from a file or image source is reproducible "
                                    "(default: a new one each run; render: 0)", least=0, most=MAX_INT),
    "temperature": dict(default=1.0, help="sampling temperature, 0 (greedy) to 10 (default 1.0)",
                        least=0.0, most=10.0),
    "top_p": dict(default=0.95, help="nucleus sampling: keep the most likely events up to this mass, in (0, 1] "
                                     "(default 0.95)", above=0.0, most=1.0),
    "decoder": dict(default=None, help="the music model, gru or transformer (default: the one the models' "
                                       "manifest names)", choices=("gru", "transformer")),
    "guidance": dict(default=None, help="how hard the decoder leans into the asked key, 0 (off) to 8 "
                                        "(default: the weight the manifest gives)", least=0.0, most=8.0),
}


def generation(name: str):
    """A field for the generation option ``name``, taken by every command (a field belongs to one class only,
    so each class gets its own, made from the one declaration)."""
    return opt(commands=ALL, **GENERATION[name])
