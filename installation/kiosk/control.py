"""Staff controls: ``POST /control/<action>`` on the status server, and what each action does in the thinker.

    pause       every note and the pedal released at once (the sender's release path), then silence until resume
    resume      music again (the generator never stopped: notes within its lookahead)
    next        the next picture of the slideshow or the attract folder, now
    restart     the thinker killed and started again, as after a fault
    test-chord  a short C major chord (C4 E4 G4, 0.8 s) through the whole chain, paused or not
    volume      ``value`` 0-127: a master level, MIDI CC 7 on every channel the patch plays, or, where the patch says
                ``[output] volume = "velocity"``, every note-on's velocity scaled (0: no note); kept across restarts

Who may act: a request with ``Authorization: Bearer TOKEN`` (the status token; ``?token=`` is accepted as for
every page), from this page's own origin (a browser's ``Origin``, or ``Sec-Fetch-Site``, naming another site is
refused: a cross-site form must not work), at most ``RATE`` actions in ``RATE_S`` seconds per client address.
Bodies are hostile: at most 1 KB (the server's own limit), JSON ``{"value": 64}`` or a form ``value=64``,
checked for type and range. Each action, done or refused for a reason past the token, is one event-log line
with the client's address.

The supervisor applies the actions from its own loop (``Supervisor.control``); the thinker gets them over its
status socketpair (``ThinkerControls``).
"""
from __future__ import annotations

import collections
import json
import logging
import os
import threading
import time

log = logging.getLogger(__name__)
ACTIONS = ("pause", "resume", "next", "restart", "test-chord", "volume")
RATE, RATE_S = 10, 10.0           # actions per client address
MAX_CLIENTS = 256                 # addresses remembered by the rate limit
CHORD = (60, 64, 67)              # C major, middle C
CHORD_S, CHORD_VELOCITY = 0.8, 80
VOLUME_CC = 7


class ControlError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def parse_value(action: str, body: bytes, content_type: str) -> int | None:
    """The action's value from a request body (only ``volume`` takes one): an int 0-127, else ControlError."""
    if action != "volume":
        return None
    if len(body) > 1024:
        raise ControlError(413, "the body is over 1 KB")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ControlError(400, "the body is not UTF-8") from None
    value = None
    if "json" in content_type:
        try:
            doc = json.loads(text) if text.strip() else {}
        except (ValueError, RecursionError):
            raise ControlError(400, "the body is not JSON") from None
        if not isinstance(doc, dict):
            raise ControlError(400, 'the body must be a JSON object, e.g. {"value": 64}')
        value = doc.get("value")
    else:
        from urllib.parse import parse_qs
        try:
            got = parse_qs(text, max_num_fields=4, strict_parsing=False).get("value")
        except ValueError:
            raise ControlError(400, "the form has too many fields") from None
        if got:
            value = got[0].strip()
            if value.isdigit() and len(value) <= 3:
                value = int(value)
    if value is None:
        raise ControlError(400, "volume needs a value, 0-127")
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 127:
        raise ControlError(400, f"volume: the value must be a whole number 0-127, not {str(value)[:20]!r}")
    return value


def foreign_origin(headers) -> str | None:
    """Why a request comes from another site (None: it does not). ``headers``: the request's.
    A browser names the page that sent a POST in ``Origin``; it must be this server's own origin: the Host it
    asked for, over http, or https through a TLS proxy that passes the Host on. ``Sec-Fetch-Site`` other than
    same-origin or none is refused too."""
    site = (headers.get("Sec-Fetch-Site") or "").strip().lower()
    if site and site not in ("same-origin", "none"):
        return f"Sec-Fetch-Site: {site[:20]}"
    origin = (headers.get("Origin") or "").strip()
    if not origin:
        return None                                      # not a browser page (curl, a script): the token decides
    host = (headers.get("Host") or "").strip().lower()
    if not host or origin.lower() not in (f"http://{host}", f"https://{host}"):
        return f"Origin {origin[:80]!r} is not this server (http://{host[:80]})"
    return None


class RateLimit:
    """At most ``n`` actions per ``per_s`` seconds for each client address (a sliding window)."""

    def __init__(self, n: int = RATE, per_s: float = RATE_S, clock=time.monotonic):
        self.n, self.per_s, self.clock = n, per_s, clock
        self._seen: collections.OrderedDict[str, collections.deque] = collections.OrderedDict()

    def allow(self, client: str) -> float:
        """0 if allowed now (and counted), else the seconds to wait."""
        now = self.clock()
        q = self._seen.pop(client, None) or collections.deque()
        while q and now - q[0] >= self.per_s:
            q.popleft()
        self._seen[client] = q
        while len(self._seen) > MAX_CLIENTS:
            self._seen.popitem(last=False)
        if len(q) >= self.n:
            return self.per_s - (now - q[0])
        q.append(now)
        return 0.0


# --- what is kept across restarts ------------------------------------------------------------------------
def volume_file(log_file: str | None, runtime: str) -> str:
    """Where the master level is kept: beside the event log (kept across kiosk restarts), else in the runtime
    folder (kept across the children's restarts)."""
    return f"{log_file}.controls.json" if log_file else os.path.join(runtime, "controls.json")


def load_volume(path: str) -> int | None:
    try:
        with open(path, encoding="utf-8") as f:
            v = json.loads(f.read(1024)).get("volume")
    except (OSError, ValueError, AttributeError):
        return None
    return v if isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 127 else None


def save_volume(path: str, volume: int) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"volume": volume}, f)
        os.replace(tmp, path)
    except OSError as exc:
        log.warning("could not keep the volume in %s: %s", path, exc.strerror or exc)


# --- the thinker's side ------------------------------------------------------------------------------------
class Gate:
    """The thinker's scheduler, with a pause: while paused the generator's notes are held back here (it keeps
    generating in time; a patch's clock and CCs go on); at resume the notes still ahead of their time go out, so
    music is back at once rather than a lookahead later. Everything else goes to the RemoteScheduler."""

    def __init__(self, remote, clock=time.perf_counter):
        self.remote, self.clock = remote, clock
        self.paused = False
        self._held: list = []                # (due, message) pushed while paused and not yet due
        self.velocity: int | None = None     # a patch's velocity volume, 0-127 (None: not set)
        self._lock = threading.Lock()

    def __getattr__(self, name):
        return getattr(self.remote, name)

    def push(self, items) -> None:
        items = list(items)
        with self._lock:
            if self.paused:                  # notes are held back; the rest (a clock, mood as CC) goes on
                now = self.clock()
                notes = [(float(d), m) for d, m in items if m[0] & 0xE0 == 0x80]
                self._held = [x for x in self._held if x[0] > now] + notes
                items = [(d, m) for d, m in items if m[0] & 0xE0 != 0x80]
                if items:
                    self.remote.push(items)
                return
            if self.velocity is not None:
                items = _scaled(items, self.velocity)
            self.remote.push(items)

    def discard_after(self, t: float) -> int:
        """A scene change: what is held back after ``t`` goes too (notes only, as the scheduler does)."""
        with self._lock:
            self._held = [x for x in self._held if x[0] <= t or x[1][0] & 0xE0 != 0x80]
        return self.remote.discard_after(t)

    def pause(self) -> None:
        with self._lock:                 # nothing pushed after this; what was pushed before goes with the release
            self.paused = True
        self.remote.panic()              # the sender: drop what is queued, a note-off for each note, pedal up,
                                         # CC123 + CC120 (its release path, as when a thinker goes)

    def resume(self) -> None:
        """What was generated for from now on goes out (a note-off whose note-on fell in the pause is an orphan,
        which the sender skips)."""
        with self._lock:
            self.paused = False
            soon = self.clock() + 0.02
            held, self._held = [x for x in self._held if x[0] > soon], []
            if held:
                self.remote.push(_scaled(held, self.velocity) if self.velocity is not None else held)


def _scaled(items, volume: int) -> list:
    """Note-on velocities times volume/127 (at least 1: velocity 0 would be a note-off); volume 0 drops them
    (their note-offs are then orphans, which the sender skips)."""
    out = []
    for due, msg in items:
        if msg[0] & 0xF0 == 0x90 and msg[2] > 0:
            if volume == 0:
                continue
            msg = (msg[0], msg[1], max(1, round(msg[2] * volume / 127)))
        out.append((due, msg))
    return out


def chord(now: float, channel: int) -> list:
    on, off = now + 0.05, now + 0.05 + CHORD_S
    return ([(on, (0x90 | channel, p, CHORD_VELOCITY)) for p in CHORD]
            + [(off, (0x80 | channel, p, 0)) for p in CHORD])


class ThinkerControls:
    """Reads the supervisor's control messages (dicts on the status socketpair) on a thread, and applies them:
    ``{"control": "pause"|"resume"|"next"|"test-chord"}``, ``{"control": "volume", "value": v}``, and at start
    ``{"control": "state", "paused": bool, "volume": v|None}``. The volume is sent again to each new sender."""

    def __init__(self, conn, gate: Gate, source, channels, clock=time.perf_counter, mode: str = "cc7"):
        self.conn, self.gate, self.source, self.channels, self.clock = conn, gate, source, channels, clock
        self.mode = mode                 # the patch's [output] volume: "cc7" or "velocity"
        self.volume: int | None = None
        self._connects = 0
        self._stop = threading.Event()

    def initial(self, timeout: float = 2.0) -> None:
        """The state the supervisor sends at spawn (paused? volume?), before any note is pushed."""
        try:
            if self.conn.poll(timeout):
                self.apply(self.conn.recv())
        except (EOFError, OSError):
            pass

    def start(self) -> None:
        threading.Thread(target=self._run, name="controls", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if self.conn.poll(0.25):
                    self.apply(self.conn.recv())
            except (EOFError, OSError):
                return
            except Exception as exc:    # noqa: BLE001  a control must never stop the music
                log.warning("control not applied: %s", exc)
            connects = self.gate.remote.connects
            if connects != self._connects:
                self._connects = connects
                self._send_volume()      # a new sender (or the first): the synth gets the level again

    def apply(self, msg) -> None:
        if not isinstance(msg, dict):
            return
        what = msg.get("control")
        if what == "state":
            if msg.get("paused"):
                self.gate.pause()
            self.volume = msg.get("volume")
            if self.mode == "velocity":
                self.gate.velocity = self.volume
        elif what == "pause":
            self.gate.pause()
        elif what == "resume":
            self.gate.resume()
        elif what == "next":
            self.source.next()
        elif what == "test-chord":
            now = self.clock()
            self.gate.remote.push([m for ch in self.channels for m in chord(now, ch)])   # paused or not
        elif what == "volume":
            self.volume = int(msg["value"])
            self._send_volume()

    def _send_volume(self) -> None:
        if self.mode == "velocity":
            self.gate.velocity = self.volume
        elif self.volume is not None:
            now = self.clock()
            self.gate.remote.push([(now, (0xB0 | ch, VOLUME_CC, self.volume)) for ch in self.channels])
