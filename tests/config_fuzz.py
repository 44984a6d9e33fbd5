"""Hypothesis strategies for the configuration fuzzers: patches and kiosk/play config files as TOML text.

Each case is a TOML document built from the real keys (and some wrong ones) with hostile values: huge and
negative whole numbers, nan and inf, NUL and control characters, wrong types, nested tables, and text that
is not TOML at all. ``check_*`` runs one case through the real loader and says how it ended: ``"ok"``, or
``"refused"`` (the one-line UserError). Anything else (another exception, a message of several lines)
fails the property. Used by tests/test_config_fuzz.py (a few hundred cases) and bench/bench_fuzz.py (thousands).
"""
from __future__ import annotations

import copy
import math
import string
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:              # Python 3.10
    import tomli as tomllib              # type: ignore[no-redef]

from hypothesis import strategies as st

from installation.errors import UserError

REPO = Path(__file__).resolve().parents[1]

PATCH_KEYS = {
    "": ["name", "description", "output", "shaping", "layer", "controls", "cc", "osc", "input", "clock", "chord_layer",
         "synth", "emotion_map"],
    "output": ["port", "virtual_port", "pedal", "pedal_cc"],
    "shaping": ["transpose", "pitch_range", "out_of_range", "scale", "off_scale", "velocity_curve",
                "velocity_range", "max_polyphony", "mono", "max_notes_per_second", "tempo_scale"],
    "layer": ["channel", "program", "bank", "voices", "transpose", "pitch_range", "out_of_range",
              "velocity_scale", "max_polyphony", "mono"],
    "cc": ["source", "number", "channel", "range", "smoothing_s", "pulse_s"],
    "osc": ["host", "port", "prefix", "notes", "values", "chords", "rate_hz"],
    "input": ["midi_port", "channel", "valence_cc", "arousal_cc", "osc_port", "weight", "chord_port",
              "chord_channel", "chord_release_s"],
    "chord_layer": ["channel", "style", "velocity", "octave", "program"],
    "clock": ["send", "min_bpm", "max_bpm", "smoothing_s", "follow_port", "reference_bpm", "link"],
    "controls": ["rate_hz"],
    "synth": ["soundfont", "gain"],
    "emotion_map": ["corners", "mode_hysteresis", "key_change", "q1", "q2", "q3", "q4", "density", "velocity",
                    "pitch", "major_share", "density_spread"],
}
_PATHS = [(section, key) for section, keys in PATCH_KEYS.items() for key in keys + ["bogus"]]
WORDS = ["C major", "D minor", "fold", "drop", "snap", "all", "lowest", "highest", "valence", "arousal", "scene",
         "/itm", "127.0.0.1", "relative", "parallel", "gm-piano", "10:00-18:00", "gru", "transformer", "send",
         "jack", "alsa", "info", "0", "", " ", "/", "/tmp", "/dev/null", "/sys", "/nonexistent/x.toml", "pad", "bass"]

HOSTILE_NUMBERS = [10 ** 400, -(10 ** 400), 2 ** 63, 2 ** 64 + 1, -1, 0, math.nan, math.inf, -math.inf, -0.0,
                   1e308, 5e-324]
_scalars = st.one_of(
    st.sampled_from(HOSTILE_NUMBERS),                           # first: hypothesis shrinks towards these
    st.integers(-200, 200),
    st.integers(),                                              # any size
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.sampled_from(WORDS),
    st.text(alphabet=string.printable + "\x00\x01\u00e9\u2028\ud7ff", max_size=30),
)


def _values(depth: int = 2):
    if depth == 0:
        return _scalars
    inner = _values(depth - 1)
    return st.one_of(_scalars, _scalars, st.lists(inner, max_size=4),
                     st.dictionaries(st.sampled_from(sum(PATCH_KEYS.values(), []) + ["x", "bogus"]), inner, max_size=4))


_hostile = st.one_of(st.sampled_from(HOSTILE_NUMBERS), _values(1))    # a mutation: half the time a bad number


def toml_value(v) -> str:
    """``v`` as TOML text (inline tables and arrays; nan and inf as TOML writes them)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        out = []
        for ch in v:
            if ch in '"\\' or ord(ch) < 0x20 or ord(ch) == 0x7F or 0xD800 <= ord(ch) <= 0xDFFF:
                out.append("\\u%04x" % ord(ch) if not 0xD800 <= ord(ch) <= 0xDFFF else "?")
            else:
                out.append(ch)
        return '"' + "".join(out) + '"'
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{toml_value(str(k))} = {toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(type(v))


def toml_doc(d: dict) -> str:
    return "".join(f"{toml_value(str(k))} = {toml_value(v)}\n" for k, v in d.items())


def _bases(folder: Path) -> list[dict]:
    out = []
    for f in sorted(folder.glob("*.toml")):
        out.append(tomllib.loads(f.read_text(encoding="utf-8")))
    return out


def _mangle(draw, text: str) -> str:
    """One case in ten: bytes cut in or out, so the text is often no longer TOML."""
    if draw(st.integers(0, 9)) == 0:
        cut = draw(st.integers(0, len(text)))
        text = text[:cut] + draw(st.text(max_size=8)) + text[cut + draw(st.integers(0, 4)):]
    return text


@st.composite
def patch_documents(draw) -> str:
    """A patch as TOML text: a shipped patch with one to three keys set to hostile values (so that the
    loader gets past the first key and every section is reached), or built from scratch."""
    if draw(st.integers(0, 4)) == 0:
        doc = {}
        for section in draw(st.lists(st.sampled_from(list(PATCH_KEYS)), max_size=5, unique=True)):
            table = draw(st.dictionaries(st.sampled_from(PATCH_KEYS[section] + ["bogus"]), _values(1), max_size=5))
            if section == "":
                doc.update(table)
            else:
                doc[section] = draw(st.one_of(st.just(table), st.lists(st.just(table), min_size=1, max_size=3)))
    else:
        doc = copy.deepcopy(draw(st.sampled_from(_bases(REPO / "patches"))))
        for _ in range(draw(st.sampled_from([1, 1, 1, 1, 1, 1, 1, 2, 2, 3]))):   # mostly one: it is the error
            section, key = draw(st.sampled_from(_PATHS))
            value = draw(_hostile)
            if section == "":
                doc[key] = value
                continue
            table = doc.get(section)
            if isinstance(table, list) and table and isinstance(table[0], dict):
                table = table[draw(st.integers(0, len(table) - 1))]
            elif not isinstance(table, dict):
                table = doc[section] = [{}] if section in ("layer", "cc") else {}
                table = table[0] if isinstance(table, list) else table
            table[key] = value
    return _mangle(draw, toml_doc(doc))


@st.composite
def kiosk_documents(draw, field_names) -> str:
    """A kiosk/play config file as TOML text: the shipped example with one to four keys (with dashes or
    underscores; real ones and some play-only or unknown ones) set to hostile values."""
    names = list(field_names) + ["record", "synth", "bogus", "camera-timeout-s"]
    doc = copy.deepcopy(_bases(REPO / "deploy")[0]) if draw(st.booleans()) else {}
    doc.pop("log_file", None)
    for _ in range(draw(st.integers(1, 4))):
        key = draw(st.sampled_from(names))
        doc[key.replace("_", "-") if draw(st.booleans()) else key] = draw(_hostile)
    return _mangle(draw, toml_doc(doc))


def _one_line(exc: UserError) -> str:
    msg = str(exc)
    assert msg and "\n" not in msg and "Traceback" not in msg, f"not one line: {msg!r}"
    return "refused"


def check_patch(path) -> str:
    """Load one patch file through the real loader: 'ok' or 'refused' (one line); anything else raises."""
    from installation.engine import patched_map
    from installation.patches import load_patch
    try:
        patch = load_patch(str(path))
        patched_map(None, patch)                      # its [emotion_map] over the models' map, as play does
        return "ok"
    except UserError as exc:
        return _one_line(exc)


def check_kiosk(path, for_play: bool = False) -> str:
    """Read and build one kiosk config file (and its paths, as the start does): 'ok' or 'refused'."""
    from installation.kiosk import config as C
    try:
        values = C.read_toml(path, for_play=for_play)
        values = {k: v for k, v in values.items() if k not in C.PLAY_ONLY}
        cfg = C.build(None, values)
        if cfg.log_file is not None:
            C.writable_file(cfg.log_file, "log_file")
        C.check_source(cfg.picture_source, cfg.slide_seconds, "source")
        return "ok"
    except UserError as exc:
        return _one_line(exc)


# --- cases that know their outcome (tests/test_config_fuzz.py) ---------------------------------------------
# Each case is a shipped file with a few values changed, and says beforehand how the loader must end: "ok" or
# "refused". What is right and wrong is written here from docs/PATCHES.md and docs/KIOSK.md, not taken from
# the loader: known good values, values out of the documented range, a value of the wrong kind (a table for a
# number, a word for a number, nan, 10**400 for a string), an unknown key, and text that is not TOML (tomllib
# says so). One wrong value in a file refuses the whole file.
PATCH_GOOD = {("layer", "channel"): [1, 10, 16], ("layer", "program"): [1, 64, 128], ("layer", "transpose"): [-12, 0, 12],
              ("layer", "mono"): [True, False], ("shaping", "velocity_curve"): [0.5, 1.0, 2.0],
              ("shaping", "max_polyphony"): [0, 1, 16], ("shaping", "transpose"): [-12, 0, 7], ("cc", "number"): [1, 20, 74],
              ("cc", "channel"): [1, 16], ("cc", "smoothing_s"): [0.5, 2.0], ("osc", "port"): [9000, 12000],
              ("controls", "rate_hz"): [10, 30]}
PATCH_BAD = {("layer", "channel"): [0, 17, -1], ("layer", "program"): [0, 129], ("cc", "number"): [-1, 128],
             ("cc", "channel"): [0, 17], ("shaping", "velocity_curve"): [0, -1.0], ("osc", "port"): [70000, -1],
             ("controls", "rate_hz"): [0, -5], ("shaping", "max_polyphony"): [-1, 129], ("layer", "transpose"): [200, -200],
             ("shaping", "transpose"): [200, -200]}
KIOSK_GOOD = {"channel": [1, 16], "seed": [0, 42], "temperature": [0.5, 2.0], "top_p": [0.5, 1.0],
              "slide_seconds": [5.0, 60.0], "max_polyphony": [8, 128], "max_note_seconds": [2.0, 20.0],
              "status_port": [8090, 9000], "late_policy": ["drop", "send"], "log_level": ["debug", "warning"],
              "decoder": ["gru", "transformer"], "embed_fps": [2.0, 8.0], "camera_timeout_s": [5.0, 30.0],
              "sender_priority": [1, 50]}
KIOSK_BAD = {"channel": [0, 17], "top_p": [0.0, 1.5], "temperature": [-1.0, 11.0], "max_polyphony": [0, 129],
             "sender_priority": [-1, 100], "status_port": [70000, -1], "late_policy": ["later"], "log_level": ["loud"],
             "decoder": ["lstm"], "seed": [-1], "slide_seconds": [0.0, -5.0], "embed_fps": [0.0, -1.0],
             "max_note_seconds": [0.0, -1.0]}
NOT_TOML = ['"unterminated', "[[", "key = ", "= 1", "x = 1\nx = 2", "\x00", "a = [1, 2", "[[layer]\n"]


def wrong_kind(v) -> list:
    """Values of another kind than ``v`` (a good value of some key): refused for that key."""
    if isinstance(v, bool):
        return ["yes", 2, {"x": 1}]
    if isinstance(v, (int, float)):
        return [math.nan, math.inf, -math.inf, 10 ** 400, "x", {"x": 1}, [1, 2]]
    if isinstance(v, str):
        return [10 ** 400, math.nan, {"x": 1}, [1]]
    if isinstance(v, list):
        return [math.nan, {"x": 1}]
    return [math.nan, "x", 10 ** 400]


def _tables(doc: dict, section: str) -> list[dict]:
    t = doc.get(section)
    if isinstance(t, dict):
        return [t]
    return [x for x in t if isinstance(x, dict)] if isinstance(t, list) else []


def _not_toml(draw, text: str) -> str:
    lines = text.split("\n")
    at = draw(st.integers(0, len(lines)))
    broken = "\n".join(lines[:at] + [draw(st.sampled_from(NOT_TOML)) + (lines[at] if at < len(lines) else "")]
                       + lines[at + 1:])
    try:
        tomllib.loads(broken)
    except tomllib.TOMLDecodeError:
        return broken
    raise AssertionError(f"meant to break the TOML, but it parses: {broken!r}")


@st.composite
def patch_cases(draw) -> tuple[str, str]:
    """(TOML text, "ok" | "refused"): a shipped patch, some good values set, then at most one mistake."""
    doc = copy.deepcopy(draw(st.sampled_from(_bases(REPO / "patches"))))
    for _ in range(draw(st.integers(0, 3))):
        (section, key), values = draw(st.sampled_from(sorted(PATCH_GOOD.items())))
        for table in _tables(doc, section)[:1]:
            table[key] = draw(st.sampled_from(values))
    kind = draw(st.sampled_from(["ok", "range", "kind", "unknown key", "not toml"]))
    if kind == "range":
        choices = [(s, k, v) for (s, k), vs in sorted(PATCH_BAD.items()) if _tables(doc, s) for v in vs]
        s, k, v = draw(st.sampled_from(choices))
        draw(st.sampled_from(_tables(doc, s)))[k] = v
    elif kind == "kind":
        paths = [(t, k) for s in PATCH_KEYS if s for t in _tables(doc, s) for k in t] + \
                [(doc, k) for k in doc if not isinstance(doc[k], (dict, list)) or doc[k] == []]
        table, key = draw(st.sampled_from(paths))
        table[key] = draw(st.sampled_from(wrong_kind(table[key])))
    elif kind == "unknown key":
        tables = [doc] + [t for s in PATCH_KEYS if s for t in _tables(doc, s)]
        draw(st.sampled_from(tables))["bogus"] = draw(_values(1))
    text = toml_doc(doc)
    if kind == "not toml":
        text = _not_toml(draw, text)
    return text, "ok" if kind == "ok" else "refused"


@st.composite
def kiosk_cases(draw) -> tuple[str, str]:
    """(TOML text, "ok" | "refused"): the example kiosk file (or an empty one), some good values set (keys with
    dashes or underscores), then at most one mistake."""
    doc = copy.deepcopy(_bases(REPO / "deploy")[0]) if draw(st.booleans()) else {}
    doc.pop("log_file", None)                        # its folder is /var/log/image-to-music, absent here
    spell = lambda k: k.replace("_", "-") if draw(st.booleans()) else k
    for _ in range(draw(st.integers(0, 3))):
        key, values = draw(st.sampled_from(sorted(KIOSK_GOOD.items())))
        doc.pop(key, None)
        doc[spell(key)] = draw(st.sampled_from(values))
    kind = draw(st.sampled_from(["ok", "range", "kind", "unknown key", "not toml"]))
    if kind == "range":
        key, values = draw(st.sampled_from(sorted(KIOSK_BAD.items())))
        doc.pop(key, None), doc.pop(key.replace("_", "-"), None)
        doc[spell(key)] = draw(st.sampled_from(values))
    elif kind == "kind":
        key, values = draw(st.sampled_from(sorted(KIOSK_GOOD.items())))
        doc.pop(key, None), doc.pop(key.replace("_", "-"), None)
        doc[spell(key)] = draw(st.sampled_from(wrong_kind(values[0])))
    elif kind == "unknown key":
        doc[draw(st.sampled_from(["bogus", "camera-timeout", "statusport", "hour"]))] = draw(_values(1))
    text = toml_doc(doc)
    if kind == "not toml":
        text = _not_toml(draw, text)
    return text, "ok" if kind == "ok" else "refused"
