"""From emotion to musical controls: valence and arousal in, what the music is asked to play out.

The numbers live in a data file (``emotion_map.toml`` beside the models in
exported_models/, fitted on the labelled music by ``python -m installation.training
export``); ``--emotion-map FILE`` replaces it and a patch may override any of them. The map is continuous: each control is interpolated
bilinearly between its values at the four corners of the valence/arousal square
(the quadrants' means in the labelled music), so valence +0.2 asks for a little
more of what happy music does, not for "Q1".

    density, velocity, pitch (v, a) = bilinear between the corners (v, a in [-1, 1])
    each scene                      draws its targets around those values with the quadrant's own spread
                                      (times ``variety``), so the music varies as much as real music does
    mode                            = major when valence >= threshold (with hysteresis);
                                      the corners' major_share is how often the labelled music is major
    key on a new scene              = kept when the mode stays; on a change of mode, the parallel
                                      (C major -> C minor) or relative (C major -> A minor) key:
                                      a modulation, not a jump

``KeyPlanner`` holds the current key between scenes; it is seeded, so a seeded run
chooses the same keys. ``--key`` pins the tonic (and the mode, if given).
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from installation.mood.controls import Key, Targets
from installation.tomlfile import Checker, load_toml

FILE = "emotion_map.toml"          # beside the models' manifest.json
CORNERS = {"Q1": (1.0, 1.0), "Q2": (-1.0, 1.0), "Q3": (-1.0, -1.0), "Q4": (1.0, -1.0)}
KEY_CHANGES = ("parallel", "relative")


class MapError(ValueError):
    """An emotion map that cannot be used; the message names the key and what is wrong."""


def corner_weights(valence: float, arousal: float) -> dict[str, float]:
    """Bilinear weights of the four corners at (valence, arousal), clipped to the square; they sum to 1."""
    wv = (float(np.clip(valence, -1.0, 1.0)) + 1) / 2     # 0 at the negative side, 1 at the positive
    wa = (float(np.clip(arousal, -1.0, 1.0)) + 1) / 2
    return {"q1": wv * wa, "q2": (1 - wv) * wa, "q3": (1 - wv) * (1 - wa), "q4": wv * (1 - wa)}


@dataclass(frozen=True)
class Corner:
    """What the music of one corner of the valence/arousal square does."""
    density: float          # note-ons per second
    velocity: float         # mean MIDI velocity
    pitch: float            # mean MIDI pitch
    major_share: float      # share of major-key windows (documentation; the mode rule uses valence)
    density_spread: float = 0.0   # SD across that quadrant's music of log2(1 + note-ons per second)
    velocity_spread: float = 0.0  # SD of the mean velocity
    pitch_spread: float = 0.0     # SD of the mean pitch (semitones)


@dataclass(frozen=True)
class EmotionMap:
    q1: Corner
    q2: Corner
    q3: Corner
    q4: Corner
    mode_threshold: float = 0.0     # major when valence >= this
    mode_hysteresis: float = 0.15   # ... and the mode only flips once valence is this far past it
    key_change: str = "parallel"    # "parallel" or "relative": where a change of mode takes the tonic
    contrast: float = 1.0           # scales every control's distance from the centre of the square
    variety: float = 0.5            # each scene draws its targets around the map's value with this share of the
                                    # quadrant's own spread (0: always the mean; 1: as varied as the real music)

    def controls(self, valence: float, arousal: float) -> tuple[float, float, float]:
        """(density, velocity, pitch) asked for at (valence, arousal)."""
        w = corner_weights(valence, arousal)
        out = []
        for f in ("density", "velocity", "pitch"):
            corners = {q: getattr(getattr(self, q), f) for q in w}
            centre = sum(corners.values()) / 4
            value = sum(w[q] * corners[q] for q in w)
            out.append(centre + self.contrast * (value - centre))
        density, velocity, pitch = out
        return max(0.2, density), float(np.clip(velocity, 1, 127)), float(np.clip(pitch, 21, 108))

    def spreads(self, valence: float, arousal: float) -> tuple[float, float, float]:
        """(density in log2(1 + notes/s), velocity, pitch) SDs at (valence, arousal), bilinear like the values."""
        w = corner_weights(valence, arousal)
        return tuple(self.variety * sum(w[q] * getattr(getattr(self, q), f) for q in w)
                     for f in ("density_spread", "velocity_spread", "pitch_spread"))

    def minor(self, valence: float, was_minor: bool | None = None) -> bool:
        """The mode for this valence, with hysteresis around the threshold when the mode was known."""
        if was_minor is None:
            return valence < self.mode_threshold
        if was_minor:
            return not valence >= self.mode_threshold + self.mode_hysteresis
        return valence < self.mode_threshold - self.mode_hysteresis

    # --- reading and overriding ------------------------------------------------------
    @classmethod
    def from_dict(cls, d: dict, where: str) -> "EmotionMap":
        """From a parsed TOML table; every key checked (unknown keys, types, ranges), nothing half-applied."""
        c = Checker(where, MapError)
        d = c.table(d, "", {"corners", "mode", "contrast", "variety"})
        corners = d.get("corners")
        if not isinstance(corners, dict) or set(corners) != set(CORNERS):
            c.fail("corners", "must have exactly the tables Q1, Q2, Q3, Q4")
        mode = c.table(d.get("mode", {}), "mode", {"threshold", "hysteresis", "key_change"})
        return cls(*(_corner(c, corners[q], f"corners.{q}") for q in CORNERS),
                   mode_threshold=c.number(mode, "threshold", "mode", -1, 1, 0.0),
                   mode_hysteresis=c.number(mode, "hysteresis", "mode", 0, 1, 0.15),
                   key_change=c.string(mode, "key_change", "mode", KEY_CHANGES, "parallel"),
                   contrast=c.number(d, "contrast", "", 0, 3, 1.0), variety=c.number(d, "variety", "", 0, 2, 0.5))

    def to_dict(self) -> dict:
        return {"contrast": self.contrast, "variety": self.variety,
                "mode": {"threshold": self.mode_threshold, "hysteresis": self.mode_hysteresis,
                         "key_change": self.key_change},
                "corners": {q: {f.name: getattr(getattr(self, q.lower()), f.name) for f in fields(Corner)}
                            for q in CORNERS}}

    def overridden(self, override: dict | None, where: str) -> "EmotionMap":
        """This map with a patch's partial table laid over it (same keys as the data file)."""
        if not override:
            return self
        merged = _deep_merge(self.to_dict(), override, where)
        return EmotionMap.from_dict(merged, where)


def _corner(c: Checker, t, s: str) -> Corner:
    t = c.table(t, s, {f.name for f in fields(Corner)})
    missing = [n for n in ("density", "velocity", "pitch", "major_share") if n not in t]
    if missing:
        c.fail(s, f"missing {', '.join(missing)}")
    return Corner(density=c.number(t, "density", s, 0.1, 60), velocity=c.number(t, "velocity", s, 1, 127),
                  pitch=c.number(t, "pitch", s, 21, 108), major_share=c.number(t, "major_share", s, 0, 1),
                  density_spread=c.number(t, "density_spread", s, 0, 4, 0.0),
                  velocity_spread=c.number(t, "velocity_spread", s, 0, 64, 0.0),
                  pitch_spread=c.number(t, "pitch_spread", s, 0, 24, 0.0))


def _deep_merge(base: dict, over: dict, where: str) -> dict:
    out = dict(base)
    for k, v in over.items():
        if k not in base:
            raise MapError(f"{where}: unknown key {k!r} (known: {', '.join(sorted(base))})")
        out[k] = _deep_merge(base[k], v, f"{where}.{k}") if isinstance(base[k], dict) and isinstance(v, dict) else v
    return out


def for_models(folder: str | Path) -> EmotionMap:
    """The emotion map fitted with the models in ``folder`` (exported_models/emotion_map.toml)."""
    return load(Path(folder) / FILE)


def load(path: str | Path) -> EmotionMap:
    """The emotion map from a TOML file."""
    return EmotionMap.from_dict(load_toml(path, f"emotion map {path}", MapError), str(path))


# --- keys across scenes -------------------------------------------------------------------

@dataclass(frozen=True)
class Pin:
    """What the user fixed by hand: a tonic and/or a mode (None: free)."""
    tonic: int | None = None
    minor: bool | None = None


class KeyPlanner:
    """The key of the music, scene by scene: the emotion map's mode rule and the key-change rule.

    The first key's tonic is drawn from the seeded RNG (or pinned); afterwards a scene keeps the key
    while the mode stays, and a change of mode moves to the parallel or relative key.
    """

    def __init__(self, emap: EmotionMap, *, pin: Pin = Pin(), seed: int | None = None):
        self.emap, self.pin = emap, pin
        self.rng = np.random.default_rng(seed)
        self.key: Key | None = None

    def update(self, valence: float) -> Key:
        """The key for the scene now, given its valence (call on every scene entry; the key moves only
        when the mode changes)."""
        was = None if self.key is None else self.key.minor
        minor = self.pin.minor if self.pin.minor is not None else self.emap.minor(valence, was)
        if self.key is None:
            tonic = self.pin.tonic if self.pin.tonic is not None else int(self.rng.integers(0, 12))
            self.key = Key(tonic, minor)
        elif minor != self.key.minor:
            k = self.key.parallel() if (self.emap.key_change == "parallel" or self.pin.tonic is not None) \
                else self.key.relative()
            self.key = k
        return self.key




def plan(emap: EmotionMap, keys: KeyPlanner, valence: float, arousal: float, deviation=(0.0, 0.0, 0.0)) -> Targets:
    """Control targets for an emotion: the key from the planner, the rest from the map, moved by
    ``deviation`` (standard normal draws, one per control, kept for a scene) times the map's spreads."""
    density, velocity, pitch = emap.controls(valence, arousal)
    sd, sv, sp = emap.spreads(valence, arousal)
    zd, zv, zp = deviation
    density = max(0.2, 2.0 ** (np.log2(1.0 + density) + zd * sd) - 1.0)
    velocity = float(np.clip(velocity + zv * sv, 1, 127))
    pitch = float(np.clip(pitch + zp * sp, 21, 108))
    return Targets(key=keys.update(valence), density=density, velocity=velocity, pitch=pitch,
                   valence=float(np.clip(valence, -1, 1)), arousal=float(np.clip(arousal, -1, 1)))
