"""Why signals are never handled inside a lock: how often a handler that raises leaves a lock held.

The old kiosk sender's SIGTERM handler raised an exception in the main thread. A signal lands between
two bytecodes; when that is right after ``Scheduler.push`` took its lock (inside ``with lock:`` but
before the block's cleanup is armed), the exception leaves the lock held, and the scheduler thread can
never send the final note-offs. This sends N signals, each at a random moment while the main thread
pushes in a loop, and counts the locks left held.

    python bench/bench_signal_locks.py [--signals 3000]
"""
from __future__ import annotations

import os
import random
import signal
import threading

import common
from installation.midi.scheduler import Scheduler


class _Stop(Exception):
    pass


class _Sink:
    def send(self, msg):
        return True


def main() -> None:
    ap = common.parser(__doc__)
    ap.add_argument("--signals", type=int, default=3000)
    args = ap.parse_args()
    n = 200 if args.quick else args.signals

    def handler(*_):
        raise _Stop()
    old = signal.signal(signal.SIGUSR1, handler)
    leaks = 0
    try:
        for _ in range(n):
            s = Scheduler(_Sink())
            t = threading.Timer(random.uniform(0.0005, 0.003), lambda: os.kill(os.getpid(), signal.SIGUSR1))
            try:
                t.start()
                while True:
                    s.push([(1e9, (0x90, 60, 1))])
            except _Stop:
                pass
            t.join()
            got = []
            th = threading.Thread(target=lambda: got.append(s._cond.acquire(timeout=0.05)))
            th.start()
            th.join()
            leaks += not got[0]
    finally:
        signal.signal(signal.SIGUSR1, old)
    print(f"{leaks} of {n} signals left the scheduler's lock held by the main thread")
    common.write_result("bench_signal_locks", {"machine": common.machine(), "signals": n, "locks_left_held": leaks},
                        args.out)


if __name__ == "__main__":
    main()
