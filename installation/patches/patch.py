"""A patch: a TOML file that says how the generated performance reaches the instruments.

``load_patch(name_or_path)`` finds the file (a name in the top-level ``patches/``
folder, or a path), checks every key, and returns a frozen ``Patch``. Anything
wrong (an unknown key, a wrong type, a value out of range) raises ``UserError``
with one line naming the file, the key and what is wrong, before anything has
started, so no setting is ever half-applied.

Numbers are as a musician reads them: MIDI channels 1-16, programs 1-128
(General MIDI numbering: 1 is Acoustic Grand Piano), notes 0-127 (60 = middle C).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from installation.errors import UserError
from installation.tomlfile import Checker, load_toml, typename

# A checkout's top-level patches/; an installed package has them beside its modules (pyproject.toml).
_INSTALLED = Path(__file__).resolve().parents[1] / "bundled_patches"
PATCH_DIR = _INSTALLED if _INSTALLED.is_dir() else Path(__file__).resolve().parents[2] / "patches"
DEFAULT_PATCH = "gm-piano"

NOTE_NAMES = {"C": 0, "C#": 1, "DB": 1, "D": 2, "D#": 3, "EB": 3, "E": 4, "F": 5, "F#": 6, "GB": 6, "G": 7,
              "G#": 8, "AB": 8, "A": 9, "A#": 10, "BB": 10, "B": 11}
SCALES = {
    "chromatic": (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11),
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "harmonic-minor": (0, 2, 3, 5, 7, 8, 11),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "phrygian": (0, 1, 3, 5, 7, 8, 10),
    "lydian": (0, 2, 4, 6, 7, 9, 11),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "pentatonic": (0, 2, 4, 7, 9),
    "minor-pentatonic": (0, 3, 5, 7, 10),
    "blues": (0, 3, 5, 6, 7, 10),
    "whole-tone": (0, 2, 4, 6, 8, 10),
}
CC_SOURCES = ("valence", "arousal", "scene")


# --- the dataclasses -------------------------------------------------------------------

@dataclass(frozen=True)
class Shaping:
    """Musical shaping of the whole performance, before it is split into layers."""
    transpose: int = 0                        # semitones
    pitch_range: tuple[int, int] = (0, 127)   # lowest, highest note
    out_of_range: str = "fold"                # "fold" (by octaves into the range) or "drop"
    scale: str | None = None                  # e.g. "D minor", "C pentatonic"; None: no constraint
    off_scale: str = "snap"                   # "snap" (to the nearest scale note, down on a tie) or "drop"
    velocity_curve: float = 1.0               # exponent: > 1 softer, < 1 louder (velocity/127 ** curve)
    velocity_range: tuple[int, int] = (1, 127)
    max_polyphony: int = 0                    # notes at once (0: no limit); beyond it the oldest is released
    mono: bool = False                        # one note at a time, last-note priority
    max_notes_per_second: float = 0.0         # density limit on note-ons (0: no limit); extra notes are dropped
    tempo_scale: float = 1.0                  # multiplies --tempo-scale: 2 plays at half speed

    @property
    def scale_pitch_classes(self) -> frozenset[int] | None:
        if self.scale is None:
            return None
        root, mode = _parse_scale(self.scale)
        return frozenset((root + i) % 12 for i in SCALES[mode])


@dataclass(frozen=True)
class Layer:
    """One destination of the performance: a channel, a program, and which notes go there."""
    channel: int = 1                          # 1-16
    program: int | None = None                # 1-128, sent at start; None: none sent
    bank: int | None = None                   # 0-16383 (CC0/CC32 before the program change)
    voices: str = "all"                       # "all", "lowest" or "highest" (at each note-on)
    transpose: int = 0
    pitch_range: tuple[int, int] = (0, 127)
    out_of_range: str = "fold"
    velocity_scale: float = 1.0
    max_polyphony: int = 0
    mono: bool = False


@dataclass(frozen=True)
class ControlChange:
    """Valence, arousal or scene changes as a MIDI CC."""
    source: str = "arousal"                   # "valence", "arousal" or "scene"
    number: int = 1                           # CC number 0-119
    channel: int = 1                          # 1-16
    range: tuple[int, int] = (0, 127)         # value at the low end (-1) and the high end (+1); may be reversed
    smoothing_s: float = 1.0                  # one-pole time constant (valence/arousal)
    pulse_s: float = 0.1                      # scene: 127 at the change, back to 0 after this


@dataclass(frozen=True)
class Controls:
    """How emotion-as-CC is sent."""
    rate_hz: float = 30.0                     # at most this many values a second per CC (sent only on change)
    cc: tuple[ControlChange, ...] = ()


@dataclass(frozen=True)
class Osc:
    """OSC output (python-osc, UDP) of the emotion values and of every note."""
    host: str = "127.0.0.1"
    port: int = 9000
    prefix: str = "/itm"
    notes: bool = True                        # /itm/note pitch velocity, when it sounds (velocity 0: off)
    values: bool = True                       # /itm/valence, /itm/arousal (floats -1..1), /itm/scene id label
    chords: bool = True                       # /itm/chord name root pcs..., when the harmony's chord changes
    rate_hz: float = 30.0


@dataclass(frozen=True)
class Input:
    """Live steering: knobs (MIDI CC in) or OSC messages set valence and arousal."""
    midi_port: str | None = None              # a MIDI output port to read from (substring), e.g. a controller
    channel: int = 0                          # 1-16, or 0 for any
    valence_cc: int | None = None
    arousal_cc: int | None = None
    osc_port: int | None = None               # listen for /itm/input/valence and /itm/input/arousal (floats -1..1)
    osc_bind: str = "127.0.0.1"               # the address the OSC input listens on; "0.0.0.0": every network
    weight: float = 1.0                       # 1: the hand decides; 0.5: half hand, half picture
    chord_port: str | None = None             # a MIDI output port (substring) whose held notes become the harmony
    chord_channel: int = 0                    # 1-16, or 0 for any
    chord_release_s: float = 0.3              # the held chord lasts this long after the last key is up


@dataclass(frozen=True)
class ChordLayer:
    """The harmony plan's chords played on a channel of their own: a pad (the chord) or a bass (its root)."""
    channel: int = 2                          # 1-16
    style: str = "pad"                        # "pad" or "bass"
    velocity: int = 60                        # 1-127
    octave: int | None = None                 # the octave the notes sound in (4: from middle C); None: 4 pad, 2 bass
    program: int | None = None                # 1-128, sent at start; None: none sent

    @property
    def base(self) -> int:
        """The lowest note the layer plays (C of its octave)."""
        return 12 * ((self.octave if self.octave is not None else 4 if self.style == "pad" else 2) + 1)


@dataclass(frozen=True)
class Clock:
    """MIDI clock: out (24 ppqn, start/stop/continue), or following an incoming clock."""
    send: bool = False
    min_bpm: float = 100.0                    # tempo at arousal -1
    max_bpm: float = 100.0                    # tempo at arousal +1 (equal to min_bpm: a fixed tempo)
    smoothing_s: float = 2.0
    follow_port: str | None = None            # follow the MIDI clock from this port (the DAW is master)
    reference_bpm: float = 120.0              # incoming tempo at which the performance plays at its own speed
    link: bool = False                        # Ableton Link (needs the optional aalink package)


@dataclass(frozen=True)
class Output:
    port: str | None = None                   # default MIDI port (substring); --port overrides
    virtual_port: str | None = None
    volume: str = "cc7"                       # the staff console's volume: "cc7" (MIDI volume) or "velocity"
                                              # (note-on velocities scaled, for a synth that ignores CC 7)
    pedal: bool = True                        # send the performance's sustain pedal; false: drop it
    pedal_cc: int = 64                        # the controller it goes out on: 64 sustain, or another switch 65-69


@dataclass(frozen=True)
class Patch:
    """A whole patch, as loaded and checked."""
    name: str
    path: Path | None = None
    description: str = ""
    output: Output = field(default_factory=Output)
    shaping: Shaping = field(default_factory=Shaping)
    layers: tuple[Layer, ...] = (Layer(),)
    controls: Controls = field(default_factory=Controls)
    osc: Osc | None = None
    input: Input | None = None
    clock: Clock = field(default_factory=Clock)
    chord_layer: ChordLayer | None = None     # [chord_layer]: the harmony on its own channel
    synth: dict | None = None                 # [synth] soundfont/gain for --synth and render --audio
    emotion_map: dict | None = None           # override of emotion -> musical controls; read by installation.mood.emotion_map

    @property
    def channels(self) -> tuple[int, ...]:
        """0-based channels the notes go to."""
        return tuple(sorted({la.channel - 1 for la in self.layers}))


# --- loading ---------------------------------------------------------------------------

def find_patch(name_or_path: str | Path) -> Path:
    """The file a --patch value names: an existing path, else patches/NAME.toml."""
    p = Path(name_or_path)
    if p.suffix == ".toml" or p.is_file() or len(p.parts) > 1:
        if p.is_file():
            return p
        raise UserError(f"--patch {name_or_path}: no such file")
    cand = PATCH_DIR / f"{name_or_path}.toml"
    if cand.is_file():
        return cand
    known = ", ".join(available_patches()) or "(none)"
    raise UserError(f"--patch {name_or_path}: no patch of that name; the patches are: {known} (or give a path to a .toml)")


def available_patches() -> list[str]:
    return sorted(p.stem for p in PATCH_DIR.glob("*.toml"))


def load_patch(name_or_path: str | Path | None = None) -> Patch:
    """Load and check a patch by name (in patches/) or path; None: the default (General MIDI piano)."""
    path = find_patch(DEFAULT_PATCH if name_or_path is None else name_or_path)
    return parse_patch(load_toml(path, f"patch {path}"), path=path)


def parse_patch(data: dict, path: Path | None = None, name: str | None = None) -> Patch:
    """Check a patch already read from TOML; raises UserError naming the key."""
    where = f"patch {path}" if path is not None else "patch"
    c = Checker(where)
    top = c.table(data, "", {"name", "description", "output", "shaping", "layer", "controls", "cc", "osc",
                             "input", "clock", "synth", "emotion_map", "chord_layer"})
    layers_raw = top.get("layer", [{}])
    if not isinstance(layers_raw, list) or not all(isinstance(x, dict) for x in layers_raw):
        c.fail("layer", "must be an array of tables ([[layer]])")
    cc_raw = top.get("cc", [])
    if not isinstance(cc_raw, list) or not all(isinstance(x, dict) for x in cc_raw):
        c.fail("cc", "must be an array of tables ([[cc]])")
    layers = tuple(_layer(c, t, f"layer[{i + 1}]") for i, t in enumerate(layers_raw))
    ccs = tuple(_cc(c, t, f"cc[{i + 1}]") for i, t in enumerate(cc_raw))
    controls_t = c.table(top.get("controls", {}), "controls", {"rate_hz"})
    synth = top.get("synth")
    if synth is not None:
        synth = c.table(synth, "synth", {"soundfont", "gain"})
        if "soundfont" in synth:
            c.string(synth, "soundfont", "synth")
        if "gain" in synth:
            c.number(synth, "gain", "synth", 0.0, 10.0)
    emotion_map = top.get("emotion_map")
    if emotion_map is not None and not isinstance(emotion_map, dict):
        c.fail("emotion_map", f"must be a table, not {typename(emotion_map)}")
    patch = Patch(
        name=name or (c.string(top, "name", "") if "name" in top else (path.stem if path else "patch")),
        path=path,
        description=c.string(top, "description", "") if "description" in top else "",
        output=_output(c, top.get("output", {})),
        shaping=_shaping(c, top.get("shaping", {})),
        layers=layers,
        controls=Controls(rate_hz=c.number(controls_t, "rate_hz", "controls", 1, 1000, default=30.0), cc=ccs),
        osc=_osc(c, top["osc"]) if "osc" in top else None,
        input=_input(c, top["input"]) if "input" in top else None,
        clock=_clock(c, top.get("clock", {})),
        chord_layer=_chord_layer(c, top["chord_layer"]) if "chord_layer" in top else None,
        synth=synth,
        emotion_map=emotion_map,
    )
    return patch


def _parse_scale(s: str) -> tuple[int, str]:
    parts = s.replace("_", "-").split()
    if len(parts) != 2:
        raise ValueError
    root, mode = parts[0].upper(), parts[1].lower()
    if root not in NOTE_NAMES or mode not in SCALES:
        raise ValueError
    return NOTE_NAMES[root], mode


def _output(c: Checker, t) -> Output:
    t = c.table(t, "output", {"port", "virtual_port", "volume", "pedal", "pedal_cc"})
    return Output(port=c.string(t, "port", "output"), virtual_port=c.string(t, "virtual_port", "output"),
                  volume=c.string(t, "volume", "output", choices=("cc7", "velocity"), default="cc7"),
                  pedal=c.boolean(t, "pedal", "output", True), pedal_cc=c.integer(t, "pedal_cc", "output", 64, 69, 64))


def _shaping(c: Checker, t) -> Shaping:
    s = "shaping"
    t = c.table(t, s, {"transpose", "pitch_range", "out_of_range", "scale", "off_scale", "velocity_curve",
                       "velocity_range", "max_polyphony", "mono", "max_notes_per_second", "tempo_scale"})
    scale = c.string(t, "scale", s)
    if scale is not None:
        try:
            _parse_scale(scale)
        except ValueError:
            c.fail(f"{s}.scale", f"{scale!r} is not 'ROOT MODE' (ROOT: C, C#, Db ... B; MODE: {', '.join(SCALES)})")
    return Shaping(
        transpose=c.integer(t, "transpose", s, -48, 48, 0),
        pitch_range=c.pair(t, "pitch_range", s, 0, 127, (0, 127)),
        out_of_range=c.string(t, "out_of_range", s, ("fold", "drop"), "fold"),
        scale=scale,
        off_scale=c.string(t, "off_scale", s, ("snap", "drop"), "snap"),
        velocity_curve=c.number(t, "velocity_curve", s, 0.1, 10.0, 1.0),
        velocity_range=c.pair(t, "velocity_range", s, 1, 127, (1, 127)),
        max_polyphony=c.integer(t, "max_polyphony", s, 0, 128, 0),
        mono=c.boolean(t, "mono", s, False),
        max_notes_per_second=c.number(t, "max_notes_per_second", s, 0.0, 1000.0, 0.0),
        tempo_scale=c.number(t, "tempo_scale", s, 0.1, 10.0, 1.0),
    )


def _layer(c: Checker, t, s: str) -> Layer:
    t = c.table(t, s, {"channel", "program", "bank", "voices", "transpose", "pitch_range", "out_of_range",
                       "velocity_scale", "max_polyphony", "mono"})
    return Layer(
        channel=c.integer(t, "channel", s, 1, 16, 1),
        program=c.integer(t, "program", s, 1, 128, None),
        bank=c.integer(t, "bank", s, 0, 16383, None),
        voices=c.string(t, "voices", s, ("all", "lowest", "highest"), "all"),
        transpose=c.integer(t, "transpose", s, -48, 48, 0),
        pitch_range=c.pair(t, "pitch_range", s, 0, 127, (0, 127)),
        out_of_range=c.string(t, "out_of_range", s, ("fold", "drop"), "fold"),
        velocity_scale=c.number(t, "velocity_scale", s, 0.0, 4.0, 1.0),
        max_polyphony=c.integer(t, "max_polyphony", s, 0, 128, 0),
        mono=c.boolean(t, "mono", s, False),
    )


def _cc(c: Checker, t, s: str) -> ControlChange:
    t = c.table(t, s, {"source", "number", "channel", "range", "smoothing_s", "pulse_s"})
    if "source" not in t:
        c.fail(f"{s}.source", f"missing: say which value to send ({', '.join(CC_SOURCES)})")
    if "number" not in t:
        c.fail(f"{s}.number", "missing: the CC number to send on (0-119)")
    return ControlChange(
        source=c.string(t, "source", s, CC_SOURCES),
        number=c.integer(t, "number", s, 0, 119),
        channel=c.integer(t, "channel", s, 1, 16, 1),
        range=c.pair(t, "range", s, 0, 127, (0, 127), ordered=False),
        smoothing_s=c.number(t, "smoothing_s", s, 0.0, 60.0, 1.0),
        pulse_s=c.number(t, "pulse_s", s, 0.0, 10.0, 0.1, lo_open=True),
    )


def _osc(c: Checker, t) -> Osc:
    s = "osc"
    t = c.table(t, s, {"host", "port", "prefix", "notes", "values", "chords", "rate_hz"})
    prefix = c.string(t, "prefix", s, default="/itm")
    if not prefix.startswith("/") or " " in prefix:
        c.fail("osc.prefix", f"{prefix!r} must start with '/' and have no spaces")
    return Osc(host=c.string(t, "host", s, default="127.0.0.1"), port=c.integer(t, "port", s, 1, 65535, 9000),
               prefix=prefix.rstrip("/") or "/itm", notes=c.boolean(t, "notes", s, True),
               values=c.boolean(t, "values", s, True), chords=c.boolean(t, "chords", s, True), rate_hz=c.number(t, "rate_hz", s, 1, 1000, 30.0))


def _input(c: Checker, t) -> Input:
    s = "input"
    t = c.table(t, s, {"midi_port", "channel", "valence_cc", "arousal_cc", "osc_port", "osc_bind", "weight",
                       "chord_port", "chord_channel", "chord_release_s"})
    inp = Input(midi_port=c.string(t, "midi_port", s), channel=c.integer(t, "channel", s, 0, 16, 0),
                valence_cc=c.integer(t, "valence_cc", s, 0, 127), arousal_cc=c.integer(t, "arousal_cc", s, 0, 127),
                osc_port=c.integer(t, "osc_port", s, 1, 65535), osc_bind=c.string(t, "osc_bind", s, default="127.0.0.1"),
                weight=c.number(t, "weight", s, 0.0, 1.0, 1.0), chord_port=c.string(t, "chord_port", s),
                chord_channel=c.integer(t, "chord_channel", s, 0, 16, 0),
                chord_release_s=c.number(t, "chord_release_s", s, 0.0, 10.0, 0.3))
    import ipaddress
    try:
        ipaddress.ip_address(inp.osc_bind)
    except ValueError:
        c.fail("input.osc_bind", f"{inp.osc_bind!r} is not an IP address (e.g. 127.0.0.1, or 0.0.0.0 for every network)")
    if inp.midi_port is not None and inp.valence_cc is None and inp.arousal_cc is None:
        c.fail("input.midi_port", "is set but neither valence_cc nor arousal_cc says which knob to read")
    if inp.midi_port is None and inp.osc_port is None and inp.chord_port is None:
        c.fail("input", "needs midi_port (with valence_cc/arousal_cc), osc_port or chord_port")
    return inp


def _chord_layer(c: Checker, t) -> ChordLayer:
    s = "chord_layer"
    t = c.table(t, s, {"channel", "style", "velocity", "octave", "program"})
    return ChordLayer(channel=c.integer(t, "channel", s, 1, 16, 2), style=c.string(t, "style", s, ("pad", "bass"), "pad"),
                      velocity=c.integer(t, "velocity", s, 1, 127, 60), octave=c.integer(t, "octave", s, 0, 8, None),
                      program=c.integer(t, "program", s, 1, 128, None))


def _clock(c: Checker, t) -> Clock:
    s = "clock"
    t = c.table(t, s, {"send", "min_bpm", "max_bpm", "smoothing_s", "follow_port", "reference_bpm", "link"})
    lo = c.number(t, "min_bpm", s, 20, 300, 100.0)
    hi = c.number(t, "max_bpm", s, 20, 300, lo)
    if hi < lo:
        c.fail("clock.max_bpm", f"{hi:g} is below clock.min_bpm {lo:g}")
    return Clock(send=c.boolean(t, "send", s, False), min_bpm=lo, max_bpm=hi,
                 smoothing_s=c.number(t, "smoothing_s", s, 0.0, 60.0, 2.0),
                 follow_port=c.string(t, "follow_port", s),
                 reference_bpm=c.number(t, "reference_bpm", s, 20, 300, 120.0),
                 link=c.boolean(t, "link", s, False))
