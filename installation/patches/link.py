"""Ableton Link (optional): follow a Link session's tempo, like an incoming MIDI clock.

Needs the ``aalink`` package (GPL-3.0-or-later; it bundles Ableton Link, GPL-2.0-or-later),
which is not a requirement of the engine: ``pip install aalink``. aalink needs a
running asyncio loop, so it lives on a small thread of its own; its tempo callback
only hands the tempo on (``on_tempo(bpm)``), like ClockIn.
"""
from __future__ import annotations

import asyncio
import logging
import threading

from installation.errors import UserError

log = logging.getLogger(__name__)


class LinkTempo:
    """Joins the Link session on the local network at ``bpm`` and reports its tempo changes."""

    def __init__(self, bpm: float, on_tempo):
        try:
            import aalink
        except ImportError:
            raise UserError("patch [clock] link = true needs the optional aalink package "
                            "(pip install aalink; GPL-3.0-or-later); or set link = false") from None
        self._aalink, self._bpm, self._on_tempo = aalink, bpm, on_tempo
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self.link = None
        self._thread = threading.Thread(target=self._run, name="link", daemon=True)
        self._thread.start()
        self._ready.wait(5.0)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def setup():
            self.link = self._aalink.Link(self._bpm)
            self.link.set_tempo_callback(lambda bpm: self._on_tempo(float(bpm)))
            self.link.enabled = True
            self._ready.set()
        self._loop.run_until_complete(setup())
        self._loop.run_forever()

    @property
    def peers(self) -> int:
        return self.link.num_peers if self.link is not None else 0

    def close(self) -> None:
        def off():
            if self.link is not None:
                self.link.enabled = False
            self._loop.stop()
        self._loop.call_soon_threadsafe(off)
        self._thread.join(2.0)
