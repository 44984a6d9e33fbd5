"""Emotion as CC and the clock's timing (pure code; the live tests hear them through JACK)."""
from installation.patches import parse_patch
from installation.patches.cc import EmotionCC, to_cc
from installation.patches.clock import CONTINUE, START, STOP, TICK, ClockOut, bpm_for_arousal


def test_cc_is_smoothed_sent_on_change_and_rate_limited():
    p = parse_patch({"controls": {"rate_hz": 10},
                     "cc": [{"source": "arousal", "number": 21, "channel": 2, "smoothing_s": 1.0},
                            {"source": "valence", "number": 20, "range": [127, 0], "smoothing_s": 0},
                            {"source": "scene", "number": 22, "pulse_s": 0.2}]})
    cc = EmotionCC(p.controls)
    first = cc.update(0.0, 0.5, -1.0, 0)
    assert (0xB1, 21, 0) in first and (0xB0, 20, to_cc(-0.5, 0, 127)) in first    # reversed range
    assert cc.update(0.05, 0.5, 1.0, 0) == []                 # within 1/rate_hz: nothing
    sent = []
    for k in range(2, 100):                                   # arousal jumps to +1: a glide, not a jump
        sent += [(k * 0.05, m[2]) for m in cc.update(k * 0.05, 0.5, 1.0, 0) if m[1] == 21]
    values = [v for _, v in sent]
    assert values == sorted(values) and len(set(values)) == len(values)   # rising, each value once
    assert all(b - a >= 0.1 - 1e-9 for (a, _), (b, _) in zip(sent, sent[1:]))   # at most rate_hz a second
    at_1s = next(v for t, v in sent if t >= 1.0 - 1e-9)
    assert 70 <= at_1s <= 90 and values[-1] >= 126            # ~63% of the way after 1 s, nearly there at 5 s
    assert cc.update(5.0, 0.5, 1.0, 0) == []                  # no change: nothing sent
    assert cc.update(5.2, 0.5, 1.0, 1) == [(0xB0, 22, 127)]   # a scene change: a pulse...
    assert cc.update(5.5, 0.5, 1.0, 1) == [(0xB0, 22, 0)]     # ...that ends after pulse_s


def test_clock_ticks_follow_the_tempo_and_transport():
    assert bpm_for_arousal(-1, 90, 130) == 90 and bpm_for_arousal(1, 90, 130) == 130
    c = ClockOut(120, 120)
    assert c.start(10.0) == [(10.0, (START,))]
    ticks = c.ticks_until(11.0 - 1e-9)
    assert len(ticks) == 48 and all(m == (TICK,) for _, m in ticks)       # 24 per beat at 120 bpm
    assert abs(ticks[1][0] - ticks[0][0] - 60 / (120 * 24)) < 1e-12
    assert c.stop(11.0) == [(11.0, (STOP,))] and c.ticks_until(20.0) == []
    assert c.start(20.0, CONTINUE) == [(20.0, (CONTINUE,))] and len(c.ticks_until(20.5 - 1e-9)) == 24
    fast = ClockOut(60, 180, smoothing_s=0)
    fast.set_arousal(0.0, 1.0)
    fast.start(0.0)
    assert len(fast.ticks_until(1.0 - 1e-9)) == 72                        # 180 bpm: 3 beats a second
