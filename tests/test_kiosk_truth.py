"""What the kiosk tells visitors and staff is the truth, with real processes and a real headless Chromium.

The findings: the visitor display said "joyful, C major" while the kiosk was FATAL and silent; when closed,
"closed" stood where the mood word goes, with no opening time; with no MIDI system the kiosk's advice was
`--record out.mid`, which the kiosk refuses; and /health's last_note_age_s stayed under 0.5 s while the JACK
server was down (it counted notes handed to a port that was gone).
"""
import asyncio
import datetime as dt
import os
import signal

import cv2
import numpy as np
import pytest

from browser import Chromium, chromium_path
from kiosk_parts import NO_CAMERA, Kiosk, playing
from realtime_parts import JackServer, MidiReceiverProcess, MissingTool, count_note_ons, stop_for_good

MOODS = ("joyful", "tense", "sombre", "calm")
DOT = (0xFF, 0xB3, 0x47)


@pytest.fixture(autouse=True)
def chromium():
    try:
        chromium_path()
    except MissingTool as exc:
        pytest.skip(str(exc))


def read_display(kiosk: Kiosk, then=None) -> dict:
    """The visitor display in headless Chromium after a few updates: its two lines, its state, and the share of
    the valence/arousal plane's pixels in the emotion dot's colour. ``then``: called (on a thread) after the
    first reading, and the page is read again 5 s later (under "after")."""
    async def scenario():
        async with Chromium(1280, 720) as b:
            await b.open(kiosk.url("/display"))
            await b.wait_js("document.body.dataset.updates >= 6", timeout=30)
            await asyncio.sleep(1.0)
            got = await read(b)
            if then is not None:
                await asyncio.to_thread(then)
                await asyncio.sleep(5.0)
                got["after"] = await read(b)
            return got

    async def read(b):
        got = await b.js("({mood: document.getElementById('mood').textContent,"
                         " key: document.getElementById('key').textContent, state: document.body.dataset.state,"
                         " rect: (() => {const r = document.getElementById('va').getBoundingClientRect();"
                         " return [r.left, r.top, r.width, r.height]})()})")
        png = await b.screenshot()
        img = cv2.cvtColor(cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        x, y, w, h = (int(v) for v in got["rect"])
        got["dot"] = float((np.abs(img[y:y + h, x:x + w].astype(int) - np.array(DOT)).max(axis=2) < 40).mean())
        return got
    return asyncio.run(scenario())


def test_no_midi_system_fatal_display_and_advice():
    env = {"JACK_DEFAULT_SERVER": f"itm-absent-{os.getpid()}", "JACK_NO_START_SERVER": "1"}
    with Kiosk("--source", NO_CAMERA, "--start-retries", "1", "--backoff-s", "0.1", "--fatal-retry-s", "600",
               env=env) as k:
        # the thinker runs and reads the pictures' mood; the sender cannot start: nothing is heard
        h = k.wait_health(lambda h: h["state"] == "fatal" and h["valence"] is not None and h["key"], timeout=90)
        assert h["programs"]["sender"]["state"] == "fatal", h
        shown = read_display(k)
        out = k.output()
    assert shown["state"] == "fatal", shown
    assert shown["mood"] == "resting" and "staff have been told" in shown["key"], shown
    assert shown["dot"] < 0.001, shown                 # no mood on the plane while nothing plays
    assert "--record" not in out and "--record" not in str(h["last_error"]), h["last_error"]
    assert "start JACK" in out and "jackd -d dummy" in out, out[-3000:]


def test_closed_display_says_until_when():
    now = dt.datetime.now()
    opens = (now + dt.timedelta(hours=2)).replace(second=0, microsecond=0)
    closes = opens + dt.timedelta(hours=1)
    hours = f"{opens:%H:%M}-{closes:%H:%M}"
    with Kiosk("--source", NO_CAMERA, "--hours", hours) as k:
        k.wait_health(lambda h: h["state"] == "closed", timeout=60)
        shown = read_display(k, then=k.stop)         # then the kiosk stops: the display hears nothing more
    assert shown["mood"] == f"closed until {opens:%H:%M}", shown
    assert shown["key"].strip() == "" and shown["dot"] < 0.001, shown
    assert shown["after"]["mood"] == "resting", shown        # not "closed until ...", which nobody said any more


def test_jack_down_last_note_age_and_display_tell_the_truth():
    name = f"itm-truth-{os.getpid()}"
    server = JackServer(name=name).start()
    rx = MidiReceiverProcess("truth-rx").open()
    k = Kiosk("--port", "truth-rx:in", "--source", NO_CAMERA).start()
    try:
        k.wait_health(playing)
        assert rx.wait_until(lambda m: count_note_ons(m) >= 3, timeout=30), k.output()[-2000:]
        k.wait_health(lambda h: h["last_note_age_s"] is not None and h["last_note_age_s"] < 5, timeout=10)
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(5)
        server.stop()
        rx.close()
        k.wait_health(lambda h: h["port_connected"] is False, timeout=10)
        shown = read_display(k)                        # a few seconds: nothing can reach a port meanwhile
        h = k.wait_health(lambda h: h["state"] == "waiting-for-port", timeout=10)
        assert h["last_note_age_s"] is not None and h["last_note_age_s"] >= 3.0, h
        assert shown["mood"] == "resting" and shown["mood"] not in MOODS and shown["dot"] < 0.001, shown
    finally:
        k.stop()
        k._out.close()
        stop_for_good(server, killed=True)        # JACK's 8-server table frees a killed name only when it starts again
