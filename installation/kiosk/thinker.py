"""The thinker process: capture, encoder, scene tracking and generator, feeding the sender ahead of time.

It is the Engine (installation.engine) as `play` runs it: the generator's (due, message)
pairs go to the sender over a Unix socket (a RemoteScheduler), ``lookahead_ms`` ahead
of their due times. Twice a second it tells
the supervisor what it sees: camera state, embeddings and events per second,
valence/arousal, the scene, and a small JPEG of the current picture (bytes in
memory, for the visitor display; never written to disk).

    python -m installation.kiosk.thinker --sender PATH --status-fd FD --config JSON
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time

import cv2
import numpy as np

from installation import manifest as M
from installation.engine import Engine, assemble
from installation.errors import UserError
from installation.kiosk.config import KioskConfig, from_json
from installation.kiosk.control import Gate, ThinkerControls
from installation.kiosk.sources import CameraWithAttract
from installation.logs import setup_logging
from installation.midi.link import Beacon, RemoteScheduler
from installation.signals import route_signals

log = logging.getLogger("installation.kiosk.thinker")
BEAT_S = 0.5
THUMB_WIDTH = 480
THINKER_NICE = 5


def thumbnail(image: np.ndarray, width: int = THUMB_WIDTH) -> bytes:
    """An RGB frame as JPEG bytes, ``width`` pixels wide (in memory only)."""
    h, w = image.shape[:2]
    small = cv2.resize(image, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 80])
    return buf.tobytes() if ok else b""


def run(cfg: KioskConfig, sender_path: str, beacon: Beacon, controls_conn=None) -> int:
    source = CameraWithAttract(cfg.picture_source, cfg.attract, timeout_s=cfg.camera_timeout_s,
                               slide_seconds=cfg.slide_seconds)
    models = M.load(cfg.models)
    remote = RemoteScheduler(sender_path)
    remote.connect(timeout=5.0)
    # start_delay_s: a fresh process's first ONNX calls are slow; notes due sooner would be late
    plan = assemble(cfg, start_delay_s=1.0)
    gate = Gate(remote)                           # staff's pause (kiosk.control)
    controls = None
    if controls_conn is not None:
        controls = ThinkerControls(controls_conn, gate, source, plan.patch.channels, mode=plan.patch.output.volume)
        controls.initial()                        # paused at spawn? then nothing is pushed before it is known
    engine = Engine(models, source, plan.config, scheduler=gate, patch=plan.patch, midi_api=cfg.midi_api)
    route_signals(lambda signum: engine.stop_event.set(), (signal.SIGTERM,))   # never inside a handler
    stop_beats = threading.Event()

    def beats():
        kept = events = 0
        t_last = time.monotonic()
        last_frame = None
        while not stop_beats.wait(BEAT_S):
            now = time.monotonic()
            dt = max(1e-6, now - t_last)
            n = engine.vision.embeds
            fresh = n - kept
            kept = n
            n_events = engine.generator.events_generated
            msg = {"role": "thinker", "ready": True, "camera": source.state, "sender": remote.connected,
                   "fps": fresh / dt, "events_per_s": (n_events - events) / dt}
            entry = engine.timeline.at(0.0, timeout=0)
            if entry is not None:
                va = entry.valence_arousal
                msg.update(valence=float(va[0]), arousal=float(va[1]), scene=int(entry.scene_id),
                           label=entry.label, key=str(entry.direction.targets.key) if entry.direction.targets.key else None,
                           asked=entry.direction.describe())
            frame = source.latest
            if frame is not None and frame is not last_frame:
                msg["jpeg"] = thumbnail(frame.image)
                last_frame = frame
            beacon.send(msg)
            events, t_last = n_events, now

    engine.start()
    log.info("thinker: %s; sender %s", source.description, "reached" if remote.connected else "not reached yet")
    beater = threading.Thread(target=beats, name="heartbeat", daemon=True)
    beater.start()
    if controls is not None:
        controls.start()
    try:
        engine.wait()
    finally:
        stop_beats.set()
        if controls is not None:
            controls.stop()
        engine.stop()
    if engine.failure is not None:
        if isinstance(engine.failure, UserError):
            raise engine.failure
        log.error("thinker stopped on an internal error: %s", engine.failure)
        return 1
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="installation.kiosk.thinker")
    ap.add_argument("--sender", required=True)
    ap.add_argument("--status-fd", type=int, required=True)
    ap.add_argument("--config", required=True, help="KioskConfig as JSON")
    args = ap.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        os.nice(THINKER_NICE)      # on a busy machine the sender (and its deadlines) gets the CPU first
    except OSError:
        pass
    cfg: KioskConfig = from_json(args.config)
    setup_logging(cfg.log_level)
    from multiprocessing.connection import Connection
    controls_conn = Connection(os.dup(args.status_fd))    # the supervisor's control messages come back this way
    beacon = Beacon(args.status_fd)
    try:
        return run(cfg, args.sender, beacon, controls_conn)
    except UserError as exc:
        beacon.send({"role": "thinker", "error": str(exc)})
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
