"""The kiosk as a real process for tests and benchmarks: start it, read /health, find its children, stop it."""
from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NO_CAMERA = "9"        # --camera: a camera index with no camera behind it (one may come later): attract mode plays


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Kiosk:
    """``python run_installation.py kiosk --midi-api jack --status-port P ...`` with its output in a temp file."""

    def __init__(self, *args: str, status_port: int | None = None, env: dict | None = None, host: str = "127.0.0.1"):
        self.extra_env = env or {}
        self.host = host                    # where the tests reach the status server
        self.status_port = status_port or free_port()
        self.args = ["--midi-api", "jack", "--status-port", str(self.status_port), "--start-seconds", "1",
                     "--camera-timeout-s", "3", *args]
        self.proc: subprocess.Popen | None = None
        self._out = tempfile.NamedTemporaryFile("w+", suffix=".log")

    def start(self) -> "Kiosk":
        cmd = [sys.executable, str(REPO / "run_installation.py"), "kiosk", *self.args]
        self.proc = subprocess.Popen(cmd, cwd=REPO, stdout=self._out, stderr=subprocess.STDOUT, text=True,
                                     env=dict(os.environ, PYTHONUNBUFFERED="1", **self.extra_env))
        return self

    def output(self) -> str:
        self._out.flush()
        return Path(self._out.name).read_text(errors="replace")

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.status_port}{path}"

    def health(self, token: str | None = None, timeout: float = 5.0) -> dict | None:
        req = urllib.request.Request(self.url("/health"))
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return json.load(r)
        except (urllib.error.URLError, ConnectionError, OSError):
            return None

    def wait_health(self, predicate, timeout: float = 60.0, token: str | None = None) -> dict:
        deadline = time.monotonic() + timeout
        h = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"kiosk exited {self.proc.returncode}:\n{self.output()[-3000:]}")
            h = self.health(token)
            if h and predicate(h):
                return h
            time.sleep(0.2)
        raise AssertionError(f"timeout waiting on /health; last: {h}\n{self.output()[-3000:]}")

    def pids(self) -> dict[str, int]:
        h = self.health()
        return {role: p["pid"] for role, p in h["programs"].items()}

    def stop(self, timeout: float = 30.0) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def __enter__(self) -> "Kiosk":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
        self._out.close()


def playing(h: dict) -> bool:
    return h.get("state") == "playing"


def open_notes_at(messages, t: float) -> set:
    """(channel, pitch) sounding at receiver time ``t``, from (arrival, bytes) pairs."""
    sounding: dict = {}
    for at, m in messages:
        if at > t:
            break
        if len(m) != 3:
            continue
        key = (m[0] & 0x0F, m[1])
        if m[0] & 0xF0 == 0x90 and m[2] > 0:
            sounding[key] = sounding.get(key, 0) + 1
        elif m[0] & 0xF0 in (0x80, 0x90) and sounding.get(key):
            sounding[key] -= 1
            if not sounding[key]:
                del sounding[key]
    return set(sounding)


def silence_after(messages, t_kill: float) -> float | None:
    """Seconds from ``t_kill`` until no note sounds any more at the receiver (None: never)."""
    if not open_notes_at(messages, t_kill):
        return 0.0
    for at, _ in messages:
        if at > t_kill and not open_notes_at(messages, at):
            return at - t_kill
    return None


def first_note_on_after(messages, t: float) -> float | None:
    for at, m in messages:
        if at > t and len(m) == 3 and m[0] & 0xF0 == 0x90 and m[2] > 0:
            return at
    return None


def proc_sample(pid: int) -> dict | None:
    """Resident memory (MiB), threads and open file descriptors of one process, from /proc (None: gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {"rss_mib": int(fields["VmRSS"].split()[0]) / 1024, "threads": int(fields["Threads"]), "fds": fds}


def slope_per_hour(ts, ys) -> float:
    """Least-squares slope of ys over ts (seconds), per hour."""
    import numpy as np
    ts, ys = np.asarray(ts, float), np.asarray(ys, float)
    if len(ts) < 3 or np.ptp(ts) == 0:
        return 0.0
    return float(np.polyfit(ts, ys, 1)[0] * 3600)


def soak(kiosk: Kiosk, seconds: float, every: float = 2.0, warmup: float = 20.0) -> dict:
    """Sample the supervisor and its two children every ``every`` s for ``seconds``; per role: the samples
    after ``warmup``, the RSS slope (MiB/hour), and the first and last thread and fd counts."""
    pids = {"supervisor": kiosk.proc.pid, **kiosk.pids()}
    t0 = time.monotonic()
    samples = {role: [] for role in pids}
    while (now := time.monotonic()) - t0 < seconds:
        h = kiosk.health()
        assert h is not None and h["state"] == "playing", (h, kiosk.output()[-2000:])
        for role, pid in pids.items():
            s = proc_sample(pid)
            assert s is not None, f"{role} is gone"
            if now - t0 >= warmup:
                samples[role].append((now - t0, s))
        time.sleep(every)
    out = {}
    for role, rows in samples.items():
        ts = [t for t, _ in rows]
        out[role] = {"rss_mib_first": rows[0][1]["rss_mib"], "rss_mib_last": rows[-1][1]["rss_mib"],
                     "rss_mib_per_hour": slope_per_hour(ts, [s["rss_mib"] for _, s in rows]),
                     "threads": (rows[0][1]["threads"], max(s["threads"] for _, s in rows), rows[-1][1]["threads"]),
                     "fds": (rows[0][1]["fds"], max(s["fds"] for _, s in rows), rows[-1][1]["fds"]),
                     "samples": len(rows)}
    return out


@contextlib.asynccontextmanager
async def flooded(host: str, port: int, sources, seen: dict, settle_s: float = 3.0):
    """One ``flood_client`` per source address (None: any) for as long as the block runs; the block starts once
    every flood connection is made and the first 401s are answered, and the flood is stopped when it ends."""
    stop = asyncio.Event()
    flood = [asyncio.create_task(flood_client(host, port, s, stop, seen)) for s in sources]
    await asyncio.sleep(settle_s)
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait(flood, timeout=10)
        for t in flood:
            t.cancel()


async def flood_client(host: str, port: int, source: str | None, stop: asyncio.Event, seen: dict) -> None:
    """The finding's attacker: a keep-alive connection sending a request without the token every 2 s. It holds
    its connection open meanwhile, and connects again at once whenever the server closes it. ``seen`` counts
    401s, connections closed after one, connections kept open after one, and resets."""
    request = f"GET /health HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
    while not stop.is_set():
        try:
            r, w = await asyncio.open_connection(host, port, local_addr=(source, 0) if source else None)
        except OSError:
            await asyncio.sleep(0.1)
            continue
        try:
            while not stop.is_set():
                try:                                   # idle for 2 s (half-open: nothing sent yet)
                    await asyncio.wait_for(stop.wait(), 2.0)
                except asyncio.TimeoutError:
                    pass
                w.write(request)
                head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 5.0)
                length = int(re.search(rb"Content-Length: (\d+)", head).group(1))
                await asyncio.wait_for(r.readexactly(length), 5.0)
                seen["401"] += head.startswith(b"HTTP/1.1 401")
                if await _closed(r):
                    seen["closed_after_401"] += 1
                    break
                seen["kept_open"] += 1
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, AttributeError):
            seen["reset"] += 1
        finally:
            w.close()


async def _closed(r: asyncio.StreamReader) -> bool:
    try:
        return await asyncio.wait_for(r.read(1), 0.5) == b""
    except asyncio.TimeoutError:
        return False
