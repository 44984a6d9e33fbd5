"""The sender process: owns the MIDI port, the Scheduler and the open-note table; nothing else.

It listens on a Unix socket for one thinker at a time and places the (due, message)
pairs it receives at their due times. When the thinker's connection ends (it
exited, crashed or was killed) every sounding note is released at once, and the
sender waits for the next thinker: the port, and a DAW's connection to it, stay.
No model, no camera: its scheduler thread shares the GIL only with the socket
reader and a 4 Hz heartbeat.

    python -m installation.kiosk.sender --listen PATH --status-fd FD --config JSON
"""
from __future__ import annotations

import argparse
import collections
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from multiprocessing.connection import Listener

from installation.midi import midi_io
from installation.errors import UserError
from installation.kiosk.config import KioskConfig, from_json
from installation.kiosk.link import Beacon, die_with_parent
from installation.midi.scheduler import Scheduler, SchedulerConfig

log = logging.getLogger("installation.kiosk.sender")
BEAT_S = 0.25
WATCH_S = 0.1              # how often the sender looks for a silent thinker
STOP_JOIN_S = 2.0          # at SIGTERM: how long the scheduler thread may take to silence the port
THINKER_SILENT_S = 0.6     # a connected thinker that sends nothing this long (it sends at least every 0.2 s)
                           # is hung: every sounding note is released, the supervisor kills and restarts it


class NoteTap:
    """A sink wrapper that remembers (time, status, pitch, velocity) of each note message sent (for the display)."""

    def __init__(self, sink, clock=time.perf_counter):
        self.sink, self.clock = sink, clock
        self.notes: collections.deque = collections.deque(maxlen=4096)

    def send(self, msg) -> bool:
        ok = self.sink.send(msg)
        if msg[0] & 0xE0 == 0x80:                     # 0x8n or 0x9n
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


class SendLogScheduler(Scheduler):
    """A Scheduler that also notes (due, clock at the send call, status byte) of every message, saved as .npy
    at exit. Used only when ITM_SEND_LOG=FILE is set (bench/bench_kiosk.py measures the send error with it)."""

    def __init__(self, *a, path: str, **kw):
        super().__init__(*a, **kw)
        import numpy as np
        self._np, self._log_path = np, path
        self._log = np.zeros((1 << 20, 3))
        self._n = 0

    def _send(self, now, due, msg):
        if self._n < self._log.shape[0]:
            self._log[self._n] = (due, self._clock(), msg[0])
            self._n += 1
        super()._send(now, due, msg)

    def save(self) -> None:
        self._np.save(self._log_path, self._log[:self._n])


def serve(cfg: KioskConfig, listen: str, beacon: Beacon) -> int:
    sink, desc = midi_io.open_output(cfg.midi_api, cfg.port, cfg.virtual_port, None)
    log.info("sender: %s", desc)
    tap = NoteTap(sink)
    scfg = SchedulerConfig(late_policy=cfg.late_policy, max_polyphony=cfg.max_polyphony,
                           max_note_s=cfg.max_note_seconds)
    send_log = os.environ.get("ITM_SEND_LOG")
    sched = SendLogScheduler(tap, scfg, path=send_log) if send_log else Scheduler(tap, scfg)
    state = {"thinker": False, "thinkers": 0, "panics": 0, "last_rx": time.perf_counter(), "released": False}
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
                log.warning("thinker silent for %.1f s: every sounding note released", silent)
            if now < next_beat:
                continue
            next_beat = now + BEAT_S
            msg = {"role": "sender", "ready": True, "port": sink.describe(), "port_name": sink.port_name,
                   "port_connected": tap.connected, "thinker": state["thinker"],
                   "thinker_silent_s": round(silent, 2), "notes": tap.drain(), "panics": state["panics"]}
            if n % 4 == 0:
                msg["stats"] = sched.stats()
            n += 1
            beacon.send(msg)

    with contextlib.suppress(FileNotFoundError):
        os.unlink(listen)                           # left behind by a sender that was killed
    listener = Listener(listen, family="AF_UNIX")

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
            log.info("thinker connected")
            try:
                while True:
                    msg = conn.recv()
                    state["last_rx"], state["released"] = time.perf_counter(), False
                    kind = msg[0]
                    if kind == "push":
                        sched.push(msg[1])
                    elif kind == "discard":
                        sched.discard_after(msg[1])
                    elif kind == "panic":
                        _release(sched)
                        state["panics"] += 1
            except (EOFError, OSError):
                if not stop.is_set():
                    _release(sched)                 # the thinker is gone: silence now, not at max_note_s
                    state["panics"] += 1
                    log.warning("thinker gone; every sounding note released, waiting for the next one")
            finally:
                state["thinker"] = False
                conn.close()

    sched.start()
    threading.Thread(target=beats, name="heartbeat", daemon=True).start()
    threading.Thread(target=read_thinkers, name="thinker-reader", daemon=True).start()
    # The main thread only waits for SIGTERM (blocked in every thread, taken here synchronously): a handler
    # that raised an exception could land inside the scheduler's lock and leave it held for good, so that
    # the scheduler thread could never send its final note-offs (the soak test's stuck notes).
    signal.sigwait({signal.SIGTERM})
    log.info("sender stopping")
    stop.set()
    sched.stop(timeout=STOP_JOIN_S)                 # the scheduler thread: note-offs for open notes, CC123 + CC120
    silenced = not sched.is_running()
    beacon.send({"role": "sender", "ready": True, "notes": tap.drain(), "stats": sched.stats()})
    listener.close()
    if silenced:
        sink.close()                                # never while the scheduler thread may still send
    else:
        log.error("the scheduler did not stop within %.1f s; exiting without closing the port, "
                  "so that the supervisor silences it", STOP_JOIN_S)
    if send_log:
        sched.save()
    return 0 if silenced else 1


def _release(sched: Scheduler) -> None:
    """Drop what is queued, a note-off for each open note now, then CC123 + CC120."""
    sched.discard_after(time.perf_counter())
    sched.panic()


def _realtime(priority: int) -> None:
    """SCHED_FIFO at ``priority`` for this process's threads (inherited by those started later), so a busy
    machine's other processes do not delay a due message. Needs CAP_SYS_NICE or an rtprio limit (the systemd
    unit grants it); without, the sender runs at normal priority and says so once."""
    if priority <= 0 or not hasattr(os, "sched_setscheduler"):
        return
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
        log.info("sender: real-time priority %d (SCHED_FIFO)", priority)
    except (PermissionError, OSError) as exc:
        log.warning("sender: no real-time priority (%s); running at normal priority", exc.strerror or exc)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="installation.kiosk.sender")
    ap.add_argument("--listen", required=True)
    ap.add_argument("--status-fd", type=int, required=True)
    ap.add_argument("--config", required=True, help="KioskConfig as JSON")
    args = ap.parse_args(argv)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})   # before any thread: serve() takes it with sigwait
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)        # Ctrl-C goes to the supervisor, which stops us in order
    cfg = from_json(args.config)
    from installation.cli import setup_logging
    setup_logging(cfg.log_level)
    _realtime(cfg.sender_priority)
    beacon = Beacon(args.status_fd)
    try:
        return serve(cfg, args.listen, beacon)
    except UserError as exc:
        beacon.send({"role": "sender", "error": str(exc)})
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
