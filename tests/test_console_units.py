"""The console's parts with known answers: the history of a hand-written event log, the event log's rotation
bound (on real files), the body and origin checks, the rate limit, and charts that escape hostile names."""
import datetime as dt
import json
import logging
import xml.etree.ElementTree as ET

import pytest

from installation.kiosk import history
from installation.kiosk.control import ControlError, RateLimit, foreign_origin, parse_value
from installation.kiosk.eventlog import EventLog

T0 = dt.datetime(2026, 11, 2, 10, 0, 0, tzinfo=dt.timezone.utc).timestamp()


def line(t, event, **fields):
    stamp = dt.datetime.fromtimestamp(T0 + t, dt.timezone.utc).isoformat(timespec="milliseconds")
    return json.dumps({"t": stamp, "event": event, **fields})


LOG = [
    line(0, "kiosk", value="started"),
    line(1, "state", value="starting"),
    line(10, "state", value="playing"),
    line(70, "minute", s=60.0, state="playing", notes=120, lateness_p99_ms=0.2, valence=0.5, arousal=-0.1),
    line(100, "scene", scene=0, picture="01_a.jpg", valence=0.5, arousal=-0.1),
    line(1000, "program", program="thinker", old="running", new="starting",
         reason="restart after killed by signal 9; pid 42", restarts=1),
    line(1000, "state", value="recovering"),
    line(1004, "state", value="playing"),
    line(1500, "control", action="pause", client="10.0.0.7", ok=True),
    line(1500, "state", value="paused"),
    line(1800, "state", value="playing"),
    line(2000, "minute", s=5.0, state="playing", notes=10, lateness_p99_ms=None, valence=None, arousal=None),
    # the kiosk is killed here (no "stopped" line): it ran until its last line, then nothing until it starts
    line(3000, "kiosk", value="started"),
    line(3002, "state", value="playing"),
    line(3600, "kiosk", value="stopped", level="warning"),
]


def test_the_history_of_a_known_log():
    recs = [json.loads(x) for x in LOG]
    h = history.summary(recs, now=T0 + 3700, hours=2.0)
    assert h["totals_s"] == {"starting": 10.0 + 2.0, "playing": 990 + 496 + 200 + 598, "fault": 4.0, "paused": 300.0,
                             "off": 1000.0 + 100.0}
    assert [(r["program"], r["reason"]) for r in h["restarts"]] == [("thinker", "restart after killed by signal 9; "
                                                                                "pid 42")]
    assert [m["notes"] for m in h["minutes"]] == [120, 120]        # the 5 s line: 10 notes = 120 a minute
    assert [s["picture"] for s in h["scenes"]] == ["01_a.jpg"]
    assert h["controls"] == [{"t": T0 + 1500, "action": "pause", "value": None, "client": "10.0.0.7", "ok": True}]
    assert h["log"][-1]["level"] == "warning" and len(h["log"]) == len(LOG) - 2   # minute lines are not log lines
    short = history.summary(recs, now=T0 + 3700, hours=0.5)            # the window cuts the first segments
    assert sum(short["totals_s"].values()) == pytest.approx(1800.0)
    assert short["restarts"] == []


def minute_lines(path, max_bytes: int, backups: int, lines: int) -> None:
    """Write ``lines`` minute records (notes 0, 1, ...) through an EventLog of that size and backups at ``path``."""
    ev = EventLog(str(path), max_mb=max_bytes / 2 ** 20, backups=backups)
    for i in range(lines):
        ev.emit("minute", s=60.0, notes=i)
    ev.close()


def test_the_event_log_is_read_back_across_rotations_and_stays_bounded(tmp_path):
    path = tmp_path / "kiosk.jsonl"
    minute_lines(path, 2048, backups=2, lines=300)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["kiosk.jsonl", "kiosk.jsonl.1", "kiosk.jsonl.2"]
    assert all((tmp_path / f).stat().st_size <= 2048 for f in files)
    back = history.records(EventLog(str(path), 1, 2), since=0)
    notes = [r["notes"] for r in back]
    assert notes == list(range(notes[0], 300)) and len(notes) > 20     # the newest, in order, none lost between


def test_no_backups_still_bounds_the_file(tmp_path):
    path = tmp_path / "kiosk.jsonl"
    minute_lines(path, 1024, backups=0, lines=500)
    assert path.stat().st_size <= 1024
    assert [p.name for p in tmp_path.iterdir()] == ["kiosk.jsonl"]


def test_warnings_carry_their_level_and_recent_is_bounded():
    ev = EventLog(None)
    ev.emit("panic", level=logging.WARNING, ok=False)
    ev.emit("scene", scene=1)
    assert [r.get("level") for r in ev.recent] == ["warning", None]
    assert ev.recent.maxlen and ev.recent.maxlen <= 50_000


@pytest.mark.parametrize("body,ctype,value", [
    (b'{"value": 64}', "application/json", 64), (b"value=0", "application/x-www-form-urlencoded", 0),
    (b"value=127", "application/x-www-form-urlencoded", 127)])
def test_volume_bodies_that_are_taken(body, ctype, value):
    assert parse_value("volume", body, ctype) == value


@pytest.mark.parametrize("body,ctype", [
    (b'{"value": 128}', "application/json"), (b'{"value": 64.0}', "application/json"),
    (b'{"value": false}', "application/json"), (b'{"value": null}', "application/json"),
    (b'"64"', "application/json"), (b'{"value": ' + b"[" * 5000 + b"]" * 5000 + b"}", "application/json"),
    (b"value=0127", "application/x-www-form-urlencoded"), (b"value=-1", "application/x-www-form-urlencoded"),
    (b"value=" + b"9" * 30, "application/x-www-form-urlencoded"), (b"", "text/plain")])
def test_volume_bodies_that_are_refused(body, ctype):
    with pytest.raises(ControlError) as err:
        parse_value("volume", body, ctype)
    assert err.value.status in (400, 413)


def test_other_actions_take_no_value():
    assert parse_value("pause", b"anything at all", "application/json") is None


@pytest.mark.parametrize("headers,refused", [
    ({}, False),                                                          # curl: the token decides
    ({"Origin": "http://127.0.0.1:8080", "Host": "127.0.0.1:8080", "Sec-Fetch-Site": "same-origin"}, False),
    ({"Origin": "http://evil.example", "Host": "127.0.0.1:8080"}, True),
    ({"Origin": "https://gallery.example", "Host": "gallery.example"}, False),   # a TLS proxy passing Host on
    ({"Origin": "https://gallery.example", "Host": "127.0.0.1:8080"}, True),    # ... or not: refused
    ({"Origin": "http://127.0.0.1:8080"}, True),                               # no Host to compare
    ({"Origin": "http://127.0.0.1:9999", "Host": "127.0.0.1:8080"}, True),   # another port is another origin
    ({"Origin": "null", "Host": "127.0.0.1:8080"}, True),                    # a sandboxed frame or a file
    ({"Sec-Fetch-Site": "cross-site", "Host": "127.0.0.1:8080"}, True),
    ({"Sec-Fetch-Site": "same-site", "Host": "127.0.0.1:8080"}, True)])
def test_origins(headers, refused):
    assert (foreign_origin(headers) is not None) == refused


def test_rate_limit_per_client():
    now = [0.0]
    rl = RateLimit(3, 10.0, clock=lambda: now[0])
    assert [rl.allow("a") for _ in range(3)] == [0.0] * 3
    assert rl.allow("a") == pytest.approx(10.0)
    assert rl.allow("b") == 0.0                           # another address has its own budget
    now[0] = 10.0
    assert rl.allow("a") == 0.0


def test_charts_escape_names_and_are_well_formed():
    recs = [json.loads(x) for x in LOG]
    recs.append({"t": recs[-1]["t"], "event": "scene", "picture": "<script>alert(1)</script>&.jpg"})
    h = history.summary(recs, now=T0 + 3700, hours=2.0)
    frag = history.charts(h, h)
    assert "<script>" not in frag and "&lt;script&gt;" in frag
    for draw in (history.svg_states, history.svg_minutes, history.svg_mood):
        svg = ET.fromstring(draw(h, "x"))
        assert svg.find("{http://www.w3.org/2000/svg}title") is not None or svg.find("title") is not None


def test_records_since_gives_only_the_newer_ones():
    ev = EventLog(None)
    ev.recent.extend(json.loads(line(i, "scene", scene=i)) for i in range(3))
    assert [r["scene"] for r in history.records_since(ev, T0 + 1)] == [2]
    assert [r["scene"] for r in history.records_since(ev, T0 - 1)] == [0, 1, 2]
