"""Realism measures on inputs with known answers, and the classifier's AUC on separable / identical sets."""
import mido
import pytest
import numpy as np

from installation.measures import realism as RL
from installation.music import events as E
from installation.music.events import Note

IDX = {n: i for i, n in enumerate(RL.REALISM_NAMES)}


def _pedalled_chord(path):
    """C major triad struck and released at 0.5 s with the pedal down until 4 s, then a lone C at 5 s."""
    mid = mido.MidiFile(type=0, ticks_per_beat=500)          # 120 bpm: 1 tick = 1 ms
    tr = mido.MidiTrack()
    mid.tracks.append(tr)
    msgs = [(0, mido.Message("control_change", control=64, value=127))]
    msgs += [(0, mido.Message("note_on", note=p, velocity=80)) for p in (60, 64, 67)]
    msgs += [(500, mido.Message("note_off", note=p, velocity=0)) for p in (60, 64, 67)]
    msgs += [(4000, mido.Message("control_change", control=64, value=0)),
             (5000, mido.Message("note_on", note=60, velocity=60)), (5500, mido.Message("note_off", note=60, velocity=0))]
    now = 0
    for t, m in msgs:
        tr.append(m.copy(time=t - now))
        now = t
    mid.save(path)


def test_a_chord_held_with_the_pedal_sounds_three_notes_for_four_seconds(tmp_path):
    f = tmp_path / "chord.mid"
    _pedalled_chord(f)
    notes = E.events_to_notes(E.notes_to_events(E.load_notes(f)))
    x = RL.features(notes, 6.0)
    assert len(notes) == 4
    # 0..4 s: three notes; 5..5.5 s: one; mean over the sounding grid points = (80*3 + 10*1) / 90
    assert abs(x[IDX["sounding"]] - (80 * 3 + 10) / 90) < 0.05
    assert abs(x[IDX["chord_size"]] - 2.0) < 1e-9                 # onsets: the triad, then the lone C
    assert abs(x[IDX["density"]] - 4 / 6) < 1e-9
    assert x[IDX["held_to_cap"]] == 0.0                           # 4 s, under the 5 s cap
    # without the pedal the triad lasts 0.5 s: fewer notes sound at once
    dry = RL.features(E.load_notes(f, sustain=False), 6.0)
    assert dry[IDX["sounding"]] < x[IDX["sounding"]] - 0.3
    # blocks 0-2 s and 2-4 s: C, E, G alike (r = 1); 4-6 s: C alone
    ceg, c = np.zeros(12), np.zeros(12)
    ceg[[0, 4, 7]], c[0] = 1, 1
    assert abs(x[IDX["chroma_self_sim"]] - (1 + np.corrcoef(ceg, c)[0, 1]) / 2) < 1e-6
    # C sounds 4 + 0.5 s of 12.5 s of sounding time
    assert abs(x[IDX["tonic_share"]] - 4.5 / 12.5) < 1e-6


def test_a_scale_moves_through_its_pitch_classes_without_repeating():
    steps = [0, 2, 4, 5, 7, 9, 11, 12]
    notes = [Note(60 + s, 40 + 10 * (i % 2), 0.5 * i, 0.5 * i + 0.5) for i, s in enumerate(steps)]
    x = RL.features(notes, 4.0)
    assert abs(x[IDX["sounding"]] - 1.0) < 1e-9
    assert abs(x[IDX["density"]] - 2.0) < 1e-9
    assert x[IDX["repeat_share"]] == 0.0
    assert abs(x[IDX["log_ioi"]] - np.log(0.5)) < 1e-9
    assert abs(x[IDX["log_dur"]] - np.log(0.5)) < 1e-9
    assert abs(x[IDX["velocity_sd"]] - 5.0) < 1e-9
    assert abs(x[IDX["pitch_sd"]] - np.std([60 + s for s in steps])) < 1e-9
    # blocks {C, D, E, F}, {G, A, B, C}: only C is shared
    a, b = np.zeros(12), np.zeros(12)
    a[[0, 2, 4, 5]], b[[7, 9, 11, 0]] = 1, 1
    assert abs(x[IDX["chroma_self_sim"]] - np.corrcoef(a, b)[0, 1]) < 1e-9


def test_notes_held_to_the_cap_are_counted():
    ev = [E.VELOCITY + 20, E.NOTE_ON + 60, E.NOTE_ON + 64, E.TIME_SHIFT + 49, E.NOTE_OFF + 64]
    ev += [E.TIME_SHIFT + 99] * 7                                  # 60 is never ended: 5 s cap
    x = RL.features(E.events_to_notes(ev), 8.0)
    assert x[IDX["held_to_cap"]] == 0.5


def test_the_classifier_tells_different_sets_apart_and_not_identical_ones():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(80, 5))
    assert RL.separability(a, rng.normal(size=(80, 5)) + [2, 0, 0, 0, 0]).auc > 0.9
    same = RL.separability(a, rng.normal(size=(80, 5)))
    assert 0.3 < same.auc < 0.7


def test_auc_on_known_rankings():
    assert RL.auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.8, 0.9])) == 1.0
    assert RL.auc(np.array([0, 0, 1, 1]), np.array([0.9, 0.8, 0.2, 0.1])) == 0.0
    assert RL.auc(np.array([0, 1]), np.array([0.5, 0.5])) == 0.5


def test_the_touch_measures_on_known_cases():
    """Issue 22's measures on pieces whose answers are known by construction."""
    from installation.music.events import Note

    # 10 chords of 3 notes, struck 10 ms apart, each 0.5 s, velocities 40 / 64 / 100; one 30 ms click; one 6 s note
    notes = []
    for k in range(10):
        t = 1.0 * k
        for j, (p, v) in enumerate(((60, 40), (64, 64), (67, 100))):
            notes.append(Note(p, v, t + 0.01 * j, t + 0.5))
    notes.append(Note(72, 64, 0.3, 0.33))
    notes.append(Note(48, 64, 0.2, 6.2))
    x = dict(zip(RL.REALISM_NAMES, RL.features(notes, 12.0)))
    assert x["long_notes"] == pytest.approx(1 / 32)
    assert x["short_notes"] == pytest.approx(1 / 32)
    assert x["velocity_mid"] == pytest.approx(12 / 32)
    # onsets sorted: per chord two 10 ms gaps; 31 gaps in all, 20 of them 10 ms
    assert x["onsets_18ms"] == pytest.approx(20 / 31)
    # C E G C E G ...: each pitch class has one successor, so the next one is certain
    assert RL.pc_transition_entropy(np.array([0, 4, 7] * 20)) == pytest.approx(0.0)
    rng = np.random.default_rng(0)
    assert RL.pc_transition_entropy(rng.integers(0, 12, 20000)) == pytest.approx(np.log2(12), abs=0.02)
