"""Scheduler: fake clock + recording sink for the rules; one threaded smoke test per wake-up path."""
from __future__ import annotations

import random
import threading
import time

import pytest

from installation.errors import UserError
from installation.midi.scheduler import Scheduler, SchedulerConfig
from realtime_parts import pedals_down


def on(p, v=100, ch=0):
    return (0x90 | ch, p, v)


def off(p, ch=0):
    return (0x80 | ch, p, 0)


def cc(n, v=0, ch=0):
    return (0xB0 | ch, n, v)


class FakeClock:
    def __init__(self, t=0.0):
        self.t = t

    def __call__(self):
        return self.t


class RecordingSink:
    """Keeps every message; ``fail`` makes send() return False for matching messages."""

    def __init__(self, fail=lambda msg: False):
        self.msgs = []
        self.ok = []
        self.threads = []
        self.fail = fail

    def send(self, msg):
        self.msgs.append(msg)
        self.threads.append(threading.current_thread())
        self.ok.append(not self.fail(msg))
        return self.ok[-1]


class ListRecorder:
    def __init__(self):
        self.items = []

    def add(self, t, msg):
        self.items.append((t, msg))


def make(**cfg):
    clock, sink = FakeClock(), RecordingSink()
    return Scheduler(sink, SchedulerConfig(**cfg), clock=clock), sink, clock


def notes_only(msgs):
    return [m for m in msgs if m[0] & 0xF0 in (0x80, 0x90)]


def assert_balanced(msgs):
    """Per (channel, pitch): on, off, on, off, ... and every on closed."""
    state = {}
    for m in notes_only(msgs):
        key = (m[0] & 0x0F, m[1])
        is_on = m[0] & 0xF0 == 0x90 and m[2] > 0
        assert state.get(key, False) != is_on, f"{m} out of turn"
        state[key] = is_on
    assert not any(state.values()), f"left open: {[k for k, v in state.items() if v]}"


# --- timing and order ---------------------------------------------------------

def test_sends_in_due_order_and_equal_due_times_keep_push_order():
    s, sink, _ = make()
    s.push([(0.2, cc(1, 1)), (0.1, cc(1, 2)), (0.2, cc(1, 3))])
    s.push([(0.1, cc(1, 4))])
    assert s.tick(0.05) == 0.1 and sink.msgs == []
    assert s.tick(0.1) == 0.2
    assert sink.msgs == [cc(1, 2), cc(1, 4)]
    assert s.tick(0.3) is None
    assert sink.msgs == [cc(1, 2), cc(1, 4), cc(1, 1), cc(1, 3)]


def test_pending():
    s, _, _ = make()
    assert s.pending() == 0
    s.push([(0.5, on(60)), (1.5, off(60))])
    s.push([(1.0, on(62))])
    assert s.pending() == 3
    s.tick(1.0)
    assert s.pending() == 1
    s.tick(2.0)
    assert s.pending() == 0


def test_push_rejects_non_messages():
    s, _, _ = make()
    with pytest.raises(ValueError):
        s.push([(0.0, (60, 100))])
    with pytest.raises(ValueError):
        s.push([(0.0, (0x90, 60))])
    assert s.pending() == 0


def test_lateness_is_now_minus_due():
    s, _, _ = make()
    s.push([(1.0, cc(1)), (1.0, cc(2)), (1.0, cc(3))])
    s.tick(1.004)
    st = s.stats()
    assert st["sent"] == 3
    assert st["lateness_p50"] == pytest.approx(0.004)
    assert st["lateness_max"] == pytest.approx(0.004)


def test_stats_window_is_a_ring_buffer():
    s, _, _ = make(stats_window=4)
    for i in range(10):                        # lateness 0.00, 0.01, ..., 0.09
        s.push([(float(i), cc(1, i))])
        s.tick(i + i / 100)
    st = s.stats()
    assert st["sent"] == 10
    assert st["lateness_max"] == pytest.approx(0.09)
    assert st["lateness_p50"] == pytest.approx(0.075)   # median of the last four: .06 .07 .08 .09


def test_stats_before_anything_was_sent():
    s, _, _ = make()
    st = s.stats()
    assert st["sent"] == 0 and st["lateness_p50"] is None and st["lateness_max"] is None


# --- late policy ----------------------------------------------------------------

def test_late_policy_send_sends_late_note_on():
    s, sink, _ = make(late_policy="send")
    s.push([(1.0, on(60))])
    s.tick(1.5)
    assert sink.msgs == [on(60)] and s.stats()["dropped_late"] == 0


def test_late_policy_drop_drops_late_note_ons_only():
    s, sink, _ = make(late_policy="drop", late_tolerance_s=0.020)
    s.push([(0.0, on(60)), (1.0, on(62)), (1.0, cc(7, 90)), (1.0, off(60)), (1.1, off(62))])
    s.tick(0.010)                                        # 10 ms late: within tolerance
    s.tick(1.050)                                        # 50 ms late
    s.tick(1.2)
    assert sink.msgs == [on(60), cc(7, 90), off(60)]     # on(62) dropped, its off(62) is an orphan
    st = s.stats()
    assert st["dropped_late"] == 1 and st["orphans_skipped"] == 1


def test_config_is_checked():
    with pytest.raises(UserError, match="late_policy"):
        SchedulerConfig(late_policy="skip")
    with pytest.raises(UserError, match="max_polyphony"):
        SchedulerConfig(max_polyphony=0)
    with pytest.raises(UserError, match="max_note_s"):
        SchedulerConfig(max_note_s=0)


# --- the open-note table ---------------------------------------------------------

def test_retrigger_closes_the_open_note_first():
    s, sink, _ = make()
    s.push([(0.0, on(60, 80)), (0.5, on(60, 90)), (1.0, off(60)), (1.5, off(60))])
    s.tick(2.0)
    assert sink.msgs == [on(60, 80), off(60), on(60, 90), off(60)]
    st = s.stats()
    assert st["retriggered"] == 1 and st["orphans_skipped"] == 1


def test_orphan_note_off_is_skipped_and_velocity_zero_is_a_note_off():
    s, sink, _ = make()
    s.push([(0.0, off(61)), (0.1, on(60)), (0.2, (0x90, 60, 0)), (0.3, (0x90, 60, 0))])
    s.tick(1.0)
    assert sink.msgs == [on(60), (0x90, 60, 0)]
    assert s.open_notes == {} and s.stats()["orphans_skipped"] == 2


def test_channels_are_separate_keys():
    s, sink, _ = make()
    s.push([(0.0, on(60, ch=0)), (0.0, on(60, ch=1)), (0.1, off(60, ch=1))])
    s.tick(0.1)
    assert sink.msgs == [on(60, ch=0), on(60, ch=1), off(60, ch=1)]
    assert list(s.open_notes) == [(0, 60)]


def test_polyphony_cap_steals_the_oldest_note():
    s, sink, _ = make(max_polyphony=2)
    s.push([(0.0, on(60)), (0.1, on(62)), (0.2, on(64)), (0.3, off(60)), (0.4, off(62)), (0.5, off(64))])
    s.tick(0.25)
    assert sink.msgs == [on(60), on(62), off(60), on(64)]
    assert list(s.open_notes) == [(0, 62), (0, 64)]
    s.tick(1.0)
    assert sink.msgs[4:] == [off(62), off(64)]           # the stolen note's own off is an orphan now
    st = s.stats()
    assert st["stolen"] == 1 and st["orphans_skipped"] == 1


def test_retrigger_does_not_steal():
    s, sink, _ = make(max_polyphony=2)
    s.push([(0.0, on(60)), (0.1, on(62)), (0.2, on(62))])
    s.tick(0.3)
    assert sink.msgs == [on(60), on(62), off(62), on(62)]
    assert s.stats()["stolen"] == 0


def test_a_forgotten_note_is_closed_after_max_note_s_and_tick_says_when():
    s, sink, _ = make(max_note_s=2.0)
    s.push([(1.0, on(60)), (5.0, off(60))])
    assert s.tick(1.0) == pytest.approx(3.0)             # the deadline, before the queued off at 5.0
    assert s.tick(2.9) == pytest.approx(3.0) and sink.msgs == [on(60)]
    assert s.tick(3.001) == 5.0
    assert sink.msgs == [on(60), off(60)]
    s.tick(5.0)
    assert sink.msgs == [on(60), off(60)]                # the queued off is now an orphan
    st = s.stats()
    assert st["forced_closed"] == 1 and st["orphans_skipped"] == 1
    assert st["lateness_max"] == pytest.approx(0.001)    # the forced off was due at the deadline


def test_max_note_closes_oldest_first_and_only_expired():
    s, sink, _ = make(max_note_s=1.0)
    s.push([(0.0, on(60)), (0.5, on(62)), (0.9, on(64))])
    s.tick(0.0)
    s.tick(0.5)
    assert s.tick(0.9) == pytest.approx(1.0)
    assert s.tick(1.6) == pytest.approx(1.9)
    assert sink.msgs[3:] == [off(60), off(62)]
    assert list(s.open_notes) == [(0, 64)]


def test_failed_send_keeps_the_table_so_the_note_off_still_goes_out():
    rec = ListRecorder()
    sink = RecordingSink(fail=lambda m: m == on(60))
    s = Scheduler(sink, clock=FakeClock(), recorder=rec)
    s.push([(0.0, on(60)), (1.0, off(60))])
    s.tick(0.0)
    assert (0, 60) in s.open_notes
    s.tick(1.0)
    assert sink.msgs == [on(60), off(60)] and s.open_notes == {}
    assert [m for _, m in rec.items] == [on(60), off(60)]
    assert s.stats()["send_failed"] == 1


def test_messy_stream_every_note_on_gets_exactly_one_note_off():
    rng = random.Random(1234)
    rec = ListRecorder()
    clock, sink = FakeClock(), RecordingSink(fail=lambda m: m[1] % 7 == 0)
    s = Scheduler(sink, SchedulerConfig(max_polyphony=6, max_note_s=0.5, late_policy="drop"),
                  clock=clock, recorder=rec)
    gen_t = now = 0.0                                       # a generator staying ~0.5 s ahead
    while now < 120.0:
        while gen_t < now + 0.5:
            gen_t += rng.choice([0.0, 0.0, 0.01, 0.05, 0.2])
            p, ch, kind = rng.randrange(48, 60), rng.randrange(2), rng.random()
            msg = on(p, rng.randrange(1, 128), ch) if kind < 0.5 else off(p, ch) if kind < 0.9 else (0x90 | ch, p, 0)
            s.push([(gen_t, msg)])
        now += rng.choice([0.001, 0.01, 0.03, 0.1])        # sometimes late enough to drop
        s.tick(now)
        assert len(s.open_notes) <= 6
        if rng.random() < 0.02:                             # scene change: regenerate from the cut
            gen_t = now + rng.random() * 0.3
            s.discard_after(gen_t)
    s.stop()
    assert_balanced(sink.msgs)
    assert [m for _, m in rec.items] == sink.msgs
    st = s.stats()
    assert st["stolen"] > 0 and st["forced_closed"] > 0 and st["dropped_late"] > 0
    assert st["retriggered"] > 0 and st["orphans_skipped"] > 0 and st["send_failed"] > 0


# --- scene change ---------------------------------------------------------------

def test_discard_after_drops_later_messages_and_closes_what_would_stay_open():
    s, sink, _ = make()
    s.push([(0.0, on(60)), (0.0, on(62)), (0.0, on(64)),
            (0.5, off(62)),                  # kept: 62 closes itself
            (0.8, on(65)),                   # kept, but its off is dropped
            (1.5, off(60)), (1.5, off(64)), (1.6, off(65)), (1.7, on(67)), (1.8, off(67))])
    s.tick(0.0)
    assert s.discard_after(1.0) == 5
    s.push([(1.0, on(64, 50))])              # the new scene's first note, at the cut
    s.tick(5.0)
    assert sink.msgs[3:] == [off(62), on(65), off(60), off(64), off(65), on(64, 50)]
    assert list(s.open_notes) == [(0, 64)]


def test_discard_after_with_nothing_open_adds_nothing():
    s, sink, _ = make()
    s.push([(2.0, off(1)), (3.0, off(2))])
    assert s.discard_after(2.5) == 1
    assert s.pending() == 1
    assert s.discard_after(0.0) == 1
    assert s.pending() == 0


def test_discard_after_keeps_controllers_and_clock():
    """A scene change drops the old scene's notes; a patch's CCs and MIDI clock ticks run on."""
    s, sink, _ = make()
    s.push([(2.0, cc(1)), (3.0, on(60)), (3.0, (0xF8,)), (3.5, cc(2)), (4.0, off(60))])
    assert s.discard_after(2.5) == 2
    s.tick(10.0)
    assert sink.msgs == [cc(1), (0xF8,), cc(2)]


# --- stop and panic -------------------------------------------------------------

def test_stop_closes_open_notes_then_all_off_on_each_used_channel():
    rec = ListRecorder()
    clock, sink = FakeClock(), RecordingSink()
    s = Scheduler(sink, clock=clock, recorder=rec)
    s.push([(0.0, on(60)), (0.0, on(61, ch=3)), (0.0, cc(64, 127, ch=5)), (9.0, on(70))])
    s.tick(0.0)
    clock.t = 0.5
    s.stop()
    assert sink.msgs[3:] == [off(60), off(61, ch=3), cc(64, 0, ch=5),
                             cc(123, ch=0), cc(120, ch=0), cc(123, ch=3), cc(120, ch=3),
                             cc(123, ch=5), cc(120, ch=5)]
    assert rec.items[3:] == [(0.5, m) for m in sink.msgs[3:]]
    assert s.open_notes == {} and s.pending() == 0


def test_panic_keeps_going_when_a_send_raises():
    class Flaky(RecordingSink):
        def send(self, msg):
            if msg == off(60):
                raise OSError("port gone")
            return super().send(msg)

    sink = Flaky()
    s = Scheduler(sink, clock=FakeClock())
    s.push([(0.0, on(60)), (0.0, on(62))])
    s.tick(0.0)
    s.panic()
    assert sink.msgs == [on(60), on(62), off(62), cc(123), cc(120)]
    assert s.open_notes == {} and s.stats()["send_failed"] == 1


# --- the thread, with the real clock (order and completeness only) ----------------

def wait_until(pred, limit=20.0):
    """A deadlock guard, not a timing check."""
    end = time.monotonic() + limit
    while not pred():
        assert time.monotonic() < end, "gave up waiting"
        time.sleep(0.005)


def test_thread_plays_a_stream_in_order_and_stop_closes_everything():
    sink = RecordingSink()
    s = Scheduler(sink)
    t0 = time.perf_counter() + 0.05
    items = []
    for i in range(60):
        items += [(t0 + i * 0.004, on(40 + i % 30)), (t0 + i * 0.004 + 0.002, off(40 + i % 30))]
    items.append((t0 + 0.1, on(90)))                        # left open for stop()
    s.push(items[: len(items) // 2])
    s.start()
    s.push(items[len(items) // 2:])
    expected = [m for _, m in sorted(items, key=lambda x: x[0])]
    wait_until(lambda: len(sink.msgs) >= len(expected))
    s.stop(timeout=10.0)
    assert sink.msgs[: len(expected)] == expected
    assert sink.msgs[len(expected):] == [off(90), cc(123), cc(120)]
    assert all(th.name == "scheduler" for th in sink.threads[: len(expected)])
    assert s.error is None and s.stats()["sent"] == len(expected) + 3


def test_an_earlier_push_wakes_the_thread():
    sink = RecordingSink()
    s = Scheduler(sink)
    s.start()
    try:
        s.push([(time.perf_counter() + 3600.0, cc(1, 1))])  # the thread now waits an hour
        wait_until(lambda: s._next_wake < float("inf"))
        s.push([(time.perf_counter() + 0.01, cc(1, 2))])
        wait_until(lambda: sink.msgs == [cc(1, 2)])
    finally:
        s.stop(timeout=10.0)
    assert s.pending() == 0 and sink.msgs == [cc(1, 2), cc(123), cc(120)]


def test_the_thread_wakes_to_close_a_forgotten_note():
    sink = RecordingSink()
    s = Scheduler(sink, SchedulerConfig(max_note_s=0.05))
    s.start()
    try:
        s.push([(time.perf_counter(), on(60))])
        wait_until(lambda: sink.msgs == [on(60), off(60)])   # nothing else is queued to wake it
    finally:
        s.stop(timeout=10.0)
    assert s.stats()["forced_closed"] == 1


def test_panic_while_running_is_sent_by_the_scheduler_thread():
    sink = RecordingSink()
    s = Scheduler(sink)
    s.start()
    try:
        s.push([(time.perf_counter(), on(60))])
        wait_until(lambda: len(sink.msgs) == 1)
        s.panic()
        assert sink.msgs == [on(60), off(60), cc(123), cc(120)]
        assert all(th.name == "scheduler" for th in sink.threads)
    finally:
        s.stop(timeout=10.0)


def test_panic_after_the_thread_died_is_sent_from_the_caller():
    class Dies(RecordingSink):
        def send(self, msg):
            if msg == cc(1, 99):
                raise RuntimeError("boom")
            return super().send(msg)

    sink = Dies()
    s = Scheduler(sink)
    s.start()
    now = time.perf_counter()
    s.push([(now, on(60)), (now + 0.001, cc(1, 99)), (now + 0.002, off(60))])
    wait_until(lambda: s.error is not None)
    s._thread.join(10.0)
    s.panic()
    assert isinstance(s.error, RuntimeError)
    assert sink.msgs == [on(60), off(60), cc(123), cc(120)]
    assert sink.threads[-1] is threading.current_thread()


def test_stop_without_start_and_start_twice():
    s, sink, _ = make()
    s.start()
    with pytest.raises(RuntimeError):
        s.start()
    s.stop(timeout=10.0)
    assert not s._thread.is_alive() and sink.msgs == []


class FlakyPort(RecordingSink):
    """A sink with a ``connected`` flag, like MidiOut: while disconnected every send fails."""

    def __init__(self):
        super().__init__(fail=lambda m: not self.connected)
        self.connected = True


def test_note_offs_lost_while_the_port_was_away_are_sent_when_it_returns():
    sink = FlakyPort()
    s = Scheduler(sink, clock=FakeClock())
    s.push([(0.0, on(60)), (0.0, on(64)), (1.0, off(60)), (1.0, off(64)), (3.0, on(64)), (4.0, off(64))])
    s.tick(0.0)
    sink.connected = False                         # the JACK server died: the note-offs go nowhere
    s.tick(1.0)
    assert s.open_notes == {}
    delivered = lambda: [m for m, ok in zip(sink.msgs, sink.ok) if ok]
    sink.connected = True                          # it is back
    s.tick(2.0)
    s.tick(4.0)
    got = delivered()
    assert got.count(off(60)) == 1 and got.count(off(64)) == 2, got
    assert_balanced(got)


def test_panic_includes_owed_note_offs():
    sink = FlakyPort()
    s = Scheduler(sink, clock=FakeClock())
    s.push([(0.0, on(60)), (1.0, off(60))])
    s.tick(0.0)
    sink.connected = False
    s.tick(1.0)
    sink.connected = True
    s.panic()
    got = [m for m, ok in zip(sink.msgs, sink.ok) if ok]
    assert got.count(off(60)) == 1


def test_a_clock_stop_is_the_last_tick_until_the_clock_starts_again():
    """A generator may push one more batch after the clock Stop (the Engine stops it after the patch's Stop
    went out through the sender): no tick due after a Stop is sent, until a Start or Continue."""
    s, sink, _ = make()
    s.push([(0.0, (0xFA,))] + [(0.1 * i, (0xF8,)) for i in range(1, 6)])
    s.push([(0.25, (0xFC,))])                                   # drops the ticks queued after 0.25
    s.push([(0.1 * i, (0xF8,)) for i in range(6, 9)] + [(0.3, on(60)), (0.4, off(60))])   # a late batch
    s.tick(1.0)
    assert [m for m in sink.msgs if m[0] >= 0xF8] == [(0xFA,), (0xF8,), (0xF8,), (0xFC,)]
    assert on(60) in sink.msgs and off(60) in sink.msgs        # the music is not the clock's
    s.push([(1.1, (0xFA,)), (1.2, (0xF8,))])                   # started again: it ticks again
    s.tick(2.0)
    assert sink.msgs[-2:] == [(0xFA,), (0xF8,)]


def test_lateness_percentiles_agree_with_numpy():
    """The scheduler works out p50/p99 without numpy (the sender process never imports it): numpy is the oracle."""
    import numpy as np
    from installation.midi.scheduler import percentile
    rng = random.Random(4)
    for n in (1, 2, 3, 100, 4096):
        xs = [rng.expovariate(2000) for _ in range(n)]
        for q in (0, 50, 99, 100):
            assert percentile(sorted(xs), q) == pytest.approx(float(np.percentile(xs, q)), rel=1e-12, abs=1e-15)


# --- the pedal: held state, as a note ------------------------------------------------

def test_a_pedal_down_is_held_and_a_pedal_up_clears_it():
    s, sink, clock = make()
    s.push([(0.0, cc(64, 127)), (0.5, cc(66, 100, ch=2)), (1.0, cc(64, 0)), (1.5, cc(64, 0))])
    s.tick(0.6)
    assert s.held_pedals == {(0, 64): 0.6, (2, 66): 0.6}
    s.tick(1.0)
    assert s.held_pedals == {(2, 66): 0.6}
    s.tick(2.0)                                           # a pedal-up of a pedal not held is an orphan
    assert sink.msgs == [cc(64, 127), cc(66, 100, ch=2), cc(64, 0)]
    assert s.stats()["orphans_skipped"] == 1
    with pytest.raises(ValueError):
        s.push([(2.0, (0xB0, 64))])


def test_panic_lifts_every_pedal_held_with_the_note_offs_before_all_notes_off():
    s, sink, _ = make()
    s.push([(0.0, on(60)), (0.0, cc(64, 127)), (0.0, cc(66, 127, ch=1)), (0.0, cc(67, 90)), (0.0, cc(67, 0)),
            (0.0, cc(7, 100, ch=2))])
    s.tick(0.0)
    s.panic()
    assert sink.msgs[6:] == [off(60), cc(64, 0), cc(66, 0, ch=1),
                             cc(123), cc(120), cc(123, ch=1), cc(120, ch=1), cc(123, ch=2), cc(120, ch=2)]
    assert s.held_pedals == {} and pedals_down(sink.msgs) == set()


def test_stop_lifts_the_pedal_from_the_scheduler_thread():
    sink = RecordingSink()
    s = Scheduler(sink)
    s.start()
    s.push([(time.perf_counter(), on(60)), (time.perf_counter(), cc(64, 127))])
    wait_until(lambda: len(sink.msgs) == 2)
    s.stop(timeout=10.0)
    assert sink.msgs[2:] == [off(60), cc(64, 0), cc(123), cc(120)]
    assert all(th.name == "scheduler" for th in sink.threads)


def test_a_scene_change_lifts_the_pedal_and_drops_the_old_scenes_pedals():
    s, sink, _ = make()
    s.push([(0.0, on(60)), (0.0, cc(64, 127)),
            (0.8, cc(66, 127, ch=1)),                   # kept: held at the cut, so lifted there
            (1.5, cc(64, 0)), (1.6, cc(64, 127)), (1.7, off(60)), (2.0, cc(7, 50))])
    s.tick(0.0)
    assert s.discard_after(1.0) == 3
    s.push([(1.0, on(62)), (1.0, cc(64, 127))])         # the new scene's own pedal, at the cut
    s.tick(5.0)
    assert sink.msgs[2:] == [cc(66, 127, ch=1), off(60), cc(64, 0), cc(66, 0, ch=1),
                             on(62), cc(64, 127), cc(7, 50)]
    assert s.held_pedals == {(0, 64): 5.0}


def test_a_pedal_held_too_long_is_lifted_and_tick_says_when():
    s, sink, _ = make(max_pedal_s=10.0)
    s.push([(0.0, cc(64, 127)), (4.0, cc(67, 127))])
    assert s.tick(0.0) == 4.0
    assert s.tick(4.0) == 10.0                          # nothing queued: the oldest pedal's deadline
    s.tick(12.0)
    assert sink.msgs == [cc(64, 127), cc(67, 127), cc(64, 0)]
    assert s.held_pedals == {(0, 67): 4.0} and s.stats()["pedals_lifted"] == 1
    with pytest.raises(UserError, match="max_pedal_s"):
        SchedulerConfig(max_pedal_s=0)


def test_a_port_that_comes_back_gets_the_pedal_up():
    """The pedal went down, then the port went away: when it is back it gets its pedal-up, whether the music
    lifted the pedal meanwhile (that send failed) or not."""
    sink = FlakyPort()
    s = Scheduler(sink, clock=FakeClock())
    s.push([(0.0, cc(64, 127)), (0.0, cc(66, 127)), (0.0, on(60)),
            (1.0, off(60)), (1.0, cc(66, 0)), (3.0, on(62)), (4.0, off(62))])
    s.tick(0.0)
    sink.connected = False
    s.tick(1.0)
    sink.connected = True
    s.tick(2.0)
    s.tick(4.0)
    delivered = [m for m, ok in zip(sink.msgs, sink.ok) if ok]
    assert delivered[3:] == [off(60), cc(64, 0), cc(66, 0), on(62), off(62)], delivered
    assert pedals_down(delivered) == set() and s.held_pedals == {}
    assert_balanced(delivered)


def test_a_pedal_up_sent_just_before_the_loss_was_noticed_is_sent_again():
    """MidiOut notices a lost port within about 0.5 s; a pedal-up sent meanwhile "went out" to nobody."""
    sink = FlakyPort()
    s = Scheduler(sink, clock=FakeClock())
    s.push([(0.0, cc(64, 127)), (0.5, cc(64, 0)), (1.0, on(60)), (3.0, off(60))])
    s.tick(0.5)                                         # the pedal-up "went out": the port was already gone
    sink.connected = False
    s.tick(1.0)                                         # now a send fails
    sink.connected = True
    s.tick(2.0)
    delivered = [m for m, ok in zip(sink.msgs, sink.ok) if ok]
    assert delivered == [cc(64, 127), cc(64, 0), cc(64, 0)]


def test_a_panic_while_the_port_is_away_is_paid_when_it_is_back():
    sink = FlakyPort()
    s = Scheduler(sink, clock=FakeClock())
    s.push([(0.0, on(60)), (0.0, cc(64, 127))])
    s.tick(0.0)
    sink.connected = False
    s.panic()                                           # the thinker went silent while the port was away
    assert s.tick(1.0) is not None                      # it keeps looking for the port
    sink.connected = True
    s.tick(1.1)
    delivered = [m for m, ok in zip(sink.msgs, sink.ok) if ok]
    assert delivered[2:] == [off(60), cc(64, 0)]


def test_messy_stream_with_pedals_leaves_no_pedal_down():
    rng = random.Random(4321)
    clock, sink = FakeClock(), FlakyPort()
    s = Scheduler(sink, SchedulerConfig(max_polyphony=6, max_note_s=0.5, max_pedal_s=2.0), clock=clock)
    gen_t = now = 0.0
    while now < 60.0:
        while gen_t < now + 0.5:
            gen_t += rng.choice([0.0, 0.01, 0.05, 0.2])
            ch, kind = rng.randrange(2), rng.random()
            msg = (on(rng.randrange(48, 60), 90, ch) if kind < 0.4 else off(rng.randrange(48, 60), ch) if kind < 0.8
                   else cc(rng.choice([64, 66, 67]), rng.choice([0, 0, 40, 127]), ch))
            s.push([(gen_t, msg)])
        now += rng.choice([0.001, 0.01, 0.1])
        if rng.random() < 0.01:
            sink.connected = not sink.connected         # the port goes away and comes back
        s.tick(now)
        if rng.random() < 0.02:
            gen_t = now + rng.random() * 0.3
            s.discard_after(gen_t)
    sink.connected = True
    s.tick(now + 0.1)
    s.stop()
    delivered = [m for m, ok in zip(sink.msgs, sink.ok) if ok]
    assert pedals_down(delivered) == set()
    sounding = set()
    for m in notes_only(delivered):                     # a note-off whose note-on never got out is harmless
        (sounding.add if m[0] & 0xF0 == 0x90 and m[2] else sounding.discard)((m[0] & 0x0F, m[1]))
    assert sounding == set()
    assert s.stats()["pedals_lifted"] > 0
