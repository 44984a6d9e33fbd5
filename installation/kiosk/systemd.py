"""systemd's notify protocol (Type=notify, WatchdogSec=): READY=1, WATCHDOG=1, STATUS=..., STOPPING=1.

One datagram to $NOTIFY_SOCKET per message; no library. Without $NOTIFY_SOCKET
(not started by systemd) every call does nothing. ``Notifier.alive()`` sends
WATCHDOG=1 at most every half of $WATCHDOG_USEC, so a hung supervisor loop is
restarted by systemd.
"""
from __future__ import annotations

import os
import socket
import time


class Notifier:
    def __init__(self, env=os.environ, clock=time.monotonic):
        self.addr = env.get("NOTIFY_SOCKET") or None
        if self.addr and self.addr.startswith("@"):
            self.addr = "\0" + self.addr[1:]                 # abstract namespace
        usec = env.get("WATCHDOG_USEC")
        self.every = int(usec) / 2e6 if usec and usec.isdigit() else None
        self.clock = clock
        self._last = -1e300
        self._sock = None
        if self.addr:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)

    def notify(self, text: str) -> None:
        if self._sock is None:
            return
        try:
            self._sock.sendto(text.encode(), self.addr)
        except OSError:
            pass

    def alive(self, status: str | None = None) -> None:
        """Call every loop turn: pets the watchdog when due (and says the status with it)."""
        if self.every is None or self._sock is None:
            return
        now = self.clock()
        if now - self._last >= self.every:
            self._last = now
            self.notify("WATCHDOG=1" + (f"\nSTATUS={status}" if status else ""))

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
