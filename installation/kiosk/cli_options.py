"""The ``kiosk`` subcommand's options: one per KioskConfig field, with that field's help, all defaulting to
'not given' so that the command line overrides the --config file, which overrides the defaults."""
from __future__ import annotations

import argparse
import signal

from installation.errors import UserError
from installation.kiosk import config as C
from installation.signals import route_signals


def add_options(p: argparse.ArgumentParser, names=None) -> None:
    """One option per configuration field (or per field in ``names``), named and explained as in the file."""
    for name, f in C._FIELDS.items():
        if names is not None and name not in names:
            continue
        flag = "--" + name.replace("_", "-")
        t = str(f.type)
        kw = {"default": None, "help": f.metadata["help"]}
        if f.metadata["choices"]:
            kw["choices"] = f.metadata["choices"]
        if name == "hours":
            p.add_argument(flag, action="append", **kw)
        elif t.startswith("float"):
            p.add_argument(flag, type=float, **kw)
        elif t.startswith("int"):
            p.add_argument(flag, type=int, **kw)
        else:
            p.add_argument(flag, **kw)
    if names is None:                    # the kiosk: its older option names, still accepted (C.OLD_NAMES)
        for old in C.OLD_NAMES:
            p.add_argument("--" + old.replace("_", "-"), default=None, help=argparse.SUPPRESS)


def _check_port(cfg: C.KioskConfig) -> None:
    """The named MIDI port, looked for once at start. A check run (--duration) needs it there now and fails
    with one line; an unattended run warns and lets the sender connect when it appears."""
    import logging

    # lazy: rtmidi only when the kiosk checks its port (--help stays light)
    from installation.midi import midi_io
    if not cfg.port:
        return
    try:
        api = midi_io.choose_api(cfg.midi_api)
        midi_io.find_port(midi_io.list_ports(api)["outputs"], cfg.port)
    except UserError as exc:
        reason = getattr(exc, "reason", None) or str(exc)
        if cfg.duration is not None:
            raise C.ConfigError(f"--port {cfg.port}: {reason}") from None
        logging.getLogger("installation.kiosk").warning(
            "port %r is not there now (%s); the sender connects when it appears", cfg.port, reason)


def overrides_of(args) -> dict:
    """The options given on the kiosk's command line (None: not given), an older name read as its new one."""
    overrides = {name: getattr(args, name) for name in C._FIELDS}
    for old in C.OLD_NAMES:
        if getattr(args, old, None) is not None:
            new = C.renamed(old, "--" + old.replace("_", "-"), option=True)
            overrides[new] = overrides[new] if overrides[new] is not None else getattr(args, old)
    return overrides


def run_kiosk(args) -> int:
    import logging

    # lazy: the supervisor (multiprocessing, the kiosk's modules) only when the kiosk starts, not for --help
    from installation.kiosk.supervisor import Supervisor
    cfg = C.build(args.config, overrides_of(args))     # every value checked before anything starts
    plan = C.check_resources(cfg)               # and what the files and folders it names hold
    cfg = cfg.replace(port=plan.port, virtual_port=plan.virtual_port)   # the patch's, unless given
    _check_port(cfg)
    if args.log_level is None:
        logging.getLogger().setLevel(cfg.log_level.upper())
    sup = Supervisor(cfg)
    # before any child is spawned (sup.run); the stop is set on a thread, never inside a handler
    route_signals(lambda signum: sup.stop_requested.set(), (signal.SIGINT, signal.SIGTERM, signal.SIGHUP))
    return sup.run()
