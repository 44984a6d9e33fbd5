"""The command line: play (default), render, ports, kiosk.

User mistakes print one line (``error: ...``) and exit with status 2; no tracebacks.
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import sys
import time

from installation.collection.options import AUDIO_CHOICES, add_options as add_collection_options
from installation.collection.options import render as render_collection
from installation.errors import UserError, one_line
from installation.kiosk import config as C
from installation.kiosk.cli_options import add_options, run_kiosk
from installation.logs import setup_logging, stop_logging
from installation.signals import route_signals

log = logging.getLogger("installation")

COMMANDS = ("play", "render", "ports", "kiosk")


class Parser(argparse.ArgumentParser):
    """argparse, with a mistake on the command line shown as one ``error:`` line (exit status 2)."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def _settle(args, names, file_values: dict | None = None) -> None:
    """Options not given take the config file's value, else the default; then all are checked (one line)."""
    for name in names:
        if getattr(args, name) is None:
            setattr(args, name, (file_values or {}).get(name, C._FIELDS[name].default))
    try:
        C.check_values(args, option_names=True)
    except C.ConfigError as exc:
        raise UserError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    installed = os.path.basename(sys.argv[0]) == "image-to-music"     # the command pip installs (pyproject.toml)
    ap = Parser(prog="image-to-music" if installed else "run_installation.py",
                description="Image-to-music installation: hear the mood of what the camera sees.")
    sub = ap.add_subparsers(dest="command", parser_class=Parser)

    play = sub.add_parser("play", help="make music from a camera, video, image or folder, live on MIDI (default)")
    play.add_argument("--config", default=None, metavar="FILE",
                      help="TOML file with any of these options (the kiosk's file works too; docs/KIOSK.md)")
    add_options(play, C.options_of("play"))
    play.add_argument("--record", default=None, metavar="FILE", help="also write what was played to this MIDI file")
    play.add_argument("--synth", action="store_true", default=None,
                      help="play through FluidSynth inside the sender process (optional extra; with no sound card "
                           "it writes the sound to a WAV file and says where)")
    play.add_argument("--soundfont", default=None, help="the .sf2 SoundFont for --synth (default: the system's General MIDI one)")
    play.add_argument("--audio-driver", default=None,
                      help="FluidSynth audio driver for --synth (alsa, pulseaudio, jack, coreaudio...; file:OUT.wav writes a file)")

    render = sub.add_parser("render", help="write one MIDI file per image, offline and batched")
    add_options(render, C.options_of("render"))
    render.add_argument("images", nargs="+", help="image files or folders")
    render.add_argument("--out", required=True, help="output folder (created if needed)")
    render.add_argument("--seconds", type=float, default=30.0, help="seconds of music per image (default 30)")
    render.add_argument("--batch", type=int, default=64, help="images sampled together (default 64)")
    render.add_argument("--patch", default=None, help="route and shape the notes with this patch (name in patches/ or .toml path)")
    render.add_argument("--audio", nargs="?", const="wav", default=None, choices=AUDIO_CHOICES,
                        help="also write audio (WAV, FLAC, Ogg/Opus, or both FLAC and Opus) next to each MIDI file, "
                             "through FluidSynth, normalised (optional extra)")
    render.add_argument("--soundfont", default=None, help="the .sf2 SoundFont for --audio (default: the system's General MIDI one)")
    add_collection_options(render)

    ports = sub.add_parser("ports", help="list MIDI ports")
    add_options(ports, ["midi_api"])
    ports.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"],
                       help="debug, info, warning or error (default warning)")

    kiosk = sub.add_parser("kiosk", help="unattended gallery mode: supervised, opening hours, status pages")
    kiosk.add_argument("--config", default=None, metavar="FILE",
                       help="TOML file with any of the options below (docs/KIOSK.md); the command line overrides it")
    add_options(kiosk)
    return ap


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise UserError(msg)


# --- play ---------------------------------------------------------------------------

PLAY_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")     # each one stops play cleanly, at any moment


class _Stopped(Exception):
    """A signal asked play to stop before its performance began."""


class _Stop:
    """A stop asked for by a signal (on the signal thread, never in a handler): sets every event it was given,
    now or when it is given one later (the sender's start, then the engine's stop)."""

    def __init__(self):
        import threading
        self.asked = threading.Event()
        self._also: list = []
        self._lock = threading.Lock()

    def __call__(self, signum: int | None = None) -> None:
        with self._lock:
            self.asked.set()
            for event in self._also:
                event.set()

    def also(self, event) -> None:
        with self._lock:
            self._also.append(event)
            if self.asked.is_set():
                event.set()

    def check(self) -> None:
        if self.asked.is_set():
            raise _Stopped


def play(args) -> int:
    """Signals are routed before anything starts (the sender process above all): SIGINT, SIGTERM or SIGHUP at
    any moment stops play in order, with no traceback, and its sender with it."""
    import signal
    stop = _Stop()
    restore = route_signals(stop, [getattr(signal, name) for name in PLAY_SIGNALS if hasattr(signal, name)])
    try:
        return _play(args, stop)
    except _Stopped:
        log.info("stopped before the performance began")
        return 0
    finally:
        restore()


def _play(args, stop: _Stop) -> int:
    # lazy: numpy, cv2, multiprocessing only when play starts (--help and ports stay light)
    from installation import manifest as M
    from installation.image.capture import open_source
    from installation.engine import Engine, assemble
    from installation.midi.sender_config import SenderConfig
    from installation.midi.sender_process import SenderProcess

    file_values = C.read_toml(args.config, for_play=True) if args.config else {}
    for name in C.PLAY_ONLY:                         # record, synth, soundfont, audio_driver
        if getattr(args, name) is None:
            setattr(args, name, file_values.get(name))
    _settle(args, C.options_of("play"), file_values)      # every number finite and in range, or one line
    logging.getLogger().setLevel(args.log_level.upper())   # the config file may set it
    plan = assemble(args)                            # a bad patch, emotion map or steering stops here:
    patch = plan.patch                               # nothing has been opened yet
    models = M.load(args.models)                     # and missing or broken models
    if args.record:                                  # a take that cannot be saved is refused now, not at the end
        C.writable_file(args.record, "--record")
    synth = None
    if args.synth:                                   # finds pyfluidsynth and the SoundFont, or says what to install
        from installation.midi.synth import check_extra        # lazy: --help stays light
        synth_cfg = patch.synth or {}
        synth = {"soundfont": str(check_extra("--synth", args.soundfont or synth_cfg.get("soundfont"))),
                 "driver": args.audio_driver, "gain": synth_cfg.get("gain", 0.5)}
    sender_cfg = SenderConfig.of(args, port=plan.port, virtual_port=plan.virtual_port, record=args.record,
                                 record_fallback=True, synth=synth)

    with contextlib.ExitStack() as cleanup:
        # The notes leave through the sender process, as in the kiosk: started first, it opens the port
        # while this process builds its engine (the ONNX sessions).
        stop.check()
        sender = SenderProcess(sender_cfg)
        cleanup.callback(sender.stop)
        sender.start()
        source = open_source(args.source, slide_seconds=args.slide_seconds)
        cleanup.callback(source.close)
        stop.check()
        log.info("source: %s", source.description)
        log.info("patch: %s (%s)", patch.name, patch.description or patch.path)
        if patch.shaping.scale:
            log.info("patch %s: every note is moved into %s (each scene line names the key asked, and this scale)",
                     patch.name, patch.shaping.scale)
        log.info("music model: the %s decoder%s", _decoder_name(models, args.decoder),
                 "" if args.decoder else " (the models' default; --decoder chooses)")
        engine = Engine(models, source, plan.config, patch=patch, scheduler=sender.scheduler, midi_api=args.midi_api)
        try:
            stop.check()
            ready = sender.wait_ready(SENDER_READY_S, cancel=stop.asked)
            stop.check()
        except BaseException:
            if engine.patch is not None:
                engine.patch.stop()                  # its MIDI inputs and OSC socket, opened with the engine
            raise
        log.info("output: %s (sent by the sender process, pid %d)", ready.get("port"), sender.proc.pid)
        sender.on_death = lambda why: engine._fail(RuntimeError(f"the MIDI sender process ended ({why})"))
        if sender.returncode is not None:            # it ended before on_death was set
            sender.on_death(f"exit status {sender.returncode}")
        return _perform(engine, sender, args.duration, stop)


SENDER_READY_S = 20.0      # the sender's start: a Python process opening a MIDI port (about 0.3 s; more under load)


def _decoder_name(models, asked: str | None) -> str:
    kind = asked or models.default_decoder
    return {"gru": "GRU", "transformer": "Transformer"}.get(kind, kind)


def _perform(engine, sender, duration, stop: _Stop) -> int:
    """Run the engine until duration, a signal or a failure; then stop the sender, which silences the port
    and writes the recording."""
    stop.also(engine.stop_event)                     # a signal wakes the main thread, which stops in order
    started = time.perf_counter()
    try:
        engine.start()
        log.info("playing%s; Ctrl-C to stop", f" for {duration:g} s" if duration else "")
        engine.wait(duration)
    finally:
        engine.stop()
        code = sender.stop()
        st = sender.stats()
        log.info("stopped after %.1f s: %d events generated, %d MIDI messages sent, lateness p50 %s p99 %s",
                 time.perf_counter() - started, engine.generator.events_generated, st.get("sent", 0),
                 _ms(st.get("lateness_p50")), _ms(st.get("lateness_p99")))
        final = sender.final or {}
    if isinstance(engine.failure, UserError):
        raise engine.failure
    if engine.failure is not None:
        log.error("the engine stopped on an internal error: %s", engine.failure)
        return 1
    if final.get("record_error"):
        log.error("the recording was not saved: %s", final["record_error"])
        return 1
    if code not in (0, None):
        log.error("the MIDI sender process ended with exit status %s", code)
        return 1
    return 0


def _ms(x) -> str:
    return "-" if x is None else f"{x * 1000:.2f} ms"


# --- render ---------------------------------------------------------------------------

def render(args) -> int:
    """Every image into --out as a collection job: resumable, failures isolated, on 1 or N workers."""
    _settle(args, C.options_of("render"))
    _check(math.isfinite(args.seconds) and 0 < args.seconds <= 3600, f"--seconds {args.seconds}: must be above 0 and at most 3600")
    _check(0 < args.batch <= 4096, f"--batch {args.batch}: must be 1 to 4096")
    # lazy: numpy (the engine's modules) only when render starts
    from installation.engine import patched_map, steering_of
    steering, emap = steering_of(args)
    patch = None
    if args.patch is not None:
        from installation.patches import load_patch            # lazy: patch.py costs ~8 ms; --help stays light
        patch = load_patch(args.patch)
        emap = patched_map(emap, patch, args.models)
    return render_collection(args, steering, emap, patch)


# --- ports ----------------------------------------------------------------------------

def ports(args) -> int:
    # lazy: rtmidi for ports only (play's parent process and --help load no MIDI library)
    from installation.midi import midi_io

    try:
        api = midi_io.choose_api(args.midi_api)
    except midi_io.NoMidiSystem as exc:             # its advice names play's --record, which ports lacks
        raise UserError(f"no MIDI system reachable ({exc.reason}); start JACK (see the README: jackd -d dummy) "
                        f"or ALSA's sequencer (modprobe snd-seq), or name one with --midi-api") from None
    found = midi_io.list_ports(api)
    print(f"MIDI API: {api}")
    for kind in ("outputs", "inputs"):
        print(f"{kind} (use with --port):" if kind == "outputs" else f"{kind}:")
        for name in found[kind] or ["(none)"]:
            print(f"  {name}")
    return 0


def kiosk(args) -> int:
    return run_kiosk(args)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0] not in COMMANDS and argv[0] not in ("-h", "--help")):
        argv.insert(0, "play")
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level or "info")
    try:
        return {"play": play, "render": render, "ports": ports, "kiosk": kiosk}[args.command](args)
    except UserError as exc:
        stop_logging()                               # the log lines before it, then the error on its own line
        logging.getLogger().handlers[:] = [logging.StreamHandler(sys.stderr)]
        print(f"error: {one_line(str(exc))}", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:
        return 130
