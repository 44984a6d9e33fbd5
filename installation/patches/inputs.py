"""Live steering of valence and arousal: knobs on a MIDI controller, or OSC, into a latest-value slot.

``EmotionInput.current()`` is what the engine reads: ``(valence, arousal, weight)``
with each axis in -1..1, or None for an axis no hand has touched yet; None before
anything arrived. ``blend(v, a)`` mixes it with the picture's values:
``(1 - weight) * picture + weight * hand``, per axis that a hand has set.
The MIDI callback and the OSC server only write the slot; nothing waits on them.

``ChordInput`` is a chord as a live control: the notes held on ``[input] chord_port`` (or an OSC
``<prefix>/chord/hold`` with pitch classes or notes; ``<prefix>/chord/release`` lets go) become the
harmony plan's chord (``plan.hold``) until released: all keys up, plus ``chord_release_s``. A new set of
keys is taken once it has stood still for ``SETTLE_S`` (hands do not press a chord's keys at once).
Its ``update(now)`` runs on the patch's control thread; the inputs only write its state.
"""
from __future__ import annotations

import logging
import threading
import time

from installation.midi.midi_in import PolledInput
from installation.mood.harmony import recognise
from installation.patches.osc import OscIn
from installation.patches.patch import Input
from installation.ratelimit import LogLimiter
from installation.slot import LatestSlot

log = logging.getLogger(__name__)


class ChordInput:
    """Held keys (MIDI) or an OSC chord, as the harmony plan's held chord."""

    SETTLE_S = 0.05
    MAX_OSC_NOTES = 16

    def __init__(self, channel: int = 0, release_s: float = 0.3, clock=time.perf_counter):
        self.channel, self.release_s, self.clock = channel, release_s, clock
        self.plan = None                       # a HarmonyPlan, set when the engine has one
        self._lock = threading.Lock()
        self._keys: dict[int, None] = {}       # notes held now (MIDI), in the order pressed
        self._osc: frozenset[int] | None = None
        self._changed = -1.0                   # clock time of the last change of what is held
        self._pending = False
        self.chord = None                      # the chord held now (what the plan was given)
        self.taken = 0                         # chords taken (for logs and tests)
        self._warn = LogLimiter(log, every_s=10.0)

    def on_midi(self, event) -> None:
        """A message from the chord port: note-on/off on the channel (any, if 0); CC 120/123 let go of all."""
        msg, _delta = event
        if len(msg) != 3 or not 0x80 <= msg[0] <= 0xBF or msg[1] > 127 or msg[2] > 127:
            return
        if self.channel and (msg[0] & 0x0F) != self.channel - 1:
            return
        kind = msg[0] & 0xF0
        with self._lock:
            if kind == 0x90 and msg[2] > 0:
                self._keys[msg[1]] = None
            elif kind in (0x80, 0x90):
                self._keys.pop(msg[1], None)
            elif kind == 0xB0 and msg[1] in (120, 123):
                self._keys.clear()
            else:
                return
            self._changed, self._pending = self.clock(), True

    def lost(self) -> None:
        """Messages from the chord port were dropped (a flood): which keys are down is unknown, so none are."""
        with self._lock:
            if self._keys:
                self._keys.clear()
                self._changed, self._pending = self.clock(), True

    def on_osc(self, values) -> None:
        """``/chord/hold`` values (pitch classes 0-11 or notes 0-127, whole numbers), or None: release."""
        if values is not None:
            if not values or len(values) > self.MAX_OSC_NOTES or any(v != int(v) or not 0 <= v <= 127 for v in values):
                self._warn("OSC in: /chord/hold wants 1 to %d whole numbers 0-127 (pitch classes or notes); "
                           "got %d values", self.MAX_OSC_NOTES, len(values))
                return
            values = frozenset(int(v) % 12 for v in values)
        with self._lock:
            self._osc = values
            self._changed, self._pending = self.clock() - self.SETTLE_S, True

    def update(self, now: float) -> None:
        """Take a settled set of keys as the plan's chord, or let go after the grace. The control thread."""
        if not self._pending or self.plan is None:
            return
        with self._lock:
            keys, osc, since = list(self._keys), self._osc, now - self._changed
            if keys:
                if since < self.SETTLE_S:
                    return
                chord = recognise(keys, bass=min(keys), key=self.plan.key)
            elif osc:
                chord = recognise(osc, key=self.plan.key)
            else:
                if since < self.release_s:
                    return
                chord = None
            self._pending = False
        if chord == self.chord:
            return
        self.chord = chord
        self.plan.hold(chord)
        if chord is not None:
            self.taken += 1
            log.info("chord in: %s (%s) holds the harmony", chord.name, " ".join(str(p) for p in sorted(chord.pcs)))
        else:
            log.info("chord in: released; the plan goes on")


class EmotionInput:
    """The hand's valence and arousal, from MIDI CC and/or OSC."""

    def __init__(self, cfg: Input, api: str | None = None, osc_prefix: str = "/itm"):
        self.cfg = cfg
        self.api = api
        self.osc_prefix = osc_prefix
        self._lock = threading.Lock()
        self.slot: LatestSlot[tuple[float | None, float | None]] = LatestSlot()
        self._midi = None
        self._osc = None
        self.port_name: str | None = None
        self.chord = ChordInput(cfg.chord_channel, cfg.chord_release_s)
        self._chord_midi = None

    # --- writers ---
    def set(self, axis: str, x: float) -> None:
        """Set one axis (-1..1, clipped). Any thread."""
        x = max(-1.0, min(1.0, float(x)))
        with self._lock:                       # the MIDI callback and the OSC server may both write
            v, a = self.slot.get()[0] or (None, None)
            self.slot.put((x, a) if axis == "valence" else (v, x))

    def _on_midi(self, event) -> None:
        msg, _delta = event
        if len(msg) != 3 or msg[0] & 0xF0 != 0xB0:
            return
        if self.cfg.channel and (msg[0] & 0x0F) != self.cfg.channel - 1:
            return
        x = msg[2] / 127.0 * 2.0 - 1.0
        if msg[1] == self.cfg.valence_cc:
            self.set("valence", x)
        if msg[1] == self.cfg.arousal_cc:
            self.set("arousal", x)

    # --- the engine's side ---
    def current(self) -> tuple[float | None, float | None, float] | None:
        """(valence, arousal, weight), or None before any input arrived."""
        value, version = self.slot.get()
        if version == 0:
            return None
        return value[0], value[1], self.cfg.weight

    def blend(self, valence: float | None, arousal: float | None) -> tuple[float | None, float | None]:
        """The picture's valence/arousal mixed with the hand's (per axis the hand has set)."""
        cur = self.current()
        if cur is None:
            return valence, arousal
        hv, ha, w = cur
        mix = lambda pic, hand: pic if hand is None else hand if pic is None else (1 - w) * pic + w * hand
        return mix(valence, hv), mix(arousal, ha)

    # --- opening and closing ---
    def open(self) -> "EmotionInput":
        if self.cfg.midi_port is not None:
            # lazy: rtmidi, only when a MIDI input is configured (the thinker process opens no MIDI otherwise)
            from installation.midi import midi_io
            api = self.api or midi_io.choose_api(None)
            # polled, not a callback; at most 1,000 messages/s (a knob sends tens)
            self._midi = PolledInput(api, "image-to-music-input", self._on_midi, rate=1000.0)
            self._midi.open(self.cfg.midi_port, what="input", port_label="knobs")
            self.port_name = self._midi.port_name
            log.info("input: valence/arousal from CC %s/%s on %s", self.cfg.valence_cc, self.cfg.arousal_cc,
                     self.port_name)
        if self.cfg.chord_port is not None:
            # lazy: rtmidi, only when a MIDI input is configured (the thinker process opens no MIDI otherwise)
            from installation.midi import midi_io
            api = self.api or midi_io.choose_api(None)
            self._chord_midi = PolledInput(api, "image-to-music-chords", self.chord.on_midi, rate=1000.0,
                                           on_drop=self.chord.lost)
            self._chord_midi.open(self.cfg.chord_port, what="input", port_label="chords")
            log.info("input: chords held on %s become the harmony", self._chord_midi.port_name)
        if self.cfg.osc_port is not None:
            self._osc = OscIn(self.cfg.osc_port, self.set, prefix=self.osc_prefix, host=self.cfg.osc_bind,
                              on_chord=self.chord.on_osc).start()
        return self

    def close(self) -> None:
        if self._midi is not None:
            self._midi.close()
            self._midi = None
        if self._chord_midi is not None:
            self._chord_midi.close()
            self._chord_midi = None
        if self._osc is not None:
            self._osc.close()
            self._osc = None
