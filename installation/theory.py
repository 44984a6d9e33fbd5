"""Music theory that every layer shares (mood/ asks for keys, music/ estimates them): pitch names and their
spelling in a key, the chord qualities, and the Krumhansl-Kessler key profiles. The ground floor: it imports nothing of the project."""
from __future__ import annotations

import numpy as np

# Krumhansl-Kessler key profiles (major, minor), tonic first.
MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
PITCH_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")

# the chord qualities every chord reader uses (the recogniser of notes in music/chords.py, the harmony plan and
# the live chord in mood/harmony.py): intervals above the root, and the suffix of the chord's name
CHORD_QUALITIES: dict[str, tuple[tuple[int, ...], str]] = {
    "maj": ((0, 4, 7), ""),
    "min": ((0, 3, 7), "m"),
    "dim": ((0, 3, 6), "dim"),
    "aug": ((0, 4, 8), "aug"),
    "sus2": ((0, 2, 7), "sus2"),
    "sus4": ((0, 5, 7), "sus4"),
    "7": ((0, 4, 7, 10), "7"),
    "maj7": ((0, 4, 7, 11), "maj7"),
    "min7": ((0, 3, 7, 10), "m7"),
    "hdim7": ((0, 3, 6, 10), "m7b5"),
    "dim7": ((0, 3, 6, 9), "dim7"),
}

_LETTERS = "CDEFGAB"
_NATURAL = (0, 2, 4, 5, 7, 9, 11)
# a root degree above the tonic (0-11) as a step of the scale and its alteration, as the Roman numerals
# I bII II bIII III IV #IV V bVI VI bVII VII write it (in minor, bIII, bVI and bVII are the scale's own)
_DEGREE_STEP = (0, 1, 1, 2, 2, 3, 3, 4, 5, 5, 6, 6)
_MAJOR_TONICS = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")     # the fewer accidentals
_MINOR_TONICS = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "G#", "A", "Bb", "B")


def pitch_class(name: str) -> int:
    """'C' -> 0, 'F#' -> 6, 'Bb' -> 10, 'Cb' -> 11 (a letter and any sharps or flats); ValueError otherwise."""
    if not name or name[0] not in _LETTERS or any(c not in "#b" for c in name[1:]):
        raise ValueError(f"not a pitch name: {name!r}")
    return (_NATURAL[_LETTERS.index(name[0])] + name.count("#") - name.count("b")) % 12


def spell(pc: int, key: tuple[int, bool] | None = None) -> str:
    """A pitch class's name, spelt in ``key`` (tonic pitch class, minor) when one is given: G# in E major, Ab in
    C minor, Bb (bVII) in C major. Where the key's spelling would need a double sharp or flat, the plain name."""
    pc %= 12
    if key is None:
        return PITCH_NAMES[pc]
    tonic, minor = int(key[0]) % 12, bool(key[1])
    tonic_name = (_MINOR_TONICS if minor else _MAJOR_TONICS)[tonic]
    letter = (_LETTERS.index(tonic_name[0]) + _DEGREE_STEP[(pc - tonic) % 12]) % 7
    alter = (pc - _NATURAL[letter] + 6) % 12 - 6
    if abs(alter) > 1:
        return PITCH_NAMES[pc]
    return _LETTERS[letter] + ("#" if alter > 0 else "b" if alter < 0 else "")
