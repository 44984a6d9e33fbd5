"""The sender process's own settings: what it needs to open its output and keep time, nothing more.

Its parent (`play`, or the kiosk's supervisor) checked every value with the rest of its options
(installation/kiosk/config.py) and passes this small part on the sender's command line as JSON.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass


@dataclass(frozen=True)
class SenderConfig:
    port: str | None = None             # connect to this MIDI output port (a unique part of its name)
    virtual_port: str | None = None     # or create this virtual port (neither: the default virtual port)
    midi_api: str | None = None         # alsa, jack, coremidi, winmm (None: the platform's, falling back to JACK)
    channel: int = 1                    # 1-16: the channel a panic from outside the sender silences
    late_policy: str = "send"           # a late message is sent at once, or dropped (note-offs always go)
    max_polyphony: int = 32             # notes sounding at once; the oldest is released beyond
    max_note_seconds: float = 8.0       # a note held longer is released
    priority: int = 10                  # SCHED_FIFO priority of the sender, 1-99; 0: normal
    log_level: str = "info"
    record: str | None = None           # also write what was sent to this MIDI file at the end
    record_fallback: bool = False       # no MIDI system and no port: record to a new timestamped file instead
    synth: dict | None = None           # FluidSynth in the sender instead of a port: soundfont, driver, gain

    @classmethod
    def of(cls, s, **kw) -> SenderConfig:
        """The sender's share of a larger configuration ``s`` (a KioskConfig or play's arguments, whose options
        have the same names), with ``kw`` (record, record_fallback, synth; or a port in place of s's) laid over."""
        mine = dict(port=s.port, virtual_port=s.virtual_port, midi_api=s.midi_api, channel=s.channel,
                    late_policy=s.late_policy, max_polyphony=s.max_polyphony, max_note_seconds=s.max_note_seconds,
                    priority=s.sender_priority, log_level=s.log_level)
        return cls(**{**mine, **kw})

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> SenderConfig:
        return cls(**json.loads(text))
