"""Limits for the status server's connections: it must never take the file handles, the memory or the log
that the supervisor needs to restart a child.

``Guard`` wraps aiohttp's protocol for each TCP connection (asyncio's transport level, under HTTP):

- at most ``max_connections`` at once, of which at most ``max_unauthenticated`` have not yet shown the
  token (``trusted`` is set by the server when a request carries it) and at most ``max_per_client`` of those
  come from one address. A new connection beyond a cap closes the oldest untrusted one (of its own address
  when that cap is the one reached; a half-open one first), so a flood, from one address or many, churns
  through its own share while a staff member's new connection gets in and is served (a real client sends
  its request at once). Trusted connections are never closed for a newcomer; when every connection is
  trusted the newcomer is closed as soon as it is accepted (its file handle comes back at once, so accept()
  never meets EMFILE). The server closes a connection after its 401, so a refused client holds nothing;
- a request's header block must arrive whole within ``header_timeout_s`` of its first byte (of the
  connection, for the first request): a half-open "slowloris" connection is closed; and be at most
  ``max_header_bytes`` (the server serves GET only, so every byte after a header block starts the next);
- a connection silent both ways for ``idle_timeout_s`` is closed, unless it is a live-update stream
  (those are capped by the server itself).

``Limits.reap()`` runs once a second on the server's loop.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field


@dataclass
class Limits:
    """The connection budget, and what it has refused (for /health and the logs)."""
    max_connections: int = 256
    max_unauthenticated: int = 192      # the other 64 are kept for connections that showed the token
    max_per_client: int = 128           # untrusted connections from one address (a browser opens about 6)
    header_timeout_s: float = 5.0
    idle_timeout_s: float = 30.0
    max_header_bytes: int = 16384
    active: set = field(default_factory=set)
    refused: int = 0
    evicted: int = 0
    timed_out: int = 0

    def reap(self, now: float | None = None) -> int:
        """Close the connections over their time; returns how many."""
        now = time.monotonic() if now is None else now
        n = 0
        for g in list(self.active):
            if g.overdue(now, self):
                g.abort()
                n += 1
        self.timed_out += n
        return n


class Guard(asyncio.Protocol):
    """One connection: counts it against the Limits, watches its header time and idleness, delegates the rest."""

    def __init__(self, inner: asyncio.Protocol, limits: Limits):
        self.inner, self.limits = inner, limits
        self.transport = None
        self.t0 = self.last = time.monotonic()
        self.header_done = False
        self.header_bytes = 0
        self._tail = b""
        self.streaming = False          # set by a live-update handler: exempt from the idle timeout
        self.trusted = False            # set by the server once a request on it carried the token
        self.client = None              # the peer's address

    # --- asyncio's side ---
    def connection_made(self, transport) -> None:
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.client = peer[0] if peer else None
        lim = self.limits
        untrusted = [g for g in lim.active if not g.trusted]
        mine = [g for g in untrusted if g.client == self.client]
        victims = (mine if len(mine) >= lim.max_per_client
                   else untrusted if len(untrusted) >= lim.max_unauthenticated or len(lim.active) >= lim.max_connections
                   else [])
        if victims:              # a half-open one first, then the oldest
            victim = min(victims, key=lambda g: (g.header_done, g.t0))
            lim.active.discard(victim)
            lim.evicted += 1
            victim.abort()
        elif len(lim.active) >= lim.max_connections:          # full of trusted connections
            lim.refused += 1
            self.inner = None
            transport.abort()
            return
        lim.active.add(self)
        transport.guard = self                  # handlers find their connection's guard through the transport
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self.inner is None:
            return
        self.last = time.monotonic()
        if self.header_done:                    # GET only: new bytes after a whole header begin the next request
            self.header_done, self.header_bytes, self._tail, self.t0 = False, 0, b"", self.last
        if not self.header_done:
            self.header_bytes += len(data)
            if b"\r\n\r\n" in self._tail + data:
                self.header_done = True
            elif self.header_bytes > self.limits.max_header_bytes:
                self.abort()
                return
            self._tail = (self._tail + data)[-3:]
        self.inner.data_received(data)

    def eof_received(self):
        return None if self.inner is None else self.inner.eof_received()

    def connection_lost(self, exc) -> None:
        self.limits.active.discard(self)
        if self.inner is not None:
            self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self.inner is not None:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.inner is not None:
            self.inner.resume_writing()

    # --- the limits' side ---
    def overdue(self, now: float, limits: Limits) -> bool:
        if not self.header_done:
            return now - self.t0 > limits.header_timeout_s
        return not self.streaming and now - self.last > limits.idle_timeout_s

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()
