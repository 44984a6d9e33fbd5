"""Where a note leaves the machine: MIDI APIs, ports, virtual ports and recording.

The pieces, and who calls what:

    choose_api(request)     which rtmidi API to use ('alsa', 'jack', 'coremidi', 'winmm');
                            automatic choice falls back to JACK, or raises NoMidiSystem.
    list_ports(api)         the port names there are (for ``run_installation.py ports``).
    find_port(names, q)     one port name from a user's query (exact, else substring).
    MidiOut                 a live output: connects to an existing port, or creates a
                            virtual one; a watchdog thread reconnects a port that went away.
    RecordOnly              the output when no MIDI system is reachable but --record is
                            given: send() does nothing and returns True.
    Recorder                an in-memory list of (time, message), written as a MIDI file
                            at shutdown.
    open_output(...)        the product's policy: picks the API, opens the right sink,
                            falls back to record-only, and returns (sink, description).

A *sink* is what the scheduler sends to: ``open()``, ``send(msg) -> bool``,
``all_sound_off(channels)``, ``close()``, ``port_name`` and ``describe()``.
``MidiOut`` and ``RecordOnly`` both are. Recording is not the sink's business:
when --record is given the engine makes a ``Recorder`` and the scheduler calls
``recorder.add(due_time, msg)`` next to ``sink.send(msg)``, so recording works
the same whether MIDI goes out or not.

Threads: only the scheduler thread calls ``send``; it reads one attribute
(the current rtmidi object, or None while disconnected) and never takes a lock.
The watchdog thread swaps that reference; an rtmidi object it replaces is kept
for one more watchdog period before it is deleted, so a send that picked it up
just before the swap can never touch a deleted object. A lost port is noticed
on the watchdog's next check (about a second); until then send() returns True
while the messages go nowhere.

Port names are the API's: JACK names them ``client:port`` (JACK renames a second
client of the same name ``client-01``); ALSA adds numbers, e.g.
``FLUID Synth (123):Synth input port (123:0) 128:0``.

rtmidi objects are freed with ``delete()``: python-rtmidi keeps a reference cycle,
so dropping the last reference leaves the client (and its port) open until the
garbage collector runs.
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import threading
import time
from pathlib import Path
from typing import Iterable, Sequence

import rtmidi

from installation.errors import UserError
from installation.midi import midi_file

log = logging.getLogger(__name__)

API_NAMES = {
    "alsa": rtmidi.API_LINUX_ALSA,
    "jack": rtmidi.API_UNIX_JACK,
    "coremidi": rtmidi.API_MACOSX_CORE,
    "winmm": rtmidi.API_WINDOWS_MM,
}
PLATFORM_API = {"linux": "alsa", "darwin": "coremidi", "win32": "winmm"}
DEFAULT_NAME = "image-to-music"     # client name, and the virtual port's default name
WATCH_INTERVAL_S = 0.5              # how often the watchdog looks for a lost or returned port (or server)
CLOSE_GRACE_S = 0.05                # close(): time for a send in flight to finish
_DEAD_SERVER_OBJECTS: list = []     # rtmidi objects of a JACK server that died: kept, never touched again
CONNECT_SETTLE_S = 0.05             # JACK: after connecting, before the first send (the graph takes the link)


class NoMidiSystem(UserError):
    """No MIDI system (ALSA sequencer, JACK server, CoreMIDI, WinMM) can be reached.

    ``reason`` is the short why, without the advice, for log lines.
    """

    def __init__(self, message: str, reason: str = ""):
        super().__init__(message)
        self.reason = reason or message


# --- APIs ---------------------------------------------------------------------

def compiled_apis() -> list[str]:
    """Names of the APIs this python-rtmidi was built with, e.g. ['alsa', 'jack']."""
    compiled = set(rtmidi.get_compiled_api())
    return [name for name, api in API_NAMES.items() if api in compiled]


@contextlib.contextmanager
def _quiet_stderr():
    """Silence file descriptor 2 for a moment: libjack and libasound print to it
    when a probe fails. The log thread writes to its own duplicate of fd 2
    (logs.setup_logging), so no log line is lost meanwhile."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        sys.stderr.flush()
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _probe(api: str) -> str | None:
    """Try to reach one API; None if it answers, else the reason it does not."""
    if api == "jack":
        os.environ.setdefault("JACK_NO_START_SERVER", "1")   # a probe must not start jackd
    if api == "alsa" and sys.platform == "linux" and not os.path.exists("/dev/snd/seq"):
        return "/dev/snd/seq is missing"
    try:
        with _quiet_stderr():
            client = rtmidi.MidiOut(API_NAMES[api], f"{DEFAULT_NAME}-probe")
    except Exception as exc:
        if api == "jack":
            return "no JACK server answers"
        return f"cannot create a client ({str(exc).strip() or type(exc).__name__})"
    release(client)
    return None


def choose_api(requested: str | None) -> str:
    """The MIDI API to use: the requested one if it is compiled in and reachable,
    else (automatic) the platform's usual API, falling back to JACK.

    Raises UserError for an unknown API and NoMidiSystem when nothing answers.
    """
    available = compiled_apis()
    if requested is not None:
        name = requested.strip().lower()
        if name not in available:
            raise UserError(f"--midi-api {requested!r} is not available here; "
                            f"choose one of: {', '.join(available) or '(none)'}")
        reason = _probe(name)
        if reason:
            raise NoMidiSystem(f"--midi-api {name}: {reason}. Start it (for JACK: "
                               f"jackd -d dummy), choose another --midi-api, "
                               f"or use --record out.mid to record without MIDI output",
                               reason=f"{name}: {reason}")
        log.info("MIDI API: %s (requested with --midi-api)", name)
        return name

    usual = PLATFORM_API.get(sys.platform)
    reasons = []
    if usual in available:
        reason = _probe(usual)
        if reason is None:
            log.info("MIDI API: %s (the usual one on %s)", usual, sys.platform)
            return usual
        reasons.append(f"{usual}: {reason}")
    if "jack" in available and usual != "jack":
        reason = _probe("jack")
        if reason is None:
            log.info("MIDI API: jack (%s, and a JACK server answers)", "; ".join(reasons) or "fallback")
            return "jack"
        reasons.append(f"jack: {reason}")
    why = "; ".join(reasons) or "no MIDI API compiled in"
    raise NoMidiSystem(f"no MIDI system reachable ({why}). Start JACK (jackd -d dummy) or ALSA, "
                       f"or use --record out.mid to record without MIDI output", reason=why)


def list_ports(api: str) -> dict[str, list[str]]:
    """The port names on one API: 'outputs' we can send to, 'inputs' we can read from."""
    if api not in API_NAMES:
        raise UserError(f"--midi-api {api!r} is unknown; choose one of: {', '.join(API_NAMES)}")
    ports = {}
    for key, cls in (("outputs", rtmidi.MidiOut), ("inputs", rtmidi.MidiIn)):
        try:
            with _quiet_stderr():
                client = cls(API_NAMES[api], f"{DEFAULT_NAME}-list")
        except Exception:
            raise NoMidiSystem(f"cannot reach the {api} MIDI system to list its ports; "
                               f"start it, or choose another --midi-api",
                               reason=f"{api} cannot be reached") from None
        ports[key] = client.get_ports()
        release(client)
    return ports


def find_port(names: Sequence[str], query: str, what: str = "output") -> str:
    """The one port name that ``query`` means: an exact name first, then one
    that equals it ignoring case, then a unique case-insensitive substring.

    Raises UserError, listing the ports, on no match or several.
    """
    if query in names:
        return query
    q = query.lower()
    same = [n for n in names if n.lower() == q]
    if len(same) == 1:
        return same[0]
    matches = [n for n in names if q in n.lower()]
    if len(matches) == 1:
        return matches[0]
    if not matches and not names:
        raise UserError(f"no MIDI {what} port matches {query!r}; there are no {what} ports. "
                        f"Start the synth first, or use --virtual-port NAME")
    if not matches:
        raise UserError(f"no MIDI {what} port matches {query!r}; ports: {', '.join(names)}. "
                        f"Use --port with one of these, or --virtual-port NAME")
    raise UserError(f"MIDI {what} port {query!r} is ambiguous; it matches: {', '.join(matches)}. "
                    f"Use --port with the full name")


# --- outputs --------------------------------------------------------------------

class MidiOut:
    """A live MIDI output: connected to an existing port found by ``port_query``,
    or, without a query, a virtual port named ``virtual_name`` that synths connect to.

    Construction only stores the settings; ``open()`` makes the connection (and,
    for a connected port, starts the reconnecting watchdog); ``close()`` undoes it.
    """

    def __init__(self, api: str, port_query: str | None = None,
                 virtual_name: str | None = None, client_name: str = DEFAULT_NAME, watch: bool = True):
        if api not in API_NAMES:
            raise UserError(f"--midi-api {api!r} is unknown; choose one of: {', '.join(API_NAMES)}")
        if port_query is not None and virtual_name is not None:
            raise UserError("give either --port (connect to a synth) or --virtual-port "
                            "(let synths connect to us), not both")
        self.api = api
        self.port_query = port_query
        self.virtual_name = None if port_query is not None else (virtual_name or DEFAULT_NAME)
        self.client_name = client_name
        self.watch = watch         # False: a short-lived output (a panic) needs no watchdog
        self.port_name: str | None = None     # the full name, as other programs see it
        self._out = None           # what send() uses; None while disconnected (one reference swap)
        self._current = None       # the live rtmidi object, owned by open/close and the watchdog
        self._retired = []         # replaced objects, deleted one watchdog period later
        self._probe = None         # a separate client the watchdog lists ports with
        self._send_errors = 0      # counted by send(), reported by the watchdog
        self._stop = threading.Event()
        self._watchdog: threading.Thread | None = None
        self._server = None        # JACK only: a JackServerWatch that notices the server's shutdown at once
        self.server_lost = False   # the MIDI server went away; the watchdog reconnects when it is back

    # -- opening and closing --

    def open(self) -> None:
        """Connect to the matching port, or create the virtual port."""
        if self._current is not None:
            raise RuntimeError("MidiOut is already open")
        try:
            if self.port_query is None:
                self._current = self._open_virtual()
            else:
                self._probe = self._client(rtmidi.MidiOut, "-watch")
                name = find_port(self._probe.get_ports(), self.port_query)
                self._current = self._connect(name)
                if self._current is None:
                    raise UserError(f"MIDI output port {name!r} went away while connecting; "
                                    f"check the synth and try again")
                self.port_name = name
        except BaseException:
            self.close()
            raise
        self._out = self._current
        self._server = self._watch_server() if self.watch else None
        if self.watch and (self.port_query is not None or self._server is not None):
            self._stop.clear()
            self._watchdog = threading.Thread(target=self._watch, name="midi-watchdog", daemon=True)
            self._watchdog.start()
        log.debug("opened %s", self.describe())

    def _watch_server(self):
        """JACK: a watch that learns of the server's shutdown within milliseconds (None elsewhere)."""
        if self.api != "jack":
            return None
        # lazy: the JACK watch (ctypes, subprocess) only under JACK; the sender's start-up stays light
        from installation.midi.jack_watch import JackServerWatch
        with _quiet_stderr():
            return JackServerWatch.open(self.client_name + "-alive")

    def _client(self, cls, suffix: str = ""):
        """A new rtmidi client of this API; NoMidiSystem if the API cannot be reached."""
        try:
            return cls(API_NAMES[self.api], self.client_name + suffix)
        except Exception:
            raise NoMidiSystem(f"cannot reach the {self.api} MIDI system; start it, "
                               f"or choose another --midi-api",
                               reason=f"{self.api} cannot be reached") from None

    def _open_virtual(self):
        """Create the virtual port; learn its full name by listing sources before and after."""
        lister = self._client(rtmidi.MidiIn, "-list")
        out = None
        try:
            before = set(lister.get_ports())
            out = self._client(rtmidi.MidiOut)
            out.open_virtual_port(self.virtual_name)
            new = [n for n in lister.get_ports() if n not in before and self.virtual_name in n]
        except (NotImplementedError, rtmidi.RtMidiError):
            if out is not None:
                release(out)
            raise UserError(f"--virtual-port: {self.api} cannot create virtual ports; "
                            f"use --port with an existing port (e.g. a loopMIDI port)") from None
        finally:
            release(lister)
        self.port_name = new[0] if len(new) == 1 else f"{self.client_name}:{self.virtual_name}"
        return out

    def _connect(self, name: str):
        """A new rtmidi client connected to the port ``name``, or None if that fails."""
        try:
            out = rtmidi.MidiOut(API_NAMES[self.api], self.client_name)
        except Exception:
            return None
        try:
            out.open_port(out.get_ports().index(name), "out")
        except (ValueError, rtmidi.RtMidiError):
            release(out)
            return None
        if self.api == "jack":
            # JACK applies a new connection to its graph in a later cycle: messages sent before that go
            # nowhere (measured: a supervisor's panic of 130 messages lost whole under load). Wait first.
            time.sleep(CONNECT_SETTLE_S)
        return out

    def close(self) -> None:
        """Stop the watchdog, close the port and the clients. Safe to call twice.

        Call it after the scheduler thread has stopped sending. As a safety net it
        waits a moment after pausing send(), so that a send already under way
        finishes before its rtmidi object is deleted (using a deleted one crashes).
        """
        self._stop.set()
        if self._watchdog is not None:
            self._watchdog.join(timeout=5)
            self._watchdog = None
        if self._out is not None:
            self._out = None
            time.sleep(CLOSE_GRACE_S)
        for obj in [self._current, self._probe, *self._retired]:
            if obj is not None:
                release(obj)
        self._current, self._probe, self._retired = None, None, []
        if self._server is not None:
            self._server.close()
            self._server = None

    # -- the hot path --

    def send(self, message: tuple[int, ...] | list[int]) -> bool:
        """Send one MIDI message now. Scheduler thread only. Never blocks or raises;
        False while disconnected or if rtmidi refused the message."""
        out = self._out
        if out is None:
            return False
        try:
            out.send_message(message)
        except Exception:
            self._send_errors += 1
            return False
        return True

    def all_sound_off(self, channels: Iterable[int] = range(16)) -> bool:
        """All notes off (CC123) and all sound off (CC120) on each channel; True if all went out."""
        ok = True
        for ch in channels:
            ok &= self.send((0xB0 | ch, 123, 0))
            ok &= self.send((0xB0 | ch, 120, 0))
        return ok

    # -- the watchdog thread --

    def _watch(self) -> None:
        """Every half second: notice a lost port or MIDI server, reconnect when it returns.

        A JACK server that shuts down is noticed at once (JackServerWatch): every rtmidi
        object of the dead server is retired, and new ones are made when a server answers
        again; the port is found again by name (or the virtual port made again)."""
        reported_errors = 0
        while not self._stop.wait(WATCH_INTERVAL_S):
            for obj in self._retired:
                release(obj)
            self._retired = []
            if self._server is not None and self._server.lost.is_set():
                self._lose_server()
            if self.server_lost:
                self._server_back()
            elif self.port_query is not None:
                self._check_port()
            if self._send_errors != reported_errors:
                log.warning("rtmidi refused %d message(s) so far", self._send_errors)
                reported_errors = self._send_errors

    def _check_port(self) -> None:
        try:
            names = self._probe.get_ports()
        except Exception:
            return
        if self._current is not None and self.port_name not in names:
            self._out = None                       # send() sees the loss from now on
            self._retired.append(self._current)
            self._current = None
            log.warning("MIDI output port %r is gone; sending paused, "
                        "will reconnect when it returns", self.port_name)
        elif self._current is None:
            name = self._find_again(names)
            out = self._connect(name) if name else None
            if out is not None:
                self._current = out
                self.port_name = name
                self._out = out
                log.info("MIDI output port %r is back; reconnected", name)

    def _lose_server(self) -> None:
        """The JACK server shut down: stop sending, retire everything made on it."""
        self._out = None
        self._server.close()                        # before any new client (else libjack waits on its thread)
        # rtmidi objects of a dead server are kept, never closed: closing them waits about a second on the dead
        # server while holding the GIL (measured: the scheduler thread stalled 1.1 s). libjack frees their
        # clients itself when the next client is opened; a few kilobytes per server restart stay behind.
        _DEAD_SERVER_OBJECTS.extend(o for o in [self._current, self._probe, *self._retired] if o is not None)
        self._current = self._probe = None
        self._retired = []
        self._server = None
        self.server_lost = True
        log.warning("the %s MIDI server is gone; sending paused, will reconnect to %s when it returns",
                    self.api, self.port_name or self.port_query)

    def _server_back(self) -> None:
        """Try once: is a server there again? Then watch it, and connect (or make the virtual port) anew.

        The first try is the watch's own libjack client, through ctypes, which lets go of the GIL: against a
        server that is down, opening a client takes about a second, and rtmidi would hold the GIL all along
        (measured: the scheduler thread stalled 1.0 s). rtmidi clients are made only once the server answers."""
        server = self._watch_server()
        if server is None:
            return                                  # still down
        try:
            with _quiet_stderr():
                probe = rtmidi.MidiOut(API_NAMES[self.api], self.client_name + "-watch")
        except Exception:
            server.close()
            return
        try:
            if self.port_query is None:
                out = self._open_virtual()
            else:
                name = self._find_again(probe.get_ports())
                out = self._connect(name) if name else None
                if out is not None:
                    self.port_name = name
        except Exception as exc:                    # noqa: BLE001  (a UserError from a half-up server)
            log.debug("MIDI server back, but not ready: %s", exc)
            out = None
        self._probe, self._server, self.server_lost = probe, server, False
        if out is not None:
            self._current = out
            self._out = out
            log.info("the %s MIDI server is back; reconnected to %s", self.api, self.port_name)
        else:
            log.warning("the %s MIDI server is back, but port %r is not there yet; waiting for it",
                        self.api, self.port_query)

    def _find_again(self, names: list[str]) -> str | None:
        """The lost port's name if it is back, else the one port the query matches now."""
        if self.port_name in names:
            return self.port_name
        try:
            return find_port(names, self.port_query)
        except UserError:
            return None

    # -- for logs --

    @property
    def connected(self) -> bool:
        """True while send() delivers to a port."""
        return self._out is not None

    def describe(self) -> str:
        if self.port_query is None:
            return f"virtual port {self.port_name or self.virtual_name!r} on {self.api}"
        state = "connected" if self.connected else "disconnected"
        return f"{self.api} port {self.port_name or self.port_query!r} ({state})"


class RecordOnly:
    """The sink when no MIDI system is reachable and --record is given: sends go nowhere."""

    port_name = None

    def __init__(self, record_path: str | Path):
        self.record_path = Path(record_path)

    def open(self) -> None:
        pass

    def send(self, message) -> bool:
        return True

    def all_sound_off(self, channels: Iterable[int] = range(16)) -> bool:
        return True

    def close(self) -> None:
        pass

    def describe(self) -> str:
        return f"no MIDI output (no MIDI system reachable); recording to {self.record_path} only"


def release(obj) -> None:
    """Close an rtmidi object's port and its client, spaced from the other closes of this process
    (jack_watch.close_spaced: JACK clients closed back to back crash python-rtmidi)."""
    # lazy: the JACK watch (ctypes, subprocess) only under JACK; the sender's start-up stays light
    from installation.midi.jack_watch import close_spaced

    def close():
        try:
            obj.close_port()
        finally:
            obj.delete()
    close_spaced(close)


def panic(out, channel: int) -> bool:
    """Silence a port that a dead sender may have left notes sounding on: a note-off for every pitch on
    ``channel`` (0-15) and its pedals lifted (CC 64-69 to 0), then every other channel's pedals (a patch's layer
    may hold one there), then CC123 and CC120 on every channel. True if every message went out."""
    from installation.midi.scheduler import PEDALS          # lazy: ~3 ms, only for a panic; ports stays light
    channels = [channel] + [ch for ch in range(16) if ch != channel]
    msgs = [(0x80 | channel, pitch, 0) for pitch in range(128)]
    msgs += [(0xB0 | ch, number, 0) for ch in channels for number in PEDALS]
    return all([out.send(m) for m in msgs]) & out.all_sound_off(channels)


def panic_port(port: str, channel: int, api: str | None = None, api_request: str | None = None,
               attempts: int = 5) -> tuple[bool, UserError | None]:
    """Open ``port`` for a moment with a client of its own and silence it (``panic``): a sender that died or hung
    cannot have released its notes. JACK may still be removing the dead sender's client, so up to ``attempts``
    tries, 50 ms apart. ``api``: the MIDI API already chosen (else chosen from ``api_request``).
    Returns (every message went out, None), or (False, the last error) when the port could not be opened."""
    error = None
    for _ in range(attempts):
        try:
            api = api or choose_api(api_request)
            out = MidiOut(api, port, client_name="image-to-music-panic", watch=False)
            out.open()
        except UserError as exc:
            error = exc
            time.sleep(0.05)
            continue
        try:
            return panic(out, channel), None
        finally:
            out.close()
    return False, error


# --- recording -------------------------------------------------------------------

class Recorder:
    """Messages as they were sent, kept in memory and written as a MIDI file at shutdown.

    ``add`` is called from the scheduler thread and only appends. Memory grows by
    about 100 bytes per message (some 30 MB for a day of a busy piano).
    """

    def __init__(self) -> None:
        self._events: list[tuple[float, tuple[int, ...]]] = []

    def add(self, t: float, message: tuple[int, ...] | list[int]) -> None:
        """Remember one message sent at time ``t`` (seconds, any monotonic clock)."""
        self._events.append((t, message if type(message) is tuple else tuple(message)))

    def __len__(self) -> int:
        return len(self._events)

    def write(self, path: str | Path) -> None:
        """Write a type-0 MIDI file; times relative to the first message, 1 ms per tick."""
        events = sorted(self._events, key=lambda e: e[0])
        start = events[0][0] if events else 0.0
        try:
            written = midi_file.write([(t - start, m) for t, m in events], path)
        except OSError as exc:
            raise UserError(f"--record {path}: cannot write the MIDI file ({exc.strerror or exc})") from None
        log.info("recorded %d messages to %s", written, path)


# --- the product's policy -------------------------------------------------------------

def open_output(api_request: str | None, port_query: str | None, virtual_name: str | None,
                record_path: str | Path | None):
    """Open the sink the options ask for; returns (sink, one-line description).

    - --port given: connect to that port (UserError if it is not there).
    - no --port: create a virtual port (--virtual-port NAME, default 'image-to-music').
    - no MIDI system reachable: with --record, a RecordOnly sink (logged as a warning);
      without it, NoMidiSystem with advice.
    """
    try:
        api = choose_api(api_request)
        out = MidiOut(api, port_query, virtual_name)
        out.open()
    except NoMidiSystem as exc:
        if record_path is None:
            raise
        sink = RecordOnly(record_path)
        ignored = f"; --port {port_query!r} ignored" if port_query else ""
        log.warning("no MIDI system reachable (%s): no MIDI output, recording to %s only%s",
                    exc.reason, record_path, ignored)
        return sink, sink.describe()
    if port_query is None:
        log.info("MIDI out: %s; no --port given, so nothing hears it until a synth is connected to it: %s "
                 "(or start with --port NAME; `run_installation.py ports` lists them)",
                 out.describe(), connect_command(out.api, out.port_name, _synth_inputs(out.api)))
    else:
        log.info("MIDI out: %s", out.describe())
    return out, out.describe()


def _synth_inputs(api: str) -> list[str]:
    """The ports a synth could be listening on now (ours left out); none if they cannot be listed."""
    try:
        return [n for n in list_ports(api)["outputs"] if not n.startswith(DEFAULT_NAME)]
    except Exception:                                 # only advice: never stop the start for it
        return []


def connect_command(api: str, ours: str, synths: list[str]) -> str:
    """The shell command that connects our (virtual) port ``ours`` to a synth: a FluidSynth or other synth
    among ``synths`` if there is one, else a placeholder to replace."""
    import shlex
    likely = [n for n in synths if re.search(r"fluid|synth|timidity|qsynth", n, re.I)] or synths
    target = likely[0] if likely else None
    if api == "jack":
        return f"jack_connect {shlex.quote(ours)} {shlex.quote(target) if target else '<synth-midi-input>'}"
    if api == "alsa":                                 # rtmidi's ALSA names end in the client:port numbers
        num = lambda n: (re.search(r"(\d+:\d+)$", n) or [None, n])[1]
        return f"aconnect {shlex.quote(num(ours))} {shlex.quote(num(target)) if target else '<synth-client:port>'}"
    return f"connect {ours!r} to {target!r} in your MIDI patchbay" if target else \
        f"connect {ours!r} to a synth in your MIDI patchbay"
