"""The status server in a real headless Chromium, and under a burst of concurrent requests; the token rule."""
import asyncio
import json

import aiohttp
import cv2
import numpy as np
import pytest

from browser import Chromium, chromium_path
from kiosk_parts import NO_CAMERA, Kiosk, playing
from realtime_parts import MissingTool, count_note_ons

TOKEN = "s3cret-for-tests"


@pytest.fixture
def kiosk(jack_server, midi_receiver):
    try:
        chromium_path()
    except MissingTool as exc:
        pytest.skip(str(exc))
    with Kiosk("--port", midi_receiver.port_name, "--source", NO_CAMERA, "--status-token", TOKEN) as k:
        k.wait_health(playing, token=TOKEN)
        assert midi_receiver.wait_until(lambda got: count_note_ons(got) >= 5, timeout=30)
        yield k


def decode(png: bytes) -> np.ndarray:
    return cv2.cvtColor(cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def share_near(img: np.ndarray, rgb, tol=40) -> float:
    return float((np.abs(img.astype(int) - np.array(rgb)).max(axis=2) < tol).mean())


def test_pages_in_chromium(kiosk, tmp_path):
    async def scenario():
        async with Chromium(1280, 720) as b:
            await b.open(kiosk.url(f"/health?token={TOKEN}"))
            text = await b.wait_js("document.body && document.body.innerText")
            health = json.loads(text)
            (tmp_path / "health.png").write_bytes(await b.screenshot())
            await b.open(kiosk.url(f"/?token={TOKEN}"))
            await b.wait_js("document.body.dataset.updates >= 2")
            staff = await b.js("[document.getElementById('state').textContent,"
                               " document.getElementById('v-port').textContent]")
            await b.open(kiosk.url(f"/display?token={TOKEN}"))
            await b.wait_js("document.body.dataset.updates >= 4 && document.body.dataset.notes > 0")
            await b.wait_js("document.getElementById('picture').naturalWidth > 0")
            await asyncio.sleep(2.0)                   # the dot glides to its place
            display = await b.js("({mood: document.getElementById('mood').textContent,"
                                 " w: innerWidth, h: innerHeight, rect: (() => {const r ="
                                 " document.getElementById('va').getBoundingClientRect();"
                                 " return [r.left, r.top, r.width, r.height]})(),"
                                 " roll: (() => {const r = document.getElementById('roll').getBoundingClientRect();"
                                 " return [r.left, r.top, r.width, r.height]})()})")
            png = await b.screenshot()
            (tmp_path / "display.png").write_bytes(png)
            return health, staff, display, png
    health, staff, display, png = asyncio.run(scenario())
    for key in ("uptime_s", "state", "camera", "port", "fps", "events_per_s", "lateness_p99_ms", "valence",
                "arousal", "key", "restarts", "last_error"):
        assert key in health
    assert health["state"] == "playing" and health["camera"] == "attract"
    assert staff[0] == "playing" and "test-receiver" in staff[1]
    assert display["mood"] in ("joyful", "tense", "sombre", "calm")
    img = decode(png)
    assert img.shape[:2] == (720, 1280)
    x, y, w, h = (int(v) for v in display["rect"])
    assert share_near(img[y:y + h, x:x + w], (0xFF, 0xB3, 0x47)) > 0.005, "no emotion dot on the plane"
    rx, ry, rw, rh = (int(v) for v in display["roll"])
    roll = img[ry:ry + rh, rx:rx + rw]
    assert (roll.max(axis=2) > 60).mean() > 0.002, "the piano roll shows no notes"
    pic = img[: int(0.68 * 720), : int(0.6 * 1280)]
    assert pic.std() > 20, "no picture"


def test_health_under_a_burst_of_concurrent_requests(kiosk):
    async def burst():
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as s:
            async def one():
                async with s.get(kiosk.url("/health")) as r:
                    return r.status, await r.json()
            return await asyncio.gather(*(one() for _ in range(200)))
    results = asyncio.run(burst())
    assert all(status == 200 for status, _ in results)
    assert all(body["state"] == "playing" and body["port"] for _, body in results)
    assert kiosk.health(TOKEN)["state"] == "playing"


def test_a_request_without_the_right_token_gets_401(kiosk):
    async def tries():
        async with aiohttp.ClientSession() as s:
            for _ in range(100):                      # the first picture comes with a heartbeat after the first notes
                async with s.get(kiosk.url("/frame.jpg"), headers={"Authorization": f"Bearer {TOKEN}"}) as r:
                    if r.status == 200:
                        break
                await asyncio.sleep(0.1)
            out = []
            for path, headers in [("/health", {}), ("/health?token=wrong", {}), ("/display", {}),
                                  ("/frame.jpg", {"Authorization": "Bearer wrong"}),
                                  (f"/health?token={TOKEN}", {}), ("/frame.jpg", {"Authorization": f"Bearer {TOKEN}"})]:
                async with s.get(kiosk.url(path), headers=headers) as r:
                    out.append((r.status, r.headers.get("Content-Type", "")))
            return out
    got = asyncio.run(tries())
    assert [s for s, _ in got[:4]] == [401, 401, 401, 401]
    assert got[4][0] == 200 and got[5] == (200, "image/jpeg")
