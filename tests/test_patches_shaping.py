"""Shaping and routing of notes (pure code, the same the live engine and render run)."""
import random

from hypothesis import given, settings, strategies as st

from installation.patches import parse_patch
from installation.patches.routing import NoteRouter
from installation.patches.shaping import VoiceLimiter, constrain_to_scale, fold_pitch, shape_velocity


def random_performance(seed=0, n=600):
    """A dense, overlapping performance: (time, on, pitch, velocity), each note-on ends later."""
    rng = random.Random(seed)
    t, sounding, out = 0.0, set(), []
    for _ in range(n):
        t += rng.choice([0.0, 0.0, 0.01, 0.05, 0.1])
        if sounding and rng.random() < 0.45:
            p = rng.choice(sorted(sounding))
            sounding.discard(p)
            out.append((t, False, p, 0))
        else:
            p = rng.randint(21, 108)
            if p in sounding:
                continue
            sounding.add(p)
            out.append((t, True, p, rng.randint(1, 127)))
    out += [(t + 0.1, False, p, 0) for p in sorted(sounding)]
    return out


def play(router, perf):
    msgs = []
    for t, on, p, v in perf:
        msgs += router.note(t, on, p, v)
    return msgs


def balanced_and_max_sounding(msgs):
    """(every note-on matched by one note-off, never a second on for a sounding key; most notes at once per channel)"""
    sounding, most, ok = set(), {}, True
    for m in msgs:
        key = (m[0] & 0x0F, m[1])
        if m[0] & 0xF0 == 0x90 and m[2] > 0:
            ok &= key not in sounding
            sounding.add(key)
            ch = key[0]
            most[ch] = max(most.get(ch, 0), sum(1 for k in sounding if k[0] == ch))
        elif m[0] & 0xF0 in (0x80, 0x90):
            ok &= key in sounding
            sounding.discard(key)
    return ok and not sounding, most


def test_pitch_helpers():
    assert fold_pitch(30, 36, 60, "fold") == 42 and fold_pitch(70, 36, 60, "fold") == 58
    assert fold_pitch(30, 36, 60, "drop") is None and fold_pitch(50, 36, 60, "drop") == 50
    assert fold_pitch(30, 44, 47, "fold") is None                       # no octave fits
    c_major = {0, 2, 4, 5, 7, 9, 11}
    assert constrain_to_scale(61, c_major) == 60                         # tie: down
    assert constrain_to_scale(61, c_major, "drop") is None
    assert shape_velocity(127, 1.0, 60, 120) == 120 and shape_velocity(1, 1.0, 60, 120) == 60
    assert shape_velocity(64, 2.0) < shape_velocity(64, 1.0) < shape_velocity(64, 0.5)


def test_scale_range_and_mono_on_a_dense_performance():
    patch = parse_patch({"shaping": {"scale": "A minor", "pitch_range": [36, 60], "mono": True, "transpose": -12},
                         "layer": [{"channel": 3}]})
    msgs = play(NoteRouter(patch), random_performance(1))
    ons = [m for m in msgs if m[0] == 0x92 and m[2] > 0]
    assert len(ons) > 100
    assert all(m[0] in (0x82, 0x92) for m in msgs)                       # channel 3 only
    assert all(36 <= m[1] <= 60 for m in ons)
    assert all(m[1] % 12 in {9, 11, 0, 2, 4, 5, 7} for m in ons)
    ok, most = balanced_and_max_sounding(msgs)
    assert ok and most == {2: 1}                                          # mono: never two at once


def test_mono_has_last_note_priority():
    r = NoteRouter(parse_patch({"layer": [{"channel": 1, "mono": True}]}))
    assert r.note(0, True, 60, 90) == [(0x90, 60, 90)]
    assert r.note(1, True, 64, 90) == [(0x80, 60, 0), (0x90, 64, 90)]   # the new note wins
    assert r.note(2, False, 64, 0) == [(0x80, 64, 0), (0x90, 60, 90)]   # released: the held one returns
    assert r.note(3, False, 60, 0) == [(0x80, 60, 0)]
    assert r.note(4, False, 60, 0) == []


def test_polyphony_limit_and_layers_stay_balanced():
    patch = parse_patch({"shaping": {"max_polyphony": 4, "velocity_range": [40, 100]},
                         "layer": [{"channel": 1, "program": 5},
                                   {"channel": 2, "voices": "lowest", "transpose": -12, "mono": True, "program": 34,
                                    "bank": 130}]})
    r = NoteRouter(patch)
    assert r.start_messages() == [(0xC0, 4), (0xB1, 0, 1), (0xB1, 32, 2), (0xC1, 33)]
    perf = random_performance(2)
    msgs = play(r, perf)
    ok, most = balanced_and_max_sounding(msgs)
    assert ok and most[0] <= 4 and most[1] == 1
    assert all(40 <= m[2] <= 100 for m in msgs if m[0] == 0x90)
    # the bass layer only takes notes that were the lowest sounding when they started, an octave down
    lows = [m[1] + 12 for m in msgs if m[0] == 0x91]
    assert lows and set(lows) <= {p for _, on, p, _ in perf if on}
    r2 = NoteRouter(patch)                                                 # cut in the middle (end of a file)
    cut = play(r2, perf[:50])
    assert not balanced_and_max_sounding(cut)[0]
    assert balanced_and_max_sounding(cut + r2.close_all())[0]


def test_density_limit_drops_extra_note_ons():
    r = NoteRouter(parse_patch({"shaping": {"max_notes_per_second": 5}}))
    ons = [m for i in range(40) for m in r.note(i * 0.05, True, 40 + i, 80) if m[0] == 0x90]
    assert len(ons) == 10                                                  # 2 s at 5 per second


def test_two_notes_landing_on_one_pitch_get_one_note_off_each():
    r = NoteRouter(parse_patch({"shaping": {"scale": "C major"}}))      # 60 and 61 both become 60
    msgs = r.note(0, True, 60, 80) + r.note(0.1, True, 61, 80) + r.note(0.2, False, 60, 0) + r.note(0.3, False, 61, 0)
    assert msgs == [(0x90, 60, 80), (0x80, 60, 0), (0x90, 60, 80), (0x80, 60, 0)]
    assert VoiceLimiter(0, True).off(5) == []


def _most_note_ons_in_a_second(timed_messages) -> int:
    """The most note-ons on one channel (a layer: each layer plays the performance's notes) in any second."""
    most = 0
    for ch in range(16):
        ons = [t for t, m in timed_messages if m[0] == 0x90 | ch and m[2] > 0]
        most = max(most, max((sum(1 for u in ons if t - 1.0 < u <= t) for t in ons), default=0))
    return most


def test_mono_synth_keeps_its_notes_per_second_limit_through_last_note_priority():
    """Issue 16.9: a release that re-sounds the held note (last-note priority) is a new note-on, and counts."""
    from installation.patches import load_patch
    from installation.patches.routing import NoteRouter
    patch = load_patch("mono-synth")
    limit = patch.shaping.max_notes_per_second
    router = NoteRouter(patch)
    out = []
    t = 0.0
    held = [60, 64]                      # two notes held; a third pressed and released fast, over and over
    for p in held:
        out += [(t, m) for m in router.note(t, True, p, 80)]
    for i in range(200):
        t += 0.05
        out += [(t, m) for m in router.note(t, True, 67 + i % 5, 80)]
        t += 0.05
        out += [(t, m) for m in router.note(t, False, 67 + i % 5, 0)]   # 64 would sound again here
    assert _most_note_ons_in_a_second(out) <= limit
    assert sum(1 for _, m in out if m[0] & 0xF0 == 0x90 and m[2] > 0) >= 8 * limit   # it still plays


@settings(max_examples=200, deadline=None, database=None)
@given(st.lists(st.tuples(st.floats(0.0, 0.4), st.booleans(), st.integers(40, 90), st.integers(1, 127)),
                min_size=1, max_size=120),
       st.sampled_from(["mono-synth", "ableton-live", "gm-piano"]), st.sampled_from([0, 3, 6, 12]))
def test_any_performance_keeps_the_density_limit_and_closes_every_note(notes, name, per_second):
    import dataclasses
    from installation.patches import load_patch
    from installation.patches.routing import NoteRouter
    patch = load_patch(name)
    patch = dataclasses.replace(patch, shaping=dataclasses.replace(patch.shaping, max_notes_per_second=per_second))
    router = NoteRouter(patch)
    out, t = [], 0.0
    for dt, on, pitch, vel in notes:
        t += dt
        out += [(t, m) for m in router.note(t, on, pitch, vel)]
    out += [(t, m) for m in router.close_all()]
    if per_second:
        assert _most_note_ons_in_a_second(out) <= per_second
    sounding = {}
    for _, m in out:
        key = (m[0] & 0x0F, m[1])
        if m[0] & 0xF0 == 0x90 and m[2] > 0:
            sounding[key] = sounding.get(key, 0) + 1
        elif m[0] & 0xF0 in (0x80, 0x90):
            sounding[key] = max(0, sounding.get(key, 0) - 1)
    assert not any(sounding.values())
