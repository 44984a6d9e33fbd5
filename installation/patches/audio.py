"""render --audio: a MIDI file to a WAV (or FLAC) through FluidSynth, offline, sample-exact.

The MIDI file's messages are handed to an in-process FluidSynth (pyfluidsynth)
at their sample positions, and the audio between them is rendered with
``get_samples``: the result lasts exactly the MIDI file's length plus
``tail_s`` (the release and reverb of the last notes), whatever the machine's
speed. WAV is written with the standard library; FLAC needs ``soundfile``.
The program changes in the file (from the patch) pick the instruments.
"""
from __future__ import annotations

import logging
import wave
from pathlib import Path

import numpy as np

from installation.errors import UserError
from installation.patches.synth import find_soundfont, import_fluidsynth

log = logging.getLogger(__name__)

FORMATS = ("wav", "flac")
CHUNK = 4096


def midi_to_audio(midi_path: str | Path, out_path: str | Path, *, soundfont: str | Path | None = None,
                  rate: int = 44100, gain: float = 0.5, tail_s: float = 1.0) -> float:
    """Render ``midi_path`` to ``out_path`` (.wav or .flac); returns the audio's length in seconds."""
    import mido

    out_path = Path(out_path)
    fmt = out_path.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise UserError(f"--audio {fmt}: choose wav or flac")
    if fmt == "flac":
        try:
            import soundfile
        except (ImportError, OSError):
            raise UserError("--audio flac needs the soundfile package (pip install soundfile); "
                            "or use --audio wav") from None
    fs = import_fluidsynth()
    sf2 = find_soundfont(soundfont)
    synth = fs.Synth(gain=gain, samplerate=float(rate))
    try:
        if synth.sfload(str(sf2), update_midi_preset=1) == -1:
            raise UserError(f"SoundFont {sf2}: FluidSynth cannot load it; give another with --soundfont")
        chunks: list[np.ndarray] = []
        done = 0                                   # frames rendered so far

        def render_to(frame: int) -> None:
            nonlocal done
            while done < frame:
                n = min(CHUNK, frame - done)
                chunks.append(np.asarray(synth.get_samples(n), dtype=np.int16).reshape(-1, 2))
                done += n

        t = 0.0
        for msg in mido.MidiFile(midi_path):        # iterating a MidiFile gives seconds between messages
            t += msg.time
            if msg.is_meta or msg.type in ("clock", "start", "stop", "continue", "sysex"):
                continue
            render_to(int(round(t * rate)))
            _send(synth, msg)
        render_to(int(round((t + tail_s) * rate)))
    finally:
        synth.delete()
    audio = np.concatenate(chunks) if chunks else np.zeros((0, 2), np.int16)
    if fmt == "wav":
        with wave.open(str(out_path), "wb") as w:
            w.setnchannels(2)
            w.setsampwidth(2)
            w.setframerate(rate)
            w.writeframes(audio.astype("<i2").tobytes())
    else:
        soundfile.write(str(out_path), audio, rate, format="FLAC", subtype="PCM_16")
    return len(audio) / rate


def _send(synth, msg) -> None:
    if msg.type == "note_on" and msg.velocity > 0:
        synth.noteon(msg.channel, msg.note, msg.velocity)
    elif msg.type in ("note_on", "note_off"):
        synth.noteoff(msg.channel, msg.note)
    elif msg.type == "control_change":
        synth.cc(msg.channel, msg.control, msg.value)
    elif msg.type == "program_change":
        synth.program_change(msg.channel, msg.program)
    elif msg.type == "pitchwheel":
        synth.pitch_bend(msg.channel, msg.pitch)
