"""Ableton Link (optional, aalink): the engine's Link follower hears another peer's tempo change."""
import asyncio
import threading
import time

import pytest

aalink = pytest.importorskip("aalink", reason="aalink (optional, GPL) is not installed")

from installation.patches.link import LinkTempo  # noqa: E402


def test_link_follows_another_peers_tempo():
    got = []
    follower = LinkTempo(100, got.append)
    loop = asyncio.new_event_loop()
    holder = {}

    async def make_peer():
        holder["link"] = aalink.Link(100)
        holder["link"].enabled = True
    threading.Thread(target=loop.run_forever, daemon=True).start()
    asyncio.run_coroutine_threadsafe(make_peer(), loop).result(5)
    try:
        deadline = time.monotonic() + 10
        while follower.peers == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        # finding the other peer is the feature under test: not finding it fails (a host that blocks
        # multicast on loopback cannot run Link at all, and should say so by failing)
        assert follower.peers > 0, "the Link follower found no peer within 10 s (multicast blocked?)"
        loop.call_soon_threadsafe(setattr, holder["link"], "tempo", 137.0)
        deadline = time.monotonic() + 5
        while not any(abs(b - 137.0) < 0.01 for b in got) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert any(abs(b - 137.0) < 0.01 for b in got), got
    finally:
        loop.call_soon_threadsafe(setattr, holder["link"], "enabled", False)
        loop.call_soon_threadsafe(loop.stop)
        follower.close()
