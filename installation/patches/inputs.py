"""Live steering of valence and arousal: knobs on a MIDI controller, or OSC, into a latest-value slot.

``EmotionInput.current()`` is what the engine reads: ``(valence, arousal, weight)``
with each axis in -1..1, or None for an axis no hand has touched yet; None before
anything arrived. ``blend(v, a)`` mixes it with the picture's values:
``(1 - weight) * picture + weight * hand``, per axis that a hand has set.
The MIDI callback and the OSC server only write the slot; nothing waits on them.
"""
from __future__ import annotations

import logging
import threading

from installation.patches.patch import Input
from installation.slot import LatestSlot

log = logging.getLogger(__name__)


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
            from installation.midi import midi_io
            from installation.midi.midi_in import PolledInput
            api = self.api or midi_io.choose_api(None)
            # polled, not a callback; at most 1,000 messages/s (a knob sends tens)
            self._midi = PolledInput(api, "image-to-music-input", self._on_midi, rate=1000.0)
            self._midi.open(self.cfg.midi_port, what="input", port_label="knobs")
            self.port_name = self._midi.port_name
            log.info("input: valence/arousal from CC %s/%s on %s", self.cfg.valence_cc, self.cfg.arousal_cc,
                     self.port_name)
        if self.cfg.osc_port is not None:
            from installation.patches.osc import OscIn
            self._osc = OscIn(self.cfg.osc_port, self.set, prefix=self.osc_prefix, host=self.cfg.osc_bind).start()
        return self

    def close(self) -> None:
        if self._midi is not None:
            self._midi.close()
            self._midi = None
        if self._osc is not None:
            self._osc.close()
            self._osc = None
