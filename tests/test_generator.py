"""The generator's handling of a live scene change: the new scene enters promptly."""
import threading

import numpy as np

from installation.music import events as E
from installation import manifest as M
from installation.music.decoder import Performer, open_decoder
from installation.music.generator import GeneratorConfig, GeneratorThread


def make(tempo_scale=1.0):
    perf = Performer(open_decoder(M.load(None)), seed=0)
    return GeneratorThread(perf, scheduler=None, timeline=None,
                           cfg=GeneratorConfig(tempo_scale=tempo_scale, entry_gap_s=0.25), stop=threading.Event())


def shift(seconds):
    return E.TIME_SHIFT + int(round(seconds * E.STEPS_PER_SECOND)) - 1


def test_a_long_rest_after_a_scene_change_is_cut_to_the_entry_gap():
    g = make()
    g._entry_deadline = 10.0 + g.cfg.entry_gap_s          # the change was cut at music time 10.0
    ev = g._shorten_entry_rest(shift(0.8), 10.0)
    assert ev == shift(0.25)
    assert int(g.p.last[0]) == ev                          # the model hears the rest that was played


def test_a_short_rest_is_kept_and_late_rests_shrink_to_one_step():
    g = make()
    g._entry_deadline = 10.25
    assert g._shorten_entry_rest(shift(0.1), 10.0) == shift(0.1)
    assert g._shorten_entry_rest(shift(0.5), 10.3) == E.TIME_SHIFT       # past the deadline: 10 ms steps


def test_entry_gap_counts_clock_time_under_tempo_scale():
    g = make(tempo_scale=2.0)                              # music plays at half speed
    g._entry_deadline = 10.0 + g.cfg.entry_gap_s / 2.0
    assert g._shorten_entry_rest(shift(1.0), 10.0) == shift(0.125)


def test_a_scene_change_ends_the_phrase_for_the_model_and_breathes():
    """The notes the scheduler closes at the cut are note-offs the model hears, then a rest of the breath."""
    g = make(tempo_scale=2.0)
    controls = np.zeros(getattr(g.p.decoder, "inner", g.p.decoder).control_dim, np.float32)
    g.fade.set(0.0, controls)
    g.p.prime(g.p.decoder.initial(controls[None, :]))
    for ev in (E.NOTE_ON + 60, E.NOTE_ON + 64, shift(0.3)):
        g.stream.feed(ev)
    g.p.last = np.array([shift(0.3)], np.int64)
    before = g.stream.time
    told = []
    real_next = g.p.next
    g.p.next = lambda c: (told.append(int(g.p.last[0])), real_next(c))[1]
    g._end_phrase([60, 64])
    g.p.next = real_next
    # each told event was consumed by one decoder step; the last waits as the next step's input
    assert told == [shift(0.3), E.NOTE_OFF + 60, E.NOTE_OFF + 64]
    assert int(g.p.last[0]) == shift(g.cfg.entry_breath_s / 2.0)     # the breath, in music time
    assert abs(g.stream.time - before - g.cfg.entry_breath_s / 2.0) < 1e-9
