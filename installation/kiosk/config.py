"""Every kiosk and play option in one frozen dataclass, from defaults < a TOML file < the command line.

The file's keys are the long option names with underscores (``status_port = 8080``,
``hours = ["10:00-18:00"]``); a key may also be written with dashes. An unknown key,
a value of the wrong type or out of range refuses the whole file with the key and
the reason (a ConfigError, shown as one ``error:`` line); nothing is half-applied,
because the supervisor is built only from a KioskConfig that passed every check.
"""
from __future__ import annotations

import dataclasses
try:
    import tomllib
except ModuleNotFoundError:                 # Python 3.10
    import tomli as tomllib              # type: ignore[no-redef]
from dataclasses import dataclass, fields
from pathlib import Path

from installation.errors import UserError
from installation.kiosk.hours import OpeningHours

LOOPBACK = ("127.0.0.1", "::1", "localhost")


class ConfigError(UserError):
    """A bad option or configuration key: names the key and the reason."""


@dataclass(frozen=True)
class KioskConfig:
    # --- music (the same meaning as in `play`)
    models: str | None = None           # folder with manifest.json and the ONNX models
    seed: int | None = None             # sampling seed
    temperature: float = 1.0            # sampling temperature (0 = greedy)
    top_p: float = 0.95                 # nucleus sampling mass
    embed_fps: float = 4.0              # frames embedded per second at most
    lookahead_ms: float = 750.0         # music generated ahead of playback (the sender holds it)
    tempo_scale: float = 1.0            # 2 plays at half speed
    decoder: str | None = None          # "gru" or "transformer" (default: the manifest's)
    guidance: float | None = None       # control guidance weight (default: the manifest's)
    # --- mood (override what the picture says)
    valence: float | None = None        # -1..1, replaces the picture's valence
    arousal: float | None = None        # -1..1, replaces the picture's arousal
    key: str | None = None              # pin the key: "D", "F# minor"
    motion_weight: float = 0.0          # arousal added at full motion in the camera picture (0 = off)
    emotion_map: str | None = None      # a TOML emotion map instead of the models' emotion_map.toml
    patch: str | None = None            # a patch: a name in patches/ or a .toml path (default: gm-piano)
    # --- MIDI
    port: str | None = None             # connect to the output port whose name contains this
    virtual_port: str | None = None     # or create a virtual port with this name (the default without `port`)
    midi_api: str | None = None         # alsa, jack, coremidi, winmm (default: the platform's, else JACK)
    channel: int = 1                    # MIDI channel 1-16
    late_policy: str = "send"           # a late message: "send" at once, or "drop" (note-offs are always sent)
    max_polyphony: int = 32             # notes sounding at once
    max_note_seconds: float = 8.0       # a note held longer is released
    sender_priority: int = 10           # SCHED_FIFO priority for the sender process (1-99; 0: normal)
    # --- pictures
    camera: str = "0"                   # camera index, stream URL, or a video file standing in for a camera
    camera_timeout_s: float = 10.0      # no frame this long: the bundled artworks play (attract mode)
    attract: str | None = None          # folder for attract mode (default: the bundled artworks)
    slide_seconds: float = 20.0         # seconds per artwork in attract mode
    # --- when
    hours: tuple[str, ...] = ()         # opening hours, local time, e.g. ("10:00-18:00",); empty: always open
    duration: float | None = None       # stop after this many seconds (tests, benchmarks)
    # --- status server
    status_port: int = 8080             # HTTP port for /health, / and /display; 0: no server
    status_bind: str = "127.0.0.1"      # address to bind; anything but loopback needs status_token
    status_token: str | None = None     # required as ?token= or "Authorization: Bearer" when set
    # --- logs
    log_file: str | None = None         # JSON-lines state log, rotated (default: stderr only)
    log_max_mb: float = 10.0            # rotate at this size
    log_backups: int = 5                # rotated files kept
    log_level: str = "info"
    # --- supervision
    heartbeat_timeout_s: float = 5.0    # a child silent this long has stalled: killed and restarted
    start_timeout_s: float = 60.0       # a child not ready this long after its start has stalled
    start_seconds: float = 3.0          # a start counts as good once the child is ready and this old
    start_retries: int = 5              # failed starts in a row before FATAL
    fatal_retry_s: float = 60.0         # a FATAL child is tried again after this long
    backoff_s: float = 0.5              # first wait before a restart; doubles per failed start
    backoff_max_s: float = 30.0         # the longest wait
    stop_timeout_s: float = 3.0         # SIGTERM, then SIGKILL after this long

    def __post_init__(self) -> None:
        def need(cond: bool, key: str, why: str) -> None:
            if not cond:
                raise ConfigError(f"{key}: {why}")
        need(1 <= self.channel <= 16, "channel", f"{self.channel}: MIDI channels are 1-16")
        for k in ("embed_fps", "tempo_scale", "camera_timeout_s", "slide_seconds", "heartbeat_timeout_s",
                  "start_timeout_s", "backoff_s", "backoff_max_s", "stop_timeout_s", "log_max_mb", "fatal_retry_s"):
            need(getattr(self, k) > 0, k, f"{getattr(self, k)} must be above 0")
        need(self.lookahead_ms >= 20, "lookahead_ms", f"{self.lookahead_ms} must be at least 20")
        need(0 < self.top_p <= 1, "top_p", f"{self.top_p} must be in (0, 1]")
        need(self.temperature >= 0, "temperature", f"{self.temperature} must be >= 0")
        need(self.duration is None or self.duration > 0, "duration", "must be above 0")
        need(self.late_policy in ("send", "drop"), "late_policy", f"{self.late_policy!r}: 'send' or 'drop'")
        need(self.midi_api in (None, "alsa", "jack", "coremidi", "winmm"), "midi_api",
             f"{self.midi_api!r}: one of alsa, jack, coremidi, winmm")
        need(self.max_polyphony >= 1, "max_polyphony", "must be at least 1")
        need(self.max_note_seconds > 0, "max_note_seconds", "must be above 0")
        need(self.port is None or self.virtual_port is None, "port",
             "give either port (connect to a synth) or virtual_port, not both")
        need(0 <= self.status_port <= 65535, "status_port", f"{self.status_port}: a TCP port is 0-65535")
        need(self.status_bind in LOOPBACK or bool(self.status_token), "status_bind",
             f"{self.status_bind!r} is not loopback: set status_token (--status-token) so staff pages need it")
        need(self.log_backups >= 0 and self.start_retries >= 1, "log_backups" if self.log_backups < 0
             else "start_retries", "out of range")
        need(self.log_level in ("debug", "info", "warning", "error"), "log_level",
             "one of debug, info, warning, error")
        need(0 <= self.sender_priority <= 99, "sender_priority", "0 (normal) or 1-99 (SCHED_FIFO)")
        need(self.start_seconds >= 0, "start_seconds", "must be >= 0")
        need(self.decoder in (None, "gru", "transformer"), "decoder", f"{self.decoder!r}: gru or transformer")
        need(self.guidance is None or 0 <= self.guidance <= 8, "guidance", f"{self.guidance}: must be between 0 and 8")
        from installation.mood.conductor import Steering
        try:
            Steering(valence=self.valence, arousal=self.arousal, key=self.key, motion_weight=self.motion_weight).check()
        except ValueError as exc:
            key = next((k for k in ("valence", "arousal", "key", "motion_weight") if k.replace("_", "-") in str(exc)), "key")
            raise ConfigError(f"{key}: {exc}") from None
        if self.emotion_map is not None:
            from installation.mood import emotion_map
            try:
                emotion_map.load(self.emotion_map)
            except emotion_map.MapError as exc:
                raise ConfigError(f"emotion_map: {exc}") from None
        if self.patch is not None:
            from installation.patches import load_patch
            load_patch(self.patch)              # a bad patch: its one-line error, before anything starts
        try:
            OpeningHours.parse(self.hours)
        except ValueError as exc:
            raise ConfigError(f"hours: {exc}") from None
        if self.attract is not None:
            need(Path(self.attract).expanduser().is_dir(), "attract", f"{self.attract}: no such folder")
        if self.log_file is not None:
            parent = Path(self.log_file).expanduser().resolve().parent
            need(parent.is_dir(), "log_file", f"{self.log_file}: folder {parent} does not exist")

    @property
    def opening_hours(self) -> OpeningHours:
        return OpeningHours.parse(self.hours)

    def replace(self, **kw) -> "KioskConfig":
        return dataclasses.replace(self, **kw)


_FIELDS = {f.name: f for f in fields(KioskConfig)}
_OPTIONAL = {name for name, f in _FIELDS.items() if "None" in str(f.type)}


def _typed(key: str, value):
    """Check one value's type against the field (TOML gives int/float/str/bool/list)."""
    t = str(_FIELDS[key].type)
    if value is None:
        if key in _OPTIONAL:
            return None
        raise ConfigError(f"{key}: a value is required")
    if key == "hours":
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise ConfigError('hours: a list of strings like ["10:00-18:00"]')
        return tuple(value)
    if isinstance(value, bool):
        raise ConfigError(f"{key}: {value!r} is a boolean; expected {t}")
    if t.startswith("float"):
        if not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: {value!r} is not a number")
        return float(value)
    if t.startswith("int"):
        if not isinstance(value, int):
            raise ConfigError(f"{key}: {value!r} is not a whole number")
        return value
    if key == "camera" and isinstance(value, int):
        return str(value)
    if not isinstance(value, str):
        raise ConfigError(f"{key}: {value!r} is not a string")
    return value


def read_toml(path: str | Path) -> dict:
    """A config file's keys (dashes -> underscores), each type-checked; ConfigError names the file and key."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"--config {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--config {path}: cannot read it ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"--config {path}: not valid TOML ({exc})") from None
    out = {}
    for raw, value in data.items():
        key = raw.replace("-", "_")
        if key not in _FIELDS:
            raise ConfigError(f"--config {path}: unknown key {raw!r} (known: {', '.join(_FIELDS)})")
        try:
            out[key] = _typed(key, value)
        except ConfigError as exc:
            raise ConfigError(f"--config {path}: {exc}") from None
    return out


def build(file: str | Path | None = None, overrides: dict | None = None) -> KioskConfig:
    """Defaults, then the file, then command-line ``overrides`` (None values are 'not given')."""
    values = read_toml(file) if file is not None else {}
    for k, v in (overrides or {}).items():
        if v is not None:
            values[k] = _typed(k, v)
    where = f"--config {file}: " if file is not None else ""
    try:
        return KioskConfig(**values)
    except ConfigError as exc:
        raise ConfigError(f"{where}{exc}") from None


def field_names() -> list[str]:
    return list(_FIELDS)


def to_json(cfg: KioskConfig) -> str:
    """The whole configuration for a child process's command line."""
    import json
    return json.dumps(dataclasses.asdict(cfg))


def from_json(text: str) -> KioskConfig:
    import json
    d = json.loads(text)
    d["hours"] = tuple(d.get("hours", ()))
    return KioskConfig(**d)
