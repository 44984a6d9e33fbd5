"""The documented network mode, end to end: a real kiosk whose status server listens on an address of this
machine other than loopback, with a token, reached by real HTTP clients (with and without the token), while
a flood of clients without the token goes on. Before, `kiosk --status-bind ADDRESS --status-token T` exited 2
at once ("set status_token"): the supervisor took the token out of its children's configuration, and their
configuration check ran again."""
import asyncio
import collections
import json
import socket
import subprocess
import urllib.error
import urllib.request

from kiosk_parts import NO_CAMERA, Kiosk, flooded, playing
from realtime_parts import count_note_ons

TOKEN = "lan-token-5b1c9e2f7d"


def lan_address() -> tuple[str, str]:
    """(address to bind, address to reach it at): an IPv4 address of this machine that is not loopback, else
    0.0.0.0 reached through 127.0.0.1."""
    try:
        out = subprocess.run(["hostname", "-I"], capture_output=True, text=True, timeout=5).stdout.split()
    except (OSError, subprocess.SubprocessError):
        out = []
    for addr in out:
        if "." in addr and not addr.startswith("127."):
            with socket.socket() as s:
                try:
                    s.bind((addr, 0))
                except OSError:
                    continue
            return addr, addr
    return "0.0.0.0", "127.0.0.1"


def fetch(url: str, token: str | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


def test_network_mode_serves_staff_with_the_token_through_a_flood(jack_server, midi_receiver):
    bind, reach = lan_address()
    with Kiosk("--port", midi_receiver.port_name, "--source", NO_CAMERA, "--status-bind", bind,
               f"--status-token={TOKEN}", host=reach) as k:
        h = k.wait_health(playing, token=TOKEN)
        assert h["programs"]["sender"]["state"] == "running" and h["programs"]["thinker"]["state"] == "running"
        assert midi_receiver.wait_until(lambda got: count_note_ons(got) >= 3, timeout=30), k.output()[-2000:]
        assert fetch(k.url("/health"))[0] == 401
        assert fetch(k.url("/health?token=wrong"))[0] == 401
        assert fetch(k.url("/display"), TOKEN)[0] == 200
        assert fetch(k.url("/frame.jpg"), TOKEN)[0] == 204          # pictures stay on this machine off loopback
        notes_before = count_note_ons(midi_receiver.received())
        seen = collections.Counter()

        async def scenario():
            got = []
            async with flooded(reach, k.status_port, [None] * 260, seen):
                for _ in range(20):               # 10 s: a staff request every half second
                    got.append(await asyncio.to_thread(fetch, k.url("/health"), TOKEN))
                    await asyncio.sleep(0.5)
            return got

        got = asyncio.run(scenario())
        codes = [c for c, _ in got]
        assert codes.count(200) == 20, (codes, dict(seen))
        assert all(json.loads(body)["state"] == "playing" for _, body in got)
        assert seen["401"] > 0 and seen["kept_open"] == 0, dict(seen)
        assert count_note_ons(midi_receiver.received()) > notes_before, "the music stopped under the flood"
        assert k.stop() == 0
        assert TOKEN not in k.output()


def test_network_mode_from_a_config_file(jack_server, midi_receiver, tmp_path):
    bind, reach = lan_address()
    conf = tmp_path / "kiosk.toml"
    conf.write_text(f'status_bind = "{bind}"\nstatus_token = "{TOKEN}"\nsource = "{NO_CAMERA}"\n')
    with Kiosk("--config", str(conf), "--port", midi_receiver.port_name, host=reach) as k:
        assert k.wait_health(playing, token=TOKEN)["port_connected"]
        assert fetch(k.url("/health"))[0] == 401
        assert k.stop() == 0
