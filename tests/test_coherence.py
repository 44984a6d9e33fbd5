"""Coherence and variety figures on pieces whose answers are known."""
import math

import numpy as np
import pytest

from installation.music import events as E
from installation.evaluation import coherence as CO
from installation.music.events import Note

C_MAJOR = [60, 62, 64, 65, 67, 69, 71, 72]


def line(pitches, start=0.0, step=0.25, dur=0.2):
    return [Note(int(p), 80, start + i * step, start + i * step + dur) for i, p in enumerate(pitches)]


def scale_piece(tonic_per_window, seconds=60.0, window=10.0):
    """Each 10 s window plays a major scale (up and down, 0.25 s a note) on its own tonic."""
    notes = []
    for w, tonic in enumerate(tonic_per_window):
        up = [p - 60 + tonic for p in C_MAJOR]
        cycle = up + up[-2:0:-1]
        n = int(window / 0.25)
        notes += line([cycle[i % len(cycle)] for i in range(n)], start=w * window)
    return notes


def test_one_key_throughout_is_stable():
    s = CO.describe(scale_piece([60] * 6))
    assert s.key_windows == 6
    assert s.key_agreement == 1.0
    assert s.key_changes == 0.0
    assert s.pc_continuity == pytest.approx(1.0)


def test_alternating_keys_are_not():
    """C major and F# major (a tritone apart: they share only B and F) alternate."""
    s = CO.describe(scale_piece([60, 66] * 3))
    assert s.key_windows == 6
    assert s.key_agreement == pytest.approx(0.5)
    assert s.key_changes == 1.0
    assert s.pc_continuity < 0.0                          # tritone-related keys: anti-correlated histograms
    three = CO.describe(scale_piece([60, 60, 60, 60, 66, 66]))
    assert three.key_agreement == pytest.approx(4 / 6)
    assert three.key_changes == pytest.approx(1 / 5)


def test_pitch_class_entropy_known_values():
    one = CO.describe(line([60] * 100) + line([72] * 100, start=30.0))
    assert one.pc_entropy == 0.0 and one.pc_entropy_window == 0.0
    chromatic = CO.describe(line(list(range(60, 72)) * 20))
    assert chromatic.pc_entropy == pytest.approx(math.log2(12))
    assert CO.entropy_bits(np.array([1, 1, 0, 0])) == pytest.approx(1.0)


def test_repetition_of_a_motif_and_of_a_walk_without_repeats():
    motif = [60, 64, 67, 72, 67]
    rep = CO.repetition(line(motif * 40))
    assert rep == 1.0
    transposed = CO.repetition(line(motif * 10 + [p + 5 for p in motif] * 10))
    # intervals: a transposed motif is the same motif; only the 4 n-grams across the join (of 96) are new
    assert transposed == pytest.approx(92 / 96)
    rng = np.random.default_rng(0)
    walk = 60 + np.cumsum(rng.choice([-7, -5, -3, -2, -1, 1, 2, 3, 5, 7], 200))
    walk = np.clip(walk, 21, 108)
    assert CO.repetition(line(walk)) < 0.3


def test_self_similarity_same_segments_and_disjoint_ones():
    same = line([60, 64, 67, 72] * 60)                     # every 2 s segment holds the same notes
    assert CO.self_similarity(same, 60.0) == pytest.approx(1.0)
    disjoint = [Note(30 + i, 80, 2.0 * i + 0.1, 2.0 * i + 0.5) for i in range(30)]   # one new pitch per segment
    assert CO.self_similarity(disjoint, 60.0) == 0.0


def test_sparse_windows_have_no_key_and_events_are_measured_like_notes():
    sparse = line([60, 64, 67], step=4.0)
    s = CO.describe(sparse)
    assert s.key_windows == 0 and s.key_agreement == 0.0
    ev = E.notes_to_events(scale_piece([60] * 6))
    s2 = CO.of_events(ev)
    assert s2.key_agreement == 1.0 and s2.notes == len(scale_piece([60] * 6))


def test_summarise_means_and_intervals():
    stats = [CO.describe(scale_piece([60] * 6)), CO.describe(scale_piece([60, 66] * 3))]
    out = CO.summarise(stats)
    assert out["pieces"] == 2
    assert out["key_agreement"]["mean"] == pytest.approx(0.75)
    lo, hi = out["key_agreement"]["ci95"]
    assert 0.5 <= lo <= 0.75 <= hi <= 1.0
