"""One supervised child process as an explicit state machine (supervisord's, adapted for weeks unattended).

    STOPPED --start()--------------------------------------------> STARTING (spawned)
    STARTING --ready heartbeat, and up start_seconds-------------> RUNNING (failed starts reset)
    STARTING --exited, or stalled (killed)-----------------------> BACKOFF (one more failed start)
    STARTING --failed start_retries times in a row---------------> FATAL
    BACKOFF --its wait passed (backoff_s doubling, <= backoff_max_s)-> STARTING
    RUNNING --exited, or no heartbeat for heartbeat_timeout_s (killed)-> STARTING at once (restarts + 1)
    RUNNING --stalled(reason): a hang seen sooner by other means (killed)-> the same as above
    FATAL --fatal_retry_s passed---------------------------------> STARTING (a kiosk never gives up for good)
    any --stop()---> STOPPING (SIGTERM) --exited--> STOPPED; SIGKILL if still alive after stop_timeout_s

A stall counts as a death: the child is sent SIGKILL and its exit takes the
transition above. Time is a monotonic clock passed in, so every transition is
tested with a fake clock (tests/test_kiosk_program.py). ``tick()`` does all the
time-driven work and notices exits (it polls the process handle).
"""
from __future__ import annotations

import enum
import signal
import time
from dataclasses import dataclass
from typing import Callable, Protocol


class State(enum.Enum):
    STOPPED = "stopped"
    STARTING = "starting"
    RUNNING = "running"
    BACKOFF = "backoff"
    STOPPING = "stopping"
    FATAL = "fatal"


class Handle(Protocol):
    """A started process: its pid, a way to signal it, and its exit code once it ended (else None)."""
    pid: int
    def send_signal(self, sig: int) -> None: ...
    def poll(self) -> int | None: ...


@dataclass(frozen=True)
class Policy:
    start_seconds: float = 3.0
    start_timeout_s: float = 60.0
    heartbeat_timeout_s: float = 5.0
    start_retries: int = 5
    backoff_s: float = 0.5
    backoff_max_s: float = 30.0
    stop_timeout_s: float = 3.0
    fatal_retry_s: float = 60.0


class Program:
    """Starts, watches and restarts one child. ``spawn()`` returns a Handle (or raises OSError).

    ``on_change(program, old, new, reason)`` is called on every transition, ``on_exit(program, code, reason)``
    whenever a process ended (before the transition it causes).
    """

    def __init__(self, name: str, spawn: Callable[[], Handle], policy: Policy = Policy(), *,
                 clock: Callable[[], float] = time.monotonic, on_change=None, on_exit=None):
        self.name, self.spawn, self.policy, self.clock = name, spawn, policy, clock
        self.on_change, self.on_exit = on_change, on_exit
        self.state = State.STOPPED
        self.handle: Handle | None = None
        self.started_at = 0.0          # when the current process was spawned
        self.last_beat: float | None = None
        self.ready = False
        self.restarts = 0              # processes started after the first
        self.spawns = 0
        self.failed_starts = 0         # in a row
        self.last_error: str | None = None
        self.wait_until = 0.0          # BACKOFF/FATAL: when to try again; STOPPING: when to SIGKILL
        self._kill_reason: str | None = None

    # --- requests ------------------------------------------------------------------
    def start(self) -> None:
        if self.state in (State.STOPPED, State.FATAL):
            self._spawn("start requested")

    def stop(self) -> None:
        if self.state in (State.STOPPED, State.STOPPING):
            return
        if self.handle is None:                                   # BACKOFF or FATAL: nothing runs
            self._go(State.STOPPED, "stop requested")
            return
        self._signal(signal.SIGTERM)
        self.wait_until = self.clock() + self.policy.stop_timeout_s
        self._go(State.STOPPING, "stop requested (SIGTERM)")

    def heartbeat(self, ready: bool = True) -> None:
        """The child said it is alive (and, with ready, that it does its job)."""
        self.last_beat = self.clock()
        self.ready = self.ready or ready
        self.tick()

    def stalled(self, reason: str) -> bool:
        """The supervisor has other evidence of a hang (the sender reports the thinker silent, the sender's
        own beats stopped): kill now, as a missed heartbeat would. True if a kill was sent."""
        if self.state is not State.RUNNING or self._kill_reason is not None or self.handle is None:
            return False
        self._kill(f"stalled: {reason}")
        return True

    def restart(self, reason: str) -> bool:
        """Staff asked: kill it and start it again, as after a death (RUNNING only). True if a kill was sent."""
        if self.state is not State.RUNNING or self._kill_reason is not None or self.handle is None:
            return False
        self._kill(reason)
        return True

    # --- the clock ---------------------------------------------------------------------
    def tick(self) -> None:
        now = self.clock()
        if self.handle is not None:
            code = self.handle.poll()
            if code is not None:
                self._exited(code)
                return
        p, st = self.policy, self.state
        if st is State.STARTING and self._kill_reason is None:
            if self.ready and now - self.started_at >= p.start_seconds:
                self.failed_starts = 0
                self._go(State.RUNNING, "ready")
            elif self.last_beat is not None and now - self.last_beat > p.heartbeat_timeout_s:
                self._kill(f"stalled while starting: no heartbeat for {now - self.last_beat:.1f} s")
            elif not self.ready and now - self.started_at > p.start_timeout_s:
                self._kill(f"not ready {p.start_timeout_s:g} s after its start")
        elif st is State.RUNNING and self._kill_reason is None:
            if now - (self.last_beat or self.started_at) > p.heartbeat_timeout_s:
                self._kill(f"stalled: no heartbeat for {now - (self.last_beat or self.started_at):.1f} s")
        elif st in (State.BACKOFF, State.FATAL) and now >= self.wait_until:
            if st is State.FATAL:
                self.failed_starts = 0
            self._spawn("backoff over" if st is State.BACKOFF else "retry after FATAL")
        elif st is State.STOPPING and now >= self.wait_until and self._kill_reason is None:
            self._kill(f"did not stop within {p.stop_timeout_s:g} s of SIGTERM")

    # --- inside ------------------------------------------------------------------------
    def _spawn(self, reason: str) -> None:
        self.ready, self.last_beat, self._kill_reason = False, None, None
        self.started_at = self.clock()
        try:
            self.handle = self.spawn()
        except OSError as exc:
            self.handle = None
            self.last_error = f"cannot start: {exc}"
            self._failed_start(self.last_error)
            return
        if self.spawns:
            self.restarts += 1
        self.spawns += 1
        self._go(State.STARTING, f"{reason}; pid {self.handle.pid}")

    def _kill(self, reason: str) -> None:
        self._kill_reason = reason
        self.last_error = reason
        self._signal(signal.SIGKILL)

    def _signal(self, sig: int) -> None:
        try:
            self.handle.send_signal(sig)
        except (ProcessLookupError, OSError):
            pass

    def _exited(self, code: int) -> None:
        how = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
        reason = f"{self._kill_reason} ({how})" if self._kill_reason else how
        self.handle, self._kill_reason = None, None
        if self.on_exit:
            self.on_exit(self, code, reason)
        st = self.state
        if st is State.STOPPING:
            self._go(State.STOPPED, reason)
        elif st is State.RUNNING:
            self.last_error = f"died: {reason}"
            self._spawn(f"restart after {reason}")
        elif st is State.STARTING:
            self.last_error = f"failed to start: {reason}"
            self._failed_start(reason)

    def _failed_start(self, reason: str) -> None:
        self.failed_starts += 1
        p = self.policy
        if self.failed_starts >= p.start_retries:
            self.wait_until = self.clock() + p.fatal_retry_s
            self._go(State.FATAL, f"{reason}; {self.failed_starts} failed starts in a row")
        else:
            delay = min(p.backoff_s * 2 ** (self.failed_starts - 1), p.backoff_max_s)
            self.wait_until = self.clock() + delay
            self._go(State.BACKOFF, f"{reason}; next try in {delay:g} s")

    def _go(self, new: State, reason: str) -> None:
        old, self.state = self.state, new
        if self.on_change:
            self.on_change(self, old, new, reason)

    def snapshot(self) -> dict:
        return {"state": self.state.value, "pid": self.handle.pid if self.handle else None,
                "restarts": self.restarts, "failed_starts": self.failed_starts, "last_error": self.last_error}
