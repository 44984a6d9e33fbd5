"""MIDI files: (seconds, message bytes) pairs written as a type-0 file, 1 tick = 1 ms (500 ticks per beat at
120 bpm). The sender's --record (midi_io.Recorder), the offline render of a patch (patches.routing) and of plain
notes (music/events.notes_to_midi) write here."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable, Sequence

log = logging.getLogger(__name__)
TICKS_PER_BEAT = 500                # with 120 bpm (500000 us per beat): 1 tick = 1 ms
TEMPO_US = 500_000


def write(timed: Iterable[tuple[float, Sequence[int]]], path: str | Path, end: float = 0.0) -> int:
    """Write (seconds, message bytes) pairs, in time order, as a type-0 MIDI file at 1 ms per tick; the track
    ends at ``end`` seconds or at its last message. Real-time messages (clock, start, stop) have no place in a
    file and are left out, as is what is not valid MIDI (with a warning). Returns how many messages went in."""
    import mido

    mid = mido.MidiFile(type=0, ticks_per_beat=TICKS_PER_BEAT)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=TEMPO_US, time=0))
    now, skipped = 0, 0
    for t, message in timed:
        if message and message[0] >= 0xF8:
            continue
        try:
            msg = mido.Message.from_bytes(list(message))
        except (ValueError, TypeError):
            skipped += 1
            continue
        msg.time = max(0, int(round(t * 1000)) - now)
        now += msg.time
        track.append(msg)
    track.append(mido.MetaMessage("end_of_track", time=max(0, int(round(end * 1000)) - now)))
    if skipped:
        log.warning("MIDI file %s: skipped %d message(s) that are not valid MIDI", path, skipped)
    mid.save(path)
    return len(track) - 2
