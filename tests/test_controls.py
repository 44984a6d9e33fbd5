"""Musical controls, the emotion map, the key rule and the conductor, against known answers."""
import numpy as np
import pytest

from installation.mood import controls as C
from installation.music import events as E
from installation.mood.conductor import Conductor, Steering
from installation.mood.emotion_map import EmotionMap, KeyPlanner, MapError, Pin

CORNERS = {"Q1": {"density": 10.0, "velocity": 80.0, "pitch": 62.0, "major_share": 0.7},
           "Q2": {"density": 12.0, "velocity": 84.0, "pitch": 60.0, "major_share": 0.3},
           "Q3": {"density": 4.0, "velocity": 50.0, "pitch": 58.0, "major_share": 0.4},
           "Q4": {"density": 6.0, "velocity": 58.0, "pitch": 64.0, "major_share": 0.65}}


def emap(**mode):
    return EmotionMap.from_dict({"corners": CORNERS, "mode": mode}, "test map")


def window(pitches, velocity=80, step_s=0.1):
    """Note-ons of ``pitches``, one every step_s, each ended before the next."""
    ev = [E.VELOCITY + E.velocity_to_bin(velocity)]
    for p in pitches:
        ev += [E.NOTE_ON + p, E.TIME_SHIFT + int(round(step_s * 100)) - 1, E.NOTE_OFF + p]
    return np.array(ev)


# --- measuring ---------------------------------------------------------------------------

def test_c_major_scale_measures_as_c_major_with_its_density_loudness_and_register():
    scale = [60, 62, 64, 65, 67, 69, 71, 72] * 2 + [60, 64, 67, 60]      # 20 notes, tonic-heavy
    c = C.measure(window(scale, velocity=83, step_s=0.25)[None, :])[0]
    hist = c[C.KEY:C.KEY + 12]
    assert hist.sum() == pytest.approx(1.0)
    assert hist[0] == pytest.approx(6 / 20) and hist[1] == 0 and hist[4] == pytest.approx(3 / 20)
    assert c[C.KEY + 12] == 1 and c[C.KEY + 13] == 0                   # major
    assert C.density_value(c[C.DENSITY]) == pytest.approx(4.0, rel=1e-6)   # 20 note-ons in 5 s
    assert c[C.LOUDNESS] * 32 + 64 == pytest.approx(83)                # bin 20 decodes to 83
    assert c[C.REGISTER] * 12 + 64 == pytest.approx(np.mean(scale))
    assert list(c[C.FLAGS:C.CHORD]) == [0, 0, 0, 0, 1]                  # emotion unset until told
    assert c[C.CHORD_FLAG] == 1 and not c[C.CHORD:C.CHORD_FLAG].any()   # the chord: per step, by the caller


def test_a_minor_arpeggio_is_minor_and_transposition_moves_the_histogram():
    am = [57, 60, 64, 69, 64, 60] * 3
    a = C.measure(window(am)[None, :])[0]
    assert a[C.KEY + 13] == 1                                          # minor
    tonic, minor = C.key_of_histograms(a[None, C.KEY:C.KEY + 12].astype(float))
    assert (tonic[0], minor[0]) == (9, True)
    up = C.measure(window([p + 2 for p in am])[None, :])[0]           # B minor
    assert np.allclose(up[C.KEY:C.KEY + 12], np.roll(a[C.KEY:C.KEY + 12], 2))


def test_too_few_notes_leave_key_unset_and_no_velocity_event_leaves_loudness_unset():
    w = window([60, 64, 67])[1:]                                       # no velocity event, 3 notes
    c = C.measure(w[None, :])[0]
    assert c[C.FLAGS + 0] == 1 and not c[C.KEY:C.KEY + 14].any()
    assert c[C.FLAGS + 2] == 1 and c[C.LOUDNESS] == 0


def test_padding_is_ignored():
    w = window([60, 62, 64, 65, 67, 69, 71, 72, 60])
    padded = np.concatenate([w, np.zeros(20, int)])                    # zeros would be NOTE_ON(0)s
    valid = np.arange(len(padded)) < len(w)
    assert np.allclose(C.measure(padded[None], valid[None])[0], C.measure(w[None])[0])


def test_dropout_unsets_whole_groups_with_their_flags():
    c = C.measure(window([60, 64, 67, 72, 60, 64, 67, 72, 60])[None, :])
    rng = np.random.default_rng(0)
    d = C.drop(np.repeat(c, 200, 0), rng, p_group=0.5, p_all=0.0)
    unset_key = d[:, C.FLAGS] == 1
    assert 60 < unset_key.sum() < 140
    assert not d[unset_key, C.KEY:C.KEY + 14].any()
    assert np.allclose(d[~unset_key, C.KEY:C.KEY + 14], c[0, C.KEY:C.KEY + 14])


# --- asking --------------------------------------------------------------------------------

@pytest.mark.parametrize("text,want", [("D", (2, None)), ("F# minor", (6, True)), ("Bb major", (10, False)),
                                       ("c#m", (1, True)), ("Am", (9, True)), ("eb", (3, None))])
def test_parse_key(text, want):
    assert C.parse_key(text) == want


@pytest.mark.parametrize("bad", ["H", "C##", "D dorian", "", "7"])
def test_parse_key_rejects_what_is_not_a_key(bad):
    with pytest.raises(ValueError, match="--key"):
        C.parse_key(bad)


def test_relative_and_parallel_keys():
    assert C.Key(0, False).relative() == C.Key(9, True)                # C major -> A minor
    assert C.Key(9, True).relative() == C.Key(0, False)
    assert C.Key(7, True).parallel() == C.Key(7, False)
    assert str(C.Key(6, True)) == "F# minor"


def test_encode_sets_the_template_rotated_to_the_tonic_and_flags_what_is_unset():
    templates = C.default_templates()
    v = C.encode(C.Targets(key=C.Key(2, True), velocity=96.0), templates)
    assert np.allclose(v[C.KEY:C.KEY + 12], np.roll(templates[1], 2))
    assert v[C.KEY + 13] == 1 and v[C.KEY + 12] == 0
    assert v[C.LOUDNESS] == pytest.approx(1.0)
    assert list(v[C.FLAGS:C.CHORD]) == [0, 1, 0, 1, 1]
    u = C.unset()
    assert list(u[C.FLAGS:C.CHORD]) == [1, 1, 1, 1, 1] and not u[:C.FLAGS].any()
    assert u[C.CHORD_FLAG] == 1 and not u[C.CHORD:C.CHORD_FLAG].any()


def test_measured_and_asked_controls_agree_on_the_same_music():
    """A window measured, and the same figures asked for, give the same density/loudness/register codes."""
    m = C.measure(window([60, 64, 67, 72] * 3, velocity=59, step_s=0.2)[None, :])[0]
    t = C.Targets(density=C.density_value(m[C.DENSITY]), velocity=m[C.LOUDNESS] * 32 + 64, pitch=m[C.REGISTER] * 12 + 64)
    a = C.encode(t)
    assert np.allclose(a[C.DENSITY:C.REGISTER + 1], m[C.DENSITY:C.REGISTER + 1], atol=1e-6)


# --- the emotion map -------------------------------------------------------------------------

def test_the_map_is_the_corners_at_the_corners_and_their_mean_at_the_centre():
    m = emap()
    assert m.controls(1, 1) == pytest.approx((10.0, 80.0, 62.0))
    assert m.controls(-1, -1) == pytest.approx((4.0, 50.0, 58.0))
    assert m.controls(0, 0) == pytest.approx((8.0, 68.0, 61.0))
    assert m.controls(0, 1) == pytest.approx((11.0, 82.0, 61.0))       # halfway between Q1 and Q2
    assert m.controls(5, -3) == m.controls(1, -1)                      # clipped to the square


def test_the_map_is_continuous_and_contrast_scales_distances_from_the_centre():
    m = emap()
    a, b = m.controls(0.3, 0.4), m.controls(0.3001, 0.4)
    assert max(abs(x - y) for x, y in zip(a, b)) < 0.01
    wide = EmotionMap.from_dict({"corners": CORNERS, "contrast": 2.0}, "t")
    assert wide.controls(1, 1)[1] == pytest.approx(68 + 2 * (80 - 68))


def test_mode_follows_valence_with_hysteresis():
    m = emap(threshold=0.0, hysteresis=0.2)
    assert m.minor(-0.1) and not m.minor(0.1)
    assert m.minor(0.1, was_minor=True)                                # not far enough past the threshold
    assert not m.minor(0.25, was_minor=True)
    assert not m.minor(-0.1, was_minor=False) and m.minor(-0.3, was_minor=False)


@pytest.mark.parametrize("table,msg", [
    ({"corners": CORNERS, "colour": 1}, "colour: unknown key"),
    ({"corners": {**CORNERS, "Q1": {**CORNERS["Q1"], "velocity": 200}}}, "corners.Q1.velocity: 200 is out of range"),
    ({"corners": {**CORNERS, "Q2": {**CORNERS["Q2"], "density": "fast"}}}, "corners.Q2.density: must be a finite"),
    ({"corners": {k: v for k, v in CORNERS.items() if k != "Q4"}}, "exactly the tables Q1, Q2, Q3, Q4"),
    ({"corners": CORNERS, "mode": {"key_change": "sideways"}}, "mode.key_change: 'sideways' is not one of: parallel"),
    ({"corners": {**CORNERS, "Q3": {"density": 1.0}}}, "corners.Q3: missing velocity, pitch, major_share"),
])
def test_bad_maps_are_refused_naming_the_key(table, msg):
    with pytest.raises(MapError, match=msg.replace("(", r"\(").replace(")", r"\)")):
        EmotionMap.from_dict(table, "patch.toml")


def test_a_partial_override_changes_only_what_it_names():
    m = emap()
    o = m.overridden({"corners": {"Q3": {"velocity": 40}}, "mode": {"key_change": "relative"}}, "patch.toml")
    assert o.q3.velocity == 40 and o.q3.density == m.q3.density and o.q1 == m.q1
    assert o.key_change == "relative"
    with pytest.raises(MapError, match="unknown key 'Q5'"):
        m.overridden({"corners": {"Q5": {}}}, "patch.toml")


# --- the key rule ----------------------------------------------------------------------------

def test_the_key_stays_while_the_mode_stays_and_moves_to_the_parallel_on_a_change():
    k = KeyPlanner(emap(), seed=3)
    first = k.update(0.6)
    assert not first.minor
    assert k.update(0.2) == first                                      # still major: same key
    assert k.update(-0.7) == first.parallel()                          # to minor: same tonic
    assert k.update(0.7) == first


def test_relative_key_change_keeps_the_notes():
    k = KeyPlanner(emap(key_change="relative"), pin=Pin(tonic=0), seed=0)
    assert k.update(0.5) == C.Key(0, False)
    # a pinned tonic overrides the relative rule: the tonic never moves
    assert k.update(-0.5) == C.Key(0, True)
    free = KeyPlanner(emap(key_change="relative"), seed=0)
    a = free.update(0.5)
    assert free.update(-0.5) == a.relative()


def test_seeded_planners_choose_the_same_keys_and_pins_hold():
    a = [KeyPlanner(emap(), seed=11).update(v) for v in (0.5,)]
    b = [KeyPlanner(emap(), seed=11).update(v) for v in (0.5,)]
    assert a == b
    pinned = KeyPlanner(emap(), pin=Pin(tonic=6, minor=True), seed=1)
    assert pinned.update(0.9) == C.Key(6, True) and pinned.update(-0.9) == C.Key(6, True)


# --- the conductor ---------------------------------------------------------------------------

def test_overrides_replace_the_image_and_motion_adds_arousal():
    c = Conductor(Steering(valence=-0.8), emap(), seed=0)
    d = c.direct(0.0, [0.9, -0.5], new_scene=True)
    assert d.valence == -0.8 and d.arousal == pytest.approx(-0.5) and d.targets.key.minor
    m = Conductor(Steering(motion_weight=0.6), emap(), seed=0)
    d = m.direct(0.0, [0.2, -0.5], motion=1.0, new_scene=True)
    assert d.arousal == pytest.approx(0.1)
    assert d.controls[C.EMOTION + 1] == pytest.approx(0.1)
    fixed = Conductor(Steering(arousal=0.3, motion_weight=0.6), emap(), seed=0)
    assert fixed.direct(0.0, [0.2, -0.5], motion=1.0, new_scene=True).arousal == pytest.approx(0.3)


def test_the_emotion_glides_within_a_scene_and_restarts_on_a_new_one():
    c = Conductor(Steering(smoothing_s=1.0), emap(), seed=0)
    c.direct(0.0, [0.0, 0.0], new_scene=True)
    d = c.direct(1.0, [1.0, 1.0])
    assert d.valence == pytest.approx(1 - np.exp(-1), abs=1e-6)
    d = c.direct(1.5, [-1.0, -1.0], new_scene=True)
    assert d.valence == -1.0


@pytest.mark.parametrize("st,msg", [(Steering(valence=1.5), "--valence 1.5"), (Steering(arousal=-2), "--arousal -2"),
                                    (Steering(key="Q minor"), "--key"), (Steering(motion_weight=-1), "--motion-weight")])
def test_bad_steering_is_refused_naming_the_option(st, msg):
    with pytest.raises(ValueError, match=msg):
        st.check()


def test_a_hand_on_a_controller_is_blended_per_axis_and_a_command_line_override_still_wins():
    class Knob:
        def __init__(self, v, a, w):
            self.value = (v, a, w)

        def current(self):
            return self.value

    c = Conductor(Steering(), emap(), seed=0)
    c.hand = Knob(1.0, None, 0.5)                          # only the valence knob was touched
    d = c.direct(0.0, [-0.6, 0.4], new_scene=True)
    assert d.hand and d.valence == pytest.approx(0.2) and d.arousal == pytest.approx(0.4)
    c2 = Conductor(Steering(valence=-1.0), emap(), seed=0)
    c2.hand = Knob(1.0, 1.0, 1.0)
    d = c2.direct(0.0, [0.0, 0.0], new_scene=True)
    assert d.valence == -1.0 and d.arousal == pytest.approx(1.0)


def test_each_scene_draws_its_targets_within_the_quadrants_spread_and_variety_zero_is_the_mean():
    spread = {q: {**c, "density_spread": 0.5, "velocity_spread": 10.0, "pitch_spread": 4.0} for q, c in CORNERS.items()}
    m = EmotionMap.from_dict({"corners": spread, "variety": 1.0}, "t")
    draws = [Conductor(Steering(), m, seed=s).direct(0.0, [0.9, 0.9], new_scene=True).targets for s in range(200)]
    vel = np.array([t.velocity for t in draws])
    mean_v = m.controls(0.9, 0.9)[1]
    assert abs(vel.mean() - mean_v) < 2.5 and 7.0 < vel.std() < 12.0      # N(mean, 10) clipped at 2 SD
    assert np.all(np.abs(vel - mean_v) <= 20.0 + 1e-9)
    a = Conductor(Steering(), m, seed=5).direct(0.0, [0.9, 0.9], new_scene=True).targets
    b = Conductor(Steering(), m, seed=5).direct(0.0, [0.9, 0.9], new_scene=True).targets
    assert a == b                                                           # seeded: the same draw
    c = Conductor(Steering(), m, seed=5)
    first = c.direct(0.0, [0.9, 0.9], new_scene=True).targets
    assert c.direct(0.5, [0.9, 0.9]).targets == first                      # kept within a scene
    flat = EmotionMap.from_dict({"corners": spread, "variety": 0.0}, "t")
    t = Conductor(Steering(), flat, seed=5).direct(0.0, [0.9, 0.9], new_scene=True).targets
    assert (t.density, t.velocity, t.pitch) == pytest.approx(flat.controls(0.9, 0.9))


def test_chord_group_layout_and_codes():
    assert (C.CHORD, C.CHORD_FLAG, C.CONTROL_DIM, C.WINDOW_DIM) == (24, 36, 37, 24)
    g7 = C.chord_code([7, 11, 2, 5])
    assert list(np.flatnonzero(g7)) == [2, 5, 7, 11] and g7[12] == 0
    assert list(C.chord_code(None)) == [0] * 12 + [1] and list(C.chord_code([])) == [0] * 12 + [1]
    c = C.encode(C.Targets(chord=frozenset({0, 4, 7})))
    assert list(np.flatnonzero(c[C.CHORD:C.CHORD + 13])) == [0, 4, 7]
    # 12-bit masks: C major (bits 0, 4, 7) up a fifth is G major (7, 11, 2)
    m = (1 << 0) | (1 << 4) | (1 << 7)
    assert list(np.flatnonzero(C.chord_codes_of_masks(C.rotate_masks(np.array([m]), 7))[0])) == [2, 7, 11]
    assert C.chord_codes_of_masks(np.array([0]))[0, 12] == 1


def test_pedal_events_are_not_read_as_velocities():
    import installation.music.events as E
    w = np.array([[E.VELOCITY + 10, 60, E.PEDAL_DOWN, 64, E.TIME_SHIFT + 99, E.PEDAL_UP, 67, 128 + 60]])
    c = C.measure(w)
    assert c[0, C.LOUDNESS] * 32 + 64 == pytest.approx(E.bin_to_velocity(10))
