"""Hearing it with no synth: FluidSynth inside the process (pyfluidsynth + a General MIDI SoundFont).

``FluidSynthSink`` is a sink like ``midi_io.MidiOut``: the scheduler calls
``send(msg)`` and FluidSynth plays it to the machine's audio output, so
``play --synth`` needs no MIDI system at all. The patch's program changes pick
the instruments. FluidSynth's API is thread-safe and its audio runs on its own
(C) thread; ``send`` only hands an event over.

Optional: ``pip install -r requirements-audio.txt`` and the FluidSynth library with a
SoundFont (Debian: ``apt install fluidsynth fluid-soundfont-gm``; macOS:
``brew install fluid-synth`` and a .sf2 file). ``check_extra`` checks all of it at the start and names
everything missing in one line.
"""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from installation.errors import UserError

log = logging.getLogger(__name__)

SOUNDFONTS = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/soundfonts/default.sf2",
    "/usr/share/soundfonts/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/TimGM6mb.sf2",
    "/opt/homebrew/share/soundfonts/default.sf2",
    "/usr/local/share/soundfonts/default.sf2",
)
INSTALL_HINT = ("install FluidSynth and a General MIDI SoundFont (Debian: apt install fluidsynth "
                "fluid-soundfont-gm; then pip install -r requirements-audio.txt)")
# what each option needs of the audio extra (requirements-audio.txt): Python module -> pip package
NEEDS = {"--synth": {"fluidsynth": "pyfluidsynth"},
         "--audio": {"fluidsynth": "pyfluidsynth", "scipy.signal": "scipy", "soundfile": "soundfile"}}


def find_soundfont(requested: str | Path | None = None) -> Path:
    """The SoundFont to use: the one asked for, else the first General MIDI one installed."""
    if requested is not None:
        p = Path(requested).expanduser()
        if not p.is_file():
            raise UserError(f"SoundFont {p}: no such file; give a .sf2 file with --soundfont")
        return p
    for cand in SOUNDFONTS:
        if Path(cand).is_file():
            return Path(cand)
    raise UserError(f"no General MIDI SoundFont found (looked in {', '.join(SOUNDFONTS[:3])}, ...); "
                    f"{INSTALL_HINT}, or give one with --soundfont FILE.sf2")


def import_fluidsynth():
    """pyfluidsynth, or a UserError saying what to install."""
    try:
        import fluidsynth
    except (ImportError, OSError) as exc:     # no package, or the package without the C library
        raise UserError(f"FluidSynth is not available here ({str(exc).strip() or 'missing'}); "
                        f"{INSTALL_HINT}") from None
    return fluidsynth


def check_extra(option: str, soundfont: str | Path | None = None) -> Path:
    """Everything ``option`` (--synth or --audio) needs of the audio extra, before anything starts: the Python
    packages, the FluidSynth library and a SoundFont. One line names all that is missing (not one piece a
    run); returns the SoundFont."""
    import ctypes.util
    import importlib
    packages, system = [], []
    for module, package in NEEDS[option].items():
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if module == "fluidsynth" and exc.name != "fluidsynth":
                system.append("the FluidSynth library")
            else:
                packages.append(package)
        except (ImportError, OSError):        # pyfluidsynth without its C library; a broken install
            if module == "fluidsynth":
                system.append("the FluidSynth library")
            else:
                packages.append(package)
    if "pyfluidsynth" in packages and not any(   # imported, pyfluidsynth has found the library itself
            ctypes.util.find_library(n) for n in ("fluidsynth", "libfluidsynth", "libfluidsynth-3")):
        system.append("the FluidSynth library")
    if soundfont is None and not any(Path(c).is_file() for c in SOUNDFONTS):
        system.append("a General MIDI SoundFont")
    if packages or system:
        how = ["pip install -r requirements-audio.txt"] if packages else []
        if system:
            how.append("apt install fluidsynth fluid-soundfont-gm (Debian; macOS: brew install fluid-synth "
                       "and a .sf2 file given with --soundfont)")
        raise UserError(f"{option} needs the audio extra; missing: {', '.join(packages + system)}. "
                        f"Install it: {'; '.join(how)}")
    return find_soundfont(soundfont)


class FluidSynthSink:
    """FluidSynth in this process, as a MIDI sink. ``driver``: FluidSynth's audio driver
    ('alsa', 'pulseaudio', 'jack', 'coreaudio', ...; None: its default), or 'file:OUT.wav'
    to write the audio to a file in real time (machines with no sound card)."""

    def __init__(self, soundfont: str | Path | None = None, driver: str | None = None,
                 gain: float = 0.5, rate: int = 48000):
        self.soundfont = find_soundfont(soundfont)
        self.driver, self.gain, self.rate = driver, gain, rate
        self.port_name = "FluidSynth (in this process)"
        self._fs = None
        self._synth = None
        self._audio = None
        self.written_to: str | None = None     # the WAV file the sound goes to, when it goes to one

    def open(self) -> None:
        fs = import_fluidsynth()
        self._fs = fs
        synth = fs.Synth(gain=self.gain, samplerate=float(self.rate))
        self._synth = synth
        driver = self.driver
        if driver and driver.startswith("file:"):
            synth.setting("audio.file.name", driver[5:])
            self.written_to = driver[5:]
            driver = "file"
        if synth.sfload(str(self.soundfont), update_midi_preset=1) == -1:
            self.close()
            raise UserError(f"SoundFont {self.soundfont}: FluidSynth cannot load it; give another with --soundfont")
        tried = []
        for candidate in ([driver] if driver else self._fallbacks(synth)):
            if candidate == "file" and driver is None:     # nothing else opened: the sound goes to a file
                self.written_to = time.strftime("installation-%Y%m%d-%H%M%S.wav")
                synth.setting("audio.file.name", self.written_to)
            synth.setting("audio.driver", candidate)
            if candidate == "jack":
                synth.setting("audio.jack.autoconnect", 1)  # to the playback ports, or nothing is heard
            self._audio = self._new_driver(fs, synth)
            if self._audio:
                break
            tried.append(candidate)
        if not self._audio:
            used = ", ".join(tried) or driver
            self.close()
            raise UserError(f"--synth: FluidSynth cannot open its audio output (driver {used}); "
                            f"choose another with --audio-driver (e.g. alsa, pulseaudio, jack, "
                            f"or file:out.wav to write the sound to a file)")
        used = synth.get_setting("audio.driver")
        if tried:
            log.warning("--synth: no sound card or audio server answers (%s tried); %s", ", ".join(tried),
                        f"writing the sound to {Path(self.written_to).resolve()} instead (--audio-driver "
                        "chooses another output)" if used == "file" else f"playing through {used}")
        log.info("synth: FluidSynth in this process, SoundFont %s, audio %s%s", self.soundfont, used,
                 f" -> {self.written_to or synth.get_setting('audio.file.name')}" if used == "file" else "")

    @staticmethod
    def _fallbacks(synth) -> list[str]:
        """FluidSynth's default output, then JACK (if a server runs), then a WAV file."""
        first = synth.get_setting("audio.driver") or "alsa"
        return [first] + [d for d in ("jack", "file") if d != first]

    @staticmethod
    def _new_driver(fs, synth):
        # lazy: rtmidi; --help's option checks import this module
        from installation.midi.midi_io import _quiet_stderr
        saved = os.environ.get("JACK_NO_START_SERVER")
        os.environ["JACK_NO_START_SERVER"] = "1"       # look for a JACK server; never start one
        try:
            with _quiet_stderr():                      # libasound/FluidSynth print their own errors on failure
                return fs.new_fluid_audio_driver(synth.settings, synth.synth)
        finally:
            if saved is None:
                os.environ.pop("JACK_NO_START_SERVER", None)
            else:
                os.environ["JACK_NO_START_SERVER"] = saved

    def send(self, msg) -> bool:
        s = self._synth
        if s is None or not msg:
            return False
        status = msg[0]
        if status >= 0xF0:
            return True                       # clock, start/stop: nothing for a synth to play
        kind, ch = status & 0xF0, status & 0x0F
        if kind == 0x90 and msg[2] > 0:
            s.noteon(ch, msg[1], msg[2])
        elif kind in (0x80, 0x90):
            s.noteoff(ch, msg[1])
        elif kind == 0xB0:
            s.cc(ch, msg[1], msg[2])
        elif kind == 0xC0:
            s.program_change(ch, msg[1])
        elif kind == 0xE0:
            s.pitch_bend(ch, (msg[1] | (msg[2] << 7)) - 8192)
        return True

    def all_sound_off(self, channels=range(16)) -> bool:
        for ch in channels:
            self.send((0xB0 | ch, 123, 0))
            self.send((0xB0 | ch, 120, 0))
        return True

    def close(self) -> None:
        if self._audio:
            self._fs.delete_fluid_audio_driver(self._audio)
            self._audio = None
        if self._synth is not None:
            self._synth.delete()
            self._synth = None

    def describe(self) -> str:
        out = f", sound written to {self.written_to}" if self.written_to else ""
        return f"FluidSynth in this process ({self.soundfont.name}{out})"
