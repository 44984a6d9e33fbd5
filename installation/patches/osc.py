"""OSC (python-osc, UDP): the emotion values and every note out, for visuals; valence/arousal in.

Out, to ``[osc] host:port`` (prefix ``/itm`` by default):

    /itm/valence  f          -1..1, smoothed like the CCs' input (the blended value when [input] is on)
    /itm/arousal  f          -1..1
    /itm/scene    i s        the scene number and its label (image name), at each scene change
    /itm/note     i i        pitch, velocity (0: the note ends) of the shaped performance, when it sounds
    /itm/chord    s i i...   the harmony's chord when it changes, as it sounds: name ("Am7"), root pitch
                             class (0-11), then its pitch classes (0-11, ascending)

In (``[input] osc_port``, bound to ``[input] osc_bind``, 127.0.0.1 by default):
``/itm/input/valence f`` and ``/itm/input/arousal f`` (-1..1) steer the emotion, like the
knobs of a MIDI controller; ``/itm/chord/hold i...`` (1-16 pitch classes 0-11 or notes 0-127) holds
the harmony on that chord until ``/itm/chord/release``. Input is read by our own checked parser (osc_packet), not python-osc.
A UDP send never blocks for long and never raises into the caller.
"""
from __future__ import annotations

import logging
import threading

from installation.errors import UserError
from installation.patches.osc_packet import BadPacket, MAX_PACKET, read_packet
from installation.ratelimit import LogLimiter, TokenBucket

log = logging.getLogger(__name__)


class OscOut:
    """A python-osc UDP client with the patch's address prefix."""

    def __init__(self, host: str, port: int, prefix: str = "/itm"):
        from pythonosc.udp_client import SimpleUDPClient
        self.prefix = prefix
        try:
            self._client = SimpleUDPClient(host, port)
        except OSError as exc:
            raise UserError(f"patch [osc]: cannot send to {host}:{port} ({exc.strerror or exc})") from None

    def send(self, address: str, *args) -> None:
        try:
            self._client.send_message(self.prefix + address, list(args))
        except OSError:                # nobody listening, network down: visuals are not worth a crash
            pass

    def note(self, pitch: int, velocity: int) -> None:
        self.send("/note", pitch, velocity)

    def chord(self, chord) -> None:
        self.send("/chord", chord.name, chord.root, *sorted(chord.pcs))


class OscIn:
    """The OSC input: a UDP socket on a thread of its own; calls ``on_value(axis, x)`` for
    ``<prefix>/input/valence`` and ``<prefix>/input/arousal``.

    Hostile until checked (osc_packet): packets are size-checked and parsed by our own
    parser for these two addresses only, at most ``rate`` packets a second (the rest are
    dropped unread); problems are counted and logged at most one line every 10 s. It binds
    ``host`` (127.0.0.1 unless the patch names another address)."""

    RATE, BURST = 200.0, 50.0        # packets per second: far above any controller, far below a flood

    def __init__(self, port: int, on_value, prefix: str = "/itm", host: str = "127.0.0.1", on_chord=None):
        import socket

        self._axes = {f"{prefix}/input/{axis}": axis for axis in ("valence", "arousal")}
        self._addresses = frozenset(self._axes)
        self._on_value = on_value
        self._on_chord = on_chord          # on_chord(values) for /chord/hold, on_chord(None) for /chord/release
        self._hold, self._release = f"{prefix}/chord/hold", f"{prefix}/chord/release"
        self._lists = frozenset((self._hold, self._release)) if on_chord is not None else frozenset()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            self._sock.bind((host, port))
        except (OSError, OverflowError) as exc:
            self._sock.close()
            raise UserError(f"patch [input] osc_port {port}: cannot listen on {host} "
                            f"({getattr(exc, 'strerror', None) or exc}); choose another port or osc_bind") from None
        self._sock.settimeout(0.2)
        self.host, self.port = host, self._sock.getsockname()[1]
        self._bucket = TokenBucket(self.RATE, self.BURST)
        self._warn = LogLimiter(log, every_s=10.0)
        self.counts = {"accepted": 0, "ignored": 0, "rejected": 0, "over_rate": 0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="osc-in", daemon=True)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self._sock.recvfrom(MAX_PACKET + 1)     # one byte more: a larger packet shows
            except TimeoutError:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                continue
            if not self._bucket.take():
                self.counts["over_rate"] += 1
                self._warn("OSC in: more than %d packets/s; the rest dropped unread", int(self.RATE))
                continue
            try:
                found = read_packet(data, self._addresses, self._lists)
            except BadPacket as exc:
                self.counts["rejected"] += 1
                self._warn("OSC in: a packet from %s rejected: %s", peer[0], exc)
                continue
            if not found:
                self.counts["ignored"] += 1
                continue
            for address, value in found:
                self.counts["accepted"] += 1
                try:
                    if address in self._lists:
                        self._on_chord(value if address == self._hold else None)
                    else:
                        self._on_value(self._axes[address], value)
                except Exception as exc:       # noqa: BLE001  the input must outlive its consumer's bug
                    self._warn("OSC in: %s not applied: %s", address, exc)

    def start(self) -> "OscIn":
        self._thread.start()
        log.info("OSC in: listening on UDP %s:%d for %s", self.host, self.port,
                 ", ".join(sorted(self._axes) + sorted(self._lists)))
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(1.0)
        self._sock.close()
