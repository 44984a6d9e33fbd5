"""The chord recogniser (installation/music/chords.py) on notes whose chords are known, and POP909's labels."""
import numpy as np
import pytest

from installation.music import chords as K
from installation.music import events as E
from installation.music.events import Note


def _block(pcs, start, end, octave=60):
    return [Note(octave + p if p >= 0 else octave + 12 + p, 70, start, end) for p in pcs]


def test_a_progression_is_recognised_frame_by_frame():
    # C major 2 s, A minor 2 s, F major 2 s, G7 2 s, with a passing tone that must not change the chord
    notes = (_block([0, 4, 7], 0, 2) + _block([-3, 0, 4], 2, 4) + _block([-7, -3, 0], 4, 6) + _block([-5, -1, 2, 5], 6, 8)
             + [Note(62, 50, 0.9, 1.0)])
    frames = K.recognise(notes)
    at = lambda t: K.pcs_of(K.masks_at(np.array([t]), frames)[0])      # noqa: E731
    assert at(1.0) == {0, 4, 7}
    assert at(3.0) == {9, 0, 4}
    assert at(5.0) == {5, 9, 0}
    assert at(7.0) == {7, 11, 2, 5}
    changes = int((frames[1:] != frames[:-1]).sum())
    assert changes == 3                                   # the passing D did not make a chord of its own


def test_silence_is_no_chord_and_events_carry_the_chord_in_force():
    notes = _block([0, 4, 7], 0.0, 1.0) + _block([5, 9, 0], 3.0, 4.0)
    ev = E.notes_to_events(notes)
    ch = K.event_chords(ev, notes)
    assert len(ch) == len(ev)
    t = np.cumsum([(e - E.TIME_SHIFT + 1) / 100 if E.TIME_SHIFT <= e < E.VELOCITY else 0 for e in ev])
    first_f = next(i for i, e in enumerate(ev) if e == 65)          # F4 struck at 3 s
    assert K.pcs_of(ch[first_f]) == {5, 9, 0} and K.pcs_of(ch[1]) == {0, 4, 7}
    assert (ch[(t > 1.6) & (t < 2.4)] == 0).all()                   # the rest between them: no chord


@pytest.mark.parametrize("label,root,mask_pcs", [("B:maj", 11, {11, 3, 6}), ("E:min7", 4, {4, 7, 11, 2}),
                                                 ("G:maj/3", 7, {7, 11, 2}), ("Bb:sus4(b7)", 10, {10, 3, 5})])
def test_pop909_labels(label, root, mask_pcs):
    r, _, m = K.parse_label(label)
    assert r == root and K.pcs_of(m) == mask_pcs
    assert K.parse_label("N") is None


def test_segments_hold_a_chord_through_a_rest():
    c, f = K.mask_of({0, 4, 7}), K.mask_of({5, 9, 0})
    frames = np.array([0, 0, c, c, 0, c, f, f, 0, 0, c])
    assert K.segments(frames) == [(0.5, 1.5), (1.5, 2.5), (2.5, 2.75)]
    assert K.segments(np.zeros(4, np.int64)) == []
    notes = _block([0, 4, 7], 0, 2) + _block([-3, 0, 4], 2, 4) + _block([-7, -3, 0], 4.5, 6)
    assert K.segments(K.recognise(notes)) == [(0.0, 2.0), (2.0, 4.5), (4.5, 6.0)]


def test_the_harmony_fit_reads_labels_with_this_parser():
    from installation.training import harmony_fit as HF
    assert HF.parse_label("E:min7/b7") == (4, "min7") and HF.parse_label("Bb:sus4(b7)") == (10, "sus4")
    assert HF.parse_label("C#:hdim7") == (1, "dim") and HF.parse_label("N") is None
    assert HF.parse_label("C:9") is None                                  # read, but not one of the plan's
    assert K.parse_label("C:9") is not None and K.parse_label("H:maj") is None
