"""MIDI clock: out (24 ticks per quarter note, start/stop/continue) and in (follow a DAW's clock).

ClockOut is not a thread: the patch's control thread calls ``ticks_until(t)``
and pushes the ticks it returns to the scheduler as timed messages, so the
scheduler stays the only thread that touches the port and each tick goes out
at its due time like a note (sub-millisecond on JACK; see BENCHMARKS.md). Its
tempo follows arousal between ``min_bpm`` and ``max_bpm``, smoothed.

ClockIn opens a MIDI input and measures incoming 0xF8 ticks by the MIDI API's
own time stamps (not by when Python got the GIL). The tempo is the mean tick
interval over up to ``window`` ticks (2 beats): single intervals are quantized
to the audio period (JACK delivers MIDI once per period), their mean is not.
When the median of the last ``jump_ticks`` intervals differs by more than
``jump`` from the tempo, the tempo changed: the window restarts from those
ticks, so a new tempo is followed within a quarter of a beat. ``on_tempo(bpm)``
is called when the estimate moves by more than ``tolerance`` (the engine then
sets the generator's tempo scale).
"""
from __future__ import annotations

import logging
import statistics
import threading
from collections import deque

from installation.midi.midi_in import PolledInput
from installation.patches.cc import OnePole

log = logging.getLogger(__name__)

TICK, START, CONTINUE, STOP = 0xF8, 0xFA, 0xFB, 0xFC
PPQN = 24


def bpm_for_arousal(arousal: float, lo: float, hi: float) -> float:
    """Arousal -1..1 to a tempo in [lo, hi]."""
    a = max(-1.0, min(1.0, arousal))
    return lo + (hi - lo) * (a + 1.0) / 2.0


class ClockOut:
    """Due times of clock ticks at a tempo that may change between ticks."""

    def __init__(self, min_bpm: float, max_bpm: float, smoothing_s: float = 2.0):
        self.min_bpm, self.max_bpm = min_bpm, max_bpm
        self._smooth = OnePole(smoothing_s)
        self.bpm = (min_bpm + max_bpm) / 2.0
        self._next: float | None = None
        self.running = False

    def set_arousal(self, now: float, arousal: float | None) -> float:
        if arousal is not None:
            self.bpm = self._smooth.update(now, bpm_for_arousal(arousal, self.min_bpm, self.max_bpm))
        return self.bpm

    def start(self, t: float, message: int = START) -> list[tuple[float, tuple[int]]]:
        """START (or CONTINUE) at t; the first tick is at t too."""
        self.running = True
        self._next = t
        return [(t, (message,))]

    def stop(self, t: float) -> list[tuple[float, tuple[int]]]:
        self.running = False
        self._next = None
        return [(t, (STOP,))]

    def ticks_until(self, t: float) -> list[tuple[float, tuple[int]]]:
        """The ticks due up to time t, each one tick period (at the current tempo) after the last."""
        out = []
        if not self.running:
            return out
        while self._next <= t:
            out.append((self._next, (TICK,)))
            self._next += 60.0 / (self.bpm * PPQN)
        return out


class ClockIn:
    """Follows the MIDI clock arriving on an input port (the DAW is master)."""

    def __init__(self, api: str, port_query: str, on_tempo, *, window: int = 48, jump_ticks: int = 6,
                 jump: float = 0.08, tolerance: float = 0.005, client_name: str = "image-to-music-clock-in"):
        self.api, self.port_query, self.on_tempo = api, port_query, on_tempo
        self.window, self.tolerance, self.client_name = window, tolerance, client_name
        self.jump_ticks, self.jump = jump_ticks, jump
        self.bpm: float | None = None
        self.running: bool | None = None        # None: no start/stop seen yet
        self.port_name: str | None = None
        self._intervals: deque[float] = deque(maxlen=window)
        self._since_tick: float | None = None
        self._in = None
        self._lock = threading.Lock()

    def open(self) -> "ClockIn":
        # polled, not a callback (closing under a running callback crashed); rtmidi's own time stamps keep
        # the tick intervals exact whatever the polling delay
        self._in = PolledInput(self.api, self.client_name, self._on_message, ignore_timing=False, poll_s=0.002)
        self._in.open(self.port_query, what="clock input", port_label="clock-in")
        self.port_name = self._in.port_name
        log.info("clock in: following the MIDI clock from %s", self.port_name)
        return self

    def _on_message(self, event, data=None) -> None:
        msg, delta = event
        with self._lock:
            if self._since_tick is not None:
                self._since_tick += delta
            status = msg[0] if msg else 0
            if status == TICK:
                if self._since_tick is not None and self._since_tick > 0:
                    self._intervals.append(self._since_tick)
                self._since_tick = 0.0
                if len(self._intervals) >= self.jump_ticks and self.bpm is not None:
                    recent = list(self._intervals)[-self.jump_ticks:]
                    med = statistics.median(recent)
                    if abs(60.0 / (PPQN * med) - self.bpm) > self.jump * self.bpm:     # a new tempo: start again
                        self._intervals = deque([x for x in recent if abs(x - med) < self.jump * med],
                                                maxlen=self.window)
                if len(self._intervals) >= 3:
                    bpm = 60.0 / (PPQN * statistics.fmean(self._intervals))
                    if self.bpm is None or abs(bpm - self.bpm) > self.tolerance * self.bpm:
                        self.bpm = bpm
                        self.on_tempo(bpm)
            elif status in (START, CONTINUE):
                self.running = True
                self._since_tick = None
                self._intervals.clear()
            elif status == STOP:
                self.running = False
                self._since_tick = None

    def close(self) -> None:
        if self._in is not None:
            self._in.close()
            self._in = None
