"""The status server under hostile clients, with real TCP connections: it stays up, stays small, logs one
line at a time, keeps its token secret, and never takes what the supervisor needs to restart a child."""
import asyncio
import collections
import http.client
import logging
import os
import resource
import signal
import socket
import time

import pytest

from installation.kiosk.status import MAX_STREAMS, StatusServer
from installation.kiosk.supervisor import Status
from kiosk_parts import NO_CAMERA, Kiosk, flooded, free_port, playing


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def fd_room():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.fixture
def server():
    st = Status()
    st.data = {"state": "playing"}
    st.jpeg = b"\xff\xd8fake-jpeg"
    srv = StatusServer(st, "127.0.0.1", 0, token="s3cret")
    srv.limits.header_timeout_s = 1.0
    srv.start()
    yield srv
    srv.stop()


def get(port, path, headers=None, timeout=5.0):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def test_half_open_flood_is_capped_and_reaped(server, fd_room):
    fds0 = _open_fds()
    socks = []
    try:
        for _ in range(1100):
            s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            s.send(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")      # never finishes its header
            socks.append(s)
        time.sleep(0.5)
        assert len(server.limits.active) <= server.limits.max_connections
        # each one beyond the cap made room (the oldest unfinished one closed), or was closed for its unfinished header
        lim = server.limits
        assert lim.refused + lim.evicted + lim.timed_out >= 1100 - lim.max_connections
        # while the flood's sockets are all still open, a real client is served
        assert get(server.port, "/health", {"Authorization": "Bearer s3cret"})[0] == 200
        # the server's own handles stay within its budget (ours are the other 1,100)
        assert _open_fds() - fds0 <= 1100 + server.limits.max_connections + 10
        deadline = time.monotonic() + 10
        while server.limits.active and time.monotonic() < deadline:   # half-open ones are closed at 1 s
            time.sleep(0.2)
        assert not server.limits.active and server.limits.timed_out >= 1
        assert get(server.port, "/health", {"Authorization": "Bearer s3cret"})[0] == 200
    finally:
        for s in socks:
            s.close()


def test_token_host_and_frames(server, caplog):
    caplog.set_level(logging.INFO)
    port = server.port
    assert get(port, "/health")[0] == 401
    assert get(port, "/health", {"Authorization": "Bearer s3cret"})[0] == 200
    assert get(port, "/health?token=s3cret")[0] == 200
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.putrequest("GET", "/health")
    c.putheader("Authorization", "Bearer s\u00e9cret\u2603".encode("utf-8"))
    c.endheaders()
    assert c.getresponse().status == 401                       # not 500
    c.close()
    assert get(port, "/health?token=s3cret", {"Host": "attacker.example:80"})[0] == 421   # DNS rebinding
    assert get(port, "/health?token=s3cret", {"Host": "localhost:%d" % port})[0] == 200
    status, body = get(port, "/frame.jpg?token=s3cret")
    assert status == 200 and body.startswith(b"\xff\xd8")       # loopback: frames are served
    with socket.create_connection(("127.0.0.1", port)) as s:   # a malformed request: one line, no token
        s.sendall(b"GET /health?token=s3cret \x00\x01 HTTP/1.1\r\n\r\n")
        s.recv(1000)
    time.sleep(0.3)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "s3cret" not in text and "Traceback" not in text
    assert not any(r.exc_info for r in caplog.records)


def test_no_frames_off_loopback_and_live_clients_capped():
    st = Status()
    st.data = {"state": "playing"}
    st.jpeg = b"\xff\xd8fake"
    srv = StatusServer(st, "0.0.0.0", 0, token="t0k")
    srv.start()
    conns = []
    try:
        assert get(srv.port, "/frame.jpg?token=t0k")[0] == 204      # frames stay on this machine
        for _ in range(MAX_STREAMS + 10):
            c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
            c.request("GET", "/events?token=t0k")
            conns.append((c, c.getresponse()))
        codes = [r.status for _, r in conns]
        assert codes.count(200) == MAX_STREAMS and codes.count(503) == 10
    finally:
        for c, _ in conns:
            c.close()
        srv.stop()


def test_kiosk_restarts_a_killed_thinker_through_a_connection_flood(jack_server, midi_receiver, fd_room):
    """The finding: 1,100 half-open connections took the supervisor's file handles; a killed thinker then
    could not be restarted (FATAL), /health stopped answering and the log grew by 243 MB in 75 s."""
    port = free_port()
    with Kiosk("--port", midi_receiver.port_name, "--source", NO_CAMERA, status_port=port) as k:
        k.wait_health(playing)
        size0 = len(k.output())
        socks = []
        try:
            for _ in range(1100):
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                s.send(b"GET / HTTP/1.1\r\n")
                socks.append(s)
            os.kill(k.pids()["thinker"], signal.SIGKILL)
            h = k.wait_health(lambda h: playing(h) and h["restarts"] >= 1, timeout=60)
            assert h["programs"]["thinker"]["state"] == "running"
        finally:
            for s in socks:
                s.close()
        assert len(k.output()) - size0 < 50_000, "the log grew under the flood"
        assert k.stop() == 0


def test_the_token_is_not_on_the_childrens_command_lines(jack_server, midi_receiver):
    with Kiosk("--port", midi_receiver.port_name, "--source", NO_CAMERA,
               "--status-token", "hush-7f3a") as k:
        k.wait_health(playing, token="hush-7f3a")
        h = k.health(token="hush-7f3a")
        for role, p in h["programs"].items():
            cmdline = open(f"/proc/{p['pid']}/cmdline", "rb").read()
            assert b"hush-7f3a" not in cmdline, role
        assert k.stop() == 0
        assert "hush-7f3a" not in k.output()


def _on_loop(srv, fn):
    """Run ``fn`` on the server's own loop (its connection set is changed only there) and return its result."""
    import concurrent.futures
    fut = concurrent.futures.Future()
    srv._loop.call_soon_threadsafe(lambda: fut.set_result(fn()))
    return fut.result(10)


@pytest.fixture
def plain_server():
    """The status server with its default limits (a request's header within 5 s)."""
    st = Status()
    st.data = {"state": "playing"}
    srv = StatusServer(st, "127.0.0.1", 0, token="s3cret")
    srv.start()
    yield srv
    srv.stop()


def test_staff_are_served_through_a_flood_of_clients_without_the_token(plain_server):
    """The finding: 260 keep-alive connections sending a request without the token every 2 s made 0 of 40
    token-bearing /health requests succeed for 20 s (a 401 kept its connection open, and a full server only
    made room by closing connections with an unfinished header). 200 of the flood's connections come from one
    address (the per-client cap), 60 from 12 others (the cap on connections that have not shown the token)."""
    server = plain_server
    lim = server.limits
    sources = ["127.0.0.2"] * 200 + [f"127.0.0.{3 + i % 12}" for i in range(60)]
    seen = collections.Counter()
    peaks = collections.Counter()

    def census():
        untrusted = [g for g in lim.active if not getattr(g, "trusted", False)]
        return len(untrusted), sum(g.transport.get_extra_info("peername")[0] == "127.0.0.2" for g in untrusted)

    def staff_request() -> int:
        try:
            return get(server.port, "/health", {"Authorization": "Bearer s3cret"}, timeout=5.0)[0]
        except OSError:
            return 0

    async def scenario():
        codes = []
        async with flooded("127.0.0.1", server.port, sources, seen):
            for _ in range(40):                        # 20 s: a staff request every half second
                codes.append(await asyncio.to_thread(staff_request))
                untrusted, one_address = await asyncio.to_thread(_on_loop, server, census)
                peaks["untrusted"] = max(peaks["untrusted"], untrusted)
                peaks["one_address"] = max(peaks["one_address"], one_address)
                await asyncio.sleep(0.5)
        return codes

    codes = asyncio.run(scenario())
    assert codes.count(200) == 40, (codes, dict(seen))
    assert seen["401"] > 0 and seen["closed_after_401"] == seen["401"], dict(seen)   # each 401 closed its connection
    assert peaks["untrusted"] <= lim.max_unauthenticated and peaks["one_address"] <= lim.max_per_client, dict(peaks)
    assert lim.evicted > 0
    assert get(server.port, "/health", {"Authorization": "Bearer s3cret"})[0] == 200
