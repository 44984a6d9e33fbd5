"""The engine's vision thread on its own: a source in, the scene changes it finds out.

Used by tests/test_scene_change_live.py and bench/bench_false_changes.py. The
engine is built as `play` builds it (real encoder, image emotion, conductor,
scene tracker), but only its vision thread runs: no music, so a timeline source
(a video file) is read as fast as the encoder goes.
"""
from __future__ import annotations

import time

from installation.engine import Engine, EngineConfig


def scene_changes(models, source, seconds: float, timeout_s: float = 300.0) -> tuple[list[float], Engine]:
    """Run until the vision thread has seen ``seconds`` of ``source``; returns the times at which each
    scene change was first seen (those before ``seconds``: a file that loops starts a real change) and
    the engine (its ``vision`` holds the counters). Raises if the thread failed or did not get there."""
    eng = Engine(models, source, EngineConfig(seed=1), scheduler=None)
    changes: list[float] = []
    publish = eng.timeline.publish

    def counted(e):
        if e.changed:
            changes.append(e.seen_t)
        publish(e)
    eng.timeline.publish = counted
    eng.vision.music_time = lambda: float("inf")       # no music here: run as far ahead as it likes
    source.start()
    eng.vision.start(time.perf_counter())
    deadline = time.monotonic() + timeout_s
    while eng.timeline.latest_t() < seconds - 0.05 and time.monotonic() < deadline and eng.failure is None:
        time.sleep(0.05)
    eng.stop_event.set()
    eng.vision.join(5.0)
    if eng.failure is not None:
        raise RuntimeError(f"vision thread failed: {eng.failure!r}")
    if eng.timeline.latest_t() < seconds - 0.05:
        raise RuntimeError(f"the vision thread saw {eng.timeline.latest_t():.1f} s of {seconds:g} s in {timeout_s:g} s")
    return [t for t in changes if t < seconds], eng
