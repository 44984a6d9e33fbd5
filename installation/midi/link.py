"""The wires between the kiosk's processes.

- Thinker -> sender: a Unix socket in a private (0700) folder; pickled tuples
  ``("push", [(due, msg), ...])``, ``("discard", t)``, ``("panic",)``, ``("bye",)`` (a normal stop), and ``("alive",)``
  at least every 0.2 s (a thinker silent for 0.6 s is hung: the sender releases its notes). Due times are
  ``time.perf_counter()`` seconds: on Linux that is CLOCK_MONOTONIC, one clock for
  every process on the machine, so a due time means the same in both.
- Child -> supervisor: a socketpair per child (``Beacon``); the child sends dicts
  (heartbeats with its figures) and never waits for an answer.

``RemoteScheduler`` is what the thinker's Engine uses in place of a Scheduler.
If the sender is gone it drops messages (the music goes on unheard) and
reconnects to the next sender within 0.2 s.
"""
from __future__ import annotations

import logging
import os
import socket
import subprocess
import threading
import time
from multiprocessing.connection import Client, Connection

log = logging.getLogger(__name__)
RECONNECT_S = 0.2
KEEPALIVE_S = 0.2          # the thinker says it is alive this often, music or not (the sender's hang watch)


# A child's first instructions, before any import of ours (which take some 80 ms, time enough for a parent to be
# killed unnoticed): SIGTERM when its parent dies (Linux: PR_SET_PDEATHSIG), then, if the parent died before
# that (between the fork and here), exit at once. Then run the module as -m does.
_BOOT = """import ctypes, os, sys
try:
    ctypes.CDLL(None).prctl(1, 15)
except (OSError, AttributeError):
    pass
if os.getppid() != int(sys.argv[1]):
    os._exit(1)
import runpy
sys.argv = sys.argv[2:]
runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
"""


def spawn_child(python: str, module: str, args: list[str], single_threaded_math: bool = False):
    """Start ``python -m module args --status-fd FD`` (through _BOOT: it dies with this process from its first
    instruction) with this repository on its path, in a session of its own (a terminal's Ctrl-C reaches only
    its parent, which stops it in order). Returns (the process, our end of its Beacon). ``single_threaded_math``:
    no BLAS worker threads (a process that only sends MIDI). Call it from the main thread: the kernel's
    parent-death signal follows the thread that started the child."""
    ours, theirs = socket.socketpair()
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [repo, os.environ.get("PYTHONPATH")])))
    if single_threaded_math:
        env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    try:
        proc = subprocess.Popen([python, "-c", _BOOT, str(os.getpid()), module, *args,
                                 "--status-fd", str(theirs.fileno())],
                                pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, env=env,
                                start_new_session=True)
    except BaseException:
        ours.close()
        raise
    finally:
        theirs.close()
    return proc, Connection(ours.detach())


class Beacon:
    """A child's line to the supervisor: ``send(dict)`` never raises and never blocks for long."""

    def __init__(self, fd: int):
        self._conn = Connection(fd)
        self._lock = threading.Lock()
        self.broken = False

    def send(self, msg: dict) -> None:
        with self._lock:
            if self.broken:
                return
            try:
                self._conn.send(msg)
            except (OSError, ValueError):
                self.broken = True


class RemoteScheduler:
    """The thinker's side of the sender: the Scheduler methods the engine and generator call."""

    def __init__(self, path: str):
        self.path = path
        self.error: BaseException | None = None
        self._conn: Connection | None = None
        self._lock = threading.Lock()
        self._next_try = 0.0
        self._closed = False                  # stop() was called: no more sends, no reconnecting
        self.pushed = self.dropped = self.connects = 0

    @property
    def connected(self) -> bool:
        return self._conn is not None

    def _send(self, msg) -> bool:
        with self._lock:
            if self._closed:
                return False
            if self._conn is None:
                now = time.monotonic()
                if now < self._next_try:
                    return False
                try:
                    self._conn = Client(self.path, family="AF_UNIX")
                    self.connects += 1
                    if self.connects > 1:
                        log.info("sender reached again")
                except OSError:
                    self._next_try = now + RECONNECT_S
                    return False
            try:
                self._conn.send(msg)
                return True
            except (OSError, ValueError):
                log.warning("sender gone; music is generated unheard until it is back")
                self._drop()
                return False

    def _drop(self) -> None:
        try:
            self._conn.close()
        except OSError:
            pass
        self._conn = None
        self._next_try = time.monotonic() + RECONNECT_S

    def connect(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for the sender (at start-up)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                self._next_try = 0.0
            if self._send(("hello",)):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(RECONNECT_S)

    # --- the Scheduler interface the engine and generator use ---------------------------
    def push(self, items) -> None:
        items = [(float(d), tuple(int(b) for b in m)) for d, m in items]
        if not items:
            return
        if self._send(("push", items)):
            self.pushed += len(items)
        else:
            self.dropped += len(items)

    def discard_after(self, t: float) -> int:
        self._send(("discard", float(t)))
        return 0

    def panic(self) -> None:
        self._send(("panic",))

    def send(self, msg) -> bool:
        """One message to go out now (the sink role: a patch's clock Stop at shutdown)."""
        self.push([(time.perf_counter(), msg)])
        return self.connected

    def start(self) -> None:
        """Start the keepalive thread: ``("alive",)`` every KEEPALIVE_S, so that a silence means a hang."""
        def keepalive():
            while not self._closed:
                self._send(("alive",))
                time.sleep(KEEPALIVE_S)
        threading.Thread(target=keepalive, name="keepalive", daemon=True).start()

    def is_running(self) -> bool:
        """True until stop(): the sender, not this process, owns the port and its final panic."""
        return not self._closed

    def stop(self, timeout: float = 1.0) -> None:
        """The engine is stopping: ask the sender to release everything now, then hang up for good
        (a generator thread still finishing its batch must not reconnect and push notes after the panic)."""
        self._send(("panic",))
        self._send(("bye",))                        # a normal stop: the sender does not take it for a crash
        with self._lock:
            self._closed = True
            if self._conn is not None:
                self._drop()

    def stats(self) -> dict:
        return {"sent": self.pushed, "dropped_unheard": self.dropped, "lateness_p50": None, "lateness_p99": None}
