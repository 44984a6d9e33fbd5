"""Kiosk configuration: TOML into one frozen dataclass, bad files refused with the key and the reason, hours."""
import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest

from installation.kiosk import config as C
from installation.kiosk.hours import OpeningHours

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path, text):
    p = tmp_path / "kiosk.toml"
    p.write_text(text)
    return p


def test_file_then_command_line(tmp_path):
    p = write(tmp_path, 'port = "fluid"\nstatus-port = 9000\nhours = ["10:00-18:00"]\nlookahead_ms = 500\n')
    cfg = C.build(p, {"status_port": 9100, "seed": None})
    assert (cfg.port, cfg.status_port, cfg.hours, cfg.lookahead_ms) == ("fluid", 9100, ("10:00-18:00",), 500.0)
    with pytest.raises(AttributeError):
        cfg.port = "x"                                  # frozen


@pytest.mark.parametrize("text, words", [
    ('bogus = 1\n', ["unknown key 'bogus'"]),
    ('channel = 17\n', ["channel", "between 1 and 16"]),
    ('status_port = "80"\n', ["status_port", "not a whole number"]),
    ('hours = ["25:00-18:00"]\n', ["hours", "25:00-18:00"]),
    ('status_bind = "0.0.0.0"\n', ["status_bind", "status_token"]),
    ('port = "a"\nvirtual_port = "b"\n', ["port", "not both"]),
    ('port = \n', ["not valid TOML"]),
    ('late_policy = "later"\n', ["late_policy"]),
])
def test_bad_files_are_refused_with_key_and_reason(tmp_path, text, words):
    with pytest.raises(C.ConfigError) as e:
        C.build(write(tmp_path, text))
    assert all(w in str(e.value) for w in words), str(e.value)
    assert "kiosk.toml" in str(e.value)


def test_cli_refuses_a_bad_file_with_one_line_and_status_2(tmp_path):
    p = write(tmp_path, 'status_port = 9000\nmax_polyphony = 0\n')
    r = subprocess.run([sys.executable, str(REPO / "run_installation.py"), "kiosk", "--config", str(p)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert r.stderr.strip().startswith("error: ") and "max_polyphony" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_child_processes_get_the_same_config():
    cfg = C.build(None, {"hours": ["09:00-12:00", "13:00-17:30"], "port": "x", "seed": 4})
    assert C.from_json(C.to_json(cfg)) == cfg


def at(h, m, s=0):
    return dt.datetime(2026, 11, 25, h, m, s)


def test_opening_hours():
    oh = OpeningHours.parse(["10:00-12:00, 14:00-18:00"])
    assert [oh.is_open(at(*t)) for t in [(9, 59, 59), (10, 0), (11, 59, 59), (12, 0), (15, 0), (18, 0)]] == \
           [False, True, True, False, True, False]
    night = OpeningHours.parse(["22:00-02:00"])
    assert night.is_open(at(23, 0)) and night.is_open(at(1, 0)) and not night.is_open(at(12, 0))
    assert OpeningHours.parse([]).is_open(at(3, 0))
    assert OpeningHours.parse(["10:00:30-10:01"]).is_open(at(10, 0, 45))
    for bad in ["10-18", "10:00-10:00", "10:61-11:00", "24:01-25:00"]:
        with pytest.raises(ValueError):
            OpeningHours.parse([bad])


def test_the_shipped_example_config_loads(tmp_path):
    values = C.read_toml(REPO / "deploy" / "kiosk.example.toml")
    cfg = C.build(None, {**values, "log_file": str(tmp_path / "k.jsonl")})
    assert cfg.port and cfg.hours == ("10:00-18:00",) and cfg.status_bind == "127.0.0.1"


def test_the_docs_name_fluidsynth_by_its_jack_port():
    """Under JACK FluidSynth's port is fluidsynth-midi:midi_00; 'FLUID Synth' (the ALSA name) matches nothing there."""
    from installation.midi.midi_io import find_port
    jack_ports = ["fluidsynth-midi:midi_00"]
    for doc in ("docs/KIOSK.md", "deploy/kiosk.example.toml", "README.md", "docs/PATCHES.md", "docs/PLAY.md"):
        text = (REPO / doc).read_text()
        assert "FLUID Synth\"" not in text and "--port \"FLUID Synth" not in text, doc
    example = C.read_toml(REPO / "deploy" / "kiosk.example.toml")
    assert find_port(jack_ports, example["port"]) == "fluidsynth-midi:midi_00"
    assert example["midi_api"] == "jack"


def test_every_declared_range_and_choice_refuses_a_value_beyond_it(tmp_path):
    """The one declaration of each option (kiosk/config.py) is what the file's checks enforce, and what the
    command line offers as choices."""
    from installation.cli import build_parser
    for name, (lo, hi, lo_open) in C.RANGES.items():
        t = str(C._FIELDS[name].type)
        for bad in ((hi + 1, lo - 1) if t.startswith("int") else (hi * 2 + 1, lo - 1.0)) + ((lo,) if lo_open else ()):
            with pytest.raises(C.ConfigError, match=name):
                C.build(write(tmp_path, f"{name} = {bad!r}\n"))
    kiosk = build_parser()._subparsers._group_actions[0].choices["kiosk"]
    offered = {a.dest: a.choices for a in kiosk._actions if a.choices}
    for name, choices in C.CHOICES.items():
        with pytest.raises(C.ConfigError, match=name):
            C.build(write(tmp_path, f'{name} = "nonsense"\n'))
        assert list(offered[name]) == [c for c in choices if c is not None]


def test_next_opening_time():
    h = OpeningHours.parse(["10:00-18:00", "22:00-02:00"])
    at = lambda s: dt.datetime.fromisoformat("2026-03-04 " + s)              # noqa: E731
    assert h.next_open(at("09:00")) == at("10:00")
    assert h.next_open(at("19:30")) == at("22:00")
    assert h.next_open(at("23:00")) == dt.datetime.fromisoformat("2026-03-05 10:00")   # open now: the next one
    assert h.next_open(at("03:00")) == at("10:00")
    assert OpeningHours.parse([]).next_open(at("03:00")) is None
