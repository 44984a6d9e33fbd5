"""Every kiosk and play option in one frozen dataclass, from defaults < a TOML file < the command line.

The file's keys are the long option names with underscores (``status_port = 8080``,
``hours = ["10:00-18:00"]``); a key may also be written with dashes. An unknown key,
a value of the wrong type or out of range refuses the whole file with the key and
the reason (a ConfigError, shown as one ``error:`` line); nothing is half-applied,
because the supervisor is built only from a KioskConfig that passed every check.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, fields
from pathlib import Path

from installation.errors import one_line
from installation.errors import UserError
from installation.kiosk.hours import OpeningHours
from installation.settings import ALL, KIOSK, MAX_INT, PLAY_KIOSK, generation, opt  # noqa: F401  (re-exported)
from installation.tomlfile import load_toml

LOOPBACK = ("127.0.0.1", "::1", "localhost")


class ConfigError(UserError):
    """A bad option or configuration key: names the key and the reason, on one line."""

    def __init__(self, message: str):
        super().__init__(one_line(str(message)))


# Options of `play` only, refused in a kiosk configuration with the reason.
PLAY_ONLY = {
    "record": "the kiosk records nothing (it runs for weeks and sees visitors); use `play --record`",
    "synth": "the kiosk plays to a MIDI port (`port`); start FluidSynth as in the README and give its port",
    "soundfont": "the kiosk plays to a MIDI port (`port`): give the SoundFont to the FluidSynth you start",
    "audio_driver": "the kiosk plays to a MIDI port (`port`): give the audio driver to the FluidSynth you start",
}


@dataclass(frozen=True)
class KioskConfig:
    """Every kiosk option, with the options it shares with ``play`` under the same names."""
    # --- music (the same meaning as in `play`)
    models: str | None = opt(None, "folder with manifest.json and the ONNX models (default: exported_models/)",
                             commands=ALL)
    seed: int | None = generation("seed")
    temperature: float = generation("temperature")
    top_p: float = generation("top_p")
    embed_fps: float = opt(4.0, "frames embedded per second at most (default 4)", above=0.0, most=60.0)
    lookahead_ms: float = opt(750.0, "milliseconds of music generated ahead of playback (default 750)",
                              least=20.0, most=10_000.0)
    tempo_scale: float = opt(1.0, "stretch time: 2 plays at half speed (default 1)", above=0.0, most=100.0)
    decoder: str | None = generation("decoder")
    guidance: float | None = generation("guidance")
    # --- mood (override what the picture says)
    valence: float | None = opt(None, "-1 (sad, tense) .. 1 (happy, calm): replaces the picture's valence",
                                least=-1.0, most=1.0, commands=ALL)
    arousal: float | None = opt(None, "-1 (calm, sad) .. 1 (excited, tense): replaces the picture's arousal",
                                least=-1.0, most=1.0, commands=ALL)
    key: str | None = opt(None, "pin the key: a tonic (D) or a key (F# minor, Bb major)", commands=ALL)
    motion_weight: float = opt(0.0, "live cameras: arousal added at full motion in the frame, 0 (off) to 2 (default 0)",
                               least=0.0, most=2.0)
    emotion_map: str | None = opt(None, "a TOML emotion map (valence/arousal -> controls) instead of the models' "
                                        "emotion_map.toml", commands=ALL)
    patch: str | None = opt(None, "a patch: a name in patches/ or a .toml path (default: gm-piano; docs/PATCHES.md)")
    # --- MIDI
    port: str | None = opt(None, "connect to the MIDI output port with this name (or a unique part of it); "
                                 "see `run_installation.py ports`")
    virtual_port: str | None = opt(None, "create a virtual MIDI port with this name (the default when no --port)")
    midi_api: str | None = opt(None, "rtmidi API: alsa, jack, coremidi or winmm (default: the platform's, "
                                     "falling back to JACK)", choices=('alsa', 'jack', 'coremidi', 'winmm'))
    channel: int = opt(1, "MIDI channel 1-16 (default 1)", least=1, most=16)
    late_policy: str = opt("send", "a late message: send it at once, or drop it (note-offs are always sent) (default send)",
                           choices=('send', 'drop'))
    max_polyphony: int = opt(32, "notes sounding at once, 1-128; the oldest is released beyond (default 32)",
                             least=1, most=128)
    max_note_seconds: float = opt(8.0, "a note held longer is released (default 8)", above=0.0, most=3600.0)
    sender_priority: int = opt(10, "real-time (SCHED_FIFO) priority of the MIDI sender process, 1-99; "
                                   "0: normal (default 10)", least=0, most=99)
    # --- pictures
    source: str | None = opt(None, "camera index, video file or URL, image, or folder (default: camera 0, "
                                   "else the bundled artworks)")
    camera_timeout_s: float = opt(10.0, "seconds without a camera frame before the attract folder plays "
                                        "(default 10)", commands=KIOSK, above=0.0, most=86_400.0)
    attract: str | None = opt(None, "folder of images played while the camera gives no frames "
                                    "(default: the bundled artworks)", commands=KIOSK)
    slide_seconds: float = opt(20.0, "seconds per image in a folder slideshow (default 20)", above=0.0, most=86_400.0)
    # --- when
    hours: tuple[str, ...] = opt((), "opening hours, local time, e.g. 10:00-18:00 (repeat or comma-separate; "
                                     "default: always open)", commands=KIOSK)
    duration: float | None = opt(None, "stop cleanly after this many seconds", above=0.0, most=1e9)
    # --- status server
    status_port: int = opt(8080, "HTTP port for /health, / and /display (default 8080; 0: none)",
                           commands=KIOSK, least=0, most=65535)
    status_bind: str = opt("127.0.0.1", "address of the status server (default 127.0.0.1; any other needs "
                                        "--status-token)", commands=KIOSK)
    status_token: str | None = opt(None, "a token every status request must carry (?token= or "
                                         "Authorization: Bearer)", commands=KIOSK)
    status_frames: str = opt("local", "camera pictures on /frame.jpg and /display: local (only when the status "
                                      "server is on a loopback address; default), always, or never",
                                      commands=KIOSK, choices=('local', 'always', 'never'))
    # --- logs
    log_file: str | None = opt(None, "write one JSON line per state change to this file, rotated "
                                     "(default: stderr only)", commands=KIOSK)
    log_max_mb: float = opt(10.0, "rotate the log file at this many MB (default 10)",
                            commands=KIOSK, above=0.0, most=1e6)
    log_backups: int = opt(5, "rotated log files kept (default 5)", commands=KIOSK, least=0, most=1000)
    log_level: str = opt("info", "debug, info, warning or error (default info)",
                         choices=('debug', 'info', 'warning', 'error'), commands=ALL)
    # --- supervision
    heartbeat_timeout_s: float = opt(5.0, "a child process silent this long has stalled: it is killed and "
                                          "restarted (default 5)", commands=KIOSK, above=0.0, most=86_400.0)
    start_timeout_s: float = opt(60.0, "a child process not ready this long after its start has stalled "
                                       "(default 60)", commands=KIOSK, above=0.0, most=86_400.0)
    start_seconds: float = opt(3.0, "a start counts as good once the child is ready and this many seconds old "
                                    "(default 3)", commands=KIOSK, least=0.0, most=3600.0)
    start_retries: int = opt(5, "failed starts in a row before a child is FATAL (default 5)",
                             commands=KIOSK, least=1, most=1000)
    fatal_retry_s: float = opt(60.0, "a FATAL child is tried again after this many seconds (default 60)",
                               commands=KIOSK, above=0.0, most=86_400.0)
    backoff_s: float = opt(0.5, "first wait before a restart, doubled per failed start (default 0.5)",
                           commands=KIOSK, above=0.0, most=3600.0)
    backoff_max_s: float = opt(30.0, "the longest wait before a restart (default 30)",
                               commands=KIOSK, above=0.0, most=86_400.0)
    stop_timeout_s: float = opt(3.0, "stopping a child: SIGTERM, then SIGKILL after this many seconds "
                                     "(default 3)", commands=KIOSK, above=0.0, most=3600.0)

    def __post_init__(self) -> None:
        check_values(self)
        try:
            OpeningHours.parse(self.hours)
        except ValueError as exc:
            raise ConfigError(f"hours: {exc}") from None
        need(self.status_bind in LOOPBACK or bool(self.status_token), "status_bind",
             f"{self.status_bind!r} is not loopback: set status_token (--status-token) so staff pages need it")
        need(self.port is None or self.virtual_port is None, "port",
             "give either port (connect to a synth) or virtual_port, not both")

    @property
    def picture_source(self) -> str:
        """What the kiosk's thinker opens: ``source``, else camera 0 (the attract folder plays while it gives
        nothing)."""
        return "0" if self.source is None else str(self.source)

    @property
    def opening_hours(self) -> OpeningHours:
        return OpeningHours.parse(self.hours)

    def replace(self, **kw) -> "KioskConfig":
        return dataclasses.replace(self, **kw)


def need(cond: bool, key: str, why: str) -> None:
    if not cond:
        raise ConfigError(f"{key}: {why}")


def _show(v) -> str:
    text = repr(v) if isinstance(v, str) else str(v)
    return text if len(text) <= 40 else text[:37] + "..."


def check_values(obj, option_names: bool = False) -> None:
    """Every setting of ``obj`` (a KioskConfig, or play's parsed arguments) that is a field here: finite and in
    range, one of its choices, no NUL in a text. ``option_names``: name them as options (--top-p), not keys."""
    for name in _FIELD_NAMES:
        if not hasattr(obj, name):
            continue
        v = getattr(obj, name)
        key = "--" + name.replace("_", "-") if option_names else name
        if v is None:
            continue
        if isinstance(v, str):
            need("\x00" not in v, key, "contains a NUL character")
        if name in CHOICES:
            need(v in CHOICES[name], key, f"{_show(v)} is not one of {', '.join(c for c in CHOICES[name] if c)}")
        if name in RANGES:
            lo, hi, lo_open = RANGES[name]
            need(isinstance(v, (int, float)) and not isinstance(v, bool), key, f"{_show(v)} is not a number")
            if isinstance(v, float):
                need(math.isfinite(v), key, f"{v} is not a finite number")
            ok = (lo < v if lo_open else lo <= v) and v <= hi
            need(ok, key, f"{_show(v)} must be " + (f"above {lo} and at most {hi}" if lo_open
                                                     else f"between {lo} and {hi}"))
    steering = ("valence", "arousal", "key", "motion_weight")
    if all(hasattr(obj, k) for k in steering) and tuple(getattr(obj, k) for k in steering) != (None, None, None, 0.0):
        # (all at their defaults there is nothing to check, and the sender process need not import numpy)
        from installation.mood.conductor import Steering
        try:
            Steering(valence=obj.valence, arousal=obj.arousal, key=obj.key, motion_weight=obj.motion_weight).check()
        except ValueError as exc:
            raise ConfigError(str(exc) if option_names else f"key: {exc}") from None


def writable_file(path: str, key: str) -> Path:
    """``path`` can be written (created or appended to); a file this check creates is removed again."""
    if "\x00" in str(path):
        raise ConfigError(f"{key}: the path contains a NUL character")
    p = Path(path).expanduser()
    need(not p.is_dir(), key, f"{path} is a folder; give a file name (e.g. {p / 'kiosk.jsonl'})")
    need(p.parent.is_dir(), key, f"{path}: folder {p.parent} does not exist; create it first")
    existed = p.exists()
    try:
        with open(p, "ab"):
            pass
    except OSError as exc:
        raise ConfigError(f"{key}: {path}: cannot write it ({exc.strerror or exc})") from None
    if not existed:
        p.unlink(missing_ok=True)
    return p


def writable_folder(path: str, key: str) -> Path:
    """``path`` exists as a folder (created if needed) in which files can be written."""
    import tempfile
    if "\x00" in str(path):
        raise ConfigError(f"{key}: the path contains a NUL character")
    p = Path(path).expanduser()
    try:
        p.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=p):
            pass
    except OSError as exc:
        raise ConfigError(f"{key} {path}: cannot write files there ({exc.strerror or exc})") from None
    return p


def check_resources(cfg: KioskConfig):
    """What the files and folders named by ``cfg`` hold, checked before anything starts: the models, the patch
    and its emotion map, the picture source and the attract folder, the log file. One line names the problem.
    Returns the engine's assembly (installation.engine.assemble): the patch's output port among it."""
    # lazy: numpy and cv2 (models, engine, images) only when the kiosk checks its resources; --help and the supervisor read this module
    from installation import manifest as M
    from installation.engine import assemble
    from installation.image.capture import _slideshow, bundled_artworks
    models = M.load(cfg.models)
    need(cfg.decoder is None or cfg.decoder in models.decoders, "decoder",
         f"{cfg.decoder}: the models in {models.folder} have only {', '.join(models.decoders)}")
    plan = assemble(cfg)                    # the patch, its emotion map, the steering, as the thinker makes them
    try:
        _slideshow(Path(cfg.attract).expanduser() if cfg.attract else bundled_artworks(), cfg.slide_seconds)
    except UserError as exc:
        raise ConfigError(f"attract: {exc}") from None
    check_source(cfg.picture_source, cfg.slide_seconds, "source")
    if cfg.log_file is not None:
        writable_file(cfg.log_file, "log_file")
    return plan


def check_source(spec: str, slide_seconds: float, key: str) -> None:
    """A picture source must be there at the start, unless it is a camera: a camera index, a device under /dev/
    or a stream URL may come later (plugged in, switched on), and attract mode plays meanwhile. A file path
    that does not exist is a mistake (a typo would leave a gallery playing the bundled artworks for weeks),
    and a folder must hold images that play."""
    import re
    # lazy: numpy and cv2 (models, engine, images) only when the kiosk checks its resources; --help and the supervisor read this module
    from installation.image.capture import _slideshow
    spec = str(spec).strip()
    if spec.isdigit() or re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", spec) or spec.startswith("/dev/"):
        return
    path = Path(spec).expanduser()
    if path.is_dir():
        try:
            _slideshow(path, slide_seconds)
        except UserError as exc:
            raise ConfigError(f"{key}: {exc}") from None
    elif not path.exists():
        raise ConfigError(f"{key}: {spec}: no such file or folder; give a video file, an image or a folder that "
                          f"exists, or a camera (an index such as 0, a device such as /dev/video0, a stream URL), "
                          f"which may come later")


_FIELDS = {f.name: f for f in fields(KioskConfig)}
_FIELD_NAMES = tuple(_FIELDS)
_OPTIONAL = {name for name, f in _FIELDS.items() if "None" in str(f.type)}
# Numbers: (lowest, highest, lowest excluded); every number must also be finite. Texts: their choices.
RANGES = {name: f.metadata["range"] for name, f in _FIELDS.items() if f.metadata["range"]}
CHOICES = {name: (None,) * (name in _OPTIONAL) + f.metadata["choices"] for name, f in _FIELDS.items()
           if f.metadata["choices"]}


def options_of(command: str) -> list[str]:
    """The options ``command`` (play, kiosk or render) takes, in the order of the configuration."""
    return [name for name, f in _FIELDS.items() if command in f.metadata["commands"]]


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
    if isinstance(value, int) and not -MAX_INT <= value <= MAX_INT:
        raise ConfigError(f"{key}: a whole number of {len(str(abs(value)))} digits is out of range")
    if t.startswith("float"):
        if not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: {value!r} is not a number")
        return float(value)
    if t.startswith("int"):
        if not isinstance(value, int):
            raise ConfigError(f"{key}: {value!r} is not a whole number")
        return value
    if key == "source" and isinstance(value, int):
        return str(value)
    if not isinstance(value, str):
        raise ConfigError(f"{key}: {value!r} is not a string")
    return value


OLD_NAMES = {"camera": "source"}       # older option names, still read, with one warning
_warned: set = set()


def renamed(old: str, where: str, option: bool = False) -> str:
    """The current name of the older option ``old`` (OLD_NAMES); the first time, one warning naming ``where``
    (``option``: the command line's, so the names are shown as options)."""
    new = OLD_NAMES[old]
    if old not in _warned:
        _warned.add(old)
        import logging
        shown = "--" + new.replace("_", "-") if option else new
        logging.getLogger("installation.kiosk").warning("%s is the older name of %s; use %s", where, shown, shown)
    return new


PLAY_ONLY_TYPES = {"record": str, "synth": bool, "soundfont": str, "audio_driver": str}


def read_toml(path: str | Path, for_play: bool = False) -> dict:
    """A config file's keys (dashes -> underscores), each type-checked; ConfigError names the file and key.
    ``for_play``: the file is read by `play`, which also takes its own options (record, synth, ...)."""
    out = {}
    for raw, value in load_toml(path, f"--config {path}", ConfigError).items():
        key = raw.replace("-", "_")
        if key in PLAY_ONLY and for_play:
            if not isinstance(value, PLAY_ONLY_TYPES[key]):
                raise ConfigError(f"--config {path}: {raw}: {value!r} is not a "
                                  f"{'boolean' if PLAY_ONLY_TYPES[key] is bool else 'string'}")
            out[key] = value
            continue
        if key in PLAY_ONLY:
            raise ConfigError(f"--config {path}: {raw!r} is a play option: {PLAY_ONLY[key]}")
        if key in OLD_NAMES:
            key = renamed(key, f"--config {path}: {raw}")
        if key not in _FIELDS:
            raise ConfigError(f"--config {path}: unknown key {raw!r} (known: {', '.join(_FIELDS)})")
        try:
            out[key] = _typed(key, value)
        except ConfigError as exc:
            raise ConfigError(f"--config {path}: {exc}") from None
    return out


def build(file: str | Path | None = None, overrides: dict | None = None) -> KioskConfig:
    """Defaults, then the file, then command-line ``overrides`` (None values are 'not given').
    A mistake names the option (--top-p) when the command line gave it, else the file and its key."""
    values = read_toml(file) if file is not None else {}
    given = set()
    for k, v in (overrides or {}).items():
        if v is not None:
            values[k] = _typed(k, v)
            given.add(k)
    try:
        return KioskConfig(**values)
    except ConfigError as exc:
        msg = str(exc)
        key = msg.split(":", 1)[0]
        if key in given or file is None:
            raise ConfigError("--" + key.replace("_", "-") + msg[len(key):]) from None
        raise ConfigError(f"--config {file}: {msg}") from None


def field_names() -> list[str]:
    return list(_FIELDS)


def for_child(cfg: KioskConfig) -> KioskConfig:
    """The configuration a child process (sender, thinker) gets: the status server's settings at their defaults.
    Only the supervisor serves status; the token would show on a child's command line (ps), and a bind address
    left without its token would fail the check the child's KioskConfig runs again."""
    status = ("status_port", "status_bind", "status_token", "status_frames")
    return dataclasses.replace(cfg, **{k: _FIELDS[k].default for k in status})


def to_json(cfg: KioskConfig) -> str:
    """The whole configuration for a child process's command line."""
    import json
    return json.dumps(dataclasses.asdict(cfg))


def from_json(text: str) -> KioskConfig:
    import json
    d = json.loads(text)
    d["hours"] = tuple(d.get("hours", ()))
    return KioskConfig(**d)
