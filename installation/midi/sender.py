"""The sender process: owns the MIDI port, the Scheduler and the open-note table; nothing else.

It listens on a Unix socket for one thinker at a time and places the (due, message)
pairs it receives at their due times. When the thinker's connection ends (it
exited, crashed or was killed) every sounding note is released at once, and the
sender waits for the next thinker: the port, and a DAW's connection to it, stay.
No model, no camera: its scheduler thread shares the GIL only with the socket
reader and a 4 Hz heartbeat.

Every mode sends through it: the kiosk's supervisor runs it as a child beside the
thinker, and `play` runs it as its own child (installation.midi.sender_process), so
the notes of `play`, `play --synth` and the kiosk keep the same time. For `play` it
also records (``record``), falls back to recording when no MIDI system answers
(``record_fallback``), and hosts FluidSynth as its sink (``synth``).

    python -m installation.midi.sender --listen PATH --status-fd FD --config JSON [--for-play]

(--config: a SenderConfig as JSON, installation/midi/sender_config.py: the port, the recording, FluidSynth...)
"""
from __future__ import annotations

import argparse
import collections
import contextlib
import faulthandler
import gc
import logging
import math
import os
import signal
import sys
import threading
import time
from multiprocessing.connection import Listener

from installation.midi import midi_io
from installation.errors import UserError
from installation.logs import setup_logging, stop_logging
from installation.midi.link import Beacon
from installation.midi.scheduler import Scheduler, SchedulerConfig
from installation.midi.sender_config import SenderConfig

log = logging.getLogger("installation.midi.sender")
BEAT_S = 0.25
WATCH_S = 0.1              # how often the sender looks for a silent thinker
STOP_JOIN_S = 2.0          # at SIGTERM: how long the scheduler thread may take to silence the port
SWITCH_INTERVAL_S = 0.0002  # sys.setswitchinterval in the sender
CLOSE_WAIT_S = 2.0         # then: how long closing the port may take before the sender exits without it
THINKER_SILENT_S = 0.6     # a connected thinker that sends nothing this long (it sends at least every 0.2 s)
                           # is hung: every sounding note is released, the supervisor kills and restarts it


class NoteTap:
    """A sink wrapper that remembers (time, status, pitch, velocity) of each note message sent (for the display)."""

    def __init__(self, sink, clock=time.perf_counter):
        self.sink, self.clock = sink, clock
        self.notes: collections.deque = collections.deque(maxlen=4096)

    def send(self, msg) -> bool:
        ok = self.sink.send(msg)
        if ok and msg[0] & 0xE0 == 0x80:              # 0x8n or 0x9n that really went out (not to a lost port)
            self.notes.append((self.clock(), msg[0], msg[1], msg[2]))
        return ok

    @property
    def connected(self) -> bool:
        """The port's state (the scheduler sends note-offs it owes when this turns true again)."""
        return bool(getattr(self.sink, "connected", True))

    def drain(self) -> list:
        out = []
        while self.notes:
            out.append(self.notes.popleft())
        return out


def open_sink(cfg: SenderConfig):
    """The sink this sender plays to: FluidSynth (``cfg.synth``), else the MIDI port the config names; with no
    MIDI system and no port, a recording only (``cfg.record``, or a new timestamped file when
    ``cfg.record_fallback``). Returns (sink, description, the file recorded to or None)."""
    record, synth = cfg.record, cfg.synth
    if synth is not None:
        # lazy: FluidSynth's wrapper only with --synth; the sender's start-up stays light
        from installation.midi.synth import FluidSynthSink
        sink = FluidSynthSink(synth.get("soundfont"), synth.get("driver"), gain=synth.get("gain", 0.5))
        sink.open()
        return sink, sink.describe(), record
    try:
        sink, desc = midi_io.open_output(cfg.midi_api, cfg.port, cfg.virtual_port, record)
        return sink, desc, record
    except midi_io.NoMidiSystem:
        if cfg.port or not cfg.record_fallback:
            raise
        record = time.strftime("installation-%Y%m%d-%H%M%S.mid")
        sink, desc = midi_io.open_output(cfg.midi_api, None, cfg.virtual_port, record)   # warns, naming the file
        log.info("to play live instead: start JACK (or ALSA's sequencer), or hear it with --synth; "
                 "--record FILE chooses the file")
        return sink, desc, record


def serve(cfg: SenderConfig, listen: str, beacon: Beacon, peer: str = "thinker") -> int:
    """Open the sink, then place what the ``peer`` (the kiosk's thinker, or `play`) sends until SIGTERM."""
    sink, desc, record = open_sink(cfg)
    log.info("sender: %s", desc)
    tap = NoteTap(sink)
    scfg = SchedulerConfig(late_policy=cfg.late_policy, max_polyphony=cfg.max_polyphony,
                           max_note_s=cfg.max_note_seconds)
    recorder = midi_io.Recorder() if record else None
    sched = Scheduler(tap, scfg, recorder=recorder)
    def port_status() -> dict:
        """What every report says of the output: ready, which port, and whether it is connected."""
        return {"role": "sender", "ready": True, "port": sink.describe(), "port_name": sink.port_name,
                "port_connected": tap.connected}

    state = {"thinker": False, "thinkers": 0, "panics": 0, "last_rx": time.perf_counter(), "released": False, "bad": 0}
    stop = threading.Event()

    def beats():
        n, next_beat = 0, time.perf_counter()
        while not stop.wait(WATCH_S):
            now = time.perf_counter()
            silent = now - state["last_rx"] if state["thinker"] else 0.0
            if silent > THINKER_SILENT_S and not state["released"]:
                state["released"] = True              # once per silence; the next message from it resets this
                _release(sched)
                state["panics"] += 1
                log.warning("%s silent for %.1f s: every sounding note released", peer, silent)
            if now < next_beat:
                continue
            next_beat = now + BEAT_S
            msg = dict(port_status(), thinker=state["thinker"], thinker_silent_s=round(silent, 2),
                       notes=tap.drain(), panics=state["panics"])
            if n % 4 == 0:
                msg["stats"] = sched.stats()
            n += 1
            beacon.send(msg)

    with contextlib.suppress(FileNotFoundError):
        os.unlink(listen)                           # left behind by a sender that was killed
    listener = Listener(listen, family="AF_UNIX")
    # ready now, not at the first heartbeat: `play` waits for this before its first note is due
    beacon.send(dict(port_status(), api=getattr(sink, "api", None), record=record))

    def read_thinkers():
        """Accept one thinker at a time and place what it sends; a thread, so that no signal ever
        interrupts it half-way through the scheduler's lock."""
        while not stop.is_set():
            try:
                conn = listener.accept()
            except OSError:
                return                              # the listener was closed: we are stopping
            state["last_rx"], state["released"] = time.perf_counter(), False
            state["thinker"], state["thinkers"] = True, state["thinkers"] + 1
            log.info("%s connected", peer)
            bye = False
            try:
                while True:
                    msg = conn.recv()
                    state["last_rx"], state["released"] = time.perf_counter(), False
                    kind = msg[0]
                    if kind == "push":
                        try:
                            sched.push(msg[1])
                        except (ValueError, TypeError) as exc:     # not MIDI: dropped, the reader goes on
                            state["bad"] += 1
                            if math.log10(state["bad"]).is_integer():   # the 1st, 10th, 100th ...
                                log.warning("%s sent %d batch(es) that are not MIDI, dropped; the last: %s",
                                            peer, state["bad"], exc)
                    elif kind == "discard":
                        sched.discard_after(msg[1])
                    elif kind == "panic":
                        _release(sched)
                        state["panics"] += 1
                    elif kind == "bye":
                        bye = True
            except (EOFError, OSError):
                if bye:
                    log.info("%s stopped", peer)    # a normal stop: it released its notes itself (panic)
                elif not stop.is_set():
                    _release(sched)                 # the thinker is gone: silence now, not at max_note_s
                    state["panics"] += 1
                    log.warning("%s gone; every sounding note released, waiting for the next one", peer)
            finally:
                state["thinker"] = False
                conn.close()

    # Everything made so far (modules, the port, the scheduler) stays: the garbage collector need never walk it
    # again, so a collection that lands in the scheduler thread's way is short.
    gc.freeze()
    sched.start()
    threading.Thread(target=beats, name="heartbeat", daemon=True).start()
    threading.Thread(target=read_thinkers, name="thinker-reader", daemon=True).start()
    # The main thread only waits for SIGTERM (blocked in every thread, taken here synchronously): a handler
    # that raised an exception could land inside the scheduler's lock and leave it held for good, so that
    # the scheduler thread could never send its final note-offs (the soak test's stuck notes).
    signal.sigwait({signal.SIGTERM})
    log.info("sender stopping")
    # A stop that takes this long is a fault (the one who stops us kills us soon after): say where it hangs.
    faulthandler.dump_traceback_later(STOP_JOIN_S + 3.0, exit=False)
    stop.set()
    sched.stop(timeout=STOP_JOIN_S)                 # the scheduler thread: note-offs, pedal-ups, CC123 + CC120
    silenced = not sched.is_running()
    listener.close()
    final = {"role": "sender", "ready": True, "notes": tap.drain(), "stats": sched.stats(), "final": True}
    if recorder is not None:                        # the take is safe before the port is closed
        try:
            recorder.write(record)
            final["recorded"] = record
        except OSError as exc:
            log.error("could not write the recording %s: %s", record, exc.strerror or exc)
            final["record_error"] = f"{record}: {exc.strerror or exc}"
    beacon.send(final)
    if not silenced:
        log.error("the scheduler did not stop within %.1f s; exiting without closing the port, "
                  "so that the supervisor silences it", STOP_JOIN_S)
        return 1
    _normal_priority()                              # nothing is due any more; closing must not outrank JACK
    if not _close_within(sink, CLOSE_WAIT_S):       # never while the scheduler thread may still send
        log.warning("the MIDI output did not close within %.1f s (the MIDI system is busy); exiting without "
                    "waiting for it (every note was released before)", CLOSE_WAIT_S)
        stop_logging()
        os._exit(0)                                 # the kernel closes what libjack would not
    faulthandler.cancel_dump_traceback_later()
    return 0


def _close_within(sink, seconds: float) -> bool:
    """``sink.close()`` on a thread; False if it has not returned within ``seconds`` (a libjack client close
    was seen to hang once in 5 test runs at the end of a `play`: every note had been released by then)."""
    t = threading.Thread(target=sink.close, name="close-output", daemon=True)
    t.start()
    t.join(seconds)
    return not t.is_alive()


def _normal_priority() -> None:
    """Back to SCHED_OTHER for this thread (the scheduler thread has ended)."""
    if hasattr(os, "sched_setscheduler"):
        try:
            if os.sched_getscheduler(0) != os.SCHED_OTHER:
                os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        except OSError:
            pass


def _release(sched: Scheduler) -> None:
    """Drop what is queued, a note-off for each open note and a pedal-up for each pedal held now, then
    CC123 + CC120."""
    sched.discard_after(time.perf_counter())
    sched.panic()


def _realtime(priority: int, refused_level: int = logging.WARNING) -> None:
    """SCHED_FIFO at ``priority`` for this process's threads (inherited by those started later), so a busy
    machine's other processes do not delay a due message. Needs CAP_SYS_NICE or an rtprio limit (the systemd
    unit grants it); without, the sender runs at normal priority and says so once."""
    if priority <= 0 or not hasattr(os, "sched_setscheduler"):
        return
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
        log.info("sender: real-time priority %d (SCHED_FIFO)", priority)
    except (PermissionError, OSError) as exc:
        log.log(refused_level, "sender: no real-time priority (%s); running at normal priority",
                exc.strerror or exc)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="installation.midi.sender")
    ap.add_argument("--listen", required=True)
    ap.add_argument("--status-fd", type=int, required=True)
    ap.add_argument("--config", required=True, help="a SenderConfig as JSON")
    ap.add_argument("--for-play", action="store_true",
                    help="run as `play`'s sender: an error goes to play only (it prints it), and no real-time "
                         "priority is a note, not a warning")
    args = ap.parse_args(argv)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})   # before any thread: serve() takes it with sigwait
    signal.signal(signal.SIGINT, signal.SIG_IGN)        # Ctrl-C goes to the supervisor, which stops us in order
    cfg = SenderConfig.from_json(args.config)
    setup_logging(cfg.log_level)
    _realtime(cfg.priority, logging.INFO if args.for_play else logging.WARNING)
    # The scheduler thread shares the GIL with the reader and the heartbeat: a waiting thread gets it after
    # the switch interval at most (Python's default 5 ms would be a 5 ms late note), as in the Engine.
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    beacon = Beacon(args.status_fd)
    try:
        return serve(cfg, args.listen, beacon, peer="play" if args.for_play else "thinker")
    except UserError as exc:
        if isinstance(exc, midi_io.NoMidiSystem) and not args.for_play:   # its advice (--record) is play's
            exc = UserError(f"no MIDI system reachable ({exc.reason}): start JACK (jackd -d alsa with a sound "
                            f"card, jackd -d dummy without) or ALSA's sequencer (modprobe snd-seq); the kiosk "
                            f"tries again by itself")
        beacon.send({"role": "sender", "error": str(exc)})
        if not args.for_play:
            print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
