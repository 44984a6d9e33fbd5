"""The shipped GRU with a fixed seed: it follows the chord it is asked at every step, and it plays the sustain pedal."""
from pathlib import Path
from types import SimpleNamespace

import mido
import numpy as np
import pytest

from installation import manifest as M
from installation.mood import controls as C
from installation.music import events as E

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / "exported_models"


class Chord:
    """A harmony plan that holds one chord (what a chord played on a keyboard asks)."""

    def __init__(self, pcs):
        self.chord = SimpleNamespace(pcs=frozenset(pcs))

    def chord_at(self, t):
        return self.chord


@pytest.fixture(scope="module")
def decoder():
    from installation.music.decoder import open_decoder

    man = M.load(MODELS)
    if man.model_config.get("control_dim", 24) < C.CONTROL_DIM:
        pytest.fail("the shipped GRU has no chord control: re-export it (python -m installation.training export)")
    return man, open_decoder(man, threads=1)


def _pieces(decoder, plans, seconds=10.0, candidates=1):
    from installation.music.render import RenderSettings, generate

    man, dec = decoder
    n = len(plans)
    ctl = np.tile(C.encode(C.Targets(density=6.0, velocity=64)), (n, 1))       # no key: only the chord says which notes
    keys = [f"chord-{i}" for i in range(n)]
    return generate(dec, ctl, keys, RenderSettings(seconds=seconds, seed=11, candidates=candidates), plans)


def _share_in(seqs, pcs):
    on = np.concatenate([np.asarray(s)[np.asarray(s) < E.NOTE_OFF] for s in seqs]) % 12
    return float(np.isin(on, list(pcs)).mean()), len(on)


def test_the_decoder_follows_an_asked_chord(decoder):
    c_major, fs_major = {0, 4, 7}, {6, 10, 1}                  # no pitch class in common
    a = _pieces(decoder, [Chord(c_major)] * 6)
    b = _pieces(decoder, [Chord(fs_major)] * 6)
    a_in_a, n_a = _share_in(a, c_major)
    a_in_b, _ = _share_in(a, fs_major)
    b_in_b, n_b = _share_in(b, fs_major)
    b_in_a, _ = _share_in(b, c_major)
    assert n_a > 100 and n_b > 100
    # three pitch classes of twelve: a quarter of the notes by chance
    assert a_in_a > 0.5 and b_in_b > 0.5, (a_in_a, b_in_b)
    assert a_in_a > a_in_b + 0.3 and b_in_b > b_in_a + 0.3, (a_in_a, a_in_b, b_in_b, b_in_a)


def test_a_chord_change_is_followed_within_the_piece(decoder):
    """Half way through, the asked chord moves from C major to F# major: the second half follows the second."""
    class Change:
        def chord_at(self, t):
            return SimpleNamespace(pcs=frozenset({0, 4, 7} if t < 5.0 else {6, 10, 1}))

    seqs = _pieces(decoder, [Change()] * 6, seconds=10.0)
    first, second = [], []
    for s in seqs:
        t = 0.0
        for e in np.asarray(s).tolist():
            if E.TIME_SHIFT <= e < E.TIME_SHIFT + E.NUM_TIME_SHIFTS:
                t += (e - E.TIME_SHIFT + 1) / E.STEPS_PER_SECOND
            elif e < E.NOTE_OFF and (t < 4.5 or t > 5.5):
                (first if t < 5.0 else second).append(e % 12)
    # each half: more of its notes in the chord asked then than in the other one (chance: a quarter in each)
    assert np.isin(first, [0, 4, 7]).mean() > 0.4 and np.isin(second, [6, 10, 1]).mean() > 0.4
    assert np.isin(first, [0, 4, 7]).mean() > np.isin(first, [6, 10, 1]).mean() + 0.2
    assert np.isin(second, [6, 10, 1]).mean() > np.isin(second, [0, 4, 7]).mean() + 0.2


def test_the_model_plays_the_pedal(decoder, tmp_path):
    seqs = _pieces(decoder, [None] * 6, seconds=20.0, candidates=None)
    downs = sum(int((np.asarray(s) == E.PEDAL_DOWN).sum()) for s in seqs)
    assert downs >= 6                                          # about one press per piece at least
    for s in seqs:                                             # presses and lifts alternate (the mask)
        pedal = [e for e in np.asarray(s).tolist() if e >= E.PEDAL]
        assert all(a != b for a, b in zip(pedal, pedal[1:]))
        assert not pedal or pedal[0] == E.PEDAL_DOWN
    longest = max(max((n.end - n.start for n in E.events_to_notes(s)), default=0) for s in seqs)
    assert longest > 1.0                                       # the pedal sounds notes on
    out = tmp_path / "pedal.mid"
    E.events_to_midi(next(s for s in seqs if (np.asarray(s) == E.PEDAL_DOWN).any()), out)
    assert any(m.type == "control_change" and m.control == 64 for m in mido.MidiFile(out))


class Changing:
    """A harmony plan that changes chord every ``every`` seconds, round four chords of C major."""
    CHORDS = ({0, 4, 7}, {9, 0, 4}, {5, 9, 0}, {7, 11, 2})

    def __init__(self, every=0.8033):        # changes off the 10 ms grid: no float ties with the sampler's clock
        self.every = every

    def chord_at(self, t):
        return SimpleNamespace(pcs=frozenset(self.CHORDS[int(t / self.every) % 4]))


def _lifts_at_changes(seq, plan):
    """(chord changes met with the pedal down, those lifted at once): a change is met at the first event sampled
    at or past it, as the chord control asks it."""
    t, down, met, lifted = 0.0, False, 0, 0
    last = plan.chord_at(0.0).pcs
    for e in np.asarray(seq).tolist():
        now = plan.chord_at(t).pcs
        if now != last and down:
            met += 1
            lifted += e == E.PEDAL_UP
        last = now
        down = {E.PEDAL_DOWN: True, E.PEDAL_UP: False}.get(e, down)
        if E.TIME_SHIFT <= e < E.TIME_SHIFT + E.NUM_TIME_SHIFTS:
            t += (e - E.TIME_SHIFT + 1) / E.STEPS_PER_SECOND
    return met, lifted


@pytest.mark.parametrize("candidates", [1, None])          # event by event, and the critic's phrases
def test_the_pedal_lifts_where_the_asked_chord_changes(decoder, candidates):
    """Legato pedalling: a chord change met with the pedal down lifts it there, in the batch render, and the
    presses and lifts still alternate (each press gets its lift)."""
    plans = [Changing()] * 4
    seqs = _pieces(decoder, plans, seconds=20.0, candidates=candidates)
    met = lifted = 0
    for s, p in zip(seqs, plans):
        m, lf = _lifts_at_changes(s, p)
        met, lifted = met + m, lifted + lf
        pedal = [e for e in np.asarray(s).tolist() if e >= E.PEDAL]
        assert all(a != b for a, b in zip(pedal, pedal[1:])) and (not pedal or pedal[0] == E.PEDAL_DOWN)
    assert met >= 8 and lifted == met, (met, lifted)


def test_the_live_performer_lifts_the_pedal_where_the_asked_chord_changes(decoder):
    """The live loop (the generator's Performer, event by event then by the critic's phrases) does the same."""
    from installation.music.decoder import Performer

    man, dec = decoder
    plan = Changing()
    ctl = C.encode(C.Targets(density=6.0, velocity=64))
    code = lambda t: C.chord_code(plan.chord_at(t).pcs)              # noqa: E731
    p = Performer(dec, seed=4)
    p.prime(dec.initial(ctl[None]))
    t, seq = 0.0, []
    while t < 30.0:
        c = np.array(ctl, np.float32, copy=True)
        c[C.CHORD:C.CHORD + 13] = code(t)
        e = p.next(c, chord_at=code, now=t)
        seq.append(e)
        if E.TIME_SHIFT <= e < E.TIME_SHIFT + E.NUM_TIME_SHIFTS:
            t += (e - E.TIME_SHIFT + 1) / E.STEPS_PER_SECOND
    met, lifted = _lifts_at_changes(seq, plan)
    assert met >= 4 and lifted == met, (met, lifted)
