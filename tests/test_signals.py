"""Signals reach the program through a thread (installation.signals), never inside a lock of the main thread.

The bug this prevents (the kiosk soak test's stuck notes): the sender's SIGTERM handler raised an
exception in the main thread; landing inside ``Scheduler.push``'s ``with lock:`` it left the lock held
(measured: 188 of 3,000 signals), so the scheduler thread could never send its final note-offs."""
import os
import random
import signal
import threading
import time

from installation.midi.scheduler import Scheduler
from installation.signals import route_signals


class Sink:
    def send(self, msg):
        return True


def test_signals_while_the_main_thread_holds_locks_leave_no_lock_held():
    got = []
    done = threading.Event()
    restore = route_signals(lambda signum: got.append(signum), (signal.SIGUSR1,))
    s = Scheduler(Sink())
    stop_event = threading.Event()

    def shoot():
        for _ in range(300):
            os.kill(os.getpid(), signal.SIGUSR1)
            time.sleep(random.uniform(0.0002, 0.003))
        done.set()
    threading.Thread(target=shoot, daemon=True).start()
    try:
        while not done.is_set():
            s.push([(1e9, (0x90, 60, 1))])         # the scheduler's lock, taken and released in a loop
            stop_event.wait(0)                     # an Event's own lock, likewise
        time.sleep(0.1)
    finally:
        restore()
    assert got and set(got) == {signal.SIGUSR1}
    free = []
    t = threading.Thread(target=lambda: free.append(s._cond.acquire(timeout=1.0)))
    t.start()
    t.join()
    assert free == [True], "a signal left the scheduler's lock held"


def test_restore_puts_the_old_handler_back():
    seen = []
    old = signal.signal(signal.SIGUSR2, lambda *a: seen.append("old"))
    try:
        restore = route_signals(lambda signum: seen.append("routed"), (signal.SIGUSR2,))
        os.kill(os.getpid(), signal.SIGUSR2)
        deadline = time.monotonic() + 5
        while "routed" not in seen and time.monotonic() < deadline:
            time.sleep(0.01)
        restore()
        os.kill(os.getpid(), signal.SIGUSR2)
        time.sleep(0.05)
        assert seen == ["routed", "old"]
    finally:
        signal.signal(signal.SIGUSR2, old)
