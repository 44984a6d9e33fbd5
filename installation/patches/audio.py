"""render --audio: a MIDI file to a WAV, FLAC or Ogg/Opus file through FluidSynth, offline, sample-exact.

The MIDI file's messages are handed to an in-process FluidSynth (pyfluidsynth)
at their sample positions, and the audio between them is rendered with
``get_samples``: the result lasts exactly the MIDI file's length plus
``tail_s`` (the release and reverb of the last notes), whatever the machine's
speed. It is normalised to -16 LUFS (peak at most -1 dBFS; installation/patches/loudness.py).
WAV is written with the standard library; FLAC and Opus need ``soundfile``.
The program changes in the file (from the patch) pick the instruments.
"""
from __future__ import annotations

import io
import logging
import wave
from pathlib import Path

import numpy as np

from installation.errors import UserError
from installation.midi.synth import find_soundfont, import_fluidsynth

log = logging.getLogger(__name__)

CHUNK = 4096


def check_format(fmt: str) -> None:
    """UserError saying what to install when ``fmt`` cannot be written here."""
    if fmt == "wav":
        return
    try:
        import soundfile
    except (ImportError, OSError):
        raise UserError(f"--audio {fmt} needs the soundfile package (pip install soundfile); "
                        "or use --audio wav") from None
    if fmt == "opus" and "OPUS" not in soundfile.available_subtypes("OGG"):
        raise UserError("--audio opus: this libsndfile cannot write Ogg/Opus (it needs 1.0.29 or later); "
                        "use --audio flac")


def synthesize(midi_path: str | Path, *, soundfont: str | Path | None = None, rate: int = 48000,
               gain: float = 0.5, tail_s: float = 1.0) -> np.ndarray:
    """The MIDI file played through FluidSynth: float32 stereo (frames, 2) in -1..1, lasting its length + ``tail_s``."""
    import mido

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
    return audio.astype(np.float32) / 32768.0


def encode(audio: np.ndarray, rate: int, fmt: str) -> bytes:
    """Float audio (frames, channels) as the bytes of a WAV (16-bit), FLAC (16-bit) or Ogg/Opus file."""
    x = np.clip(np.asarray(audio, np.float32), -1.0, 1.0)
    buf = io.BytesIO()
    if fmt == "wav":
        pcm = np.round(x * 32767).astype("<i2")
        with wave.open(buf, "wb") as w:
            w.setnchannels(x.shape[1])
            w.setsampwidth(2)
            w.setframerate(rate)
            w.writeframes(pcm.tobytes())
    else:
        import soundfile
        kind = {"flac": ("FLAC", "PCM_16"), "opus": ("OGG", "OPUS")}[fmt]
        soundfile.write(buf, x, rate, format=kind[0], subtype=kind[1])
    return buf.getvalue()


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
