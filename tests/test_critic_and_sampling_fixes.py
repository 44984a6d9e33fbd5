"""Issue 14's sampling fixes with the shipped models and fixed seeds: impossible note events masked, mode-only
guidance, the critic's deterministic choice, and the emotion map's densities against real 30 s pieces."""
from pathlib import Path

import numpy as np
import pytest

from installation import manifest as M
from installation.mood import controls as C
from installation.music import critic as CR
from installation.music import events as E
from installation.music.legality import NoteState

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / "exported_models"


def test_the_mask_allows_only_possible_note_events():
    ns = NoteState(2)
    ns.update(np.array([E.NOTE_ON + 60, E.TIME_SHIFT]))
    m = ns.mask(np.zeros((2, E.VOCAB_SIZE)))
    assert m[0, E.NOTE_ON + 60] == -np.inf and m[0, E.NOTE_OFF + 60] == 0          # 60 sounds: it can only end
    assert m[0, E.NOTE_ON + 61] == 0 and m[0, E.NOTE_OFF + 61] == -np.inf
    assert np.isinf(m[1, E.NOTE_OFF:E.NOTE_OFF + 128]).all()                          # nothing sounds: no note-off
    assert np.isfinite(m[:, E.TIME_SHIFT:E.PEDAL]).all()
    assert (m[:, E.PEDAL_DOWN] == 0).all() and np.isinf(m[:, E.PEDAL_UP]).all()     # the pedal is up: only a press
    ns.update(np.array([E.NOTE_OFF + 60, E.PEDAL_DOWN]))
    assert not ns.sounding.any()
    m = ns.mask(np.zeros((2, E.VOCAB_SIZE)))
    assert m[1, E.PEDAL_DOWN] == -np.inf and m[1, E.PEDAL_UP] == 0 and m[0, E.PEDAL_UP] == -np.inf


def _check_stream(ev):
    sounding = set()
    for e in ev:
        if e < E.NOTE_OFF:
            assert e not in sounding, "note-on of a sounding pitch"
            sounding.add(e)
        elif e < E.TIME_SHIFT:
            assert e - E.NOTE_OFF in sounding, "note-off of a silent pitch"
            sounding.discard(e - E.NOTE_OFF)


@pytest.fixture(scope="module")
def shipped():
    from installation.mood import emotion_map
    from installation.mood.conductor import Steering
    from installation.music.decoder import open_decoder
    from installation.music.render import directions

    m = M.load(MODELS)
    dec = open_decoder(m, threads=1)
    va = np.array([[0.8, 0.7], [-0.7, -0.6]], np.float32)
    ds = directions(va, ["happy", "sad"], Steering(), emotion_map.for_models(m.folder), m.key_templates, 3)
    return m, dec, np.stack([d.controls for d in ds])


def test_shipped_render_plays_no_impossible_note_event(shipped):
    from installation.music.render import RenderSettings, generate

    _, dec, ctl = shipped
    for s in generate(dec, ctl, ["happy", "sad"], RenderSettings(seconds=6.0, seed=1, candidates=1)):
        _check_stream(s)


def test_the_critic_choice_is_deterministic_and_the_best_scored(shipped):
    from installation.music.render import RenderSettings, generate

    _, dec, ctl = shipped
    assert dec.critic is not None and dec.critic.candidates > 1
    s = RenderSettings(seconds=5.0, seed=7)
    a = generate(dec, ctl, ["happy", "sad"], s)
    b = generate(dec, ctl[::-1], ["sad", "happy"], s)                 # a row's music does not depend on the batch
    assert [x.tolist() for x in a] == [x.tolist() for x in b[::-1]]
    for x in a:
        _check_stream(x)
        assert len(x) and sum(e - E.TIME_SHIFT + 1 for e in x if E.TIME_SHIFT <= e < E.VELOCITY) >= 500
    other = generate(dec, ctl, ["happy", "sad"], RenderSettings(seconds=5.0, seed=8))
    assert [x.tolist() for x in other] != [x.tolist() for x in a]


def test_choose_takes_each_rows_highest_score():
    nf = len(CR.FEATURE_NAMES)
    crit = CR.Critic(np.zeros(nf), np.ones(nf), np.eye(2 * nf)[CR.FEATURE_NAMES.index("sounding_end")] * -1.0,
                     0.0, 2, 4, 0.0)
    # row 0: candidate A leaves 2 notes sounding, B none; row 1: A none, B 1 -> best = B (1) and A (2)
    on = E.NOTE_ON
    ph = np.array([[on + 60, on + 64, E.TIME_SHIFT, E.TIME_SHIFT], [on + 60, E.NOTE_OFF + 60, E.TIME_SHIFT, E.TIME_SHIFT],
                   [on + 62, E.TIME_SHIFT, E.NOTE_OFF + 62, E.TIME_SHIFT], [on + 62, E.TIME_SHIFT, on + 65, E.TIME_SHIFT]])
    best, clock, scores = CR.choose(crit, ph, CR.NoteClock(4), np.tile(C.unset(), (4, 1)), 2)
    assert best.tolist() == [1, 2]
    assert scores.tolist() == [-2.0, 0.0, 0.0, -2.0]
    assert not clock.sounding.any()


def test_phrase_features_of_a_known_phrase():
    held = np.zeros(128)
    s0 = np.zeros(128, bool)
    s0[48], held[48] = True, 3.0                           # a bass note sounding for 3 s already
    ev = [E.VELOCITY + 19, E.NOTE_ON + 60, E.NOTE_ON + 64, E.TIME_SHIFT + 49,           # chord, 0.5 s
          E.NOTE_OFF + 60, E.NOTE_OFF + 64, E.VELOCITY + 24, E.NOTE_ON + 67, E.TIME_SHIFT + 49]   # G, 0.5 s
    x, extra = CR.phrase_features(np.array(ev), s0, held)
    f = dict(zip(CR.FEATURE_NAMES, x))
    assert f["log_density"] == pytest.approx(np.log2(1 + 3 / 1.0))
    assert f["sounding_mean"] == pytest.approx((3 * 0.5 + 2 * 0.5) / 1.0)
    assert f["sounding_end"] == 2 and f["longest_held"] == pytest.approx(4.0)
    assert f["chord_size"] == pytest.approx(1.5) and f["repeat_share"] == 0.0
    assert f["velocity_sd"] == pytest.approx(np.std([79, 79, 99]))
    assert extra["held"][67] == pytest.approx(0.5)


def test_emotion_map_densities_are_within_real_30s_pieces_of_their_quadrant(shared_data):
    """Each corner's density lies within 20% of the median density of EMOPIA's held-out (test) clips of that
    quadrant, their first 30 s (the map is fitted on the training clips)."""
    from installation.evaluation.realism_run import real_pieces
    from installation.mood import emotion_map

    pieces, quad, _ = real_pieces(shared_data)
    dens = np.array([len(p) / 30.0 for p in pieces])
    emap = emotion_map.for_models(MODELS)
    for k, q in enumerate(("q1", "q2", "q3", "q4")):
        real = dens[quad == k]
        asked = getattr(emap, q).density
        assert np.percentile(real, 10) <= asked <= np.percentile(real, 90), (q, asked)
        assert abs(asked / np.median(real) - 1) <= 0.2, (q, asked, np.median(real))


def test_the_live_performer_with_the_critic_is_seeded_and_plays_only_possible_events(shipped):
    """Performer (the live voice): the first phrase after a prime event by event, then the critic's phrases;
    the same seed gives the same events, and a re-prime (scene change) drops the rest of the chosen phrase."""
    from installation.music.decoder import Performer

    _, dec, ctl = shipped

    def play(seed, n=200, reprime_at=None):
        p = Performer(dec, seed=seed)
        p.prime(dec.initial(ctl[:1]))
        out = []
        for i in range(n):
            if i == reprime_at:
                p.prime(dec.initial(ctl[1:]), mix=0.5)
                assert p.phrase == [] and p.solo == dec.critic.phrase_events
            out.append(p.next(ctl[0] if reprime_at is None or i < reprime_at else ctl[1]))
        return out, p

    a, p = play(5)
    assert p.candidates == dec.critic.candidates > 1
    assert a == play(5)[0] and a != play(6)[0]
    _check_stream(a)
    for at in (100, 120, 131, 150):                                  # at and inside chosen phrases
        b, _ = play(5, reprime_at=at)
        assert b[:at] == a[:at]
        _check_stream(b)                                             # what was dropped never counts as sounding


def test_the_mask_lifts_the_pedal_at_a_chord_change_and_presses_it_again():
    from installation.mood.controls import chord_code

    c, f = chord_code({0, 4, 7}), chord_code({5, 9, 0})
    z = np.zeros((2, E.VOCAB_SIZE))
    ns = NoteState(2, lift_at_chord=True, repress_s=0.1)
    ns.mask(z, np.stack([c, c]))
    ns.update(np.array([E.PEDAL_DOWN, E.PEDAL_DOWN]))
    m = ns.mask(z, np.stack([c, f]))                                 # row 1's chord changes, its pedal down
    assert np.isfinite(m[0]).sum() > 100                              # row 0: free
    assert np.flatnonzero(np.isfinite(m[1])).tolist() == [E.PEDAL_UP]  # row 1: only the lift
    ns.update(np.array([E.TIME_SHIFT, E.PEDAL_UP]))
    for _ in range(2):                                                # 100 ms after the lift: only the press
        assert np.isfinite(ns.mask(z, np.stack([c, f]))[1]).sum() > 100
        ns.update(np.array([E.TIME_SHIFT, E.TIME_SHIFT + 4]))
    assert np.flatnonzero(np.isfinite(ns.mask(z, np.stack([c, f]))[1])).tolist() == [E.PEDAL_DOWN]
    ns.update(np.array([E.TIME_SHIFT, E.PEDAL_DOWN]))
    assert np.isfinite(ns.mask(z, np.stack([c, f]))[1]).sum() > 100  # pressed: free again
    # the pedal up at a change: nothing forced; no chord asked: nothing forced; off: nothing forced
    up = NoteState(1, lift_at_chord=True)
    up.mask(z[:1], c[None])
    assert np.isfinite(up.mask(z[:1], f[None])).sum() > 100
    for ns, asked in ((NoteState(1, lift_at_chord=True), None), (NoteState(1, lift_at_chord=False), (c, f))):
        ns.mask(z[:1], None if asked is None else asked[0][None])
        ns.update(np.array([E.PEDAL_DOWN]))
        assert np.isfinite(ns.mask(z[:1], None if asked is None else asked[1][None])).sum() > 100
