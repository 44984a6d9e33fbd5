"""The event vocabulary and MIDI <-> events, on fixed pairs, messy streams and real MIDI files."""

import mido
import numpy as np
import pytest

from installation.music import events as E
from installation.music.events import Note


# Golden (event, index) pairs, in both directions (Performance RNN's layout).
GOLDEN = [
    ("NOTE_ON(0)", 0), ("NOTE_ON(60)", 60), ("NOTE_ON(127)", 127),
    ("NOTE_OFF(0)", 128), ("NOTE_OFF(60)", 188), ("NOTE_OFF(127)", 255),
    ("TIME_SHIFT(10ms)", 256), ("TIME_SHIFT(500ms)", 305), ("TIME_SHIFT(1000ms)", 355),
    ("VELOCITY(0)", 356), ("VELOCITY(15)", 371), ("VELOCITY(31)", 387),
    ("PEDAL_DOWN", 388), ("PEDAL_UP", 389),
]


@pytest.mark.parametrize("name,index", GOLDEN)
def test_golden_indices(name, index):
    assert E.describe(index) == name


def test_vocabulary_size_and_ranges():
    assert E.VOCAB_SIZE == 390
    assert (E.PEDAL_DOWN, E.PEDAL_UP) == (388, 389)
    assert [(r["name"], r["first"], r["size"]) for r in E.vocabulary_spec()["ranges"]] == [
        ("NOTE_ON", 0, 128), ("NOTE_OFF", 128, 128), ("TIME_SHIFT", 256, 100), ("VELOCITY", 356, 32),
        ("PEDAL", 388, 2)]
    with pytest.raises(ValueError):
        E.describe(390)


@pytest.mark.parametrize("vel,b", [(1, 0), (4, 0), (5, 1), (64, 15), (124, 30), (125, 31), (127, 31)])
def test_velocity_bins(vel, b):
    assert E.velocity_to_bin(vel) == b
    assert abs(E.bin_to_velocity(b) - vel) <= E.VELOCITY_BIN_WIDTH


def test_encoding_of_a_known_phrase():
    # C4 at t=0 for 0.5 s (vel 80), E4 at 0.25 s for 1.5 s (vel 80)
    notes = [Note(60, 80, 0.0, 0.5), Note(64, 80, 0.25, 1.75)]
    ev = E.notes_to_events(notes).tolist()
    vel = E.VELOCITY + E.velocity_to_bin(80)
    assert ev == [vel, 60, E.TIME_SHIFT + 24, 64, E.TIME_SHIFT + 24, 128 + 60,
                  E.TIME_SHIFT + 99, E.TIME_SHIFT + 24, 128 + 64]


def test_long_gap_is_split_into_one_second_shifts():
    ev = E.notes_to_events([Note(60, 64, 0.0, 0.1), Note(62, 64, 2.55, 2.6)]).tolist()
    shifts = [e - E.TIME_SHIFT + 1 for e in ev if E.TIME_SHIFT <= e < E.VELOCITY]
    assert sum(shifts) == 260 and max(shifts) == 100


def test_decoding_policies_on_a_messy_stream():
    ts = lambda k: E.TIME_SHIFT + k - 1   # k steps of 10 ms
    ev = [
        128 + 70,                 # orphan note-off: ignored
        E.VELOCITY + 20, 60,      # C4 on
        60,                       # a second C4 on while open
        ts(50), 128 + 60,         # the first C4 ends at 0.5 s
        64, 128 + 64,             # zero-length E4: dropped
        ts(100), ts(100), ts(100), 128 + 60,   # second C4 ends at 3.5 s
        67,                       # G4 never closed: closed at the end
        ts(100),
    ]
    notes = E.events_to_notes(ev, max_note_s=2.0)
    got = [(n.pitch, round(n.start, 2), round(n.end, 2)) for n in notes]
    assert got == [(60, 0.0, 0.5), (60, 0.0, 2.0), (67, 3.5, 4.5)]   # the long C4 capped at 2 s
    assert notes[0].velocity == E.bin_to_velocity(20)


def _write(tmp_path, messages, name="x.mid"):
    mid = mido.MidiFile(ticks_per_beat=480)
    tr = mido.MidiTrack()
    mid.tracks.append(tr)
    tr.append(mido.MetaMessage("set_tempo", tempo=500000))    # 1 beat = 0.5 s, 1 tick = 1/960 s
    for m in messages:
        tr.append(m)
    p = tmp_path / name
    mid.save(p)
    return p


def test_sustain_pedal_extends_notes(tmp_path):
    M = mido.Message
    p = _write(tmp_path, [
        M("control_change", control=64, value=127, time=0),
        M("note_on", note=60, velocity=90, time=0),
        M("note_off", note=60, time=480),          # released at 0.5 s, but the pedal is down
        M("note_on", note=62, velocity=90, time=0),
        M("note_off", note=62, time=480),          # released at 1.0 s
        M("control_change", control=64, value=0, time=480),   # pedal up at 1.5 s
        M("note_on", note=64, velocity=90, time=0),
        M("note_on", note=64, velocity=0, time=480),           # velocity-0 note-off at 2.0 s
    ])
    notes = {n.pitch: n for n in E.load_notes(p)}
    assert notes[60].end == pytest.approx(1.5, abs=1e-3)
    assert notes[62].end == pytest.approx(1.5, abs=1e-3)
    assert notes[64].end == pytest.approx(2.0, abs=1e-3)
    dry = {n.pitch: n for n in E.load_notes(p, sustain=False)}
    assert dry[60].end == pytest.approx(0.5, abs=1e-3)


def test_restrike_under_pedal_ends_the_held_note(tmp_path):
    M = mido.Message
    p = _write(tmp_path, [
        M("control_change", control=64, value=127, time=0),
        M("note_on", note=60, velocity=90, time=0),
        M("note_off", note=60, time=240),
        M("note_on", note=60, velocity=50, time=240),          # re-struck at 0.5 s
        M("note_off", note=60, time=240),
        M("control_change", control=64, value=0, time=480),    # pedal up at 1.25 s
    ])
    notes = E.load_notes(p)
    assert [(round(n.start, 3), round(n.end, 3), n.velocity) for n in notes] == [(0.0, 0.5, 90), (0.5, 1.25, 50)]


def test_unparseable_file_names_the_file(tmp_path):
    bad = tmp_path / "broken.mid"
    bad.write_bytes(b"MThd\x00\x00\x00\x06garbage")
    with pytest.raises(E.MidiFileError, match="broken.mid"):
        E.load_notes(bad)


def _roundtrip_check(notes, tmp_path):
    """MIDI -> events -> MIDI keeps every note's pitch, timing within 10 ms, velocity within one bin."""
    ev = E.notes_to_events(notes)
    out = tmp_path / "back.mid"
    E.events_to_midi(ev, out)
    back = E.load_notes(out, sustain=False)
    assert len(back) == len(notes)
    # match greedily by pitch and start
    key = lambda n: (n.pitch, n.start)
    for a, b in zip(sorted(notes, key=key), sorted(back, key=key)):
        assert a.pitch == b.pitch
        assert abs(a.start - b.start) <= 0.010 + 1e-6
        assert abs(a.end - b.end) <= 0.010 + 1e-6 or (a.end - a.start) > 5.0
        assert abs(E.velocity_to_bin(a.velocity) - E.velocity_to_bin(b.velocity)) <= 1


def test_roundtrip_synthetic(tmp_path):
    rng = np.random.default_rng(0)
    notes = []
    for _ in range(300):
        s = float(rng.uniform(0, 60))
        notes.append(Note(int(rng.integers(21, 109)), int(rng.integers(1, 128)), s, s + float(rng.uniform(0.02, 3.0))))
    # the same pitch must not overlap itself for a one-to-one comparison
    notes.sort(key=lambda n: (n.pitch, n.start))
    clean, last_end = [], {}
    for n in notes:
        if n.start > last_end.get(n.pitch, -1) + 0.03:
            clean.append(n)
            last_end[n.pitch] = n.end
    _roundtrip_check(clean, tmp_path)


def test_roundtrip_real_emopia_files(shared_data, tmp_path):
    files = sorted((shared_data / "music" / "emopia" / "midis").glob("*.mid"))[::120][:8]
    assert files, "EMOPIA MIDI files not found"
    for f in files:
        notes = E.load_notes(f)          # pedal applied: the note lengths as heard
        # same-pitch overlaps (pedalled re-strikes) are already split by load_notes
        _roundtrip_check(notes, tmp_path)


def test_event_stream_times_and_velocity():
    s = E.EventStream()
    assert s.feed(E.VELOCITY + 31) is None
    on = s.feed(60)
    assert (on.time, on.on, on.pitch, on.velocity) == (0.0, True, 60, 127)
    s.feed(E.TIME_SHIFT + 49)
    off = s.feed(128 + 60)
    assert (round(off.time, 3), off.on, off.pitch) == (0.5, False, 60)


# --- the sustain pedal ---------------------------------------------------------------------

def test_pedal_is_encoded_where_it_changes_and_decoded_onto_note_lengths():
    keys = [Note(60, 80, 0.0, 0.5), Note(64, 80, 1.0, 1.2), Note(67, 80, 3.0, 3.5)]
    # two intervals that touch after quantisation are one press; a third, later one
    pedal = [(0.2, 1.5), (1.502, 2.0), (3.2, 4.0)]
    ev = E.notes_to_events(keys, pedal=pedal).tolist()
    assert ev.count(E.PEDAL_DOWN) == 2 and ev.count(E.PEDAL_UP) == 2
    heard = {n.pitch: n for n in E.events_to_notes(ev)}
    assert heard[60].end == pytest.approx(2.0) and heard[64].end == pytest.approx(2.0)
    assert heard[67].end == pytest.approx(4.0)
    dry = {n.pitch: n for n in E.events_to_notes(ev, sustain=False)}
    assert dry[60].end == pytest.approx(0.5) and dry[67].end == pytest.approx(3.5)


def test_event_stream_reports_the_pedal():
    s = E.EventStream()
    s.feed(E.TIME_SHIFT + 9)
    down = s.feed(E.PEDAL_DOWN)
    assert isinstance(down, E.PedalEvent) and down.down and down.time == pytest.approx(0.1)
    up = s.feed(E.PEDAL_UP)
    assert isinstance(up, E.PedalEvent) and not up.down


def test_events_to_midi_writes_cc64(tmp_path):
    ev = E.notes_to_events([Note(60, 80, 0.0, 0.3)], pedal=[(0.1, 6.5)])
    out = tmp_path / "p.mid"
    E.events_to_midi(ev, out)
    cc = [m for m in mido.MidiFile(out) if m.type == "control_change" and m.control == 64]
    assert [m.value >= 64 for m in cc] == [True, False]
    keys, pedal = E.load_performance(out)
    assert len(keys) == 1 and keys[0].end == pytest.approx(0.3, abs=0.011)
    assert pedal == [(pytest.approx(0.1, abs=0.011), pytest.approx(6.5, abs=0.011))]
    assert E.load_notes(out)[0].end == pytest.approx(6.5, abs=0.011)      # as heard


def test_roundtrip_keeps_notes_over_5s_with_the_pedal(shared_data):
    """Real EMOPIA clips: keys and pedal -> events -> notes as heard keeps the pedal's long notes (the old
    encoding folded the pedal into note lengths and capped them at 5 s: 0% of notes over 5 s). The 5 s cap
    is on the key: a key the transcription holds longer is cut at 5 s unless the pedal sounds it on."""
    files = sorted((shared_data / "music" / "emopia" / "midis").glob("*.mid"))[::20][:40]
    by_pedal = back = n = 0
    for f in files:
        keys, pedal = E.load_performance(f)
        heard = E.apply_pedal(keys, pedal)
        got = E.events_to_notes(E.notes_to_events(keys, pedal=pedal))
        assert len(got) == len(heard)
        key_len = {(k.pitch, k.start): k.end - k.start for k in keys}
        by_pedal += sum(h.end - h.start > 5.01 and key_len[(h.pitch, h.start)] <= 4.99 for h in heard)
        back += sum(x.end - x.start > 5.0 for x in got)
        n += len(heard)
    assert by_pedal > 0.003 * n                     # the clips do hold notes the pedal sounds on past 5 s
    assert back >= by_pedal                         # and the encoding keeps them all


def test_restrike_ends_a_pedalled_note():
    keys = [Note(60, 80, 0.0, 0.2), Note(60, 70, 0.6, 0.8)]
    heard = E.events_to_notes(E.notes_to_events(keys, pedal=[(0.1, 2.0)]))
    assert [(round(n.start, 2), round(n.end, 2)) for n in heard] == [(0.0, 0.6), (0.6, 2.0)]
