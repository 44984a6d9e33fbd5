"""The sender (installation.midi.sender) as a child process of `play`.

`play` keeps its camera, encoder and generator in its own process and sends the
(due, message) pairs through a RemoteScheduler, like the kiosk's thinker; the
port, the scheduler, the recording and an in-process FluidSynth live in the
sender, whose scheduler thread shares its GIL with nobody busy (and runs at
SCHED_FIFO where allowed). That is the kiosk's timing in every mode.

    sender = SenderProcess(SenderConfig(port=..., record=..., record_fallback=True))
    sender.start()                 # at once: it opens the port while play loads its models
    ready = sender.wait_ready(10)  # {"port": ..., "api": ..., "record": ...}, or UserError with its one line
    scheduler = sender.scheduler   # a RemoteScheduler for the Engine
    ...
    sender.stop()                  # SIGTERM: note-offs, pedal-ups, CC123/CC120, the recording written; its figures

Unlike the kiosk nobody restarts it: a sender that dies ends the performance (``on_death``),
and a port named with ``--port`` is silenced from here, as the supervisor does.
"""
from __future__ import annotations

import logging
import os
import signal
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from multiprocessing.connection import Connection

from installation.errors import UserError
from installation.midi.link import RemoteScheduler, spawn_child
from installation.midi.sender_config import SenderConfig

log = logging.getLogger(__name__)
STOP_WAIT_S = 10.0        # SIGTERM -> exit: the scheduler's 2 s, then writing a long recording


class SenderProcess:
    """One sender child: started, waited for, read, stopped, with its own SenderConfig."""

    def __init__(self, cfg: SenderConfig, on_death=None):
        self.cfg = cfg
        self.on_death = on_death            # called (on the reader thread) with a one-line reason
        self.proc: subprocess.Popen | None = None
        self.info: dict = {}                # the last heartbeat
        self.final: dict | None = None      # what it said as it stopped: figures, the recording
        self.error: str | None = None       # its one-line error (a port not found, a SoundFont...)
        self.returncode: int | None = None
        self._ready = threading.Event()
        self._stopping = False
        self._folder = tempfile.mkdtemp(prefix=f"image-to-music-{os.getpid()}-play-")
        self.sock_path = os.path.join(self._folder, "sender.sock")
        self.scheduler = RemoteScheduler(self.sock_path)

    def start(self) -> None:
        args = ["--listen", self.sock_path, "--config", self.cfg.to_json(), "--for-play"]
        self.proc, conn = spawn_child(sys.executable, "installation.midi.sender", args, single_threaded_math=True)
        threading.Thread(target=self._read, args=(conn,), name="sender-beacon", daemon=True).start()

    def _read(self, conn: Connection) -> None:
        """Its heartbeats, until its end; an end nobody asked for is reported once."""
        try:
            while True:
                msg = conn.recv()
                if "error" in msg:
                    self.error = str(msg["error"])
                elif msg.get("final"):
                    self.final = msg
                else:
                    self.info = msg
                if msg.get("ready") or "error" in msg:
                    self._ready.set()
        except (EOFError, OSError):
            pass
        finally:
            conn.close()
        code = self.proc.wait()
        self.returncode = code
        self._ready.set()
        if not self._stopping and self.error is None:
            reason = f"exit status {code}" if code >= 0 else f"killed by {signal.Signals(-code).name}"
            log.error("the MIDI sender process ended (%s): the performance stops", reason)
            self._panic_port(reason)
            if self.on_death is not None:
                self.on_death(reason)

    def wait_ready(self, timeout: float, cancel: threading.Event | None = None) -> dict:
        """Its first report: the port it opened (a dict), or its one-line error as a UserError. ``cancel`` set
        (a stop asked for meanwhile): returns {} at once; the caller stops it."""
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.05):
            if cancel is not None and cancel.is_set():
                return {}
            if time.monotonic() > deadline:
                break
        if not self._ready.is_set():
            self.stop()
            raise UserError(f"the MIDI sender did not open its output within {timeout:g} s; "
                            f"see the lines above, or check the MIDI system (`run_installation.py ports`)")
        if self.error is not None:
            self.stop()
            raise UserError(self.error)
        if not self.info:
            raise UserError(f"the MIDI sender process ended at its start (exit status {self.returncode}); "
                            f"see the lines above")
        deadline = time.monotonic() + timeout
        while not self.scheduler.connect(timeout=0.2):
            if cancel is not None and cancel.is_set():
                return {}
            if self.returncode is not None or time.monotonic() > deadline:
                self.stop()
                raise UserError(f"play could not reach its MIDI sender process at {self.sock_path} "
                                f"({'it ended' if self.returncode is not None else 'no answer'}); see the lines above")
        return self.info

    def stats(self) -> dict:
        """The sender's scheduler figures (sent, lateness p50/p99 ...): its last word, else its last heartbeat."""
        return dict(((self.final or {}).get("stats")) or self.info.get("stats") or {})

    def stop(self) -> int | None:
        """SIGTERM; it sends every note-off, CC123 and CC120, writes the recording and exits. A sender that
        does not exit in STOP_WAIT_S is killed, and a named port silenced from here. Returns its exit status."""
        if self._stopping and (self.proc is None or self.proc.poll() is not None):
            return self.returncode                  # stopped already
        self._stopping = True
        p = self.proc
        if p is not None and p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(STOP_WAIT_S)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if p is not None:
            self.returncode = p.returncode
            if p.returncode not in (0, None) and self.error is None:    # an error at its start opened nothing
                self._panic_port(f"exit status {p.returncode} at the stop")
        shutil.rmtree(self._folder, ignore_errors=True)    # its socket, in our private folder
        return self.returncode

    def _panic_port(self, why: str) -> None:
        """A sender that died or did not stop cannot have released its notes: with a named port, open it for a
        moment and send every note-off, every pedal-up, CC123 and CC120 (a virtual port, or FluidSynth, died with it)."""
        if not self.cfg.port or self.cfg.synth is not None:
            return
        # lazy: rtmidi in play's process only after a sender died (the sender owns the port)
        from installation.midi import midi_io
        ok, error = midi_io.panic_port(self.cfg.port, self.cfg.channel - 1, api=self.info.get("api"),
                                       api_request=self.cfg.midi_api)
        if error is not None:
            log.error("could not open %s to silence it after the sender's end (%s): %s", self.cfg.port, why, error)
        else:
            log.warning("port %s silenced after the sender's end (%s)%s", self.cfg.port, why,
                        "" if ok else "; some messages did not go out")
