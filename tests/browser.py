"""A real headless Chromium driven over the DevTools protocol (aiohttp's WebSocket client).

    async with Chromium() as b:
        await b.open(url)
        await b.wait_js("document.body.dataset.updates >= 3")
        png = await b.screenshot()

``chromium --screenshot`` alone cannot be used for pages that keep a server-sent
event stream open: the page never finishes loading.
"""
from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

import aiohttp

from kiosk_parts import free_port
from realtime_parts import MissingTool, _die_with_parent, end


def chromium_path() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    raise MissingTool("chromium is not installed (Debian: apt install chromium)")


def _own_group_dying_with_parent() -> None:
    os.setpgrp()
    _die_with_parent()


def end_group(pgid: int, wait_s: float) -> None:
    """SIGTERM every process left in group ``pgid``, SIGKILL them after ``wait_s`` s, and return once none is left
    (or, bounded, 5 s later: an orphan that init has not reaped yet still counts as one)."""
    sig, deadline = signal.SIGTERM, time.monotonic() + wait_s
    while time.monotonic() < deadline + 5:
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        if time.monotonic() > deadline:
            sig = signal.SIGKILL
        time.sleep(0.05)


class Chromium:
    def __init__(self, width: int = 1280, height: int = 720):
        self.width, self.height = width, height
        self.port = free_port()
        self._ids = itertools.count(1)

    async def __aenter__(self) -> "Chromium":
        self._profile = tempfile.TemporaryDirectory()
        self.proc = subprocess.Popen(
            [chromium_path(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             "--no-first-run", f"--remote-debugging-port={self.port}", f"--user-data-dir={self._profile.name}",
             f"--window-size={self.width},{self.height}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=_own_group_dying_with_parent)
        self.http = aiohttp.ClientSession()
        for _ in range(150):
            try:
                async with self.http.get(f"http://127.0.0.1:{self.port}/json/list") as r:
                    pages = [t for t in await r.json() if t["type"] == "page"]
                if pages:
                    break
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
        else:
            raise RuntimeError("chromium did not open its DevTools port")
        self.ws = await self.http.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=0)
        await self.call("Page.enable")
        await self.call("Emulation.setDeviceMetricsOverride", width=self.width, height=self.height,
                        deviceScaleFactor=1, mobile=False)
        return self

    async def __aexit__(self, *exc) -> None:
        await self.ws.close()
        await self.http.close()
        end(self.proc, 10)
        # Chromium's helpers (renderer, zygote, crashpad) can outlive its main process by a moment and still
        # write into the profile: end the whole group and wait until it is gone before removing the profile
        end_group(self.proc.pid, 10)
        self._profile.cleanup()

    async def call(self, method: str, **params) -> dict:
        i = next(self._ids)
        await self.ws.send_str(json.dumps({"id": i, "method": method, "params": params}))
        while True:
            msg = json.loads((await self.ws.receive(timeout=30)).data)
            if msg.get("id") == i:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg["result"]

    async def open(self, url: str) -> None:
        await self.call("Page.navigate", url=url)

    async def js(self, expr: str):
        r = await self.call("Runtime.evaluate", expression=expr, returnByValue=True)
        return r["result"].get("value")

    async def wait_js(self, expr: str, timeout: float = 20.0):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            v = await self.js(expr)
            if v:
                return v
            if loop.time() > deadline:
                raise AssertionError(f"timeout waiting for {expr}")
            await asyncio.sleep(0.2)

    async def screenshot(self) -> bytes:
        r = await self.call("Page.captureScreenshot", format="png")
        return base64.b64decode(r["data"])
