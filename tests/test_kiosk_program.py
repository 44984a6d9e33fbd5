"""The supervisor's per-child state machine, one transition at a time, with a fake clock and fake processes.

(The real processes are in test_kiosk_live.py; here only the state machine's rules are checked.)
"""
import signal

import pytest

from installation.kiosk.program import Policy, Program, State

POLICY = Policy(start_seconds=2.0, start_timeout_s=30.0, heartbeat_timeout_s=5.0, start_retries=3,
                backoff_s=1.0, backoff_max_s=3.0, stop_timeout_s=4.0, fatal_retry_s=60.0)


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


class Proc:
    """A process handle whose exit the test decides; records the signals it was sent."""
    _next_pid = 100

    def __init__(self):
        Proc._next_pid += 1
        self.pid, self.code, self.signals = Proc._next_pid, None, []

    def send_signal(self, sig):
        self.signals.append(sig)

    def poll(self):
        return self.code


@pytest.fixture
def world():
    clock = Clock()
    procs, changes = [], []

    def spawn():
        procs.append(Proc())
        return procs[-1]
    prog = Program("thinker", spawn, POLICY, clock=clock,
                   on_change=lambda p, old, new, why: changes.append((old, new, why)))
    return prog, clock, procs, changes


def running(prog, clock):
    prog.start()
    prog.heartbeat(ready=True)
    clock.t += POLICY.start_seconds
    prog.heartbeat()
    assert prog.state is State.RUNNING


def test_start_spawns_and_enters_starting(world):
    prog, clock, procs, changes = world
    prog.start()
    assert prog.state is State.STARTING and len(procs) == 1
    assert changes[-1][:2] == (State.STOPPED, State.STARTING)


def test_ready_child_is_running_only_after_start_seconds(world):
    prog, clock, procs, _ = world
    prog.start()
    prog.heartbeat(ready=True)
    assert prog.state is State.STARTING            # ready, but not up long enough
    clock.t += 1.9
    prog.tick()
    assert prog.state is State.STARTING
    clock.t += 0.2
    prog.tick()
    assert prog.state is State.RUNNING


def test_exit_while_starting_backs_off_with_growing_waits(world):
    prog, clock, procs, changes = world
    prog.start()
    waits = []
    for k in range(2):
        procs[-1].code = 1
        prog.tick()
        assert prog.state is State.BACKOFF
        waits.append(prog.wait_until - clock.t)
        clock.t += waits[-1] - 0.01
        prog.tick()
        assert prog.state is State.BACKOFF          # not before its wait
        clock.t += 0.02
        prog.tick()
        assert prog.state is State.STARTING and len(procs) == k + 2
    assert waits == [1.0, 2.0]


def test_backoff_is_capped(world):
    prog, clock, procs, _ = world
    prog.policy = Policy(**{**POLICY.__dict__, "start_retries": 10})
    prog.start()
    waits = []
    for _ in range(4):
        procs[-1].code = 1
        prog.tick()
        waits.append(prog.wait_until - clock.t)
        clock.t = prog.wait_until
        prog.tick()
    assert waits == [1.0, 2.0, 3.0, 3.0]


def test_too_many_failed_starts_is_fatal_then_retried_later(world):
    prog, clock, procs, _ = world
    prog.start()
    for _ in range(POLICY.start_retries):
        procs[-1].code = 1
        prog.tick()
        if prog.state is State.BACKOFF:
            clock.t = prog.wait_until
            prog.tick()
    assert prog.state is State.FATAL and prog.last_error
    clock.t += POLICY.fatal_retry_s - 1
    prog.tick()
    assert prog.state is State.FATAL
    clock.t += 1
    prog.tick()
    assert prog.state is State.STARTING and prog.failed_starts == 0


def test_death_while_running_restarts_at_once(world):
    prog, clock, procs, _ = world
    running(prog, clock)
    procs[-1].code = -signal.SIGKILL
    prog.tick()
    assert prog.state is State.STARTING and len(procs) == 2 and prog.restarts == 1
    assert "signal 9" in prog.last_error


def test_a_stall_while_running_is_killed_and_counts_as_a_death(world):
    prog, clock, procs, _ = world
    running(prog, clock)
    clock.t += POLICY.heartbeat_timeout_s - 0.1
    prog.tick()
    assert procs[-1].signals == []
    clock.t += 0.2
    prog.tick()
    assert procs[-1].signals == [signal.SIGKILL] and "stalled" in prog.last_error
    assert prog.state is State.RUNNING                 # until the process is really gone
    procs[-1].code = -9
    prog.tick()
    assert prog.state is State.STARTING and prog.restarts == 1


def test_heartbeats_keep_a_running_child_alive(world):
    prog, clock, procs, _ = world
    running(prog, clock)
    for _ in range(10):
        clock.t += POLICY.heartbeat_timeout_s * 0.9
        prog.heartbeat()
    assert procs[-1].signals == [] and prog.state is State.RUNNING


def test_never_ready_is_a_stall_while_starting(world):
    prog, clock, procs, _ = world
    prog.start()
    clock.t += POLICY.start_timeout_s + 0.1
    prog.tick()
    assert procs[-1].signals == [signal.SIGKILL]
    procs[-1].code = -9
    prog.tick()
    assert prog.state is State.BACKOFF and "not ready" in prog.last_error


def test_stop_sends_sigterm_then_sigkill_after_the_timeout(world):
    prog, clock, procs, _ = world
    running(prog, clock)
    prog.stop()
    assert prog.state is State.STOPPING and procs[-1].signals == [signal.SIGTERM]
    clock.t += POLICY.stop_timeout_s + 0.1
    prog.tick()
    assert procs[-1].signals == [signal.SIGTERM, signal.SIGKILL]
    procs[-1].code = -9
    prog.tick()
    assert prog.state is State.STOPPED and len(procs) == 1     # a stop is not restarted


def test_stop_during_backoff_needs_no_signal(world):
    prog, clock, procs, _ = world
    prog.start()
    procs[-1].code = 1
    prog.tick()
    prog.stop()
    assert prog.state is State.STOPPED
    clock.t += 100
    prog.tick()
    assert len(procs) == 1


def test_a_spawn_that_fails_is_a_failed_start():
    clock = Clock()

    def spawn():
        raise OSError("no such program")
    prog = Program("sender", spawn, POLICY, clock=clock)
    prog.start()
    assert prog.state is State.BACKOFF and "no such program" in prog.last_error


def test_stalled_kills_a_running_child_now_and_counts_as_a_death(world):
    prog, clock, procs, changes = world
    assert prog.stalled("no beat") is False                   # nothing runs: nothing to kill
    running(prog, clock)
    clock.t += 0.5                                            # long before heartbeat_timeout_s
    assert prog.stalled("silent 0.8 s") is True
    assert procs[0].signals == [signal.SIGKILL]
    assert prog.stalled("again") is False                     # one kill per hang
    procs[0].code = -9
    prog.tick()
    assert prog.state is State.STARTING and prog.restarts == 1 and len(procs) == 2
    assert "silent 0.8 s" in prog.last_error
