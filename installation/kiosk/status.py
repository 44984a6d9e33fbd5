"""The status server (aiohttp, on a thread of its own): /health, / (staff), /display (visitors).

    GET /health      JSON: uptime, state, camera, port, fps, events/s, lateness p99, valence/arousal, key,
                     restarts, last error
    GET /            the staff page: the same, updating live
    GET /display     the visitor page (full screen): picture, valence/arousal plane, scrolling piano roll
    GET /events      server-sent events: the status and the notes of the last seconds, 4 times a second
    GET /frame.jpg   the current picture, a JPEG from memory (nothing is written to disk)

Bound to 127.0.0.1 unless told otherwise; any other address needs a token, and
with a token set every request must carry it (``?token=`` or ``Authorization:
Bearer``), else 401.
"""
from __future__ import annotations

import asyncio
import hmac
import json
import logging
import threading
import time

from aiohttp import web

from installation.kiosk import pages

log = logging.getLogger(__name__)
PUSH_S = 0.25


class StatusServer:
    def __init__(self, status, bind: str = "127.0.0.1", port: int = 8080, token: str | None = None):
        self.status, self.bind, self.port, self.token = status, bind, port, token
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
        self._thread = threading.Thread(target=self._run, name="status-server", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            from installation.errors import UserError
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
        self._loop.run_until_complete(self._runner.cleanup())
        self._loop.close()

    async def _serve(self) -> None:
        app = web.Application(middlewares=[self._auth])
        app.add_routes([web.get("/health", self._health), web.get("/", self._staff),
                        web.get("/display", self._display), web.get("/events", self._events),
                        web.get("/frame.jpg", self._frame)])
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.bind, self.port).start()

    def stop(self) -> None:
        self._stopping = True
        if self._loop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(5)

    # --- handlers ----------------------------------------------------------------------
    @web.middleware
    async def _auth(self, request: web.Request, handler):
        if self.token:
            given = request.query.get("token", "")
            auth = request.headers.get("Authorization", "")
            if auth.startswith("Bearer "):
                given = auth[7:]
            if not hmac.compare_digest(given.encode(), self.token.encode()):
                return web.json_response({"error": "a valid token is required"}, status=401)
        return await handler(request)

    async def _health(self, request):
        return web.json_response(self.status.snapshot(), headers={"Cache-Control": "no-store"})

    async def _staff(self, request):
        return web.Response(text=pages.STAFF, content_type="text/html")

    async def _display(self, request):
        return web.Response(text=pages.DISPLAY, content_type="text/html")

    async def _frame(self, request):
        jpeg = self.status.frame()
        if not jpeg:
            return web.Response(status=204)
        return web.Response(body=jpeg, content_type="image/jpeg", headers={"Cache-Control": "no-store"})

    async def _events(self, request):
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
