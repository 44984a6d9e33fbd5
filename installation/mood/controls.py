"""Musical controls: what the decoder is asked to play, as one vector fed at every step.

The controls are measured from the music itself (Performance RNN's lesson), so
every training window carries true ones, the unlabelled music's too. At run
time the user, or the emotion map, sets them; the model follows them because
in training they were always true. Any group can be left unset ("any"): the
model saw that in training too (control dropout), and then plays freely.

    group      dims  value (measured over a training window)                 unset
    key        14    12-bin pitch-class histogram of note-ons (sums to 1),   all 0, flag 1
                     then [major, minor] from Krumhansl-Schmuckler on it
    density     1    log2(1 + note-ons per second) / 4                       0, flag 1
    loudness    1    (mean note-on velocity - 64) / 32                       0, flag 1
    register    1    (mean note-on pitch - 64) / 12                          0, flag 1
    emotion     2    valence, arousal in [-1, 1] (labelled music only)       0, flag 1
    flags       5    one "unset" flag per group, in the order above
    chord      13    the chord in force at this step: 12 binary pitch classes, all 0 and flag 1 when
                     unset (per step, not per window: measured from the notes by
                     installation/music/chords.py; at run time the harmony plan's chord)
    ------------------------------------------------------------------------------
    total      37

The first 24 dims (WINDOW_DIM) are the same for a whole window; the chord group
changes from step to step and goes to the model at every step beside the event.

Transposition moves the histogram with the notes (it is measured after
augmentation). At run time a key is asked for by a *template* histogram: the
mean histogram of the training windows in that mode, rotated to the tonic
(the templates ship in the manifest, so the model hears what it was taught).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from installation import vocabulary as V
from installation.theory import MAJOR_PROFILE, MINOR_PROFILE, PITCH_NAMES

GROUPS = ("key", "density", "loudness", "register", "emotion")
KEY, DENSITY, LOUDNESS, REGISTER, EMOTION = 0, 14, 15, 16, 17       # first index of each group's values
FLAGS = 19                                                          # first unset flag
WINDOW_DIM = 24                # the per-window groups above (the Transformer as shipped takes only these)
CHORD = 24                     # 12 binary pitch classes of the chord in force, then its unset flag
CHORD_FLAG = CHORD + 12
CONTROL_DIM = 37
MIN_KEY_NOTES = 8              # fewer note-ons in a window: its key is unset (too few to tell)

# the mode profiles, centred, for a vectorised Krumhansl-Schmuckler over many histograms
_PROFILES = np.stack([np.roll(p, t) for p in (MAJOR_PROFILE, MINOR_PROFILE) for t in range(12)])   # (24, 12)
_PROFILES = _PROFILES - _PROFILES.mean(1, keepdims=True)
_PROFILES /= np.linalg.norm(_PROFILES, axis=1, keepdims=True)


# --- encoding of single values (shared by measuring and asking) ------------------------

def density_code(onsets_per_s):
    return np.log2(1.0 + np.asarray(onsets_per_s, np.float64)) / 4.0


def density_value(code):
    return float(2.0 ** (4.0 * float(code)) - 1.0)


def loudness_code(velocity):
    return (np.asarray(velocity, np.float64) - 64.0) / 32.0


def register_code(pitch):
    return (np.asarray(pitch, np.float64) - 64.0) / 12.0


def chord_code(pcs) -> np.ndarray:
    """Pitch classes of a chord (any iterable of ints, None or empty: unset) -> (13,) float32."""
    c = np.zeros(13, np.float32)
    pcs = [int(p) % 12 for p in (pcs or ())]
    if pcs:
        c[pcs] = 1.0
    else:
        c[12] = 1.0
    return c


def chord_codes_of_masks(masks: np.ndarray) -> np.ndarray:
    """12-bit pitch-class masks (any shape, 0: no chord) -> (..., 13) float32 chord codes."""
    m = np.asarray(masks, np.int64)
    bits = ((m[..., None] >> np.arange(12)) & 1).astype(np.float32)
    return np.concatenate([bits, (m == 0)[..., None].astype(np.float32)], axis=-1)


def rotate_masks(masks: np.ndarray, k: int) -> np.ndarray:
    """Transpose 12-bit pitch-class masks by k semitones."""
    m = np.asarray(masks, np.int64)
    k %= 12
    return ((m << k) | (m >> (12 - k))) & 0xFFF if k else m


def key_of_histograms(h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Krumhansl-Schmuckler on histograms (N, 12): (tonic (N,), minor (N,) bool)."""
    hc = h - h.mean(1, keepdims=True)
    norm = np.linalg.norm(hc, axis=1, keepdims=True)
    r = (hc / np.where(norm > 0, norm, 1.0)) @ _PROFILES.T                   # (N, 24) correlations
    best = r.argmax(1)
    return best % 12, best >= 12


def own_controls(controls: np.ndarray, dim: int) -> np.ndarray:
    """(N, K) or (K,) controls -> (N, dim) float32: a decoder's own first ``dim`` of them (K >= dim; a decoder
    exported with fewer controls, as the Transformer with the WINDOW_DIM window groups, takes the first ones)."""
    c = np.asarray(controls, np.float32)
    c = c.reshape(1, -1) if c.ndim == 1 else c
    return np.ascontiguousarray(c[:, :dim]) if c.shape[1] != dim else c


# --- measuring: controls of training windows ------------------------------------------

def measure(windows: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """The true controls of event windows (B, T) int: (B, CONTROL_DIM) float32, emotion unset.

    ``valid`` (B, T) bool marks real events (padding is False). Note-ons before the
    window's first velocity event count for the histogram and register but not loudness.
    """
    w = np.asarray(windows, np.int64)
    B, T = w.shape
    valid = np.ones_like(w, bool) if valid is None else valid
    on = (w < V.NOTE_OFF) & valid
    shift = (w >= V.TIME_SHIFT) & (w < V.TIME_SHIFT + V.NUM_TIME_SHIFTS) & valid
    seconds = np.where(shift, w - V.TIME_SHIFT + 1, 0).sum(1) / V.STEPS_PER_SECOND
    n_on = on.sum(1)
    out = np.zeros((B, CONTROL_DIM), np.float32)

    # key: pitch-class histogram of note-ons, and its mode
    pc = np.where(on, w % 12, 12)
    hist = np.stack([np.bincount(row, minlength=13)[:12] for row in pc]).astype(np.float64)
    has_key = n_on >= MIN_KEY_NOTES
    hist = hist / np.maximum(hist.sum(1, keepdims=True), 1)
    _, minor = key_of_histograms(hist)
    out[:, KEY:KEY + 12] = np.where(has_key[:, None], hist, 0)
    out[:, KEY + 12] = has_key & ~minor
    out[:, KEY + 13] = has_key & minor

    # density: note-ons per second (a window under a second of music says little: unset)
    has_density = seconds >= 1.0
    out[:, DENSITY] = np.where(has_density, density_code(n_on / np.maximum(seconds, 1e-9)), 0)

    # loudness: the velocity in force at each note-on (forward-filled velocity events)
    is_vel = (w >= V.VELOCITY) & (w < V.VELOCITY + V.NUM_VELOCITY_BINS) & valid
    pos = np.where(is_vel, np.arange(T)[None, :], -1)
    last = np.maximum.accumulate(pos, axis=1)
    vbin = np.take_along_axis(w, np.maximum(last, 0), 1) - V.VELOCITY
    known = on & (last >= 0)
    n_known = known.sum(1)
    vel = np.where(known, np.minimum(127, 4 * vbin + 3), 0).sum(1) / np.maximum(n_known, 1)
    has_loud = n_known >= 1
    out[:, LOUDNESS] = np.where(has_loud, loudness_code(vel), 0)

    # register: mean note-on pitch
    has_reg = n_on >= 1
    out[:, REGISTER] = np.where(has_reg, register_code(np.where(on, w, 0).sum(1) / np.maximum(n_on, 1)), 0)

    out[:, FLAGS + 0] = ~has_key
    out[:, FLAGS + 1] = ~has_density
    out[:, FLAGS + 2] = ~has_loud
    out[:, FLAGS + 3] = ~has_reg
    out[:, FLAGS + 4] = 1.0                      # emotion: set by the caller for labelled music
    out[:, CHORD_FLAG] = 1.0                     # chord: per step, set by the caller
    return out


def set_emotion(controls: np.ndarray, valence_arousal: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Write valence/arousal (B, 2) into the rows where ``known`` (B,) is True."""
    c = controls.copy()
    c[known, EMOTION:EMOTION + 2] = valence_arousal[known]
    c[known, FLAGS + 4] = 0.0
    return c


def drop(controls: np.ndarray, rng: np.random.Generator, p_group: float, p_all: float) -> np.ndarray:
    """Control dropout: unset each group with probability p_group, or every group with p_all."""
    c = controls.copy()
    B = len(c)
    gone = rng.random((B, len(GROUPS))) < p_group
    gone |= (rng.random(B) < p_all)[:, None]
    spans = ((KEY, 14), (DENSITY, 1), (LOUDNESS, 1), (REGISTER, 1), (EMOTION, 2))
    for g, (a, n) in enumerate(spans):
        c[gone[:, g], a:a + n] = 0.0
        c[gone[:, g], FLAGS + g] = 1.0
    return c


# --- asking: targets -> a control vector ------------------------------------------------

@dataclass(frozen=True)
class Key:
    """A key: tonic 0..11 (C = 0) and mode."""
    tonic: int
    minor: bool

    def __str__(self) -> str:
        return f"{PITCH_NAMES[self.tonic]} {'minor' if self.minor else 'major'}"

    def relative(self) -> "Key":
        """C major <-> A minor: the same notes, the other mode."""
        return Key((self.tonic + (3 if self.minor else 9)) % 12, not self.minor)

    def parallel(self) -> "Key":
        """C major <-> C minor: the same tonic, the other mode."""
        return Key(self.tonic, not self.minor)


_NAMES = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


def parse_key(text: str) -> tuple[int, bool | None]:
    """'D' -> (2, None: any mode); 'F# minor', 'Bb major', 'c#m', 'Am' -> (tonic, minor?).

    Raises ValueError with what is accepted."""
    m = re.fullmatch(r"\s*([A-Ga-g])\s*([#b♯♭]?)\s*(major|minor|maj|min|m|M)?\s*", text or "")
    if not m:
        raise ValueError(f"--key {text!r}: not a key; use a note name and an optional mode, e.g. D, F# minor, Bb major")
    tonic = (_NAMES[m.group(1).upper()] + {"#": 1, "♯": 1, "b": -1, "♭": -1}.get(m.group(2), 0)) % 12
    mode = m.group(3)
    if mode is None:
        return tonic, None
    return tonic, mode in ("minor", "min", "m")


@dataclass(frozen=True)
class Targets:
    """What the music is asked for; None leaves a group unset ("any")."""
    key: Key | None = None
    density: float | None = None        # note-ons per second
    velocity: float | None = None       # mean MIDI velocity
    pitch: float | None = None          # mean MIDI pitch (register)
    valence: float | None = None        # with arousal: the emotion group
    arousal: float | None = None
    chord: frozenset | None = None      # pitch classes of the chord in force (usually written per step instead)

    def describe(self) -> str:
        """e.g. 'A minor, 6.1 notes/s, velocity 58, pitch 62'."""
        parts = [str(self.key) if self.key else "any key"]
        if self.density is not None:
            parts.append(f"{self.density:.1f} notes/s")
        if self.velocity is not None:
            parts.append(f"velocity {self.velocity:.0f}")
        if self.pitch is not None:
            parts.append(f"pitch {self.pitch:.0f}")
        return ", ".join(parts)


def default_templates() -> np.ndarray:
    """Key templates (2, 12), major and minor on C, when a manifest has none: the key profiles."""
    t = np.stack([MAJOR_PROFILE, MINOR_PROFILE])
    return t / t.sum(1, keepdims=True)


def encode(t: Targets, templates: np.ndarray | None = None) -> np.ndarray:
    """Targets -> (CONTROL_DIM,) float32. ``templates`` (2, 12): the mean major/minor histogram on C."""
    templates = default_templates() if templates is None else np.asarray(templates, np.float64)
    c = np.zeros(CONTROL_DIM, np.float32)
    if t.key is not None:
        c[KEY:KEY + 12] = np.roll(templates[int(t.key.minor)], t.key.tonic)
        c[KEY + 12 + int(t.key.minor)] = 1.0
    else:
        c[FLAGS + 0] = 1.0
    for value, at, flag, code in ((t.density, DENSITY, 1, density_code), (t.velocity, LOUDNESS, 2, loudness_code),
                                  (t.pitch, REGISTER, 3, register_code)):
        if value is None:
            c[FLAGS + flag] = 1.0
        else:
            c[at] = float(code(value))
    if t.valence is None or t.arousal is None:
        c[FLAGS + 4] = 1.0
    else:
        c[EMOTION] = float(np.clip(t.valence, -1, 1))
        c[EMOTION + 1] = float(np.clip(t.arousal, -1, 1))
    c[CHORD:CHORD + 13] = chord_code(t.chord)
    return c


def unset() -> np.ndarray:
    """Every group unset: the model plays freely."""
    return encode(Targets())
