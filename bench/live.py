"""The live engine in the benchmark's own process, laid out as `play` ships it.

``play_engine()`` makes what `play` makes of its options, through the same assembly
(engine.assemble, SenderConfig.of): the sender process on its own SenderConfig, and the
Engine in this process sending to it.
The engine's scheduler goes through a ``PushLog`` (passed as the Engine's ``scheduler``):
it notes the due time of every (due, message) pair the generator pushes, and passes
them on unchanged. The benches match those due times with the arrivals at an
independent receiver (arrival - due); the send error (the sender's scheduler tick
minus due) comes from the sender's own figures over the link (``SenderProcess.stats``).
"""
from __future__ import annotations

import time
from pathlib import Path

import common  # noqa: F401  (sys.path)


class PushLog:
    """A scheduler as the engine sees it (here the sender's RemoteScheduler), noting what is pushed to it."""

    def __init__(self, scheduler):
        self._scheduler = scheduler
        self.pushes: list[tuple[float, tuple[int, ...]]] = []    # (due, message bytes), in push order
        self.pushed_late = 0            # pushed after their due time: the thinker fell behind, not the sender

    def push(self, items) -> None:
        items = list(items)
        now = time.perf_counter()
        self.pushes.extend((float(due), tuple(msg)) for due, msg in items)
        self.pushed_late += sum(1 for due, _ in items if due < now)
        self._scheduler.push(items)

    def __getattr__(self, name):
        return getattr(self._scheduler, name)


def settings(**kw):
    """play's options, by the names `play` and the kiosk share (a KioskConfig: every value checked), on JACK."""
    from installation.kiosk.config import KioskConfig
    return KioskConfig(**{"midi_api": "jack", "log_level": "warning", **kw})


def play_engine(models, source, s, ready_s: float = 20.0, **sender_kw):
    """`play`'s layout, made as `play` makes it from its options ``s`` (``settings()``): the engine's assembly
    (engine.assemble: the patch, the port it names unless ``s.port``, the EngineConfig), the sender process on
    SenderConfig.of(s) with ``sender_kw`` laid over (``synth=``), and the Engine here sending to it through a
    PushLog. Returns (engine, sender), the sender ready; the caller starts the engine and stops both (``run``)."""
    from installation.engine import Engine, assemble
    from installation.midi.sender_config import SenderConfig
    from installation.midi.sender_process import SenderProcess
    plan = assemble(s)
    sender = SenderProcess(SenderConfig.of(s, port=plan.port, virtual_port=plan.virtual_port, **sender_kw))
    sender.start()
    try:
        eng = Engine(models, source, plan.config, scheduler=PushLog(sender.scheduler), patch=plan.patch,
                     midi_api=s.midi_api)
    except BaseException:
        sender.stop()
        raise
    try:
        sender.wait_ready(ready_s)                  # stops the sender itself if it fails
    except BaseException:
        if eng.patch is not None:
            eng.patch.stop()
        raise
    return eng, sender


def run(eng, sender, seconds: float) -> dict:
    """Play for ``seconds``, stop the engine then the sender (which silences the port); the sender's figures."""
    eng.start()
    try:
        eng.wait(seconds)
    finally:
        eng.stop()
        code = sender.stop()
    if eng.failure:
        raise RuntimeError(f"engine failed: {eng.failure!r}")
    if code not in (0, None):
        raise RuntimeError(f"the sender exited {code}: {sender.error}")
    return sender.stats()


def send_error(stats: dict) -> dict:
    """The sender's own lateness figures (its scheduler's tick minus due; p50 and p99 over its last 4096
    messages, max over all) in ms, and its counters."""
    ms = {k: None if stats.get(f"lateness_{k}") is None else stats[f"lateness_{k}"] * 1e3
          for k in ("p50", "p99", "max")}
    return {"sender_lateness_ms": ms, "sent": stats.get("sent"), "send_failed": stats.get("send_failed"),
            "dropped_late": stats.get("dropped_late")}


def match_arrivals(pushes, received, window_s: float = 0.1):
    """Pair each pushed (due, bytes) with its arrival at the receiver: the first arrival not yet taken with the
    same bytes, from its due time to ``window_s`` after it. JACK keeps the order of one port's messages;
    messages the receiver got that were not pushed (the scheduler's own note-offs, a final panic) are
    skipped, and a push that never arrived (dropped at a scene change, say) is None without throwing the
    rest out of step. Returns a list of arrival times (None where nothing matched)."""
    by_bytes: dict = {}
    for t, m in received:
        by_bytes.setdefault(tuple(m), []).append(t)
    taken: dict = {}
    out = []
    for due, msg in pushes:
        key = tuple(msg)
        times, i = by_bytes.get(key, []), taken.get(key, 0)
        while i < len(times) and times[i] < due - 0.0005:
            i += 1
        if i < len(times) and times[i] <= due + window_s:
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
    path.parent.mkdir(parents=True, exist_ok=True)              # bench/results/ is absent in a fresh checkout
    scenes = [(img, seconds_per_artwork) for _, img in common.artworks()]
    return make_video(path, scenes, fps=fps, size=size)
