"""The staff console's controls on a real kiosk (real processes, a real JACK server) heard by an independent
rtmidi receiver: pause silences every note and the pedal and keeps silence, resume brings music back, the test
chord arrives, the volume reaches the synth and comes back after a restart, a request without the token
changes nothing, and /history tells a kill -9 of the thinker with its reason."""
import json
import os
import signal
import time
from pathlib import Path

import pytest

from installation.kiosk.control import RATE, RATE_S
from console_parts import TOKEN, health, pids, post, request
from kiosk_parts import NO_CAMERA, Kiosk, first_note_on_after, open_notes_at, playing
from realtime_parts import MidiReceiver, count_note_ons, is_note_on


@pytest.fixture(scope="module")
def rx(jack_server):
    with MidiReceiver(client_name="console-synth") as r:
        yield r


@pytest.fixture(scope="module")
def kiosk(rx, tmp_path_factory):
    log = tmp_path_factory.mktemp("console") / "kiosk.jsonl"
    k = Kiosk("--port", rx.port_name, "--source", NO_CAMERA, "--seed", "5", "--status-token", TOKEN,
              "--log-file", str(log), "--slide-seconds", "600", env={"ITM_HISTORY_MINUTE_S": "5"})
    k.log_path = log
    with k:
        k.wait_health(playing, token=TOKEN, timeout=90)
        assert rx.wait_until(lambda got: count_note_ons(got) >= 5, timeout=30), k.output()[-2000:]
        yield k
        code = k.stop()
        assert code == 0, (code, k.output()[-3000:])
    time.sleep(0.3)
    assert rx.unmatched_note_ons() == [], ("a note left sounding", rx.messages[-40:])


def pedal_down(msgs) -> set:
    """Channels whose sustain pedal (CC64) is down after these messages (CC123/CC120 do not lift it)."""
    down = set()
    for _, m in msgs:
        if len(m) == 3 and m[0] & 0xF0 == 0xB0 and m[1] == 64:
            (down.add if m[2] >= 64 else down.discard)(m[0] & 0x0F)
    return down


def log_lines(k) -> list[dict]:
    return [json.loads(line) for line in Path(k.log_path).read_text().splitlines() if line.strip()]


def test_pause_silences_everything_until_resume(kiosk, rx):
    assert rx.wait_until(lambda got: bool(open_notes_at([(0, m) for m in got], 1)), timeout=20), "no note sounding"
    status, body = post(kiosk, "pause")
    t_paused = time.perf_counter()
    assert status == 200 and body["ok"], body
    try:
        time.sleep(4.0)
        msgs = list(rx.messages)
        assert open_notes_at(msgs, t_paused + 1.0) == set(), "notes still sounding 1 s after pause"
        assert pedal_down([x for x in msgs if x[0] <= t_paused + 1.0]) == set(), "the pedal is still down"
        late = [m for at, m in msgs if at > t_paused + 1.0 and is_note_on(m)]
        assert late == [], f"note-ons while paused: {late[:5]}"
        assert health(kiosk)["state"] == "paused"
    finally:
        status, body = post(kiosk, "resume")
    t_resumed = time.perf_counter()
    assert status == 200 and body["ok"], body
    assert rx.wait_until(lambda got: first_note_on_after(list(rx.messages), t_resumed) is not None, timeout=2.0), \
        "no note within 2 s of resume"
    kiosk.wait_health(playing, token=TOKEN, timeout=5)
    actions = [(r["action"], r["client"]) for r in log_lines(kiosk) if r["event"] == "control"]
    assert ("pause", "127.0.0.1") in actions and ("resume", "127.0.0.1") in actions


def test_test_chord_arrives_whole(kiosk, rx):
    assert post(kiosk, "pause")[0] == 200
    try:
        time.sleep(1.5)                          # the music's notes are released and none follow
        t0 = time.perf_counter()
        status, body = post(kiosk, "test-chord")
        assert status == 200 and body["ok"], body
        time.sleep(2.0)
        got = [m for at, m in list(rx.messages) if at > t0 and len(m) == 3 and m[0] & 0xE0 == 0x80]
        ons = sorted(m[1] for m in got if is_note_on(m))
        offs = sorted(m[1] for m in got if not is_note_on(m))
        assert ons == [60, 64, 67], got
        assert offs == [60, 64, 67], got
    finally:
        assert post(kiosk, "resume")[0] == 200


def test_without_the_token_nothing_changes(kiosk, rx):
    kiosk.wait_health(playing, token=TOKEN, timeout=10)
    n_control = sum(r["event"] == "control" for r in log_lines(kiosk))
    volume = health(kiosk)["volume"]
    for token in (None, "wrong-token"):
        for action in ("pause", "restart", "volume"):
            status, _ = post(kiosk, action, token=token, body=b'{"value": 0}')
            assert status == 401, (action, token, status)
    t0 = time.perf_counter()
    assert rx.wait_until(lambda got: first_note_on_after(list(rx.messages), t0 + 1.0) is not None, timeout=5), \
        "the music stopped"
    h = health(kiosk)
    assert h["state"] != "paused" and not h["paused"] and h["volume"] == volume
    assert sum(r["event"] == "control" for r in log_lines(kiosk)) == n_control


def test_hostile_bodies_are_refused(kiosk):
    volume = health(kiosk)["volume"]
    for body, ctype in [(b'{"value": 128}', "application/json"), (b'{"value": -1}', "application/json"),
                        (b'{"value": true}', "application/json"), (b'{"value": "64"}', "application/json"),
                        (b'[64]', "application/json"), (b'{"value": 6', "application/json"),
                        (b"\xff\xfe", "application/json"), (b"value=64x", "application/x-www-form-urlencoded"),
                        (b'{"value": 1e999}', "application/json"), (b"", "application/json")]:
        status, answer = post(kiosk, "volume", body=body, headers={"Content-Type": ctype})
        assert status == 400, (body, status, answer)
    status, _ = post(kiosk, "volume", body=b'{"value": 1' + b" " * 4000 + b"}")
    assert status == 413
    assert post(kiosk, "self-destruct")[0] == 404
    assert request(kiosk, "GET", "/control/pause")[0] == 405
    assert health(kiosk)["volume"] == volume


def test_volume_reaches_the_synth_and_survives_a_restart(kiosk, rx):
    t0 = time.perf_counter()
    status, body = post(kiosk, "volume", body=b"value=90", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200 and body["value"] == 90, body
    cc7 = lambda after: [m for at, m in list(rx.messages) if at > after and m[:2] == (0xB0, 7)]   # noqa: E731
    assert rx.wait_until(lambda got: cc7(t0) != [], timeout=3), "no CC 7"
    assert cc7(t0)[-1] == (0xB0, 7, 90)
    assert json.loads(Path(f"{kiosk.log_path}.controls.json").read_text()) == {"volume": 90}
    before = health(kiosk)["restarts"]
    t1 = time.perf_counter()
    os.kill(pids(kiosk)["thinker"], signal.SIGKILL)
    kiosk.wait_health(lambda h: h["state"] == "playing" and h["restarts"] >= before + 1, token=TOKEN, timeout=60)
    assert rx.wait_until(lambda got: cc7(t1) != [], timeout=5), "the new thinker did not send the volume"
    assert cc7(t1)[-1] == (0xB0, 7, 90)


def test_history_tells_a_kill_and_a_staff_restart(kiosk):
    before = health(kiosk)["restarts"]
    os.kill(pids(kiosk)["thinker"], signal.SIGKILL)
    kiosk.wait_health(lambda h: h["state"] == "playing" and h["restarts"] >= before + 1, token=TOKEN, timeout=60)
    status, body = post(kiosk, "restart")
    assert status == 200 and body["ok"], body
    kiosk.wait_health(lambda h: h["state"] == "playing" and h["restarts"] >= before + 2, token=TOKEN, timeout=60)
    assert request(kiosk, "GET", "/history?hours=1", token=None)[0] == 401
    deadline = time.monotonic() + 30                 # the answer is kept 10 s: ask until it has the staff restart
    while True:
        status, h = request(kiosk, "GET", "/history?hours=1")
        assert status == 200
        reasons = [r["reason"] for r in h["restarts"] if r["program"] == "thinker"]
        if any("staff" in r for r in reasons) or time.monotonic() > deadline:
            break
        time.sleep(1.0)
    assert any("killed by signal 9" in r and "staff" not in r for r in reasons), reasons
    assert any("restart asked by staff from 127.0.0.1" in r for r in reasons), reasons
    states = {s["state"] for s in h["states"]}
    assert "playing" in states and "fault" in states, h["states"]
    assert h["minutes"] and any((m["notes"] or 0) > 0 for m in h["minutes"]), h["minutes"][-3:]
    assert request(kiosk, "GET", "/history?hours=1000")[0] == 400
    assert request(kiosk, "GET", "/history?hours=nan")[0] == 400


def test_next_moves_the_slideshow_now(kiosk):
    kiosk.wait_health(lambda h: h["state"] == "playing" and h["picture"], token=TOKEN, timeout=30)
    first = health(kiosk)["picture"]
    status, body = post(kiosk, "next")
    assert status == 200 and body["ok"], body
    h = kiosk.wait_health(lambda h: h["picture"] and h["picture"] != first, token=TOKEN, timeout=10)
    assert h["picture"] != first


def test_actions_are_rate_limited(kiosk):
    time.sleep(RATE_S)                           # the other tests' actions are out of the window
    answers = [post(kiosk, "resume") for _ in range(RATE + 3)]
    assert [s for s, _ in answers[:RATE]] == [200] * RATE, answers
    assert {s for s, _ in answers[RATE:]} == {429}, answers[RATE:]
    assert "try again" in answers[-1][1]["error"]
    refused = [r for r in log_lines(kiosk) if r["event"] == "control" and r.get("error") == "rate limit"]
    assert refused and refused[-1]["client"] == "127.0.0.1"
    time.sleep(RATE_S)
    assert post(kiosk, "resume")[0] == 200
