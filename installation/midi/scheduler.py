"""Timed MIDI messages are sent on time; every note-on gets its note-off.

A message is a plain tuple of ints: ``(0x90|ch, pitch, vel)`` note-on,
``(0x80|ch, pitch, 0)`` note-off (a note-on with velocity 0 is a note-off too),
``(0xB0|ch, cc, value)`` and so on. A due time is seconds on the scheduler's
monotonic clock.

The open-note table, keyed by (channel, pitch), follows note-seq's policy:
a note-on for a key that is already open first sends that key's note-off
(retrigger); a note-off for a key that is not open is skipped (orphan); a
note-on beyond ``max_polyphony`` first closes the oldest open note (steal);
a note open for ``max_note_s`` is closed by the scheduler; ``stop()`` and
``panic()`` close everything. So every note-on that was sent gets exactly one
note-off.

A pedal is held state too (MIDI's switch controllers, CC 64-69: 64 sustain, 66
sostenuto, 67 soft): a value above 0 holds it, 0 lifts it. The table keeps the
pedals held, keyed by (channel, controller); every path that closes notes lifts
them, with their note-offs: ``stop()``, ``panic()``, a scene change
(``discard_after``), a pedal held for ``max_pedal_s``, and a lost port (below).
A pedal-up for a pedal that is not held is skipped, as an orphan note-off is.

A send that fails (``sink.send`` returns False: the port is gone) leaves the
table as if it had been sent, so its note-off is still sent later; a note-off
to a port that did not play the note is harmless, a missing one is a stuck note.
So, with a sink that has a ``connected`` flag (MidiOut), a note-off that fails is
owed: it is sent again as soon as the sink is connected again (a port, or a JACK
server, that came back), or before the next note-on of that key. Failed sends are counted (``stats()["send_failed"]``). The recorder, if any, gets
every message handed to the sink, failed or not, so a recording stays balanced.
Pedal-ups are owed in the same way, and when a send finds the port gone, so is
a pedal-up for every pedal the music has used (the port, or a synth that stayed
on it, gets its pedal-up when it is back; a pedal held here is lifted then).
Lateness (now - due) is kept for every message ``tick`` sends; a note-off it adds
(retrigger, steal) counts as due with the note-on that caused it, a forced one as
due at its deadline.

Threads: the generator thread calls ``push``/``discard_after``;
only the scheduler thread touches the sink while it runs (``panic()`` from
another thread is handed to it). After ``stop()`` joined it, or once it died,
``panic()`` sends from the calling thread.
"""
from __future__ import annotations

import heapq
import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Protocol

from array import array

from installation.errors import UserError

log = logging.getLogger(__name__)

NOTE_OFF, NOTE_ON, CONTROL_CHANGE = 0x80, 0x90, 0xB0
CLOCK_TICK, CLOCK_STOP = 0xF8, 0xFC
CLOCK_RESTARTS = (0xFA, 0xFB)         # Start, Continue
ALL_SOUND_OFF, ALL_NOTES_OFF = 120, 123
PEDALS = range(64, 70)                # switch controllers held while > 0: 64 sustain, 66 sostenuto, 67 soft ...

Message = tuple[int, ...]


class Sink(Protocol):
    """Where messages go (a MIDI output port)."""
    def send(self, msg: Message) -> bool: ...


class Recorder(Protocol):
    """Keeps what was played, with the clock time it was sent."""
    def add(self, t: float, msg: Message) -> None: ...


@dataclass(frozen=True)
class SchedulerConfig:
    """How the scheduler treats late messages, long notes and too many notes."""
    late_policy: str = "send"       # "send": a late message goes out at once; "drop": note-ons later than late_tolerance_s are dropped (note-offs never)
    late_tolerance_s: float = 0.020  # how late a note-on may be under "drop"
    max_note_s: float = 8.0         # a note open longer is closed by the scheduler
    max_pedal_s: float = 30.0       # a pedal held longer is lifted by the scheduler
    max_polyphony: int = 32         # a note-on beyond this steals (closes) the oldest open note first
    spin_s: float = 0.002           # sleep until this long before a due time, then spin
    stats_window: int = 4096        # lateness samples kept for the p50/p99 in stats()

    def __post_init__(self) -> None:
        if self.late_policy not in ("send", "drop"):
            raise UserError(f"late_policy must be 'send' or 'drop', not {self.late_policy!r}")
        for name in ("late_tolerance_s", "spin_s"):
            if not getattr(self, name) >= 0:
                raise UserError(f"{name} must be >= 0, not {getattr(self, name)!r}")
        for name in ("max_note_s", "max_pedal_s"):
            if not getattr(self, name) > 0:
                raise UserError(f"{name} must be > 0, not {getattr(self, name)!r}")
        for name in ("max_polyphony", "stats_window"):
            if not getattr(self, name) >= 1:
                raise UserError(f"{name} must be >= 1, not {getattr(self, name)!r}")


class Scheduler:
    """Sends timed messages to a sink at their due times, keeping an open-note table.

    ``tick(now)`` does the work and is what fake-clock tests call; ``start()``
    runs it on a thread that waits for absolute due times (condition wait
    until ``spin_s`` before, then spins). Constructing one starts nothing.
    """

    def __init__(self, sink: Sink, config: SchedulerConfig = SchedulerConfig(), *,
                 clock: Callable[[], float] = time.perf_counter, recorder: Recorder | None = None):
        self._sink = sink
        self._config = config
        self._clock = clock
        self._recorder = recorder
        self._cond = threading.Condition()       # an RLock: panic() from inside tick() is fine
        self._heap: list[tuple[float, int, Message]] = []   # (due, sequence, msg)
        self._clock_stopped_at: float | None = None         # due time of a clock Stop not followed by a Start
        self._seq = 0
        self._open: dict[tuple[int, int], float] = {}       # (ch, pitch) -> on-time; insertion order = age
        self._held: dict[tuple[int, int], float] = {}       # (ch, controller) -> when the pedal went down
        self._pedals_used: set[tuple[int, int]] = set()     # every (ch, controller) a pedal message went to
        self._channels: set[int] = set()                    # channels used, for CC123/CC120
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._next_wake = math.inf               # what the thread waits for; a push earlier wakes it
        self._wakes = 0                          # bumped to end a spin early
        self._panic_requests: list[threading.Event] = []
        self.error: BaseException | None = None  # what killed the thread, if anything
        # counters and the lateness ring buffer (preallocated; read by stats())
        self._lateness = array("d", bytes(8 * config.stats_window))     # a ring of the last lateness samples
        self._n_late_samples = 0
        self._late_max = -math.inf
        self._sent = self._send_failed = self._dropped_late = 0
        self._silenced = False             # the scheduler thread sent its final panic
        self._owed: set[tuple[int, int]] = set()   # (ch, pitch) whose note-off failed to go out
        self._owed_up: set[tuple[int, int]] = set()  # (ch, controller) whose pedal-up the port has not had
        self._tracks_port = hasattr(sink, "connected")   # a sink that says when its port is back (MidiOut)
        self._stolen = self._forced = self._retriggered = self._orphans = self._pedals_lifted = 0

    # --- the generator's side ----------------------------------------------

    def push(self, items: Iterable[tuple[float, Message]]) -> None:
        """Queue (due, message) pairs. Thread-safe; wakes the thread if one is earlier than its wait.
        A clock Stop (0xFC) drops the clock ticks queued after it, and ticks pushed later for after it, until a
        Start or Continue: a clock that stopped does not tick (a generator may push one more batch as it stops)."""
        checked = [(float(due), _checked(msg)) for due, msg in items]
        if not checked:
            return
        with self._cond:
            for due, msg in checked:
                if msg[0] == CLOCK_STOP:
                    self._clock_stopped_at = due
                    self._heap = [item for item in self._heap if not (item[2][0] == CLOCK_TICK and item[0] > due)]
                    heapq.heapify(self._heap)
                elif msg[0] in CLOCK_RESTARTS:
                    self._clock_stopped_at = None
            if self._clock_stopped_at is not None:
                checked = [(due, msg) for due, msg in checked
                           if not (msg[0] == CLOCK_TICK and due > self._clock_stopped_at)]
                if not checked:
                    return
            for due, msg in checked:
                heapq.heappush(self._heap, (due, self._seq, msg))
                self._seq += 1
            if min(due for due, _ in checked) < self._next_wake:
                self._wake()

    def pending(self) -> int:
        """How many messages are queued."""
        with self._cond:
            return len(self._heap)

    def discard_after(self, t: float) -> int:
        """Scene change: drop queued notes and pedals due after ``t``; returns how many were dropped.
        Other messages (clock ticks, other controllers) stay: they do not belong to the old scene's music.

        Every note that is open now, or that a kept note-on would open, gets a
        note-off queued at ``t`` (before anything pushed later for ``t``). Where
        a kept note-off closes the note first, that extra note-off is skipped as
        an orphan when its time comes, so each note still gets exactly one.
        Every pedal held now, or that a kept pedal-down would hold, gets its
        pedal-up at ``t`` too, after those note-offs (else the pedal would hold
        the old scene's notes on into the new one).
        """
        with self._cond:
            kept = [item for item in self._heap if item[0] <= t or not _held_state(item[2])]
            dropped = len(self._heap) - len(kept)
            keys = dict.fromkeys(self._open)
            pedals = dict.fromkeys(self._held)
            for _, _, msg in kept:
                if msg[0] & 0xF0 == NOTE_ON and msg[2] > 0:
                    keys[(msg[0] & 0x0F, msg[1])] = None
                elif _is_pedal(msg) and msg[2] > 0:
                    pedals[(msg[0] & 0x0F, msg[1])] = None
            for ch, pitch in keys:
                kept.append((t, self._seq, (NOTE_OFF | ch, pitch, 0)))
                self._seq += 1
            for ch, number in pedals:
                kept.append((t, self._seq, (CONTROL_CHANGE | ch, number, 0)))
                self._seq += 1
            heapq.heapify(kept)
            self._heap = kept
            if kept and t < self._next_wake:
                self._wake()
            return dropped

    # --- sending -------------------------------------------------------------

    def tick(self, now: float) -> float | None:
        """Send everything due at or before ``now``, close notes open too long; returns the next due time.

        The next due time includes the deadline of the oldest open note, so the
        thread also wakes up to close forgotten notes. Do not call it while the
        thread runs.
        """
        with self._cond:
            if (self._owed or self._owed_up) and self._sink.connected:
                self._pay_owed(now)
            heap = self._heap
            while heap and heap[0][0] <= now:
                due, _, msg = heapq.heappop(heap)
                self._play(now, due, msg)
            max_note = self._config.max_note_s
            while self._open:                    # oldest first: the table is in note-on order
                key, on = next(iter(self._open.items()))
                if on + max_note > now:
                    break
                self._forced += 1
                self._close(now, on + max_note, key)
            max_pedal = self._config.max_pedal_s
            while self._held:                    # oldest first, as the notes
                (ch, number), down = next(iter(self._held.items()))
                if down + max_pedal > now:
                    break
                self._pedals_lifted += 1
                del self._held[(ch, number)]
                self._send(now, down + max_pedal, (CONTROL_CHANGE | ch, number, 0))
            nxt = heap[0][0] if heap else None
            if self._open:
                deadline = next(iter(self._open.values())) + max_note
                nxt = deadline if nxt is None else min(nxt, deadline)
            if self._held:
                deadline = next(iter(self._held.values())) + max_pedal
                nxt = deadline if nxt is None else min(nxt, deadline)
            if self._owed or self._owed_up:      # look again soon: the port may be back
                nxt = now + 0.1 if nxt is None else min(nxt, now + 0.1)
            return nxt

    def _play(self, now: float, due: float, msg: Message) -> None:
        kind = msg[0] & 0xF0
        if kind == NOTE_ON and msg[2] > 0:
            if self._config.late_policy == "drop" and now - due > self._config.late_tolerance_s:
                self._dropped_late += 1
                return
            key = (msg[0] & 0x0F, msg[1])
            if key in self._owed:                # its last note-off never got out: send it first
                self._owed.discard(key)
                self._send(now, due, (NOTE_OFF | key[0], key[1], 0))
            if key in self._open:
                self._retriggered += 1
                self._close(now, due, key)
            elif len(self._open) >= self._config.max_polyphony:
                self._stolen += 1
                self._close(now, due, next(iter(self._open)))
            self._open[key] = now
        elif kind == NOTE_OFF or kind == NOTE_ON:
            key = (msg[0] & 0x0F, msg[1])
            if key not in self._open:
                self._orphans += 1
                return
            del self._open[key]
        elif kind == CONTROL_CHANGE and msg[1] in PEDALS:
            key = (msg[0] & 0x0F, msg[1])
            self._pedals_used.add(key)
            if msg[2] > 0:
                self._held.setdefault(key, now)
            elif key in self._held:
                del self._held[key]
            else:
                self._orphans += 1               # lifted already (a panic, a scene change, max_pedal_s)
                return
        self._send(now, due, msg)

    def _close(self, now: float, due: float, key: tuple[int, int]) -> None:
        del self._open[key]
        self._send(now, due, (NOTE_OFF | key[0], key[1], 0))

    def _send(self, now: float, due: float, msg: Message) -> None:
        if msg[0] < 0xF0:
            self._channels.add(msg[0] & 0x0F)
        late = now - due
        self._lateness[self._n_late_samples % len(self._lateness)] = late
        self._n_late_samples += 1
        if late > self._late_max:
            self._late_max = late
        self._sent += 1
        if self._sink.send(msg) is False:
            self._send_failed += 1
            if self._tracks_port:
                self._owe(msg)
        if self._recorder is not None:
            self._recorder.add(now, msg)

    def _owe(self, msg: Message) -> None:
        """A send failed: a note-off or pedal-up is owed to the port. With the port gone, so is a pedal-up for
        every pedal the music has used: the port (or the synth on it) may hold one, whether it is held here or
        its pedal-up went out in the moment before the loss was noticed (MidiOut's watchdog, about 0.5 s)."""
        if msg[0] & 0xF0 == NOTE_OFF:
            self._owed.add((msg[0] & 0x0F, msg[1]))
        elif _is_pedal(msg) and msg[2] == 0:
            self._owed_up.add((msg[0] & 0x0F, msg[1]))
        if self._pedals_used and not self._sink.connected:
            self._owed_up.update(self._pedals_used)

    def _pay_owed(self, now: float) -> None:
        """Send the note-offs, then the pedal-ups, that failed while the port was away (it is back). A pedal
        held is lifted: the music's next pedal-down holds it again."""
        for ch, pitch in sorted(self._owed):
            self._owed.discard((ch, pitch))
            if (ch, pitch) not in self._open:    # an open note gets its own note-off in time
                self._send(now, now, (NOTE_OFF | ch, pitch, 0))
        for ch, number in sorted(self._owed_up):
            self._owed_up.discard((ch, number))
            self._held.pop((ch, number), None)
            self._send(now, now, (CONTROL_CHANGE | ch, number, 0))

    # --- the thread ----------------------------------------------------------

    def start(self) -> None:
        """Start the scheduler thread (once)."""
        with self._cond:
            if self._thread is not None:
                raise RuntimeError("scheduler already started")
            self._thread = threading.Thread(target=self._run, name="scheduler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        clock, spin = self._clock, self._config.spin_s
        try:
            with self._cond:
                while not self._stopping:
                    if self._panic_requests:
                        self._panic_locked()
                    nxt = self.tick(clock())
                    if nxt is None:
                        self._next_wake = math.inf
                        self._cond.wait()
                        continue
                    self._next_wake = nxt
                    remaining = nxt - clock()
                    if remaining > spin:
                        self._cond.wait(remaining - spin)
                        continue
                    wakes = self._wakes
                    self._cond.release()                  # spin without the lock, so push() is not held up
                    try:
                        while clock() < nxt and self._wakes == wakes:
                            time.sleep(0)
                    finally:
                        self._cond.acquire()
                # stopping: the thread that owns the port silences it, however long stop() waits for us
                self._heap.clear()
                self._panic_locked()
                self._silenced = True
        except BaseException as exc:                      # the thread ends here; the engine sees .error
            self.error = exc
            log.exception("scheduler thread died")

    def is_running(self) -> bool:
        """True while the scheduler thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def _wake(self) -> None:
        self._wakes += 1
        self._cond.notify_all()

    def stop(self, timeout: float = 1.0) -> None:
        """Stop the thread, drop what is queued, then send a note-off for every open note, a pedal-up for
        every pedal held, and CC123 + CC120 on every channel used (from this thread, once the scheduler thread is joined)."""
        with self._cond:
            self._stopping = True
            self._wake()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                log.error("scheduler thread did not stop within %.2f s; it silences the port itself when it does",
                          timeout)
                return
        with self._cond:
            self._heap.clear()
            if not self._silenced:                        # the thread never ran, or died: silence from here
                self._panic_locked()
            log.info("scheduler stopped: %s", self._stats_locked())

    def panic(self) -> None:
        """A note-off for every open note and a pedal-up for every pedal held, then CC123 (all notes off) and
        CC120 (all sound off) on every channel used. While the thread runs it does this itself (this call waits for it)."""
        thread = self._thread
        if thread is not None and thread.is_alive() and thread is not threading.current_thread():
            done = threading.Event()
            with self._cond:
                self._panic_requests.append(done)
                self._wake()
            if not done.wait(1.0) and thread.is_alive():
                log.error("scheduler thread did not answer a panic within 1 s")
            if done.is_set() or thread.is_alive():
                return
        with self._cond:
            self._panic_locked()

    def _panic_locked(self) -> None:
        now = self._clock()
        msgs = [(NOTE_OFF | ch, pitch, 0) for ch, pitch in {**dict.fromkeys(self._open), **dict.fromkeys(sorted(self._owed))}]
        msgs += [(CONTROL_CHANGE | ch, number, 0) for ch, number in {**dict.fromkeys(self._held),
                                                                     **dict.fromkeys(sorted(self._owed_up))}]
        self._open.clear()
        self._owed.clear()
        self._held.clear()
        self._owed_up.clear()
        for ch in sorted(self._channels):
            msgs += [(CONTROL_CHANGE | ch, ALL_NOTES_OFF, 0), (CONTROL_CHANGE | ch, ALL_SOUND_OFF, 0)]
        failed: list[str] = []
        for msg in msgs:                      # keep going: as many note-offs as possible get out
            try:
                self._sent += 1
                if self._sink.send(msg) is False:
                    self._send_failed += 1
                    if self._tracks_port and not self._sink.connected:
                        self._owe(msg)            # the port is away: its note-offs and pedal-ups when it is back
                if self._recorder is not None:
                    self._recorder.add(now, msg)
            except Exception as exc:
                self._send_failed += 1
                failed.append(f"{msg}: {type(exc).__name__}: {exc}")
        for done in self._panic_requests:
            done.set()
        self._panic_requests.clear()
        if failed:
            log.error("panic: %d message(s) could not be sent, first %s", len(failed), failed[0])

    # --- for others to read --------------------------------------------------

    def stats(self) -> dict:
        """Lateness (seconds; p50/p99 over the last ``stats_window`` samples, max over all) and counters."""
        with self._cond:                    # the lock only for a copy: the percentiles are worked out after
            samples, out = self._snapshot_locked()
        return _with_percentiles(samples, out)

    def _stats_locked(self) -> dict:
        return _with_percentiles(*self._snapshot_locked())

    def _snapshot_locked(self) -> tuple[array, dict]:
        n = min(self._n_late_samples, len(self._lateness))
        samples = self._lateness[:n]                        # a copy
        out = {
            "lateness_p50": None,
            "lateness_p99": None,
            "lateness_max": self._late_max if n else None,
            "sent": self._sent,
            "send_failed": self._send_failed,
            "dropped_late": self._dropped_late,
            "stolen": self._stolen,
            "forced_closed": self._forced,
            "retriggered": self._retriggered,
            "orphans_skipped": self._orphans,
            "pedals_lifted": self._pedals_lifted,
        }
        return samples, out

    @property
    def open_notes(self) -> dict[tuple[int, int], float]:
        """A snapshot of the open-note table: (channel, pitch) -> the time its note-on was sent."""
        with self._cond:
            return dict(self._open)

    @property
    def held_pedals(self) -> dict[tuple[int, int], float]:
        """A snapshot of the pedals held: (channel, controller) -> the time its pedal-down was sent."""
        with self._cond:
            return dict(self._held)


def _checked(msg) -> Message:
    msg = tuple(int(b) for b in msg)
    if not msg or not 0x80 <= msg[0] <= 0xFF:
        raise ValueError(f"not a MIDI message (no status byte): {msg!r}")
    if msg[0] & 0xF0 in (NOTE_OFF, NOTE_ON, CONTROL_CHANGE) and len(msg) != 3:
        raise ValueError(f"a note or controller message has 3 bytes: {msg!r}")
    return msg


def _is_pedal(msg: Message) -> bool:
    return msg[0] & 0xF0 == CONTROL_CHANGE and msg[1] in PEDALS


def _held_state(msg: Message) -> bool:
    """A note or a pedal: what a scene change drops from the queue (and closes)."""
    return msg[0] & 0xE0 == NOTE_OFF or _is_pedal(msg)


def _with_percentiles(samples, out: dict) -> dict:
    """The stats dict with lateness p50 and p99 from ``samples`` (None when there are none)."""
    if len(samples):
        ordered = sorted(samples)
        out["lateness_p50"], out["lateness_p99"] = percentile(ordered, 50), percentile(ordered, 99)
    return out


def percentile(ordered, q: float) -> float:
    """The q-th percentile of sorted values, interpolated linearly between the two nearest (numpy's default).
    Plain Python: the sender process, which never imports numpy, starts about 0.1 s sooner."""
    pos = (len(ordered) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return float(ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo))
