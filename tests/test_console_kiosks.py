"""The staff console on kiosks started for one question each: a pause ends at closing time, a kiosk without a
token has no console, next is refused while a live camera gives the picture, and a patch can ask for the
volume as a velocity scale (real processes, a real JACK server, an independent receiver)."""
import datetime as dt
import json
import time

import pytest

from kiosk_parts import NO_CAMERA, Kiosk, first_note_on_after, playing
from realtime_parts import count_note_ons, is_note_on
from console_parts import TOKEN, health, post, request


def test_a_pause_ends_at_closing_time(jack_server, midi_receiver):
    now = dt.datetime.now()
    if now.hour == 23 and now.minute >= 58:
        pytest.skip("too close to midnight for a closing time inside the test")
    close = now + dt.timedelta(seconds=30)
    hours = f"{now - dt.timedelta(minutes=1):%H:%M}-{close:%H:%M:%S}"
    with Kiosk("--port", midi_receiver.port_name, "--source", NO_CAMERA, "--hours", hours,
               "--status-token", TOKEN) as k:
        k.wait_health(lambda h: h["open"], token=TOKEN, timeout=20)     # a pause is kept whatever the children do
        assert post(k, "pause")[0] == 200
        assert health(k)["paused"] is True
        h = k.wait_health(lambda h: h["state"] == "closed", token=TOKEN, timeout=60)
        assert h["paused"] is False, "tomorrow would open silent"
        assert "control action=resume" in k.output() and "client=closing time" in k.output()
        assert k.stop() == 0


def test_a_kiosk_without_a_token_has_no_console(jack_server, midi_receiver):
    with Kiosk("--port", midi_receiver.port_name, "--source", NO_CAMERA) as k:
        k.wait_health(playing, timeout=90)
        for method, path in (("POST", "/control/pause"), ("GET", "/history?hours=1"), ("GET", "/console"),
                             ("GET", "/console/charts")):
            status, body = request(k, method, path, token=None)
            assert status == 403, (path, status)
            assert b"status-token" in (body if isinstance(body, bytes) else json.dumps(body).encode())
        t0 = time.perf_counter()
        assert midi_receiver.wait_until(
            lambda got: first_note_on_after(list(midi_receiver.messages), t0 + 0.5) is not None, timeout=5)
        assert health(k)["paused"] is False and "control action=" not in k.output()
        assert k.stop() == 0


def test_next_is_refused_while_a_camera_gives_the_picture(jack_server, midi_receiver, tmp_path):
    from media import make_video
    video = make_video(tmp_path / "camera.avi", [((200, 40, 40), 2.0), ((40, 40, 200), 2.0)])
    with Kiosk("--port", midi_receiver.port_name, "--source", str(video), "--status-token", TOKEN) as k:
        k.wait_health(lambda h: h["state"] == "playing" and h["camera"] == "camera", token=TOKEN, timeout=90)
        status, body = post(k, "next")
        assert status == 409 and "camera" in body["error"], body
        assert k.stop() == 0


def test_a_patch_can_ask_for_the_volume_as_velocity(jack_server, midi_receiver, tmp_path):
    patch = tmp_path / "velocity-volume.toml"
    patch.write_text('name = "velocity-volume"\n\n[output]\nvolume = "velocity"\n')
    with Kiosk("--port", midi_receiver.port_name, "--source", NO_CAMERA, "--seed", "5",
               "--patch", str(patch), "--status-token", TOKEN) as k:
        k.wait_health(playing, token=TOKEN, timeout=90)
        assert midi_receiver.wait_until(lambda got: count_note_ons(got) >= 10, timeout=30)
        assert max(m[2] for m in midi_receiver.received() if is_note_on(m)) > 20
        status, body = post(k, "volume", body=b'{"value": 20}')
        assert status == 200 and body["ok"], body
        t0 = time.perf_counter()
        assert midi_receiver.wait_until(
            lambda got: sum(at > t0 + 1.0 and is_note_on(m) for at, m in list(midi_receiver.messages)) >= 10,
            timeout=30), "no music after the volume"
        after = [m[2] for at, m in list(midi_receiver.messages) if at > t0 + 1.0 and is_note_on(m)]
        assert max(after) <= 20, after
        assert not [m for m in midi_receiver.received() if m[:2] == (0xB0, 7)], "CC 7 sent to a velocity patch"
        assert k.stop() == 0


def test_a_pause_silences_every_layer_and_keeps_the_clock(jack_server):
    """ableton-live: two note channels, mood as CC, a MIDI clock: paused, no note-on on any channel, and the
    clock goes on (a DAW following it keeps its tempo)."""
    from realtime_parts import MidiReceiver
    with MidiReceiver(client_name="console-clock-rx", timing=True) as rx, \
            Kiosk("--port", rx.port_name, "--source", NO_CAMERA, "--patch", "ableton-live",
                  "--status-token", TOKEN) as k:
        k.wait_health(playing, token=TOKEN, timeout=90)
        assert rx.wait_until(lambda got: len({m[0] & 0x0F for m in got if is_note_on(m)}) == 2, timeout=30), \
            "both layers play"
        assert post(k, "pause")[0] == 200
        t0 = time.perf_counter()
        time.sleep(4.0)
        msgs = [(at, m) for at, m in list(rx.messages) if at > t0 + 1.0]
        assert not [m for _, m in msgs if is_note_on(m)], "a note-on while paused"
        assert sum(m == (0xF8,) for _, m in msgs) > 24, "the clock stopped"
        assert post(k, "resume")[0] == 200
        t1 = time.perf_counter()
        assert rx.wait_until(lambda got: first_note_on_after(list(rx.messages), t1) is not None, timeout=5)
        assert k.stop() == 0
    assert rx.unmatched_note_ons() == []
