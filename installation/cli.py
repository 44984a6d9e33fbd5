"""The command line: play (default), render, ports, kiosk.

User mistakes print one line (``error: ...``) and exit with status 2; no tracebacks.
"""
from __future__ import annotations

import argparse
import atexit
import contextlib
import logging
import logging.handlers
import os
import queue
import sys
import time
from pathlib import Path

from installation.errors import UserError

log = logging.getLogger("installation")

COMMANDS = ("play", "render", "ports", "kiosk")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--models", default=None, help="folder with manifest.json and the ONNX models (default: exported_models/)")
    p.add_argument("--seed", type=int, default=None, help="sampling seed: a run from a file or image source is reproducible")
    p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (0 = greedy; default 1.0)")
    p.add_argument("--top-p", type=float, default=0.95, help="nucleus sampling: keep the most likely events up to this mass")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.add_argument("--decoder", default=None, choices=["gru", "transformer"],
                   help="the music model (default: the one the models' manifest names)")
    p.add_argument("--guidance", type=float, default=None,
                   help="how hard the decoder leans into the asked key (0 = off; default: the weight the manifest gives)")
    mood = p.add_argument_group("mood (override what the picture says)")
    mood.add_argument("--valence", type=float, default=None, help="-1 (sad, tense) .. 1 (happy, calm): replaces the image's valence")
    mood.add_argument("--arousal", type=float, default=None, help="-1 (calm, sad) .. 1 (excited, tense): replaces the image's arousal")
    mood.add_argument("--key", default=None, help="pin the key: a tonic (D) or a key (F# minor, Bb major)")
    mood.add_argument("--emotion-map", default=None, metavar="FILE",
                      help="a TOML emotion map (valence/arousal -> controls) instead of the models' emotion_map.toml")


def _steering(args, motion_weight: float = 0.0):
    """The hand settings of the command line, checked; a mistake is one line."""
    from installation.mood.conductor import Steering
    from installation.mood import emotion_map

    _check(args.guidance is None or 0 <= args.guidance <= 8, f"--guidance {args.guidance}: must be between 0 and 8")
    st = Steering(valence=args.valence, arousal=args.arousal, key=args.key, motion_weight=motion_weight)
    try:
        st.check()
    except ValueError as exc:
        raise UserError(str(exc)) from None
    try:
        emap = emotion_map.load(args.emotion_map) if args.emotion_map else None
    except emotion_map.MapError as exc:
        raise UserError(f"--emotion-map: {exc}") from None
    return st, emap


def _patched_map(emap, patch, models=None):
    """The emotion map with the patch's [emotion_map] table laid over it (None: no change)."""
    from installation.mood import emotion_map

    override = getattr(patch, "emotion_map", None) if patch is not None else None
    if not override:
        return emap
    try:
        from installation.manifest import DEFAULT_DIR
        base = emap or emotion_map.for_models(models or DEFAULT_DIR)
        return base.overridden(override, f"patch {patch.path}: emotion_map")
    except emotion_map.MapError as exc:
        raise UserError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="run_installation.py",
                                 description="Image-to-music installation: hear the mood of what the camera sees.")
    sub = ap.add_subparsers(dest="command")

    play = sub.add_parser("play", help="make music from a camera, video, image or folder, live on MIDI (default)")
    _common(play)
    play.add_argument("--source", default=None,
                      help="camera index, video file or URL, image, or folder (default: camera 0, else the bundled artworks)")
    play.add_argument("--slide-seconds", type=float, default=20.0, help="seconds per image in a folder slideshow")
    play.add_argument("--embed-fps", type=float, default=4.0, help="frames embedded per second at most")
    play.add_argument("--lookahead-ms", type=float, default=750.0, help="music generated ahead of playback")
    play.add_argument("--tempo-scale", type=float, default=1.0, help="stretch time: 2 plays at half speed")
    play.add_argument("--port", default=None, help="connect to the MIDI output port whose name contains this")
    play.add_argument("--virtual-port", default=None, help="create a virtual MIDI port with this name (the default when no --port)")
    play.add_argument("--midi-api", default=None, choices=["alsa", "jack", "coremidi", "winmm"],
                      help="rtmidi API (default: the platform's, falling back to JACK)")
    play.add_argument("--channel", type=int, default=1, help="MIDI channel 1-16 (default 1)")
    play.add_argument("--record", default=None, help="also write what was played to this MIDI file")
    play.add_argument("--duration", type=float, default=None, help="stop cleanly after this many seconds")
    play.add_argument("--late-policy", default="send", choices=["send", "drop"],
                      help="a message that is late: send it at once, or drop it (note-offs are always sent)")
    play.add_argument("--max-polyphony", type=int, default=32, help="notes sounding at once; the oldest is released beyond")
    play.add_argument("--max-note-seconds", type=float, default=8.0, help="a note held longer is released")
    play.add_argument("--motion-weight", type=float, default=0.0,
                      help="live cameras: arousal added at full motion in the frame (0 = off, e.g. 0.6); still images and folders ignore it")
    play.add_argument("--patch", default=None, help="a patch: a name in patches/ or a .toml path (default: gm-piano; see docs/PATCHES.md)")
    play.add_argument("--synth", action="store_true", help="play through FluidSynth inside this process (optional extra)")
    play.add_argument("--soundfont", default=None, help="the .sf2 SoundFont for --synth (default: the system's General MIDI one)")
    play.add_argument("--audio-driver", default=None,
                      help="FluidSynth audio driver for --synth (alsa, pulseaudio, jack, coreaudio...; file:OUT.wav writes a file)")

    render = sub.add_parser("render", help="write one MIDI file per image, offline and batched")
    _common(render)
    render.add_argument("images", nargs="+", help="image files or folders")
    render.add_argument("--out", required=True, help="output folder (created if needed)")
    render.add_argument("--seconds", type=float, default=30.0, help="music per image")
    render.add_argument("--batch", type=int, default=64, help="images sampled together")
    render.add_argument("--patch", default=None, help="route and shape the notes with this patch (name in patches/ or .toml path)")
    render.add_argument("--audio", nargs="?", const="wav", default=None, choices=["wav", "flac", "opus", "flac+opus"],
                        help="also write audio (WAV, FLAC, Ogg/Opus, or both FLAC and Opus) next to each MIDI file, "
                             "through FluidSynth, normalised (optional extra)")
    render.add_argument("--soundfont", default=None, help="the .sf2 SoundFont for --audio (default: the system's General MIDI one)")
    from installation.collection.options import add_options as add_collection_options
    add_collection_options(render)

    ports = sub.add_parser("ports", help="list MIDI ports")
    ports.add_argument("--midi-api", default=None, choices=["alsa", "jack", "coremidi", "winmm"])
    ports.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])

    kiosk = sub.add_parser("kiosk", help="unattended gallery mode: supervised, opening hours, status pages")
    kiosk.add_argument("--config", default=None, help="TOML file with any of the options below (docs/KIOSK.md)")
    from installation.kiosk.cli_options import add_options
    add_options(kiosk)
    return ap


def _private_stderr():
    """A stream on a duplicate of file descriptor 2: the MIDI probes silence fd 2 for a moment
    (libjack prints to it), and the log thread must not lose a line written in that moment."""
    try:
        return os.fdopen(os.dup(sys.stderr.fileno()), "w", buffering=1, encoding=sys.stderr.encoding or "utf-8",
                         errors="backslashreplace")
    except (AttributeError, OSError, ValueError):      # no real file descriptor (e.g. captured output)
        return sys.stderr


def setup_logging(level: str) -> None:
    """Log through a queue: threads that log never wait for the terminal (stderr)."""
    q: queue.SimpleQueue = queue.SimpleQueue()
    handler = logging.StreamHandler(_private_stderr())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(message)s", "%H:%M:%S"))
    listener = logging.handlers.QueueListener(q, handler)
    root = logging.getLogger()
    root.handlers[:] = [logging.handlers.QueueHandler(q)]
    root.setLevel(level.upper())
    listener.start()
    atexit.register(listener.stop)


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise UserError(msg)


# --- play ---------------------------------------------------------------------------

def play(args) -> int:
    from installation import manifest as M
    from installation.midi import midi_io
    from installation.image.capture import open_source
    from installation.engine import Engine, EngineConfig
    from installation.music.generator import GeneratorConfig
    from installation.patches import load_patch
    from installation.midi.scheduler import SchedulerConfig

    patch = load_patch(args.patch)                   # a bad patch stops here: nothing has been opened yet
    steering, emap = _steering(args, args.motion_weight)
    emap = _patched_map(emap, patch, args.models)    # so does a bad emotion map in it
    _check(1 <= args.channel <= 16, f"--channel {args.channel}: MIDI channels are 1-16")
    _check(args.embed_fps > 0, "--embed-fps must be above 0")
    _check(args.tempo_scale > 0, "--tempo-scale must be above 0")
    _check(args.lookahead_ms >= 20, "--lookahead-ms must be at least 20")
    _check(args.slide_seconds > 0, "--slide-seconds must be above 0")
    _check(args.duration is None or args.duration > 0, "--duration must be above 0")
    _check(0 < args.top_p <= 1, "--top-p must be in (0, 1]")
    if args.record:
        rp = Path(args.record)
        _check(rp.parent.is_dir(), f"--record {rp}: folder {rp.parent} does not exist")
    if args.patch is not None and args.channel != 1:
        log.warning("--channel %d is ignored: the patch's layers set the channels", args.channel)
    if args.patch is None and args.channel != 1:     # the default patch, on the channel asked for
        import dataclasses
        patch = dataclasses.replace(patch, layers=tuple(dataclasses.replace(la, channel=args.channel)
                                                        for la in patch.layers))
    port, virtual = args.port, args.virtual_port
    if port is None and virtual is None:
        port, virtual = patch.output.port, patch.output.virtual_port
    synth = None
    if args.synth:                                   # finds pyfluidsynth and the SoundFont, or says what to install
        from installation.patches.synth import FluidSynthSink, import_fluidsynth
        import_fluidsynth()
        synth_cfg = patch.synth or {}
        synth = FluidSynthSink(args.soundfont or synth_cfg.get("soundfont"), args.audio_driver,
                               gain=synth_cfg.get("gain", 0.5))

    with contextlib.ExitStack() as cleanup:
        source = open_source(args.source, slide_seconds=args.slide_seconds)
        cleanup.callback(source.close)
        log.info("source: %s", source.description)
        record = args.record
        if synth is not None:
            sink = synth
            sink.open()
            desc = sink.describe()
        else:
            try:
                sink, desc = midi_io.open_output(args.midi_api, port, virtual, record)
            except midi_io.NoMidiSystem:
                if port:
                    raise
                record = time.strftime("installation-%Y%m%d-%H%M%S.mid")
                sink, desc = midi_io.open_output(args.midi_api, None, virtual, record)   # warns, naming the file
                log.info("to play live instead: start JACK (or ALSA's sequencer), or hear it with --synth; "
                         "--record FILE chooses the file")
        cleanup.callback(sink.close)
        log.info("patch: %s (%s)", patch.name, patch.description or patch.path)
        log.info("output: %s", desc)
        models = M.load(args.models)
        recorder = midi_io.Recorder() if record else None
        cfg = EngineConfig(
            embed_fps=args.embed_fps, seed=args.seed, temperature=args.temperature, top_p=args.top_p,
            steering=steering, emotion_map=emap, decoder=args.decoder, guidance=args.guidance,
            generator=GeneratorConfig(lookahead_s=args.lookahead_ms / 1000,
                                      tempo_scale=args.tempo_scale * patch.shaping.tempo_scale,
                                      channel=args.channel - 1),
            scheduler=SchedulerConfig(late_policy=args.late_policy, max_polyphony=args.max_polyphony,
                                      max_note_s=args.max_note_seconds))
        engine = Engine(models, source, sink, cfg, recorder=recorder, patch=patch,
                        midi_api=getattr(sink, "api", None) or args.midi_api)
        return _perform(engine, sink, recorder, record, args.duration)


def _perform(engine, sink, recorder, record, duration) -> int:
    """Run the engine until duration, a signal or a failure; always silence and save."""
    from installation.signals import route_signals
    restore = route_signals(lambda signum: engine.stop_event.set())   # the main thread wakes and stops in order
    started = time.perf_counter()
    try:
        engine.start()
        log.info("playing%s; Ctrl-C to stop", f" for {duration:g} s" if duration else "")
        engine.wait(duration)
    finally:
        engine.stop()
        restore()
        if recorder is not None:
            recorder.write(record)
        st = engine.stats()
        log.info("stopped after %.1f s: %d events generated, %d MIDI messages sent, lateness p50 %s p99 %s",
                 time.perf_counter() - started, st["events_generated"], st["sent"],
                 _ms(st.get("lateness_p50")), _ms(st.get("lateness_p99")))
    if isinstance(engine.failure, UserError):
        raise engine.failure
    if engine.failure is not None:
        log.error("the engine stopped on an internal error: %s", engine.failure)
        return 1
    return 0


def _ms(x) -> str:
    return "-" if x is None else f"{x * 1000:.2f} ms"


# --- render ---------------------------------------------------------------------------

def render(args) -> int:
    """Every image into --out as a collection job: resumable, failures isolated, on 1 or N workers."""
    from installation.collection.options import render as render_collection

    _check(args.seconds > 0, "--seconds must be above 0")
    _check(args.batch > 0, "--batch must be above 0")
    steering, emap = _steering(args)
    patch = None
    if args.patch is not None:
        from installation.patches import load_patch
        patch = load_patch(args.patch)
        emap = _patched_map(emap, patch, args.models)
    return render_collection(args, steering, emap, patch)


# --- ports ----------------------------------------------------------------------------

def ports(args) -> int:
    from installation.midi import midi_io

    api = midi_io.choose_api(args.midi_api)
    found = midi_io.list_ports(api)
    print(f"MIDI API: {api}")
    for kind in ("outputs", "inputs"):
        print(f"{kind} (use with --port):" if kind == "outputs" else f"{kind}:")
        for name in found[kind] or ["(none)"]:
            print(f"  {name}")
    return 0


def kiosk(args) -> int:
    from installation.kiosk.cli_options import run_kiosk
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
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
