"""The ``kiosk`` subcommand's options: one per KioskConfig field, all defaulting to 'not given' so that
the command line overrides the --config file, which overrides the defaults."""
from __future__ import annotations

import argparse
import signal

from installation.kiosk import config as C

HELP = {
    "port": "connect to the MIDI output port whose name contains this (the kill test's panic needs a named port)",
    "virtual_port": "create a virtual MIDI port with this name (the default when no --port)",
    "camera": "camera index, stream URL, or a video file standing in for a camera (default 0)",
    "camera_timeout_s": "seconds without a camera frame before the artworks play (attract mode; default 10)",
    "attract": "folder of images for attract mode (default: the bundled artworks)",
    "hours": "opening hours, local time, e.g. 10:00-18:00 (repeat or comma-separate; default: always open)",
    "status_port": "HTTP port for /health, / and /display (default 8080; 0: none)",
    "status_bind": "address for the status server (default 127.0.0.1; any other needs --status-token)",
    "status_token": "token every status request must carry (?token= or Authorization: Bearer)",
    "log_file": "JSON-lines state log, rotated",
    "duration": "stop after this many seconds (tests)",
}


def add_options(p: argparse.ArgumentParser) -> None:
    for name, f in C._FIELDS.items():
        flag = "--" + name.replace("_", "-")
        t = str(f.type)
        kw = {"default": None, "help": HELP.get(name, f"(default {f.default!r})" if f.default is not None
                                                 and f.default != () else None)}
        if name == "hours":
            p.add_argument(flag, action="append", **kw)
        elif name == "log_level":
            p.add_argument(flag, choices=["debug", "info", "warning", "error"], **kw)
        elif t.startswith("float"):
            p.add_argument(flag, type=float, **kw)
        elif t.startswith("int"):
            p.add_argument(flag, type=int, **kw)
        else:
            p.add_argument(flag, **kw)


def run_kiosk(args) -> int:
    import logging

    from installation.kiosk.supervisor import Supervisor
    overrides = {name: getattr(args, name) for name in C._FIELDS}
    cfg = C.build(args.config, overrides)       # every check before anything starts
    if args.log_level is None:
        logging.getLogger().setLevel(cfg.log_level.upper())
    sup = Supervisor(cfg)

    def on_signal(signum, frame):
        sup.stop_requested.set()
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, on_signal)
    return sup.run()
