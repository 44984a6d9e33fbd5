"""Staff requests to the kiosk's status server during a flood of clients without the token.

The status server runs in a process of its own (as in the kiosk: a thread of the supervisor; here nothing
else), on 127.0.0.1 with a token. The flood: N keep-alive clients (default 260, the finding's), each sending
a request without the token every 2 s and holding its connection meanwhile, reconnecting when the server
closes it; most from one address (127.0.0.2), the rest spread over 12 others. Meanwhile a staff request with
the token every 0.5 s, each on a new connection: how many are served, and how long each takes.

    python bench/bench_status_flood.py [--clients 260] [--seconds 20]
"""
from __future__ import annotations

import asyncio
import collections
import http.client
import os
import subprocess
import sys
import time

import common
from kiosk_parts import flooded, free_port

TOKEN = "bench-flood-token"
SERVER = """
import sys, time
from installation.kiosk.status import StatusServer
from installation.kiosk.supervisor import Status
st = Status()
st.data = {"state": "playing"}
srv = StatusServer(st, "127.0.0.1", int(sys.argv[1]), token=sys.argv[2])
srv.start()
print("READY", flush=True)
sys.stdin.read()
srv.stop()
"""


def staff(port: int) -> tuple[int, float]:
    t0 = time.perf_counter()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        c.request("GET", "/health", headers={"Authorization": f"Bearer {TOKEN}"})
        r = c.getresponse()
        r.read()
        return r.status, time.perf_counter() - t0
    except OSError:
        return 0, time.perf_counter() - t0
    finally:
        c.close()


async def run(port: int, clients: int, seconds: float) -> tuple[list, collections.Counter]:
    one = int(clients * 200 / 260)
    sources = ["127.0.0.2"] * one + [f"127.0.0.{3 + i % 12}" for i in range(clients - one)]
    seen = collections.Counter()
    got = []
    async with flooded("127.0.0.1", port, sources, seen):
        t_end = time.monotonic() + seconds
        while time.monotonic() < t_end:
            got.append(await asyncio.to_thread(staff, port))
            await asyncio.sleep(0.5)
    return got, seen


def main() -> None:
    ap = common.parser(__doc__, seconds=20.0)
    ap.add_argument("--clients", type=int, default=260)
    args = common.parse(ap, seconds=5.0)
    busy = common.warn_if_busy()
    port = free_port()
    srv = subprocess.Popen([sys.executable, "-c", SERVER, str(port), TOKEN], cwd=common.REPO, stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, text=True,
                           env={**os.environ, "PYTHONPATH": str(common.REPO)})
    try:
        assert srv.stdout.readline().strip() == "READY"
        got, seen = asyncio.run(run(port, args.clients, args.seconds))
    finally:
        srv.stdin.close()
        srv.wait(15)
    served = [dt for code, dt in got if code == 200]
    lat = common.summary(served, 1000)
    print(f"staff requests served: {len(served)} of {len(got)} during a flood of {args.clients} clients without "
          f"the token ({args.seconds:g} s)")
    print(common.line("staff /health, connect to answer", lat))
    print(f"flood: {seen['401']} requests answered 401, {seen['closed_after_401']} connections closed after "
          f"their 401, {seen['kept_open']} kept open, {seen['reset']} closed for a newcomer or reset")
    common.write_result("bench_status_flood", {"machine": common.machine(), "busy": busy, "clients": args.clients,
                                               "seconds": args.seconds, "staff_requests": len(got),
                                               "staff_served": len(served), "staff_latency_ms": lat,
                                               "flood": dict(seen)}, args.out)


if __name__ == "__main__":
    main()
