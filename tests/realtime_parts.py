"""Real parts for tests and benchmarks: a JACK server, a MIDI receiver, FluidSynth.

Nothing here is a mock: each helper runs the real program or opens a real
rtmidi client on the JACK API.

    with JackServer() as jack:               # jackd -d dummy; sets JACK_DEFAULT_SERVER
        with MidiReceiver("listener") as rx: # a JACK MIDI input port 'listener:in'
            ...send to rx.port_name...
            rx.wait_for(10)
        synth = FluidSynthJack("out.wav").start()   # FluidSynth: JACK MIDI in, WAV out
        ...send to synth.port_name...
        synth.stop(); wav_rms("out.wav")
"""
from __future__ import annotations

import ctypes
import itertools
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import wave
from pathlib import Path

import numpy as np
import rtmidi

if str(Path(__file__).resolve().parents[1]) not in sys.path:    # receiver processes put only tests/ on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from installation.image.capture import bundled_artworks  # noqa: E402
from installation.midi.midi_io import release  # noqa: E402

_REPO = Path(__file__).resolve().parents[1]

SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
_serial = itertools.count(1)


class MissingTool(RuntimeError):
    """A program the real-parts tests need is not installed."""


def _die_with_parent() -> None:
    """Runs in a child before exec: on Linux, SIGTERM it when the starting thread dies,
    so a crashed test run leaves no jackd or fluidsynth behind."""
    try:
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)      # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def end(proc: subprocess.Popen, wait_s: float) -> None:
    """Terminate a child and reap it; kill it if it has not ended after ``wait_s`` seconds."""
    proc.terminate()
    try:
        proc.wait(wait_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def is_note_on(m) -> bool:
    """A note-on with velocity > 0 (message bytes)."""
    return len(m) == 3 and m[0] & 0xF0 == 0x90 and m[2] > 0


def count_note_ons(messages) -> int:
    return sum(1 for m in messages if is_note_on(m))


def pedals_down(messages) -> set:
    """(channel, controller) of the pedals (CC 64-69) a synth that got ``messages`` holds at the end (above 0)."""
    held = set()
    for m in messages:
        if len(m) == 3 and m[0] & 0xF0 == 0xB0 and 64 <= m[1] <= 69:
            (held.add if m[2] else held.discard)((m[0] & 0x0F, m[1]))
    return held


def _wait_until(predicate, timeout: float, interval: float = 0.02) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds pass (test set-up only)."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


# --- JACK ------------------------------------------------------------------------

class JackServer:
    """A private ``jackd -d dummy`` server (no sound card needed), named uniquely.

    While it runs, os.environ has JACK_DEFAULT_SERVER=<its name> (so rtmidi, jack_*
    tools and child processes use it) and JACK_NO_START_SERVER=1; stop() restores both.

    ``sync`` (jackd -S, the default here) makes the server wait for every client
    each cycle. In JACK2's default asynchronous mode a client that overruns its
    period (a Python rtmidi callback waiting for the GIL easily does, with 100+
    events in one cycle) reads a port buffer already reused for the next cycle,
    and sees duplicated or garbled MIDI events that were sent correctly.
    """

    ENV = ("JACK_DEFAULT_SERVER", "JACK_NO_START_SERVER")

    def __init__(self, name: str | None = None, rate: int = 48000, period: int = 64,
                 realtime: bool = True, sync: bool = True):
        self.name = name or f"itm-test-{os.getpid()}-{next(_serial)}"
        self.rate, self.period, self.realtime, self.sync = rate, period, realtime, sync
        self.proc: subprocess.Popen | None = None
        self._log = None
        self._saved_env: dict[str, str | None] = {}

    def start(self, timeout: float = 10.0) -> "JackServer":
        if shutil.which("jackd") is None or shutil.which("jack_lsp") is None:
            raise MissingTool("jackd/jack_lsp are not installed (Debian: apt install jackd2)")
        self._log = tempfile.TemporaryFile()
        env = dict(os.environ, JACK_NO_START_SERVER="1")
        cmd = ["jackd", "-n", self.name, "-R" if self.realtime else "-r", *(["-S"] if self.sync else []),
               "-d", "dummy", "-r", str(self.rate), "-p", str(self.period)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, env=env, preexec_fn=_die_with_parent)
        if not _wait_until(lambda: self.proc.poll() is not None or self.answers(), timeout) \
                or self.proc.poll() is not None:
            log = self.log_text()
            self.stop()
            raise RuntimeError(f"jackd {self.name!r} did not start: {log[-800:]}")
        self._saved_env = {k: os.environ.get(k) for k in self.ENV}
        os.environ["JACK_DEFAULT_SERVER"] = self.name
        os.environ["JACK_NO_START_SERVER"] = "1"
        return self

    def answers(self) -> bool:
        """True if the server accepts clients (``jack_lsp -s NAME`` succeeds)."""
        r = subprocess.run(["jack_lsp", "-s", self.name], capture_output=True,
                           env=dict(os.environ, JACK_NO_START_SERVER="1"))
        return r.returncode == 0

    def ports(self) -> list[str]:
        """All JACK port names on this server."""
        r = subprocess.run(["jack_lsp", "-s", self.name], capture_output=True, text=True, check=True)
        return r.stdout.split("\n")[:-1]

    def log_text(self) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def stop(self) -> None:
        """Terminate jackd (kill after 5 s) and restore the environment."""
        if self.proc is not None and self.proc.poll() is None:
            end(self.proc, 5)
        for k, v in self._saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        self._saved_env = {}
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> "JackServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def connect(src: str, dst: str) -> tuple[str, str]:
    """Connect two JACK ports, each named by a substring that must match exactly one
    port (``jack_connect``); returns the full names. Uses JACK_DEFAULT_SERVER."""
    names = subprocess.run(["jack_lsp"], capture_output=True, text=True, check=True).stdout.split("\n")

    def one(query):
        hits = [n for n in names if query in n]
        if len(hits) != 1:
            raise ValueError(f"JACK port {query!r} matches {hits}, not exactly one")
        return hits[0]

    a, b = one(src), one(dst)
    subprocess.run(["jack_connect", a, b], check=True, capture_output=True)
    return a, b


# --- an independent MIDI receiver -------------------------------------------------------

class MidiReceiver:
    """A python-rtmidi MIDI input on JACK that records (perf_counter at arrival, bytes).

    Without ``source`` it opens a port ``client_name:port`` that senders connect
    to; with ``source`` (a substring of an output port's name) it connects itself
    to that port instead.

    Its callback runs in the JACK process thread and must take the GIL, so in the
    same process as a busy sender it can be late by a GIL switch interval (5 ms).
    Counts and order stay right (the server runs in sync mode, see JackServer);
    for latency numbers, run the receiver in a process of its own.
    """

    def __init__(self, client_name: str = "test-receiver", port: str = "in",
                 source: str | None = None, timing: bool = False):
        self.client_name, self.port, self.source = client_name, port, source
        self.timing = timing                    # also keep MIDI clock and start/stop/continue
        self.port_name: str | None = None       # full name of our port, e.g. 'test-receiver:in'
        self.messages: list[tuple[float, tuple[int, ...]]] = []
        self._cond = threading.Condition()
        self._in: rtmidi.MidiIn | None = None

    def open(self) -> "MidiReceiver":
        self._in = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, self.client_name)
        self._in.ignore_types(sysex=False, timing=not self.timing, active_sense=True)
        self._in.set_callback(self._on_message)
        if self.source is None:
            out_lister = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, "test-lister")
            before = set(out_lister.get_ports())
            self._in.open_virtual_port(self.port)
            new = [n for n in out_lister.get_ports() if n not in before]
            release(out_lister)
            self.port_name = new[0] if len(new) == 1 else f"{self.client_name}:{self.port}"
        else:
            names = self._in.get_ports()
            hits = [i for i, n in enumerate(names) if self.source in n]
            if len(hits) != 1:
                self.close()
                raise ValueError(f"MIDI source {self.source!r} matches {names}, not exactly one")
            self._in.open_port(hits[0], self.port)
            self.port_name = f"{self.client_name}:{self.port}"
        return self

    def _on_message(self, event, data=None) -> None:
        t = time.perf_counter()
        message, _delta = event
        with self._cond:
            self.messages.append((t, tuple(message)))
            self._cond.notify_all()

    def close(self) -> None:
        """Close the port and the JACK client at once (the port disappears)."""
        if self._in is not None:
            self._in.cancel_callback()
            release(self._in)            # spaced from other closes: back to back, python-rtmidi crashes
            self._in = None

    def __enter__(self) -> "MidiReceiver":
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    def received(self) -> list[tuple[int, ...]]:
        """The message bytes, in arrival order."""
        with self._cond:
            return [m for _, m in self.messages]

    def clear(self) -> None:
        with self._cond:
            self.messages.clear()

    def wait_for(self, n_messages: int, timeout: float = 5.0) -> bool:
        """Wait until at least ``n_messages`` have arrived; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self.messages) >= n_messages, timeout)

    def wait_until(self, predicate, timeout: float = 5.0) -> bool:
        """Wait until ``predicate(list of message bytes so far)`` is true; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: predicate([m for _, m in self.messages]), timeout)

    def notes_on(self) -> list[tuple[int, int, int]]:
        """(channel, pitch, velocity) of each note-on (velocity > 0), in arrival order."""
        return [(m[0] & 0x0F, m[1], m[2]) for m in self.received() if is_note_on(m)]

    def unmatched_note_ons(self) -> list[tuple[int, int]]:
        """(channel, pitch) of note-ons that never got a note-off (or velocity-0 note-on)."""
        open_: dict[tuple[int, int], int] = {}
        for m in self.received():
            if len(m) != 3:
                continue
            kind, key = m[0] & 0xF0, (m[0] & 0x0F, m[1])
            if kind == 0x90 and m[2] > 0:
                open_[key] = open_.get(key, 0) + 1
            elif (kind == 0x80 or kind == 0x90) and open_.get(key):
                open_[key] -= 1
        return sorted(k for k, n in open_.items() for _ in range(n))


# --- FluidSynth --------------------------------------------------------------------------

class FluidSynthJack:
    """FluidSynth as a JACK MIDI client that renders, in real time, to a WAV file.

    Runs ``fluidsynth -m jack -a file -o audio.file.name=WAV -o midi.jack.id=NAME``
    with its shell on a pipe; stop() types ``quit`` so the WAV header is written.
    The file driver paces itself with a timer, so the WAV's timeline follows the
    wall clock from start() to stop().
    """

    def __init__(self, wav_path: str | Path, client_name: str | None = None,
                 soundfont: str | Path = SOUNDFONT, gain: float = 1.0, rate: int = 48000):
        self.wav_path = Path(wav_path)
        self.client_name = client_name or f"fluidsynth-{next(_serial)}"
        self.soundfont, self.gain, self.rate = Path(soundfont), gain, rate
        self.proc: subprocess.Popen | None = None
        self.output = ""
        self._log = None

    @property
    def port_name(self) -> str:
        """Its JACK MIDI input port."""
        return f"{self.client_name}:midi_00"

    def start(self, timeout: float = 20.0) -> "FluidSynthJack":
        if shutil.which("fluidsynth") is None:
            raise MissingTool("fluidsynth is not installed (Debian: apt install fluidsynth)")
        if not self.soundfont.exists():
            raise MissingTool(f"soundfont {self.soundfont} is missing (apt install fluid-soundfont-gm)")
        cmd = ["fluidsynth", "-m", "jack", "-a", "file",
               "-o", f"audio.file.name={self.wav_path}", "-o", f"midi.jack.id={self.client_name}",
               "-r", str(self.rate), "-g", str(self.gain), str(self.soundfont)]
        self._log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=self._log,
                                     stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        lister = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, "test-lister")
        try:
            up = _wait_until(lambda: self.proc.poll() is not None
                             or self.port_name in lister.get_ports(), timeout)
        finally:
            release(lister)
        if not up or self.proc.poll() is not None:
            self.stop()
            raise RuntimeError(f"fluidsynth did not offer {self.port_name}: {self.output[-800:]}")
        return self

    def stop(self) -> None:
        """Quit through the shell (writes the WAV header); terminate/kill if it hangs.
        Its console output is kept in ``.output``."""
        if self.proc is None:
            return
        try:
            self.proc.communicate(b"quit\n", timeout=10)
        except (BrokenPipeError, subprocess.TimeoutExpired):
            end(self.proc, 5)
        self.proc = None
        self._log.seek(0)
        self.output = self._log.read().decode(errors="replace")
        self._log.close()

    def __enter__(self) -> "FluidSynthJack":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """A 16-bit PCM WAV as floats in -1..1, shape (frames, channels), and its rate."""
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2:
            raise ValueError(f"{path}: expected 16-bit PCM, got {8 * w.getsampwidth()}-bit")
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        return data.reshape(-1, w.getnchannels()).astype(np.float64) / 32768.0, w.getframerate()


def wav_rms(path: str | Path) -> float:
    """Root-mean-square level of a WAV over all channels, 0 (silence) .. 1 (full scale)."""
    samples, _ = read_wav(path)
    return float(np.sqrt(np.mean(samples ** 2))) if samples.size else 0.0


class MidiReceiverProcess:
    """A MidiReceiver in a process of its own that streams what arrives (one JSON line a message) to this one.

    For tests that kill and restart the JACK server: this process then never holds a JACK client of the
    dead server, so libjack's clean-up of such clients (when the next one opens) can never touch the other
    clients of the test process. Same reading methods as MidiReceiver (received, wait_until, unmatched...)."""

    CODE = ("import json, sys, time\n"
            "sys.path.insert(0, sys.argv[2])\n"
            "from realtime_parts import MidiReceiver\n"
            "rx = MidiReceiver(sys.argv[1])\n"
            "rx._on_message = lambda event, data=None: print(json.dumps([time.perf_counter(), event[0]]), flush=True)\n"
            "rx.open()\n"
            "print(json.dumps(['PORT', rx.port_name]), flush=True)\n"
            "sys.stdin.readline()\n"
            "rx.close()\n")

    def __init__(self, client_name: str):
        self.client_name = client_name
        self.port_name: str | None = None
        self.messages: list[tuple[float, tuple[int, ...]]] = []
        self._cond = threading.Condition()
        self.proc: subprocess.Popen | None = None

    def open(self) -> "MidiReceiverProcess":
        import json
        import sys
        self.proc = subprocess.Popen([sys.executable, "-c", self.CODE, self.client_name, str(Path(__file__).parent)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     preexec_fn=_die_with_parent)
        first = json.loads(self.proc.stdout.readline() or '["", ""]')
        if first[0] != "PORT":
            self.close()
            raise RuntimeError(f"the receiver process did not open its port: {first}")
        self.port_name = first[1]
        threading.Thread(target=self._read, daemon=True).start()
        return self

    def _read(self) -> None:
        import json
        for line in self.proc.stdout:
            t, msg = json.loads(line)
            with self._cond:
                self.messages.append((t, tuple(msg)))
                self._cond.notify_all()

    def close(self) -> None:
        if self.proc is not None:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.flush()
                self.proc.wait(10)
            except (BrokenPipeError, OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    received = MidiReceiver.received
    wait_until = MidiReceiver.wait_until
    unmatched_note_ons = MidiReceiver.unmatched_note_ons


def stop_for_good(server: JackServer, killed: bool = False) -> None:
    """Stop jackd and restore the environment. JACK keeps a table of 8 servers for the whole machine; a server
    that was SIGKILLed keeps its entry until a server of the same name starts (and then stops) again, so a
    killed one is started once more here, and stopped, before it is left."""
    server.stop()                                   # restores JACK_DEFAULT_SERVER to what it was before
    if killed:
        JackServer(name=server.name).start().stop()


class PlayProcess:
    """`run_installation.py play` with its log read line by line on a thread."""

    def __init__(self, *args: str):
        cmd = [sys.executable, str(_REPO / "run_installation.py"), "play", "--midi-api", "jack",
               "--source", str(bundled_artworks()), "--seed", "3", *args]
        self.proc = subprocess.Popen(cmd, cwd=_REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     env=dict(os.environ, PYTHONUNBUFFERED="1"))
        self.lines: list[str] = []
        self._reader = threading.Thread(target=lambda: self.lines.extend(self.proc.stdout), daemon=True)
        self._reader.start()

    def sender_pid(self, timeout: float = 60) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                m = re.search(r"sent by the sender process, pid (\d+)", line)
                if m:
                    return int(m.group(1))
            time.sleep(0.05)
        raise AssertionError("no sender pid in the log:\n" + "".join(self.lines))

    def finish(self, timeout: float = 60) -> tuple[int, str]:
        try:
            self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
        self._reader.join(15)        # the sender shares the pipe: it closes when the sender is gone too
        return self.proc.returncode, "".join(self.lines)
