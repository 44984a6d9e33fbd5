"""The staff console on the status server: its routes and its page (self-contained: no file, font or script
from outside).

    GET  /console            the page: buttons for the controls, the week's charts (inline SVG), the log tail
    GET  /console/charts     the charts alone (an HTML fragment; the page reloads it every 30 s)
    GET  /history?hours=N    the same facts as JSON (1/60 to 168 hours; default 24)
    POST /control/<action>   pause, resume, next, restart, test-chord, volume (kiosk.control)

All of them need the status token (a kiosk without one has no console: 403 says so); the server's own check
refuses a wrong one with 401 before these handlers run. The log file is read on a worker thread at most every
5 minutes (newer lines come from the event log's memory), and each summary is kept 10 s, so pages reloaded by
many phones cost little.
"""
from __future__ import annotations

import asyncio
import functools
import html
import logging
import math
import time

from aiohttp import web

from installation.kiosk import control, history

log = logging.getLogger(__name__)
CACHE_S = 10.0                   # a summary is kept this long
REREAD_S = 300.0                 # the log file is read again after this long (newer lines come from memory)
NO_TOKEN = ("the console needs a status token: start the kiosk with --status-token TOKEN "
            "(or status_token in its config file)")


def _needs_token(refusal=lambda: web.json_response({"error": NO_TOKEN}, status=403)):
    """A handler that answers only on a kiosk with a status token; without one, ``refusal()`` (403) says how to
    set one. (A wrong token never reaches here: the server's own check answers 401.)"""
    def wrap(handler):
        @functools.wraps(handler)
        async def checked(self, request):
            if not self.server.token:
                return refusal()
            return await handler(self, request)
        return checked
    return wrap


class Console:
    """The console's handlers for one StatusServer (``server.token``, ``server.control``, ``server.events``)."""

    def __init__(self, server):
        self.server = server
        self.limit = control.RateLimit()
        self._cache: dict = {}                   # hours -> (when, its summary)
        self._week: tuple | None = None          # (when read, the week's records from the log file)
        self._lock = asyncio.Lock()
        self._last_refusal = -1e9

    def routes(self) -> list:
        return [web.post("/control/{action}", self.control), web.get("/history", self.history),
                web.get("/console", self.page), web.get("/console/charts", self.charts)]

    # --- history ---------------------------------------------------------------------------------------------
    async def _summary(self, hours: float) -> dict:
        """The summary of the last ``hours``, kept ``CACHE_S``. The week's records are read from the log file
        at most every ``REREAD_S`` (on a worker thread, one read for every page that asks meanwhile); what
        was written since comes from the event log's memory."""
        async with self._lock:
            now = time.time()
            hit = self._cache.get(hours)
            if hit is not None and now - hit[0] < CACHE_S:
                return hit[1]
            loop = asyncio.get_running_loop()
            if self._week is None or now - self._week[0] >= REREAD_S:
                recs = await loop.run_in_executor(None, history.records, self.server.events,
                                                  now - history.MAX_HOURS * 3600)
                self._week = (time.time(), recs)
            read_at, recs = self._week
            if self.server.events.path:           # a file: add the lines written since it was read
                recs = recs + history.records_since(self.server.events, read_at)
            out = await loop.run_in_executor(None, history.summary, recs, now, hours)
            if len(self._cache) > 16:
                self._cache.clear()
            self._cache[hours] = (now, out)
            return out

    @_needs_token()
    async def history(self, request):
        try:
            hours = history.hours_arg(request.query.get("hours"))
        except ValueError as exc:
            return web.json_response({"error": str(exc)[:120]}, status=400)
        return web.json_response(await self._summary(hours), headers={"Cache-Control": "no-store"})

    async def _charts_html(self, request) -> str:
        """The charts for the page's detail window (``?hours=``, 24 by default) and the last 7 days."""
        try:
            hours = history.hours_arg(request.query.get("hours"))
        except ValueError:
            hours = 24.0
        day, week = await self._summary(hours), await self._summary(float(history.MAX_HOURS))
        return history.charts(day, week)

    @_needs_token()
    async def charts(self, request):
        return web.Response(text=await self._charts_html(request), content_type="text/html",
                            headers={"Cache-Control": "no-store"})

    @_needs_token(lambda: web.Response(text=f"<!doctype html><title>console</title><p>{html.escape(NO_TOKEN)}</p>",
                                       content_type="text/html", status=403))
    async def page(self, request):
        status = self.server.status.snapshot()
        body = PAGE.replace("@CHARTS@", await self._charts_html(request))
        volume = status.get("volume")
        body = body.replace("@VOLUME@", str(volume if volume is not None else 100))
        body = body.replace("@VOLUME_SAID@", str(volume) if volume is not None else "not set (the synth's own)")
        return web.Response(text=body, content_type="text/html",
                            headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY",
                                     "Content-Security-Policy": "default-src 'self'; style-src 'unsafe-inline'; "
                                     "script-src 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'"})

    # --- controls ----------------------------------------------------------------------------------------------
    @_needs_token()
    async def control(self, request):
        client = request.remote or "?"
        action = request.match_info["action"]
        if action not in control.ACTIONS:
            return web.json_response({"error": f"no such action; one of {', '.join(control.ACTIONS)}"}, status=404)
        why = control.foreign_origin(request.headers)
        if why is not None:
            self._refused(action, client, f"another origin ({why})")
            return web.json_response({"error": "refused: the request comes from another site"}, status=403)
        try:
            body = await request.read()              # at most 1 KB: the server's client_max_size (else 413)
            value = control.parse_value(action, body, request.content_type or "")
        except control.ControlError as exc:
            return web.json_response({"error": str(exc)}, status=exc.status)
        wait = self.limit.allow(client)
        if wait:
            self._refused(action, client, "rate limit")
            return web.json_response({"error": f"too many actions; try again in {math.ceil(wait)} s"},
                                     status=429, headers={"Retry-After": str(math.ceil(wait))})
        fut = self.server.control(action, value, client)
        try:
            result = await asyncio.wait_for(asyncio.wrap_future(fut), 5.0)
        except asyncio.TimeoutError:
            return web.json_response({"error": "the supervisor did not answer within 5 s"}, status=503)
        self._cache.clear()
        status = result.pop("status", 200 if result["ok"] else 409)
        return web.json_response({"action": action, **({"value": value} if value is not None else {}), **result},
                                 status=status)

    def _refused(self, action: str, client: str, why: str) -> None:
        """One event-log line (at most one every 10 s: a flood must not fill the log)."""
        now = time.monotonic()
        if now - self._last_refusal >= 10.0:
            self._last_refusal = now
            self.server.events.emit("control", level=logging.WARNING, action=action, client=client, ok=False,
                                    error=why)


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>image-to-music: console</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body { font: 16px/1.45 system-ui, sans-serif; margin: 0 auto; padding: 1em; max-width: 1040px;
   background: #fafaf7; color: #222; }
 h1 { font-size: 1.35em; margin: .2em 0 .6em; } h2 { font-size: 1.15em; margin: 1.2em 0 .4em; }
 h3 { font-size: 1em; margin: .8em 0 .2em; }
 .controls { display: flex; flex-wrap: wrap; gap: .5em; align-items: center; }
 button { font: inherit; padding: .6em 1em; min-height: 44px; border: 1px solid #555; border-radius: 6px;
   background: #fff; color: #111; cursor: pointer; }
 button:focus-visible, input:focus-visible { outline: 3px solid #1a5fb4; outline-offset: 2px; }
 button.primary { background: #1f4e79; color: #fff; border-color: #1f4e79; }
 label { display: inline-flex; align-items: center; gap: .4em; }
 input[type=range] { width: 12em; min-height: 44px; }
 #state { font-weight: bold; } .playing { color: #17692b; } .paused { color: #3949ab; }
 .fatal, .recovering, .waiting-for-port { color: #a4161a; }
 #said { min-height: 1.5em; margin: .4em 0; }
 figure { margin: .4em 0 1em; } figcaption { font-size: .92em; color: #333; margin-bottom: .2em; }
 svg.chart { width: 100%; height: auto; background: #fff; border: 1px solid #ddd; border-radius: 4px; }
 .legend { font-size: .85em; display: flex; flex-wrap: wrap; gap: .3em 1em; }
 .key svg { vertical-align: -2px; }
 ol.log { font: 12px/1.35 ui-monospace, monospace; max-height: 28em; overflow: auto; background: #fff;
   border: 1px solid #ddd; padding: .5em .5em .5em 3.5em; margin: 0; overflow-wrap: anywhere; }
 ol.log time { color: #666; }
 @media (max-width: 600px) { body { padding: .6em; } button { flex: 1 1 40%; } input[type=range] { width: 100%; }
   label { width: 100%; } }
</style></head>
<body data-actions="0">
<header><h1>image-to-music console &mdash; <span id="state" aria-live="polite">&hellip;</span></h1></header>
<main>
<section aria-labelledby="h-controls"><h2 id="h-controls">Controls</h2>
<div class="controls" role="group" aria-label="music">
 <button type="button" class="primary" data-action="pause" aria-describedby="d-pause">Pause (silence)</button>
 <button type="button" class="primary" data-action="resume">Resume</button>
 <button type="button" data-action="next">Next picture</button>
 <button type="button" data-action="test-chord">Test chord (C major)</button>
 <button type="button" data-action="restart">Restart the music program</button>
</div>
<p id="d-pause" class="hint">Pause releases every note and the pedal at once; the visitor display says it is resting.</p>
<div class="controls"><label for="volume">Volume <output id="volume-out" for="volume">@VOLUME_SAID@</output></label>
 <input type="range" id="volume" min="0" max="127" value="@VOLUME@" aria-describedby="d-volume">
 <button type="button" id="volume-set">Set volume</button></div>
<p id="d-volume" class="hint">MIDI volume (CC 7), 0&ndash;127; kept across restarts.</p>
<p id="said" role="status" aria-live="polite"></p>
</section>
<div id="charts">@CHARTS@</div>
</main>
<footer><p><a id="status-link" href="/">live status</a> &middot; <a id="display-link" href="/display">visitor display</a></p></footer>
<script>
const TOKEN = new URLSearchParams(location.search).get('token') || '';
const auth = {'Authorization': 'Bearer ' + TOKEN};
const q = TOKEN ? '?token=' + encodeURIComponent(TOKEN) : '';
document.getElementById('status-link').href = '/' + q;
document.getElementById('display-link').href = '/display' + q;
const said = document.getElementById('said');
async function act(action, value) {
  said.textContent = action + '\\u2026';
  try {
    const r = await fetch('/control/' + action, {method: 'POST', headers: {...auth, 'Content-Type': 'application/json'},
      body: value === undefined ? '' : JSON.stringify({value: value})});
    const d = await r.json();
    said.textContent = r.ok ? action + ': done' : action + ': ' + (d.error || r.status);
    document.body.dataset.actions = +document.body.dataset.actions + 1;
    document.body.dataset.last = action + ':' + r.status;
    setTimeout(refresh, 500);
  } catch (e) { said.textContent = action + ': no answer (' + e + ')'; }
}
for (const b of document.querySelectorAll('button[data-action]')) b.addEventListener('click', () => act(b.dataset.action));
const vol = document.getElementById('volume');
vol.addEventListener('input', () => { document.getElementById('volume-out').textContent = vol.value; });
document.getElementById('volume-set').addEventListener('click', () => act('volume', +vol.value));
async function refresh() {
  try {
    const h = await (await fetch('/health', {headers: auth})).json();
    const s = document.getElementById('state'); s.textContent = h.state; s.className = h.state;
    document.body.dataset.state = h.state;
  } catch (e) {}
}
async function charts() {
  try {
    const hours = new URLSearchParams(location.search).get('hours');
    const r = await fetch('/console/charts' + (hours ? '?hours=' + encodeURIComponent(hours) : ''), {headers: auth});
    if (r.ok) { document.getElementById('charts').innerHTML = await r.text(); }
  } catch (e) {}
}
refresh(); setInterval(refresh, 2000); setInterval(charts, 30000);
</script></body></html>
"""
