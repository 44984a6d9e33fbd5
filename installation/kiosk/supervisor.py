"""The supervisor: runs the sender and the thinker, restarts what dies, keeps the hours, logs, serves status.

Its main loop waits (at most 0.1 s) on the children's heartbeat sockets, then
ticks both state machines (kiosk.program) and the opening hours. A child's
heartbeats carry its figures; the supervisor merges them into one status
(kiosk.status serves it) and writes one structured log line per state change
(kiosk.eventlog).

When the sender ends other than by a stop we asked for, or at closing time, the
supervisor opens the named port itself for a moment and sends a panic: a
note-off for all 128 pitches on the channel, then CC123 and CC120, so nothing
sounds on even when the sender could not say so.
"""
from __future__ import annotations

import collections
import concurrent.futures
import datetime as dt
import logging
import os
import queue
import shutil
import sys
import tempfile
import threading
import time
from multiprocessing.connection import Connection, wait


from installation.kiosk import control
from installation.kiosk.config import KioskConfig, for_child, to_json
from installation.kiosk.eventlog import EventLog
from installation.kiosk.program import Policy, Program, State
from installation.kiosk.systemd import Notifier
from installation.midi.link import spawn_child
from installation.midi.sender_config import SenderConfig

log = logging.getLogger("installation.kiosk")
NOTE_KEEP_S = 15.0       # notes kept for the piano roll and the key estimate
PANIC_AGAIN_S = 0.25     # a panic is sent once more this long after (a restarted sender plays later than this)
SENDER_STALL_S = 0.6     # the sender (real-time priority) beats 4 times a second: silent this long, it is hung:
                         # killed at once (its exit silences the port), then restarted
# the event log gets a "minute" line this often: notes, lateness, mood (the console's history); a shorter one
# (ITM_HISTORY_MINUTE_S) only for tests and demonstrations, which cannot wait for minutes
MINUTE_S = float(os.environ.get("ITM_HISTORY_MINUTE_S") or 60.0)
THINKER_STALL_S = 1.0    # the thinker beats twice a second: silent this long, and the sender hears nothing from it
                         # either (it has released the notes), it is killed and restarted


class Status:
    """What the status server shows; written by the supervisor loop, read by the server's thread."""

    def __init__(self):
        self.lock = threading.Lock()
        self.data: dict = {}
        self.jpeg: bytes = b""
        self.notes: collections.deque = collections.deque(maxlen=2048)   # [t_on, t_off|None, pitch, vel]
        self.version = 0

    def snapshot(self) -> dict:
        with self.lock:
            return dict(self.data)

    def frame(self) -> bytes:
        with self.lock:
            return self.jpeg

    def recent_notes(self, now: float, window: float = 12.0) -> list:
        with self.lock:
            return [[round(now - on, 3), None if off is None else round(now - off, 3), p, v]
                    for on, off, p, v in self.notes if off is None or now - off < window]


class Supervisor:
    def __init__(self, cfg: KioskConfig, *, python: str = sys.executable):
        self.cfg, self.python = cfg, python
        self.hours = cfg.opening_hours
        self.events = EventLog(cfg.log_file, cfg.log_max_mb, cfg.log_backups)
        self.status = Status()
        _remove_stale_runtimes()
        self.runtime = tempfile.mkdtemp(prefix=f"image-to-music-{os.getpid()}-")   # 0700: only we reach the socket
        self.sock_path = os.path.join(self.runtime, "sender.sock")
        policy = Policy(start_seconds=cfg.start_seconds, start_timeout_s=cfg.start_timeout_s,
                        heartbeat_timeout_s=cfg.heartbeat_timeout_s, start_retries=cfg.start_retries,
                        backoff_s=cfg.backoff_s, backoff_max_s=cfg.backoff_max_s,
                        stop_timeout_s=cfg.stop_timeout_s, fatal_retry_s=cfg.fatal_retry_s)
        self.programs = {role: Program(role, lambda role=role: self._spawn(role), policy,
                                       on_change=self._on_change, on_exit=self._on_exit)
                         for role in ("sender", "thinker")}
        self.conns: dict[str, Connection] = {}
        self.info = {"sender": {}, "thinker": {}}
        self.started = time.monotonic()
        self.is_open: bool | None = None
        self.stop_requested = threading.Event()
        self.last_error: str | None = None
        self.panics = 0
        self._open_notes: dict[int, list] = {}
        self._last_note_on: float | None = None      # perf_counter of the last note-on the sender sent
        self._panic_out = None                        # a standing MidiOut to the port, for panics
        self._panic_opening = False
        self._panic_again_at: float | None = None     # when to send the last panic once more
        self._seen = {}                       # field -> last logged value, for one line per change
        self._api: str | None = None
        # staff controls (kiosk.control): asked from the status server's thread, applied in the loop
        self.paused = False
        self.volume_path = control.volume_file(cfg.log_file, self.runtime)
        self.volume = control.load_volume(self.volume_path)
        self._controls: queue.Queue = queue.Queue(maxsize=32)
        self._minute = self._new_minute(time.monotonic())

    # --- children ------------------------------------------------------------------
    def _spawn(self, role: str):
        mod = "installation.midi.sender" if role == "sender" else f"installation.kiosk.{role}"
        where = ["--listen", self.sock_path] if role == "sender" else ["--sender", self.sock_path]
        # the sender gets its own small config; the thinker gets the kiosk's without the status settings (never
        # the token: it would show on its command line, in ps)
        child_cfg = SenderConfig.of(self.cfg).to_json() if role == "sender" else to_json(for_child(self.cfg))
        proc, conn = spawn_child(self.python, mod, [*where, "--config", child_cfg],
                                 single_threaded_math=role == "sender")
        old = self.conns.pop(role, None)
        if old is not None:
            old.close()
        self.conns[role] = conn
        self.info[role] = {}
        if role == "thinker":                 # before its first note: paused? the level?
            try:
                conn.send({"control": "state", "paused": self.paused, "volume": self.volume})
            except OSError:                   # it died already: its exit is seen as any other
                pass
        return proc

    def _on_change(self, prog: Program, old: State, new: State, reason: str) -> None:
        level = logging.ERROR if new is State.FATAL else logging.WARNING if new is State.BACKOFF else logging.INFO
        self.events.emit("program", level=level, program=prog.name, old=old.value, new=new.value, reason=reason,
                         restarts=prog.restarts)
        if new in (State.BACKOFF, State.FATAL):
            self.last_error = f"{prog.name}: {prog.last_error}"

    def _on_exit(self, prog: Program, code: int, reason: str) -> None:
        if prog.state is not State.STOPPING:
            self.last_error = f"{prog.name} {reason}"
        if prog.name == "sender" and code != 0:
            self.port_panic(f"sender ended ({reason})")
        self._close_open_notes()

    def port_panic(self, why: str, wait: float = 0.0) -> None:
        """Open the named port for a moment and silence it (only with --port: a virtual port died with the sender).

        On a thread of its own, so the loop never waits on the MIDI system: a hung sender can stall a JACK
        server's graph until it is killed, and the kill must not wait for the panic. ``wait``: join it that long."""
        if not self.cfg.port:
            return
        out = self._panic_out
        if out is not None and out.connected:          # the standing connection: a few sends, no waiting
            t0 = time.perf_counter()
            ok = self._send_panic(out)
            # Once more a moment later: a JACK server that is removing a killed client can drop the cycle the
            # first one went out in (measured: the whole panic lost, under load). Note-offs twice are harmless,
            # and no new sender plays this soon.
            self._panic_again_at = time.monotonic() + PANIC_AGAIN_S
            self.panics += 1
            self.events.emit("panic", ok=bool(ok), why=why, ms=round((time.perf_counter() - t0) * 1e3, 1))
            return
        t = threading.Thread(target=self._port_panic, args=(why,), name="port-panic", daemon=True)
        t.start()
        if wait:
            t.join(wait)

    def _send_panic(self, out) -> bool:
        # lazy: rtmidi only to send a panic (the sender process owns the port)
        from installation.midi import midi_io
        return midi_io.panic(out, self.cfg.channel - 1)

    def _panic_again(self) -> None:
        if self._panic_again_at is not None and time.monotonic() >= self._panic_again_at:
            self._panic_again_at = None
            if self._panic_out is not None and self._panic_out.connected:
                self._send_panic(self._panic_out)

    def _open_panic_out(self) -> None:
        """A standing connection to the port, kept (and reconnected by name) for panics: opening a JACK
        client under load takes up to 1.5 s, a panic over a connection that is already there takes none.
        On a thread of its own; a port that is not there yet is simply tried again later."""
        if not self.cfg.port or self._panic_out is not None or self._panic_opening:
            return
        self._panic_opening = True

        def run():
            # lazy: rtmidi only to send a panic (the sender process owns the port)
            from installation.midi import midi_io
            try:
                api = self._api or midi_io.choose_api(self.cfg.midi_api)
                self._api = api
                out = midi_io.MidiOut(api, self.cfg.port, client_name="image-to-music-guard")
                out.open()
                self._panic_out = out
            except Exception as exc:      # noqa: BLE001  the one-shot panic remains
                log.debug("no standing panic connection yet: %s", exc)
            finally:
                self._panic_opening = False
        threading.Thread(target=run, name="panic-connect", daemon=True).start()

    def _port_panic(self, why: str) -> None:
        t0 = time.perf_counter()
        # lazy: rtmidi only to send a panic (the sender process owns the port)
        from installation.midi import midi_io
        ok, error = midi_io.panic_port(self.cfg.port, self.cfg.channel - 1, api=self._api,
                                       api_request=self.cfg.midi_api)
        if error is not None:
            self.events.emit("panic", level=logging.WARNING, ok=False, why=why, error=str(error))
            return
        self.panics += 1
        self.events.emit("panic", ok=bool(ok), why=why, ms=round((time.perf_counter() - t0) * 1e3, 1))

    # --- heartbeats -----------------------------------------------------------------------
    def _read(self, timeout: float) -> None:
        by_conn = {c: r for r, c in self.conns.items()}
        for conn in wait(list(by_conn), timeout):
            role = by_conn[conn]
            try:
                while conn.poll():
                    self._beat(role, conn.recv())
            except (EOFError, OSError):
                conn.close()
                self.conns.pop(role, None)

    def _beat(self, role: str, msg: dict) -> None:
        if "error" in msg:
            self.last_error = f"{role}: {msg['error']}"
            self.events.emit("error", level=logging.ERROR, program=role, error=msg["error"])
            return
        self.programs[role].heartbeat(bool(msg.get("ready")))
        notes = msg.pop("notes", None)
        jpeg = msg.pop("jpeg", None)
        self.info[role].update(msg)
        p99 = (msg.get("stats") or {}).get("lateness_p99")
        if p99 is not None:
            self._minute["p99"] = max(self._minute["p99"] or 0.0, p99)
        if notes:
            self._add_notes(notes)
        if jpeg:
            with self.status.lock:
                self.status.jpeg = jpeg

    def _add_notes(self, notes) -> None:
        with self.status.lock:
            for t, status, pitch, vel in notes:
                if status & 0xF0 == 0x90 and vel > 0:
                    self._last_note_on = t
                    self._minute["notes"] += 1
                    rec = [t, None, pitch, vel]
                    self.status.notes.append(rec)
                    self._open_notes[pitch] = rec
                else:
                    rec = self._open_notes.pop(pitch, None)
                    if rec is not None:
                        rec[1] = t

    def _close_open_notes(self) -> None:
        now = time.perf_counter()
        with self.status.lock:
            for rec in self._open_notes.values():
                rec[1] = now
            self._open_notes.clear()

    # --- status and logs ----------------------------------------------------------------
    def _key(self, now: float) -> str | None:
        # lazy: numpy only for the status page's key
        from installation.music.analysis import PITCH_NAMES, estimate_key
        from installation.music.events import Note
        with self.status.lock:
            notes = [Note(p, v, on - now, (now if off is None else off) - now)
                     for on, off, p, v in self.status.notes if now - on < NOTE_KEEP_S]
        if len(notes) < 8:
            return None
        tonic, mode, r = estimate_key(notes)
        return f"{PITCH_NAMES[tonic]} {mode}"

    def _update(self) -> None:
        s, t = self.info["sender"], self.info["thinker"]
        progs = {r: p.snapshot() for r, p in self.programs.items()}
        if self.is_open is False:
            state = "closed"
        elif any(p.state is State.FATAL for p in self.programs.values()):
            state = "fatal"
        elif all(p.state is State.RUNNING for p in self.programs.values()):
            # playing only while the music can be heard: a lost port or MIDI server is waited out, not hidden
            state = "playing" if s.get("port_connected", True) else "waiting-for-port"
        else:
            state = "recovering" if any(p.restarts for p in self.programs.values()) else "starting"
        if self.paused and state not in ("closed", "fatal"):
            state = "paused"                  # staff paused it: silent on purpose (the display says resting)
        stats = s.get("stats") or {}
        p99 = stats.get("lateness_p99")
        now = time.perf_counter()
        thinker_up = self.programs["thinker"].state is State.RUNNING
        data = {
            "uptime_s": round(time.monotonic() - self.started, 1),
            "state": state,
            "open": bool(self.is_open),
            "hours": self.hours.describe(),
            "opens_at": _opens_at(self.hours) if state == "closed" else None,
            "camera": t.get("camera") if thinker_up else None,
            "picture": t.get("label") if thinker_up else None,
            "port": s.get("port_name") or self.cfg.port or self.cfg.virtual_port,
            "port_connected": bool(s.get("port_connected")) and self.programs["sender"].state is State.RUNNING,
            "fps": _r(t.get("fps")) if thinker_up else None,
            "events_per_s": _r(t.get("events_per_s")) if thinker_up else None,
            "lateness_p99_ms": None if p99 is None else round(p99 * 1e3, 3),
            "valence": _r(t.get("valence")),
            "arousal": _r(t.get("arousal")),
            "key": t.get("key") or self._key(now),
            "scene": t.get("scene"),
            "restarts": sum(p.restarts for p in self.programs.values()),
            "programs": progs,
            "panics": self.panics,
            "sent": stats.get("sent"),
            "last_note_age_s": None if self._last_note_on is None else round(now - self._last_note_on, 2),
            "last_error": self.last_error,
            "paused": self.paused,
            "volume": self.volume,
        }
        with self.status.lock:
            self.status.data = data
            self.status.version += 1
        self._log_changes(data)
        self._count_minute(data)

    def _log_changes(self, d: dict) -> None:
        for field in ("camera", "port_connected", "state"):
            if d[field] != self._seen.get(field, "?"):
                self._seen[field] = d[field]
                extra = {"port": d["port"]} if field == "port_connected" else {}
                self.events.emit(field if field != "port_connected" else "port", value=d[field], **extra)
        if d["scene"] is not None and d["scene"] != self._seen.get("scene"):
            self._seen["scene"] = d["scene"]
            self.events.emit("scene", scene=d["scene"], picture=d["picture"], valence=d["valence"],
                             arousal=d["arousal"])

    # --- staff controls and the minute lines of the history ----------------------------------
    def control(self, action: str, value, client: str) -> concurrent.futures.Future:
        """Ask for a staff action (from the status server's thread); the loop applies it and sets the result."""
        fut: concurrent.futures.Future = concurrent.futures.Future()
        try:
            self._controls.put_nowait((action, value, client, fut))
        except queue.Full:
            fut.set_result({"ok": False, "status": 503, "error": "busy: too many actions waiting"})
        return fut

    def _apply_controls(self) -> None:
        while True:
            try:
                action, value, client, fut = self._controls.get_nowait()
            except queue.Empty:
                return
            if not fut.set_running_or_notify_cancel():
                continue                   # the asker gave up waiting (it was told so): not applied
            try:
                result = self._control(action, value, client)
            except Exception as exc:       # noqa: BLE001  a control must never stop the loop
                result = {"ok": False, "status": 500, "error": f"{type(exc).__name__}: {exc}"}
            self.events.emit("control", level=logging.INFO if result["ok"] else logging.WARNING, action=action,
                             **({"value": value} if value is not None else {}), client=client, ok=result["ok"],
                             **({"error": result["error"]} if not result["ok"] else {}))
            fut.set_result(result)

    def _control(self, action: str, value, client: str) -> dict:
        thinker = self.programs["thinker"]
        up = thinker.state is State.RUNNING and "thinker" in self.conns
        if action == "pause":
            self.paused = True
        elif action == "resume":
            self.paused = False
        elif action == "volume":
            self.volume = value
            control.save_volume(self.volume_path, value)
        elif action == "restart":
            if not thinker.restart(f"restart asked by staff from {client}"):
                return {"ok": False, "status": 409, "error": f"the thinker is {thinker.state.value}, not running"}
            return {"ok": True}
        elif action in ("next", "test-chord") and not up:
            return {"ok": False, "status": 409, "error": f"the thinker is {thinker.state.value}, not running"}
        elif action == "next" and self.info["thinker"].get("camera") in ("camera", "held"):
            return {"ok": False, "status": 409,
                    "error": "a live camera gives the picture; next moves a slideshow or the attract folder"}
        if "thinker" in self.conns:            # pause, resume and volume also reach a thinker that starts later
            try:
                self.conns["thinker"].send({"control": action, "value": value})
            except OSError as exc:
                if action in ("next", "test-chord"):
                    return {"ok": False, "status": 409, "error": f"the thinker did not take it ({exc})"}
        return {"ok": True}

    @staticmethod
    def _new_minute(now: float) -> dict:
        return {"t0": now, "notes": 0, "p99": None, "v": 0.0, "a": 0.0, "n": 0}

    def _count_minute(self, d: dict) -> None:
        m = self._minute
        if d["valence"] is not None and d["arousal"] is not None and d["state"] == "playing":
            m["v"] += d["valence"]
            m["a"] += d["arousal"]
            m["n"] += 1
        now = time.monotonic()
        if now - m["t0"] >= MINUTE_S:
            self.events.emit("minute", s=round(now - m["t0"], 1), state=d["state"], notes=m["notes"],
                             lateness_p99_ms=None if m["p99"] is None else round(m["p99"] * 1e3, 3),
                             valence=round(m["v"] / m["n"], 3) if m["n"] else None,
                             arousal=round(m["a"] / m["n"], 3) if m["n"] else None, quiet=True)
            self._minute = self._new_minute(now)

    # --- the loop -------------------------------------------------------------------------
    def run(self) -> int:
        server = None
        if self.cfg.status_port:
            # lazy: aiohttp only with a status port
            from installation.kiosk.status import StatusServer
            frames = {"local": None, "always": True, "never": False}[self.cfg.status_frames]
            server = StatusServer(self.status, self.cfg.status_bind, self.cfg.status_port, self.cfg.status_token,
                                  serve_frames=frames, control=self.control, events=self.events)
            server.start()
            self.events.emit("status_server", url=server.url)
        self.events.emit("kiosk", value="started", hours=self.hours.describe(), pid=os.getpid())
        notifier = Notifier()
        notifier.notify("READY=1")
        deadline = None if self.cfg.duration is None else self.started + self.cfg.duration
        try:
            while not self.stop_requested.is_set():
                if deadline is not None and time.monotonic() >= deadline:
                    break
                self._hours()
                self._read(0.1)
                if self._panic_out is None and self.programs["sender"].state is State.RUNNING:
                    self._open_panic_out()
                self._watch_hangs()
                self._panic_again()
                for p in self.programs.values():
                    p.tick()
                self._apply_controls()
                self._update()
                notifier.alive(self.status.data.get("state"))
        finally:
            notifier.notify("STOPPING=1")
            notifier.close()
            self._shutdown()
            if server is not None:
                server.stop()
            shutil.rmtree(self.runtime, ignore_errors=True)
            self.events.emit("kiosk", value="stopped")
            self.events.close()
        return 0

    def _watch_hangs(self) -> None:
        """A hung child is handled like a dead one, sooner than the heartbeat timeout: its notes are silenced
        within a second (the sender releases a silent thinker's notes; a hung sender is killed, and its exit
        silences the port from here), and it is restarted."""
        now = time.monotonic()
        sender, thinker = self.programs["sender"], self.programs["thinker"]
        # A hung sender is killed before its port is silenced: a stopped JACK client can stall the server's
        # graph (sync mode) until it is gone, and a panic client would wait for that.
        quiet = now - sender.last_beat if sender.state is State.RUNNING and sender.last_beat else 0.0
        if quiet > SENDER_STALL_S:
            sender.stalled(f"no heartbeat for {quiet:.1f} s")
        t_quiet = now - thinker.last_beat if thinker.state is State.RUNNING and thinker.last_beat else 0.0
        if t_quiet > THINKER_STALL_S and (self.info["sender"].get("thinker_silent_s") or 0) > 0.5:
            thinker.stalled(f"no heartbeat for {t_quiet:.1f} s, and nothing sent to the sender")

    def _hours(self) -> None:
        open_now = self.hours.is_open(dt.datetime.now())
        if open_now == self.is_open:
            return
        was = self.is_open
        self.is_open = open_now
        self.events.emit("hours", value="open" if open_now else "closed", hours=self.hours.describe())
        if open_now:
            for role in ("sender", "thinker"):
                self.programs[role].start()
        else:
            self._stop_children()
            if was is not None:
                self.port_panic("closing time", wait=3.0)
            if self.paused:                   # a pause for a tour ends with the day: tomorrow opens playing
                self.paused = False
                self.events.emit("control", action="resume", client="closing time", ok=True)

    def _stop_children(self) -> None:
        """Thinker first (the sender releases its notes when it hangs up), then the sender; wait for both."""
        for role in ("thinker", "sender"):
            p = self.programs[role]
            p.stop()
            limit = time.monotonic() + self.cfg.stop_timeout_s + 3
            while p.state is not State.STOPPED and time.monotonic() < limit:
                self._read(0.05)
                p.tick()
        self._close_open_notes()

    def _shutdown(self) -> None:
        self._stop_children()
        if self._panic_out is not None:
            self._panic_out.close()
            self._panic_out = None
        for c in self.conns.values():
            c.close()
        self.conns.clear()


def _remove_stale_runtimes() -> None:
    """Remove the runtime folders of supervisors that were killed (SIGKILL leaves no chance to clean up):
    ``image-to-music-<pid>-*`` in the temp folder, whose pid is no longer a process."""
    import glob
    for path in glob.glob(os.path.join(tempfile.gettempdir(), "image-to-music-*-*")):
        try:
            pid = int(os.path.basename(path).split("-")[3])
        except (IndexError, ValueError):
            continue
        try:
            os.kill(pid, 0)
            continue                       # that supervisor is alive
        except ProcessLookupError:
            pass
        except PermissionError:
            continue                       # someone else's
        shutil.rmtree(path, ignore_errors=True)


def _opens_at(hours) -> str | None:
    """The next opening, local time, as the display shows it: 10:00 (10:00:30 with seconds)."""
    t = hours.next_open(dt.datetime.now())
    return None if t is None else t.strftime("%H:%M:%S" if t.second else "%H:%M")


def _r(x, nd=3):
    return None if x is None else round(float(x), nd)
