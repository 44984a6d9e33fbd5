"""A MIDI input read by a Python thread that polls rtmidi's queue: no rtmidi callback, so no crash on close.

python-rtmidi calls an input callback on the MIDI system's own thread; closing the port
while a callback is under way can free what it holds (seen under load: "Fatal Python
error: none_dealloc" at the end of a run that followed a MIDI clock). Here rtmidi queues
what arrives, with its own time stamps (so a polled clock keeps its exact tick
intervals), and one thread takes it out every ``poll_s``:

    inp = PolledInput(api, "image-to-music-knobs", on_message, ignore_timing=True)
    inp.open(port_query, what="input")   # UserError listing the ports if none matches
    ...
    inp.close()                          # the thread stops first, then the port closes

``on_message((bytes, delta_s))`` gets each message on the polling thread, at most
``rate`` a second (a flooding device is dropped, never queued without bound); ``on_drop()``, if
given, is called for each message dropped (a consumer that keeps state, such as held keys, knows it
lost some).
"""
from __future__ import annotations

import logging
import threading

from installation.ratelimit import LogLimiter, TokenBucket

log = logging.getLogger(__name__)


class PolledInput:
    """One rtmidi input port, polled by a thread of its own."""

    def __init__(self, api: str, client_name: str, on_message, *, ignore_timing: bool = True,
                 poll_s: float = 0.002, rate: float = 2000.0, queue: int = 1024, on_drop=None):
        self.api, self.client_name, self.on_message, self.on_drop = api, client_name, on_message, on_drop
        self.ignore_timing, self.poll_s, self.queue = ignore_timing, poll_s, queue
        self.port_name: str | None = None
        self.dropped = 0
        self._bucket = TokenBucket(rate, rate / 5)
        self._warn = LogLimiter(log, every_s=10.0)
        self._in = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def open(self, port_query: str, what: str = "input", port_label: str = "in") -> "PolledInput":
        import rtmidi

        # lazy: rtmidi when a port opens (patches import this module in the thinker, which opens no MIDI otherwise)
        from installation.midi import midi_io
        self._in = rtmidi.MidiIn(midi_io.API_NAMES[self.api], self.client_name, queue_size_limit=self.queue)
        self._in.ignore_types(sysex=True, timing=self.ignore_timing, active_sense=True)
        try:
            name = midi_io.find_port(self._in.get_ports(), port_query, what=what)
            self._in.open_port(self._in.get_ports().index(name), port_label)
        except BaseException:
            self.close()
            raise
        self.port_name = name
        self._thread = threading.Thread(target=self._run, name=f"midi-in {port_label}", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        midi_in = self._in
        while not self._stop.wait(self.poll_s):
            while True:
                event = midi_in.get_message()
                if event is None:
                    break
                if not self._bucket.take():
                    self.dropped += 1
                    self._warn("MIDI in (%s): more than %d messages/s; the rest dropped",
                               self.port_name, int(self._bucket.rate))
                    if self.on_drop is not None:
                        try:
                            self.on_drop()
                        except Exception as exc:      # noqa: BLE001
                            self._warn("MIDI in (%s): on_drop failed: %s", self.port_name, exc)
                    continue
                try:
                    self.on_message(event)
                except Exception as exc:          # noqa: BLE001  an input must outlive its consumer's bug
                    self._warn("MIDI in (%s): a message not applied: %s", self.port_name, exc)

    def close(self) -> None:
        """Stop the polling thread, then close the port and the client. Safe to call twice."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(1.0)
            self._thread = None
        if self._in is not None:
            # lazy: rtmidi when a port opens (patches import this module in the thinker, which opens no MIDI otherwise)
            from installation.midi.midi_io import release
            release(self._in)
            self._in = None
