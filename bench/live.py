"""The live engine in the benchmark's own process, with every send logged against its due time.

``timed_engine()`` builds an installation.engine.Engine whose scheduler is a
``TimedScheduler``: the same Scheduler, plus a log of (due, clock time of the
actual send call, message) for every message ``tick`` sends. The scheduler's
own lateness (stats()) uses the time ``tick`` started; this log takes the clock
again right before each sink.send, so a message sent after others in the same
tick is charged for the wait.
"""
from __future__ import annotations

from pathlib import Path

import common  # noqa: F401  (sys.path)
from installation import engine as engine_module
from installation.midi.scheduler import Scheduler


class TimedScheduler(Scheduler):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.send_log: list[tuple[float, float, tuple[int, ...]]] = []

    def _send(self, now, due, msg):
        self.send_log.append((due, self._clock(), msg))
        super()._send(now, due, msg)


def timed_engine(models, source, sink, cfg):
    """An Engine whose scheduler logs every send (the class is swapped for this construction only),
    and whose encoder logs the (start, end) clock times of every embed call in ``engine.embed_log``."""
    engine_module.Scheduler = TimedScheduler
    try:
        eng = engine_module.Engine(models, source, sink, cfg)
    finally:
        engine_module.Scheduler = Scheduler
    eng.embed_log = []
    embed = eng.encoder.embed

    def logged_embed(frames):
        t0 = eng.clock()
        try:
            return embed(frames)
        finally:
            eng.embed_log.append((t0, eng.clock()))
    eng.encoder.embed = logged_embed
    return eng


def during(times, intervals) -> int:
    """How many of ``times`` fall inside one of the (start, end) intervals."""
    import bisect
    starts = [a for a, _ in intervals]
    n = 0
    for t in times:
        i = bisect.bisect_right(starts, t) - 1
        if i >= 0 and intervals[i][0] <= t <= intervals[i][1]:
            n += 1
    return n


def sender_log(sends):
    """The sender's ITM_SEND_LOG array (installation/midi/sender.py) as (due, sent, bytes) rows, like TimedScheduler's."""
    return [(float(r[0]), float(r[1]), tuple(int(b) for b in r[2:5] if b >= 0)) for r in sends]


def match_arrivals(send_log, received, window_s: float = 0.1):
    """Pair each logged (due, sent, bytes) send with its arrival at the receiver: the first arrival not yet
    taken with the same bytes, from the send call to ``window_s`` after it. JACK keeps the order of one port's
    messages; messages the receiver got that are not in the log (a final panic's note-offs and CCs) are
    skipped, and a send that never arrived (rtmidi refused it, say) is None without throwing the rest out of
    step. Returns a list of arrival times (None where nothing matched)."""
    by_bytes: dict = {}
    for t, m in received:
        by_bytes.setdefault(tuple(m), []).append(t)
    taken: dict = {}
    out = []
    for _, sent, msg in send_log:
        key = tuple(msg)
        times, i = by_bytes.get(key, []), taken.get(key, 0)
        while i < len(times) and times[i] < sent - 0.0005:
            i += 1
        if i < len(times) and times[i] <= sent + window_s:
            out.append(times[i])
            i += 1
        else:
            out.append(None)
        taken[key] = i
    return out


def bench_video(path: Path, seconds_per_artwork: float = 8.0, size=(640, 480), fps: int = 10) -> Path:
    """A real video file (MJPG .avi): the bundled artworks in turn, ``seconds_per_artwork`` each."""
    from media import make_video
    if path.exists():
        return path
    scenes = [(img, seconds_per_artwork) for _, img in common.artworks()]
    return make_video(path, scenes, fps=fps, size=size)

