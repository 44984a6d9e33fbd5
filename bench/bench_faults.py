"""Fault injection on the kiosk: kills, hangs, a JACK restart, hostile OSC, a connection flood, a mute camera.

One kiosk runs the whole time (attract slideshow, an OSC input patch, the status server) on a
JACK server that this script owns, heard by an rtmidi receiver in this process. Fault after
fault, each while a note sounds:

    sigkill-thinker, sigkill-sender       SIGKILL one child
    sigstop-thinker, sigstop-sender       SIGSTOP one child (a hang; SIGCONT after 6 s if it still exists)
    jack-restart                          SIGKILL jackd, start it again 3 s later under the same name
    osc-star, osc-negative-bundle         10 of each packet that froze python-osc, to the OSC input
    connection-flood                      1,100 half-open TCP connections to the status server

and, in a kiosk of its own, ``mute-camera``: a camera that opens but gives no frame (a real, empty
video file), measured for the thinker's CPU and the music going on.

Per fault: the receiver's time from the fault until no note sounds (kills, hangs), until music
again (from the fault; for the JACK restart from the server's return), and /health polled every
0.25 s during it: answered, and right (before: playing; during a kill or hang: restarts counted; during
the JACK outage: waiting-for-port, port_connected false; after: playing).

    python bench/bench_faults.py [--per-kind 13] [--quick]
"""
from __future__ import annotations

import os
import signal
import socket
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

import common
from installation.patches.osc_packet import message
from kiosk_parts import NO_CAMERA, Kiosk, first_note_on_after, open_notes_at, playing, silence_after
from realtime_parts import JackServer, MidiReceiver, count_note_ons

STAR = message("/" + "*" * 3000 + "a", 1.0)[:3068] + b"\0\0\0\0"
NEGATIVE = b"#bundle\0" + (1).to_bytes(8, "big") + (-8).to_bytes(4, "big", signed=True) + b"\0" * 28
KINDS = ("sigkill-thinker", "sigkill-sender", "sigstop-thinker", "sigstop-sender", "jack-restart",
         "osc-star", "osc-negative-bundle", "connection-flood")
RX = "faults-rx"


class HealthPoller:
    """/health every 0.25 s on a thread: (time, dict or None) pairs."""

    def __init__(self, kiosk: Kiosk):
        self.kiosk, self.samples, self._stop = kiosk, [], threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            t = time.perf_counter()
            self.samples.append((t, self.kiosk.health(timeout=1.0)))
            self._stop.wait(max(0.0, 0.25 - (time.perf_counter() - t)))

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join(3)


class Bench:
    def __init__(self, tmp: Path, seed: int):
        self.name = f"itm-faults-{os.getpid()}"
        self.jack = JackServer(name=self.name).start()
        self.rx = MidiReceiver(client_name=RX).open()
        self.osc_port = _free_udp()
        patch = tmp / "faults.toml"
        patch.write_text(f"[[layer]]\nchannel = 1\n[input]\nosc_port = {self.osc_port}\nweight = 0.5\n")
        self.kiosk = Kiosk("--port", f"{RX}:in", "--source", NO_CAMERA, "--seed", str(seed),
                           "--patch", str(patch)).start()
        self.kiosk.wait_health(playing, timeout=90)
        self.old_rx: list[MidiReceiver] = []

    def close(self):
        self.kiosk.stop()
        self.rx.close()
        self.jack.stop()

    def ready(self) -> None:
        """Playing, and a note sounding now."""
        self.kiosk.wait_health(playing, timeout=60)
        base = count_note_ons(self.rx.received())
        assert self.rx.wait_until(lambda got: count_note_ons(got) >= base + 3, timeout=30), "no music"
        assert self.rx.wait_until(lambda got: bool(open_notes_at([(0, m) for m in got], 1)), timeout=20)

    def fault(self, kind: str) -> dict:
        self.ready()
        before = self.kiosk.health()
        pids = self.kiosk.pids()
        rec: dict = {"kind": kind}
        with HealthPoller(self.kiosk) as hp:
            t0 = time.perf_counter()
            t_back_from = t0
            if kind.startswith("sigkill"):
                os.kill(pids[kind.split("-")[1]], signal.SIGKILL)
                time.sleep(6.0)
            elif kind.startswith("sigstop"):
                pid = pids[kind.split("-")[1]]
                os.kill(pid, signal.SIGSTOP)
                time.sleep(6.0)
                try:
                    os.kill(pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass
            elif kind == "jack-restart":
                self.jack.proc.send_signal(signal.SIGKILL)
                self.jack.proc.wait(5)
                self.jack.stop()
                msgs_before = list(self.rx.messages)
                self.rx.close()
                time.sleep(3.0)
                self.jack = JackServer(name=self.name).start()
                t_back_from = time.perf_counter()
                self.rx = MidiReceiver(client_name=RX).open()
                self.rx.wait_until(lambda got: count_note_ons(got) >= 1, timeout=20)
                time.sleep(2.0)
            elif kind.startswith("osc"):
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                    for _ in range(10):
                        s.sendto(STAR if kind == "osc-star" else NEGATIVE, ("127.0.0.1", self.osc_port))
                time.sleep(6.0)
            elif kind == "connection-flood":
                socks = []
                try:
                    for _ in range(1100):
                        c = socket.create_connection(("127.0.0.1", self.kiosk.status_port), timeout=5)
                        c.send(b"GET / HTTP/1.1\r\n")
                        socks.append(c)
                    time.sleep(3.0)
                finally:
                    for c in socks:
                        c.close()
                time.sleep(3.0)
        msgs = msgs_before if kind == "jack-restart" else list(self.rx.messages)
        after = self.kiosk.wait_health(playing, timeout=30)
        if kind == "jack-restart":
            rec["silence_s"] = 0.0                    # the receiver went down with the server
            first = first_note_on_after(list(self.rx.messages), t_back_from)
            rec["music_back_s"] = None if first is None else first - t_back_from
        elif kind.startswith(("sigkill", "sigstop")):
            rec["sounding_at_fault"] = len(open_notes_at(msgs, t0))
            q = silence_after(msgs, t0)
            rec["silence_s"] = q
            if q is None or q > 1.0:                   # what was left sounding, for the record
                rec["open_after_s"] = {dt: sorted(open_notes_at(msgs, t0 + dt)) for dt in (0.5, 1.0, 1.5, 2.0, 3.0)}
                rec["messages_after"] = [(round(t - t0, 3), m) for t, m in msgs if t0 - 0.05 < t < t0 + 3.0]
            first = first_note_on_after(msgs, t0 + (q or 0))
            rec["music_back_s"] = None if first is None else first - t0
        else:                                          # the music must simply go on
            ons = [t for t, m in msgs if t > t0 and len(m) == 3 and m[0] & 0xF0 == 0x90 and m[2] > 0]
            gaps = np.diff([t0] + ons) if ons else [6.0]
            rec["longest_gap_s"] = float(np.max(gaps))
            rec["silence_s"] = None
        rec["health"] = _health_ok(kind, before, hp.samples, after, t0)
        return rec


def _health_ok(kind, before, samples, after, t0) -> dict:
    answered = [h is not None for _, h in samples]
    during = [h for _, h in samples if h is not None]
    ok_before = before is not None and before["state"] == "playing"
    ok_after = after["state"] == "playing"
    if kind.startswith(("sigkill", "sigstop")):
        ok_during = after["restarts"] == before["restarts"] + 1 and any(
            h["state"] != "playing" or h["restarts"] > before["restarts"] for h in during)
    elif kind == "jack-restart":
        ok_during = any(h["state"] == "waiting-for-port" and not h["port_connected"] for h in during)
        if not ok_during:
            print("jack-restart health during:", [(h["state"], h["port_connected"]) for h in during], flush=True)
    else:
        ok_during = all(answered) and all(h["state"] == "playing" for h in during) \
            and after["restarts"] == before["restarts"]
    return {"answered": f"{sum(answered)}/{len(answered)}", "right": bool(ok_before and ok_during and ok_after)}


def mute_camera(n: int) -> dict:
    import cv2
    out = []
    with tempfile.TemporaryDirectory() as tmp, JackServer(name=f"itm-faults-cam-{os.getpid()}"):
        empty = Path(tmp) / "empty.avi"
        w = cv2.VideoWriter(str(empty), cv2.VideoWriter_fourcc(*"MJPG"), 10, (320, 240))
        w.release()
        for _ in range(n):
            with MidiReceiver(client_name="cam-rx") as rx:
                with Kiosk("--port", "cam-rx:in", "--source", str(empty)) as k:
                    k.wait_health(lambda h: playing(h) and h["camera"] == "attract", timeout=60)
                    pid = k.pids()["thinker"]
                    c0, t0 = _cpu(pid), time.monotonic()
                    n0 = count_note_ons(rx.received())
                    time.sleep(10.0)
                    out.append({"thinker_cpu_share": round((_cpu(pid) - c0) / (time.monotonic() - t0), 3),
                                "note_ons_in_10_s": count_note_ons(rx.received()) - n0,
                                "log_lines": len(k.output().splitlines())})
                    k.stop()
    return {"runs": out}


def _cpu(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / 100.0


def _free_udp() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def summarise(records: list[dict]) -> dict:
    out = {}
    for kind in KINDS:
        rs = [r for r in records if r["kind"] == kind]
        if not rs:
            continue
        sil = [r["silence_s"] for r in rs if r.get("silence_s") is not None]
        never = sum(1 for r in rs if kind.startswith(("sigkill", "sigstop")) and r.get("silence_s") is None)
        back = [r["music_back_s"] for r in rs if r.get("music_back_s") is not None]
        gaps = [r["longest_gap_s"] for r in rs if "longest_gap_s" in r]
        out[kind] = {"faults": len(rs), "failed": sum(1 for r in rs if "failed" in r), "never_silent": never,
                     "silence_s": common.summary(sil) if sil else None,
                     "silence_over_1s": sum(1 for s in sil if s > 1.0),
                     "music_back_s": common.summary(back) if back else None,
                     "music_never_back": sum(1 for r in rs if "music_back_s" in r and r["music_back_s"] is None),
                     "longest_gap_s": common.summary(gaps) if gaps else None,
                     "health_right": sum(r["health"]["right"] for r in rs)}
    return out


def main() -> None:
    ap = common.parser(__doc__)
    ap.add_argument("--per-kind", type=int, default=13)
    ap.add_argument("--seed", type=int, default=8)
    ap.add_argument("--kinds", default=",".join(KINDS), help="comma-separated fault kinds (default: all)")
    ap.add_argument("--log", default=None, help="write the kiosk's log here")
    args = ap.parse_args()
    kinds = args.kinds.split(",")
    n = 2 if args.quick else args.per_kind
    records = []
    with tempfile.TemporaryDirectory() as tmp:
        b = Bench(Path(tmp), args.seed)
        try:
            for i in range(n):
                for kind in kinds:
                    try:
                        r = b.fault(kind)
                    except AssertionError as exc:             # counted as a failed fault; the run goes on
                        r = {"kind": kind, "failed": str(exc)[:300], "silence_s": None,
                             "health": {"answered": "?", "right": False}}
                    records.append(r)
                    print(i, kind, {k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items() if k != "kind"},
                          flush=True)
        finally:
            out_log = b.kiosk.output()
            b.close()
            Path(args.log or "/dev/null").write_text(out_log)
    time.sleep(0.3)
    result = {"machine": common.machine(), "busy": common.busy_processes(), "per_kind": n,
              "faults": len(records), "summary": summarise(records), "records": records,
              "mute_camera": mute_camera(1 if args.quick else 3) if args.kinds == ",".join(KINDS) else None,
              "tracebacks_in_log": out_log.count("Traceback")}
    for kind, s in result["summary"].items():
        print(kind, s)
    print("mute camera:", result["mute_camera"])
    common.write_result("bench_faults", result, args.out)


if __name__ == "__main__":
    main()
