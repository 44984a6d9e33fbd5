"""OSC (python-osc, UDP): the emotion values and every note out, for visuals; valence/arousal in.

Out, to ``[osc] host:port`` (prefix ``/itm`` by default):

    /itm/valence  f          -1..1, smoothed like the CCs' input (the blended value when [input] is on)
    /itm/arousal  f          -1..1
    /itm/scene    i s        the scene number and its label (image name), at each scene change
    /itm/note     i i        pitch, velocity (0: the note ends) of the shaped performance, when it sounds

In (``[input] osc_port``): ``/itm/input/valence f`` and ``/itm/input/arousal f``
(-1..1) steer the emotion, like the knobs of a MIDI controller.
A UDP send never blocks for long and never raises into the caller.
"""
from __future__ import annotations

import logging
import threading

from installation.errors import UserError

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
        self.errors = 0

    def send(self, address: str, *args) -> None:
        try:
            self._client.send_message(self.prefix + address, list(args))
        except OSError:
            self.errors += 1           # nobody listening, network down: visuals are not worth a crash

    def note(self, pitch: int, velocity: int) -> None:
        self.send("/note", pitch, velocity)


class OscIn:
    """A python-osc UDP server on its own thread; calls ``on_value(axis, x)`` for
    ``<prefix>/input/valence`` and ``<prefix>/input/arousal``."""

    def __init__(self, port: int, on_value, prefix: str = "/itm", host: str = "0.0.0.0"):
        from pythonosc.dispatcher import Dispatcher
        from pythonosc.osc_server import ThreadingOSCUDPServer
        d = Dispatcher()
        for axis in ("valence", "arousal"):
            d.map(f"{prefix}/input/{axis}", self._handler(axis))
        self._on_value = on_value
        try:
            self.server = ThreadingOSCUDPServer((host, port), d)
        except OSError as exc:
            raise UserError(f"patch [input] osc_port {port}: cannot listen there "
                            f"({exc.strerror or exc}); choose another port") from None
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="osc-in", daemon=True)

    def _handler(self, axis):
        def handle(_address, *args):
            if args and isinstance(args[0], (int, float)):
                self._on_value(axis, float(args[0]))
        return handle

    def start(self) -> "OscIn":
        self._thread.start()
        log.info("OSC in: listening on UDP port %d", self.port)
        return self

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
