"""The status server (aiohttp, on a thread of its own): /health, / (staff), /display (visitors).

    GET /health      JSON: uptime, state, camera, port, fps, events/s, lateness p99, valence/arousal, key,
                     restarts, last error
    GET /            the staff page: the same, updating live
    GET /display     the visitor page (full screen): picture, valence/arousal plane, scrolling piano roll
    GET /events      server-sent events: the status and the notes of the last seconds, 4 times a second
    GET /frame.jpg   the current picture, a JPEG from memory (nothing is written to disk)
    GET /console, /console/charts, /history; POST /control/<action>: the staff console (kiosk.console), when
                     the supervisor hands its controls and event log over

Bound to 127.0.0.1 unless told otherwise; any other address needs a token, and
with a token set every request must carry it (``?token=`` or ``Authorization:
Bearer``), else 401. On a loopback address the Host header must name this machine
(no DNS rebinding from a web page). Camera frames are served only on a loopback
address unless ``serve_frames`` says otherwise.

The server runs on its own thread and must never starve the supervisor: connections
are capped and timed (kiosk.netguard), live-update streams are capped, and its error
log lines are one line each, without the token, at most one every 10 s.
"""
from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import logging
import re
import threading
import time

from aiohttp import web

from installation.errors import UserError
from installation.kiosk import pages
from installation.kiosk.console import Console
from installation.kiosk.netguard import Guard, Limits
from installation.ratelimit import LogLimiter

log = logging.getLogger(__name__)
PUSH_S = 0.25
MAX_STREAMS = 16                 # live-update clients at once (each holds a connection and a little memory)
FD_BUDGET = 4096                 # the process's file-handle soft limit is raised to this (if the hard one allows)
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "[::1]"}


def _is_loopback(addr: str) -> bool:
    try:
        return ipaddress.ip_address(addr).is_loopback
    except ValueError:
        return addr == "localhost"


class _OneLine(logging.Filter):
    """aiohttp's and asyncio's error lines: one line (no traceback), no token, at most one every 10 s."""

    def __init__(self):
        super().__init__()
        self._limit = LogLimiter(log, every_s=10.0)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            msg = record.getMessage()
        except Exception:          # noqa: BLE001
            msg = str(record.msg)
        exc = record.exc_info[1] if record.exc_info else None
        line = msg.splitlines()[0] if msg else ""
        if exc is not None:
            line += f": {type(exc).__name__}: {str(exc)[:160]}"
        line = re.sub(r"(token=)[^&\s'\"]*", r"\1***", line)
        line = re.sub(r"(Bearer )\S+", r"\1***", line)
        self._limit("status server: %s", line[:300])
        return False               # the original record, with its traceback, is never written


def _raise_fd_limit(budget: int = FD_BUDGET) -> None:
    try:
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = budget if hard == resource.RLIM_INFINITY else min(budget, hard)
        if soft != resource.RLIM_INFINITY and soft < want:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    except (ImportError, ValueError, OSError):
        pass


def _refuse(body: dict, status: int) -> web.Response:
    """A refusal that also ends its connection: a client without the token keeps no connection open."""
    resp = web.json_response(body, status=status)
    resp.force_close()
    return resp


class StatusServer:
    def __init__(self, status, bind: str = "127.0.0.1", port: int = 8080, token: str | None = None,
                 serve_frames: bool | None = None, limits: Limits | None = None, control=None, events=None):
        self.status, self.bind, self.port, self.token = status, bind, port, token
        self.control, self.events = control, events      # the console's hooks: Supervisor.control, its EventLog
        self.local = _is_loopback(bind)
        self.serve_frames = self.local if serve_frames is None else serve_frames
        self.limits = limits or Limits()
        self.streams = 0
        self._server = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stopping = False

    @property
    def url(self) -> str:
        host = f"[{self.bind}]" if ":" in self.bind else self.bind
        return f"http://{host}:{self.port}/"

    # --- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        _raise_fd_limit()
        quiet = _OneLine()
        for name in ("aiohttp.server", "aiohttp.access", "aiohttp.web", "aiohttp.internal", "asyncio"):
            logging.getLogger(name).addFilter(quiet)
        self._thread = threading.Thread(target=self._run, name="status-server", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise UserError(f"--status-port {self.port}: cannot listen on {self.bind} ({self._error}); "
                            f"choose another port, or 0 for no status server")

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as exc:       # noqa: BLE001  (reported by start())
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()
        self._server.close()
        self._reaper_task.cancel()
        self._loop.run_until_complete(asyncio.gather(self._reaper_task, return_exceptions=True))
        self._loop.run_until_complete(self._runner.cleanup())
        self._loop.close()

    async def _serve(self) -> None:
        app = web.Application(middlewares=[self._guard_request], client_max_size=1024)
        app.add_routes([web.get("/health", self._health), web.get("/", self._staff),
                        web.get("/display", self._display), web.get("/events", self._events),
                        web.get("/frame.jpg", self._frame)])
        if self.control is not None and self.events is not None:
            app.add_routes(Console(self).routes())
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0,
                                     keepalive_timeout=5.0, max_line_size=4096, max_field_size=4096)
        await self._runner.setup()
        handler = self._runner.server
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: Guard(handler(), self.limits), self.bind, self.port,
                                                backlog=64, reuse_address=True)
        if self.port == 0:
            self.port = self._server.sockets[0].getsockname()[1]
        self._reaper_task = loop.create_task(self._reaper())

    async def _reaper(self) -> None:
        while not self._stopping:
            await asyncio.sleep(1.0)
            self.limits.reap()

    def stop(self) -> None:
        self._stopping = True
        if self._loop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(5)

    # --- handlers ----------------------------------------------------------------------
    @web.middleware
    async def _guard_request(self, request: web.Request, handler):
        if self.local:                       # a web page elsewhere must not reach us through DNS rebinding
            host = (request.headers.get("Host") or "").strip().lower()
            name = host[:host.rindex("]") + 1] if host.startswith("[") and "]" in host else host.rsplit(":", 1)[0]
            if name not in LOCAL_HOSTS:
                return _refuse({"error": "unknown Host"}, 421)
        if self.token:
            given = request.query.get("token", "")
            auth = request.headers.get("Authorization", "")
            if auth.startswith("Bearer "):
                given = auth[7:]
            ok = hmac.compare_digest(given.encode("utf-8", "surrogateescape"), self.token.encode("utf-8"))
            if not ok:
                return _refuse({"error": "a valid token is required"}, 401)
        guard = getattr(request.transport, "guard", None)
        if guard is not None:
            guard.trusted = True             # it showed the token (or needs none): never closed for a newcomer
        return await handler(request)

    async def _health(self, request):
        return web.json_response(self.status.snapshot(), headers={"Cache-Control": "no-store"})

    async def _staff(self, request):
        return web.Response(text=pages.STAFF, content_type="text/html")

    async def _display(self, request):
        return web.Response(text=pages.DISPLAY, content_type="text/html")

    async def _frame(self, request):
        if not self.serve_frames:            # camera pictures stay on this machine unless asked
            return web.Response(status=204)
        jpeg = self.status.frame()
        if not jpeg:
            return web.Response(status=204)
        return web.Response(body=jpeg, content_type="image/jpeg", headers={"Cache-Control": "no-store"})

    async def _events(self, request):
        if self.streams >= MAX_STREAMS:
            return web.json_response({"error": f"at most {MAX_STREAMS} live pages at once"}, status=503,
                                     headers={"Retry-After": "10"})
        guard = getattr(request.transport, "guard", None)
        if guard is not None:
            guard.streaming = True
        self.streams += 1
        try:
            return await self._stream(request)
        finally:
            self.streams -= 1

    async def _stream(self, request):
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"})
        await resp.prepare(request)
        try:
            while not self._stopping:
                data = self.status.snapshot()
                data["notes"] = self.status.recent_notes(time.perf_counter())
                await resp.write(f"data: {json.dumps(data)}\n\n".encode())
                await asyncio.sleep(PUSH_S)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        return resp
